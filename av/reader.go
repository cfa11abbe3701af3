package av

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// FileInfo describes what a FileReader will produce.
type FileInfo struct {
	HasVideo, HasAudio bool
	// Width and Height are the first picture's size rounded up to even (0
	// when unknown). Pictures may change size mid-file; each Item carries its own.
	Width, Height int
	// Duration is the container's duration, 0 when it does not say (live
	// WebM recordings often lack it).
	Duration time.Duration
	// FrameRate is the video's constant frame rate in frames per second
	// (numerator, denominator), or 0/0 when the container says the rate
	// varies or does not say (WebRTC recordings usually).
	FrameRateNum, FrameRateDen int
	// VideoCodec and AudioCodec are FFmpeg codec names ("vp8", "opus"); empty
	// when the stream is absent.
	VideoCodec, AudioCodec string
}

// Item is one decoded unit of a file: exactly one of Video and Audio is set.
type Item struct {
	Video *media.Image
	Audio media.Audio
	// PTS is measured from the file's first presented instant: the
	// earlier of the first picture and the first audible sample, as a
	// player shows the file (edit lists and decoder priming such as Opus
	// pre-skip honoured), so an offset between the file's audio and video
	// is kept and the first item is at 0. The container's start_time is
	// not used: it counts the priming (a WebM with Opus starts 6.5 ms
	// before its first sample), which would move the sound late.
	PTS time.Duration
}

// FileReader decodes a recorded file (WebM, Matroska, MP4, ...): its first
// decodable video stream and first decodable audio stream, in file order.
// Not safe for concurrent use.
type FileReader struct {
	path string
	log  zerolog.Logger
	fo   FileOptions

	fc    *astiav.FormatContext
	pkt   *astiav.Packet
	frame *astiav.Frame
	video *fileStream
	audio *fileStream
	// origin is the file time that becomes PTS 0 (see Item.PTS). Items
	// wait in queue until it is known: every stream has produced its first
	// item, or the queue spans originWait, or the file ended.
	origin      time.Duration
	originFixed bool
	first       [2]time.Duration // first item time of video, audio
	seen        [2]bool
	start       time.Duration // container start time, the fallback origin
	info        FileInfo

	queue     []Item
	eof, done bool
	corrupt   int
	loggedBad bool
	closed    bool
	opened    bool // OpenInput succeeded, CloseInput is due
	readErrs  int  // consecutive read errors
	opt       options
	unregs    []func()
}

// maxReadErrors consecutive demuxer errors end a file.
const maxReadErrors = 64

// fileStream is one decoded stream of a file.
type fileStream struct {
	index int
	tb    astiav.Rational
	cc    *astiav.CodecContext
	// video
	conv    *swsCtx
	convKey swsKey
	lastPTS time.Duration
	// audio
	rs      resampler
	nextPTS time.Duration // expected start of the next audio output
	haveNxt bool
}

// FileOptions tune how a file is decoded; the zero value is the default.
type FileOptions struct {
	// DecoderThreads is the video decoder's thread count. It defaults to
	// the number of CPUs, at most 4. A job decoding several files at once
	// (compose) gives each its share of the CPUs: the decoders already run
	// in parallel with each other and with the encoder, and frame threads
	// beyond that share only add hand-offs between threads and a frame
	// buffer per thread.
	DecoderThreads int
}

// OpenFile opens the media file at path with the default FileOptions.
// Errors wrap ErrNotFound, ErrCorrupt or ErrUnsupported and name the path.
func OpenFile(path string, log zerolog.Logger) (*FileReader, error) {
	return OpenFileWith(path, FileOptions{}, log)
}

// OpenFileWith is OpenFile with options.
func OpenFileWith(path string, o FileOptions, log zerolog.Logger) (*FileReader, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r := &FileReader{
		path: path,
		log:  log.With().Str("component", "av").Str("file", path).Logger(),
		opt:  logOption(log),
		fo:   o,
	}
	if err := r.open(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *FileReader) fail(sentinel error, reason string, err error) error {
	return fmt.Errorf("%s: %w", r.path, avErr(sentinel, reason, err))
}

func (r *FileReader) open() error {
	r.fc = astiav.AllocFormatContext()
	if r.fc == nil {
		return errors.New("av: cannot allocate format context")
	}
	r.unregs = append(r.unregs, r.opt.registerClasser(r.fc))
	if err := r.fc.OpenInput(r.path, nil, nil); err != nil {
		if errors.Is(err, astiav.ErrEperm) || errors.Is(err, astiav.Error(-13)) { // EACCES
			return fmt.Errorf("%s: cannot open: %w", r.path, err)
		}
		return r.fail(ErrCorrupt, "not a media file", err)
	}
	r.opened = true
	if err := r.fc.FindStreamInfo(nil); err != nil {
		return r.fail(ErrCorrupt, "cannot read stream info", err)
	}
	r.pkt = astiav.AllocPacket()
	r.frame = astiav.AllocFrame()

	var skipped []string
	for _, s := range r.fc.Streams() {
		cp := s.CodecParameters()
		mt := cp.MediaType()
		if mt != astiav.MediaTypeVideo && mt != astiav.MediaTypeAudio {
			continue
		}
		if mt == astiav.MediaTypeVideo && (r.video != nil || s.DispositionFlags().Has(astiav.DispositionFlagAttachedPic)) {
			continue
		}
		if mt == astiav.MediaTypeAudio && r.audio != nil {
			continue
		}
		fst, err := r.openStream(s)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s %s (%v)", mt, cp.CodecID(), err))
			continue
		}
		if mt == astiav.MediaTypeVideo {
			r.video = fst
			r.info.HasVideo, r.info.VideoCodec = true, cp.CodecID().Name()
			r.info.Width, r.info.Height = (cp.Width()+1)&^1, (cp.Height()+1)&^1
			// A constant rate is one the demuxer's guess (r_frame_rate)
			// and the average agree on.
			if rr, ar := s.RFrameRate(), s.AvgFrameRate(); rr.Num() > 0 && rr.Den() > 0 &&
				int64(rr.Num())*int64(ar.Den()) == int64(ar.Num())*int64(rr.Den()) {
				r.info.FrameRateNum, r.info.FrameRateDen = rr.Num(), rr.Den()
			}
		} else {
			r.audio = fst
			r.info.HasAudio, r.info.AudioCodec = true, cp.CodecID().Name()
		}
	}
	for _, s := range r.fc.Streams() {
		if s.Index() != idx(r.video) && s.Index() != idx(r.audio) {
			s.SetDiscard(astiav.DiscardAll)
		}
	}
	if r.video == nil && r.audio == nil {
		if len(skipped) == 0 {
			if r.fc.NbStreams() == 0 {
				return r.fail(ErrCorrupt, "no streams", nil)
			}
			return r.fail(ErrUnsupported, "no audio or video stream", nil)
		}
		return r.fail(ErrUnsupported, fmt.Sprintf("no decodable stream: %v", skipped), nil)
	}
	if len(skipped) > 0 {
		r.log.Info().Strs("skipped", skipped).Msg("ignoring streams we cannot decode")
	}

	if st := r.fc.StartTime(); st != astiav.NoPtsValue {
		r.start = tsToDuration(st, astiav.TimeBaseQ)
	}
	if d := r.fc.Duration(); d != astiav.NoPtsValue && d > 0 {
		r.info.Duration = tsToDuration(d, astiav.TimeBaseQ)
	}
	r.log.Debug().Interface("info", r.info).Dur("start", r.start).Msg("opened")
	return nil
}

func idx(s *fileStream) int {
	if s == nil {
		return -1
	}
	return s.index
}

func (r *FileReader) openStream(s *astiav.Stream) (*fileStream, error) {
	cp := s.CodecParameters()
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return nil, errors.New("no decoder")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("cannot allocate decoder")
	}
	r.unregs = append(r.unregs, r.opt.register(cc.UnsafePointer()))
	if err := cp.ToCodecContext(cc); err != nil {
		cc.Free()
		return nil, err
	}
	cc.SetTimeBase(s.TimeBase())
	setPktTimebase(cc, s.TimeBase())
	if cp.MediaType() == astiav.MediaTypeVideo {
		n := r.fo.DecoderThreads
		if n <= 0 {
			n = min(runtime.NumCPU(), 4)
		}
		cc.SetThreadCount(n)
	}
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		return nil, err
	}
	return &fileStream{index: s.Index(), tb: s.TimeBase(), cc: cc, rs: resampler{opt: r.opt}}, nil
}

// Info describes the file.
func (r *FileReader) Info() FileInfo { return r.info }

// Corrupt counts the damage seen so far: packets the demuxer or a decoder
// rejected (skipped) and pictures the decoder had to conceal (kept).
func (r *FileReader) Corrupt() int { return r.corrupt }

// Next returns the next decoded picture or sound, in file order, and io.EOF
// after the last one (decoders are flushed first). Damaged packets are
// skipped and counted (Corrupt); a read error ends the file early, as a
// truncated recording should.
func (r *FileReader) Next() (Item, error) {
	if r.closed {
		return Item{}, errors.New("av: reader closed")
	}
	for len(r.queue) == 0 || !r.fixOrigin() {
		if r.done {
			if len(r.queue) > 0 {
				continue // fixOrigin succeeds once done
			}
			return Item{}, io.EOF
		}
		if r.eof {
			r.flush()
			r.done = true
			continue
		}
		if err := r.fc.ReadFrame(r.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) {
				continue
			}
			if errors.Is(err, astiav.ErrEof) {
				r.eof = true
				continue
			}
			// Demuxers resynchronise after damage, so keep reading, but
			// give up on a file that yields nothing but errors.
			r.readErrs++
			r.bad(err)
			if r.readErrs >= maxReadErrors {
				r.log.Warn().Err(err).Int("errors", r.readErrs).Msg("too many read errors; treating as end of file")
				r.eof = true
			}
			continue
		}
		r.readErrs = 0
		var s *fileStream
		switch r.pkt.StreamIndex() {
		case idx(r.video):
			s = r.video
		case idx(r.audio):
			s = r.audio
		}
		if s != nil {
			if err := s.cc.SendPacket(r.pkt); err != nil && !errors.Is(err, astiav.ErrEagain) {
				r.bad(err)
			} else {
				r.receive(s)
			}
		}
		r.pkt.Unref()
	}
	it := r.queue[0]
	r.queue[0] = Item{}
	r.queue = r.queue[1:]
	it.PTS -= r.origin
	return it, nil
}

// originWait bounds how much decoded media waits for the other stream's
// first item before the origin is fixed without it.
const originWait = time.Second

// fixOrigin reports whether the origin is known, fixing it when it can be.
func (r *FileReader) fixOrigin() bool {
	if r.originFixed {
		return true
	}
	all := (r.video == nil || r.seen[0]) && (r.audio == nil || r.seen[1])
	span := len(r.queue) > 0 && r.queue[len(r.queue)-1].PTS-r.queue[0].PTS >= originWait
	if !all && !span && !r.done {
		return false
	}
	r.originFixed = true
	r.origin = r.start
	switch {
	case r.seen[0] && r.seen[1]:
		r.origin = min(r.first[0], r.first[1])
	case r.seen[0]:
		r.origin = r.first[0]
	case r.seen[1]:
		r.origin = r.first[1]
	}
	r.log.Debug().Dur("origin", r.origin).Dur("container_start", r.start).Msg("timeline origin")
	return true
}

// note records the time of a stream's first item.
func (r *FileReader) note(k int, pts time.Duration) {
	if !r.seen[k] {
		r.seen[k], r.first[k] = true, pts
	}
}

// bad counts a damaged packet, logging only the first.
func (r *FileReader) bad(err error) {
	r.corrupt++
	if !r.loggedBad {
		r.loggedBad = true
		r.log.Warn().Err(err).Msg("skipping damaged data (logged once; see Corrupt())")
	}
}

// receive drains the decoder of s into the queue.
func (r *FileReader) receive(s *fileStream) {
	for {
		err := s.cc.ReceiveFrame(r.frame)
		if err != nil {
			if !errors.Is(err, astiav.ErrEagain) && !errors.Is(err, astiav.ErrEof) {
				r.bad(err)
				continue
			}
			return
		}
		r.emit(s)
		r.frame.Unref()
	}
}

func (r *FileReader) emit(s *fileStream) {
	ts := frameBestEffortTS(r.frame)
	if s == r.video {
		pts := s.lastPTS
		if ts != astiav.NoPtsValue {
			pts = tsToDuration(ts, s.tb)
		}
		if frameCorrupt(r.frame) {
			// Concealed damage: the picture is still worth showing.
			r.bad(errors.New("decoder concealed damage"))
		}
		img, err := frameToImage(r.frame, &s.conv, &s.convKey, r.opt)
		if err != nil {
			r.bad(err)
			return
		}
		s.lastPTS = pts
		r.note(0, pts)
		r.queue = append(r.queue, Item{Video: img, PTS: pts})
		return
	}
	// For audio the frame's own pts is better than the best-effort guess:
	// it is moved past the priming samples the decoder dropped (Opus
	// pre-skip, AAC edit lists), where the first sample really plays.
	if pts := r.frame.Pts(); pts != astiav.NoPtsValue {
		ts = pts
	}
	a, delay, err := s.rs.convert(r.frame)
	if err != nil {
		r.bad(err)
		return
	}
	r.pushAudio(s, a, ts, delay)
}

// pushAudio queues resampled audio. Its time is the input frame's time minus
// what the resampler still held; without a timestamp it follows on from the
// previous output.
func (r *FileReader) pushAudio(s *fileStream, a media.Audio, ts int64, delay time.Duration) {
	pts := s.nextPTS
	if ts != astiav.NoPtsValue {
		pts = tsToDuration(ts, s.tb) - delay
	}
	if len(a) == 0 {
		return
	}
	// Keep successive chunks contiguous when the computed time is within a
	// millisecond of where the last one ended (rounding noise).
	if s.haveNxt && absDur(pts-s.nextPTS) < time.Millisecond {
		pts = s.nextPTS
	}
	s.nextPTS = pts + time.Duration(a.Frames())*time.Second/media.SampleRate
	s.haveNxt = true
	r.note(1, pts)
	r.queue = append(r.queue, Item{Audio: a, PTS: pts})
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// flush drains both decoders and the resampler at end of file.
func (r *FileReader) flush() {
	for _, s := range []*fileStream{r.video, r.audio} {
		if s == nil {
			continue
		}
		if err := s.cc.SendPacket(nil); err == nil {
			r.receive(s)
		}
	}
	if r.audio != nil {
		if a, _, err := r.audio.rs.convert(nil); err == nil && len(a) > 0 {
			r.pushAudio(r.audio, a, astiav.NoPtsValue, 0)
		}
	}
}

// Close frees everything; it is idempotent.
func (r *FileReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	for _, s := range []*fileStream{r.video, r.audio} {
		if s == nil {
			continue
		}
		s.cc.Free()
		s.conv.free()
		s.rs.free()
	}
	if r.frame != nil {
		r.frame.Free()
	}
	if r.pkt != nil {
		r.pkt.Free()
	}
	if r.fc != nil {
		if r.opened {
			r.fc.CloseInput()
		}
		r.fc.Free()
	}
	for _, u := range r.unregs {
		u()
	}
	r.queue = nil
	return nil
}
