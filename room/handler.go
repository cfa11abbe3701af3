package room

import (
	"fmt"
	"slices"
	"time"
)

// Handler receives a room's events. All calls come from the Room's one
// event goroutine, in the order the events happened, so an implementation
// needs no locking of its own for them; they should return quickly (frames
// do not wait on them, but later events do). A Handler must not call the
// Room's Close.
type Handler interface {
	// ParticipantJoined reports a remote participant (never roomcast itself,
	// hidden participants or other recorders). It comes before the
	// participant's first TrackAdded.
	ParticipantJoined(p Participant)
	// ParticipantUpdated reports a changed display name, metadata or
	// attributes of a joined participant (p holds all of them, current).
	// Connectors whose server has no such notion never call it.
	ParticipantUpdated(p Participant)
	// ParticipantLeft reports that the participant with identity id left.
	// Its tracks' sinks are closed by their workers, possibly just after.
	ParticipantLeft(id string)
	// TrackAdded reports a newly subscribed track. The returned sink gets
	// the track's frames from the track's own worker goroutine and is
	// closed when the track ends (unpublished, participant gone, Room
	// closed); a nil sink discards them.
	TrackAdded(t *Track) TrackSink
	// TrackMuted reports that a publisher muted or unmuted a track.
	TrackMuted(trackSID string, muted bool)
	// ActiveSpeakers reports the server's active-speaker list by identity,
	// loudest first; empty when nobody speaks. Connectors whose server does
	// not say never call it (the consumer then judges from the sound).
	ActiveSpeakers(ids []string)
	// Session reports connection and occupancy changes for session control.
	Session(e SessionEvent)
	// RoomClosed is the last call: the room ended for a reason other than
	// Room.Close (server closed the room, this participant was removed, or
	// reconnecting gave up). reason wraps ErrRoomClosed or ErrDisconnected.
	RoomClosed(reason error)
}

// SubscriptionFilter is an optional extension of a Handler. Connectors that
// choose what they subscribe to (LiveKit) ask it before subscribing to a
// participant's tracks, and again after every ParticipantUpdated: a
// participant it declines has no track subscribed at all (the server sends
// none of their media), and one it declines later is unsubscribed.
// Connectors that cannot choose (every feed is the room's) ignore it. It is
// called on the event goroutine, like the Handler methods; p is the
// connector's current view of the participant.
type SubscriptionFilter interface {
	WantTracks(p Participant) bool
}

// SelfObserver is an optional extension of a Handler: connectors whose
// server lets others change roomcast's own participant (LiveKit's egress
// API: UpdateLayout writes {"layout": …} into the egress participant's
// metadata) report the change, with the participant's current metadata
// and attributes. It is called on the event goroutine.
type SelfObserver interface {
	SelfUpdated(p Participant)
}

// TrackFilter is an optional extension of a Handler, beside
// SubscriptionFilter: connectors that choose their subscriptions ask it for
// each track of a participant they want (t carries at least SID,
// ParticipantID, Kind and Source); a declined track is not subscribed. It
// is called on the event goroutine.
type TrackFilter interface {
	WantTrack(t *Track) bool
}

// TrackSelector picks tracks by kind, source and SID: an audio-only
// recording takes no video, a screen-share egress takes the screen and the
// microphone, a track composite takes two named tracks. The zero value
// picks every track.
type TrackSelector struct {
	// NoAudio and NoVideo leave out every track of that kind.
	NoAudio, NoVideo bool
	// Sources, when not empty, are the only sources picked.
	Sources []Source
	// SIDs, when not empty, are the only tracks picked.
	SIDs []string
}

// Picks reports whether t is selected.
func (s TrackSelector) Picks(t *Track) bool {
	switch {
	case s.NoAudio && t.Kind == KindAudio, s.NoVideo && t.Kind == KindVideo:
		return false
	case len(s.Sources) > 0 && !slices.Contains(s.Sources, t.Source):
		return false
	case len(s.SIDs) > 0 && !slices.Contains(s.SIDs, t.SID):
		return false
	}
	return true
}

// TrackSink consumes one track's frames. WriteFrame and Close are called
// from the track's worker goroutine only, never concurrently; WriteFrame may
// block that worker (not the network), in which case packets queue and,
// past the queue size, are dropped and counted.
type TrackSink interface {
	WriteFrame(f Frame)
	Close()
}

// Frame is one encoded unit of a track.
type Frame struct {
	// Codec is "h264", "vp8", "vp9", "av1" or "opus" (the names
	// av.NewVideoDecoder/NewAudioDecoder take).
	Codec string
	// Data is one access unit, owned by the receiver: H.264 as an Annex B
	// byte stream with 4-byte start codes (SPS and PPS in front of every
	// IDR), a VP8 frame, a VP9 frame or superframe (with its index when it
	// holds several spatial layers), an AV1 temporal unit of OBUs with size
	// fields, or one Opus packet.
	Data []byte
	// PTS is the capture instant on the room media clock (see Room.Now):
	// from RTCP sender reports once one arrived for the track, from the
	// arrival time before. It never decreases within a track.
	PTS time.Duration
	// Keyframe is true for frames a decoder can start from (always for
	// Opus).
	Keyframe bool
	// Width and Height are the coded size when the keyframe carries it
	// (VP8 and H.264 keyframes, VP9 with a scalability structure), else 0.
	Width, Height int
	// Discontinuity is true on the first frame after frames were lost or
	// dropped (decoders may want to reset concealment).
	Discontinuity bool
}

// Participant describes a remote participant.
type Participant struct {
	// ID is the participant's identity, unique in the room and stable
	// across reconnects (LiveKit identity, Janus feed ID).
	ID string
	// Name is the display name (the connector falls back to the identity
	// when the server has none).
	Name string
	// Metadata is the participant's free-form metadata (LiveKit), "" where
	// the server has none.
	Metadata string
	// Attributes are the participant's key/value attributes (LiveKit
	// participant attributes), nil where the server has none (Janus). The
	// map is the receiver's: the connector passes a fresh copy each call.
	Attributes map[string]string
}

// Kind is a track's media kind.
type Kind int

// Track kinds.
const (
	KindAudio Kind = iota + 1
	KindVideo
)

func (k Kind) String() string {
	switch k {
	case KindAudio:
		return "audio"
	case KindVideo:
		return "video"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Source says what a track carries.
type Source int

// Track sources, as published by the client.
const (
	SourceUnknown Source = iota
	SourceCamera
	SourceMicrophone
	SourceScreenShare
	SourceScreenShareAudio
)

func (s Source) String() string {
	switch s {
	case SourceCamera:
		return "camera"
	case SourceMicrophone:
		return "microphone"
	case SourceScreenShare:
		return "screen_share"
	case SourceScreenShareAudio:
		return "screen_share_audio"
	}
	return "unknown"
}

// SessionEventKind names a session event.
type SessionEventKind int

// Session events.
const (
	// EventFirstSpeaker: the first remote track of the session was added
	// (hosts wait for it before recording).
	EventFirstSpeaker SessionEventKind = iota + 1
	// EventRoomEmpty: the last remote participant left (not reported while
	// reconnecting, when everyone seems to leave at once).
	EventRoomEmpty
	// EventRoomOccupied: a participant joined an empty room again.
	EventRoomOccupied
	// EventReconnecting: the connection to the server was lost; the SDK is
	// resuming or rejoining.
	EventReconnecting
	// EventReconnected: the connection is back; tracks are resubscribed
	// (after a full rejoin, participants and tracks are reported again).
	EventReconnected
)

func (k SessionEventKind) String() string {
	switch k {
	case EventFirstSpeaker:
		return "first_speaker"
	case EventRoomEmpty:
		return "room_empty"
	case EventRoomOccupied:
		return "room_occupied"
	case EventReconnecting:
		return "reconnecting"
	case EventReconnected:
		return "reconnected"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// SessionEvent is a connection or occupancy change.
type SessionEvent struct {
	Kind SessionEventKind
	// At is the room-clock time of the event.
	At time.Duration
	// Participant is the identity concerned, for EventFirstSpeaker.
	Participant string
}
