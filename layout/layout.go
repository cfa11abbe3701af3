// Package layout computes where each participant's picture goes on the
// output canvas. It is pure arithmetic: no cgo, no pixels, no clocks, so every
// layout and tile count is table-tested in microseconds.
package layout

import (
	"fmt"
	"strings"
)

// Kind names a layout.
type Kind string

// The layouts roomcast offers.
const (
	// Grid puts every source in a best-fit rows×cols grid.
	Grid Kind = "grid"
	// Speaker shows the active speaker large with the others in a filmstrip below.
	Speaker Kind = "speaker"
	// Single shows only the active speaker.
	Single Kind = "single"
	// Screenshare shows a shared screen large with the speakers in a column beside it.
	Screenshare Kind = "screenshare"
)

// MaxTiles is the largest number of tiles a grid holds; sources beyond it are
// not shown (the most recently active ones are kept by the caller's order).
const MaxTiles = 16

// ParseKind accepts a layout name as typed on the command line.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case Grid, Speaker, Single, Screenshare:
		return k, nil
	}
	return "", fmt.Errorf("unknown layout %q (want grid, speaker, single or screenshare)", s)
}

// Rect is an axis-aligned rectangle in canvas pixels.
type Rect struct{ X, Y, W, H int }

// Empty reports whether the rectangle has no area.
func (r Rect) Empty() bool { return r.W <= 0 || r.H <= 0 }

// Contains reports whether the point lies inside r.
func (r Rect) Contains(x, y int) bool { return x >= r.X && y >= r.Y && x < r.X+r.W && y < r.Y+r.H }

// Source is one picture that may get a tile: a participant's camera or a
// shared screen.
type Source struct {
	ID     string
	Screen bool // a screen share rather than a camera
}

// Tile places one source on the canvas.
type Tile struct {
	ID   string
	Rect Rect
	// Main marks the large tile of the speaker, single and screenshare layouts.
	Main bool
}

// Params is the input of Compute.
type Params struct {
	Kind          Kind
	Width, Height int // canvas size
	// Sources in display order (join order is the natural choice).
	Sources []Source
	// Active is the ID of the active speaker's camera; empty when nobody has
	// spoken yet (the first source then takes the main tile).
	Active string
	// Gap is the space between tiles in pixels; it defaults to 0.
	Gap int
}

// Compute returns the tiles for p. A screenshare layout without any screen
// source falls back to speaker, and speaker/single without sources return
// nothing. Every rectangle has even coordinates and sizes, as YUV 4:2:0 needs.
func Compute(p Params) []Tile {
	if len(p.Sources) == 0 || p.Width <= 0 || p.Height <= 0 {
		return nil
	}
	canvas := Rect{0, 0, p.Width, p.Height}
	switch p.Kind {
	case Single:
		return []Tile{{ID: activeID(p), Rect: even(canvas), Main: true}}
	case Speaker:
		return speaker(p, canvas)
	case Screenshare:
		scr := -1
		for i, s := range p.Sources {
			if s.Screen {
				scr = i
				break
			}
		}
		if scr < 0 {
			return speaker(p, canvas)
		}
		return screenshare(p, canvas, scr)
	default:
		srcs := p.Sources
		if len(srcs) > MaxTiles {
			srcs = srcs[:MaxTiles]
		}
		rects := GridRects(canvas, len(srcs), p.Gap)
		tiles := make([]Tile, len(srcs))
		for i, s := range srcs {
			tiles[i] = Tile{ID: s.ID, Rect: rects[i]}
		}
		return tiles
	}
}

// activeID is the source that takes the main tile: the active speaker if it
// is a source, else the first camera, else the first source.
func activeID(p Params) string {
	for _, s := range p.Sources {
		if s.ID == p.Active && p.Active != "" {
			return s.ID
		}
	}
	for _, s := range p.Sources {
		if !s.Screen {
			return s.ID
		}
	}
	return p.Sources[0].ID
}

// GridDims returns the rows and columns that show n tiles of 16:9 content
// largest on a w×h canvas; among equal sizes it prefers fewer empty cells,
// then more columns (two people sit side by side, not stacked).
func GridDims(n, w, h int) (rows, cols int) {
	if n <= 0 {
		return 0, 0
	}
	best := -1.0
	for c := 1; c <= n; c++ {
		r := (n + c - 1) / c
		tw, th := float64(w)/float64(c), float64(h)/float64(r)
		// Size of a 16:9 picture letterboxed into the cell.
		cw := min(tw, th*16/9)
		area := cw * cw * 9 / 16
		empty := r*c - n
		score := area - float64(empty) // area dominates; empties break ties
		if score >= best-1e-6 {
			best, rows, cols = score, r, c
		}
	}
	return rows, cols
}

// GridRects splits area into n cells in GridDims order (row by row). The last
// row, when not full, is centred.
func GridRects(area Rect, n, gap int) []Rect {
	rows, cols := GridDims(n, area.W, area.H)
	out := make([]Rect, 0, n)
	cellW := (area.W - gap*(cols-1)) / cols
	cellH := (area.H - gap*(rows-1)) / rows
	for r := 0; r < rows; r++ {
		inRow := min(cols, n-r*cols)
		rowW := inRow*cellW + (inRow-1)*gap
		x0 := area.X + (area.W-rowW)/2
		for c := 0; c < inRow; c++ {
			out = append(out, even(Rect{x0 + c*(cellW+gap), area.Y + r*(cellH+gap), cellW, cellH}))
		}
	}
	return out
}

// speaker: main tile on top, a filmstrip of the others along the bottom.
func speaker(p Params, canvas Rect) []Tile {
	main := activeID(p)
	others := make([]Source, 0, len(p.Sources))
	for _, s := range p.Sources {
		if s.ID != main {
			others = append(others, s)
		}
	}
	if len(others) == 0 {
		return []Tile{{ID: main, Rect: even(canvas), Main: true}}
	}
	// The strip holds at least 4 slots so thumbnails stay small, and at
	// most MaxTiles-1 sources.
	if len(others) > MaxTiles-1 {
		others = others[:MaxTiles-1]
	}
	slots := max(len(others), 4)
	tw := (canvas.W - p.Gap*(slots-1)) / slots
	th := tw * 9 / 16
	stripY := canvas.H - th
	tiles := []Tile{{ID: main, Rect: even(Rect{canvas.X, canvas.Y, canvas.W, stripY - p.Gap}), Main: true}}
	rowW := len(others)*tw + (len(others)-1)*p.Gap
	x0 := canvas.X + (canvas.W-rowW)/2
	for i, s := range others {
		tiles = append(tiles, Tile{ID: s.ID, Rect: even(Rect{x0 + i*(tw+p.Gap), canvas.Y + stripY, tw, th})})
	}
	return tiles
}

// screenshare: the screen takes the left part, cameras stack in a column on
// the right.
func screenshare(p Params, canvas Rect, scr int) []Tile {
	screen := p.Sources[scr]
	var cams []Source
	for i, s := range p.Sources {
		if i != scr && !s.Screen {
			cams = append(cams, s)
		}
	}
	if len(cams) == 0 {
		return []Tile{{ID: screen.ID, Rect: even(canvas), Main: true}}
	}
	if len(cams) > MaxTiles-1 {
		cams = cams[:MaxTiles-1]
	}
	// Column slots: at least 4 so a 16:9 thumbnail is a fifth of the width.
	slots := max(len(cams), 4)
	th := (canvas.H - p.Gap*(slots-1)) / slots
	tw := th * 16 / 9
	colX := canvas.W - tw
	tiles := []Tile{{ID: screen.ID, Rect: even(Rect{canvas.X, canvas.Y, colX - p.Gap, canvas.H}), Main: true}}
	colH := len(cams)*th + (len(cams)-1)*p.Gap
	y0 := canvas.Y + (canvas.H-colH)/2
	for i, s := range cams {
		tiles = append(tiles, Tile{ID: s.ID, Rect: even(Rect{canvas.X + colX, y0 + i*(th+p.Gap), tw, th})})
	}
	return tiles
}

// even aligns a rectangle to the 2×2 chroma grid, shrinking it if needed.
func even(r Rect) Rect {
	x, y := (r.X+1)&^1, (r.Y+1)&^1
	w, h := (r.W-(x-r.X))&^1, (r.H-(y-r.Y))&^1
	return Rect{x, y, max(w, 0), max(h, 0)}
}
