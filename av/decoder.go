package av

import (
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/media"
)

// usTB is the time base of packets handed to the live decoders: timestamps
// go in and come out as microseconds.
var usTB = astiav.NewRational(1, 1_000_000)

// VideoFrame is one decoded picture from a VideoDecoder.
type VideoFrame struct {
	Image *media.Image
	// PTS is the pts passed to Decode with the packet that produced it.
	PTS time.Duration
}

// VideoDecoder decodes one live WebRTC video track, one access unit (H.264,
// Annex B) or frame (VP8, VP9, AV1) at a time. It is tuned for latency:
// no frame threading, at most two slice threads, low-delay flags, so each
// packet's picture comes out of the Decode call that received it. Not safe
// for concurrent use.
type VideoDecoder struct {
	codec   string
	cc      *astiav.CodecContext
	pkt     cpacket
	frame   *astiav.Frame
	conv    *swsCtx
	convKey swsKey
	closed  bool
}

// videoDecoders maps the WebRTC codec names we accept to FFmpeg decoders.
// AV1 has only libdav1d in our build.
var videoDecoders = map[string]string{"h264": "h264", "vp8": "vp8", "vp9": "vp9", "av1": "libdav1d"}

// NewVideoDecoder returns a decoder for codec: "h264", "vp8", "vp9" or "av1".
// Unknown names wrap ErrUnsupported.
func NewVideoDecoder(codec string) (*VideoDecoder, error) {
	name, ok := videoDecoders[codec]
	if !ok {
		return nil, fmt.Errorf("video codec %q: %w", codec, ErrUnsupported)
	}
	c := astiav.FindDecoderByName(name)
	if c == nil {
		return nil, fmt.Errorf("video codec %q: %w: decoder %s not in this FFmpeg build", codec, ErrUnsupported, name)
	}
	cc := astiav.AllocCodecContext(c)
	if cc == nil {
		return nil, errors.New("av: cannot allocate decoder")
	}
	cc.SetTimeBase(usTB)
	setPktTimebase(cc, usTB)
	cc.SetThreadCount(2)
	cc.SetThreadType(astiav.ThreadTypeSlice)
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagLowDelay))
	opts := astiav.NewDictionary()
	defer opts.Free()
	if name == "libdav1d" {
		// dav1d otherwise pipelines several frames across its threads.
		_ = opts.Set("max_frame_delay", "1", 0)
	}
	if err := cc.Open(c, opts); err != nil {
		cc.Free()
		return nil, fmt.Errorf("video codec %q: %w", codec, err)
	}
	return &VideoDecoder{codec: codec, cc: cc, pkt: newCPacket(), frame: astiav.AllocFrame()}, nil
}

// Decode decodes one packet and returns the pictures it completed (usually
// one; none while waiting for a keyframe or for a frame that is not shown).
// An undecodable packet returns an error wrapping ErrCorrupt; the caller
// should ask the sender for a keyframe. The decoder stays usable.
func (d *VideoDecoder) Decode(data []byte, pts time.Duration) ([]VideoFrame, error) {
	if d.closed {
		return nil, errors.New("av: decoder closed")
	}
	if len(data) == 0 {
		return nil, nil
	}
	err := sendData(d.cc, d.pkt, data, durationToTS(pts, usTB))
	var out []VideoFrame
	var bad error
	if err != nil && !errors.Is(err, astiav.ErrEagain) {
		bad = err
	}
	for {
		rerr := d.cc.ReceiveFrame(d.frame)
		if rerr != nil {
			if !errors.Is(rerr, astiav.ErrEagain) && !errors.Is(rerr, astiav.ErrEof) && bad == nil {
				bad = rerr
			}
			break
		}
		if frameCorrupt(d.frame) {
			// Concealed damage: show it (better than freezing) but tell the
			// caller so it asks for a keyframe.
			if bad == nil {
				bad = errors.New("decoder concealed errors")
			}
		}
		fpts := pts
		if ts := frameBestEffortTS(d.frame); ts != astiav.NoPtsValue {
			fpts = tsToDuration(ts, usTB)
		}
		img, cerr := frameToImage(d.frame, &d.conv, &d.convKey)
		d.frame.Unref()
		if cerr != nil {
			if bad == nil {
				bad = cerr
			}
			continue
		}
		out = append(out, VideoFrame{Image: img, PTS: fpts})
	}
	if bad != nil {
		return out, fmt.Errorf("%s: %w: %v", d.codec, ErrCorrupt, bad)
	}
	return out, nil
}

// Close frees the decoder; it is idempotent.
func (d *VideoDecoder) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.cc.Free()
	d.pkt.free()
	d.frame.Free()
	d.conv.free()
	return nil
}

// AudioDecoder decodes one live Opus track to 48 kHz interleaved stereo.
// Not safe for concurrent use.
type AudioDecoder struct {
	codec  string
	cc     *astiav.CodecContext
	pkt    cpacket
	frame  *astiav.Frame
	rs     resampler
	closed bool
}

// NewAudioDecoder returns a decoder for codec; only "opus" is supported.
func NewAudioDecoder(codec string) (*AudioDecoder, error) {
	if codec != "opus" {
		return nil, fmt.Errorf("audio codec %q: %w", codec, ErrUnsupported)
	}
	c := astiav.FindDecoderByName("opus")
	if c == nil {
		return nil, fmt.Errorf("audio codec %q: %w: decoder not in this FFmpeg build", codec, ErrUnsupported)
	}
	cc := astiav.AllocCodecContext(c)
	if cc == nil {
		return nil, errors.New("av: cannot allocate decoder")
	}
	cc.SetTimeBase(usTB)
	setPktTimebase(cc, usTB)
	// WebRTC Opus has no in-band header: RFC 7587 fixes the clock at 48 kHz
	// and the decoder may always produce stereo (mono streams decode as
	// two equal channels).
	cc.SetSampleRate(media.SampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	if err := cc.Open(c, nil); err != nil {
		cc.Free()
		return nil, fmt.Errorf("audio codec %q: %w", codec, err)
	}
	return &AudioDecoder{codec: codec, cc: cc, pkt: newCPacket(), frame: astiav.AllocFrame()}, nil
}

// Decode decodes one Opus packet into 48 kHz interleaved stereo. pts is
// accepted for symmetry with VideoDecoder; the output has the packet's
// duration (resampling is a no-op at 48 kHz, so there is no delay).
// An undecodable packet returns an error wrapping ErrCorrupt.
func (d *AudioDecoder) Decode(data []byte, pts time.Duration) (media.Audio, error) {
	if d.closed {
		return nil, errors.New("av: decoder closed")
	}
	if len(data) == 0 {
		return nil, nil
	}
	err := sendData(d.cc, d.pkt, data, durationToTS(pts, usTB))
	if err != nil && !errors.Is(err, astiav.ErrEagain) {
		return nil, fmt.Errorf("%s: %w: %v", d.codec, ErrCorrupt, err)
	}
	var out media.Audio
	for {
		if err := d.cc.ReceiveFrame(d.frame); err != nil {
			if !errors.Is(err, astiav.ErrEagain) && !errors.Is(err, astiav.ErrEof) {
				return out, fmt.Errorf("%s: %w: %v", d.codec, ErrCorrupt, err)
			}
			return out, nil
		}
		a, _, cerr := d.rs.convert(d.frame)
		d.frame.Unref()
		if cerr != nil {
			return out, fmt.Errorf("%s: %w: %v", d.codec, ErrCorrupt, cerr)
		}
		if out == nil {
			out = a
		} else {
			out = append(out, a...)
		}
	}
}

// Close frees the decoder; it is idempotent.
func (d *AudioDecoder) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.cc.Free()
	d.pkt.free()
	d.frame.Free()
	d.rs.free()
	return nil
}
