package av

import (
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/media"
)

// nsTB is the time base of packets handed to the live decoders: timestamps
// go in and come out as nanoseconds, so a picture carries exactly the
// time.Duration its packet had.
var nsTB = astiav.NewRational(1, int(time.Second))

// VideoFrame is one decoded picture from a VideoDecoder.
type VideoFrame struct {
	Image *media.Image
	// PTS is the pts passed to Decode with the packet that produced it.
	PTS time.Duration
}

// VideoDecoder decodes one live WebRTC video track, one access unit (H.264,
// Annex B) or frame (VP8, VP9, AV1) at a time. It is tuned for latency:
// no frame threading, at most two slice threads, low-delay settings, so each
// packet's picture comes out of the Decode call that received it (for H.264
// streams without B-frames; see NewVideoDecoder). Not safe for concurrent use.
type VideoDecoder struct {
	codec   string
	cc      *astiav.CodecContext
	pkt     cpacket
	frame   *astiav.Frame
	conv    *swsCtx
	convKey swsKey
	closed  bool
	opt     options
	unreg   func()
}

// videoDecoders maps the WebRTC codec names we accept to FFmpeg decoders.
// AV1 has only libdav1d in our build.
var videoDecoders = map[string]string{"h264": "h264", "vp8": "vp8", "vp9": "vp9", "av1": "libdav1d"}

// NewVideoDecoder returns a decoder for codec: "h264", "vp8", "vp9" or "av1".
// Unknown names wrap ErrUnsupported.
func NewVideoDecoder(codec string, opts ...Option) (*VideoDecoder, error) {
	o := applyOptions(opts)
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
	unreg := o.register(cc.UnsafePointer())
	cc.SetTimeBase(nsTB)
	setPktTimebase(cc, nsTB)
	// Slice threads only: frame threading would hold back one picture per
	// thread.
	cc.SetThreadCount(2)
	cc.SetThreadType(astiav.ThreadTypeSlice)
	if name != "h264" {
		cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagLowDelay))
	}
	// H.264 gets no LOW_DELAY flag: it would force the reorder depth to 0
	// and drop pictures of streams that do reorder, while streams that do
	// not (WebRTC's constrained baseline, or any SPS whose VUI says
	// num_reorder_frames=0) already come out of the same Decode call.
	dict := astiav.NewDictionary()
	defer dict.Free()
	if name == "libdav1d" {
		// dav1d otherwise pipelines several frames across its threads.
		_ = dict.Set("max_frame_delay", "1", 0)
	}
	if err := cc.Open(c, dict); err != nil {
		cc.Free()
		unreg()
		return nil, fmt.Errorf("video codec %q: %w", codec, err)
	}
	return &VideoDecoder{codec: codec, cc: cc, pkt: newCPacket(), frame: astiav.AllocFrame(), opt: o, unreg: unreg}, nil
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
	err := sendData(d.cc, d.pkt, data, durationToTS(pts, nsTB))
	if err != nil && !errors.Is(err, astiav.ErrEagain) {
		out, _ := d.receive(pts)
		return out, fmt.Errorf("%s: %w: %v", d.codec, ErrCorrupt, err)
	}
	return d.receive(pts)
}

// Flush returns the pictures the decoder still holds (only streams with
// reordering leave any) and resets it for the next packet, e.g. at the end of
// a track or before a stream restarts.
func (d *VideoDecoder) Flush() ([]VideoFrame, error) {
	if d.closed {
		return nil, nil
	}
	var out []VideoFrame
	var err error
	if d.cc.SendPacket(nil) == nil {
		out, err = d.receive(0)
	}
	flushBuffers(d.cc)
	return out, err
}

// receive drains decoded pictures; pts stands in for frames without one.
func (d *VideoDecoder) receive(pts time.Duration) ([]VideoFrame, error) {
	var out []VideoFrame
	var bad error
	for {
		rerr := d.cc.ReceiveFrame(d.frame)
		if rerr != nil {
			if !errors.Is(rerr, astiav.ErrEagain) && !errors.Is(rerr, astiav.ErrEof) && bad == nil {
				bad = rerr
			}
			break
		}
		if frameCorrupt(d.frame) && bad == nil {
			// Concealed damage: show it (better than freezing) but tell the
			// caller so it asks for a keyframe.
			bad = errors.New("decoder concealed errors")
		}
		fpts := pts
		if ts := frameBestEffortTS(d.frame); ts != astiav.NoPtsValue {
			fpts = tsToDuration(ts, nsTB)
		}
		img, cerr := frameToImage(d.frame, &d.conv, &d.convKey, d.opt)
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
	d.unreg()
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
	unreg  func()
}

// NewAudioDecoder returns a decoder for codec; only "opus" is supported.
func NewAudioDecoder(codec string, opts ...Option) (*AudioDecoder, error) {
	o := applyOptions(opts)
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
	unreg := o.register(cc.UnsafePointer())
	cc.SetTimeBase(nsTB)
	setPktTimebase(cc, nsTB)
	// WebRTC Opus has no in-band header: RFC 7587 fixes the clock at 48 kHz
	// and the decoder may always produce stereo (mono streams decode as
	// two equal channels).
	cc.SetSampleRate(media.SampleRate)
	cc.SetChannelLayout(astiav.ChannelLayoutStereo)
	if err := cc.Open(c, nil); err != nil {
		cc.Free()
		unreg()
		return nil, fmt.Errorf("audio codec %q: %w", codec, err)
	}
	return &AudioDecoder{codec: codec, cc: cc, pkt: newCPacket(), frame: astiav.AllocFrame(), unreg: unreg, rs: resampler{opt: o}}, nil
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
	err := sendData(d.cc, d.pkt, data, durationToTS(pts, nsTB))
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

// opusLookahead is libopus's encoder delay at 48 kHz for the VOIP and
// AUDIO applications, the ones WebRTC senders use (2.5 ms of CELT overlap
// plus 4 ms of look-ahead, 312 samples): an Ogg or WebM file states it as
// pre-skip and players drop it; RTP does not carry it, so a decoded
// packet's sound is that much later than its timestamp (the capture time
// of the first sample the encoder was given).
const opusLookahead = 312 * time.Second / media.SampleRate

// Delay is how much later than a packet's timestamp the sound decoded from
// it was captured: subtract it from the timestamp to place the sound at its
// capture time.
func (d *AudioDecoder) Delay() time.Duration { return opusLookahead }

// Close frees the decoder; it is idempotent.
func (d *AudioDecoder) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.cc.Free()
	d.unreg()
	d.pkt.free()
	d.frame.Free()
	d.rs.free()
	return nil
}
