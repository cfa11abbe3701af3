package main

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
)

// speakerFile is one per-speaker recording of the compose test.
type speakerFile struct {
	name       string
	file       string
	rgb        [3]uint8
	w, h       int
	fps        int
	tone       float64
	dur, start float64 // seconds
	vcodec     string
	acodec     string
}

func (s speakerFile) colour() media.YUV { return media.RGB(s.rgb[0], s.rgb[1], s.rgb[2]) }

func (s speakerFile) onStage(t float64) bool { return t >= s.start && t < s.start+s.dur }

// The compose test's speakers: the containers and codecs that Galène, Janus
// post-processing and LiveKit track egress write, different frame rates and
// shapes, distinct tones, staggered starts and ends.
var composeSpeakers = []speakerFile{
	{name: "Red", file: "red.webm", rgb: [3]uint8{220, 40, 40}, w: 640, h: 360, fps: 30, tone: 400, dur: 5, start: 0, vcodec: "vp8", acodec: "opus"},
	{name: "Green", file: "green.mp4", rgb: [3]uint8{40, 170, 60}, w: 640, h: 360, fps: 30, tone: 700, dur: 4, start: 0.5, vcodec: "h264", acodec: "aac"},
	{name: "Blue", file: "blue.mkv", rgb: [3]uint8{40, 80, 220}, w: 640, h: 360, fps: 25, tone: 1100, dur: 3, start: 1.5, vcodec: "vp9", acodec: "opus"},
	{name: "Amber", file: "amber.webm", rgb: [3]uint8{230, 180, 30}, w: 320, h: 240, fps: 30, tone: 1500, dur: 2.5, start: 3, vcodec: "vp8", acodec: "opus"},
}

// generateAll writes the inputs in parallel.
func generateAll(t *testing.T, dir string, ss []speakerFile) {
	t.Helper()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, g, b := s.rgb[0], s.rgb[1], s.rgb[2]
			generate(t, filepath.Join(dir, s.file), solidInput(fmt.Sprintf("0x%02x%02x%02x", r, g, b),
				fmt.Sprintf("%dx%d", s.w, s.h), s.fps, s.tone, s.dur, s.vcodec, s.acodec))
		}()
	}
	wg.Wait()
}

// TestCompose composes four per-speaker recordings (VP8/Opus WebM, H.264/AAC
// MP4, VP9/Opus MKV, a 4:3 VP8 WebM) with start offsets and checks the
// result from the outside: who is on screen where and when, whose tone is in
// the mix, duration, frame count, keyframe spacing and a finalised file.
func TestCompose(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	ss := composeSpeakers
	generateAll(t, dir, ss)
	out := filepath.Join(dir, "talk.mp4")
	args := []string{"compose", "-o", out}
	for _, s := range ss {
		args = append(args, "--input", fmt.Sprintf("file=%s,name=%s,offset=%gs", filepath.Join(dir, s.file), s.name, s.start))
	}
	mustCLI(t, args...)

	const fps = 30
	end := 0.0
	for _, s := range ss {
		end = math.Max(end, s.start+s.dur)
	}
	p := ffprobe(t, out, "-count_frames")
	v, a := p.Stream("video"), p.Stream("audio")
	if v == nil || a == nil || v.CodecName != "h264" || a.CodecName != "aac" || v.Width != 1280 || v.Height != 720 || v.RFrameRate != "30/1" {
		t.Fatalf("streams %+v, want H.264 1280x720 30/1 and AAC", p.Streams)
	}
	finalised(t, out)
	playable(t, out)

	// Duration and frame count: one picture every 1/30 s from 0 to the end
	// of the last speaker, no gaps, no repeats.
	n, _ := strconv.Atoi(v.NbReadFrames)
	if d := float64(n)/fps - end; math.Abs(d) > 1.0/fps+1e-3 {
		t.Errorf("%d frames = %.3f s, want max(offset+length) = %.3f s within one frame", n, float64(n)/fps, end)
	}
	pk := probePackets(t, out, "v")
	if len(pk) != n {
		t.Errorf("%d video packets but %d frames decode: pictures were stored that a player never shows", len(pk), n)
	}
	pts := make([]float64, len(pk))
	for i, q := range pk {
		pts[i] = q.PTS
	}
	sort.Float64s(pts)
	for i := 1; i < len(pts); i++ {
		if d := pts[i] - pts[i-1]; math.Abs(d-1.0/fps) > 1e-3 {
			t.Errorf("frame %d: PTS step %.4f s, want 1/30 s (constant frame rate, no gaps)", i, d)
			break
		}
	}
	// Keyframes every 2 s exactly, starting with the first picture.
	var keys []float64
	for _, q := range pk {
		if q.Key {
			keys = append(keys, q.PTS)
		}
	}
	sort.Float64s(keys)
	if len(keys) == 0 || keys[0] != pts[0] {
		t.Errorf("first picture is not a keyframe: keys at %v, first PTS %v", keys, pts[0])
	}
	for i := 1; i < len(keys); i++ {
		if d := keys[i] - keys[i-1]; math.Abs(d-2) > 1e-3 {
			t.Errorf("keyframes at %v: spacing %.3f s, want 2 s", keys, d)
			break
		}
	}
	if want := (n + 59) / 60; len(keys) != want {
		t.Errorf("%d keyframes in %d frames, want %d (one per 2 s)", len(keys), n, want)
	}

	// Pictures: at each check time the grid holds exactly the speakers on
	// stage, in join order; the others' colours appear nowhere.
	checks := []int{9, 30, 60, 105, 144, 159} // frame indices: 0.3 s ... 5.3 s
	imgs := grabFrames(t, out, 1280, 720, checks...)
	for k, img := range imgs {
		tm := float64(checks[k]) / fps
		var on []layout.Source
		for i, s := range ss {
			if s.onStage(tm) {
				on = append(on, layout.Source{ID: strconv.Itoa(i)})
			}
		}
		tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: 1280, Height: 720, Sources: on})
		for _, tl := range tiles {
			s := ss[atoi(tl.ID)]
			_, dst := layout.Place(s.w, s.h, tl.Rect, layout.Letterbox)
			if got := meanAt(img, dst.X+dst.W/2, dst.Y+dst.H/2); !near(got, s.colour(), colourTol) {
				t.Errorf("t=%.2fs: %s's tile %+v shows %s at its centre, want %s", tm, s.name, tl.Rect, rgbHex(got), rgbHex(s.colour()))
			}
			// Letterbox bars (above or beside the picture) are black.
			bx, by := -1, -1
			switch r := tl.Rect; {
			case dst.Y-r.Y >= 10:
				bx, by = dst.X+dst.W/2, r.Y+(dst.Y-r.Y)/2
			case dst.X-r.X >= 10:
				bx, by = r.X+(dst.X-r.X)/2, dst.Y+dst.H/2
			}
			if bx >= 0 {
				if got := meanAt(img, bx, by); !near(got, media.RGB(0, 0, 0), colourTol) {
					t.Errorf("t=%.2fs: %s's letterbox bar at (%d,%d) is %s, want black", tm, s.name, bx, by, rgbHex(got))
				}
			}
		}
		for i, s := range ss {
			if s.onStage(tm) {
				continue
			}
			for y := 8; y < 720; y += 24 {
				for x := 8; x < 1280; x += 24 {
					if near(meanAt(img, x, y), s.colour(), 2*colourTol) {
						t.Errorf("t=%.2fs: speaker %d (%s) is not on stage but its colour is at (%d,%d)", tm, i, s.name, x, y)
						y, x = 1<<20, 1<<20
					}
				}
			}
		}
	}

	// Sound: each speaker's tone is in the mix exactly while on stage.
	v0, a0 := origins(t, out)
	x := audioMono(t, out)
	audioEnd := a0 - v0 + float64(len(x))/media.SampleRate
	if audioEnd < end-1.0/fps || audioEnd > end+1.0/fps+1024.0/media.SampleRate {
		t.Errorf("audio ends at %.3f s, want %.3f s (within a frame and an AAC frame)", audioEnd, end)
	}
	windows := [][2]float64{{0.1, 0.45}, {0.8, 1.3}, {1.8, 2.3}, {3.3, 3.8}, {4.6, 4.95}, {5.1, 5.45}}
	for _, w := range windows {
		seg := span(x, a0-v0, w[0], w[1])
		for _, s := range ss {
			amp := toneAmp(seg, s.tone)
			on := s.onStage(w[0]) && s.onStage(w[1])
			switch {
			case on && amp < 0.05:
				t.Errorf("%.2f-%.2fs: %s's %g Hz tone at amplitude %.4f, want ~0.125", w[0], w[1], s.name, s.tone, amp)
			case !on && amp > 0.01:
				t.Errorf("%.2f-%.2fs: %s is not on stage but its %g Hz tone is at amplitude %.4f", w[0], w[1], s.name, s.tone, amp)
			}
		}
	}
}

func atoi(s string) int {
	i, _ := strconv.Atoi(s)
	return i
}

// flashBeep is a recording with a white flash and a 1 kHz beep at the same
// instants: 0.5 s, 2.5 s and 4.5 s, 0.1 s each.
func flashBeep(vcodec, acodec string) genOpts {
	const gate = `lt(mod(t+1.5\,2)\,0.1)`
	return genOpts{
		video:  "color=c=black:s=640x360:r=30:d=6,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='" + gate + "'",
		audio:  "aevalsrc='if(" + gate + "\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000:d=6,aformat=sample_fmts=flt:channel_layouts=stereo",
		vcodec: vcodec, acodec: acodec, dur: 6,
	}
}

// syncOnsets measures, on the file's own media clock (0 = first picture),
// when each flash starts (mean luma of a frame jumps from dark to bright)
// and when each beep starts (first loud sample after 300 ms of silence).
func syncOnsets(t *testing.T, path string) (flashes, beeps []float64) {
	t.Helper()
	v0, a0 := origins(t, path)
	frames := probeFrames(t, path, "v", 0)
	luma := lumaFrames(t, path, "scale=32:18", 32, 18)
	if len(frames) != len(luma) {
		t.Fatalf("%s: ffprobe lists %d frames, ffmpeg decoded %d", path, len(frames), len(luma))
	}
	mean := make([]float64, len(luma))
	for i, f := range luma {
		s := 0
		for _, b := range f {
			s += int(b)
		}
		mean[i] = float64(s) / float64(len(f))
	}
	for i := 3; i < len(mean); i++ {
		if mean[i] > 128 && mean[i-1] < 64 && mean[i-2] < 64 && mean[i-3] < 64 {
			flashes = append(flashes, frames[i].PTS-v0)
		}
	}
	x := audioMono(t, path)
	quiet := 0 // samples since the last loud one
	for i, v := range x {
		if math.Abs(float64(v)) > 0.15 {
			if quiet >= media.SampleRate*3/10 {
				beeps = append(beeps, a0-v0+float64(i)/media.SampleRate)
			}
			quiet = 0
			continue
		}
		quiet++
	}
	return flashes, beeps
}

// TestComposeAVSync: a flash and a beep at the same instants come out
// within one frame of each other, for Opus in WebM (pre-skip) and AAC in MP4
// (priming), composed alone and with an offset that is not a whole number of
// frames; and they land where the offset puts them.
func TestComposeAVSync(t *testing.T) {
	e2e(t)
	t.Parallel()
	for _, in := range []struct{ file, vcodec, acodec string }{
		{"flash.webm", "vp8", "opus"},
		{"flash.mp4", "h264", "aac"},
	} {
		t.Run(in.file, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, in.file)
			generate(t, src, flashBeep(in.vcodec, in.acodec))
			// The measurement itself, on the input: in sync by construction.
			fl, bp := syncOnsets(t, src)
			t.Logf("input: flashes %.4f beeps %.4f", fl, bp)
			if len(fl) != 3 || len(bp) != 3 {
				t.Fatalf("input: found %d flashes and %d beeps, want 3 and 3", len(fl), len(bp))
			}
			for i := range fl {
				if math.Abs(fl[i]-bp[i]) > 0.005 || math.Abs(fl[i]-(0.5+2*float64(i))) > 0.005 {
					t.Fatalf("input: flash %.4f s, beep %.4f s, want both at %.1f s (the measurement is off)", fl[i], bp[i], 0.5+2*float64(i))
				}
			}
			for _, offset := range []float64{0, 1.25} {
				out := filepath.Join(dir, fmt.Sprintf("out-%g.mp4", offset))
				mustCLI(t, "compose", "-o", out, "--input", fmt.Sprintf("file=%s,offset=%gs", src, offset))
				fl, bp := syncOnsets(t, out)
				t.Logf("offset %gs: flashes %.4f beeps %.4f", offset, fl, bp)
				if len(fl) != 3 || len(bp) != 3 {
					t.Errorf("offset %gs: found %d flashes and %d beeps, want 3 and 3", offset, len(fl), len(bp))
					continue
				}
				for i := range fl {
					want := offset + 0.5 + 2*float64(i)
					if d := fl[i] - bp[i]; math.Abs(d) > 1.0/30 {
						t.Errorf("offset %gs, flash %d: video %.4f s, audio %.4f s: A/V offset %+.1f ms, want within one frame (33 ms)", offset, i, fl[i], bp[i], d*1000)
					}
					if math.Abs(bp[i]-want) > 1.0/30 || math.Abs(fl[i]-want) > 1.0/30 {
						t.Errorf("offset %gs, flash %d: at %.4f s (video) / %.4f s (audio), want %.3f s", offset, i, fl[i], bp[i], want)
					}
				}
			}
		})
	}
}
