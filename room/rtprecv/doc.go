// Package rtprecv is the WebRTC receive path every connector shares: it
// turns one remote track's RTP packets into the encoded access units of the
// room contract (room.Frame: H.264 Annex B, VP8, VP9, AV1 temporal units,
// Opus packets) with PTS on the room's media clock. It knows no server SDK:
// a connector hands it a pion track (Source), its RTCP and a way to send a
// PLI.
//
// Data flow per track (one Worker): the RTP read loop -> bounded queue
// (drops counted, never blocks) -> one worker goroutine: jitter buffer
// (reorder, wait for NACK retransmissions) -> frame assembly and
// depacketisation (RFC 6184, 7741, draft VP9, AV1 RTP spec, RFC 7587) ->
// keyframe gate (PLI when broken, rate-limited) -> RTP -> room-clock mapping
// from RTCP sender reports (lip sync, ParticipantClock) ->
// room.TrackSink.WriteFrame.
//
// A connector makes one Clock per room and one ParticipantClock per
// publisher, and per subscribed track: NewWorker, Start (after the
// consumer's TrackAdded gave the sink), OnRTCP for its RTCP, Halt when the
// track ends. The Worker implements room.TrackControl's RequestKeyframe and
// Stats.
package rtprecv
