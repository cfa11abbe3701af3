package mp4

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/atrest"
)

// file is what the sink needs from an *os.File; tests substitute a file that
// runs out of space.
type file interface {
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// appender turns the file into the sequential writer age needs.
type appender struct {
	f   file
	off int64
}

func (a *appender) Write(b []byte) (int, error) {
	n, err := a.f.WriteAt(b, a.off)
	a.off += int64(n)
	return n, err
}

// libavformat's extra whence values (libavformat/avio.h).
const (
	avseekSize  = 0x10000 // report the stream size, do not move
	avseekForce = 0x20000 // hint only
)

// sink is the byte destination behind the muxer's custom AVIOContext.
//
// The muxer's bytes are collected in pending and written with one WriteAt
// per commit (after every packet, and so after every fragment the mov muxer
// flushes). A fragment therefore reaches the file whole or, when the write
// fails, not at all: a failed append is truncated away, so the file always
// ends on a box boundary and stays playable.
type sink struct {
	f       file
	pending []byte // bytes produced by the muxer, to be written at pos
	pos     int64  // file offset where pending starts
	size    int64  // bytes on file
	err     error  // first I/O error, classified (sticky)
	// synced is when the data last reached the disk; a commit after
	// syncEvery flushes it (fdatasync), so a power cut, not only a crash,
	// loses at most about a second more than the fragment in progress.
	synced time.Time
	// enc, when set, encrypts: pending goes through it in order instead
	// of WriteAt, so the output is append-only (the fragmented muxer only
	// appends) and size counts plaintext bytes.
	enc *atrest.Writer
}

// syncEvery is how often fragments are forced to the disk.
const syncEvery = time.Second

// write is the AVIOContext write callback. It only buffers.
func (s *sink) write(b []byte) (int, error) {
	if s.err != nil {
		return 0, avError(s.err)
	}
	s.pending = append(s.pending, b...)
	return len(b), nil
}

// seek is the AVIOContext seek callback. It commits what is pending first,
// so pending always starts at pos.
func (s *sink) seek(offset int64, whence int) (int64, error) {
	if whence&avseekSize != 0 {
		return max(s.size, s.pos+int64(len(s.pending))), nil
	}
	if err := s.commit(); err != nil {
		return 0, avError(err)
	}
	var p int64
	switch whence &^ avseekForce {
	case io.SeekStart:
		p = offset
	case io.SeekCurrent:
		p = s.pos + offset
	case io.SeekEnd:
		p = s.size + offset
	default:
		return 0, astiav.Error(-int(syscall.EINVAL))
	}
	if p < 0 {
		return 0, astiav.Error(-int(syscall.EINVAL))
	}
	s.pos = p
	return p, nil
}

// commit writes the pending bytes. On failure of an append the file is cut
// back to its previous size, dropping the partial fragment.
func (s *sink) commit() error {
	if s.err != nil {
		return s.err
	}
	if len(s.pending) == 0 {
		return nil
	}
	if s.enc != nil {
		return s.commitEncrypted()
	}
	n, err := s.f.WriteAt(s.pending, s.pos)
	if err != nil {
		s.err = classify(err)
		// n is not trustworthy here (a partial pwrite may be reported as
		// 0), so cut back whenever the write could have grown the file.
		if s.pos+int64(len(s.pending)) > s.size {
			// Truncating frees blocks, so it works on a full disk too.
			if terr := s.f.Truncate(s.size); terr != nil {
				s.err = errors.Join(s.err, fmt.Errorf("dropping partial fragment: %w", terr))
			}
		}
		s.pending = s.pending[:0]
		return s.err
	}
	s.pos += int64(n)
	s.size = max(s.size, s.pos)
	s.pending = s.pending[:0]
	return s.maybeSync()
}

// commitEncrypted appends the pending bytes to the age stream. A failed
// write leaves at most one torn chunk at the end of the file, which
// decryption stops before.
func (s *sink) commitEncrypted() error {
	if s.pos != s.size {
		s.err = fmt.Errorf("%w: the muxer rewrote offset %d of an encrypted (append-only) output", ErrWrite, s.pos)
		s.pending = s.pending[:0]
		return s.err
	}
	n, err := s.enc.Write(s.pending)
	s.pending = s.pending[:0]
	if err != nil {
		s.err = classify(err)
		return s.err
	}
	s.pos += int64(n)
	s.size = s.pos
	return s.maybeSync()
}

// maybeSync forces the data to the disk at most every syncEvery.
func (s *sink) maybeSync() error {
	if now := time.Now(); now.Sub(s.synced) >= syncEvery {
		s.synced = now
		if err := s.f.Sync(); err != nil {
			s.err = classify(err)
			return s.err
		}
	}
	return nil
}

// classify maps an I/O error to ErrDiskFull or ErrWrite.
func classify(err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("%w: %w", ErrWrite, err)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		errors.Is(err, astiav.Error(-int(syscall.ENOSPC))) || errors.Is(err, astiav.Error(-int(syscall.EDQUOT)))
}

// avError turns a classified error into an AVERROR code for libavformat.
func avError(err error) error {
	if errors.Is(err, ErrDiskFull) {
		return astiav.Error(-int(syscall.ENOSPC))
	}
	return astiav.ErrEio
}
