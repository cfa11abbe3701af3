package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// Recover turns a recording left fragmented (by a crash, Abort or a failed
// finalise) into a regular MP4, as Close would have: it first cuts a
// trailing partial fragment away, then finalises. A file that is already a
// regular MP4 is left alone. Errors wrap ErrFinalise (the file is then still
// the fragmented one, minus any partial tail) or ErrWrite.
func Recover(path string, log zerolog.Logger) error {
	log = log.With().Str("component", "mp4").Str("path", path).Logger()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	end, fragments, err := scanBoxes(f, st.Size())
	if err == nil && end < st.Size() {
		log.Warn().Int64("bytes", st.Size()).Int64("kept", end).Msg("dropping a partial fragment")
		err = f.Truncate(end)
		if err == nil {
			err = f.Sync()
		}
	}
	err = errors.Join(err, f.Close())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	if fragments == 0 {
		return nil
	}
	start := time.Now()
	size, err := finalise(path, log)
	if err != nil {
		return err
	}
	log.Info().Int64("bytes", size).Int("fragments", fragments).Dur("took", time.Since(start)).Msg("recording recovered")
	return nil
}

// scanBoxes walks the top-level boxes (ISO/IEC 14496-12 §4.2) of a file of
// the given size and returns where the last whole unit ends (a moof counts
// only together with the mdat after it) and the number of whole fragments.
func scanBoxes(r io.ReaderAt, size int64) (end int64, fragments int, err error) {
	var hdr [16]byte
	pendingMoof := int64(-1) // start of a moof still waiting for its mdat
	for off := int64(0); off < size; {
		if size-off < 8 {
			break
		}
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return 0, 0, err
		}
		n, hdrLen := int64(binary.BigEndian.Uint32(hdr[:4])), int64(8)
		typ := string(hdr[4:8])
		if n == 1 { // 64-bit largesize follows
			if size-off < 16 {
				break
			}
			if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
				return 0, 0, err
			}
			n, hdrLen = int64(binary.BigEndian.Uint64(hdr[8:16])), 16
		} else if n == 0 { // extends to the end of the file: whole by definition
			n = size - off
		}
		if n < hdrLen || n > size-off {
			break // cut short (or garbage)
		}
		switch {
		case typ == "moof":
			pendingMoof = off
		case typ == "mdat" && pendingMoof >= 0:
			pendingMoof = -1
			fragments++
			end = off + n
		case pendingMoof < 0:
			end = off + n
		}
		off += n
	}
	return end, fragments, nil
}
