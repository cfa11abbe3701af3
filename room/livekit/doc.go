// Package livekit is roomcast's LiveKit connector (a room.Room): it joins a
// room as a hidden recorder with the LiveKit Go SDK, subscribes to every
// audio, camera and screen-share track the Handler wants (subscriptions
// are roomcast's, not the server's automatic ones: a room.SubscriptionFilter
// such as the consent filter keeps a participant's media from being sent
// at all), and reports the room to a room.Handler: participants with their
// attributes and metadata, tracks, mutes, the server's active speakers,
// reconnects and the room's end. Announce tells the room that roomcast
// records (chat, its recording attribute).
//
// Only the SDK glue lives here. Each subscribed track's receive path
// (bounded queue, jitter buffer, depacketisation, keyframe requests, RTCP
// sender-report lip sync onto the room clock) is an rtprecv.Worker, shared
// with the other WebRTC connectors.
//
// Room-level events reach the Handler from one goroutine, in order (the
// SDK's callbacks, some on goroutines of their own, are queued for it).
package livekit
