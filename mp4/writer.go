// Package mp4 writes roomcast's recording: an MP4 file that survives a crash.
//
// While recording, the file is a fragmented MP4 (ISO/IEC 14496-12 §8.8): an
// ftyp and an empty moov with mvex go out first, then one moof+mdat pair per
// fragment. Every fragment is complete on disk once written, so a process that
// dies leaves a file that plays up to its last fragment; fragments are cut at
// most Options.FragmentDuration apart. ("On disk" means handed to the
// kernel: it survives the process, not a power cut; fragments are not
// fsynced one by one.) Close then finalises: it remuxes the
// fragments into a regular MP4 with the index (moov) in front (“faststart”)
// and renames it over the original.
//
// Timestamps: fragmented MP4 cannot start a track before zero (there is no
// edit list in an empty moov), so the first packets are held until every
// stream has delivered one and all timestamps are then shifted by the most
// negative first DTS (B-frame delay, AAC priming; typically 40–80 ms). The
// streams keep their relative timing, and the shift is recorded in a free
// box ("roomcast timeline shift", see shiftBox) just before the first
// fragment. Finalising (Close, Recover) takes the shift off again, so the
// regular MP4 is timed as the encoders stamped it: the first picture and the
// first audible sample at 0, B-frame delay and AAC priming expressed the
// standard way, by each track's edit list media_time (ISO/IEC 14496-12
// §8.6.6; 1024 samples for AAC-LC), with no empty edit. A fragmented file
// played as it is (after a crash, before Recover) starts its timeline at the
// shift instead.
//
// Caveat: a fragment is written with one pwrite, so a crash leaves whole
// fragments only, except if the kernel kills the process inside that write
// (possible for SIGKILL on large writes); then the last fragment is cut
// short: players ignore it while ffmpeg reports it as an error. Recover
// drops such a tail and finalises a crashed recording.
//
// Encryption at rest (Options.Encrypt): the same fragmented MP4 goes
// through age's STREAM encryption (package atrest) on its way to the file,
// so no plaintext byte reaches the disk. age seals 64 KiB chunks; to keep
// what a crash loses within MaxLoss, the writer follows each fragment, when
// needed, with a top-level "free" box (ISO/IEC 14496-12 §8.1.2, ignored by
// players) just long enough to seal the chunk holding the fragment's end.
// An encrypted recording is not remuxed when closed: the finished file is
// the fragmented MP4 (its moov is in front, so it streams, and an mfra
// index at the end), whole in a standard age file. See EncryptedMaxLoss.
//
// The muxing is libavformat's mov muxer, driven through go-astiav; the
// libav log callback is global and left to the program.
package mp4

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/atrest"
	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/media"
)

// Errors. Each is wrapped with the details (errors.Is works).
var (
	// ErrCreate: the output cannot be created (missing or unwritable
	// directory, path is a directory, file exists, invalid StreamInfo). The
	// user's destination is at fault; nothing was left on disk.
	ErrCreate = errors.New("mp4: cannot create output")
	// ErrDiskFull: the file system ran out of space (ENOSPC, EDQUOT). What
	// was written before stays playable.
	ErrDiskFull = errors.New("mp4: disk full")
	// ErrWrite: any other I/O error while writing. What was written before
	// stays playable.
	ErrWrite = errors.New("mp4: write failed")
	// ErrPacket: the packet was rejected (unknown stream, timestamps going
	// backwards, PTS before DTS). The writer stays usable; the caller has a
	// bug.
	ErrPacket = errors.New("mp4: invalid packet")
	// ErrFinalise: the fragmented recording could not be turned into a
	// regular MP4. The fragmented file is kept at the output path and plays.
	ErrFinalise = errors.New("mp4: finalise failed; the fragmented file is kept and plays")
	// ErrClosed: WritePacket after Close or Abort.
	ErrClosed = errors.New("mp4: writer closed")
)

// DefaultFragmentDuration is the fragment length used when
// Options.FragmentDuration is zero.
const DefaultFragmentDuration = time.Second

// MaxFragmentDuration bounds Options.FragmentDuration so a crash never loses
// more than about this much (plus one frame).
const MaxFragmentDuration = 2 * time.Second

// DefaultEncryptedFragmentDuration is the fragment length of an encrypted
// recording when Options.FragmentDuration is zero: shorter, because a
// fragment already written may still wait in age's unsealed chunk.
const DefaultEncryptedFragmentDuration = 500 * time.Millisecond

// EncryptedMaxLoss bounds what a crash loses from an encrypted recording
// (plus one frame): the fragment in progress and the written fragments
// whose chunk is not sealed yet. Padding seals a chunk early when waiting
// for the next fragment could exceed it. With the default fragment
// duration, padding is needed only below about 1 Mb/s, and costs at most
// 64 KiB per EncryptedMaxLoss - FragmentDuration (1 s).
const EncryptedMaxLoss = 1500 * time.Millisecond

// Options tune a Writer. The zero value is usable.
type Options struct {
	// FragmentDuration is the longest stretch of media held in memory before
	// it goes to disk as a fragment; a crash loses at most this plus one
	// frame. Fragments are also cut at video keyframes. It defaults to
	// DefaultFragmentDuration (1 s), or DefaultEncryptedFragmentDuration
	// (0.5 s) when encrypting, and must not exceed MaxFragmentDuration
	// (EncryptedMaxLoss when encrypting).
	FragmentDuration time.Duration
	// Encrypt, when not empty, encrypts the recording as it is written to
	// these age recipients; nothing else can read it. It defaults to none
	// (a plain MP4).
	Encrypt []age.Recipient
	// Overwrite allows replacing an existing file at the path. It defaults
	// to false: an existing file is an ErrCreate.
	Overwrite bool
	// Log receives the writer's events (field component=mp4). It defaults to
	// zerolog's disabled logger.
	Log zerolog.Logger
}

// holdLimit bounds how long packets wait for the other stream's first
// packet before the timestamp shift is fixed without it.
const holdLimit = time.Second

// Writer writes one recording. WritePacket, Close and Abort may be called
// from different goroutines; Duration and Bytes never block.
type Writer struct {
	path string
	opts Options
	log  zerolog.Logger

	mu     sync.Mutex
	sink   *sink
	fc     *astiav.FormatContext
	ioc    *astiav.IOContext
	pkt    *astiav.Packet
	tracks [2]*track // by media.Kind; nil when the stream is absent
	// heldVideo waits for the next video packet, which sets its duration
	// (see write).
	heldVideo media.Packet
	hasHeld   bool
	// Before the first write, packets wait in hold until every stream has
	// delivered one, so that shift (added to every timestamp) can make the
	// earliest DTS zero: the fragmented mov muxer cannot store negative
	// times (no edit list in an empty moov), and AAC priming and B-frames
	// make the first timestamps negative.
	hold    []media.Packet
	started bool
	shift   time.Duration
	err     error // sticky I/O error
	done    bool
	doneErr error

	unregs []func() // FFmpeg log routing (av.RegisterLogContext)

	// Encryption only: fragment ends not sealed yet, and the media time up
	// to which a crash loses nothing.
	unsealed    []fragEnd
	sealedMedia time.Duration
	padded      int64 // padding bytes written, for the log

	bytes    atomic.Int64
	duration atomic.Int64
}

// fragEnd is where a written fragment ends: plaintext offset and the media
// time it covers.
type fragEnd struct {
	off   int64
	media time.Duration
}

type track struct {
	st      *astiav.Stream
	tb      astiav.Rational
	lastDTS int64
	seen    bool
	frames  int64
}

// Create starts a recording at path: it checks the destination, creates the
// file and writes the fragmented header (ftyp + empty moov) at once.
func Create(path string, info media.StreamInfo, opts Options) (*Writer, error) {
	if err := checkDestination(path, opts.Overwrite); err != nil {
		return nil, err
	}
	flag := os.O_RDWR | os.O_CREATE | os.O_EXCL
	if opts.Overwrite {
		flag = os.O_RDWR | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCreate, path, err)
	}
	w, err := newWriter(path, f, info, opts)
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, err
	}
	return w, nil
}

// checkDestination explains, before anything is created, why path cannot
// be written.
func checkDestination(path string, overwrite bool) error {
	if path == "" {
		return fmt.Errorf("%w: empty path", ErrCreate)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: directory %s does not exist", ErrCreate, dir)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %s: a parent is not a directory", ErrCreate, dir)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrCreate, err)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrCreate, dir)
	}
	if err := syscall.Access(dir, 0x2|0x1); err != nil { // W_OK|X_OK
		return fmt.Errorf("%w: directory %s is not writable: %w", ErrCreate, dir, err)
	}
	st, err = os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("%w: %s is a directory", ErrCreate, path)
	case err == nil && !overwrite:
		return fmt.Errorf("%w: %s already exists", ErrCreate, path)
	case err == nil && !st.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", ErrCreate, path)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %w", ErrCreate, err)
	}
	return nil
}

// newWriter is Create's twin over an open file (tests pass failing files).
// On error the caller closes and removes f.
func newWriter(path string, f file, info media.StreamInfo, opts Options) (w *Writer, err error) {
	maxFrag := MaxFragmentDuration
	if opts.FragmentDuration == 0 {
		opts.FragmentDuration = DefaultFragmentDuration
		if len(opts.Encrypt) > 0 {
			opts.FragmentDuration = DefaultEncryptedFragmentDuration
		}
	}
	if len(opts.Encrypt) > 0 {
		maxFrag = EncryptedMaxLoss
	}
	if opts.FragmentDuration < 0 || opts.FragmentDuration > maxFrag {
		return nil, fmt.Errorf("%w: fragment duration %v outside (0, %v]", ErrCreate, opts.FragmentDuration, maxFrag)
	}
	hasVideo, hasAudio := info.Width > 0 || len(info.VideoConfig) > 0, info.SampleRate > 0
	switch {
	case !hasVideo && !hasAudio:
		return nil, fmt.Errorf("%w: stream info has neither video nor audio", ErrCreate)
	case hasVideo && (info.Width <= 0 || info.Height <= 0 || len(info.VideoConfig) == 0):
		return nil, fmt.Errorf("%w: video needs width, height and SPS/PPS (VideoConfig)", ErrCreate)
	case hasAudio && (len(info.AudioConfig) < 2 || info.Channels < 1 || info.Channels > 2):
		return nil, fmt.Errorf("%w: audio needs an AudioSpecificConfig and 1 or 2 channels", ErrCreate)
	}

	w = &Writer{
		path: path,
		opts: opts,
		log:  opts.Log.With().Str("component", "mp4").Str("path", path).Logger(),
		sink: &sink{f: f},
	}
	defer func() {
		if err != nil {
			w.free()
		}
	}()
	if len(opts.Encrypt) > 0 {
		// The age header goes out now; the MP4 header follows as payload.
		if w.sink.enc, err = atrest.NewWriter(&appender{f: f}, opts.Encrypt); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCreate, err)
		}
	}

	if w.fc, err = astiav.AllocOutputFormatContext(nil, "mp4", ""); err != nil {
		return nil, fmt.Errorf("%w: allocating muxer: %w", ErrCreate, err)
	}
	w.unregs = append(w.unregs, av.RegisterLogClasser(w.fc, w.opts.Log))
	if hasVideo {
		st := w.fc.NewStream(nil)
		cp := st.CodecParameters()
		cp.SetMediaType(astiav.MediaTypeVideo)
		cp.SetCodecID(astiav.CodecIDH264)
		cp.SetWidth(info.Width)
		cp.SetHeight(info.Height)
		// movenc turns Annex B extradata into an avcC box and Annex B
		// packets into length-prefixed samples (ISO/IEC 14496-15 §5.3).
		if err = cp.SetExtraData(info.VideoConfig); err != nil {
			return nil, fmt.Errorf("%w: video config: %w", ErrCreate, err)
		}
		if info.FPS > 0 {
			st.SetAvgFrameRate(astiav.NewRational(info.FPS, 1))
		}
		// A 90 kHz timescale represents any common frame rate exactly.
		st.SetTimeBase(astiav.NewRational(1, 90000))
		w.tracks[media.KindVideo] = &track{st: st}
	}
	if hasAudio {
		st := w.fc.NewStream(nil)
		cp := st.CodecParameters()
		cp.SetMediaType(astiav.MediaTypeAudio)
		cp.SetCodecID(astiav.CodecIDAac)
		cp.SetSampleRate(info.SampleRate)
		cp.SetFrameSize(1024)
		if info.Channels == 1 {
			cp.SetChannelLayout(astiav.ChannelLayoutMono)
		} else {
			cp.SetChannelLayout(astiav.ChannelLayoutStereo)
		}
		if err = cp.SetExtraData(info.AudioConfig); err != nil {
			return nil, fmt.Errorf("%w: audio config: %w", ErrCreate, err)
		}
		st.SetTimeBase(astiav.NewRational(1, info.SampleRate))
		w.tracks[media.KindAudio] = &track{st: st}
	}

	if w.ioc, err = astiav.AllocIOContext(64<<10, true, nil, w.sink.seek, w.sink.write); err != nil {
		return nil, fmt.Errorf("%w: allocating I/O context: %w", ErrCreate, err)
	}
	// The custom AVIOContext has no AVClass (FFmpeg logs its I/O errors
	// for the format context, registered above).
	w.fc.SetPb(w.ioc)

	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range map[string]string{
		// empty_moov: the header is complete before any sample, so the file
		// plays from its first fragment. frag_keyframe also cuts at every
		// keyframe; frag_duration (µs) bounds what a crash loses.
		// default_base_moof: offsets relative to each moof (ISO/IEC
		// 14496-12 §8.8.7), so each fragment is self-contained.
		"movflags":      "frag_keyframe+empty_moov+default_base_moof+frag_discont",
		"frag_duration": strconv.FormatInt(opts.FragmentDuration.Microseconds(), 10),
		// Timestamps are shifted here (see Writer.hold); an edit list cannot
		// be written into an empty moov, and libavformat's own shift would
		// depend on which stream happens to come first.
		"use_editlist":      "0",
		"avoid_negative_ts": "disabled",
	} {
		if err = d.Set(k, v, 0); err != nil {
			return nil, fmt.Errorf("%w: muxer option %s: %w", ErrCreate, k, err)
		}
	}
	if err = w.fc.WriteHeader(d); err != nil {
		return nil, w.createError("writing header", err)
	}
	if e := d.Get("", nil, astiav.NewDictionaryFlags(astiav.DictionaryFlagIgnoreSuffix)); e != nil {
		return nil, fmt.Errorf("%w: muxer ignored option %s", ErrCreate, e.Key())
	}
	if err = w.sink.commit(); err != nil {
		return nil, fmt.Errorf("%w: writing header: %w", ErrCreate, err)
	}
	w.bytes.Store(w.sink.size)
	for _, t := range w.tracks {
		if t != nil {
			t.tb = t.st.TimeBase() // the muxer picks its own timescale
		}
	}
	w.pkt = astiav.AllocPacket()
	w.log.Info().Bool("video", hasVideo).Bool("audio", hasAudio).Bool("encrypted", w.sink.enc != nil).
		Dur("fragment", opts.FragmentDuration).Msg("recording started")
	return w, nil
}

func (w *Writer) createError(what string, err error) error {
	if w.sink.err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCreate, what, w.sink.err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCreate, what, err)
}

// WritePacket adds one encoded packet. Packets of each stream must come in
// decoding order with increasing DTS; interleaving the streams roughly in
// time order is the caller's job. After an I/O error (ErrDiskFull, ErrWrite)
// every later call returns that error; ErrPacket rejects only this packet.
func (w *Writer) WritePacket(p media.Packet) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if int(p.Kind) < 0 || int(p.Kind) >= len(w.tracks) || w.tracks[p.Kind] == nil {
		return fmt.Errorf("%w: no stream of kind %d", ErrPacket, p.Kind)
	}
	if p.PTS < p.DTS {
		return fmt.Errorf("%w: PTS %v before DTS %v", ErrPacket, p.PTS, p.DTS)
	}
	if len(p.Data) == 0 {
		return fmt.Errorf("%w: empty packet", ErrPacket)
	}
	if !w.started {
		w.hold = append(w.hold, p)
		if !w.ready() {
			return nil
		}
		return w.start()
	}
	return w.write(p)
}

// ready reports whether the held packets fix the timestamp shift: every
// stream has delivered a packet, or one stream waited holdLimit.
func (w *Writer) ready() bool {
	var first [2]*media.Packet
	for i := range w.hold {
		if first[w.hold[i].Kind] == nil {
			first[w.hold[i].Kind] = &w.hold[i]
		}
	}
	all := true
	for k, t := range w.tracks {
		if t != nil && first[k] == nil {
			all = false
		}
	}
	if all {
		return true
	}
	last := w.hold[len(w.hold)-1]
	return last.DTS-w.hold[0].DTS >= holdLimit
}

// start fixes the shift and writes the held packets in DTS order, earliest
// first.
func (w *Writer) start() error {
	w.started = true
	hold := w.hold
	w.hold = nil
	if len(hold) == 0 {
		return nil
	}
	minDTS := hold[0].DTS
	for _, p := range hold {
		minDTS = min(minDTS, p.DTS)
	}
	w.shift = max(0, -minDTS)
	w.ioc.Write(shiftBox(w.shift))
	w.ioc.Flush()
	if err := w.sink.commit(); err != nil {
		w.fail(err)
		return w.err
	}
	w.bytes.Store(w.sink.size)
	slices.SortStableFunc(hold, func(a, b media.Packet) int { return cmp.Compare(a.DTS, b.DTS) })
	var firstErr error
	for _, p := range hold {
		if err := w.write(p); err != nil {
			if w.err != nil {
				return w.err
			}
			firstErr = cmpOr(firstErr, err)
		}
	}
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// write hands packets to the muxer, each video packet once the next one
// has come: its duration is then the distance to it. A fragment's last
// sample is timed by its duration alone (the next fragment's decode time
// follows from it), so a picture followed by a gap (frames skipped under
// live overload, pictures dropped at an x264 preset switch) must carry
// the gap, or every picture after it would be placed too early.
func (w *Writer) write(p media.Packet) error {
	if p.Kind != media.KindVideo {
		return w.mux(p)
	}
	prev, had := w.heldVideo, w.hasHeld
	if had && p.DTS <= prev.DTS {
		return fmt.Errorf("%w: DTS %v does not increase", ErrPacket, p.DTS)
	}
	if t := w.tracks[p.Kind]; w.ticks(p.DTS, t.tb) < 0 {
		return fmt.Errorf("%w: %v stream starts at DTS %v, before the other stream's start", ErrPacket, p.Kind, p.DTS)
	}
	w.heldVideo, w.hasHeld = p, true
	if !had {
		return nil
	}
	if d := p.DTS - prev.DTS; d > 0 {
		prev.Duration = d
	}
	return w.mux(prev)
}

// mux hands one packet to the muxer and commits what it produced.
func (w *Writer) mux(p media.Packet) error {
	t := w.tracks[p.Kind]
	dts := w.ticks(p.DTS, t.tb)
	pts := w.ticks(p.PTS, t.tb)
	if dts < 0 {
		return fmt.Errorf("%w: %v stream starts at DTS %v, before the other stream's start", ErrPacket, p.Kind, p.DTS)
	}
	if t.seen && dts <= t.lastDTS {
		return fmt.Errorf("%w: DTS %v does not increase", ErrPacket, p.DTS)
	}
	w.pkt.Unref()
	if err := w.pkt.FromData(p.Data); err != nil {
		return fmt.Errorf("%w: %w", ErrPacket, err)
	}
	w.pkt.SetStreamIndex(t.st.Index())
	w.pkt.SetDts(dts)
	w.pkt.SetPts(pts)
	if p.Duration > 0 {
		w.pkt.SetDuration(astiav.RescaleQRnd(int64(p.Duration), astiav.NewRational(1, int(time.Second)), t.tb, astiav.RoundingNearInf))
	}
	if p.Key || p.Kind == media.KindAudio { // every AAC frame is a sync sample
		w.pkt.SetFlags(w.pkt.Flags().Add(astiav.PacketFlagKey))
	}
	before := w.sink.size
	err := w.fc.WriteFrame(w.pkt)
	w.pkt.Unref()
	if cerr := w.sink.commit(); cerr != nil {
		w.fail(cerr)
		return w.err
	}
	if w.sink.enc != nil && w.sink.size > before {
		// The muxer flushed fragments ending where this packet starts.
		if serr := w.seal(time.Duration(astiav.RescaleQ(dts, t.tb, astiav.NewRational(1, int(time.Second))))); serr != nil {
			w.fail(serr)
			return w.err
		}
	}
	w.bytes.Store(w.sink.size)
	if err != nil {
		return fmt.Errorf("%w: muxer: %w", ErrPacket, err)
	}
	t.seen, t.lastDTS = true, dts
	t.frames++
	if end := int64(p.PTS + p.Duration); end > w.duration.Load() {
		w.duration.Store(end)
	}
	return nil
}

// seal keeps a crash's loss within EncryptedMaxLoss: after fragments
// covering media up to covered were written, it pads to seal their chunk
// if the next fragment could come too late otherwise.
func (w *Writer) seal(covered time.Duration) error {
	s := w.sink
	w.unsealed = append(w.unsealed, fragEnd{s.size, covered})
	sealed := s.enc.Sealed()
	i := 0
	for ; i < len(w.unsealed) && w.unsealed[i].off <= sealed; i++ {
		w.sealedMedia = w.unsealed[i].media
	}
	w.unsealed = w.unsealed[i:]
	if len(w.unsealed) == 0 || covered+w.opts.FragmentDuration-w.sealedMedia <= EncryptedMaxLoss {
		return nil
	}
	n := atrest.PadToSeal(s.size, 8)
	box := make([]byte, n)
	binary.BigEndian.PutUint32(box, uint32(n))
	copy(box[4:], "free")
	s.pending = append(s.pending, box...)
	if err := s.commit(); err != nil {
		return err
	}
	w.padded += int64(n)
	w.unsealed = w.unsealed[:0]
	w.sealedMedia = covered
	return nil
}

func (w *Writer) ticks(d time.Duration, tb astiav.Rational) int64 {
	return astiav.RescaleQRnd(int64(d+w.shift), astiav.NewRational(1, int(time.Second)), tb, astiav.RoundingNearInf)
}

func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
		w.log.Error().Err(err).Int64("bytes", w.sink.size).Msg("recording stopped; the file so far plays")
	}
}

// Duration is the media time accepted so far: the end of the latest packet.
func (w *Writer) Duration() time.Duration { return time.Duration(w.duration.Load()) }

// Bytes is the size of the file on disk so far.
func (w *Writer) Bytes() int64 { return w.bytes.Load() }

// Close writes the last fragment, then finalises: the fragments are remuxed
// into a regular MP4 with the index in front, written to a temporary file in
// the same directory and renamed over the output. If finalising fails the
// fragmented file stays (it plays) and the error wraps ErrFinalise. An
// earlier I/O error is returned too (errors.Join). Close is idempotent and
// returns the same result every time; after Abort it returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return w.doneErr
	}
	w.done = true
	if !w.started && w.err == nil {
		if err := w.start(); err != nil && w.err == nil {
			w.log.Warn().Err(err).Msg("dropped a held packet")
		}
	}
	if w.hasHeld && w.err == nil {
		w.hasHeld = false
		if err := w.mux(w.heldVideo); err != nil && w.err == nil {
			w.log.Warn().Err(err).Msg("dropped the last video packet")
		}
	}
	if w.err == nil {
		err := w.fc.WriteTrailer()
		if cerr := w.sink.commit(); cerr != nil {
			w.fail(cerr)
		} else if err != nil {
			w.fail(fmt.Errorf("%w: writing last fragment: %w", ErrWrite, err))
		}
		w.bytes.Store(w.sink.size)
	}
	w.free()
	var errs []error
	if w.err == nil && w.sink.enc != nil {
		if err := w.sink.enc.Close(); err != nil {
			w.fail(classify(err))
		}
	}
	if w.err != nil {
		errs = append(errs, w.err)
	}
	if err := w.sink.f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("%w: sync: %w", ErrWrite, err))
	}
	if err := w.sink.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("%w: close: %w", ErrWrite, err))
	}
	if w.sink.enc != nil {
		// Encrypted: the fragmented file is the finished one (see the
		// package doc); remuxing would need a plaintext copy or a second
		// encrypted pass for no gain in playability.
		w.log.Info().Int64("bytes", w.sink.size).Int64("padding", w.padded).
			Dur("duration", w.Duration()).Msg("encrypted recording closed")
		w.doneErr = errors.Join(errs...)
		return w.doneErr
	}
	start := time.Now()
	size, err := finalise(w.path, w.log)
	if err != nil {
		w.log.Error().Err(err).Msg("finalising failed; the fragmented file is kept")
		errs = append(errs, err)
	} else {
		w.bytes.Store(size)
		w.log.Info().Int64("bytes", size).Dur("duration", w.Duration()).
			Dur("took", time.Since(start)).Msg("recording finalised")
	}
	w.doneErr = errors.Join(errs...)
	return w.doneErr
}

// Abort stops without finalising and without flushing the fragment in
// progress, leaving the fragmented file exactly as a crash would. It is
// idempotent; Close after Abort returns nil.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.free()
	_ = w.sink.f.Close()
	w.log.Info().Int64("bytes", w.sink.size).Msg("recording aborted; fragmented file left")
}

// free releases the libav objects; the muxer is not flushed.
func (w *Writer) free() {
	if w.pkt != nil {
		w.pkt.Free()
		w.pkt = nil
	}
	if w.fc != nil {
		w.fc.Free()
		w.fc = nil
	}
	if w.ioc != nil {
		w.ioc.Free()
		w.ioc = nil
	}
	for _, u := range w.unregs {
		u()
	}
	w.unregs = nil
}
