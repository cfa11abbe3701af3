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

// TestCameraNoiseFresh: the sensor noise (what a frame holds beyond the
// same frame drawn without noise) is ±1 in about equal shares, and a frame's
// noise is not found in the previous frame within an encoder's search range
// (it comes from a table, at a fresh random offset for every row): motion
// compensation cannot predict it, as with a real sensor.
func TestCameraNoiseFresh(t *testing.T) {
	cam := newCamera(640, 360, Palette[2], 3)
	clean := *cam
	clean.noise = make([]uint8, len(cam.noise))
	for i := range clean.noise {
		clean.noise[i] = 1 // 1 + 0: no noise
	}
	residual := func(f int64) []int {
		a, b := cam.frame(f), clean.frame(f)
		defer media.PutImage(a)
		defer media.PutImage(b)
		r := make([]int, len(a.Y))
		for i := range r {
			r[i] = int(a.Y[i]) - int(b.Y[i])
		}
		return r
	}
	r0, r1 := residual(40), residual(41)
	var count [3]int
	for _, d := range r1 {
		if d < -1 || d > 1 {
			t.Fatalf("noise %d, want -1, 0 or +1", d)
		}
		count[d+1]++
	}
	for k, n := range count {
		if share := float64(n) / float64(len(r1)); share < 0.3 || share > 0.37 {
			t.Errorf("noise %+d in %.3f of the pixels, want about a third", k-1, share)
		}
	}
	// 16x16 blocks of frame 41 against every shift up to ±16 in frame 40:
	// equal noise in about a third of the pixels is chance.
	const bs, r = 16, 16
	for _, blk := range [][2]int{{40, 30}, {300, 100}, {500, 250}} {
		best := 0.0
		for dy := -r; dy <= r; dy++ {
			for dx := -r; dx <= r; dx++ {
				same := 0
				for y := blk[1]; y < blk[1]+bs; y++ {
					for x := blk[0]; x < blk[0]+bs; x++ {
						if r1[y*640+x] == r0[(y+dy)*640+x+dx] {
							same++
						}
					}
				}
				best = max(best, float64(same)/(bs*bs))
			}
		}
		if best > 0.5 {
			t.Errorf("block at %v: the previous frame's noise matches %.2f of it at some shift; want chance (about a third)", blk, best)
		}
	}
}
