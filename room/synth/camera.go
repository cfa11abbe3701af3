package synth

import (
	"encoding/binary"
	"math"

	"github.com/roomcast/roomcast/media"
)

// camera draws Config.Camera pictures for one speaker.
//
// It costs about what a camera input costs roomcast (a decoded picture
// arriving: a few row copies), not what drawing it pixel by pixel would:
// everything that does not move is drawn once in newCamera (the room's luma
// and chroma, the person's shading, a table of sensor noise), and a frame is
// row copies at the frame's pan and shake, the person's span copied from the
// shading row, and the noise added eight pixels at a time from the table at
// a random offset per row. What an encoder has to code is unchanged: the
// pan, shake, sway and nod, and noise that no earlier frame predicts.
type camera struct {
	w, h   int
	colour media.YUV
	pad    int
	tex    []uint8 // luma of the room behind the person, (w+2pad)×(h+2pad)
	u, v   []uint8 // chroma of the room, (w/2)×(h/2)
	pu, pv []uint8 // chroma of the person, w/2
	shade  []uint8 // the person's luma at x - centre + w, 2w+1 entries
	noise  []uint8 // 1 ± the noise, noiseLen+w entries
	seed   uint64
}

// cameraPad is how far the camera may pan, in pixels.
const cameraPad = 8

// noiseLen is how many offsets the noise table offers each row: a row's
// noise is table[o : o+w] at a random o, drawn afresh for every row of
// every frame.
const noiseLen = 1 << 16

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
	// A warm, slightly varied room.
	cw, ch := w/2, h/2
	cam.u, cam.v = make([]uint8, cw*ch), make([]uint8, cw*ch)
	for y := 0; y < ch; y++ {
		for i := 0; i < cw; i++ {
			cam.u[y*cw+i], cam.v[y*cw+i] = 120+uint8((i+y)&3), 134-uint8((i^y)&3)
		}
	}
	cam.pu, cam.pv = make([]uint8, cw), make([]uint8, cw)
	for i := range cam.pu {
		cam.pu[i], cam.pv[i] = c.U, c.V
	}
	// Shading across the body, so it is not one flat value.
	cam.shade = make([]uint8, 2*w+1)
	for k := range cam.shade {
		cam.shade[k] = uint8(min(max(int(c.Y)+(k-w)/24, 19), 232))
	}
	// What is left of sensor noise after the sender's encoder, ±1 (a
	// camera picture reaches roomcast through WebRTC compression, which
	// smooths most of it away; more would make x264 spend its bits on
	// noise, like Busy). Stored as 1 + noise (0, 1 or 2) so that a frame
	// adds it and subtracts 1 per byte, eight pixels in one uint64.
	cam.noise = make([]uint8, noiseLen+w+8)
	n := cam.seed ^ 0xD1B54A32D192ED03
	for i := 0; i < len(cam.noise); i += 8 {
		n ^= n << 13
		n ^= n >> 7
		n ^= n << 17
		r := n
		for k := i; k < i+8 && k < len(cam.noise); k++ {
			cam.noise[k] = uint8(int(r&0xff) % 3)
			r >>= 8
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
	// The person's shading is relative to its centre column.
	sh := c.w - min(max(int(cx), 0), c.w)
	n := c.seed + uint64(f)*0xBF58476D1CE4E5B9
	const ones = 0x0101010101010101
	for y := 0; y < c.h; y++ {
		row := m.Y[y*m.StrideY : y*m.StrideY+c.w]
		copy(row, c.tex[(y+dy)*tw+dx:])
		x0, x1 := span(y)
		copy(row[x0:x1], c.shade[x0+sh:])
		// Noise: a fresh offset into the table for every row. Bytes stay
		// within 18..234 (texture 28..223, person 19..232), so adding
		// 0..2 and subtracting 1 per byte never carries between them.
		n ^= n << 13
		n ^= n >> 7
		n ^= n << 17
		nz := c.noise[n%noiseLen:]
		i := 0
		for ; i+8 <= len(row); i += 8 {
			p := binary.LittleEndian.Uint64(row[i:])
			binary.LittleEndian.PutUint64(row[i:], p+binary.LittleEndian.Uint64(nz[i:])-ones)
		}
		for ; i < len(row); i++ {
			row[i] += nz[i] - 1
		}
	}
	cw := c.w / 2
	for y := 0; y < c.h/2; y++ {
		ur := m.U[y*m.StrideC : y*m.StrideC+cw]
		vr := m.V[y*m.StrideC : y*m.StrideC+cw]
		copy(ur, c.u[y*cw:])
		copy(vr, c.v[y*cw:])
		x0, x1 := span(2 * y)
		x0, x1 = x0/2, min((x1+1)/2, cw)
		if x0 < x1 {
			copy(ur[x0:x1], c.pu)
			copy(vr[x0:x1], c.pv)
		}
	}
	return m
}
