// Package livekit is roomcast's headless LiveKit participant: it joins a room
// as a hidden recorder, subscribes to every audio, camera and screen-share
// track, and hands each track's encoded access units (H.264 Annex B, VP8,
// VP9, AV1 temporal units, Opus packets) to a consumer with presentation
// times on one room media clock, so that speakers stay in sync with each
// other.
//
// Data flow per remote track: pion's RTP read loop -> bounded queue (drops
// counted, never blocks) -> one worker goroutine: jitter buffer (reorder,
// wait for NACK retransmissions) -> frame assembly and depacketisation ->
// keyframe gate (PLI when broken) -> RTP->room-clock mapping from RTCP sender
// reports -> TrackSink.WriteFrame.
//
// Room-level events (joins, leaves, mutes, active speakers, reconnects, room
// close) reach the consumer's Handler from one goroutine, in order.
package livekit
