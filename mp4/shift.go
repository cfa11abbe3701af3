package mp4

import (
	"bytes"
	"encoding/binary"
	"io"
	"strconv"
	"time"
)

// shiftMagic starts the payload of the free box in which the writer records
// how far it moved every timestamp forward in the fragmented file. A free
// box (ISO/IEC 14496-12 §8.1.2) is ignored by every reader, so the
// fragmented file stays a plain, playable MP4.
const shiftMagic = "roomcast timeline shift ns="

// shiftBox returns the free box recording shift.
func shiftBox(shift time.Duration) []byte {
	payload := shiftMagic + strconv.FormatInt(int64(shift), 10) + "\n"
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint32(b, uint32(8+len(payload)))
	copy(b[4:], "free")
	return append(b, payload...)
}

// readShift finds the shift recorded by shiftBox among the top-level boxes
// of a file of the given size; 0 when there is none (a file written before
// the box existed, or not by roomcast).
func readShift(r io.ReaderAt, size int64) time.Duration {
	var hdr [8]byte
	for off := int64(0); off+8 <= size; {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return 0
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if n < 8 || n > size-off { // largesize (mdat), size 0, or cut short
			return 0
		}
		if typ == "moof" || typ == "mdat" {
			return 0 // the box comes before the first fragment
		}
		if typ == "free" && n <= 64 {
			p := make([]byte, n-8)
			if _, err := r.ReadAt(p, off+8); err != nil {
				return 0
			}
			if v, ok := bytes.CutPrefix(p, []byte(shiftMagic)); ok {
				ns, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				if err != nil || ns < 0 || ns > int64(10*time.Second) {
					return 0
				}
				return time.Duration(ns)
			}
		}
		off += n
	}
	return 0
}
