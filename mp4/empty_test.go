package mp4

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/roomcast/roomcast/media"
)

// TestCloseEarly: closing before any packet, or before the second stream
// delivered one, still gives a regular MP4 that ffprobe reads. (A regular
// MP4 has no track for a stream without samples.)
func TestCloseEarly(t *testing.T) {
	for n := range 4 {
		path := filepath.Join(t.TempDir(), "rec.mp4")
		w, err := Create(path, fix.info, Options{})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, fix.packets[:n])
		if err := w.Close(); err != nil {
			t.Fatalf("%d packets: %v", n, err)
		}
		if types := boxTypes(topBoxes(t, path)); slices.Index(types, "moov") > slices.Index(types, "mdat") {
			t.Errorf("%d packets: boxes %v", n, types)
		}
		p := ffprobe(t, path, true)
		kinds := map[media.Kind]bool{}
		for _, q := range fix.packets[:n] {
			kinds[q.Kind] = true
		}
		if len(p.Streams) != len(kinds) || len(p.Packets) != n {
			t.Errorf("%d packets: ffprobe sees %d streams and %d packets", n, len(p.Streams), len(p.Packets))
		}
	}
}
