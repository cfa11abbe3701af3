package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/janus"
	"github.com/roomcast/roomcast/room/livekit"
)

type nopHandler struct{}

func (nopHandler) ParticipantJoined(room.Participant)    {}
func (nopHandler) ParticipantUpdated(room.Participant)   {}
func (nopHandler) ParticipantLeft(string)                {}
func (nopHandler) TrackAdded(*room.Track) room.TrackSink { return nil }
func (nopHandler) TrackMuted(string, bool)               {}
func (nopHandler) ActiveSpeakers([]string)               {}
func (nopHandler) Session(room.SessionEvent)             {}
func (nopHandler) RoomClosed(error)                      {}

func TestScheme(t *testing.T) {
	for in, want := range map[string]string{
		"wss://lk.example.org/room":      "wss",
		"LiveKit+WSS://lk.example.org/r": "livekit+wss",
		"janus+ws://127.0.0.1:8188/1234": "janus+ws",
		"demo:4":                         "demo",
		"weekly-webinar":                 "",
		":nothing":                       "",
		"a b:c":                          "",
	} {
		if got := Scheme(in); got != want {
			t.Errorf("Scheme(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenLiveKit: every LiveKit scheme opens a *livekit.Room (nothing
// connects before Start); Close without Start is fine.
func TestOpenLiveKit(t *testing.T) {
	for _, u := range []string{"ws://127.0.0.1:7880/r", "wss://lk.example.org/a/r", "https://lk.example.org/r", "livekit+wss://lk.example.org/r"} {
		r, err := Open(room.Config{URL: u, Handler: nopHandler{}, Credentials: room.Credentials{APIKey: "k", APISecret: "s"}})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if _, ok := r.(*livekit.Room); !ok {
			t.Errorf("%s: got %T, want *livekit.Room", u, r)
		}
		if err := r.Close(); err != nil {
			t.Errorf("%s: Close: %v", u, err)
		}
	}
}

// TestOpenJanus: the janus+ schemes open a *janus.Room.
func TestOpenJanus(t *testing.T) {
	for _, u := range []string{"janus+ws://127.0.0.1:8188/1234", "janus+wss://j.example.org/ws/1234?pin=1", "janus+http://127.0.0.1:8088/janus/7", "janus+https://j.example.org/7"} {
		r, err := Open(room.Config{URL: u, Handler: nopHandler{}})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if _, ok := r.(*janus.Room); !ok {
			t.Errorf("%s: got %T, want *janus.Room", u, r)
		}
		if err := r.Close(); err != nil {
			t.Errorf("%s: Close: %v", u, err)
		}
	}
}

// TestOpenErrors: what Open cannot use is a configuration error (exit 2),
// and no secret appears in the message.
func TestOpenErrors(t *testing.T) {
	creds := room.Credentials{Token: "tok-SECRET-123", APISecret: "api-SECRET-456"}
	for _, c := range []struct{ url, want string }{
		{"weekly-webinar", "has no scheme"},
		{"ftp://host/r", `no connector for "ftp"`},
		{"wss://lk.example.org/", "names no room"},
		{"wss://lk.example.org/r", "need a token"}, // no credentials
	} {
		cfg := room.Config{URL: c.url, Handler: nopHandler{}, Credentials: creds}
		if c.want == "need a token" {
			cfg.Credentials = room.Credentials{}
		}
		_, err := Open(cfg)
		if !errors.Is(err, room.ErrConfig) {
			t.Errorf("%s: error %v, want room.ErrConfig", c.url, err)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q, want it to say %q", c.url, err, c.want)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: secret in error %q", c.url, err)
		}
	}
}

// TestSentinelKinds: a connector's precise sentinels match their room kind,
// which the command maps to exit codes.
func TestSentinelKinds(t *testing.T) {
	for _, c := range []struct{ err, kind error }{
		{livekit.ErrConfig, room.ErrConfig},
		{livekit.ErrUnauthorized, room.ErrUnauthorized},
		{livekit.ErrRoomMismatch, room.ErrUnauthorized},
		{livekit.ErrRoomNotFound, room.ErrNotFound},
		{livekit.ErrConnect, room.ErrUnreachable},
		{livekit.ErrRoomClosed, room.ErrRoomClosed},
		{livekit.ErrDisconnected, room.ErrDisconnected},
		{livekit.ErrClosed, room.ErrClosed},
	} {
		if !errors.Is(c.err, c.kind) {
			t.Errorf("%v is not a %v", c.err, c.kind)
		}
		if errors.Is(c.err, room.ErrConfig) != (c.kind == room.ErrConfig) {
			t.Errorf("%v: ErrConfig match wrong", c.err)
		}
	}
	if errors.Is(livekit.ErrRoomMismatch, livekit.ErrUnauthorized) {
		t.Error("ErrRoomMismatch matches livekit.ErrUnauthorized")
	}
}
