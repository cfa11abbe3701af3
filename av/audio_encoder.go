package av

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// DefaultAudioBitrate is AudioEncoderConfig.Bitrate's default.
const DefaultAudioBitrate = 128_000

// audioTB counts samples at the mix rate.
var audioTB = astiav.NewRational(1, media.SampleRate)

// AudioEncoderConfig configures NewAudioEncoder.
type AudioEncoderConfig struct {
	// Bitrate in bits/s; it defaults to DefaultAudioBitrate.
	Bitrate int
	// Log receives FFmpeg's lines for this encoder (see RouteFFmpegLogs).
	// The zero Logger leaves them to the process logger.
	Log zerolog.Logger
}

// AudioEncoder encodes media.Audio (48 kHz stereo) to AAC-LC with FFmpeg's
// native encoder. Input of any length is buffered into the encoder's
// 1024-sample frames. Timestamps come from the sample count: packet k
// covers samples from first pts + (k·1024 − priming)/48000, so the first
// packet's PTS is Priming() before the first input pts (negative when that
// was 0); a muxer hides it with an edit list. The input is taken to be
// continuous: insert silence for gaps. Not safe for concurrent use.
type AudioEncoder struct {
	cc        *astiav.CodecContext
	frame     *astiav.Frame
	pkt       *astiav.Packet
	bitrate   int
	frameSize int
	config    []byte
	priming   int

	buf     []float32 // interleaved samples not yet encoded
	started bool
	base    int64 // first input pts, in samples
	sent    int64 // samples given to the encoder
	flushed bool
	closed  bool
	unreg   func()
}

// NewAudioEncoder opens an AAC encoder.
func NewAudioEncoder(cfg AudioEncoderConfig) (*AudioEncoder, error) {
	if cfg.Bitrate <= 0 {
		cfg.Bitrate = DefaultAudioBitrate
	}
	codec := astiav.FindEncoderByName("aac")
	if codec == nil {
		return nil, fmt.Errorf("audio encoder: %w: aac not in this FFmpeg build", ErrUnsupported)
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("av: cannot allocate encoder")
	}
	unreg := logOption(cfg.Log).register(cc.UnsafePointer())
	cc.SetSampleRate(media.SampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	cc.SetSampleFormat(astiav.SampleFormatFltp)
	cc.SetBitRate(int64(cfg.Bitrate))
	cc.SetTimeBase(audioTB)
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if err := cc.Open(codec, nil); err != nil {
		cc.Free()
		unreg()
		return nil, fmt.Errorf("audio encoder: %w: %v", ErrUnsupported, err)
	}
	e := &AudioEncoder{
		cc: cc, bitrate: cfg.Bitrate, frameSize: cc.FrameSize(),
		config: cc.ExtraData(), priming: initialPadding(cc),
		pkt: astiav.AllocPacket(), frame: astiav.AllocFrame(), unreg: unreg,
	}
	if e.frameSize <= 0 {
		e.frameSize = 1024
	}
	e.frame.SetNbSamples(e.frameSize)
	e.frame.SetSampleFormat(astiav.SampleFormatFltp)
	e.frame.SetChannelLayout(astiav.ChannelLayoutStereo)
	e.frame.SetSampleRate(media.SampleRate)
	if err := e.frame.AllocBuffer(0); err != nil {
		e.Close()
		return nil, fmt.Errorf("audio encoder: frame: %w", err)
	}
	return e, nil
}

// Config returns the AudioSpecificConfig (ISO 14496-3 1.6.2.1), a copy:
// 11 90 for AAC-LC 48 kHz stereo, followed by FFmpeg's explicit "no SBR"
// sync extension (56 e5 00), which MP4 and FLV carry as is.
func (e *AudioEncoder) Config() []byte { return bytes.Clone(e.config) }

// Bitrate is the configured bit rate in bits/s.
func (e *AudioEncoder) Bitrate() int { return e.bitrate }

// FrameSize is the number of samples per packet (1024 for AAC-LC).
func (e *AudioEncoder) FrameSize() int { return e.frameSize }

// Priming is the encoder delay: the first packet starts this long before the
// first input sample (ISO 14496-12 edit lists or iTunSMPB describe it).
func (e *AudioEncoder) Priming() time.Duration {
	return time.Duration(e.priming) * time.Second / media.SampleRate
}

// PrimingSamples is Priming in samples at 48 kHz.
func (e *AudioEncoder) PrimingSamples() int { return e.priming }

// Encode buffers a, whose first sample plays at pts (only the first call's
// pts is used), and returns the packets completed so far.
func (e *AudioEncoder) Encode(a media.Audio, pts time.Duration) ([]media.Packet, error) {
	if e.closed || e.flushed {
		return nil, errors.New("av: audio encoder closed or flushed")
	}
	if !e.started {
		e.started = true
		e.base = durationToTS(pts, audioTB)
	}
	e.buf = append(e.buf, a...)
	var out []media.Packet
	for len(e.buf) >= e.frameSize*media.Channels {
		pk, err := e.send(e.frameSize)
		out = append(out, pk...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// send encodes the first n buffered samples.
func (e *AudioEncoder) send(n int) ([]media.Packet, error) {
	if err := e.frame.MakeWritable(); err != nil {
		return nil, fmt.Errorf("av: frame: %w", err)
	}
	e.frame.SetNbSamples(n)
	l, r := floatPlane(e.frame, 0, n), floatPlane(e.frame, 1, n)
	for i := 0; i < n; i++ {
		l[i], r[i] = e.buf[2*i], e.buf[2*i+1]
	}
	e.buf = e.buf[:copy(e.buf, e.buf[n*media.Channels:])]
	e.frame.SetPts(e.base + e.sent)
	e.sent += int64(n)
	if err := e.cc.SendFrame(e.frame); err != nil {
		return nil, fmt.Errorf("av: aac: %w", err)
	}
	return e.drain()
}

// Flush encodes what is buffered (the last packet may be short) and drains
// the encoder; Encode may not be called afterwards.
func (e *AudioEncoder) Flush() ([]media.Packet, error) {
	if e.closed || e.flushed {
		return nil, nil
	}
	var out []media.Packet
	if n := len(e.buf) / media.Channels; n > 0 {
		pk, err := e.send(n)
		out = append(out, pk...)
		if err != nil {
			return out, err
		}
	}
	e.flushed = true
	if err := e.cc.SendFrame(nil); err != nil {
		return out, fmt.Errorf("av: aac flush: %w", err)
	}
	pk, err := e.drain()
	return append(out, pk...), err
}

func (e *AudioEncoder) drain() ([]media.Packet, error) {
	var out []media.Packet
	for {
		if err := e.cc.ReceivePacket(e.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return out, nil
			}
			return out, fmt.Errorf("av: aac: %w", err)
		}
		p := media.Packet{
			Kind:     media.KindAudio,
			Data:     e.pkt.Data(),
			PTS:      tsToDuration(e.pkt.Pts(), audioTB),
			DTS:      tsToDuration(e.pkt.Dts(), audioTB),
			Duration: tsToDuration(e.pkt.Duration(), audioTB),
			Key:      true,
		}
		e.pkt.Unref()
		out = append(out, p)
	}
}

// Close frees the encoder without flushing; it is idempotent.
func (e *AudioEncoder) Close() error {
	if e.closed {
		return nil
	}
	e.closed = true
	e.cc.Free()
	e.unreg()
	e.frame.Free()
	e.pkt.Free()
	return nil
}
