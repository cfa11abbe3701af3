package mediatest

import (
	"math"
	"testing"
)

// Flash+beep detection for A/V sync tests: a publisher captures a white
// flash and a loud beep at the same instants; the test finds both in the
// output and compares their times.

// LumaGridW and LumaGridH are the size of the grey thumbnails LumaMeans reads (a 16:9
// picture in 32x18 cells).
const LumaGridW, LumaGridH = 32, 18

// LumaMeans decodes every picture of path's first video stream scaled to a
// 32x18 grey thumbnail and returns the mean luma of the cells x0..x1-1,
// y0..y1-1 of each, in presentation order.
func LumaMeans(t testing.TB, path string, x0, y0, x1, y1 int) []float64 {
	t.Helper()
	const w, h = LumaGridW, LumaGridH
	out := FFmpeg(t, "-i", path, "-an", "-vf", "scale=32:18", "-fps_mode", "passthrough", "-pix_fmt", "gray", "-f", "rawvideo", "-")
	var m []float64
	for i := 0; i+w*h <= len(out); i += w * h {
		f := out[i : i+w*h]
		s, n := 0, 0
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				s += int(f[y*w+x])
				n++
			}
		}
		m = append(m, float64(s)/float64(n))
	}
	return m
}

// FlashOnsets returns the times ts[i] of the pictures where a region's mean
// luma jumps to bright (> 100) after three dark pictures (< 60): the start
// of each flash. A grey placeholder (luma ~70) is not dark, so a tile that
// appears is not taken for a flash.
func FlashOnsets(means, ts []float64) []float64 {
	var out []float64
	for i := 3; i < len(means) && i < len(ts); i++ {
		if means[i] > 100 && means[i-1] < 60 && means[i-2] < 60 && means[i-3] < 60 {
			out = append(out, ts[i])
		}
	}
	return out
}

// BeepOnsets returns the times of the first loud sample (|x| > 0.1) after
// 300 ms of quiet in x, 48 kHz mono whose sample 0 is at time x0.
func BeepOnsets(x []float32, x0 float64) []float64 {
	var out []float64
	quiet := 0
	for i, v := range x {
		if math.Abs(float64(v)) > 0.1 {
			if quiet >= 48000*3/10 {
				out = append(out, x0+float64(i)/48000)
			}
			quiet = 0
			continue
		}
		quiet++
	}
	return out
}
