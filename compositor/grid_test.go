package compositor

import (
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
