package av

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/bitstream"
	"github.com/roomcast/roomcast/media"
)

// Video encoder presets.
const (
	// PresetRecord favours quality for files: constant quality (CRF), capped
	// by Bitrate when set, B-frames allowed.
	PresetRecord = "record"
	// PresetStream favours steady bandwidth for RTMP: Bitrate is both target
	// and cap with a 2 s buffer, and there are no B-frames (PTS == DTS).
	PresetStream = "stream"
)

// Defaults of VideoEncoderConfig.
const (
	DefaultFPS              = 30
	DefaultX264Preset       = "veryfast"
	DefaultKeyframeInterval = 2 * time.Second
	DefaultCRF              = 21
	DefaultStreamBitrate    = 2_500_000
)

// mpegTB is the encoder time base: the 90 kHz clock of MPEG and RTP keeps
// caller timestamps exact to 11 µs without assuming a constant frame rate.
var mpegTB = astiav.NewRational(1, 90000)

// VideoEncoderConfig configures NewVideoEncoder.
type VideoEncoderConfig struct {
	// Width and Height of the pictures; both must be even.
	Width, Height int
	// FPS is the nominal frame rate, used for rate control and keyframe
	// spacing. It defaults to DefaultFPS.
	FPS int
	// Preset is PresetRecord (the default) or PresetStream.
	Preset string
	// Bitrate in bits/s. For PresetRecord it is an optional cap (VBV
	// maxrate, 2 s buffer) on constant quality; for PresetStream the target
	// and cap, defaulting to DefaultStreamBitrate.
	Bitrate int
	// CRF is the constant-quality factor of PresetRecord; it defaults to
	// DefaultCRF.
	CRF int
	// X264Preset is x264's speed preset; it defaults to DefaultX264Preset.
	X264Preset string
	// KeyframeInterval is the exact spacing of IDR frames (scene-cut
	// detection is off so keyframes are regular, as HLS/RTMP ingest and
	// fragmented MP4 want). It defaults to DefaultKeyframeInterval.
	KeyframeInterval time.Duration
	// Profile is the H.264 profile; it defaults to "high" for PresetRecord
	// and "main" for PresetStream.
	Profile string
	// Threads is x264's thread count; 0 lets x264 choose.
	Threads int
	// Log receives libx264's and FFmpeg's lines for this encoder (see
	// RouteFFmpegLogs). The zero Logger leaves them to the process logger.
	Log zerolog.Logger
}

func (c *VideoEncoderConfig) defaults() error {
	if c.Width <= 0 || c.Height <= 0 || c.Width%2 != 0 || c.Height%2 != 0 {
		return fmt.Errorf("video encoder: size %dx%d: %w: width and height must be even and positive", c.Width, c.Height, ErrUnsupported)
	}
	if c.FPS <= 0 {
		c.FPS = DefaultFPS
	}
	if c.Preset == "" {
		c.Preset = PresetRecord
	}
	if c.Preset != PresetRecord && c.Preset != PresetStream {
		return fmt.Errorf("video encoder: preset %q: %w (want %q or %q)", c.Preset, ErrUnsupported, PresetRecord, PresetStream)
	}
	if c.Preset == PresetStream && c.Bitrate <= 0 {
		c.Bitrate = DefaultStreamBitrate
	}
	if c.CRF <= 0 {
		c.CRF = DefaultCRF
	}
	if c.X264Preset == "" {
		c.X264Preset = DefaultX264Preset
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = DefaultKeyframeInterval
	}
	if c.Profile == "" {
		c.Profile = "high"
		if c.Preset == PresetStream {
			c.Profile = "main"
		}
	}
	return nil
}

// GOP is the keyframe spacing in frames.
func (c VideoEncoderConfig) GOP() int {
	return max(1, int((c.KeyframeInterval*time.Duration(c.FPS)+time.Second/2)/time.Second))
}

// VideoEncoder encodes yuv420p pictures to H.264 with libx264. Encode, Flush
// and Close must be called from one goroutine; ForceKeyframe from any.
type VideoEncoder struct {
	cfg      VideoEncoderConfig
	cc       *astiav.CodecContext
	frame    *astiav.Frame
	pkt      *astiav.Packet
	config   []byte
	profile  int
	level    int
	forceKey atomic.Bool
	unreg    func()
	flushed  bool
	closed   bool
	lastPTS  int64
	started  bool

	// Preset switching (SwitchX264Preset): the preset in use, the one to
	// switch to at the next keyframe, when the last keyframe was sent in,
	// and whether the next keyframe out must carry the new SPS/PPS.
	preset  atomic.Pointer[string]
	pending string
	keyed   bool          // a keyframe was sent in
	lastKey time.Duration // at this pts
	inject  bool
	// Pictures inside the encoder (sent, no packet out yet), and those
	// dropped at switches.
	inFlight int64
	dropped  atomic.Int64
	switches atomic.Int64
}

// x264Presets are libx264's speed presets, fastest first.
var x264Presets = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"}

// FasterX264Preset returns the x264 preset one step faster than p, and
// false when p is the fastest or not an x264 preset.
func FasterX264Preset(p string) (string, bool) {
	for i, q := range x264Presets {
		if q == p && i > 0 {
			return x264Presets[i-1], true
		}
	}
	return "", false
}

// NewVideoEncoder opens a libx264 encoder. Bad settings wrap ErrUnsupported.
func NewVideoEncoder(cfg VideoEncoderConfig) (*VideoEncoder, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	e := &VideoEncoder{cfg: cfg}
	cc, unreg, err := openX264(cfg)
	if err != nil {
		return nil, err
	}
	e.cc, e.unreg = cc, unreg
	e.setConfig(cc.ExtraData())
	e.preset.Store(&cfg.X264Preset)
	e.frame = astiav.AllocFrame()
	e.frame.SetWidth(cfg.Width)
	e.frame.SetHeight(cfg.Height)
	e.frame.SetPixelFormat(astiav.PixelFormatYuv420P)
	e.frame.SetColorRange(astiav.ColorRangeMpeg)
	if err := e.frame.AllocBuffer(0); err != nil {
		e.Close()
		return nil, fmt.Errorf("video encoder: frame: %w", err)
	}
	e.pkt = astiav.AllocPacket()
	return e, nil
}

func (e *VideoEncoder) setConfig(extra []byte) {
	e.config = bytes.Clone(extra)
	e.profile, e.level = spsProfileLevel(e.config)
}

// openX264 opens a libx264 context for cfg (defaults applied). The returned
// func unregisters its log route; call it after freeing the context.
func openX264(cfg VideoEncoderConfig) (*astiav.CodecContext, func(), error) {
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, nil, fmt.Errorf("video encoder: %w: libx264 not in this FFmpeg build", ErrUnsupported)
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, nil, errors.New("av: cannot allocate encoder")
	}
	unreg := logOption(cfg.Log).register(cc.UnsafePointer())
	cc.SetWidth(cfg.Width)
	cc.SetHeight(cfg.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetTimeBase(mpegTB)
	cc.SetFramerate(astiav.NewRational(cfg.FPS, 1))
	cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	cc.SetColorRange(astiav.ColorRangeMpeg)
	cc.SetThreadCount(cfg.Threads)
	// SPS and PPS go to extradata (Config) rather than into every keyframe:
	// MP4 (avcC) and RTMP (AVC sequence header) both carry them out of band.
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	gop := cfg.GOP()
	cc.SetGopSize(gop)

	opts := astiav.NewDictionary()
	defer opts.Free()
	set := func(k, v string) { _ = opts.Set(k, v, 0) }
	set("preset", cfg.X264Preset)
	set("profile", cfg.Profile)
	set("keyint_min", strconv.Itoa(gop))
	set("sc_threshold", "0")
	set("forced-idr", "1")
	switch cfg.Preset {
	case PresetRecord:
		set("crf", strconv.Itoa(cfg.CRF))
		if cfg.Bitrate > 0 {
			cc.SetRateControlMaxRate(int64(cfg.Bitrate))
			cc.SetRateControlBufferSize(2 * cfg.Bitrate)
		}
	case PresetStream:
		cc.SetBitRate(int64(cfg.Bitrate))
		cc.SetRateControlMaxRate(int64(cfg.Bitrate))
		cc.SetRateControlBufferSize(2 * cfg.Bitrate)
		cc.SetMaxBFrames(0)
		// Slice threads instead of frame threads: no frames of encoder
		// delay per thread (a live stream's latency) and about 20 MB less
		// memory at 720p, for ~1-2% of compression.
		set("x264-params", "sliced-threads=1")
		// A sixth of a second of rate-control lookahead (5 frames at 30
		// fps) instead of veryfast's 10: about 15 MB less at 720p and less
		// latency; CBR needs little foresight.
		set("rc-lookahead", strconv.Itoa(max(cfg.FPS/6, 3)))
	}
	if err := cc.Open(codec, opts); err != nil {
		cc.Free()
		unreg()
		return nil, nil, fmt.Errorf("video encoder: %w: %v (preset %q, profile %q)", ErrUnsupported, err, cfg.X264Preset, cfg.Profile)
	}
	if left := leftover(opts); len(left) > 0 {
		cc.Free()
		unreg()
		return nil, nil, fmt.Errorf("video encoder: %w: options not recognised: %v", ErrUnsupported, left)
	}
	return cc, unreg, nil
}

// spsProfileLevel reads profile_idc and level_idc from the first SPS of an
// Annex B stream (ITU-T H.264 7.3.2.1.1: they are bytes 1 and 3 after the
// NAL header).
func spsProfileLevel(annexB []byte) (profile, level int) {
	for _, nal := range bitstream.SplitAnnexB(annexB) {
		if len(nal) >= 4 && bitstream.H264Type(nal) == bitstream.H264SPS {
			return int(nal[1]), int(nal[3])
		}
	}
	return 0, 0
}

// Config returns the SPS and PPS as an Annex B byte stream (a copy).
func (e *VideoEncoder) Config() []byte { return bytes.Clone(e.config) }

// Profile is the H.264 profile_idc of the stream (66, 77, 100, ...).
func (e *VideoEncoder) Profile() int { return e.profile }

// Level is the H.264 level_idc of the stream (31 for level 3.1, ...).
func (e *VideoEncoder) Level() int { return e.level }

// Settings returns the configuration with defaults applied.
func (e *VideoEncoder) Settings() VideoEncoderConfig { return e.cfg }

// X264Preset is the x264 preset encoding now (it changes at the keyframe
// after SwitchX264Preset). Safe from any goroutine.
func (e *VideoEncoder) X264Preset() string { return *e.preset.Load() }

// Switches counts the preset switches done so far. Safe from any goroutine.
func (e *VideoEncoder) Switches() int64 { return e.switches.Load() }

// Dropped counts the pictures dropped at preset switches (see
// SwitchX264Preset). Safe from any goroutine.
func (e *VideoEncoder) Dropped() int64 { return e.dropped.Load() }

// SwitchX264Preset makes the encoder continue with x264 preset p from the
// next keyframe on (the next IDR of the regular spacing, or a forced one),
// so the stream stays decodable: the encoder in use is finished there and
// a new one opened with the same size, rate control, profile and keyframe
// spacing. Finishing drains it with B-frames (PresetRecord: every picture
// is kept) and drops the pictures of its lookahead without (PresetStream:
// a few pictures, counted in Dropped, rather than a stall of their
// encoding time at the slow preset: the stream stays live). Its SPS and PPS (which differ: reference frames, level) travel
// in band, in front of that keyframe: RTMP sends them as a new AVC
// sequence header, MP4 and HLS samples carry them, and decoders take
// them from there (Config and Level then describe the new stream). It is
// called from the goroutine that calls Encode.
//
// With B-frames (PresetRecord) only a faster preset is accepted: x264's
// decode times start a B-frame delay before the first picture, and a
// slower preset's delay is not shorter (ultrafast has none), so its decode
// times could run back before the previous encoder's last ones.
func (e *VideoEncoder) SwitchX264Preset(p string) error {
	cur := slices.Index(x264Presets, e.X264Preset())
	to := slices.Index(x264Presets, p)
	switch {
	case to < 0:
		return fmt.Errorf("video encoder: x264 preset %q: %w", p, ErrUnsupported)
	case to == cur:
		e.pending = ""
		return nil
	case e.cfg.Preset == PresetRecord && (cur < 0 || to > cur):
		return fmt.Errorf("video encoder: %w: from x264 preset %q to the slower %q with B-frames", ErrUnsupported, e.X264Preset(), p)
	}
	e.pending = p
	return nil
}

// switchNow opens an encoder with the pending preset and continues with
// it. The current one still holds the pictures of its lookahead (5 at 30
// fps in the stream preset): with B-frames (the record preset, which keeps
// every frame) it is drained and its packets are returned, which costs
// those pictures' encoding time at the slow preset, at an overloaded
// moment; without (the stream preset, which skips frames to stay live) it
// is dropped at once and those pictures are skipped (counted in Dropped).
// When the new encoder cannot be opened the current one stays.
func (e *VideoEncoder) switchNow() ([]media.Packet, error) {
	cfg := e.cfg
	cfg.X264Preset, e.pending = e.pending, ""
	var out []media.Packet
	if e.cfg.Preset == PresetStream {
		e.dropped.Add(e.inFlight)
	} else if err := e.cc.SendFrame(nil); err == nil {
		pkts, err := e.drain()
		out = pkts
		if err != nil {
			return out, err
		}
	}
	// The old encoder goes before the new one is opened: two 1080p x264
	// encoders at once would be a peak of a hundred MB or more.
	e.inFlight = 0
	e.cc.Free()
	e.unreg()
	e.cc = nil
	cc, unreg, err := openX264(cfg)
	if err != nil {
		// Continue with the old settings, from a keyframe (the old
		// encoder is gone).
		var rerr error
		cc, unreg, rerr = openX264(e.cfg)
		if rerr != nil {
			return out, fmt.Errorf("%w: reopening x264 after a failed preset switch (%v): %w", errNoEncoder, err, rerr)
		}
		e.cc, e.unreg = cc, unreg
		e.setConfig(cc.ExtraData())
		e.inject = true
		return out, fmt.Errorf("x264 preset %q: %w", cfg.X264Preset, err)
	}
	e.cc, e.unreg, e.cfg = cc, unreg, cfg
	e.setConfig(cc.ExtraData())
	e.inject = true
	e.preset.Store(&cfg.X264Preset)
	e.switches.Add(1)
	return out, nil
}

// errNoEncoder: a failed preset switch left no encoder; Encode fails.
var errNoEncoder = errors.New("av: no video encoder")

// ForceKeyframe makes the next picture passed to Encode an IDR frame. It
// is safe to call from any goroutine.
func (e *VideoEncoder) ForceKeyframe() { e.forceKey.Store(true) }

// Encode encodes img (which must have the configured size) shown at pts;
// pts must increase. It returns the packets the encoder completed, which
// lag the input by x264's lookahead; their DTS may be negative when
// B-frames are on, and DTS ≤ PTS always.
func (e *VideoEncoder) Encode(img *media.Image, pts time.Duration) ([]media.Packet, error) {
	if e.closed || e.flushed || e.cc == nil {
		return nil, errors.New("av: video encoder closed or flushed")
	}
	if img.Width != e.cfg.Width || img.Height != e.cfg.Height {
		return nil, fmt.Errorf("av: encode %dx%d picture with a %dx%d encoder", img.Width, img.Height, e.cfg.Width, e.cfg.Height)
	}
	ts := durationToTS(pts, mpegTB)
	if e.started && ts <= e.lastPTS {
		return nil, fmt.Errorf("av: video pts %v does not increase", pts)
	}
	e.started, e.lastPTS = true, ts
	// Keyframes are spaced by time, not by frames sent: a live compositor
	// that skips frames under overload sends fewer than FPS a second, and
	// x264's count alone would space them further apart than an ingest
	// accepts. (Without skips both agree; x264 counts from the last IDR,
	// forced ones too.)
	forced := e.forceKey.Swap(false)
	key := forced || !e.keyed || pts-e.lastKey >= e.cfg.KeyframeInterval-time.Second/time.Duration(2*e.cfg.FPS)
	var out []media.Packet
	if key && e.pending != "" {
		from := e.X264Preset()
		pkts, err := e.switchNow()
		out = pkts
		if errors.Is(err, errNoEncoder) {
			return out, err
		}
		if err != nil {
			e.cfg.Log.Warn().Err(err).Str("from", from).Msg("x264 preset switch failed; the encoder keeps its preset")
		}
	}
	pkts, err := e.send(img, pts, key)
	return append(out, pkts...), err
}

// send encodes one picture, as an IDR when key.
func (e *VideoEncoder) send(img *media.Image, pts time.Duration, key bool) ([]media.Packet, error) {
	// The encoder may still reference the previous buffer.
	if err := e.frame.MakeWritable(); err != nil {
		return nil, fmt.Errorf("av: frame: %w", err)
	}
	imageToFrame(e.frame, img)
	e.frame.SetPts(durationToTS(pts, mpegTB))
	if key {
		e.keyed, e.lastKey = true, pts
		e.frame.SetPictureType(astiav.PictureTypeI)
	} else {
		e.frame.SetPictureType(astiav.PictureTypeNone)
	}
	if err := e.cc.SendFrame(e.frame); err != nil {
		return nil, fmt.Errorf("av: x264: %w", err)
	}
	e.inFlight++
	return e.drain()
}

// Flush drains the frames still inside the encoder; Encode may not be
// called afterwards.
func (e *VideoEncoder) Flush() ([]media.Packet, error) {
	if e.closed || e.flushed || e.cc == nil {
		return nil, nil
	}
	e.flushed = true
	if err := e.cc.SendFrame(nil); err != nil {
		return nil, fmt.Errorf("av: x264 flush: %w", err)
	}
	return e.drain()
}

func (e *VideoEncoder) drain() ([]media.Packet, error) {
	var out []media.Packet
	frameDur := time.Second / time.Duration(e.cfg.FPS)
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return out, nil
			}
			return out, fmt.Errorf("av: x264: %w", err)
		}
		p := media.Packet{
			Kind:     media.KindVideo,
			Data:     e.pkt.Data(),
			PTS:      tsToDuration(e.pkt.Pts(), mpegTB),
			DTS:      tsToDuration(e.pkt.Dts(), mpegTB),
			Duration: frameDur,
			Key:      e.pkt.Flags().Has(astiav.PacketFlagKey),
		}
		e.inFlight--
		if e.inject && p.Key {
			// The first keyframe after a preset switch brings its SPS/PPS.
			p.Data = append(bytes.Clone(e.config), p.Data...)
			e.inject = false
		}
		if d := e.pkt.Duration(); d > 0 {
			p.Duration = tsToDuration(d, mpegTB)
		}
		e.pkt.Unref()
		out = append(out, p)
	}
}

// Close frees the encoder without flushing; it is idempotent.
func (e *VideoEncoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	if e.cc != nil {
		e.cc.Free()
		e.unreg()
	}
	if e.frame != nil {
		e.frame.Free()
	}
	if e.pkt != nil {
		e.pkt.Free()
	}
	return nil
}
