package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/janus/janustest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
	"github.com/roomcast/roomcast/rtmp"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func smallPipeline() recorder.Config {
	return recorder.Config{Compositor: compositor.Config{Width: 320, Height: 180, FPS: 15}}
}

// probeDuration reads a file's duration with ffprobe.
func probeDuration(t *testing.T, path string) time.Duration {
	t.Helper()
	d := mediatest.MustProbe(t, path, "-show_format").Format.Duration
	s := mediatest.Secs(d)
	if math.IsNaN(s) {
		t.Fatalf("ffprobe %s: duration %q", path, d)
	}
	return time.Duration(s * float64(time.Second))
}

// Several broadcasts in one process, from two LiveKit rooms, a Janus
// VideoRoom and a demo room, each record their own file, and each
// session's log holds only its own room's lines: its connector's, the
// LiveKit SDK's, pion's and FFmpeg's included.
func TestSessionsIsolated(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	jsrv := janustest.Start(t)
	jroom := jsrv.CreateRoom(janustest.RoomOptions{ID: 987654321})
	janustest.StartPublisher(t, jsrv, jroom, janustest.PublisherOptions{Display: "Carol Gamma", Video: "vp8", Color: "green", Audio: true})
	lktest.StartPublisher(t, srv, "room-alpha", lktest.PublisherOptions{Identity: "alice-alpha", Name: "Alice Alpha", Video: "h264", Audio: true, Speaking: true})
	lktest.StartPublisher(t, srv, "room-beta", lktest.PublisherOptions{Identity: "bob-beta", Name: "Bob Beta", Video: "vp8", Color: "blue", Audio: true, Speaking: true})
	dir := t.TempDir()

	type run struct {
		name, url string
		creds     *room.Credentials // default: the LiveKit server's key and secret
		own       []string          // must appear in the session's log
		foreign   []string          // words of the other sessions
		buf       syncBuffer
		s         *Session
		events    []Event
		mu        sync.Mutex
	}
	runs := []*run{
		{name: "alpha", url: srv.URL + "/room-alpha", own: []string{"room-alpha", "alice-alpha", `"component":"ffmpeg"`, `"component":"livekit"`, `"sdk":`}},
		{name: "beta", url: srv.URL + "/room-beta", own: []string{"room-beta", "bob-beta", `"component":"ffmpeg"`, `"component":"livekit"`, `"sdk":`}},
		{name: "gamma", url: fmt.Sprintf("janus+ws://127.0.0.1:%d/%d", jsrv.WSPort, jroom), creds: &room.Credentials{},
			own: []string{"987654321", "Carol Gamma", `"component":"ffmpeg"`, `"component":"janus"`}},
		{name: "demo", url: "demo:?speakers=2&busy=1", own: []string{"Ada Lovelace", `"component":"ffmpeg"`}},
	}
	for _, r := range runs {
		for _, o := range runs {
			if o != r {
				r.foreign = append(r.foreign, o.name+".mp4")
				for _, w := range o.own {
					if !strings.HasPrefix(w, `"`) {
						r.foreign = append(r.foreign, w)
					}
				}
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, r := range runs {
		var err error
		creds := room.Credentials{APIKey: srv.APIKey, APISecret: srv.APISecret}
		if r.creds != nil {
			creds = *r.creds
		}
		r.s, err = New(Config{
			Room:        r.url,
			Credentials: creds,
			Pipeline:    smallPipeline(),
			Outputs:     Outputs{MP4: filepath.Join(dir, r.name+".mp4")},
			Duration:    4 * time.Second,
			Log:         zerolog.New(&r.buf).Level(zerolog.DebugLevel).With().Str("session", r.name).Logger(),
			OnEvent: func(e Event) {
				r.mu.Lock()
				r.events = append(r.events, e)
				r.mu.Unlock()
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.s.Start(ctx); err != nil {
				t.Errorf("%s: start: %v", r.name, err)
			}
		}()
	}
	wg.Wait()
	// While recording, every session reports itself: poll until each has
	// shown a full status (encoder output and rates lag the start by the
	// x264 lookahead and a sampling period). All sessions are polled at
	// once: polled one after the other, the last could be done already.
	var pollWG sync.WaitGroup
	for _, r := range runs {
		pollWG.Add(1)
		go func() {
			defer pollWG.Done()
			var st Status
			good := func() bool {
				st = r.s.Status()
				return st.State == StateRecording && st.Speakers >= 1 && st.FramesOut > 0 && st.OutputFPS > 0 && st.Bitrate > 0 &&
					len(st.Outputs) == 1 && st.Outputs[0].Name == "mp4" && st.Outputs[0].Packets > 0 && st.Recording != ""
			}
			for !good() && st.State != StateDone && st.State != StateFailed {
				time.Sleep(100 * time.Millisecond)
			}
			if !good() {
				t.Errorf("%s: never a full status while recording; last: %+v", r.name, st)
			}
		}()
	}
	pollWG.Wait()
	for _, r := range runs {
		if err := r.s.Wait(); err != nil {
			t.Errorf("%s: %v", r.name, err)
		}
		if st := r.s.Status(); st.State != StateDone {
			t.Errorf("%s: final state %s", r.name, st.State)
		}
		if d := probeDuration(t, filepath.Join(dir, r.name+".mp4")); d < 3800*time.Millisecond || d > 4300*time.Millisecond {
			t.Errorf("%s: recording holds %v, want 4 s", r.name, d)
		}
		r.mu.Lock()
		var kinds []string
		for _, e := range r.events {
			kinds = append(kinds, string(e.Kind))
		}
		r.mu.Unlock()
		want := "joined started recording-ready stopped"
		if r.name == "demo" {
			want = "started recording-ready stopped"
		}
		if got := strings.Join(kinds, " "); got != want {
			t.Errorf("%s: events %q, want %q", r.name, got, want)
		}
		log := r.buf.String()
		for _, w := range r.own {
			if !strings.Contains(log, w) {
				t.Errorf("%s: its log lacks %s", r.name, w)
			}
		}
		for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m["session"] != r.name {
				t.Errorf("%s: foreign or broken line %q", r.name, line)
				continue
			}
			for _, f := range r.foreign {
				if strings.Contains(line, f) {
					t.Errorf("%s: a line of another session (%s): %s", r.name, f, line)
				}
			}
		}
	}
}

// A room that cannot be joined is an ErrRoom (and still the room's own
// sentinel), returned by Start within the connect timeout, leaving no file.
func TestSessionJoinErrorClassified(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	out := filepath.Join(t.TempDir(), "x.mp4")
	s, err := New(Config{
		Room: srv.URL + "/lobby", Credentials: room.Credentials{APIKey: srv.APIKey, APISecret: strings.Repeat("0", 32)},
		Pipeline: smallPipeline(), Outputs: Outputs{MP4: out}, ConnectTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start(context.Background())
	if !errors.Is(err, ErrRoom) || !errors.Is(err, room.ErrUnauthorized) {
		t.Fatalf("Start: %v, want ErrRoom and room.ErrUnauthorized", err)
	}
	if err := s.Wait(); !errors.Is(err, ErrRoom) {
		t.Errorf("Wait: %v", err)
	}
	if st := s.Status(); st.State != StateFailed || st.Err == nil {
		t.Errorf("status %+v", st)
	}
	if _, serr := exec.Command("test", "-e", out).Output(); serr == nil {
		t.Error("a failed join left a file")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Outputs: Outputs{MP4: "x.mp4"}},
		{Room: "demo:"},
		{Room: "demo:?speakers=40", Outputs: Outputs{MP4: "x.mp4"}},
		{Room: "demo:?colour=red", Outputs: Outputs{MP4: "x.mp4"}},
		{Room: "demo:", Outputs: Outputs{Streams: []Stream{{URL: "http://not-rtmp/x"}}}},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}

// A demo session stops on request (Stop) or at its end time (Until) and
// finalises its file; Stop before anything was recorded leaves nothing.
func TestDemoSessionStopRules(t *testing.T) {
	dir := t.TempDir()
	start := func(name string, cfg Config) (*Session, string) {
		t.Helper()
		cfg.Room = "demo:?speakers=3"
		cfg.Pipeline = smallPipeline()
		cfg.Outputs = Outputs{MP4: filepath.Join(dir, name+".mp4")}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s, cfg.Outputs.MP4
	}
	untilAt := time.Now().Add(2 * time.Second)
	until, untilPath := start("until", Config{Until: untilAt})
	stopped, stopPath := start("stop", Config{})
	// Stop once something was recorded (a loaded machine starts late).
	for deadline := time.Now().Add(30 * time.Second); stopped.Status().Elapsed < time.Second && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stopped.Stop()
	stopped.Stop() // idempotent
	if err := stopped.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := until.Wait(); err != nil {
		t.Fatal(err)
	}
	if late := time.Since(untilAt); late < 0 || late > 10*time.Second {
		t.Errorf("the Until session ended %v after its end time", late)
	}
	// Each file is finalised and holds what the session recorded (on a
	// loaded machine the media clock may start late: compare with the
	// session's own count, not the wall clock).
	for _, c := range []struct {
		s    *Session
		path string
	}{{stopped, stopPath}, {until, untilPath}} {
		st := c.s.Status()
		d := probeDuration(t, c.path)
		if st.State != StateDone || st.Elapsed <= 0 || d < st.Elapsed-100*time.Millisecond || d > st.Elapsed+200*time.Millisecond {
			t.Errorf("%s holds %v; the session recorded %v (state %s)", c.path, d, st.Elapsed, st.State)
		}
	}
	// Stop before Start's run has recorded anything: the session ends
	// cleanly (no error), the events channel is closed.
	s, _ := start("early", Config{})
	s.Stop()
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	var last Event
	for e := range s.Events() {
		last = e
	}
	if last.Kind != EventStopped {
		t.Errorf("last event %+v, want stopped", last)
	}
}

// A destination that cannot be reached fails the session with ErrStream
// (and rtmp's own reason), before anything is recorded.
func TestSessionStreamErrorClassified(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testnet.Port(t)) // nobody listens there now
	s, err := New(Config{Room: "demo:", Pipeline: smallPipeline(),
		Outputs: Outputs{Streams: []Stream{{URL: "rtmp://" + addr + "/live/key"}}, StreamStartTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	if !errors.Is(err, ErrStream) || !errors.Is(err, rtmp.ErrUnreachable) {
		t.Fatalf("Wait: %v, want ErrStream and rtmp.ErrUnreachable", err)
	}
	if st := s.Status(); st.State != StateFailed || !errors.Is(st.Err, ErrStream) {
		t.Errorf("status %+v", st)
	}
}
