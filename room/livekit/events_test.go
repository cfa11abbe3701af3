package livekit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

func (h *recHandler) sessionKinds() []room.SessionEventKind {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []room.SessionEventKind
	for _, e := range h.sessions {
		out = append(out, e.Kind)
	}
	return out
}

func (h *recHandler) joinedIDs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, p := range h.joined {
		out = append(out, p.ID)
	}
	return out
}

func (h *recHandler) mutesOf(sid string) []bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.mutes[sid])
}

func TestParticipantAndTrackEvents(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "events"
	h := newRecHandler()
	r := startRoom(t, srv, roomName, h)

	// Another recorder (visible, recorder grant) and a hidden participant
	// publish too: neither may become a tile.
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "other-recorder", Audio: true,
		Token: srv.Token(roomName, "other-recorder", "Rec", lktest.Recorder())})
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "ghost", Audio: true,
		Token: srv.Token(roomName, "ghost", "Ghost", lktest.Hidden())})

	a := lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "vp8", Audio: true})
	waitFor(t, 10*time.Second, "alice's tracks", func() bool {
		_, v := h.track("alice", room.KindVideo)
		_, s := h.track("alice", room.KindAudio)
		return v != nil && s != nil && v.count() > 10
	})
	if k := h.sessionKinds(); len(k) == 0 || k[0] != room.EventFirstSpeaker {
		t.Fatalf("session events %v, want first_speaker first", k)
	}
	vt, vs := h.track("alice", room.KindVideo)

	// Mute video: the event arrives, frames stop, LiveKit's blank
	// keyframes are swallowed; unmute: frames resume from a keyframe.
	if err := a.Mute("video", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "mute event", func() bool { return slices.Equal(h.mutesOf(vt.SID), []bool{true}) })
	time.Sleep(500 * time.Millisecond)
	n := vs.count()
	time.Sleep(500 * time.Millisecond)
	if vs.count() != n {
		t.Errorf("%d frames while muted", vs.count()-n)
	}
	if err := a.Mute("video", false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "unmute event", func() bool { return slices.Equal(h.mutesOf(vt.SID), []bool{true, false}) })
	waitFor(t, 5*time.Second, "frames after unmute", func() bool { return vs.count() > n+10 })
	frames, _, _ := vs.snapshot()
	if !frames[n].Keyframe {
		t.Errorf("first frame after unmute is not a keyframe")
	}
	for _, f := range frames {
		if f.Keyframe && f.Width <= 16 {
			t.Errorf("a %dx%d placeholder keyframe reached the sink", f.Width, f.Height)
		}
	}
	t.Logf("video stats after mute/unmute: %+v", vt.Stats())

	// Unpublish video: its sink is closed (LiveKit's closing blank frames
	// are swallowed).
	if err := a.Unpublish("video"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "video sink closed", func() bool { _, _, c := vs.snapshot(); return c })
	t.Logf("video stats at close: %+v", vt.Stats())
	frames, _, _ = vs.snapshot()
	for _, f := range frames {
		if f.Keyframe && f.Width <= 16 {
			t.Errorf("a %dx%d placeholder keyframe reached the sink", f.Width, f.Height)
		}
	}

	// Alice leaves: ParticipantLeft, audio sink closed, room empty.
	_, as := h.track("alice", room.KindAudio)
	a.Close()
	waitFor(t, 10*time.Second, "alice left", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Contains(h.left, "alice")
	})
	waitFor(t, 5*time.Second, "audio sink closed", func() bool { _, _, c := as.snapshot(); return c })
	waitFor(t, 5*time.Second, "room empty", func() bool { return slices.Contains(h.sessionKinds(), room.EventRoomEmpty) })

	// Bob comes: the room is occupied again.
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "bob", Audio: true})
	waitFor(t, 10*time.Second, "room occupied", func() bool { return slices.Contains(h.sessionKinds(), room.EventRoomOccupied) })

	if ids := h.joinedIDs(); !slices.Equal(ids, []string{"alice", "bob"}) {
		t.Errorf("joined %v, want [alice bob] (no recorder, hidden participant or self)", ids)
	}
	h.mu.Lock()
	t.Logf("event log: %s", strings.Join(h.log, ", "))
	h.mu.Unlock()
	_ = r
}

func TestActiveSpeakers(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "speakers"
	h := newRecHandler()
	startRoom(t, srv, roomName, h)
	a := lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "alice", Audio: true, Speaking: true})
	b := lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "bob", Audio: true})
	last := func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.speakers) == 0 {
			return nil
		}
		return h.speakers[len(h.speakers)-1]
	}
	waitFor(t, 10*time.Second, "alice speaking", func() bool { return slices.Equal(last(), []string{"alice"}) })
	a.SetSpeaking(false)
	b.SetSpeaking(true)
	waitFor(t, 10*time.Second, "bob speaking", func() bool { l := last(); return len(l) > 0 && l[0] == "bob" })
	b.SetSpeaking(false)
	waitFor(t, 10*time.Second, "silence", func() bool { return len(last()) == 0 })
	h.mu.Lock()
	t.Logf("speaker updates: %v", h.speakers)
	h.mu.Unlock()
}

func TestJoinErrors(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	// A port nothing listens on.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "ws://" + l.Addr().String()
	l.Close()

	// A server that accepts connections and never answers.
	mute, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	otherSecret := strings.Repeat("x", 48)
	badToken, _ := lktest.MintToken(srv.APIKey, otherSecret, "r", "me", "me")
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"token signed with another secret", Config{URL: srv.URL, Token: badToken}, ErrUnauthorized},
		{"wrong API secret", Config{URL: srv.URL, Room: "r", APIKey: srv.APIKey, APISecret: otherSecret}, ErrUnauthorized},
		{"unknown API key", Config{URL: srv.URL, Room: "r", APIKey: "nokey", APISecret: srv.APISecret}, ErrUnauthorized},
		{"expired token", Config{URL: srv.URL, Token: srv.ExpiredToken("r", "me")}, ErrUnauthorized},
		{"token for another room", Config{URL: srv.URL, Room: "elsewhere", Token: srv.Token("r", "me", "me")}, ErrRoomMismatch},
		{"not a token", Config{URL: srv.URL, Token: "garbage"}, ErrUnauthorized},
		{"server unreachable", Config{URL: deadURL, Room: "r", APIKey: srv.APIKey, APISecret: srv.APISecret}, ErrConnect},
		{"server never answers", Config{URL: "ws://" + mute.Addr().String(), Room: "r", APIKey: srv.APIKey, APISecret: srv.APISecret,
			ConnectTimeout: 3 * time.Second}, ErrConnect},
		{"no credentials", Config{URL: srv.URL, Room: "r"}, ErrConfig},
		{"bad URL", Config{URL: "ftp://x", Room: "r", Token: "a.b.c"}, ErrConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Handler = newRecHandler()
			c.cfg.Logger = testLogger(t)
			start := time.Now()
			r, err := New(c.cfg)
			if err == nil {
				err = r.Start(context.Background())
				defer r.Close()
			}
			took := time.Since(start)
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if took > 10*time.Second {
				t.Errorf("took %v", took)
			}
			for _, secret := range []string{srv.APISecret, otherSecret, badToken, c.cfg.Token} {
				if len(secret) > 8 && strings.Contains(err.Error(), secret) {
					t.Errorf("error text leaks a secret: %v", err)
				}
			}
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
		})
	}
}

func TestSelectedCandidatePairIsLoopback(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	h := newRecHandler()
	r := startRoom(t, srv, "ice", h)
	lktest.StartPublisher(t, srv, "ice", lktest.PublisherOptions{Identity: "alice", Audio: true})
	waitFor(t, 10*time.Second, "audio", func() bool { _, s := h.track("alice", room.KindAudio); return s != nil && s.count() > 5 })
	pair, err := r.SelectedCandidatePair()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("selected pair: local %s, remote %s", pair.Local, pair.Remote)
	if pair.RemoteIP != "127.0.0.1" || pair.RemotePort != srv.UDPPort && pair.RemotePort != srv.TCPPort {
		t.Fatalf("remote (server) candidate %s, want 127.0.0.1:%d", pair.Remote, srv.UDPPort)
	}
}

func TestRoomClosedByServer(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	h := newRecHandler()
	r := startRoom(t, srv, "closing", h)
	lktest.StartPublisher(t, srv, "closing", lktest.PublisherOptions{Identity: "alice", Audio: true})
	waitFor(t, 10*time.Second, "audio", func() bool { _, s := h.track("alice", room.KindAudio); return s != nil && s.count() > 5 })
	srv.DeleteRoom("closing")
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("room not done 10 s after deletion")
	}
	if !errors.Is(r.Err(), ErrRoomClosed) {
		t.Fatalf("Err() = %v", r.Err())
	}
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if !errors.Is(closed, ErrRoomClosed) {
		t.Fatalf("RoomClosed(%v)", closed)
	}
	_, s := h.track("alice", room.KindAudio)
	waitFor(t, 5*time.Second, "sink closed", func() bool { _, _, c := s.snapshot(); return c })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLipSyncFromSenderReports: two publishers capture numbered audio
// packets on one wall clock with unrelated RTP timestamp bases; one sends
// each packet 300 ms after capturing it (its sender reports say so). The
// same capture instant must get the same PTS, although the packets arrive
// 300 ms apart.
func TestLipSyncFromSenderReports(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "sync"
	h := newRecHandler()
	h.keepData = true
	startRoom(t, srv, roomName, h)
	epoch := time.Now().Add(200 * time.Millisecond)
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "near", Audio: true, SyntheticAudio: true,
		Epoch: epoch, AudioRTPBase: 12345})
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "far", Audio: true, SyntheticAudio: true,
		Epoch: epoch, AudioRTPBase: 4294967295 - 48000, CaptureDelay: 300 * time.Millisecond})

	// LiveKit sends subscribers a sender report every few seconds; the
	// first one moves the far publisher's mapping back by its 300 ms delay,
	// which is slewed away at 10% (3 s of media). Judge the instants after
	// that.
	var srAt time.Time
	waitFor(t, 15*time.Second, "sender reports on both tracks", func() bool {
		a, _ := h.track("near", room.KindAudio)
		b, _ := h.track("far", room.KindAudio)
		if a == nil || b == nil || a.Stats().SenderReports == 0 || b.Stats().SenderReports == 0 {
			return false
		}
		srAt = time.Now()
		return true
	})
	time.Sleep(5 * time.Second)
	byIndex := func(id string) (map[uint32]time.Duration, map[uint32]time.Time) {
		_, s := h.track(id, room.KindAudio)
		frames, arrivals, _ := s.snapshot()
		pts, arr := map[uint32]time.Duration{}, map[uint32]time.Time{}
		for i, f := range frames {
			if len(f.Data) >= 5 {
				k := binary.BigEndian.Uint32(f.Data[1:5])
				pts[k], arr[k] = f.PTS, arrivals[i]
			}
		}
		return pts, arr
	}
	pn, an := byIndex("near")
	pf, af := byIndex("far")
	var ks []uint32
	for k := range pn {
		if _, ok := pf[k]; ok && an[k].After(srAt.Add(3500*time.Millisecond)) {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	if len(ks) < 40 {
		t.Fatalf("only %d capture instants in common after the sender reports", len(ks))
	}
	var worst, arrivalGap time.Duration
	for _, k := range ks {
		d := (pn[k] - pf[k]).Abs()
		worst = max(worst, d)
		arrivalGap += af[k].Sub(an[k])
	}
	arrivalGap /= time.Duration(len(ks))
	t.Logf("%d instants: worst PTS difference %v; packets of one instant arrive %v apart on average", len(ks), worst, arrivalGap)
	if arrivalGap < 250*time.Millisecond {
		t.Fatalf("the delayed publisher's packets arrive only %v later: the test would not tell arrival from capture time", arrivalGap)
	}
	if worst > 20*time.Millisecond {
		t.Fatalf("same capture instant, PTS up to %v apart (want ≤ 20 ms)", worst)
	}
	// Moving the mapping back never bunched packets up: once the reports
	// are in, consecutive 20 ms packets stay at least 18 ms apart (10%
	// slew). (Before, the server itself may squeeze a timestamp while it
	// aligns its timeline to the publisher's first report.)
	for _, id := range []string{"near", "far"} {
		_, s := h.track(id, room.KindAudio)
		frames, arrivals, _ := s.snapshot()
		for i := 1; i < len(frames); i++ {
			if arrivals[i-1].Before(srAt) {
				continue
			}
			if d := frames[i].PTS - frames[i-1].PTS; d < 17900*time.Microsecond {
				t.Fatalf("%s: packets %d and %d only %v apart", id, i-1, i, d)
			}
		}
	}
	for _, id := range []string{"near", "far"} {
		tr, _ := h.track(id, room.KindAudio)
		if st := tr.Stats(); st.SenderReports == 0 {
			t.Errorf("%s: no sender reports: %+v", id, st)
		}
	}
}

// TestServerRestart: livekit-server is killed and started again on the same
// ports mid-session. roomcast reconnects (rejoining the new server), the
// publisher comes back, and frames flow again on new tracks.
func TestServerRestart(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "restart"
	h := newRecHandler()
	r := startRoom(t, srv, roomName, h)
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "alice", Video: "h264", Audio: true})
	bob := lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "bob", Audio: true})
	waitFor(t, 10*time.Second, "frames before the restart", func() bool {
		_, v := h.track("alice", room.KindVideo)
		_, b := h.track("bob", room.KindAudio)
		return v != nil && v.count() > 20 && b != nil && b.count() > 20
	})
	oldVideo, _ := h.track("alice", room.KindVideo)

	// Bob leaves while the server is down: he never rejoins.
	killed := time.Now()
	srv.Stop()
	bob.Close()
	srv.Start()
	t.Logf("server restarted in %v", time.Since(killed).Round(time.Millisecond))

	waitFor(t, 40*time.Second, "frames on a new video track", func() bool {
		v, s := h.track("alice", room.KindVideo)
		return v != nil && v != oldVideo && s.count() > 10
	})
	resumed := time.Since(killed)
	_, s := h.track("alice", room.KindVideo)
	frames, _, _ := s.snapshot()
	if !frames[0].Keyframe {
		t.Errorf("first frame after the restart is not a keyframe")
	}
	_, a := h.track("alice", room.KindAudio)
	waitFor(t, 10*time.Second, "audio after the restart", func() bool { return a != nil && a.count() > 10 })
	kinds := h.sessionKinds()
	h.mu.Lock()
	t.Logf("frames resumed %v after the kill; events: %s", resumed.Round(time.Millisecond), strings.Join(h.log, ", "))
	h.mu.Unlock()
	if !slices.Contains(kinds, room.EventReconnecting) || !slices.Contains(kinds, room.EventReconnected) {
		t.Errorf("session events %v, want reconnecting and reconnected", kinds)
	}
	waitFor(t, 15*time.Second, "bob reported gone", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Contains(h.left, "bob")
	})
	h.mu.Lock()
	if slices.Contains(h.left, "alice") {
		t.Errorf("alice reported gone: %v", h.log)
	}
	h.mu.Unlock()
	select {
	case <-r.Done():
		t.Fatalf("room ended: %v", r.Err())
	default:
	}
}

// TestGarbageDoesNotStall: publishers sending random RTP payloads on VP8 and
// H.264 tracks neither crash roomcast nor hold up a good publisher.
func TestGarbageDoesNotStall(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "garbage"
	h := newRecHandler()
	r := startRoom(t, srv, roomName, h)
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "mallory-vp8", Video: "vp8", Garbage: true, Audio: true})
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "mallory-h264", Video: "h264", Garbage: true})
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "alice", Video: "vp8", Audio: true})
	waitFor(t, 10*time.Second, "alice's video", func() bool { _, s := h.track("alice", room.KindVideo); return s != nil && s.count() > 5 })
	_, s := h.track("alice", room.KindVideo)
	n := s.count()
	time.Sleep(4 * time.Second)
	frames, _, _ := s.snapshot()
	checkRate(t, "alice next to garbage", frames[n:], 30)
	for _, id := range []string{"mallory-vp8", "mallory-h264"} {
		tr, _ := h.track(id, room.KindVideo)
		if tr == nil {
			t.Fatalf("%s: no track", id)
		}
		st := tr.Stats()
		t.Logf("%s: %+v", id, st)
		if st.Packets == 0 {
			t.Errorf("%s: no packets reached roomcast", id)
		}
	}
	closed := make(chan struct{})
	go func() { _ = r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
}

// TestLossRecovery: a publisher loses 3% of its video packets for good (no
// retransmission can repair them). Broken frames never reach the sink: after
// every loss the next frame handed over is a keyframe, obtained by PLI.
func TestLossRecovery(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "loss"
	h := newRecHandler()
	startRoom(t, srv, roomName, h)
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "lossy", Video: "h264", Width: 640, Height: 360, DropVideo: 0.03})
	waitFor(t, 10*time.Second, "video", func() bool { _, s := h.track("lossy", room.KindVideo); return s != nil && s.count() > 0 })
	time.Sleep(5 * time.Second)
	tr, s := h.track("lossy", room.KindVideo)
	frames, _, _ := s.snapshot()
	st := tr.Stats()
	t.Logf("%d frames; %+v", len(frames), st)
	if st.Lost == 0 || st.KeyframeRequests < 2 {
		t.Fatalf("no loss seen or no keyframe asked for: %+v", st)
	}
	recoveries := 0
	for i, f := range frames {
		if i == 0 || f.Discontinuity {
			if !f.Keyframe {
				t.Fatalf("frame %d follows a loss but is not a keyframe", i)
			}
			recoveries++
		}
	}
	if recoveries < 2 || len(frames) < 30 {
		t.Fatalf("%d recoveries, %d frames", recoveries, len(frames))
	}
}

func TestRoomNotFound(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServerWith(t, lktest.ServerOptions{NoAutoCreate: true})
	r, err := New(Config{URL: srv.URL, Room: "nowhere", APIKey: srv.APIKey, APISecret: srv.APISecret, Handler: newRecHandler(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = r.Start(context.Background())
	defer r.Close()
	t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
	if !errors.Is(err, ErrRoomNotFound) {
		t.Fatalf("error %v, want ErrRoomNotFound", err)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecretsNeverLogged joins with an API secret, with a token, and with a
// token the server rejects (and echoes back), logging everything at trace
// level: neither the secret nor any token may appear.
func TestSecretsNeverLogged(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.TraceLevel)
	lktest.StartPublisher(t, srv, "secret", lktest.PublisherOptions{Identity: "alice", Audio: true})
	goodToken := srv.Token("secret", "viewer", "Viewer", lktest.Hidden())
	badToken, _ := lktest.MintToken(srv.APIKey, strings.Repeat("y", 40), "secret", "x", "x")
	for _, cfg := range []Config{
		{URL: srv.URL, Room: "secret", APIKey: srv.APIKey, APISecret: srv.APISecret},
		{URL: srv.URL, Token: goodToken},
		{URL: srv.URL, Token: badToken},
	} {
		h := newRecHandler()
		cfg.Handler, cfg.Logger = h, log
		r, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background()); err == nil {
			waitFor(t, 10*time.Second, "audio", func() bool { _, s := h.track("alice", room.KindAudio); return s != nil && s.count() > 10 })
		} else {
			log.Error().Err(err).Msg("start failed")
		}
		_ = r.Close()
	}
	out := logs.String()
	if len(out) < 1000 {
		t.Fatalf("only %d bytes of log: the test logs too little to mean anything", len(out))
	}
	for name, secret := range map[string]string{"API secret": srv.APISecret, "token": goodToken, "rejected token": badToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the %s appears in the log", name)
		}
	}
	if strings.Contains(out, "eyJ") {
		i := strings.Index(out, "eyJ")
		t.Errorf("something JWT-shaped is logged: ...%s...", out[max(0, i-80):min(len(out), i+40)])
	}
	t.Logf("%d bytes of trace log checked", len(out))
}

func TestLifecycle(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	cfg := Config{URL: srv.URL, Room: "life", APIKey: srv.APIKey, APISecret: srv.APISecret, Handler: newRecHandler(), Logger: testLogger(t)}

	// Close without Start, twice.
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed")
	}
	if err := r.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}

	// Start twice; Close from another goroutine while joining.
	r, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); !errors.Is(err, ErrConfig) {
		t.Fatalf("second Start: %v", err)
	}
	_ = r.Close()
	_ = r.Close()

	// Close racing Start at various points of the join.
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 60 * time.Millisecond} {
		r, err = New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan error, 1)
		go func() { started <- r.Start(context.Background()) }()
		time.Sleep(d)
		_ = r.Close()
		select {
		case err := <-started:
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("Close after %v: Start returned %v", d, err)
			}
			t.Logf("Close after %v: Start returned %v", d, err)
		case <-time.After(15 * time.Second):
			t.Fatal("Start hangs after Close")
		}
		select {
		case <-r.Done():
		default:
			t.Fatal("Done not closed after Close")
		}
	}
}

// TestParticipantAttributes: a participant's attributes and metadata from
// its token reach ParticipantJoined, and a later change of its attributes
// comes as ParticipantUpdated with the whole current set.
func TestParticipantAttributes(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "attributes"
	h := newRecHandler()
	startRoom(t, srv, roomName, h)

	tok := srv.Token(roomName, "dora", "Dora",
		lktest.Attributes(map[string]string{"consent": "no", "role": "guest"}), lktest.Metadata(`{"seat":"1A"}`))
	p, err := lksdk.ConnectToRoomWithToken(srv.URL, tok, nil, lksdk.WithAutoSubscribe(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Disconnect)
	waitFor(t, 10*time.Second, "dora joined", func() bool { return slices.Contains(h.joinedIDs(), "dora") })
	h.mu.Lock()
	var joined room.Participant
	for _, j := range h.joined {
		if j.ID == "dora" {
			joined = j
		}
	}
	h.mu.Unlock()
	if joined.Name != "Dora" || joined.Metadata != `{"seat":"1A"}` ||
		!maps.Equal(joined.Attributes, map[string]string{"consent": "no", "role": "guest"}) {
		t.Fatalf("joined %+v", joined)
	}

	p.LocalParticipant.SetAttributes(map[string]string{"consent": "yes"})
	want := map[string]string{"consent": "yes", "role": "guest"}
	waitFor(t, 10*time.Second, "attributes update", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, u := range h.updated {
			if u.ID == "dora" && maps.Equal(u.Attributes, want) {
				return true
			}
		}
		return false
	})
}

// A refused dial is a network failure even when the SDK reports it as a
// failed token validation; a 401 stays unauthorized.
func TestClassifyJoinError(t *testing.T) {
	r := &Room{red: redactor{Secrets: []string{"s3cret-api-key"}}}
	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/rtc/validate",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, c := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("unauthorized: %w", refused), ErrConnect},
		{errors.New(`unauthorized: Get "http://127.0.0.1:35401/rtc/validate": dial tcp 127.0.0.1:35401: connect: connection refused`), ErrConnect},
		{errors.New("unauthorized: invalid token: s3cret-api-key"), ErrUnauthorized},
		{errors.New("websocket: bad handshake (HTTP 401)"), ErrUnauthorized},
		{errors.New("could not find room: 404"), ErrRoomNotFound},
	} {
		got := r.classifyJoinError(c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("%q classified as %v, want %v", c.err, got, c.want)
		}
		if strings.Contains(got.Error(), "s3cret-api-key") {
			t.Errorf("secret in %q", got)
		}
	}
}
