package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A demo session with HLS as its only output writes the replay playlist.
func TestSessionHLSOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the encoder for 4 s")
	}
	dir := filepath.Join(t.TempDir(), "hls")
	s, err := New(Config{Room: "demo:?speakers=2", Pipeline: smallPipeline(), Duration: 4 * time.Second,
		Outputs: Outputs{HLS: HLS{Dir: dir, Window: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	pl, err := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(pl), "#EXTINF:"); n != 2 || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Errorf("playlist with %d segments:\n%s", n, pl)
	}
	if d := probeDuration(t, filepath.Join(dir, "index.m3u8")); d < 3900*time.Millisecond || d > 4100*time.Millisecond {
		t.Errorf("HLS lasts %v, want 4 s", d)
	}
}

func TestHLSConfigErrors(t *testing.T) {
	for _, h := range []HLS{
		{Dir: "x", SegmentDuration: time.Second, KeyframeInterval: 2 * time.Second},
		{Dir: "x", Window: -1},
	} {
		if _, err := New(Config{Room: "demo:", Outputs: Outputs{HLS: h}}); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", h, err)
		}
	}
}
