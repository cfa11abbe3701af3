package mp4

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// smallDisk mounts a tmpfs of size bytes for the test (we run as root in
// CI). Without root the tests fall back to limitFile.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return ""
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+strconv.FormatInt(size, 10)); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// limitFile is an *os.File whose writes fail with errno once the file would
// grow past limit, writing what fits first, like a full disk.
type limitFile struct {
	*os.File
	limit int64
	errno syscall.Errno
}

func (f *limitFile) WriteAt(b []byte, off int64) (int, error) {
	if off+int64(len(b)) <= f.limit {
		return f.File.WriteAt(b, off)
	}
	n := 0
	if off < f.limit {
		n, _ = f.File.WriteAt(b[:f.limit-off], off)
	}
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: f.errno}
}

// writeUntilError writes the fixture until WritePacket fails, checks that
// the error is sticky and returns it.
func writeUntilError(t *testing.T, w *Writer) error {
	t.Helper()
	for i, p := range fix.packets {
		if err := w.WritePacket(p); err != nil {
			t.Logf("packet %d of %d failed after %d bytes: %v", i, len(fix.packets), w.Bytes(), err)
			for _, q := range fix.packets[i+1 : i+3] {
				if err2 := w.WritePacket(q); !errors.Is(err2, err) && err2.Error() != err.Error() {
					t.Errorf("later write returned %v, want the same error", err2)
				}
			}
			return err
		}
	}
	t.Fatal("every packet was written; the disk never filled")
	return nil
}

// checkPlayable checks that path is a fragmented MP4 made of whole boxes
// that decodes without an error and holds some video.
func checkPlayable(t *testing.T, path string, wantBytes int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if wantBytes >= 0 && st.Size() != wantBytes {
		t.Errorf("file has %d bytes, Bytes() said %d", st.Size(), wantBytes)
	}
	topBoxes(t, path) // fails on a truncated box
	p := ffprobe(t, path, false)
	_, _, vn := p.stream(t, "video")
	if vn == 0 {
		t.Error("no video survived")
	}
	t.Logf("%d bytes, %d video packets of %d playable", st.Size(), vn, fix.video)
	decodeAll(t, path)
}

func TestDiskFull(t *testing.T) {
	size := fix.bytes / 2
	dir := smallDisk(t, size)
	if dir == "" {
		t.Skip("not root: see TestWriteErrorFakeFile")
	}
	path := filepath.Join(dir, "rec.mp4")
	w, err := Create(path, fix.info, Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort) // before the unmount
	err = writeUntilError(t, w)
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("err = %v, want ErrDiskFull", err)
	}
	checkPlayable(t, path, w.Bytes())

	// Finalising needs the file's size again, which this disk lacks: the
	// fragmented file stays and plays, and no temporary file is left.
	cerr := w.Close()
	if !errors.Is(cerr, ErrDiskFull) || !errors.Is(cerr, ErrFinalise) {
		t.Fatalf("Close = %v, want ErrDiskFull and ErrFinalise", cerr)
	}
	t.Log(cerr)
	if err := w.Close(); err == nil || err.Error() != cerr.Error() {
		t.Errorf("second Close = %v, want the same error", err)
	}
	checkPlayable(t, path, -1)
	noTemp(t, dir)
}

// TestFinaliseDiskFull: recording fits, finalising does not.
func TestFinaliseDiskFull(t *testing.T) {
	dir := smallDisk(t, fix.bytes*3/2)
	if dir == "" {
		t.Skip("not root")
	}
	path := filepath.Join(dir, "rec.mp4")
	w, err := Create(path, fix.info, Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort) // before the unmount
	writeAll(t, w, fix.packets)
	err = w.Close()
	if !errors.Is(err, ErrFinalise) || !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Close = %v, want ErrFinalise with ErrDiskFull", err)
	}
	t.Log(err)
	types := boxTypes(topBoxes(t, path))
	// ftyp, moov, the free box recording the timeline shift, fragments.
	if len(types) < 4 || types[1] != "moov" || types[2] != "free" || types[3] != "moof" {
		t.Errorf("boxes %v: want the fragmented file", types[:min(4, len(types))])
	}
	p := ffprobe(t, path, false)
	if _, _, vn := p.stream(t, "video"); vn != fix.video {
		t.Errorf("%d video packets, want all %d", vn, fix.video)
	}
	decodeAll(t, path)
	noTemp(t, dir)
}

// TestWriteErrorFakeFile runs without root: ENOSPC and EIO from the file.
func TestWriteErrorFakeFile(t *testing.T) {
	for _, tc := range []struct {
		errno syscall.Errno
		want  error
	}{{syscall.ENOSPC, ErrDiskFull}, {syscall.EIO, ErrWrite}} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rec.mp4")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			w, err := newWriter(path, &limitFile{File: f, limit: fix.bytes / 2, errno: tc.errno}, fix.info, Options{})
			if err != nil {
				t.Fatal(err)
			}
			err = writeUntilError(t, w)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			w.Abort()
			checkPlayable(t, path, w.Bytes())
		})
	}
}

func noTemp(t *testing.T, dir string) {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if e.Name() != "rec.mp4" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}
