package compositor

import (
	"image"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
)

// Labels are rendered once per (name, size) into an alpha mask with the Go
// fonts (pure Go, no fontconfig lookup at run time) and blended into the
// luma plane each frame.
var (
	goFontOnce sync.Once
	goFont     *opentype.Font
)

type textKey struct {
	s    string
	size int
}

type textCache struct {
	masks map[textKey]*image.Alpha
	faces map[int]font.Face
}

func newTextCache() *textCache {
	goFontOnce.Do(func() {
		f, err := opentype.Parse(goregular.TTF)
		if err != nil {
			panic(err) // the embedded font is known good
		}
		goFont = f
	})
	return &textCache{masks: map[textKey]*image.Alpha{}, faces: map[int]font.Face{}}
}

func (tc *textCache) mask(s string, size int) *image.Alpha {
	k := textKey{s, size}
	if m, ok := tc.masks[k]; ok {
		return m
	}
	face, ok := tc.faces[size]
	if !ok {
		var err error
		face, err = opentype.NewFace(goFont, &opentype.FaceOptions{Size: float64(size), DPI: 72, Hinting: font.HintingFull})
		if err != nil {
			panic(err)
		}
		tc.faces[size] = face
	}
	d := font.Drawer{Face: face, Src: image.White}
	w := d.MeasureString(s).Ceil()
	met := face.Metrics()
	h := (met.Ascent + met.Descent).Ceil()
	m := image.NewAlpha(image.Rect(0, 0, max(w, 1), max(h, 1)))
	d.Dst = m
	d.Dot = fixed.Point26_6{X: 0, Y: met.Ascent}
	d.DrawString(s)
	if len(tc.masks) > 256 { // names change rarely; bound it anyway
		clear(tc.masks)
	}
	tc.masks[k] = m
	return m
}

// labelSize is the font size in pixels for a tile.
func labelSize(tile layout.Rect) int {
	return max(10, min(28, tile.H/12))
}

// drawLabel puts the name on a dark band in the tile's bottom-left corner.
func (tc *textCache) drawLabel(dst *media.Image, tile layout.Rect, name string) {
	if name == "" {
		return
	}
	size := labelSize(tile)
	m := tc.mask(truncate(name, 40), size)
	pad := size / 3
	bw, bh := min(m.Rect.Dx()+2*pad, tile.W), m.Rect.Dy()+pad
	bx, by := tile.X, tile.Y+tile.H-bh
	shade(dst, bx, by, bw, bh)
	blendMask(dst, m, bx+pad, by+pad/2, layout.Rect{X: bx, Y: by, W: bw, H: bh})
}

// drawCentered writes the name large in the middle of a placeholder tile.
func (tc *textCache) drawCentered(dst *media.Image, tile layout.Rect, name string) {
	if name == "" {
		return
	}
	size := max(12, min(64, tile.H/8))
	m := tc.mask(truncate(name, 40), size)
	x := tile.X + (tile.W-m.Rect.Dx())/2
	y := tile.Y + (tile.H-m.Rect.Dy())/2
	blendMask(dst, m, x, y, tile)
}

// shade darkens a rectangle and pulls its chroma toward grey.
func shade(dst *media.Image, x, y, w, h int) {
	x0, y0 := max(x, 0), max(y, 0)
	x1, y1 := min(x+w, dst.Width), min(y+h, dst.Height)
	for r := y0; r < y1; r++ {
		row := dst.Y[r*dst.StrideY:]
		for i := x0; i < x1; i++ {
			row[i] = uint8(16 + (int(row[i])-16)*2/5)
		}
	}
	for r := y0 / 2; r < (y1+1)/2; r++ {
		u, v := dst.U[r*dst.StrideC:], dst.V[r*dst.StrideC:]
		for i := x0 / 2; i < (x1+1)/2; i++ {
			u[i] = 128 + uint8((int(u[i])-128)*2/5)
			v[i] = 128 + uint8((int(v[i])-128)*2/5)
		}
	}
}

// blendMask paints white text (luma 235) through the mask at (x, y), clipped to clip.
func blendMask(dst *media.Image, m *image.Alpha, x, y int, clip layout.Rect) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	for r := 0; r < h; r++ {
		py := y + r
		if py < clip.Y || py >= clip.Y+clip.H || py < 0 || py >= dst.Height {
			continue
		}
		row := dst.Y[py*dst.StrideY:]
		mrow := m.Pix[r*m.Stride:]
		for i := 0; i < w; i++ {
			px := x + i
			a := int(mrow[i])
			if a == 0 || px < clip.X || px >= clip.X+clip.W || px < 0 || px >= dst.Width {
				continue
			}
			row[px] = uint8((int(row[px])*(255-a) + 235*a) / 255)
		}
	}
	// Whiten the chroma under solid glyph pixels so text on colour stays white.
	for r := 0; r+1 < h; r += 2 {
		py := y + r
		if py < clip.Y || py+1 >= clip.Y+clip.H || py < 0 || py+1 >= dst.Height {
			continue
		}
		for i := 0; i+1 < w; i += 2 {
			px := x + i
			if px < clip.X || px+1 >= clip.X+clip.W || px < 0 || px+1 >= dst.Width {
				continue
			}
			a := (int(m.Pix[r*m.Stride+i]) + int(m.Pix[r*m.Stride+i+1]) + int(m.Pix[(r+1)*m.Stride+i]) + int(m.Pix[(r+1)*m.Stride+i+1])) / 4
			if a == 0 {
				continue
			}
			ci := (py/2)*dst.StrideC + px/2
			dst.U[ci] = uint8((int(dst.U[ci])*(255-a) + 128*a) / 255)
			dst.V[ci] = uint8((int(dst.V[ci])*(255-a) + 128*a) / 255)
		}
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
