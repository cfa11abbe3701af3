package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"
)

// Recovered says what Recover kept.
type Recovered struct {
	// Fragments is the number of whole fragments kept (0 when the file was
	// already a regular MP4, left alone).
	Fragments int
	// Dropped is the size in bytes of the torn tail cut away.
	Dropped int64
	// Bytes is the size of the resulting file.
	Bytes int64
	// Duration is the media the resulting file holds.
	Duration time.Duration
	// AlreadyFinal: the file was a regular MP4 already; nothing was changed.
	AlreadyFinal bool
}

// Recover turns a recording left fragmented (by a crash, Abort or a failed
// finalise) into a regular MP4, as Close would have: it first cuts a
// trailing partial fragment away, then finalises. A file that is already a
// regular MP4 is left alone. Errors wrap ErrFinalise (the file is then still
// the fragmented one, minus any partial tail) or ErrWrite; a file that is
// not an MP4 at all wraps ErrNotMP4.
func Recover(path string, log zerolog.Logger) error {
	_, err := RecoverFile(path, log)
	return err
}

// ErrNotMP4: Recover was given a file that does not start like an MP4.
var ErrNotMP4 = errors.New("mp4: not an MP4 recording")

// RecoverFile is Recover, reporting what it kept.
func RecoverFile(path string, log zerolog.Logger) (Recovered, error) {
	var rep Recovered
	log = log.With().Str("component", "mp4").Str("path", path).Logger()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return rep, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	var head [8]byte
	if _, err := f.ReadAt(head[:], 0); err != nil || string(head[4:8]) != "ftyp" {
		_ = f.Close()
		return rep, fmt.Errorf("%w: %s", ErrNotMP4, path)
	}
	end, fragments, err := scanBoxes(f, st.Size())
	rep.Fragments = fragments
	if err == nil && end < st.Size() && fragments > 0 {
		rep.Dropped = st.Size() - end
		log.Warn().Int64("bytes", st.Size()).Int64("kept", end).Msg("dropping a partial fragment")
		err = f.Truncate(end)
		if err == nil {
			err = f.Sync()
		}
	}
	err = errors.Join(err, f.Close())
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	if fragments == 0 {
		if !hasTopBox(path, "mdat") {
			return rep, fmt.Errorf("%w: %s holds no media (the recording stopped before its first fragment)", ErrNotMP4, path)
		}
		rep.AlreadyFinal = true
		rep.Bytes = st.Size()
		rep.Duration = mediaDuration(path)
		return rep, nil
	}
	start := time.Now()
	size, err := finalise(path, log)
	if err != nil {
		return rep, err
	}
	rep.Bytes = size
	rep.Duration = mediaDuration(path)
	log.Info().Int64("bytes", size).Int("fragments", fragments).Dur("took", time.Since(start)).Msg("recording recovered")
	return rep, nil
}

// hasTopBox reports whether the file has a top-level box of type typ.
func hasTopBox(path, typ string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	var hdr [16]byte
	for off := int64(0); off+8 <= st.Size(); {
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			return false
		}
		if string(hdr[4:8]) == typ {
			return true
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n == 1 {
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				return false
			}
			n = int64(binary.BigEndian.Uint64(hdr[8:16]))
		}
		if n < 8 {
			return false
		}
		off += n
	}
	return false
}

// mediaDuration is the duration the container declares (0 if unknown).
func mediaDuration(path string) time.Duration {
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return 0
	}
	defer fc.Free()
	if err := fc.OpenInput(path, nil, nil); err != nil {
		return 0
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		return 0
	}
	d := fc.Duration()
	if d <= 0 || d == astiav.NoPtsValue {
		return 0
	}
	return time.Duration(d) * time.Microsecond // AV_TIME_BASE
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
