package layout

import (
	"fmt"
	"testing"
)

func srcs(n int) []Source {
	s := make([]Source, n)
	for i := range s {
		s[i] = Source{ID: fmt.Sprint("p", i)}
	}
	return s
}

// checkTiles asserts the invariants every layout keeps: tiles inside the
// canvas, even-aligned, non-empty, not overlapping, unique IDs.
func checkTiles(t *testing.T, w, h int, tiles []Tile) {
	t.Helper()
	seen := map[string]bool{}
	for i, a := range tiles {
		r := a.Rect
		if r.Empty() || r.X < 0 || r.Y < 0 || r.X+r.W > w || r.Y+r.H > h {
			t.Fatalf("tile %d %+v outside %dx%d or empty", i, r, w, h)
		}
		if r.X%2|r.Y%2|r.W%2|r.H%2 != 0 {
			t.Fatalf("tile %d %+v not even-aligned", i, r)
		}
		if seen[a.ID] {
			t.Fatalf("tile %s twice", a.ID)
		}
		seen[a.ID] = true
		for j, b := range tiles[:i] {
			q := b.Rect
			if r.X < q.X+q.W && q.X < r.X+r.W && r.Y < q.Y+q.H && q.Y < r.Y+r.H {
				t.Fatalf("tiles %d %+v and %d %+v overlap", i, r, j, q)
			}
		}
	}
}

func TestGridDims(t *testing.T) {
	cases := []struct{ n, w, h, rows, cols int }{
		{1, 1280, 720, 1, 1}, {2, 1280, 720, 1, 2}, {3, 1280, 720, 2, 2}, {4, 1280, 720, 2, 2},
		{5, 1280, 720, 2, 3}, {6, 1280, 720, 2, 3}, {7, 1280, 720, 3, 3}, {8, 1280, 720, 3, 3},
		{9, 1280, 720, 3, 3}, {10, 1280, 720, 3, 4}, {11, 1280, 720, 3, 4}, {12, 1280, 720, 3, 4},
		{13, 1280, 720, 4, 4}, {14, 1280, 720, 4, 4}, {15, 1280, 720, 4, 4}, {16, 1280, 720, 4, 4},
		// A portrait canvas stacks.
		{2, 720, 1280, 2, 1}, {4, 720, 1280, 4, 1}, {3, 720, 1280, 3, 1},
		// A square canvas.
		{2, 1000, 1000, 2, 1},
	}
	for _, c := range cases {
		r, co := GridDims(c.n, c.w, c.h)
		if r != c.rows || co != c.cols {
			t.Errorf("GridDims(%d, %dx%d) = %dx%d, want %dx%d", c.n, c.w, c.h, r, co, c.rows, c.cols)
		}
		if r*co < c.n {
			t.Errorf("GridDims(%d) has only %d cells", c.n, r*co)
		}
	}
}

func TestEveryLayoutEveryCount(t *testing.T) {
	sizes := [][2]int{{1280, 720}, {1920, 1080}, {854, 480}, {640, 360}, {1080, 1920}}
	for _, kind := range []Kind{Grid, Speaker, Single, Screenshare} {
		for _, sz := range sizes {
			for n := 1; n <= 20; n++ {
				for _, gap := range []int{0, 6} {
					name := fmt.Sprintf("%s/%dx%d/n%d/gap%d", kind, sz[0], sz[1], n, gap)
					t.Run(name, func(t *testing.T) {
						s := srcs(n)
						if kind == Screenshare {
							s[n-1].Screen = true
						}
						tiles := Compute(Params{Kind: kind, Width: sz[0], Height: sz[1], Sources: s, Active: s[0].ID, Gap: gap})
						checkTiles(t, sz[0], sz[1], tiles)
						want := min(n, MaxTiles)
						if kind == Single {
							want = 1
						}
						if len(tiles) != want {
							t.Fatalf("%d tiles, want %d", len(tiles), want)
						}
						mains := 0
						for _, tl := range tiles {
							if tl.Main {
								mains++
							}
						}
						if kind != Grid && mains != 1 {
							t.Fatalf("%d main tiles", mains)
						}
						if kind == Grid && mains != 0 {
							t.Fatal("grid has a main tile")
						}
					})
				}
			}
		}
	}
}

func TestGridFourIsQuadrants(t *testing.T) {
	tiles := Compute(Params{Kind: Grid, Width: 1280, Height: 720, Sources: srcs(4)})
	want := []Rect{{0, 0, 640, 360}, {640, 0, 640, 360}, {0, 360, 640, 360}, {640, 360, 640, 360}}
	for i, tl := range tiles {
		if tl.Rect != want[i] {
			t.Errorf("tile %d = %+v, want %+v", i, tl.Rect, want[i])
		}
	}
}

func TestGridCentresLastRow(t *testing.T) {
	tiles := Compute(Params{Kind: Grid, Width: 1280, Height: 720, Sources: srcs(3)})
	if got := tiles[2].Rect; got != (Rect{320, 360, 640, 360}) {
		t.Fatalf("third tile %+v, want centred on the second row", got)
	}
}

func TestSpeakerActiveIsMain(t *testing.T) {
	s := srcs(4)
	tiles := Compute(Params{Kind: Speaker, Width: 1280, Height: 720, Sources: s, Active: "p2"})
	if !tiles[0].Main || tiles[0].ID != "p2" {
		t.Fatalf("main tile %+v, want p2", tiles[0])
	}
	main := tiles[0].Rect
	for _, tl := range tiles[1:] {
		if tl.Rect.W*tl.Rect.H*4 > main.W*main.H {
			t.Fatalf("filmstrip tile %+v not small next to main %+v", tl.Rect, main)
		}
		if tl.Rect.Y < main.Y+main.H {
			t.Fatalf("filmstrip tile %+v not below main %+v", tl.Rect, main)
		}
	}
	// Unknown active speaker: the first camera takes the main tile.
	tiles = Compute(Params{Kind: Speaker, Width: 1280, Height: 720, Sources: s, Active: "gone"})
	if tiles[0].ID != "p0" {
		t.Fatalf("fallback main %s", tiles[0].ID)
	}
	// Alone: the whole canvas.
	tiles = Compute(Params{Kind: Speaker, Width: 1280, Height: 720, Sources: s[:1]})
	if len(tiles) != 1 || tiles[0].Rect != (Rect{0, 0, 1280, 720}) {
		t.Fatalf("alone: %+v", tiles)
	}
}

func TestSingleShowsActive(t *testing.T) {
	tiles := Compute(Params{Kind: Single, Width: 1920, Height: 1080, Sources: srcs(3), Active: "p1"})
	if len(tiles) != 1 || tiles[0].ID != "p1" || tiles[0].Rect != (Rect{0, 0, 1920, 1080}) {
		t.Fatalf("%+v", tiles)
	}
}

func TestScreenshare(t *testing.T) {
	s := append(srcs(3), Source{ID: "screen", Screen: true})
	tiles := Compute(Params{Kind: Screenshare, Width: 1280, Height: 720, Sources: s})
	if tiles[0].ID != "screen" || !tiles[0].Main {
		t.Fatalf("screen not main: %+v", tiles[0])
	}
	if tiles[0].Rect.W < 1280*3/4 {
		t.Fatalf("screen tile %+v too narrow", tiles[0].Rect)
	}
	for _, tl := range tiles[1:] {
		if tl.Rect.X < tiles[0].Rect.W {
			t.Fatalf("camera %+v overlaps the screen column", tl.Rect)
		}
	}
	// Without a screen it is the speaker layout.
	tiles = Compute(Params{Kind: Screenshare, Width: 1280, Height: 720, Sources: srcs(3), Active: "p1"})
	if tiles[0].ID != "p1" {
		t.Fatalf("fallback: %+v", tiles[0])
	}
}

func TestPlace(t *testing.T) {
	tile := Rect{100, 50, 640, 360}
	cases := []struct {
		name     string
		sw, sh   int
		fit      Fit
		src, dst Rect
	}{
		{"same aspect", 1280, 720, Letterbox, Rect{0, 0, 1280, 720}, tile},
		{"4:3 letterbox pillars", 640, 480, Letterbox, Rect{0, 0, 640, 480}, Rect{180, 50, 480, 360}},
		{"portrait letterbox", 360, 640, Letterbox, Rect{0, 0, 360, 640}, Rect{318, 50, 202, 360}},
		{"wide letterbox bars", 1280, 360, Letterbox, Rect{0, 0, 1280, 360}, Rect{100, 140, 640, 180}},
		{"4:3 crop", 640, 480, Crop, Rect{0, 60, 640, 360}, tile},
		{"portrait crop", 360, 640, Crop, Rect{0, 218, 360, 202}, tile},
		{"wide crop", 1280, 360, Crop, Rect{320, 0, 640, 360}, tile},
		{"odd source", 321, 241, Letterbox, Rect{0, 0, 320, 240}, Rect{180, 50, 480, 360}},
	}
	for _, c := range cases {
		src, dst := Place(c.sw, c.sh, tile, c.fit)
		if src != c.src || dst != c.dst {
			t.Errorf("%s: Place = %+v %+v, want %+v %+v", c.name, src, dst, c.src, c.dst)
		}
	}
	if s, d := Place(0, 0, tile, Letterbox); !s.Empty() || !d.Empty() {
		t.Error("empty source should place nothing")
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"grid", "Speaker", " single ", "screenshare"} {
		if _, err := ParseKind(s); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseKind("mosaic"); err == nil {
		t.Error("mosaic accepted")
	}
	if f, err := ParseFit("crop"); err != nil || f != Crop {
		t.Error("crop")
	}
	if _, err := ParseFit("stretch"); err == nil {
		t.Error("stretch accepted")
	}
}

func BenchmarkCompute16(b *testing.B) {
	p := Params{Kind: Grid, Width: 1920, Height: 1080, Sources: srcs(16)}
	for b.Loop() {
		Compute(p)
	}
}
