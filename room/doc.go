// Package room is the contract between a meeting server and roomcast's
// pipeline: whatever the server (LiveKit, Janus VideoRoom, BigBlueButton, a
// synthetic demo room), a connector joins one room and reports it to a
// Handler as participants (identity, display name, attributes), their tracks
// (kind, codec, source) and encoded frames whose PTS are all on one room
// media clock, plus mutes, active speakers and session events.
//
// The pieces:
//
//   - Room is what every connector implements: Start joins, Close leaves,
//     Now reads the room clock, Done/Err report an end the server decided.
//   - Handler is what the consumer (recorder.RoomSink) implements; the
//     connector calls it.
//   - Track describes one subscribed track and carries its TrackControl
//     (keyframe requests, the size it is shown at, counters).
//   - TrackSink receives one track's frames.
//   - The Err… sentinels classify failures so that the command maps them to
//     exit codes in one place (see ErrConfig for the split).
//
// Connectors live in sub-packages (room/livekit, …) and are chosen by URL
// scheme in room/registry; the WebRTC receive path they share (jitter
// buffer, depacketisers, RTCP sender-report lip sync, keyframe requests,
// the per-track worker) is room/rtprecv.
//
// # Threading contract
//
// A connector uses three kinds of goroutines, and the consumer may rely on
// this:
//
//   - The event goroutine (one per Room): every Handler method is called
//     from it, one at a time, in the order the events happened. Handler
//     methods need no locking among themselves; they should return quickly,
//     since later events wait for them (frames do not).
//   - One worker goroutine per track: TrackSink.WriteFrame and then
//     TrackSink.Close are called from it only, never concurrently for one
//     sink. WriteFrame may block its worker (decoding, say); the network is
//     never blocked: packets queue and, past the queue's bound, are dropped
//     and counted (TrackStats.QueueDrops).
//   - The connector's own network goroutines, invisible to the consumer.
//
// Track's control methods (RequestKeyframe, SetVideoDimensions, Stats) and
// Room.Now are safe from any goroutine, Handler methods included. Room.Close
// waits for the event goroutine and every worker, so it must not be called
// from a Handler or TrackSink method.
package room
