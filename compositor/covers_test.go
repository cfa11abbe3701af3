package compositor

import (
	"testing"

	"github.com/roomcast/roomcast/layout"
)

func TestCovers(t *testing.T) {
	tile := func(x, y, w, h int) layout.Tile {
		return layout.Tile{ID: "t", Rect: layout.Rect{X: x, Y: y, W: w, H: h}}
	}
	for _, tc := range []struct {
		name  string
		tiles []layout.Tile
		want  bool
	}{
		{"2x2 grid", []layout.Tile{tile(0, 0, 640, 360), tile(640, 0, 640, 360), tile(0, 360, 640, 360), tile(640, 360, 640, 360)}, true},
		{"one full tile", []layout.Tile{tile(0, 0, 1280, 720)}, true},
		{"overlapping tiles (picture in picture)", []layout.Tile{tile(0, 0, 1280, 720), tile(960, 540, 320, 180)}, true},
		{"gap between tiles", []layout.Tile{tile(0, 0, 636, 720), tile(644, 0, 636, 720)}, false},
		{"missing corner", []layout.Tile{tile(0, 0, 640, 360), tile(640, 0, 640, 360), tile(0, 360, 640, 360)}, false},
		{"letterboxed row", []layout.Tile{tile(0, 90, 640, 360), tile(640, 90, 640, 360)}, false},
		{"odd edge", []layout.Tile{tile(0, 0, 641, 720), tile(641, 0, 639, 720)}, false},
		{"tile past the canvas", []layout.Tile{tile(-2, -2, 1290, 730)}, true},
		{"no tiles", nil, false},
	} {
		if got := covers(tc.tiles, 1280, 720); got != tc.want {
			t.Errorf("%s: covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
