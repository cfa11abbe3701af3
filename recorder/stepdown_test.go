package recorder

import (
	"slices"
	"testing"
	"time"
)

// TestStepDown feeds the judgement frame by frame, the switch happening
// at the keyframe after each ask (every 2 s).
func TestStepDown(t *testing.T) {
	const fps = 30
	type ask struct{ frame, steps int }
	run := func(overloaded func(i int) bool, work time.Duration) []ask {
		s := stepDown{fps: fps}
		var degraded int64
		var asks []ask
		pending := false
		for i := range 30 * fps {
			pts := time.Duration(i) * time.Second / fps
			if pending && i%(2*fps) == 0 {
				pending = false
				s.switched()
			}
			if overloaded(i) {
				degraded++
			}
			if n := s.frame(pts, degraded, work); n > 0 {
				asks = append(asks, ask{i, n})
				pending = true
			}
		}
		if s.lastWork != work {
			t.Errorf("mean work %v, want %v", s.lastWork, work)
		}
		return asks
	}
	// A 5-frame stall (a window at 17 %) asks nothing; a lasting
	// overload with every third frame repeated (33 %) asks one step after
	// two windows (the judgement at 7 s); the switch at 8 s; the window
	// that ends there is not judged, the next two ask again at 10 s; the
	// switch at 12 s, … 14 s, 18 s.
	mild := run(func(i int) bool {
		sec := i / fps
		return (sec == 2 && i%fps < 5) || (sec >= 5 && sec < 20 && i%3 == 0)
	}, 20*time.Millisecond)
	if want := []ask{{7 * fps, 1}, {10 * fps, 1}, {14 * fps, 1}, {18 * fps, 1}}; !slices.Equal(mild, want) {
		t.Errorf("mild overload: asks %v, want %v", mild, want)
	}
	// Two frames of three degraded (67 %): one step after one window (at
	// 6 s), then after each switch's window, one more; nine of ten (90 %):
	// two steps each time.
	for _, c := range []struct {
		every, of, steps int
	}{{2, 3, 1}, {9, 10, 2}} {
		got := run(func(i int) bool { return i >= 5*fps && i%c.of < c.every }, 20*time.Millisecond)
		want := []ask{{6 * fps, c.steps}, {9 * fps, c.steps}}
		for s := 11; s < 30; s += 2 {
			want = append(want, ask{s * fps, c.steps})
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d of %d degraded: asks %v, want %v", c.every, c.of, got, want)
		}
	}
	// The same overload while the encoder takes 5 ms of each 33 ms frame
	// (15 %): composing is the cost; a faster preset would not help.
	if got := run(func(i int) bool { return i >= 5*fps && i%3 < 2 }, 5*time.Millisecond); len(got) != 0 {
		t.Errorf("cheap encoding: asks %v, want none", got)
	}
}
