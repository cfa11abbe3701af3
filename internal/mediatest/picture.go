package mediatest

import (
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
)

// BoxX is the mean column of a moving white box (lktest.MovingBox) in the
// top third of a tile, -1 when none shows: two pictures of a live source
// have it at different places, a held picture at the same.
func BoxX(img *media.Image, r layout.Rect) float64 {
	var s, n int
	for y := r.Y + 2; y < r.Y+r.H/3; y++ {
		for x := r.X + 2; x < r.X+r.W-2; x++ {
			if img.At(x, y).Y > 200 {
				s, n = s+x, n+1
			}
		}
	}
	if n == 0 {
		return -1
	}
	return float64(s) / float64(n)
}

// HasCentredName reports whether a tile's middle holds some white text and
// is mostly not white: a placeholder showing its participant's name.
func HasCentredName(img *media.Image, r layout.Rect) bool {
	white, n := 0, 0
	for y := r.Y + r.H*2/5; y < r.Y+r.H*3/5; y++ {
		for x := r.X + r.W/4; x < r.X+r.W*3/4; x++ {
			if img.At(x, y).Y > 180 {
				white++
			}
			n++
		}
	}
	f := float64(white) / float64(n)
	return f > 0.01 && f < 0.5
}
