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
	srcW, srcH = srcW&^1, srcH&^1
	if srcW <= 0 || srcH <= 0 || tile.Empty() {
		return Rect{}, Rect{}
	}
	src = Rect{0, 0, srcW, srcH}
	dst = tile
	// Sizes are rounded to even first, then centred on an even offset, so
	// alignment never shrinks the picture by more than one pixel pair.
	if fit == Crop {
		// Keep the tile's aspect; cut the source.
		if srcW*tile.H > tile.W*srcH { // source wider than tile
			w := max(srcH*tile.W/tile.H&^1, 2)
			src = Rect{(srcW - w) / 2 &^ 1, 0, w, srcH}
		} else {
			h := max(srcW*tile.H/tile.W&^1, 2)
			src = Rect{0, (srcH - h) / 2 &^ 1, srcW, h}
		}
	} else {
		if srcW*tile.H > tile.W*srcH { // bars top and bottom
			h := max(tile.W*srcH/srcW&^1, 2)
			dst = Rect{tile.X, tile.Y + (tile.H-h)/2&^1, tile.W, h}
		} else {
			w := max(tile.H*srcW/srcH&^1, 2)
			dst = Rect{tile.X + (tile.W-w)/2&^1, tile.Y, w, tile.H}
		}
	}
	return src, dst
}
