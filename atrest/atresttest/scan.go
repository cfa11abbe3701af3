// Package atresttest helps tests prove that no plaintext recording reaches
// the disk.
package atresttest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// signatures are the MP4 box types whose headers betray a plaintext
// recording (ISO/IEC 14496-12: ftyp starts every file, moof and mdat every
// fragment).
var signatures = [][]byte{[]byte("ftyp"), []byte("moof"), []byte("mdat")}

// PlainMP4 returns the offset of the first MP4 box header in b, or -1. A
// header is a box type preceded by a plausible 32-bit size (8 bytes up to
// the rest of the buffer, or 1 for a 64-bit size), so random ciphertext
// matches with a probability around 2^-32 × len/2^32 (negligible).
func PlainMP4(b []byte) int {
	for _, sig := range signatures {
		for off := 0; ; {
			i := bytes.Index(b[off:], sig)
			if i < 0 {
				break
			}
			at := off + i
			off = at + 1
			if at < 4 {
				continue
			}
			size := binary.BigEndian.Uint32(b[at-4 : at])
			if size == 1 || (size >= 8 && int64(size) <= int64(len(b)-(at-4))+1<<20) {
				return at - 4
			}
		}
	}
	return -1
}

// ScanDir reads every regular file under dir and describes each one holding
// an MP4 box header.
func ScanDir(dir string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // a temporary file vanished while walking
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if off := PlainMP4(b); off >= 0 {
			found = append(found, fmt.Sprintf("%s: MP4 box %q at offset %d", p, b[off+4:off+8], off))
		}
		return nil
	})
	return found, err
}
