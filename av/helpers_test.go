package av

import (
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

func TestMain(m *testing.M) {
	// Garbage-input tests make FFmpeg complain loudly on stderr.
	RouteFFmpegLogs(zerolog.Nop(), zerolog.ErrorLevel)
	os.Exit(m.Run())
}

// ffmpeg runs the ffmpeg CLI from PATH (the Makefile puts the 7.1 build
// first) to make a test input named name in a temp dir and returns its path.
func ffmpeg(t testing.TB, name string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg not on PATH (run through make, or export PATH=$(scripts/ffmpeg.sh prefix)/bin:$PATH): %v", err)
	}
	out := filepath.Join(t.TempDir(), name)
	full := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
	full = append(full, out)
	cmd := exec.Command(bin, full...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(full, " "), err, b)
	}
	return out
}

// readAll decodes a whole file.
func readAll(t testing.TB, path string) (FileInfo, []Item, *FileReader) {
	t.Helper()
	r, err := OpenFile(path, zerolog.Nop())
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	var items []Item
	for {
		it, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next: %v", err)
			}
			break
		}
		items = append(items, it)
	}
	return r.Info(), items, r
}

// goertzel returns the power of frequency f in x sampled at rate.
func goertzel(x []float32, f, rate float64) float64 {
	w := 2 * math.Pi * f / rate
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + c*s1 - s2
		s2, s1 = s1, s0
	}
	return (s1*s1 + s2*s2 - c*s1*s2) / float64(len(x)*len(x))
}

// channel extracts channel ch of interleaved stereo.
func channel(a media.Audio, ch int) []float32 {
	out := make([]float32, a.Frames())
	for i := range out {
		out[i] = a[2*i+ch]
	}
	return out
}

// dominantFreq reports which of cands has the most power in x.
func dominantFreq(x []float32, cands ...float64) float64 {
	best, bp := 0.0, -1.0
	for _, f := range cands {
		if p := goertzel(x, f, media.SampleRate); p > bp {
			best, bp = f, p
		}
	}
	return best
}

func near(a, b, tol int) bool { return a-b <= tol && b-a <= tol }

func colourNear(t testing.TB, got, want media.YUV, tol int, what string) {
	t.Helper()
	if !near(int(got.Y), int(want.Y), tol) || !near(int(got.U), int(want.U), tol) || !near(int(got.V), int(want.V), tol) {
		t.Errorf("%s: colour %v, want %v ±%d", what, got, want, tol)
	}
}
