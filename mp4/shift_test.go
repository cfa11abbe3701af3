package mp4

import (
	"bytes"
	"testing"
	"time"
)

// TestShiftBox: the shift survives its free box, and a file without one
// (or with a foreign free box) reads as no shift.
func TestShiftBox(t *testing.T) {
	ftyp := []byte{0, 0, 0, 16, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 2, 0}
	for _, d := range []time.Duration{0, 21333333, 66666666} {
		b := append(append([]byte(nil), ftyp...), shiftBox(d)...)
		if got := readShift(bytes.NewReader(b), int64(len(b))); got != d {
			t.Errorf("shift %v read back as %v", d, got)
		}
	}
	foreign := append(append([]byte(nil), ftyp...), 0, 0, 0, 12, 'f', 'r', 'e', 'e', 'a', 'b', 'c', 'd')
	if got := readShift(bytes.NewReader(foreign), int64(len(foreign))); got != 0 {
		t.Errorf("foreign free box read as shift %v", got)
	}
}
