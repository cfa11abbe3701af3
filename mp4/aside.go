package mp4

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// SetAside says what SetAsideTorn found at a recording's path.
type SetAside struct {
	// Path is where the earlier, torn recording now is (finalised when
	// Recovered.Fragments > 0 and Err is nil); empty when nothing was moved.
	Path string
	// Recovered is what recovering it kept.
	Recovered Recovered
	// Err is why recovering failed (the file was moved aside all the same,
	// still fragmented and playable up to its last whole fragment).
	Err error
	// Empty: the file was a recording that stopped before its first
	// fragment (a header, no media); it was removed, since it holds nothing.
	Empty bool
}

// SetAsideTorn prepares path for a new recording when it holds an earlier
// recording that a crash left fragmented (kill -9, power cut, a restarted
// job): that recording is recovered in place (Recover: torn tail cut,
// finalised) and moved to a name of its own next to it,
// "<name>.recovered-<UTC time of its last write>.mp4" (never replacing
// another file), so nothing recorded is lost or overwritten. A finalised
// MP4, a file that is not an MP4 (an encrypted recording, anything else) or
// a missing file are left as they are (Create then refuses or, with
// Overwrite, replaces them); the zero SetAside says so.
func SetAsideTorn(path string, log zerolog.Logger) (SetAside, error) {
	var res SetAside
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrCreate, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		_ = f.Close()
		return res, nil // checkDestination explains
	}
	var head [8]byte
	if _, err := f.ReadAt(head[:], 0); err != nil || string(head[4:8]) != "ftyp" {
		_ = f.Close()
		return res, nil
	}
	_, fragments, serr := scanBoxes(f, st.Size())
	moof := serr == nil && fragments == 0 && hasTopBox(path, "moof")
	_ = f.Close()
	if serr != nil {
		return res, fmt.Errorf("%w: %s: %w", ErrCreate, path, serr)
	}
	log = log.With().Str("component", "mp4").Str("path", path).Logger()
	if fragments == 0 {
		if hasTopBox(path, "mdat") || (!moof && !hasTopBox(path, "moov")) {
			return res, nil // a finalised MP4 (or not ours): Create decides
		}
		// ftyp + empty moov (+ a torn first moof): nothing was recorded.
		if err := os.Remove(path); err != nil {
			return res, fmt.Errorf("%w: %w", ErrCreate, err)
		}
		res.Empty = true
		log.Warn().Int64("bytes", st.Size()).Msg("an earlier recording at this path stopped before its first fragment (no media): replaced")
		return res, nil
	}
	res.Recovered, res.Err = RecoverFile(path, log)
	if res.Err != nil && !errors.Is(res.Err, ErrFinalise) {
		return res, fmt.Errorf("%w: an earlier torn recording is at %s and could not be recovered: %w", ErrCreate, path, res.Err)
	}
	aside, err := moveAside(path, st.ModTime())
	if err != nil {
		return res, fmt.Errorf("%w: an earlier torn recording is at %s and could not be moved aside: %w", ErrCreate, path, err)
	}
	res.Path = aside
	ev := log.Warn().Str("moved_to", aside).Int("fragments", res.Recovered.Fragments).
		Str("kept", fmt.Sprintf("%.2fs", res.Recovered.Duration.Seconds())).Int64("dropped_bytes", res.Recovered.Dropped)
	if res.Err != nil {
		ev = ev.AnErr("recover_error", res.Err)
	}
	ev.Msg("an earlier recording at this path was torn by a crash: recovered and moved aside")
	return res, nil
}

// moveAside gives path a new name next to it, stamped with t, without ever
// replacing a file (a hard link fails when the name is taken).
func moveAside(path string, t time.Time) (string, error) {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if ext == "" {
		ext = ".mp4"
	}
	stamp := t.UTC().Format("20060102T150405Z")
	for i := 1; i < 1000; i++ {
		name := fmt.Sprintf("%s.recovered-%s%s", stem, stamp, ext)
		if i > 1 {
			name = fmt.Sprintf("%s.recovered-%s-%d%s", stem, stamp, i, ext)
		}
		dst := filepath.Join(dir, name)
		err := os.Link(path, dst)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			// A file system without hard links: copy exclusively.
			if cerr := copyExclusive(path, dst); errors.Is(cerr, os.ErrExist) {
				continue
			} else if cerr != nil {
				return "", errors.Join(err, cerr)
			}
		}
		if err := os.Remove(path); err != nil {
			return "", err
		}
		return dst, syncDir(dir)
	}
	return "", fmt.Errorf("no free name next to %s", path)
}

func copyExclusive(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if err = errors.Join(err, out.Close()); err != nil {
		_ = os.Remove(dst)
	}
	return err
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	_ = d.Sync() // best effort: not every file system syncs directories
	return nil
}
