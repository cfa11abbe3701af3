package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/room/synth"
)

// The synthetic speakers' cameras are 640x360.
const camW, camH = 640, 360

// colourTol is how far a flat colour may move through x264 at CRF 21 and
// back (per YUV component, 8-bit).
const colourTol = 10

// sources names n tiles in join order, the way the compositor orders them.
func sources(n int) []layout.Source {
	s := make([]layout.Source, n)
	for i := range s {
		s[i] = layout.Source{ID: strconv.Itoa(i)}
	}
	return s
}

// checkTiles asserts that every tile shows its speaker's palette colour at
// the centre of the fitted picture.
func checkTiles(t *testing.T, img *media.Image, tiles []layout.Tile, colour func(id string) media.YUV, when string) {
	t.Helper()
	for _, tl := range tiles {
		_, dst := layout.Place(camW, camH, tl.Rect, layout.Letterbox)
		x, y := dst.X+dst.W/2, dst.Y+dst.H/2
		want := colour(tl.ID)
		if got := meanAt(img, x, y); !near(got, want, colourTol) {
			t.Errorf("%s: tile %s (%+v) centre (%d,%d) is %v %s, want speaker colour %v %s", when, tl.ID, tl.Rect, x, y, got, rgbHex(got), want, rgbHex(want))
		}
	}
}

func paletteOf(id string) media.YUV {
	i, _ := strconv.Atoi(id)
	return synth.Palette[i%len(synth.Palette)]
}

// labelBand measures the bottom-left corner of a tile, where the name label
// sits, and a control patch in the bottom-right corner of the same rows:
// the fraction of near-white (text) pixels and of pixels clearly darker than
// the speaker's colour (the label's shaded band).
type labelBand struct {
	white, dark           float64 // bottom-left
	ctrlWhite, ctrlColour float64 // bottom-right: white pixels, pixels of the speaker's colour
}

func measureLabel(img *media.Image, r layout.Rect, c media.YUV) labelBand {
	y0, y1 := r.Y+r.H-r.H/10, r.Y+r.H-3
	w := r.W / 5
	var lb labelBand
	var n, cn int
	for y := y0; y < y1; y++ {
		for x := r.X + 2; x < r.X+w; x++ {
			p := img.At(x, y)
			n++
			if isWhite(p) {
				lb.white++
			} else if int(p.Y) < int(c.Y)*3/4 {
				lb.dark++
			}
		}
		for x := r.X + r.W - w; x < r.X+r.W-2; x++ {
			p := img.At(x, y)
			cn++
			if isWhite(p) {
				lb.ctrlWhite++
			}
			if near(p, c, colourTol) {
				lb.ctrlColour++
			}
		}
	}
	lb.white /= float64(n)
	lb.dark /= float64(n)
	lb.ctrlWhite /= float64(cn)
	lb.ctrlColour /= float64(cn)
	return lb
}

// labelWidth is how far the label's shaded band reaches from the tile's
// left edge, measured 8 rows above the tile's bottom (inside the band,
// clear of the active speaker's frame).
func labelWidth(img *media.Image, r layout.Rect, c media.YUV) int {
	y := r.Y + r.H - 8
	x := r.X + 6
	for ; x < r.X+r.W-2; x++ {
		if near(img.At(x, y), c, colourTol) {
			break
		}
	}
	return x - r.X
}

// isWhite: text luma with little colour.
func isWhite(p media.YUV) bool {
	return p.Y >= 180 && abs(int(p.U)-128) <= 24 && abs(int(p.V)-128) <= 24
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestDemoPixels: each synthetic speaker's colour is at the centre of its
// grid tile, the tile's bottom-left corner carries the name label (white
// text on a darkened band), and --no-labels removes it.
func TestDemoPixels(t *testing.T) {
	e2e(t)
	t.Parallel()
	cases := []struct {
		name     string
		speakers int
		w, h     int
		noLabels bool
		style    string // --label-style
	}{
		{"4 speakers 720p", 4, 1280, 720, false, ""},
		{"4 speakers 720p no labels", 4, 1280, 720, true, ""},
		{"9 speakers 1080p", 9, 1920, 1080, false, ""},
		{"4 speakers 720p label style none", 4, 1280, 720, true, "none"},
		{"4 speakers 720p initials", 4, 1280, 720, false, "initials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "demo.mp4")
			args := []string{"demo", "--fast", "--duration", "4s", "--speakers", strconv.Itoa(tc.speakers),
				"--size", fmt.Sprintf("%dx%d", tc.w, tc.h), "-y", "-o", out}
			if tc.noLabels && tc.style == "" {
				args = append(args, "--no-labels")
			}
			if tc.style != "" {
				args = append(args, "--label-style", tc.style)
			}
			mustCLI(t, args...)
			p := ffprobe(t, out, "-count_frames")
			v := p.Stream("video")
			if v == nil || v.CodecName != "h264" || v.Width != tc.w || v.Height != tc.h || v.RFrameRate != "30/1" {
				t.Fatalf("video stream %+v, want h264 %dx%d 30/1", v, tc.w, tc.h)
			}
			if v.NbReadFrames != "120" {
				t.Errorf("%s frames, want 4 s × 30 = 120", v.NbReadFrames)
			}
			if a := p.Stream("audio"); a == nil || a.CodecName != "aac" || a.SampleRate != "48000" || a.Channels != 2 {
				t.Errorf("audio stream %+v, want AAC 48 kHz stereo", a)
			}
			img := grabFrames(t, out, tc.w, tc.h, 60)[0] // t = 2 s
			tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: tc.w, Height: tc.h, Sources: sources(tc.speakers)})
			checkTiles(t, img, tiles, paletteOf, "t=2s")
			for _, tl := range tiles {
				c := paletteOf(tl.ID)
				lb := measureLabel(img, tl.Rect, c)
				t.Logf("tile %s: label corner white %.3f dark %.3f; control corner white %.3f colour %.3f", tl.ID, lb.white, lb.dark, lb.ctrlWhite, lb.ctrlColour)
				if lb.ctrlWhite > 0.002 || lb.ctrlColour < 0.9 {
					t.Errorf("tile %s: the bottom-right corner should be plain speaker colour: white %.3f, colour %.3f", tl.ID, lb.ctrlWhite, lb.ctrlColour)
				}
				if tc.noLabels {
					if lb.white > 0.002 || lb.dark > 0.01 {
						t.Errorf("tile %s with --no-labels: bottom-left corner has white %.3f dark %.3f, want none", tl.ID, lb.white, lb.dark)
					}
					continue
				}
				if minDark := 0.4; lb.white < 0.03 || lb.dark < minDark && tc.style != "initials" || lb.dark < minDark/4 {
					t.Errorf("tile %s: no name label in the bottom-left corner: %.3f white text pixels (want ≥ 0.03), %.3f darkened (want ≥ 0.4)", tl.ID, lb.white, lb.dark)
				}
				// Initials ("AL") make a band less than a tenth of the
				// tile wide; every full name here is wider than that.
				bw := labelWidth(img, tl.Rect, c)
				t.Logf("tile %s: label band %d px of %d", tl.ID, bw, tl.Rect.W)
				if initials := tc.style == "initials"; initials != (bw < tl.Rect.W/10) {
					t.Errorf("tile %s: label band %d px wide in a %d px tile with --label-style %q", tl.ID, bw, tl.Rect.W, tc.style)
				}
			}
		})
	}
}

// TestDemoSpeakerLayout: in the speaker layout the large tile follows the
// speaker who talks (speakers take 1 s turns; the loudness detector needs
// a moment to follow), the filmstrip shows the others.
func TestDemoSpeakerLayout(t *testing.T) {
	e2e(t)
	t.Parallel()
	out := filepath.Join(t.TempDir(), "speaker.mp4")
	mustCLI(t, "demo", "--fast", "--duration", "5s", "--speakers", "4", "--layout", "speaker", "--turn", "1s", "-y", "-o", out)
	// Late in each turn: t = k + 0.9 s.
	idx := []int{27, 57, 87, 117}
	imgs := grabFrames(t, out, 1280, 720, idx...)
	var mains []string
	for k, img := range imgs {
		tiles := layout.Compute(layout.Params{Kind: layout.Speaker, Width: 1280, Height: 720, Sources: sources(4), Active: strconv.Itoa(k)})
		if len(tiles) != 4 || !tiles[0].Main || tiles[0].ID != strconv.Itoa(k) {
			t.Fatalf("layout.Compute gave %+v", tiles)
		}
		checkTiles(t, img, tiles, paletteOf, fmt.Sprintf("t=%.1fs (speaker %d talking)", float64(idx[k])/30, k))
		_, dst := layout.Place(camW, camH, tiles[0].Rect, layout.Letterbox)
		mains = append(mains, rgbHex(meanAt(img, dst.X+dst.W/2, dst.Y+dst.H/2)))
	}
	t.Logf("main tile colours at the end of each turn: %v", mains)
}
