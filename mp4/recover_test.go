package mp4

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRecover cuts a fragmented recording inside its last mdat, as a kill
// during the write could, and recovers it into a regular MP4.
func TestRecover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.mp4")
	w, err := Create(path, fix.info, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, fix.packets)
	w.Abort()
	boxes := topBoxes(t, path)
	last := boxes[len(boxes)-1]
	if last.typ != "mdat" {
		t.Fatalf("last box %q, want mdat", last.typ)
	}
	if err := os.Truncate(path, last.off+last.size/2); err != nil {
		t.Fatal(err)
	}
	whole := ffprobe(t, path, false)
	_, _, cut := whole.stream(t, "video")

	if err := Recover(path, testLog(t)); err != nil {
		t.Fatal(err)
	}
	types := boxTypes(topBoxes(t, path))
	if slices.Contains(types, "moof") || slices.Index(types, "moov") > slices.Index(types, "mdat") {
		t.Errorf("boxes %v: want a regular MP4", types)
	}
	p := ffprobe(t, path, false)
	_, _, vn := p.stream(t, "video")
	t.Logf("%d video packets listed in the cut file, %d after recovery, %d written", cut, vn, fix.video)
	if vn >= fix.video || vn < fix.video-2*fixtureFPS {
		t.Errorf("%d video packets after recovery, want the %d written minus one fragment", vn, fix.video)
	}
	decodeAll(t, path)

	// A regular MP4 is left alone.
	before, _ := os.ReadFile(path)
	if err := Recover(path, testLog(t)); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("Recover changed a finalised file")
	}
}

func FuzzScanBoxes(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 'f', 't', 'y', 'p', 0, 0, 0, 8, 'm', 'o', 'o', 'f', 0, 0, 0, 9, 'm', 'd', 'a', 't', 1})
	f.Add([]byte{0, 0, 0, 1, 'm', 'd', 'a', 't', 0, 0, 0, 0, 0, 0, 0, 16})
	f.Add([]byte{0, 0, 0, 0, 'm', 'd', 'a', 't'})
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f', 0, 0, 0, 20, 'm', 'd', 'a', 't'})
	f.Fuzz(func(t *testing.T, b []byte) {
		end, frags, err := scanBoxes(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if end < 0 || end > int64(len(b)) || frags < 0 {
			t.Fatalf("end %d frags %d for %d bytes", end, frags, len(b))
		}
		// Cutting at end leaves only whole boxes: scanning again keeps all.
		if end2, frags2, _ := scanBoxes(bytes.NewReader(b[:end]), end); end2 != end || frags2 != frags {
			t.Fatalf("rescan of %d bytes: end %d frags %d, want %d %d", end, end2, frags2, end, frags)
		}
	})
}
