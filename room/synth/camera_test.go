package synth

import (
	"math"
	"testing"

	"github.com/roomcast/roomcast/media"
)

// TestCameraPattern: the camera-like picture keeps the speaker's colour at
// the centre (tests find speakers there), has a textured background, and
// moves between frames the way a panned camera does: the background of a
// later frame matches the earlier one shifted by a few pixels (motion an
// encoder can find), not at the same place, and not anywhere exactly
// (sensor noise).
func TestCameraPattern(t *testing.T) {
	green := Palette[1]
	cam := newCamera(640, 360, green, 2)
	a, b := cam.frame(0), cam.frame(15)
	defer media.PutImage(a)
	defer media.PutImage(b)
	y, u, v := a.Y[180*a.StrideY+320], a.U[90*a.StrideC+160], a.V[90*a.StrideC+160]
	if d := int(y) - int(green.Y); d < -6 || d > 6 || u != green.U || v != green.V {
		t.Errorf("centre %d,%d,%d, want the speaker's %v", y, u, v, green)
	}
	// A background block (top left, away from the person).
	const bx, by, bs = 40, 30, 32
	var sum, sq float64
	for yy := by; yy < by+bs; yy++ {
		for xx := bx; xx < bx+bs; xx++ {
			p := float64(a.Y[yy*a.StrideY+xx])
			sum += p
			sq += p * p
		}
	}
	mean := sum / (bs * bs)
	if sd := math.Sqrt(sq/(bs*bs) - mean*mean); sd < 8 {
		t.Errorf("background luma spread %.1f: flat, not a room", sd)
	}
	mad := func(dx, dy int) float64 {
		s := 0.0
		for yy := by; yy < by+bs; yy++ {
			for xx := bx; xx < bx+bs; xx++ {
				s += math.Abs(float64(a.Y[yy*a.StrideY+xx]) - float64(b.Y[(yy+dy)*b.StrideY+xx+dx]))
			}
		}
		return s / (bs * bs)
	}
	best, bdx, bdy := math.Inf(1), 0, 0
	for dy := -16; dy <= 16; dy++ {
		for dx := -16; dx <= 16; dx++ {
			if m := mad(dx, dy); m < best {
				best, bdx, bdy = m, dx, dy
			}
		}
	}
	still := mad(0, 0)
	if (bdx == 0 && bdy == 0) || best > 4 || still < 3*best || best < 0.5 {
		t.Errorf("frame 15 vs 0: best match %.2f at (%d,%d), in place %.2f; want a small shift that predicts it well but not exactly", best, bdx, bdy, still)
	}
}

// BenchmarkCameraFrame: drawing one 640x360 camera picture (four speakers
// at 30 fps draw 120 a second).
func BenchmarkCameraFrame(b *testing.B) {
	cam := newCamera(640, 360, Palette[0], 1)
	for i := 0; i < b.N; i++ {
		media.PutImage(cam.frame(int64(i)))
	}
}
