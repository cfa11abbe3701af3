package main

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/layout"
)

// TestDemoAudioVideoOnly: --audio-only writes one AAC track that carries
// the speakers' tones; --video-only one H.264 track with every speaker's
// tile; both last the requested duration.
func TestDemoAudioVideoOnly(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	only := func(path, kind string) {
		t.Helper()
		p := ffprobe(t, path)
		if len(p.Streams) != 1 || p.Streams[0].CodecType != kind {
			t.Fatalf("%s: %d streams (%+v), want one %s stream", filepath.Base(path), len(p.Streams), p.Streams, kind)
		}
		if d := mediatest.Secs(p.Format.Duration); d < 2.9 || d > 3.2 {
			t.Fatalf("%s lasts %.3f s, want 3", filepath.Base(path), d)
		}
		if msg := mediatest.DecodeErrors(path); msg != "" {
			t.Fatalf("%s: decode errors: %s", filepath.Base(path), msg)
		}
	}

	audio := filepath.Join(dir, "audio.mp4")
	mustCLI(t, "demo", "--fast", "--audio-only", "--duration", "3s", "--turn", "1s", "-o", audio)
	only(audio, "audio")
	pcm := mediatest.FFmpeg(t, "-i", audio, "-ac", "1", "-ar", "48000", "-f", "f32le", "-")
	var energy float64
	for i := 0; i+4 <= len(pcm); i += 4 {
		v := float64(math.Float32frombits(binary.LittleEndian.Uint32(pcm[i:])))
		energy += v * v
	}
	if rms := math.Sqrt(energy / float64(len(pcm)/4)); rms < 0.01 {
		t.Fatalf("audio-only demo is silent (RMS %.4f)", rms)
	}

	video := filepath.Join(dir, "video.mp4")
	const w, h = 640, 360
	mustCLI(t, "demo", "--fast", "--video-only", "--duration", "3s", "--size", "640x360", "-o", video)
	only(video, "video")
	img := grabFrames(t, video, w, h, 60)[0] // t = 2 s
	tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: w, Height: h, Sources: sources(4)})
	checkTiles(t, img, tiles, paletteOf, "t=2s")

	r := runCLI(t, "demo", "--fast", "--audio-only", "--video-only", "-o", filepath.Join(dir, "none.mp4"))
	if r.code != 2 {
		t.Fatalf("--audio-only --video-only: exit %d, want 2 (usage)", r.code)
	}
	if l := errorLine(t, r); !strings.Contains(l, "--audio-only") {
		t.Fatalf("error line %q does not name the flags", l)
	}
}
