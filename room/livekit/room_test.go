package livekit

import (
	"context"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// startRoom joins roomName on srv with a minted hidden token.
func startRoom(t *testing.T, srv *lktest.Server, roomName string, h room.Handler) *Room {
	t.Helper()
	r, err := New(Config{
		URL: srv.URL, Room: roomName, APIKey: srv.APIKey, APISecret: srv.APISecret,
		Handler: h, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// checkFrames asserts what every live track must satisfy: the right codec,
// a keyframe first, strictly increasing PTS, and a rate near the sender's.
func checkFrames(t *testing.T, name string, frames []room.Frame, codec string, wantRate float64) {
	t.Helper()
	if len(frames) < 10 {
		t.Fatalf("%s: only %d frames", name, len(frames))
	}
	if !frames[0].Keyframe {
		t.Errorf("%s: first frame is not a keyframe", name)
	}
	for i, f := range frames {
		if f.Codec != codec {
			t.Fatalf("%s: frame %d codec %q, want %q", name, i, f.Codec, codec)
		}
		if len(f.Data) == 0 {
			t.Fatalf("%s: frame %d empty", name, i)
		}
		if i > 0 && f.PTS <= frames[i-1].PTS {
			t.Fatalf("%s: PTS not increasing at %d: %v after %v", name, i, f.PTS, frames[i-1].PTS)
		}
	}
	checkRate(t, name, frames, wantRate)
}

// checkRate asserts the frame rate (by PTS) is within 15% of wantRate.
func checkRate(t *testing.T, name string, frames []room.Frame, wantRate float64) {
	t.Helper()
	if len(frames) < 2 {
		t.Fatalf("%s: %d frames", name, len(frames))
	}
	span := (frames[len(frames)-1].PTS - frames[0].PTS).Seconds()
	rate := float64(len(frames)-1) / span
	t.Logf("%s: %d frames over %.2fs of PTS: %.1f/s (sent %.0f/s)", name, len(frames), span, rate, wantRate)
	if rate < wantRate*0.85 || rate > wantRate*1.15 {
		t.Errorf("%s: %.1f frames/s, want about %.0f", name, rate, wantRate)
	}
}

func TestReceivesFramesFromGoPublishers(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "frames"
	a := lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: "red", Audio: true, ToneHz: 440})
	b := lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "bob", Name: "Bob", Video: "vp8", Color: "blue", Audio: true, ToneHz: 660})
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "carl", Name: "Carl", Video: "vp9", Color: "yellow", ScreenShare: true})

	h := newRecHandler()
	h.keepData = true
	start := time.Now()
	r := startRoom(t, srv, roomName, h)
	joined := time.Since(start)

	var firstFrame time.Duration
	waitFor(t, 10*time.Second, "first video frame", func() bool {
		for _, id := range []string{"alice", "bob"} {
			if _, s := h.track(id, room.KindVideo); s != nil && s.count() > 0 {
				firstFrame = time.Since(start)
				return true
			}
		}
		return false
	})
	t.Logf("join took %v; first video frame %v after Start", joined, firstFrame)

	waitFor(t, 15*time.Second, "3 s of media on 5 tracks", func() bool {
		if _, s := h.track("carl", room.KindVideo); s == nil || s.count() < 90 {
			return false
		}
		for _, id := range []string{"alice", "bob"} {
			for _, k := range []room.Kind{room.KindVideo, room.KindAudio} {
				_, s := h.track(id, k)
				want := 90
				if k == room.KindAudio {
					want = 150
				}
				if s == nil || s.count() < want {
					return false
				}
			}
		}
		return true
	})

	for _, c := range []struct {
		id, codec string
		color     [3]byte
	}{{"alice", "h264", [3]byte{255, 0, 0}}, {"bob", "vp8", [3]byte{0, 0, 255}}, {"carl", "vp9", [3]byte{255, 255, 0}}} {
		tr, s := h.track(c.id, room.KindVideo)
		wantSource := room.SourceCamera
		if c.id == "carl" {
			wantSource = room.SourceScreenShare
		}
		if tr.Source != wantSource || tr.Codec != c.codec {
			t.Errorf("%s video: source %v codec %q", c.id, tr.Source, tr.Codec)
		}
		frames, _, _ := s.snapshot()
		checkFrames(t, c.id+" video", frames, c.codec, 30)
		if frames[0].Width != 320 || frames[0].Height != 240 {
			t.Errorf("%s: keyframe size %dx%d, want 320x240", c.id, frames[0].Width, frames[0].Height)
		}
		// The access units decode, every one, to the publisher's colour.
		n, center := decodeVideo(t, c.codec, frames)
		t.Logf("%s: ffmpeg decoded %d of %d frames; centre pixel %v", c.id, n, len(frames), center)
		if n != len(frames) || !near(center, c.color, 40) {
			t.Errorf("%s: decoded %d of %d frames, centre %v, want %v", c.id, n, len(frames), center, c.color)
		}
		if c.id == "carl" {
			continue // video only
		}
		ta, sa := h.track(c.id, room.KindAudio)
		if ta.Source != room.SourceMicrophone {
			t.Errorf("%s audio: source %v", c.id, ta.Source)
		}
		af, _, _ := sa.snapshot()
		checkFrames(t, c.id+" audio", af, "opus", 50)
		st := tr.Stats()
		t.Logf("%s video stats: %+v", c.id, st)
	}
	h.mu.Lock()
	names := map[string]string{}
	for _, p := range h.joined {
		names[p.ID] = p.Name
	}
	h.mu.Unlock()
	if names["alice"] != "Alice" || names["bob"] != "Bob" || names["carl"] != "Carl" || len(names) != 3 {
		t.Errorf("joined participants %v", names)
	}
	_, _ = a, b
	_ = r
}
