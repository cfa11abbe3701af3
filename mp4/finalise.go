package mp4

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
)

// finalise remuxes the fragmented MP4 at path into a regular MP4 with the
// moov box before the mdat (ISO/IEC 14496-12 §6.2.3 recommends it for
// progressive download) and renames it over path. The new file is written
// to a temporary file in the same directory, so the rename is atomic and a
// crash while finalising leaves the fragmented file untouched (plus a
// ".finalise-*.tmp" file that can be deleted). It returns the new size.
func finalise(path string, log zerolog.Logger) (int64, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".finalise-*.tmp")
	if err != nil {
		return 0, finaliseError("creating temporary file", err)
	}
	tmpPath := tmp.Name()
	// CreateTemp makes the file 0600; the recording keeps the mode its
	// fragmented file was created with (0666 less the umask), so a web
	// server can serve it.
	if st, err := os.Stat(path); err == nil {
		_ = tmp.Chmod(st.Mode().Perm())
	}
	_ = tmp.Close()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmpPath)
		}
	}()

	if err := remux(path, tmpPath, log); err != nil {
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

// remux copies every packet of src into a faststart MP4 at dst. The
// timeline shift the writer recorded (see shiftBox) is taken off every
// timestamp, so the first picture and the first audible sample are at 0:
// movenc then writes the standard edit lists (media_time = the B-frame delay
// for video, the 1024 priming samples for AAC) and no empty edit.
func remux(src, dst string, log zerolog.Logger) (err error) {
	var shift time.Duration
	if f, err := os.Open(src); err == nil {
		if st, err := f.Stat(); err == nil {
			shift = readShift(f, st.Size())
		}
		_ = f.Close()
	}
	in := astiav.AllocFormatContext()
	if in == nil {
		return finaliseError("allocating demuxer", errors.New("out of memory"))
	}
	defer in.Free()
	defer av.RegisterLogClasser(in, log)()
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
	defer av.RegisterLogClasser(out, log)()
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
	// Packets read back from fragments carry no duration (the fragments use
	// tfhd's default), and movenc would give the last sample of each track
	// a zero duration and an edit list ending where that frame starts:
	// players then drop the last frame. So each packet is held until the
	// next one of its stream gives its duration; the last one of a stream
	// takes the one before it.
	shiftTS := make([]int64, len(outs))
	for i, is := range ins {
		shiftTS[i] = astiav.RescaleQRnd(int64(shift), astiav.NewRational(1, int(time.Second)), is.TimeBase(), astiav.RoundingNearInf)
	}
	held := make([]*astiav.Packet, len(outs))
	lastDur := make([]int64, len(outs))
	defer func() {
		for _, h := range held {
			if h != nil {
				h.Free()
			}
		}
	}()
	write := func(i int, next int64, eof bool) error {
		h := held[i]
		if h == nil {
			return nil
		}
		held[i] = nil
		defer h.Free()
		if h.Duration() <= 0 {
			if !eof && next > h.Dts() {
				h.SetDuration(next - h.Dts())
			} else if lastDur[i] > 0 {
				h.SetDuration(lastDur[i])
			}
		}
		if h.Duration() > 0 {
			lastDur[i] = h.Duration()
		}
		if shiftTS[i] != 0 {
			if h.Pts() != astiav.NoPtsValue {
				h.SetPts(h.Pts() - shiftTS[i])
			}
			if h.Dts() != astiav.NoPtsValue {
				h.SetDts(h.Dts() - shiftTS[i])
			}
		}
		h.RescaleTs(ins[i].TimeBase(), outs[i].TimeBase())
		h.SetPos(-1)
		if err := out.WriteInterleavedFrame(h); err != nil {
			return finaliseError("writing packet", err)
		}
		return nil
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
		if err := write(i, pkt.Dts(), false); err != nil {
			pkt.Unref()
			return err
		}
		held[i] = pkt.Clone()
		pkt.Unref()
		if held[i] == nil {
			return finaliseError("copying packet", errors.New("out of memory"))
		}
	}
	for i := range held {
		if err := write(i, 0, true); err != nil {
			return err
		}
	}
	if err := out.WriteTrailer(); err != nil {
		return finaliseError("writing index", err)
	}
	return nil
}
