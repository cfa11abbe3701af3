package livekit

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestChromiumPublisher: a real browser speaker (livekit-client in headless
// Chromium, fake camera and microphone from files) reaches the sink as VP8
// (the livekit-client default, simulcast) or H.264 (packetization-mode 1)
// and Opus; asking for a smaller size switches the simulcast layer.
func TestChromiumPublisher(t *testing.T) {
	lktest.SkipIfShort(t)
	for _, c := range []struct {
		codec     string
		simulcast bool
	}{{"vp8", true}, {"h264", false}, {"vp9", false}, {"av1", false}} {
		t.Run(c.codec, func(t *testing.T) {
			srv := lktest.StartServer(t)
			const roomName = "browser"
			h := newRecHandler()
			h.keepData = true
			r := startRoom(t, srv, roomName, h)
			br := lktest.StartChromium(t, srv, roomName, lktest.ChromiumOptions{Identity: "carol", Name: "Carol", Codec: c.codec, NoSimulcast: !c.simulcast})
			var firstAudio, firstVideo time.Duration
			waitFor(t, 20*time.Second, "first frames from chromium", func() bool {
				_, a := h.track("carol", room.KindAudio)
				_, v := h.track("carol", room.KindVideo)
				if firstAudio == 0 && a != nil && a.count() > 0 {
					firstAudio = time.Since(br.Started)
				}
				if firstVideo == 0 && v != nil && v.count() > 0 {
					firstVideo = time.Since(br.Started)
				}
				return firstAudio > 0 && firstVideo > 0
			})
			t.Logf("after launching chromium: first Opus frame %v, first %s frame %v", firstAudio.Round(time.Millisecond), c.codec, firstVideo.Round(time.Millisecond))

			vt, vs := h.track("carol", room.KindVideo)
			at, as := h.track("carol", room.KindAudio)
			// The server starts a simulcast subscription on the low layer and
			// moves up as its bandwidth estimate grows: wait for the full one.
			waitFor(t, 10*time.Second, "a 640x360 keyframe", func() bool {
				frames, _, _ := vs.snapshot()
				for _, f := range frames {
					if f.Keyframe && f.Width == 640 && f.Height == 360 {
						return true
					}
				}
				return false
			})
			n0 := vs.count()
			time.Sleep(3 * time.Second)
			frames, _, _ := vs.snapshot()
			checkFrames(t, "chromium video", frames, c.codec, 30)
			checkRate(t, "chromium video (last 3 s)", frames[n0:], 30)
			af, _, _ := as.snapshot()
			checkFrames(t, "chromium audio", af, "opus", 50)
			// Everything handed over decodes, to the camera's green. (A VP9
			// SVC superframe may show a lower layer too: one more picture.)
			n, center := decodeVideo(t, c.codec, frames)
			t.Logf("ffmpeg decoded %d of %d frames; centre pixel %v", n, len(frames), center)
			extra := 0
			if c.codec == "vp9" {
				extra = 2
			}
			if n < len(frames) || n > len(frames)+extra || !near(center, [3]byte{0, 128, 0}, 40) {
				t.Errorf("decoded %d of %d frames, centre %v, want green", n, len(frames), center)
			}
			if vt.Simulcast != c.simulcast || vt.Source != room.SourceCamera || at.Source != room.SourceMicrophone {
				t.Errorf("track info: video %+v audio %+v", vt, at)
			}
			t.Logf("video stats: %+v", vt.Stats())
			t.Logf("audio stats: %+v", at.Stats())

			if c.simulcast {
				// A small tile: the server switches to the 320x180 layer,
				// starting with its keyframe.
				n := vs.count()
				asked := time.Now()
				vt.SetVideoDimensions(320, 180)
				var switched time.Duration
				waitFor(t, 5*time.Second, "320x180 keyframe", func() bool {
					frames, arrivals, _ := vs.snapshot()
					for i := n; i < len(frames); i++ {
						if frames[i].Keyframe && frames[i].Width == 320 && frames[i].Height == 180 {
							switched = arrivals[i].Sub(asked)
							return true
						}
					}
					return false
				})
				t.Logf("layer switch to 320x180 took %v", switched.Round(time.Millisecond))
				n = vs.count()
				asked = time.Now()
				vt.SetVideoDimensions(640, 360)
				waitFor(t, 5*time.Second, "640x360 keyframe", func() bool {
					frames, arrivals, _ := vs.snapshot()
					for i := n; i < len(frames); i++ {
						if frames[i].Keyframe && frames[i].Width == 640 {
							switched = arrivals[i].Sub(asked)
							return true
						}
					}
					return false
				})
				t.Logf("layer switch back to 640x360 took %v", switched.Round(time.Millisecond))
				frames, _, _ = vs.snapshot()
				for i := 1; i < len(frames); i++ {
					if frames[i].PTS <= frames[i-1].PTS {
						t.Fatalf("PTS not increasing across the layer switch at %d", i)
					}
				}
			}

			pair, err := r.SelectedCandidatePair()
			if err != nil {
				t.Fatal(err)
			}
			if pair.RemoteIP != "127.0.0.1" {
				t.Errorf("remote candidate %s", pair.Remote)
			}
			if errs := br.Errors(); len(errs) > 0 {
				t.Errorf("page errors: %v", errs)
			}
		})
	}
}
