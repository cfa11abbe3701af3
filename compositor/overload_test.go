package compositor

import (
	"bytes"
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// vclock is a virtual wall clock: sleeping advances it at once, and the
// slow sink below advances it by what encoding would cost.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (v *vclock) now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.t
}

func (v *vclock) add(d time.Duration) {
	v.mu.Lock()
	v.t = v.t.Add(d)
	v.mu.Unlock()
}

// slowSink models an encoder too slow for real time: a new picture costs
// fresh, a picture identical to the previous one (mostly skipped blocks for
// x264) costs repeat, both in virtual wall time.
type slowSink struct {
	capture
	clock         *vclock
	fresh, repeat time.Duration
	prev          []byte
	identical     int
	run           int // identical pictures in a row so far
	longestRepeat int
}

func (s *slowSink) WriteVideo(img *media.Image, pts time.Duration) error {
	if s.prev != nil && bytes.Equal(s.prev, img.Y) {
		s.identical++
		s.run++
		s.longestRepeat = max(s.longestRepeat, s.run)
		s.clock.add(s.repeat)
	} else {
		s.run = 0
		s.clock.add(s.fresh)
	}
	s.prev = append(s.prev[:0], img.Y...)
	return s.capture.WriteVideo(img, pts)
}

// TestLiveOverloadKeepsTimeline: a live compositor whose encoding costs
// more than a frame period stays on the wall clock by repeating the
// previous canvas (then, past MaxLag, skipping frames), while the output
// timeline stays exact: every frame on the 1/fps grid in order, audio
// continuous and as long as the run, and the degraded frames counted.
func TestLiveOverloadKeepsTimeline(t *testing.T) {
	const fps = 30
	const dur = 20 * time.Second
	period := time.Second / fps
	for _, tc := range []struct {
		name          string
		fresh, repeat time.Duration
		wantRepeat    bool
		wantSkip      bool
	}{
		{"keeps up", 20 * time.Millisecond, 5 * time.Millisecond, false, false},
		{"1.5x too slow, repeats suffice", 50 * time.Millisecond, 10 * time.Millisecond, true, false},
		{"even repeats too slow", 80 * time.Millisecond, 45 * time.Millisecond, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vc := &vclock{t: time.Unix(1_700_000_000, 0)}
			sink := &slowSink{capture: capture{keep: func(int) bool { return false }}, clock: vc, fresh: tc.fresh, repeat: tc.repeat}
			var in *Input
			n := 0
			cfg := Config{Width: 160, Height: 90, FPS: fps, Duration: dur, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop(),
				// The participant's camera: a new picture for every composed frame.
				OnFrame: func(pt time.Duration) {
					n++
					in.PushVideo(solid(160, 90, media.RGB(uint8(n*7), uint8(n*13), 90)), pt)
				}}
			cfg.now = vc.now
			cfg.sleep = func(_ context.Context, d time.Duration) { vc.add(d) }
			c, err := New(cfg, sink)
			if err != nil {
				t.Fatal(err)
			}
			in = c.AddInput("a", "Alice", InputOptions{})
			start := vc.now()
			c.Start()
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
			wall := vc.now().Sub(start)
			st := c.Stats()
			total := int(dur / period)
			t.Logf("wall %v for %v of media; composed %d, repeated %d, skipped %d, max lag %v",
				wall, dur, st.VideoFrames-st.RepeatedVideo, st.RepeatedVideo, st.SkippedVideo, st.MaxLag)
			// Live: the media never trails the wall clock by more than
			// the playout latency, MaxLag and one encode.
			if lim := dur + DefaultLatency + DefaultMaxLag + tc.fresh; wall > lim {
				t.Errorf("%v of media took %v of wall time (limit %v): fell behind", dur, wall, lim)
			}
			if got := len(sink.frames) + int(st.SkippedVideo); got != total {
				t.Errorf("frames written %d + skipped %d = %d, want %d", len(sink.frames), st.SkippedVideo, got, total)
			}
			if !tc.wantSkip && len(sink.frames) != total {
				t.Errorf("frames = %d, want exactly %d (%v × %d fps)", len(sink.frames), total, dur, fps)
			}
			// The picture moves on: at most 3 repeats in a row, and
			// under the worst overload still a new picture every 4 frames
			// written or a few skipped ones.
			if composed := st.VideoFrames - st.RepeatedVideo; tc.wantRepeat && composed < int64(total)/12 {
				t.Errorf("only %d of %d frames composed: the picture froze", composed, total)
			}
			if sink.longestRepeat > 3 {
				t.Errorf("%d identical pictures in a row, want at most 3 repeats after a new one", sink.longestRepeat+1)
			}
			prev := -1
			for _, f := range sink.frames {
				k := int(f.pts / period)
				if f.pts != time.Duration(k)*time.Second/fps || k <= prev {
					t.Fatalf("frame at %v: off the 1/%d s grid or out of order (previous index %d)", f.pts, fps, prev)
				}
				if !tc.wantSkip && k != prev+1 {
					t.Fatalf("gap before %v", f.pts)
				}
				prev = k
			}
			// Audio: contiguous (capture checks each block) and complete.
			if got := time.Duration(len(sink.audio)/media.Channels) * time.Second / media.SampleRate; got < dur || got > dur+50*time.Millisecond {
				t.Errorf("audio %v, want %v", got, dur)
			}
			if (st.RepeatedVideo > 0) != tc.wantRepeat || (st.SkippedVideo > 0) != tc.wantSkip {
				t.Errorf("repeated %d, skipped %d; want repeats %v, skips %v", st.RepeatedVideo, st.SkippedVideo, tc.wantRepeat, tc.wantSkip)
			}
			if int64(sink.identical) < st.RepeatedVideo {
				t.Errorf("%d repeated frames but only %d identical pictures reached the encoder", st.RepeatedVideo, sink.identical)
			}
			if tc.wantRepeat && st.MaxLag > DefaultMaxLag+tc.fresh {
				t.Errorf("max lag %v, want ≤ %v", st.MaxLag, DefaultMaxLag+tc.fresh)
			}
		})
	}
}

// TestLiveLostVersusRateConversion: the dropped-picture counter tells
// pictures lost (arrived after their frame was composed) from pictures
// left out because an input runs faster than the output.
func TestLiveLostVersusRateConversion(t *testing.T) {
	const fps = 30
	period := time.Second / fps
	for _, tc := range []struct {
		name          string
		push          func(in *Input, frame int, t time.Duration) // called before frame's pictures are taken
		dropped, lost int64
	}{
		// 60 fps into 30: the second picture of each frame period is left out.
		{"faster input", func(in *Input, k int, t time.Duration) {
			in.PushVideo(solid(64, 36, red), t-10*time.Millisecond)
			in.PushVideo(solid(64, 36, red), t+5*time.Millisecond)
		}, 60, 0},
		// A 30 fps input whose every 10th picture comes two frames late.
		{"late pictures", func(in *Input, k int, t time.Duration) {
			if k%10 == 5 {
				in.PushVideo(solid(64, 36, red), t-2*period)
			}
			in.PushVideo(solid(64, 36, red), t)
		}, 6, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vc := &vclock{t: time.Unix(1_700_000_000, 0)}
			var in *Input
			k := 0
			cfg := Config{Width: 64, Height: 36, FPS: fps, Duration: 2 * time.Second, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop(),
				OnFrame: func(pt time.Duration) { tc.push(in, k, pt); k++ }}
			cfg.now = vc.now
			cfg.sleep = func(_ context.Context, d time.Duration) { vc.add(d) }
			c, err := New(cfg, &capture{keep: func(int) bool { return false }})
			if err != nil {
				t.Fatal(err)
			}
			in = c.AddInput("a", "A", InputOptions{})
			c.Start()
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
			st := c.Stats()
			if st.DroppedVideo != tc.dropped || st.LostVideo != tc.lost {
				t.Errorf("dropped %d, lost %d; want %d, %d", st.DroppedVideo, st.LostVideo, tc.dropped, tc.lost)
			}
		})
	}
}

// TestLiveEveryPictureOfAnEqualRate: a live input at the output's frame
// rate has every picture shown once, in order, when its timestamps slip by
// part of a frame: its clock mapping settling back 33 ms over ten pictures
// (as rtprecv slews the step of a first sender report), or capture times
// jittering ±3 ms across the middle of two output frames. Pictures arrive
// five frames ahead of their instant, as the playout delay has them.
func TestLiveEveryPictureOfAnEqualRate(t *testing.T) {
	const fps = 30
	period := time.Second / fps
	for _, tc := range []struct {
		name string
		pts  func(k int) time.Duration
		// held: frames that repeat a picture. A picture whose capture
		// jitters late past the middle leaves its frame without a picture
		// before the input's slip is known; the next picture is not shown
		// early.
		held int
	}{
		{"steady", func(k int) time.Duration { return time.Duration(k)*period + 5*time.Millisecond }, 0},
		{"mapping settles back", func(k int) time.Duration {
			return time.Duration(k)*period + 10*time.Millisecond - time.Duration(min(max(k-10, 0), 10))*period/10
		}, 0},
		{"jitter across the middle", func(k int) time.Duration {
			return time.Duration(k)*period + period/2 + time.Duration(k*5%7-3)*time.Millisecond
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vc := &vclock{t: time.Unix(1_700_000_000, 0)}
			var in *Input
			next := 0
			cfg := Config{Width: 64, Height: 36, FPS: fps, Duration: 2 * time.Second, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop(),
				OnFrame: func(pt time.Duration) {
					for ; tc.pts(next) <= pt+5*period; next++ {
						in.PushVideo(solid(64, 36, media.YUV{Y: uint8(20 + 3*(next%70)), U: 128, V: 128}), tc.pts(next))
					}
				}}
			cfg.now = vc.now
			cfg.sleep = func(_ context.Context, d time.Duration) { vc.add(d) }
			sink := &capture{}
			c, err := New(cfg, sink)
			if err != nil {
				t.Fatal(err)
			}
			in = c.AddInput("a", "A", InputOptions{})
			c.Start()
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
			var shown []int
			for _, f := range sink.frames {
				shown = append(shown, (int(f.img.At(32, 18).Y)-20+1)/3)
			}
			held := 0
			for i := 1; i < len(shown); i++ {
				if shown[i] == shown[i-1] {
					held++
				} else if shown[i] != shown[i-1]+1 {
					t.Errorf("pictures shown %v: want each, in order", shown)
					break
				}
			}
			if held > tc.held {
				t.Errorf("pictures shown %v: %d held for a second frame, want at most %d", shown, held, tc.held)
			}
			if st := c.Stats(); st.DroppedVideo != 0 {
				t.Errorf("dropped %d pictures (%d lost), want none", st.DroppedVideo, st.LostVideo)
			}
		})
	}
}

// TestLiveLateSoundIsHeard: a sender whose audio clock runs 8 % slow (a
// starved browser's fake microphone does: its chunks are stamped 20 ms
// apart but come 21.6 ms apart) falls behind its stamps until its chunks
// come after their place was mixed. The sound is still heard, all of it:
// nothing is dropped, the late chunks go just ahead of the mixer and the
// input's sound stays that much later, moved in steps with a gap before
// each rather than stretched (the pitch stays), fading in after each gap. When the sender's stamps
// move forward to its arrival again (a sender report), the delay goes.
func TestLiveLateSoundIsHeard(t *testing.T) {
	const fps = 30
	const dur = 12 * time.Second
	const chunk = 20 * time.Millisecond
	const level = 0.25
	const resync = 300 // the chunk from which the stamps follow arrival again
	transit := 10 * time.Millisecond
	arrival := func(k int) time.Duration { return transit + time.Duration(float64(k)*float64(chunk)*1.08) }
	sink := &capture{keep: func(int) bool { return false }}
	k, delivered := 0, 0
	var lateAtResync, adjustedAtResync int64
	cfg := Config{Width: 64, Height: 36, FPS: fps, Duration: dur, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}
	c, in := runSoundOnly(t, cfg, sink, func(c *Compositor, in *Input, w time.Duration) {
		for ; arrival(k) <= w; k++ {
			pts := time.Duration(k) * chunk
			if k >= resync {
				pts = arrival(k) - transit
			}
			if k == resync {
				in.mu.Lock()
				lateAtResync = in.late
				in.mu.Unlock()
				adjustedAtResync = c.Stats().SyncAdjusted
			}
			a := make(media.Audio, 960*media.Channels)
			for i := range a {
				a[i] = level
			}
			in.PushAudio(a, pts)
			delivered += 960
		}
	})
	st := c.Stats()
	heard := 0
	var rise float32 // the steepest step up between samples: a click where sound starts after a gap
	for i := 0; i < len(sink.audio); i += media.Channels {
		if math.Abs(float64(sink.audio[i])-level) < 1e-4 {
			heard++
		}
		if i > 0 {
			rise = max(rise, sink.audio[i]-sink.audio[i-media.Channels])
		}
	}
	in.mu.Lock()
	late, queued := in.late, in.queued
	in.mu.Unlock()
	t.Logf("delivered %d sample frames, heard %d, still queued %d; late chunks %d, dropped %d, stretched %d; delay at the resync %v, at the end %v",
		delivered, heard, queued, st.LateAudio, st.DroppedAudio, st.SyncAdjusted,
		time.Duration(lateAtResync*int64(time.Second)/media.SampleRate), time.Duration(late*int64(time.Second)/media.SampleRate))
	if st.LateAudio == 0 {
		t.Fatalf("no chunk came late: the test does not test lateness")
	}
	if st.DroppedAudio != 0 {
		t.Errorf("%d sample frames dropped, want none", st.DroppedAudio)
	}
	// Everything delivered is heard, less what is still queued at the end
	// and the stretching's interpolation at the jumps.
	if want := delivered - queued; heard < want*99/100 {
		t.Errorf("heard %d sample frames of %d delivered (%d still queued)", heard, delivered, queued)
	}
	// Heard at its own pitch: the late chunks are moved whole, a gap
	// before each, never stretched to catch up (pitch would drop 5 %).
	if adjustedAtResync > int64(delivered)/200 {
		t.Errorf("%d sample frames stretched while the sender fell behind, want under 0.5 %%", adjustedAtResync)
	}
	// The sound after each gap (and at its start) fades in: no click.
	if rise > level/50 {
		t.Errorf("the sound steps up by %.3f between two samples (of %.2f): a click after a gap", rise, level)
	}
	if lateAtResync < int64(media.SampleRate)/10 {
		t.Errorf("the sound was only %d sample frames late before the resync: the sender did not fall behind", lateAtResync)
	}
	if late != 0 {
		t.Errorf("the sound is still %d sample frames later than its place after the sender's stamps came back", late)
	}
}

// TestLiveCloseCatchesUp: a live output that fell behind real time (an
// encoder too slow, overload degradation off) still makes, when closed,
// the frames and sound that were due before the Close: a stop loses
// nothing that came in time.
func TestLiveCloseCatchesUp(t *testing.T) {
	const fps = 30
	period := time.Second / fps
	vc := &vclock{t: time.Unix(1_700_000_000, 0)}
	sink := &slowSink{capture: capture{keep: func(int) bool { return false }}, clock: vc, fresh: 50 * time.Millisecond, repeat: 50 * time.Millisecond}
	var c *Compositor
	var start time.Time
	closed := make(chan error, 1)
	var behind time.Duration
	cfg := Config{Width: 64, Height: 36, FPS: fps, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop(),
		RepeatAfter: -1, MaxLag: -1,
		OnFrame: func(pt time.Duration) {
			if w := vc.now().Sub(start); w >= 3*time.Second && behind == 0 {
				behind = w - DefaultLatency - pt
				go func() { closed <- c.Close() }()
			}
		}}
	cfg.now = vc.now
	cfg.sleep = func(_ context.Context, d time.Duration) { vc.add(d) }
	var err error
	c, err = New(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	c.AddInput("a", "Alice", InputOptions{})
	start = vc.now()
	c.Start()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	due := c.closedAt.Sub(start) - DefaultLatency // the output instant due at the Close
	c.mu.Unlock()
	last := sink.frames[len(sink.frames)-1].pts
	audio := time.Duration(len(sink.audio)/media.Channels) * time.Second / media.SampleRate
	t.Logf("%v behind real time at 3 s; closed when %v was due; the last frame is at %v, the sound ends at %v", behind, due, last, audio)
	if behind < 500*time.Millisecond {
		t.Fatalf("the output was only %v behind: the test does not test catching up", behind)
	}
	if last < due-period || last > due {
		t.Errorf("the last frame is at %v, want the one due at the Close (%v)", last, due)
	}
	if audio < due-50*time.Millisecond {
		t.Errorf("the sound ends at %v, want up to the Close (%v)", audio, due)
	}
}

// TestLiveStalledSoundStaysInPlace: a sender that stalls for 600 ms and
// then sends what it held back all at once (its pictures of that time are
// lost too) is not moved later: the chunks that came too late are left
// out, and every chunk heard is heard at its own place, so the sound stays
// with the pictures. Each chunk carries its own level, so a chunk heard
// elsewhere shows.
func TestLiveStalledSoundStaysInPlace(t *testing.T) {
	const dur = 5 * time.Second
	const chunk = 20 * time.Millisecond
	const stallFrom, stallTo = 2 * time.Second, 2600 * time.Millisecond
	transit := 10 * time.Millisecond
	level := chunkLevel
	arrival := func(k int) time.Duration {
		at := time.Duration(k)*chunk + transit
		if at >= stallFrom && at < stallTo {
			at = stallTo
		}
		return at
	}
	st, sink, maxLate := runLevelChunks(t, dur, func(k int) time.Duration { return time.Duration(k) * chunk }, arrival)
	misplaced, silent := 0, 0
	for i := 0; i < len(sink.audio); i += media.Channels {
		k := i / media.Channels / 960
		v := sink.audio[i]
		switch {
		case k == 0: // fades in
		case v == 0:
			silent++
		case math.Abs(float64(v-level(k))) > 1e-6:
			misplaced++
		}
	}
	t.Logf("late chunks %d, dropped %d sample frames, silent %d, misplaced %d, largest delay %d sample frames", st.LateAudio, st.DroppedAudio, silent, misplaced, maxLate)
	if st.LateAudio != 0 || maxLate != 0 {
		t.Errorf("%d chunks moved later (delay up to %d sample frames): a stall's sound must stay with its pictures", st.LateAudio, maxLate)
	}
	if misplaced != 0 {
		t.Errorf("%d sample frames heard away from their own place", misplaced)
	}
	// What came too late (captured 2.0 s to about 2.4 s) is left out.
	if lost := time.Duration(silent) * time.Second / media.SampleRate; lost < 300*time.Millisecond || lost > 500*time.Millisecond {
		t.Errorf("%v of silence, want the ~400 ms that came after the mixer had passed", lost)
	}
}

// chunkLevel is the level of sound chunk k in the level-per-chunk tests,
// so a chunk heard away from its place shows.
func chunkLevel(k int) float32 { return 0.1 + 0.001*float32(k%500) }

// runLevelChunks runs a 30 fps live compositor for dur with one input
// that gets 20 ms chunks at chunkLevel, chunk k captured at capturedAt(k)
// and pushed once the clock reaches arrival(k). It returns the counts, what
// was heard and the largest delay the input put on late sound.
func runLevelChunks(t *testing.T, dur time.Duration, capturedAt, arrival func(k int) time.Duration) (Stats, *capture, int64) {
	t.Helper()
	sink := &capture{keep: func(int) bool { return false }}
	k := 0
	var maxLate int64
	cfg := Config{Width: 64, Height: 36, FPS: 30, Duration: dur, Scaler: nearest{}, NoLabels: true, Log: zerolog.Nop()}
	c, _ := runSoundOnly(t, cfg, sink, func(_ *Compositor, in *Input, w time.Duration) {
		for ; arrival(k) <= w; k++ {
			a := make(media.Audio, 960*media.Channels)
			for i := range a {
				a[i] = chunkLevel(k)
			}
			in.PushAudio(a, capturedAt(k))
			in.mu.Lock()
			maxLate = max(maxLate, in.late)
			in.mu.Unlock()
		}
	})
	return c.Stats(), sink, maxLate
}

// runSoundOnly runs a live cfg to its Duration on a virtual clock with one
// input without pictures, which feed gives its sound at every output frame
// (w: the virtual time since the start), and returns them when done.
func runSoundOnly(t *testing.T, cfg Config, sink Sink, feed func(c *Compositor, in *Input, w time.Duration)) (*Compositor, *Input) {
	t.Helper()
	vc := &vclock{t: time.Unix(1_700_000_000, 0)}
	var c *Compositor
	var in *Input
	var start time.Time
	cfg.OnFrame = func(time.Duration) { feed(c, in, vc.now().Sub(start)) }
	cfg.now = vc.now
	cfg.sleep = func(_ context.Context, d time.Duration) { vc.add(d) }
	c, err := New(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	in = c.AddInput("a", "Alice", InputOptions{NoVideo: true})
	start = vc.now()
	c.Start()
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	return c, in
}

// TestLiveLateStartIsAStall: an input whose first chunks come after their
// place was mixed (its receiver started late, or the process stalled as the
// track was added: its sound captured 1.0-1.4 s all comes at 1.45 s) is not
// a slow sender. Its first chunk has no earlier one to compare with, so it
// is judged against one that came on time: the chunks that came too late
// are left out, and every chunk heard is at its own place, with its
// pictures. CI once heard such a start's beep 200 ms from its picture.
func TestLiveLateStartIsAStall(t *testing.T) {
	const dur = 4 * time.Second
	const chunk = 20 * time.Millisecond
	const first, burstUntil, burstAt = time.Second, 1400 * time.Millisecond, 1450 * time.Millisecond
	transit := 10 * time.Millisecond
	level := chunkLevel
	capturedAt := func(k int) time.Duration { return first + time.Duration(k)*chunk }
	arrival := func(k int) time.Duration {
		if capturedAt(k) <= burstUntil {
			return burstAt
		}
		return capturedAt(k) + transit
	}
	st, sink, maxLate := runLevelChunks(t, dur, capturedAt, arrival)
	const fade = media.SampleRate * 25 / 10000 // 2.5 ms fade-in after a gap
	heard, misplaced, sinceGap := 0, 0, 0
	for i := 0; i < len(sink.audio); i += media.Channels {
		v := sink.audio[i]
		if v == 0 {
			sinceGap = 0
			continue
		}
		sinceGap++
		heard++
		at := time.Duration(i/media.Channels) * time.Second / media.SampleRate
		if at < first {
			misplaced++
			continue
		}
		if k := int((at - first) / chunk); sinceGap > fade && math.Abs(float64(v-level(k))) > 1e-6 {
			misplaced++
		}
	}
	lost := dur - first - time.Duration(heard)*time.Second/media.SampleRate
	t.Logf("late chunks %d, largest delay %d sample frames, heard %d sample frames, misplaced %d, left out %v", st.LateAudio, maxLate, heard, misplaced, lost)
	if st.LateAudio != 0 || maxLate != 0 {
		t.Errorf("%d chunks moved later (delay up to %d sample frames): a late start's sound must stay with its pictures", st.LateAudio, maxLate)
	}
	if misplaced != 0 {
		t.Errorf("%d sample frames heard away from their own place", misplaced)
	}
	// What came after the mixer had passed (captured 1.0 s to about 1.25 s) is left out.
	if lost < 200*time.Millisecond || lost > 350*time.Millisecond {
		t.Errorf("%v left out, want the ~250 ms that came after the mixer had passed", lost)
	}
}
