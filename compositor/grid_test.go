package compositor

import (
	"math"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// TestTakeVideoNearest: a 25 fps input into a 30 fps output shows, at each
// output instant, the picture nearest to it (a picture just after the
// instant beats an older one further away).
func TestTakeVideoNearest(t *testing.T) {
	c, err := New(Config{Width: 64, Height: 36, FPS: 30, Offline: true, OfflineAhead: time.Second, Scaler: nearest{}, Log: zerolog.Nop()}, &capture{})
	if err != nil {
		t.Fatal(err)
	}
	in := c.AddInput("a", "A", InputOptions{})
	const offset = 370 * time.Millisecond
	for k := range 15 { // up to 1 s ahead (offline back-pressure)
		in.PushVideo(media.NewImage(16, 16), offset+time.Duration(k)*40*time.Millisecond)
	}
	for n := 12; n < 28; n++ {
		at := time.Duration(n) * time.Second / 30
		in.takeVideo(at)
		if d := at - in.curPTS; d > 20*time.Millisecond || d < -20*time.Millisecond {
			t.Errorf("at %v: shows the picture of %v (%v away), want the nearest (within 20 ms)", at, in.curPTS, d)
		}
	}
}

// TestGridShift: a constant-rate input whose rate divides the output's is
// moved onto the output's grid by at most half a frame; others are not.
func TestGridShift(t *testing.T) {
	c, err := New(Config{FPS: 30, Scaler: nearest{}, Log: zerolog.Nop()}, &capture{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		first    time.Duration
		num, den int
		want     time.Duration
	}{
		{0, 30, 1, 0},
		{1250 * time.Millisecond, 30, 1, 1266666666 - 1250000000},
		{1240 * time.Millisecond, 30, 1, 1233333333 - 1240000000},
		{1240 * time.Millisecond, 15, 1, 1233333333 - 1240000000},
		{1240 * time.Millisecond, 25, 1, 0},
		{1240 * time.Millisecond, 30000, 1001, 0},
		{1240 * time.Millisecond, 0, 0, 0},
	} {
		if got := c.GridShift(tc.first, tc.num, tc.den); got != tc.want {
			t.Errorf("GridShift(%v, %d/%d) = %v, want %v", tc.first, tc.num, tc.den, got, tc.want)
		}
	}
}

// TestLiveSoundFollowsPictures: a live 30 fps input whose pictures are
// stamped 12 ms after the output's frame instants is shown 12 ms early
// (nearest picture); its sound, stamped on the same clock, is moved 12 ms
// earlier too, without a gap or an overlap (the chunks are squeezed by at
// most 5 %), so picture and sound stay together. When the pictures' stamps
// then step back a frame (now shown 21 ms late), the sound follows them.
func TestLiveSoundFollowsPictures(t *testing.T) {
	c, err := New(Config{Width: 64, Height: 36, FPS: 30, Scaler: nearest{}, Log: zerolog.Nop()}, &capture{})
	if err != nil {
		t.Fatal(err)
	}
	in := c.AddInput("a", "A", InputOptions{})
	const phase = 12 * time.Millisecond
	frame := time.Second / 30
	chunk := 20 * time.Millisecond
	var nextAudio time.Duration // pts of the next 20 ms chunk
	shift := time.Duration(0)   // added to the pictures' stamps (a mapping step)
	run := func(from, to int) {
		for n := from; n < to; n++ {
			at := time.Duration(n) * frame
			in.PushVideo(media.NewImage(16, 16), at+phase+shift)
			for nextAudio < at+frame {
				in.PushAudio(make(media.Audio, 960*media.Channels), nextAudio)
				nextAudio += chunk
			}
			in.takeVideo(at)
		}
	}
	contiguous := func() {
		t.Helper()
		in.mu.Lock()
		defer in.mu.Unlock()
		for i := 1; i < len(in.audio); i++ {
			if prev := in.audio[i-1]; prev.idx+int64(prev.a.Frames()) != in.audio[i].idx {
				t.Fatalf("chunk %d starts at sample %d, the previous one ends at %d: a gap or an overlap", i, in.audio[i].idx, prev.idx+int64(prev.a.Frames()))
			}
			if n := in.audio[i].a.Frames(); n < 912 || n > 1008 {
				t.Fatalf("chunk %d holds %d sample frames: stretched by more than 5 %%", i, n)
			}
		}
	}
	// where is how much later than its stamp the latest chunk is queued.
	where := func() time.Duration {
		in.mu.Lock()
		defer in.mu.Unlock()
		last := in.audio[len(in.audio)-1]
		end := time.Duration((last.idx + int64(last.a.Frames())) * int64(time.Second) / media.SampleRate)
		return end - nextAudio
	}
	run(0, 60)
	contiguous()
	if d := where(); d > -phase+time.Millisecond || d < -phase-time.Millisecond {
		t.Fatalf("after 2 s the sound is %v from its stamps, want %v (where its pictures are shown) ±1 ms", d, -phase)
	}
	if got := c.Stats().SyncAdjusted; got < 500 || got > 700 {
		t.Errorf("%d sample frames adjusted, want about 576 (12 ms)", got)
	}
	// The pictures' stamps step back by a whole frame (a sender report):
	// each is now shown at the frame instant 21 ms after its own, and the
	// sound moves with them.
	in.mu.Lock()
	in.audio, in.queued = nil, 0
	in.mu.Unlock()
	shift = -frame
	run(60, 120)
	in.mu.Lock()
	in.audio, in.queued = nil, 0 // only the latest second is checked
	in.mu.Unlock()
	run(120, 150)
	contiguous()
	in.mu.Lock()
	lag := in.lag()
	in.mu.Unlock()
	if d := where(); (d - lag).Abs() > time.Millisecond {
		t.Fatalf("the sound is %v from its stamps, the pictures are shown %v late: want the same ±1 ms", d, lag)
	}
	t.Logf("after the step the pictures are shown %v late; the sound follows", lag)
}

// TestStretch: a chunk resampled to another length keeps its first and last
// samples and stays a ramp.
func TestStretch(t *testing.T) {
	a := make(media.Audio, 960*media.Channels)
	for i := range 960 {
		a[2*i], a[2*i+1] = float32(i), -float32(i)
	}
	for _, m := range []int{912, 959, 961, 1008} {
		b := stretch(a, m)
		if b.Frames() != m || b[0] != 0 || b[2*(m-1)] != 959 || b[2*(m-1)+1] != -959 {
			t.Fatalf("stretch to %d: %d frames, ends %v…%v", m, b.Frames(), b[:2], b[len(b)-2:])
		}
		for j := 1; j < m; j++ {
			if b[2*j] <= b[2*(j-1)] || b[2*j+1] != -b[2*j] {
				t.Fatalf("stretch to %d: sample %d is %v after %v", m, j, b[2*j], b[2*(j-1)])
			}
		}
	}
}

// TestLiveSlideKeepsPitch: as in TestLiveSoundFollowsPictures, a tone's
// sound moves 12 ms earlier to where its pictures are shown, then 33 ms
// later when their stamps step back a frame; the tone keeps its pitch
// throughout (whole periods are left out or repeated, not resampled: 5 %
// faster or slower would move 620 Hz by 31 Hz), every quarter second of
// the sound measures the tone's full amplitude at 620 Hz, and the sound
// ends where its pictures are shown, within half a period.
func TestLiveSlideKeepsPitch(t *testing.T) {
	c, err := New(Config{Width: 64, Height: 36, FPS: 30, Scaler: nearest{}, Log: zerolog.Nop()}, &capture{})
	if err != nil {
		t.Fatal(err)
	}
	in := c.AddInput("a", "A", InputOptions{})
	const hz, amp = 620.0, 0.3
	const phase = 12 * time.Millisecond
	frame := time.Second / 30
	chunk := 20 * time.Millisecond
	var nextAudio time.Duration
	sample := 0 // the tone's phase runs on across chunks
	shift := time.Duration(0)
	run := func(from, to int) {
		for n := from; n < to; n++ {
			at := time.Duration(n) * frame
			in.PushVideo(media.NewImage(16, 16), at+phase+shift)
			for nextAudio < at+frame {
				a := make(media.Audio, 960*media.Channels)
				for i := range 960 {
					v := float32(amp * math.Sin(2*math.Pi*hz*float64(sample)/media.SampleRate))
					sample++
					for ch := range media.Channels {
						a[i*media.Channels+ch] = v
					}
				}
				in.PushAudio(a, nextAudio)
				nextAudio += chunk
			}
			in.takeVideo(at)
		}
	}
	var heard []float32 // the first channel of everything queued, in order
	end := int64(-1)    // where the last collected chunk ended
	collect := func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		for _, ch := range in.audio {
			if end >= 0 && ch.idx != end {
				t.Fatalf("chunk at sample %d does not follow the one before (ended at %d): a gap or an overlap", ch.idx, end)
			}
			end = ch.idx + int64(ch.a.Frames())
			for k := 0; k < len(ch.a); k += media.Channels {
				heard = append(heard, ch.a[k])
			}
		}
		in.audio, in.queued = nil, 0 // (the live queue holds 2 s at most)
	}
	for n := 0; n < 150; n += 15 {
		if n == 60 {
			shift = -frame
		}
		run(n, n+15)
		collect()
	}
	// Skip the first chunk (it fades in).
	const win = media.SampleRate / 4
	low := math.Inf(1)
	for i := 960; i+win <= len(heard); i += win {
		var re, im float64
		for k, v := range heard[i : i+win] {
			ph := 2 * math.Pi * hz * float64(k) / media.SampleRate
			re += float64(v) * math.Cos(ph)
			im += float64(v) * math.Sin(ph)
		}
		low = min(low, 2*math.Hypot(re, im)/win)
	}
	in.mu.Lock()
	lag, off := in.lag(), in.syncOff
	in.mu.Unlock()
	st := c.Stats()
	t.Logf("lowest 620 Hz amplitude over a quarter second %.3f (of %.1f); %d sample frames left out or repeated; the last chunk %v from its place",
		low, amp, st.SyncAdjusted, time.Duration(off*int64(time.Second)/media.SampleRate))
	if low < 0.9*amp {
		t.Errorf("a quarter second of the tone measures %.3f at 620 Hz, want ≥ %.2f: its pitch moved", low, 0.9*amp)
	}
	if st.SyncAdjusted < 1000 {
		t.Errorf("only %d sample frames adjusted: the sound did not move (12 ms, then 33 ms)", st.SyncAdjusted)
	}
	// The tone's period is 77.4 sample frames: in place within half of it.
	if half := time.Duration(39 * int64(time.Second) / media.SampleRate); time.Duration(off*int64(time.Second)/media.SampleRate).Abs() > half+time.Millisecond {
		t.Errorf("the sound is %v from where its pictures are shown (lag %v), want within %v", time.Duration(off*int64(time.Second)/media.SampleRate), lag, half)
	}
}
