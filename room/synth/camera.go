package synth

import (
	"math"

	"github.com/roomcast/roomcast/media"
)

// camera draws Config.Camera pictures for one speaker.
type camera struct {
	w, h   int
	colour media.YUV
	pad    int
	tex    []uint8 // luma of the room behind the person, (w+2pad)×(h+2pad)
	seed   uint64
}

// cameraPad is how far the camera may pan, in pixels.
const cameraPad = 8

func newCamera(w, h int, c media.YUV, seed uint64) *camera {
	cam := &camera{w: w, h: h, colour: c, pad: cameraPad, seed: seed*0x9E3779B97F4A7C15 | 1}
	tw, th := w+2*cam.pad, h+2*cam.pad
	cam.tex = make([]uint8, tw*th)
	x := cam.seed
	for y := 0; y < th; y++ {
		for i := 0; i < tw; i++ {
			// Soft shapes (walls, furniture) plus fine static detail
			// (books, fabric): costly in intra frames, cheap once
			// motion-compensated, as a real room is.
			v := 110 + 45*math.Sin(float64(i)/37+float64(seed))*math.Cos(float64(y)/29) + 20*math.Sin(float64(i+2*y)/7)
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			v += float64(x%25) - 12
			cam.tex[y*tw+i] = uint8(min(max(v, 16), 235))
		}
	}
	return cam
}

// frame draws picture f.
func (c *camera) frame(f int64) *media.Image {
	m := media.GetImage(c.w, c.h)
	t := float64(f)
	// Hand-held pan and shake of the background.
	dx := c.pad + int(math.Round(5*math.Sin(t/23)+1.5*math.Sin(t/3.1)))
	dy := c.pad + int(math.Round(3*math.Cos(t/31)+1*math.Sin(t/4.3)))
	tw := c.w + 2*c.pad
	// The person: an ellipse (body) and a circle (head) that sway and nod.
	cx := float64(c.w)/2 + float64(c.w)/14*math.Sin(t/41)
	cy := float64(c.h)*0.62 + float64(c.h)/50*math.Sin(t/11)
	rx, ry := float64(c.w)/4.2, float64(c.h)/2.6
	hx, hy, hr := cx+float64(c.w)/60*math.Sin(t/7), cy-ry*0.95, float64(c.h)/6
	inside := func(x, y int) bool {
		ex, ey := (float64(x)-cx)/rx, (float64(y)-cy)/ry
		if ex*ex+ey*ey <= 1 {
			return true
		}
		qx, qy := float64(x)-hx, float64(y)-hy
		return qx*qx+qy*qy <= hr*hr
	}
	n := c.seed + uint64(f)*0xBF58476D1CE4E5B9
	for y := 0; y < c.h; y++ {
		row := m.Y[y*m.StrideY : y*m.StrideY+c.w]
		src := c.tex[(y+dy)*tw+dx : (y+dy)*tw+dx+c.w]
		for i := range row {
			n ^= n << 13
			n ^= n >> 7
			n ^= n << 17
			noise := int(n&7) - 3 // sensor noise, ±3
			v := int(src[i])
			if inside(i, y) {
				// Shading across the body, so it is not one flat value.
				v = int(c.colour.Y) + (i-int(cx))/24
			}
			row[i] = uint8(min(max(v+noise, 16), 235))
		}
	}
	for y := 0; y < c.h/2; y++ {
		ur := m.U[y*m.StrideC : y*m.StrideC+c.w/2]
		vr := m.V[y*m.StrideC : y*m.StrideC+c.w/2]
		for i := range ur {
			if inside(2*i, 2*y) {
				ur[i], vr[i] = c.colour.U, c.colour.V
			} else {
				// A warm, slightly varied room.
				ur[i], vr[i] = 120+uint8((i+y)&3), 134-uint8((i^y)&3)
			}
		}
	}
	return m
}
