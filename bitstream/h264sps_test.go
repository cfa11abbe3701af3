package bitstream

import (
	"errors"
	"testing"
)

// SPS written by x264 (ffmpeg -c:v libx264) and LiveKit's placeholder
// keyframe SPS (livekit-server pkg/sfu/downtrack.go).
var (
	sps320x240Baseline = mustHex("6742c00dda0507ec0440000003004000000f03c50aa8")
	sps1280x720High    = mustHex("6764001facd9405005bb0110000003001000000303c0f1831960")
	sps640x360Field    = mustHex("6764001eacd940a063f3e022000003000200000300783e28532c")
	lkBlankSPS         = mustHex("6742c01f0fd91f888884000003000400000300c83c60c920")
)

func TestH264SPSSize(t *testing.T) {
	for _, c := range []struct {
		name string
		sps  []byte
		w, h int
	}{
		{"baseline 320x240", sps320x240Baseline, 320, 240},
		{"high 1280x720 (cropped from 736)", sps1280x720High, 1280, 720},
		{"high interlaced 640x360", sps640x360Field, 640, 360},
		{"LiveKit blank", lkBlankSPS, 2, 2},
		{"x264 high 640x360", spsHigh, 640, 360},
	} {
		w, h, ok := H264SPSSize(c.sps)
		if !ok || w != c.w || h != c.h {
			t.Errorf("%s: %dx%d ok=%v, want %dx%d", c.name, w, h, ok, c.w, c.h)
		}
	}
	for _, bad := range [][]byte{nil, {0x67}, {0x68, 1, 2, 3, 4}, sps320x240Baseline[:5]} {
		if _, _, ok := H264SPSSize(bad); ok {
			t.Errorf("% x parsed", bad)
		}
	}
}

func TestH264SPSChroma(t *testing.T) {
	for _, c := range []struct {
		name                  string
		sps                   []byte
		chroma, luma, chroma8 uint32
	}{
		{"x264 high 4:2:0 8-bit", spsHigh, 1, 0, 0},
		{"high 1280x720", sps1280x720High, 1, 0, 0},
		// profile 110, seq_parameter_set_id 0, chroma 2 (011), luma 2
		// (011), chroma 2 (011): 1 011 011 011 -> 0xb6 0xc0.
		{"hand-made 4:2:2 10-bit", []byte{0x67, 110, 0, 30, 0xb6, 0xc0}, 2, 2, 2},
	} {
		ch, l, cd, err := H264SPSChroma(c.sps)
		if err != nil || ch != c.chroma || l != c.luma || cd != c.chroma8 {
			t.Errorf("%s: chroma %d depths %d/%d err %v, want %d %d/%d", c.name, ch, l, cd, err, c.chroma, c.luma, c.chroma8)
		}
	}
	for _, bad := range [][]byte{
		{0x67, 0x64},                // too short
		{0x67, 100, 0, 30, 0},       // truncated
		{0x67, 100, 0, 30, 0x88},    // chroma_format_idc 7: 1 0001000 -> ue 7
		{0x67, 100, 0, 30, 0xa0, 0}, // 1 010, then zeros to the end: truncated
	} {
		if _, _, _, err := H264SPSChroma(bad); !errors.Is(err, ErrSPS) {
			t.Errorf("% x: error %v, want ErrSPS", bad, err)
		}
	}
}

func spsSeeds() [][]byte {
	return [][]byte{sps320x240Baseline, sps1280x720High, sps640x360Field, lkBlankSPS, spsHigh}
}

func FuzzH264SPS(f *testing.F) {
	for _, s := range spsSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sps []byte) {
		w, h, ok := H264SPSSize(sps)
		if ok && (w <= 0 || h <= 0 || w > 16384+64 || h > 32768+64) {
			t.Fatalf("implausible size %dx%d", w, h)
		}
	})
}

func FuzzH264SPSChroma(f *testing.F) {
	for _, s := range spsSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sps []byte) {
		ch, l, c, err := H264SPSChroma(sps)
		if err != nil {
			if !errors.Is(err, ErrSPS) {
				t.Fatalf("error %v does not wrap ErrSPS", err)
			}
			return
		}
		if ch > 3 || l > 6 || c > 6 {
			t.Fatalf("out of range: chroma %d depths %d/%d", ch, l, c)
		}
	})
}
