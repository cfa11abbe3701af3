// Package media holds the codec-neutral units that flow between roomcast's
// stages: decoded pictures (Image), decoded sound (Audio) and encoded packets
// (Packet). It is pure Go so that the layout, compositor and protocol code can
// use it without cgo.
package media

import "fmt"

// Image is a planar YUV 4:2:0 picture (FFmpeg's yuv420p, BT.601 limited
// range) held in Go memory. Width and Height are even.
type Image struct {
	Width, Height int
	Y, U, V       []byte
	// StrideY is the distance between rows of Y; StrideC of U and V.
	StrideY, StrideC int
}

// NewImage allocates a w×h picture; odd sizes are rounded up to even.
func NewImage(w, h int) *Image {
	w, h = (w+1)&^1, (h+1)&^1
	cw, ch := w/2, h/2
	buf := make([]byte, w*h+2*cw*ch)
	return &Image{
		Width: w, Height: h,
		Y: buf[:w*h], U: buf[w*h : w*h+cw*ch], V: buf[w*h+cw*ch:],
		StrideY: w, StrideC: cw,
	}
}

// Sub returns a view of the w×h rectangle at (x, y) that shares m's memory:
// writes through the view change m. The rectangle is aligned to the chroma
// grid (x, y down to even, w, h down to even, at least 2) and clipped to m, so
// the view keeps m's strides and may be wider in memory than it is in pixels.
func (m *Image) Sub(x, y, w, h int) *Image {
	x0, y0 := min(max(x, 0)&^1, m.Width-2), min(max(y, 0)&^1, m.Height-2)
	w = max(min(w, m.Width-x0)&^1, 2)
	h = max(min(h, m.Height-y0)&^1, 2)
	co := (y0/2)*m.StrideC + x0/2
	return &Image{
		Width: w, Height: h,
		Y:       m.Y[y0*m.StrideY+x0:],
		U:       m.U[co:],
		V:       m.V[co:],
		StrideY: m.StrideY, StrideC: m.StrideC,
	}
}

// Fill paints the whole picture one colour.
func (m *Image) Fill(c YUV) {
	m.FillRect(0, 0, m.Width, m.Height, c)
}

// FillRect paints the rectangle (x, y, w, h), clipped to the picture. Odd
// coordinates are aligned down to the chroma grid.
func (m *Image) FillRect(x, y, w, h int, c YUV) {
	x0, y0 := max(x, 0)&^1, max(y, 0)&^1
	x1, y1 := min(x+w, m.Width), min(y+h, m.Height)
	if x1 <= x0 || y1 <= y0 {
		return
	}
	for r := y0; r < y1; r++ {
		row := m.Y[r*m.StrideY+x0 : r*m.StrideY+x1]
		for i := range row {
			row[i] = c.Y
		}
	}
	cx0, cx1 := x0/2, (x1+1)/2
	for r := y0 / 2; r < (y1+1)/2; r++ {
		u := m.U[r*m.StrideC+cx0 : r*m.StrideC+cx1]
		v := m.V[r*m.StrideC+cx0 : r*m.StrideC+cx1]
		for i := range u {
			u[i], v[i] = c.U, c.V
		}
	}
}

// At returns the colour of the pixel (x, y).
func (m *Image) At(x, y int) YUV {
	return YUV{m.Y[y*m.StrideY+x], m.U[(y/2)*m.StrideC+x/2], m.V[(y/2)*m.StrideC+x/2]}
}

// Clone returns a deep copy with tight strides.
func (m *Image) Clone() *Image {
	c := NewImage(m.Width, m.Height)
	c.CopyFrom(m)
	return c
}

// CopyFrom copies src into m; both must have the same size.
func (m *Image) CopyFrom(src *Image) {
	if src.Width != m.Width || src.Height != m.Height {
		panic(fmt.Sprintf("media: copy %dx%d into %dx%d", src.Width, src.Height, m.Width, m.Height))
	}
	Blit(m, 0, 0, src, 0, 0, src.Width, src.Height)
}

// Blit copies the w×h rectangle of src at (sx, sy) to dst at (dx, dy). All
// coordinates and sizes must be even and inside both pictures.
func Blit(dst *Image, dx, dy int, src *Image, sx, sy, w, h int) {
	for r := 0; r < h; r++ {
		copy(dst.Y[(dy+r)*dst.StrideY+dx:(dy+r)*dst.StrideY+dx+w], src.Y[(sy+r)*src.StrideY+sx:])
	}
	cw := w / 2
	for r := 0; r < h/2; r++ {
		do := (dy/2+r)*dst.StrideC + dx/2
		so := (sy/2+r)*src.StrideC + sx/2
		copy(dst.U[do:do+cw], src.U[so:])
		copy(dst.V[do:do+cw], src.V[so:])
	}
}

// YUV is one colour in BT.601 limited range.
type YUV struct{ Y, U, V uint8 }

// RGB converts 8-bit full-range RGB to BT.601 limited-range YUV, the way
// FFmpeg's swscale does for yuv420p by default.
func RGB(r, g, b uint8) YUV {
	R, G, B := int(r), int(g), int(b)
	y := (66*R+129*G+25*B+128)>>8 + 16
	u := (-38*R-74*G+112*B+128)>>8 + 128
	v := (112*R-94*G-18*B+128)>>8 + 128
	return YUV{clamp8(y), clamp8(u), clamp8(v)}
}

// ToRGB converts back to full-range RGB (for tests and logging).
func (c YUV) ToRGB() (r, g, b uint8) {
	C, D, E := int(c.Y)-16, int(c.U)-128, int(c.V)-128
	return clamp8((298*C + 409*E + 128) >> 8), clamp8((298*C - 100*D - 208*E + 128) >> 8), clamp8((298*C + 516*D + 128) >> 8)
}

func clamp8(v int) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
