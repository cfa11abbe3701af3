package compositor

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
)

// nearest is a pure-Go nearest-neighbour scaler: a fake for unit tests (the
// real one is av's swscale).
type nearest struct{}

func (nearest) Scale(dst, src *media.Image) error {
	for y := 0; y < dst.Height; y++ {
		sy := y * src.Height / dst.Height
		for x := 0; x < dst.Width; x++ {
			dst.Y[y*dst.StrideY+x] = src.Y[sy*src.StrideY+x*src.Width/dst.Width]
		}
	}
	for y := 0; y < dst.Height/2; y++ {
		sy := y * src.Height / dst.Height
		for x := 0; x < dst.Width/2; x++ {
			sx := x * src.Width / dst.Width
			dst.U[y*dst.StrideC+x] = src.U[sy*src.StrideC+sx]
			dst.V[y*dst.StrideC+x] = src.V[sy*src.StrideC+sx]
		}
	}
	return nil
}

type frameRec struct {
	pts time.Duration
	img *media.Image
}

// capture records every output frame (cloned) and all audio.
type capture struct {
	mu     sync.Mutex
	frames []frameRec
	audio  media.Audio
	apts   []time.Duration
	keep   func(n int) bool // which frames to clone; nil = all
}

func (c *capture) WriteVideo(img *media.Image, pts time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cl *media.Image
	if c.keep == nil || c.keep(len(c.frames)) {
		cl = img.Clone()
	}
	c.frames = append(c.frames, frameRec{pts, cl})
	return nil
}

func (c *capture) WriteAudio(a media.Audio, pts time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.apts) > 0 {
		want := c.apts[len(c.apts)-1] + time.Duration(len(a)/media.Channels)*time.Second/media.SampleRate
		if d := pts - want; d > time.Microsecond*25 || d < -time.Microsecond*25 {
			panic("audio blocks not contiguous")
		}
	}
	c.apts = append(c.apts, pts)
	c.audio = append(c.audio, a...)
	return nil
}

func solid(w, h int, c media.YUV) *media.Image {
	m := media.NewImage(w, h)
	m.Fill(c)
	return m
}

func tone(freq, amp float64, from, n int) media.Audio {
	a := make(media.Audio, n*media.Channels)
	for i := 0; i < n; i++ {
		v := float32(amp * math.Sin(2*math.Pi*freq*float64(from+i)/media.SampleRate))
		a[2*i], a[2*i+1] = v, v
	}
	return a
}

func near(a, b media.YUV, tol int) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.Y, b.Y) <= tol && d(a.U, b.U) <= tol && d(a.V, b.V) <= tol
}

func centre(r layout.Rect) (int, int) { return r.X + r.W/2, r.Y + r.H/2 }

var (
	red   = media.RGB(220, 30, 30)
	green = media.RGB(30, 200, 60)
	blue  = media.RGB(40, 60, 220)
)

// feed pushes a solid-colour picture and a tone for [0, dur) at fps, offline.
func feed(in *Input, col media.YUV, freq float64, dur time.Duration, fps int) {
	frames := int(dur * time.Duration(fps) / time.Second)
	for f := 0; f < frames; f++ {
		pts := time.Duration(f) * time.Second / time.Duration(fps)
		in.PushVideo(solid(320, 180, col), pts)
		s0 := int(int64(pts) * media.SampleRate / int64(time.Second))
		s1 := int(int64(time.Duration(f+1)*time.Second/time.Duration(fps)) * media.SampleRate / int64(time.Second))
		in.PushAudio(tone(freq, 0.3, s0, s1-s0), pts)
	}
	in.EndOfStream()
}

func TestOfflineGridColoursAndCounts(t *testing.T) {
	cap := &capture{keep: func(n int) bool { return n%10 == 5 }}
	c, err := New(Config{Width: 640, Height: 360, FPS: 30, Offline: true, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}, cap)
	if err != nil {
		t.Fatal(err)
	}
	cols := []media.YUV{red, green, blue}
	ins := make([]*Input, 3)
	for i := range ins {
		ins[i] = c.AddInput(string(rune('a'+i)), "P", InputOptions{})
	}
	c.Start()
	for i, in := range ins {
		go feed(in, cols[i], 300+100*float64(i), 2*time.Second, 30)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(cap.frames); n != 60 {
		t.Fatalf("frames = %d, want 60", n)
	}
	tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: 640, Height: 360, Sources: []layout.Source{{ID: "a"}, {ID: "b"}, {ID: "c"}}})
	for _, f := range cap.frames {
		if f.img == nil {
			continue
		}
		for i, tl := range tiles {
			x, y := centre(tl.Rect)
			if got := f.img.At(x, y); !near(got, cols[i], 3) {
				t.Fatalf("frame %v tile %d at (%d,%d) = %v, want %v", f.pts, i, x, y, got, cols[i])
			}
		}
	}
	// Three tones at 0.3 each: peaks up to 0.9, under the limiter ceiling.
	if got := float64(len(cap.audio)) / media.Channels / media.SampleRate; math.Abs(got-2) > 0.03 {
		t.Fatalf("audio duration %.3f s, want 2", got)
	}
}

func TestLiveStalledInputDoesNotStallOutput(t *testing.T) {
	cap := &capture{keep: func(n int) bool { return n == 3 || n == 40 }}
	c, err := New(Config{Width: 320, Height: 180, FPS: 30, Duration: 1500 * time.Millisecond, Latency: 10 * time.Millisecond,
		StallTimeout: 400 * time.Millisecond, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}, cap)
	if err != nil {
		t.Fatal(err)
	}
	in := c.AddInput("a", "Alice", InputOptions{})
	start := time.Now()
	c.Start()
	// Push for 200 ms, then freeze.
	for time.Since(start) < 200*time.Millisecond {
		in.PushVideo(solid(320, 180, red), time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := len(cap.frames); n != 45 {
		t.Fatalf("frames = %d, want 45 (1.5 s at 30 fps)", n)
	}
	for i, f := range cap.frames {
		if f.pts != time.Duration(i)*time.Second/30 {
			t.Fatalf("frame %d pts %v", i, f.pts)
		}
	}
	if got := cap.frames[3].img.At(160, 90); !near(got, red, 3) {
		t.Fatalf("frame 3 centre %v, want red (live picture)", got)
	}
	// Frame 40 (1.33 s): 1.1 s after the last picture, past the stall timeout.
	if got := cap.frames[40].img.At(10, 10); !near(got, placeholderColour, 3) {
		t.Fatalf("frame 40 corner %v, want placeholder %v", got, placeholderColour)
	}
	if blocks := len(cap.apts); blocks < 70 || blocks > 71 {
		t.Fatalf("audio blocks = %d, want 70-71 for 1.5 s", blocks)
	}
	// Silence: no input sound.
	for _, v := range cap.audio {
		if v != 0 {
			t.Fatal("expected silence")
		}
	}
}

func TestMixerLimitsLoudOverlap(t *testing.T) {
	cap := &capture{keep: func(int) bool { return false }}
	c, _ := New(Config{Width: 320, Height: 180, Offline: true, Scaler: nearest{}, Log: zerolog.Nop()}, cap)
	a := c.AddInput("a", "A", InputOptions{NoVideo: true})
	b := c.AddInput("b", "B", InputOptions{NoVideo: true})
	c.Start()
	go func() { a.PushAudio(tone(440, 0.9, 0, 48000), 0); a.EndOfStream() }()
	go func() { b.PushAudio(tone(440, 0.9, 0, 48000), 0); b.EndOfStream() }()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	var peak float64
	for _, v := range cap.audio {
		peak = max(peak, math.Abs(float64(v)))
	}
	if peak > limitCeiling+1e-3 || peak < 0.5 {
		t.Fatalf("peak %.3f, want ≤ %.2f and loud", peak, limitCeiling)
	}
	// The waveform keeps its sign structure (no wrap-around): it correlates
	// with the sum of the inputs.
	var dot, n1, n2 float64
	ref := tone(440, 1.8, 0, 48000)
	for i := range cap.audio[:len(ref)] {
		dot += float64(cap.audio[i]) * float64(ref[i])
		n1 += float64(cap.audio[i]) * float64(cap.audio[i])
		n2 += float64(ref[i]) * float64(ref[i])
	}
	if corr := dot / math.Sqrt(n1*n2); corr < 0.98 {
		t.Fatalf("correlation with the ideal sum %.3f", corr)
	}
}

func TestJoinChangesLayoutNextFrame(t *testing.T) {
	cap := &capture{}
	c, _ := New(Config{Width: 320, Height: 180, FPS: 30, Duration: 900 * time.Millisecond, Latency: 5 * time.Millisecond,
		Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}, cap)
	a := c.AddInput("a", "A", InputOptions{})
	a.PushVideo(solid(320, 180, red), 0)
	c.Start()
	var b *Input
	for {
		cap.mu.Lock()
		n := len(cap.frames)
		cap.mu.Unlock()
		if n >= 10 {
			b = c.AddInput("b", "B", InputOptions{})
			b.PushVideo(solid(320, 180, blue), 0)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.Wait()
	// Find the first two-tile frame: from then on every frame has two tiles
	// (no gap, no black frame) and the first frames had one.
	first := -1
	for i, f := range cap.frames {
		left, right := f.img.At(40, 90), f.img.At(280, 90)
		// The joiner's tile may show its placeholder for the frame in which
		// it joined before its first picture arrives.
		two := near(left, red, 3) && (near(right, blue, 3) || near(right, placeholderColour, 3))
		one := near(f.img.At(160, 90), red, 3)
		switch {
		case two && first < 0:
			first = i
		case first >= 0 && !two:
			t.Fatalf("frame %d lost the two-tile layout", i)
		case first < 0 && !one:
			t.Fatalf("frame %d before the join is not the one-tile layout", i)
		}
	}
	if first < 10 || first > 13 {
		t.Fatalf("two tiles from frame %d, want right after the join (~10)", first)
	}
}

func TestAutoActiveSpeakerTakesMainTile(t *testing.T) {
	cap := &capture{keep: func(n int) bool { return n == 5 || n == 80 }}
	c, _ := New(Config{Width: 640, Height: 360, Offline: true, Layout: layout.Speaker, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}, cap)
	a := c.AddInput("a", "A", InputOptions{})
	b := c.AddInput("b", "B", InputOptions{})
	c.Start()
	// a talks for the first second, b from 1 s to 3 s.
	push := func(in *Input, col media.YUV, loudFrom, loudTo time.Duration) {
		for f := 0; f < 90; f++ {
			pts := time.Duration(f) * time.Second / 30
			in.PushVideo(solid(320, 180, col), pts)
			amp := 0.0
			if pts >= loudFrom && pts < loudTo {
				amp = 0.5
			}
			in.PushAudio(tone(300, amp, f*1600, 1600), pts)
		}
		in.EndOfStream()
	}
	go push(a, red, 0, time.Second)
	go push(b, blue, time.Second, 3*time.Second)
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	main := func(n int) media.YUV { return cap.frames[n].img.At(320, 100) }
	if got := main(5); !near(got, red, 3) {
		t.Fatalf("frame 5 main tile %v, want A (red)", got)
	}
	if got := main(80); !near(got, blue, 3) {
		t.Fatalf("frame 80 main tile %v, want B (blue) who talks now", got)
	}
}

// TestOfflineNoVideoNoAudio: NoVideo hands the sink sound only, NoAudio
// pictures only (with or without the mixer measuring loudness), each for
// the whole duration; both together are refused.
func TestOfflineNoVideoNoAudio(t *testing.T) {
	for _, tc := range []struct{ noVideo, external bool }{{true, false}, {false, false}, {false, true}} {
		noVideo := tc.noVideo
		cap := &capture{}
		c, err := New(Config{Width: 320, Height: 180, FPS: 30, Offline: true, Scaler: nearest{}, NoLabels: true,
			NoVideo: noVideo, NoAudio: !noVideo, ExternalSpeaker: tc.external, Log: zerolog.Nop()}, cap)
		if err != nil {
			t.Fatal(err)
		}
		in := c.AddInput("a", "A", InputOptions{})
		c.Start()
		go feed(in, red, 440, 2*time.Second, 30)
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		secs := float64(len(cap.audio)) / media.Channels / media.SampleRate
		if noVideo && (len(cap.frames) != 0 || math.Abs(secs-2) > 0.03) {
			t.Fatalf("NoVideo: %d frames, %.3f s of sound; want none and 2 s", len(cap.frames), secs)
		}
		if !noVideo && (len(cap.frames) != 60 || len(cap.audio) != 0) {
			t.Fatalf("NoAudio: %d frames, %d samples; want 60 and none", len(cap.frames), len(cap.audio))
		}
	}
	if _, err := New(Config{NoVideo: true, NoAudio: true, Scaler: nearest{}}, &capture{}); err == nil {
		t.Fatal("NoVideo and NoAudio together accepted")
	}
}

// TestMixEverySampleOnce: sound arriving in AAC-sized chunks (1024 samples,
// timestamps rounded down to the nanosecond as a decoder's are) leaves the
// mixer sample for sample: each once, in order, no sample repeated or
// skipped at a block boundary (the block instants are rounded down too).
func TestMixEverySampleOnce(t *testing.T) {
	for _, fps := range []int{30, 25} {
		cap := &capture{keep: func(int) bool { return false }}
		c, err := New(Config{Width: 320, Height: 180, FPS: fps, Offline: true, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}, cap)
		if err != nil {
			t.Fatal(err)
		}
		in := c.AddInput("a", "A", InputOptions{NoVideo: true})
		c.Start()
		const chunk, total = 1024, 3 * media.SampleRate
		// A ramp whose value names its sample: i/2^17 is exact in float32.
		value := func(i int) float32 { return float32(i%65536) / (1 << 17) }
		go func() {
			for k := 0; k*chunk < total; k++ {
				a := make(media.Audio, chunk*media.Channels)
				for i := range chunk {
					a[2*i], a[2*i+1] = value(k*chunk+i), value(k*chunk+i)
				}
				in.PushAudio(a, time.Duration(k*chunk)*time.Second/media.SampleRate)
			}
			in.EndOfStream()
		}()
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
		n := cap.audio.Frames()
		if n < total-2048 {
			t.Fatalf("%d fps: %d samples mixed, want about %d", fps, n, total)
		}
		bad := 0
		for i := 0; i < min(n, total); i++ {
			if got := cap.audio[2*i]; got != value(i) {
				if bad < 5 {
					t.Errorf("%d fps: sample %d is %v (sample %.0f of the input), want %v", fps, i, got, float64(got)*(1<<17), value(i))
				}
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%d fps: %d of %d samples out of place", fps, bad, n)
		}
	}
}
