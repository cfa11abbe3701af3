package livekit

import (
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/rtprecv"
)

// track is a subscribed LiveKit track: the room.Track the Handler sees, and
// the SDK objects and receive worker behind it. It is info.Control.
type track struct {
	info   *room.Track
	pub    *lksdk.RemoteTrackPublication
	remote *webrtc.TrackRemote
	w      *rtprecv.Worker
}

// RequestKeyframe sends a PLI through the server, at most once per
// Config.KeyframeInterval.
func (t *track) RequestKeyframe() { t.w.RequestKeyframe() }

// SetVideoDimensions tells the server the size the track is shown at, so
// that with simulcast it forwards the smallest layer that covers it instead
// of the largest. The server sends that layer's keyframe itself.
func (t *track) SetVideoDimensions(width, height int) {
	t.pub.SetVideoDimensions(uint32(width), uint32(height))
}

// Stats returns the receive worker's counters.
func (t *track) Stats() room.TrackStats { return t.w.Stats() }

func kindOf(k lksdk.TrackKind) room.Kind {
	if k == lksdk.TrackKindVideo {
		return room.KindVideo
	}
	return room.KindAudio
}

func sourceOf(s livekit.TrackSource) room.Source {
	switch s {
	case livekit.TrackSource_CAMERA:
		return room.SourceCamera
	case livekit.TrackSource_MICROPHONE:
		return room.SourceMicrophone
	case livekit.TrackSource_SCREEN_SHARE:
		return room.SourceScreenShare
	case livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return room.SourceScreenShareAudio
	}
	return room.SourceUnknown
}
