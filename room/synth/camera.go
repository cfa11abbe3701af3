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
			cam.tex[y*tw+i] = uint8(min(max(v, 28), 223))
		}
	}
	return cam
}

// frame draws picture f. Cheap to draw (row spans, 8 noise values per
// random draw), so the figures measure the encoder, not the generator.
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
	// span is the person's [x0, x1) on row y (x0 == x1: none).
	span := func(y int) (int, int) {
		x0, x1 := c.w, 0
		if e := (float64(y) - cy) / ry; e*e <= 1 {
			hw := rx * math.Sqrt(1-e*e)
			x0, x1 = int(cx-hw), int(cx+hw)+1
		}
		if q := float64(y) - hy; q*q <= hr*hr {
			hw := math.Sqrt(hr*hr - q*q)
			x0, x1 = min(x0, int(hx-hw)), max(x1, int(hx+hw)+1)
		}
		x0, x1 = max(x0, 0), min(x1, c.w)
		if x1 < x0 {
			x1 = x0
		}
		return x0, x1
	}
	n := c.seed + uint64(f)*0xBF58476D1CE4E5B9
	for y := 0; y < c.h; y++ {
		row := m.Y[y*m.StrideY : y*m.StrideY+c.w]
		copy(row, c.tex[(y+dy)*tw+dx:(y+dy)*tw+dx+c.w])
		x0, x1 := span(y)
		for i := x0; i < x1; i++ {
			// Shading across the body, so it is not one flat value.
			row[i] = uint8(min(max(int(c.colour.Y)+(i-int(cx))/24, 19), 232))
		}
		// What is left of sensor noise after the sender's encoder, ±1
		// (a camera picture reaches roomcast through WebRTC compression,
		// which smooths most of it away; more would make x264 spend its
		// bits on noise, like Busy). Values stay within 16..235: the
		// texture is clamped to 28..223, the person to 19..232.
		for i := 0; i < len(row); i += 8 {
			n ^= n << 13
			n ^= n >> 7
			n ^= n << 17
			r := n
			for k := i; k < i+8 && k < len(row); k++ {
				row[k] = uint8(int(row[k]) + int(r&0xff)%3 - 1)
				r >>= 8
			}
		}
	}
	for y := 0; y < c.h/2; y++ {
		ur := m.U[y*m.StrideC : y*m.StrideC+c.w/2]
		vr := m.V[y*m.StrideC : y*m.StrideC+c.w/2]
		for i := range ur {
			// A warm, slightly varied room.
			ur[i], vr[i] = 120+uint8((i+y)&3), 134-uint8((i^y)&3)
		}
		x0, x1 := span(2 * y)
		for i := x0 / 2; i < (x1+1)/2 && i < len(ur); i++ {
			ur[i], vr[i] = c.colour.U, c.colour.V
		}
	}
	return m
}
