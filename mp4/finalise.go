package mp4

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/asticode/go-astiav"
)

// finalise remuxes the fragmented MP4 at path into a regular MP4 with the
// moov box before the mdat (ISO/IEC 14496-12 §6.2.3 recommends it for
// progressive download) and renames it over path. The new file is written
// to a temporary file in the same directory, so the rename is atomic and a
// crash while finalising leaves the fragmented file untouched (plus a
// ".finalise-*.tmp" file that can be deleted). It returns the new size.
func finalise(path string) (int64, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".finalise-*.tmp")
	if err != nil {
		return 0, finaliseError("creating temporary file", err)
	}
	tmpPath := tmp.Name()
	_ = tmp.Close()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmpPath)
		}
	}()

	if err := remux(path, tmpPath); err != nil {
		return 0, err
	}
	f, err := os.Open(tmpPath)
	if err != nil {
		return 0, finaliseError("reopening", err)
	}
	err = f.Sync()
	st, serr := f.Stat()
	_ = f.Close()
	if err = errors.Join(err, serr); err != nil {
		return 0, finaliseError("syncing", err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return 0, finaliseError("renaming", err)
	}
	ok = true
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return st.Size(), nil
}

func finaliseError(what string, err error) error {
	if isNoSpace(err) {
		return fmt.Errorf("%w: %s: %w: %w", ErrFinalise, what, ErrDiskFull, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrFinalise, what, err)
}

// remux copies every packet of src into a faststart MP4 at dst.
func remux(src, dst string) (err error) {
	in := astiav.AllocFormatContext()
	if in == nil {
		return finaliseError("allocating demuxer", errors.New("out of memory"))
	}
	defer in.Free()
	if err := in.OpenInput(src, nil, nil); err != nil {
		return finaliseError("opening "+src, err)
	}
	defer in.CloseInput()
	if err := in.FindStreamInfo(nil); err != nil {
		return finaliseError("reading stream info", err)
	}

	// The format is named because dst ends in .tmp; the file name is set
	// because faststart reopens the output by name to move the moov.
	out, err := astiav.AllocOutputFormatContext(nil, "mp4", dst)
	if err != nil {
		return finaliseError("allocating muxer", err)
	}
	defer out.Free()
	ins := in.Streams()
	outs := make([]*astiav.Stream, len(ins))
	for i, is := range ins {
		st := out.NewStream(nil)
		if err := is.CodecParameters().Copy(st.CodecParameters()); err != nil {
			return finaliseError("copying stream parameters", err)
		}
		st.CodecParameters().SetCodecTag(0)
		st.SetTimeBase(is.TimeBase())
		outs[i] = st
	}
	ioc, err := astiav.OpenIOContext(dst, astiav.NewIOContextFlags(astiav.IOContextFlagWrite), nil, nil)
	if err != nil {
		return finaliseError("opening "+dst, err)
	}
	out.SetPb(ioc)
	defer func() {
		// avio_closep flushes; its error is the last write's.
		if cerr := ioc.Close(); cerr != nil && err == nil {
			err = finaliseError("closing", cerr)
		}
	}()

	d := astiav.NewDictionary()
	defer d.Free()
	if err := d.Set("movflags", "+faststart", 0); err != nil {
		return finaliseError("muxer option", err)
	}
	if err := out.WriteHeader(d); err != nil {
		return finaliseError("writing header", err)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	for {
		if err := in.ReadFrame(pkt); err != nil {
			if errors.Is(err, astiav.ErrEof) {
				break
			}
			return finaliseError("reading packet", err)
		}
		i := pkt.StreamIndex()
		if i < 0 || i >= len(outs) {
			pkt.Unref()
			continue
		}
		pkt.RescaleTs(ins[i].TimeBase(), outs[i].TimeBase())
		pkt.SetPos(-1)
		if err := out.WriteInterleavedFrame(pkt); err != nil {
			return finaliseError("writing packet", err)
		}
	}
	if err := out.WriteTrailer(); err != nil {
		return finaliseError("writing index", err)
	}
	return nil
}
