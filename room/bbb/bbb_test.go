package bbb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Target
	}{
		{"bbb+https://bbb.example.org/weekly", Target{API: "https://bbb.example.org/bigbluebutton/api", MeetingID: "weekly", LiveKit: "wss://bbb.example.org/livekit"}},
		{"bbb+http://127.0.0.1:8080/x/y/m1?livekit=ws://127.0.0.1:7880&checksum=sha1", Target{API: "http://127.0.0.1:8080/x/y/bigbluebutton/api", MeetingID: "m1", LiveKit: "ws://127.0.0.1:7880", Checksum: "sha1"}},
		{"bbb+https://h/bigbluebutton/api/m2", Target{API: "https://h/bigbluebutton/api", MeetingID: "m2", LiveKit: "wss://h/livekit"}},
	} {
		got, err := ParseURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"bbb+https://host/", "bbb+ftp://host/m", "bbb+https:///m", "::"} {
		if _, err := ParseURL(bad); !errors.Is(err, room.ErrConfig) {
			t.Errorf("ParseURL(%q): %v, want ErrConfig", bad, err)
		}
	}
}

type rec struct {
	mu     sync.Mutex
	names  map[string]string
	frames atomic.Int64
	maxPTS atomic.Int64
}

func (r *rec) ParticipantJoined(p room.Participant) {
	r.mu.Lock()
	r.names[p.ID] = p.Name
	r.mu.Unlock()
}
func (r *rec) ParticipantUpdated(p room.Participant) { r.ParticipantJoined(p) }
func (r *rec) ParticipantLeft(string)                {}
func (r *rec) TrackAdded(*room.Track) room.TrackSink { return r }
func (r *rec) TrackMuted(string, bool)               {}
func (r *rec) ActiveSpeakers([]string)               {}
func (r *rec) Session(room.SessionEvent)             {}
func (r *rec) RoomClosed(error)                      {}
func (r *rec) WriteFrame(f room.Frame) {
	r.frames.Add(1)
	if int64(f.PTS) > r.maxPTS.Load() {
		r.maxPTS.Store(int64(f.PTS))
	}
}
func (r *rec) Close() {}

// fakeAPI answers getMeetingInfo for meeting "weekly" (checksum checked
// with SHA-256, the secret "s3cret") with the given internal id.
func fakeAPI(t *testing.T, internal string, calls *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		q := r.URL.RawQuery
		i := strings.LastIndex(q, "&checksum=")
		sum := sha256.Sum256([]byte("getMeetingInfo" + q[:max(i, 0)] + "s3cret"))
		switch {
		case i < 0 || q[i+len("&checksum="):] != hex.EncodeToString(sum[:]):
			fmt.Fprint(w, `<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey><message>Checksums do not match</message></response>`)
		case r.URL.Query().Get("meetingID") != "weekly":
			fmt.Fprint(w, `<response><returncode>FAILED</returncode><messageKey>notFound</messageKey><message>no such meeting</message></response>`)
		default:
			fmt.Fprintf(w, `<response><returncode>SUCCESS</returncode><meetingID>weekly</meetingID><internalMeetingID>%s</internalMeetingID><running>true</running>
<participantCount>1</participantCount><attendees><attendee><userID>w_alice1</userID><fullName>Alice Martin</fullName><role>MODERATOR</role></attendee></attendees></response>`, internal)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestStartErrors(t *testing.T) {
	var calls atomic.Int64
	api := fakeAPI(t, "int-1", &calls)
	host := strings.TrimPrefix(api.URL, "http://")
	creds := room.Credentials{Secret: "s3cret", APIKey: "k", APISecret: "s"}
	for _, c := range []struct {
		name  string
		url   string
		creds room.Credentials
		open  error
		start error
	}{
		{"no BBB secret", "bbb+http://" + host + "/weekly", room.Credentials{APIKey: "k", APISecret: "s"}, room.ErrConfig, nil},
		{"no LiveKit key", "bbb+http://" + host + "/weekly", room.Credentials{Secret: "s3cret"}, room.ErrConfig, nil},
		{"wrong secret", "bbb+http://" + host + "/weekly", room.Credentials{Secret: "nope", APIKey: "k", APISecret: "s"}, nil, room.ErrUnauthorized},
		{"unknown meeting", "bbb+http://" + host + "/other", creds, nil, room.ErrNotFound},
		{"no BBB server", "bbb+http://127.0.0.1:1/weekly", creds, nil, room.ErrUnreachable},
		{"no LiveKit server", "bbb+http://" + host + "/weekly?livekit=ws://127.0.0.1:1", creds, nil, room.ErrUnreachable},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Open(room.Config{URL: c.url, Credentials: c.creds, Handler: &rec{names: map[string]string{}}, ConnectTimeout: 2 * time.Second})
			if c.open != nil {
				if !errors.Is(err, c.open) {
					t.Fatalf("Open: %v, want %v", err, c.open)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = r.Start(ctx)
			if !errors.Is(err, c.start) {
				t.Fatalf("Start: %v, want %v", err, c.start)
			}
			for _, s := range []string{"s3cret", "nope"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("a secret is in the error: %v", err)
				}
			}
		})
	}
}

// TestJoinThroughAPI: the meeting id resolves to the internal id, which is
// the LiveKit room roomcast joins; a publisher there is received, with the
// attendee's name where LiveKit gives none.
func TestJoinThroughAPI(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	internal := "9f2b8e1d4c7a6b5e-1764500000000"
	var calls atomic.Int64
	api := fakeAPI(t, internal, &calls)
	lktest.StartPublisher(t, srv, internal, lktest.PublisherOptions{Identity: "w_alice1_1", Name: "", Video: "vp8", Audio: true})
	h := &rec{names: map[string]string{}}
	r, err := Open(room.Config{
		URL:         "bbb+" + api.URL + "/weekly?livekit=" + srv.URL,
		Credentials: room.Credentials{Secret: "s3cret", APIKey: srv.APIKey, APISecret: srv.APISecret},
		Handler:     h, ConnectTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.(*Room).Internal(); got != internal || calls.Load() != 1 {
		t.Errorf("internal id %q after %d API calls, want %q after 1", got, calls.Load(), internal)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && h.frames.Load() < 30 {
		time.Sleep(100 * time.Millisecond)
	}
	if h.frames.Load() < 30 {
		t.Fatalf("%d frames received from the meeting's LiveKit room", h.frames.Load())
	}
	h.mu.Lock()
	name := h.names["w_alice1_1"]
	h.mu.Unlock()
	if name != "Alice Martin" {
		t.Errorf("participant name %q", name)
	}
	t.Logf("participant named %q; %d frames; last PTS %v, room clock %v", name, h.frames.Load(), time.Duration(h.maxPTS.Load()), r.Now())
	if pts := time.Duration(h.maxPTS.Load()); pts > r.Now()+time.Second || pts <= 0 {
		t.Errorf("frame PTS %v is not on the room clock (now %v)", pts, r.Now())
	}

	// The announcement goes through to the meeting's LiveKit room.
	chat := make(chan string, 4)
	cb := lksdk.NewRoomCallback()
	cb.OnDataPacket = func(d lksdk.DataPacket, _ lksdk.DataReceiveParams) {
		if m, ok := d.(*livekit.ChatMessage); ok {
			chat <- m.Message
		}
	}
	listener, err := lksdk.ConnectToRoomWithToken(srv.URL, srv.Token(internal, "listener", "Listener"), cb, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Disconnect()
	an, ok := r.(room.Announcer)
	if !ok {
		t.Fatal("the BBB room is not a room.Announcer")
	}
	if err := an.Announce(ctx, room.Announcement{Text: "recorded", Recording: true}); err != nil {
		t.Fatalf("announce: %v", err)
	}
	select {
	case m := <-chat:
		if m != "recorded" {
			t.Errorf("chat %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Error("the announcement did not reach a participant of the meeting's LiveKit room")
	}
}
