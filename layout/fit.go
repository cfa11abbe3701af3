package layout

import "fmt"

// Fit says how a picture of another shape fills a tile.
type Fit int

// Fit modes.
const (
	// Letterbox shows the whole picture, with bars on two sides (default).
	Letterbox Fit = iota
	// Crop fills the tile and cuts off the overflow, centred.
	Crop
)

// ParseFit accepts "letterbox" or "crop".
func ParseFit(s string) (Fit, error) {
	switch s {
	case "", "letterbox":
		return Letterbox, nil
	case "crop", "fill":
		return Crop, nil
	}
	return 0, fmt.Errorf("unknown fit %q (want letterbox or crop)", s)
}

// Place maps a srcW×srcH picture into tile: it returns the part of the source
// to use (src, in source pixels) and where it lands (dst, in canvas pixels).
// Both are even-aligned and non-empty for non-empty inputs.
func Place(srcW, srcH int, tile Rect, fit Fit) (src, dst Rect) {
	if srcW <= 0 || srcH <= 0 || tile.Empty() {
		return Rect{}, Rect{}
	}
	src = Rect{0, 0, srcW, srcH}
	dst = tile
	if fit == Crop {
		// Keep the tile's aspect; cut the source.
		if srcW*tile.H > tile.W*srcH { // source wider than tile
			w := srcH * tile.W / tile.H
			src = Rect{(srcW - w) / 2, 0, w, srcH}
		} else {
			h := srcW * tile.H / tile.W
			src = Rect{0, (srcH - h) / 2, srcW, h}
		}
	} else {
		if srcW*tile.H > tile.W*srcH { // bars top and bottom
			h := tile.W * srcH / srcW
			dst = Rect{tile.X, tile.Y + (tile.H-h)/2, tile.W, h}
		} else {
			w := tile.H * srcW / srcH
			dst = Rect{tile.X + (tile.W-w)/2, tile.Y, w, tile.H}
		}
	}
	src, dst = evenIn(src), evenIn(dst)
	if src.Empty() {
		src = Rect{0, 0, srcW &^ 1, srcH &^ 1}
	}
	return src, dst
}

// evenIn aligns r to even coordinates, staying inside it, but never below 2×2.
func evenIn(r Rect) Rect {
	e := even(r)
	if e.W < 2 {
		e.W = 2
	}
	if e.H < 2 {
		e.H = 2
	}
	return e
}
