package janus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/consent"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/janus"
	"github.com/roomcast/roomcast/room/janus/janustest"
)

func startRoom(t *testing.T, cfg janus.Config) (*janus.Room, *recHandler) {
	t.Helper()
	h := &recHandler{}
	cfg.Handler = h
	cfg.Logger = testLogger(t)
	r, err := janus.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r, h
}

func id(p *janustest.Publisher) string { return fmt.Sprint(p.ID) }

// Two Go publishers (VP8 red + 440 Hz, H.264 blue + 880 Hz) are received
// over both transports: participants with their display names, a camera
// and a microphone track each, frames that decode to the publishers'
// colours, Opus at 50 packets/s.
func TestFramesFromGoPublishers(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{})
	red := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "Red Alice", Video: "vp8", Color: "red", Audio: true})
	blue := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "Blue Bob", Video: "h264", Color: "blue", Audio: true, ToneHz: 880})
	for _, server := range []string{s.WSURL(), s.HTTPURL()} {
		t.Run(strings.SplitN(server, ":", 2)[0], func(t *testing.T) {
			r, h := startRoom(t, janus.Config{Server: server, Room: fmt.Sprint(roomID)})
			for _, c := range []struct {
				p     *janustest.Publisher
				codec string
				rgb   [3]byte
			}{{red, "vp8", [3]byte{255, 0, 0}}, {blue, "h264", [3]byte{0, 0, 255}}} {
				waitFor(t, 15*time.Second, c.p.Display+"'s video and audio", func() bool {
					_, vs := h.track(id(c.p), room.KindVideo)
					_, as := h.track(id(c.p), room.KindAudio)
					if vs == nil || as == nil {
						return false
					}
					vf, _ := vs.snapshot()
					af, _ := as.snapshot()
					return len(vf) >= 60 && len(af) >= 100
				})
				p, ok := h.hasJoined(id(c.p))
				if !ok || p.Name != c.p.Display {
					t.Errorf("participant %s: joined=%v name %q, want %q", id(c.p), ok, p.Name, c.p.Display)
				}
				vt, vs := h.track(id(c.p), room.KindVideo)
				at, _ := h.track(id(c.p), room.KindAudio)
				if vt.Codec != c.codec || vt.Source != room.SourceCamera || vt.ParticipantName != c.p.Display {
					t.Errorf("%s video track: codec %s source %v name %q", c.p.Display, vt.Codec, vt.Source, vt.ParticipantName)
				}
				if at.Codec != "opus" || at.Source != room.SourceMicrophone {
					t.Errorf("%s audio track: codec %s source %v", c.p.Display, at.Codec, at.Source)
				}
				frames, _ := vs.snapshot()
				n, rgb := decodeCenter(t, c.codec, frames)
				if n < 50 || !near(rgb, c.rgb, 40) {
					t.Errorf("%s: %d pictures decoded, centre %v, want %v", c.p.Display, n, rgb, c.rgb)
				}
				for i := 1; i < len(frames); i++ {
					if frames[i].PTS < frames[i-1].PTS {
						t.Fatalf("%s: PTS went back at frame %d", c.p.Display, i)
					}
				}
			}
			// Media on loopback only: roomcast's side of the pair too (Janus
			// offers 127.0.0.1 only, so roomcast gathers on loopback only).
			pair, err := r.SelectedCandidatePair()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("roomcast's selected pair: local %s, remote %s", pair.Local, pair.Remote)
			if pair.LocalIP != janustest.ICEAddress || pair.RemoteIP != janustest.ICEAddress {
				t.Errorf("roomcast's selected ICE pair %s <-> %s, want both on %s", pair.Local, pair.Remote, janustest.ICEAddress)
			}
			// Janus's view (every pair is checked for 127.0.0.1 at cleanup).
			if _, ok := s.WaitSelectedPair("roomcast", 5*time.Second); !ok {
				t.Error("janus reported no selected pair for roomcast's handle")
			}
		})
	}
}

// Publishers joining, unpublishing and leaving are followed: participants
// and tracks come and go, the subscription is renegotiated each time, the
// room reports empty at the end.
func TestJoinUnpublishLeave(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{})
	_, h := startRoom(t, janus.Config{Server: s.WSURL(), Room: fmt.Sprint(roomID)})

	frames := func(p *janustest.Publisher, k room.Kind) func() bool {
		return func() bool {
			_, sink := h.track(id(p), k)
			if sink == nil {
				return false
			}
			f, _ := sink.snapshot()
			return len(f) >= 20
		}
	}
	a := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "A", Video: "vp8", Audio: true})
	waitFor(t, 15*time.Second, "A's video", frames(a, room.KindVideo))
	if !h.hasSession(room.EventFirstSpeaker) {
		t.Error("no first-speaker event")
	}
	b := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "B", Video: "vp8", Color: "green"})
	waitFor(t, 15*time.Second, "B's video (joined later: update of the subscription)", frames(b, room.KindVideo))
	_, aVideo := h.track(id(a), room.KindVideo)
	before, _ := aVideo.snapshot()

	if err := b.Unpublish(); err != nil {
		t.Fatal(err)
	}
	_, bVideo := h.track(id(b), room.KindVideo)
	waitFor(t, 10*time.Second, "B gone after unpublishing, its track closed", func() bool {
		_, closed := bVideo.snapshot()
		return h.hasLeft(id(b)) && closed
	})
	// A's media flows on through the renegotiation.
	waitFor(t, 10*time.Second, "A's video after B unpublished", func() bool {
		f, _ := aVideo.snapshot()
		return len(f) > len(before)+30
	})
	c := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "C", Video: "h264", Audio: true})
	waitFor(t, 15*time.Second, "C's audio", frames(c, room.KindAudio))
	if err := c.Leave(); err != nil {
		t.Fatal(err)
	}
	if err := a.Leave(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "A and C left, room empty", func() bool {
		return h.hasLeft(id(a)) && h.hasLeft(id(c)) && h.hasSession(room.EventRoomEmpty)
	})
	for _, k := range []room.Kind{room.KindVideo, room.KindAudio} {
		_, sink := h.track(id(a), k)
		waitFor(t, 5*time.Second, "A's sinks closed", func() bool { _, closed := sink.snapshot(); return closed })
	}
}

// In a room with audiolevel events, talking/stopped-talking become the
// active speakers.
func TestTalkingIsActiveSpeaker(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{AudioLevelEvents: true})
	a := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "A", Audio: true})
	b := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "B", Audio: true})
	_, h := startRoom(t, janus.Config{Server: s.WSURL(), Room: fmt.Sprint(roomID)})
	speakers := func(want ...string) func() bool {
		return func() bool {
			got, ok := h.lastSpeakers()
			return ok && strings.Join(got, ",") == strings.Join(want, ",")
		}
	}
	waitFor(t, 10*time.Second, "both tracks", func() bool {
		t1, _ := h.track(id(a), room.KindAudio)
		t2, _ := h.track(id(b), room.KindAudio)
		return t1 != nil && t2 != nil
	})
	a.SetSpeaking(true)
	waitFor(t, 10*time.Second, "A speaking", speakers(id(a)))
	b.SetSpeaking(true)
	waitFor(t, 10*time.Second, "B then A", speakers(id(b), id(a)))
	a.SetSpeaking(false)
	waitFor(t, 10*time.Second, "B alone", speakers(id(b)))
	b.SetSpeaking(false)
	waitFor(t, 10*time.Second, "nobody", speakers())
}

// Join failures map to the room sentinels within the connect timeout and
// never show the secret or PIN.
func TestJoinErrors(t *testing.T) {
	janustest.SkipIfShort(t)
	const secret, pin = "api-s3cret-77", "pin-4321"
	plain := janustest.Start(t)
	withSecret := janustest.StartWith(t, janustest.Options{APISecret: secret})
	pinned := plain.CreateRoom(janustest.RoomOptions{PIN: pin})
	open := withSecret.CreateRoom(janustest.RoomOptions{})
	cases := []struct {
		name string
		cfg  janus.Config
		want error
	}{
		{"no such room", janus.Config{Server: plain.WSURL(), Room: "999"}, room.ErrNotFound},
		{"no such room http", janus.Config{Server: plain.HTTPURL(), Room: "999"}, room.ErrNotFound},
		{"wrong pin", janus.Config{Server: plain.WSURL(), Room: fmt.Sprint(pinned), PIN: "x" + pin}, room.ErrUnauthorized},
		{"missing pin", janus.Config{Server: plain.WSURL(), Room: fmt.Sprint(pinned)}, room.ErrUnauthorized},
		{"wrong secret", janus.Config{Server: withSecret.WSURL(), Room: fmt.Sprint(open), APISecret: "x" + secret}, room.ErrUnauthorized},
		{"wrong secret http", janus.Config{Server: withSecret.HTTPURL(), Room: fmt.Sprint(open), APISecret: "x" + secret}, room.ErrUnauthorized},
		{"unreachable", janus.Config{Server: "ws://127.0.0.1:1", Room: "1", APISecret: secret}, room.ErrUnreachable},
	}
	for _, c := range cases {
		c.cfg.ConnectTimeout = 5 * time.Second
		c.cfg.Handler = &recHandler{}
		r, err := janus.New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = r.Start(context.Background())
		took := time.Since(start)
		_ = r.Close()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if took > c.cfg.ConnectTimeout+time.Second {
			t.Errorf("%s: took %v", c.name, took)
		}
		if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), pin)) {
			t.Errorf("%s: secret in %q", c.name, err)
		}
	}
	// The right PIN and secret work.
	for _, cfg := range []janus.Config{
		{Server: plain.WSURL(), Room: fmt.Sprint(pinned), PIN: pin},
		{Server: withSecret.HTTPURL(), Room: fmt.Sprint(open), APISecret: secret},
	} {
		startRoom(t, cfg)
	}
}

// Janus restarts mid-session: roomcast reconnects, subscribes to the
// publishers of the new server, and frames flow again.
func TestServerRestart(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{})
	a := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "A", Video: "vp8", Audio: true})
	_, h := startRoom(t, janus.Config{Server: s.WSURL(), Room: fmt.Sprint(roomID), ReconnectFor: 30 * time.Second})
	waitFor(t, 15*time.Second, "A's video", func() bool { _, sink := h.track(id(a), room.KindVideo); return sink != nil })
	a.Close()
	s.Restart()
	s.CreateRoom(janustest.RoomOptions{ID: roomID})
	a2 := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "A again", Video: "vp8", Color: "blue", Audio: true})
	waitFor(t, 30*time.Second, "reconnected, A again's frames", func() bool {
		_, sink := h.track(id(a2), room.KindVideo)
		if sink == nil {
			return false
		}
		f, _ := sink.snapshot()
		return len(f) >= 30
	})
	if !h.hasSession(room.EventReconnecting) || !h.hasSession(room.EventReconnected) {
		t.Error("no reconnecting/reconnected events")
	}
	waitFor(t, 10*time.Second, "the old A reported gone", func() bool { return h.hasLeft(id(a)) })
	_, sink := h.track(id(a2), room.KindVideo)
	frames, _ := sink.snapshot()
	if _, rgb := decodeCenter(t, "vp8", frames); !near(rgb, [3]byte{0, 0, 255}, 40) {
		t.Errorf("after the restart: centre %v, want blue", rgb)
	}
}

// A publisher whose media stops without a word to Janus: its tracks end
// after MediaTimeout while it stays a participant.
func TestVanishedPublisher(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{})
	a := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "A", Video: "vp8", Audio: true})
	_, h := startRoom(t, janus.Config{Server: s.WSURL(), Room: fmt.Sprint(roomID), MediaTimeout: 2 * time.Second})
	waitFor(t, 15*time.Second, "A's video", func() bool {
		_, sink := h.track(id(a), room.KindVideo)
		if sink == nil {
			return false
		}
		f, _ := sink.snapshot()
		return len(f) > 10
	})
	// Still flowing after longer than the timeout.
	time.Sleep(3 * time.Second)
	_, vs := h.track(id(a), room.KindVideo)
	if _, closed := vs.snapshot(); closed {
		t.Fatal("track ended while media flowed")
	}
	a.Vanish()
	gone := time.Now()
	_, as := h.track(id(a), room.KindAudio)
	waitFor(t, 6*time.Second, "A's tracks ended", func() bool {
		_, c1 := vs.snapshot()
		_, c2 := as.snapshot()
		return c1 && c2
	})
	if took := time.Since(gone); took < 1500*time.Millisecond {
		t.Errorf("tracks ended %v after the media stopped, before the 2 s timeout", took)
	}
	if h.hasLeft(id(a)) {
		t.Error("A reported gone: Janus still lists it")
	}
}

func TestParseURL(t *testing.T) {
	for _, c := range []struct{ in, server, room, pin string }{
		{"janus+ws://127.0.0.1:8188/1234", "ws://127.0.0.1:8188", "1234", ""},
		{"janus+wss://example.org/janus-ws/webinar?pin=42", "wss://example.org/janus-ws", "webinar", "42"},
		{"janus+http://127.0.0.1:8088/janus/1234", "http://127.0.0.1:8088/janus", "1234", ""},
		{"janus+http://127.0.0.1:8088/1234", "http://127.0.0.1:8088/janus", "1234", ""},
		{"janus+https://example.org/api/v1/77", "https://example.org/api/v1", "77", ""},
	} {
		server, r, pin, err := janus.ParseURL(c.in)
		if err != nil || server != c.server || r != c.room || pin != c.pin {
			t.Errorf("%s: %q %q %q %v", c.in, server, r, pin, err)
		}
	}
	for _, bad := range []string{"janus+ws://127.0.0.1:8188/", "janus+ftp://h/1", "ws://h/1", "janus+ws:///1"} {
		if _, _, _, err := janus.ParseURL(bad); !errors.Is(err, room.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", bad, err)
		}
	}
	_, _, _, err := janus.ParseURL("janus+ftp://h/1?pin=secretpin")
	if err == nil || strings.Contains(err.Error(), "secretpin") {
		t.Errorf("PIN in error %v", err)
	}
}

// A video stream described as "screen" is a screen share; a publisher
// joining a PIN room later is subscribed with the PIN.
func TestScreenShare(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.StartWith(t, janustest.Options{APISecret: "sec"})
	roomID := s.CreateRoom(janustest.RoomOptions{PIN: "1234", AudioLevelEvents: true})
	a := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "A", Video: "h264", Audio: true, PIN: "1234"})
	_, h := startRoom(t, janus.Config{Server: s.WSURL(), Room: fmt.Sprint(roomID), PIN: "1234", APISecret: "sec"})
	waitFor(t, 15*time.Second, "A's video", func() bool { tr, _ := h.track(id(a), room.KindVideo); return tr != nil })
	c := janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: "C", Video: "vp8", Color: "green", ScreenShare: true, PIN: "1234"})
	waitFor(t, 15*time.Second, "C's screen", func() bool {
		_, sink := h.track(id(c), room.KindVideo)
		if sink == nil {
			return false
		}
		f, _ := sink.snapshot()
		return len(f) > 10
	})
	tr, _ := h.track(id(c), room.KindVideo)
	if tr.Source != room.SourceScreenShare {
		t.Errorf("C's video source %v, want screen share", tr.Source)
	}
	tr, _ = h.track(id(a), room.KindVideo)
	if tr.Source != room.SourceCamera {
		t.Errorf("A's video source %v, want camera", tr.Source)
	}
}

// Headless Chromium publishing with Janus's own janus.js (Debian's
// libjs-janus-gateway): roomcast receives its camera in the fake camera's
// colour and its microphone, named by its display name; leaving is seen.
func TestChromiumPublisher(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{PIN: "2468"})
	_, h := startRoom(t, janus.Config{Server: s.HTTPURL(), Room: fmt.Sprint(roomID), PIN: "2468"})
	c := janustest.StartChromium(t, s, roomID, janustest.ChromiumOptions{Display: "Browser Bea", Color: "green", PIN: "2468"})
	feed := c.WaitFor("joined", 30*time.Second).Detail
	c.WaitFor("published", 30*time.Second)
	waitFor(t, 30*time.Second, "the browser's video and audio", func() bool {
		_, vs := h.track(feed, room.KindVideo)
		_, as := h.track(feed, room.KindAudio)
		if vs == nil || as == nil {
			return false
		}
		vf, _ := vs.snapshot()
		af, _ := as.snapshot()
		return len(vf) >= 45 && len(af) >= 50
	})
	if p, ok := h.hasJoined(feed); !ok || p.Name != "Browser Bea" {
		t.Errorf("participant %s: %v %q", feed, ok, p.Name)
	}
	vt, vs := h.track(feed, room.KindVideo)
	frames, _ := vs.snapshot()
	n, rgb := decodeCenter(t, vt.Codec, frames)
	if n < 30 || !near(rgb, [3]byte{0, 128, 0}, 50) {
		t.Errorf("browser video (%s): %d pictures, centre %v, want green", vt.Codec, n, rgb)
	}
	c.Command("leave")
	waitFor(t, 15*time.Second, "the browser left", func() bool { return h.hasLeft(feed) })
}

// TestConsentDescriptions: Janus has no participant attributes, so
// roomcast reads them from "key=value" fields of the publishers' stream
// descriptions. Behind the consent filter, bob (on the exclude list by his
// feed ID) and carol (roomcast.consent=no in her descriptions from the
// start) are never subscribed: no track of theirs is ever added. Dave
// opts out mid-session with an SDP-less configure carrying new
// descriptions: roomcast sees the update, the filter reports him gone, his
// tracks are unsubscribed (removed from the subscription, sinks closed),
// and when he opts in again they come back with frames.
func TestConsentDescriptions(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	roomID := s.CreateRoom(janustest.RoomOptions{})
	pub := func(name string, attrs map[string]string) *janustest.Publisher {
		return janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: name, Video: "vp8", Audio: true, Attributes: attrs})
	}
	alice := pub("Alice", map[string]string{"team": "blue"})
	bob := pub("Bob", nil)
	carol := pub("Carol", map[string]string{"roomcast.consent": "no"})
	dave := pub("Dave", nil)

	h := &recHandler{}
	f := consent.New(h, consent.Policy{Exclude: []string{id(bob)}}, zerolog.Nop())
	r, err := janus.New(janus.Config{Server: s.WSURL(), Room: fmt.Sprint(roomID), Handler: f, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	frames := func(p *janustest.Publisher, k room.Kind) int {
		_, s := h.track(id(p), k)
		if s == nil {
			return 0
		}
		f, _ := s.snapshot()
		return len(f)
	}
	waitFor(t, 15*time.Second, "alice's and dave's frames", func() bool {
		return frames(alice, room.KindVideo) > 30 && frames(dave, room.KindVideo) > 30 && frames(dave, room.KindAudio) > 50
	})
	if p, ok := h.hasJoined(id(alice)); !ok || p.Attributes["team"] != "blue" {
		t.Errorf("alice joined=%v with attributes %v, want team=blue from her descriptions", ok, p.Attributes)
	}
	tracksOf := func(p *janustest.Publisher) (n int) {
		for _, tr := range r.Tracks() {
			if tr.ParticipantID == id(p) {
				n++
			}
		}
		return n
	}
	if n := tracksOf(dave); n != 2 {
		t.Fatalf("dave has %d tracks received, want 2", n)
	}

	// Dave opts out.
	if err := dave.SetAttributes(map[string]string{"roomcast.consent": "no"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "dave reported gone", func() bool { return h.hasLeft(id(dave)) })
	waitFor(t, 10*time.Second, "dave's tracks unsubscribed", func() bool { return tracksOf(dave) == 0 })
	for _, k := range []room.Kind{room.KindVideo, room.KindAudio} {
		if _, sink := h.track(id(dave), k); sink != nil {
			waitFor(t, 5*time.Second, "dave's "+k.String()+" sink closed", func() bool { _, c := sink.snapshot(); return c })
		}
	}
	h.mu.Lock()
	var optedOut bool
	for _, p := range h.updated {
		optedOut = optedOut || p.ID == id(dave)
	}
	h.mu.Unlock()
	if optedOut {
		t.Error("the handler got an update of dave after his opt-out instead of nothing")
	}
	if tracksOf(alice) != 2 {
		t.Errorf("alice has %d tracks after dave's opt-out, want 2", tracksOf(alice))
	}

	// Dave opts in again: subscribed again, frames flow.
	before := len(h.tracks)
	if err := dave.SetAttributes(map[string]string{"roomcast.consent": "yes"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "dave's frames after opting in", func() bool {
		h.mu.Lock()
		n := len(h.tracks)
		h.mu.Unlock()
		return n > before && frames(dave, room.KindVideo) > 30
	})

	// Bob and carol were never received.
	for _, p := range []*janustest.Publisher{bob, carol} {
		if vt, _ := h.track(id(p), room.KindVideo); vt != nil {
			t.Errorf("%s's track reached the handler", p.Display)
		}
		if _, ok := h.hasJoined(id(p)); ok {
			t.Errorf("%s was announced to the handler", p.Display)
		}
	}
	for _, tr := range r.Tracks() {
		if tr.ParticipantID == id(bob) || tr.ParticipantID == id(carol) {
			t.Errorf("roomcast receives track %s of an excluded participant", tr.SID)
		}
	}
	if f.Excluded() < 3 {
		t.Errorf("consent filter counted %d exclusions, want ≥ 3 (bob, carol, dave)", f.Excluded())
	}
}
