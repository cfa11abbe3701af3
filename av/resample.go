package av

import (
	"fmt"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/media"
)

// resampler turns decoded audio frames of any format, rate and layout into
// media.Audio. A change of input parameters mid-stream (it happens when a
// recording switches codec settings) rebuilds the context; the few samples
// still buffered in the old one are dropped.
type resampler struct {
	swr *astiav.SoftwareResampleContext
	out *astiav.Frame
	// Input parameters the context was built for.
	inFmt  astiav.SampleFormat
	inRate int
	inCh   int
	// outCh is 1 for mono input, which we duplicate into both channels
	// ourselves: swresample's mono→stereo matrix would attenuate by 3 dB,
	// making mono speakers quieter than stereo ones in the mix.
	outCh int
	fed   bool // the context has seen input, so its delay is meaningful
	// opt routes the context's FFmpeg lines to its owner's logger.
	opt   options
	unreg func()
}

func (r *resampler) setup(in *astiav.Frame) {
	ch := in.ChannelLayout().Channels()
	// Some demuxers (WAV written by FreeSWITCH or ffmpeg) leave the layout's
	// channel order unspecified; swresample then sees every frame after the
	// first as a changed input. Name the usual layouts.
	switch l := in.ChannelLayout(); {
	case ch == 1 && !l.Equal(astiav.ChannelLayoutMono):
		in.SetChannelLayout(astiav.ChannelLayoutMono)
	case ch == 2 && !l.Equal(astiav.ChannelLayoutStereo):
		in.SetChannelLayout(astiav.ChannelLayoutStereo)
	}
	if r.swr != nil && in.SampleFormat() == r.inFmt && in.SampleRate() == r.inRate && ch == r.inCh {
		return
	}
	r.free()
	r.swr = astiav.AllocSoftwareResampleContext()
	r.unreg = r.opt.registerClasser(r.swr)
	r.out = astiav.AllocFrame()
	r.inFmt, r.inRate, r.inCh = in.SampleFormat(), in.SampleRate(), ch
	r.outCh = media.Channels
	if ch == 1 {
		r.outCh = 1
	}
	r.fed = false
}

// convert feeds in (nil flushes) and returns the output it produced, with
// the amount of earlier input still buffered before this call (the output
// starts that long before in's timestamp).
func (r *resampler) convert(in *astiav.Frame) (media.Audio, time.Duration, error) {
	if in != nil {
		r.setup(in)
	} else if r.swr == nil || !r.fed {
		return nil, 0, nil
	}
	var delay time.Duration
	if r.fed {
		delay = time.Duration(r.swr.Delay(int64(time.Second)))
	}
	r.out.Unref()
	if r.outCh == 1 {
		r.out.SetChannelLayout(astiav.ChannelLayoutMono)
	} else {
		r.out.SetChannelLayout(astiav.ChannelLayoutStereo)
	}
	r.out.SetSampleRate(media.SampleRate)
	r.out.SetSampleFormat(astiav.SampleFormatFlt)
	if err := r.swr.ConvertFrame(in, r.out); err != nil {
		// Most likely parameters we did not compare (layout order) changed;
		// start over on the next frame.
		r.free()
		return nil, 0, fmt.Errorf("resample: %w", err)
	}
	r.fed = true
	n := r.out.NbSamples()
	if n <= 0 {
		return nil, delay, nil
	}
	src := floatPlane(r.out, 0, n*r.outCh)
	a := make(media.Audio, n*media.Channels)
	if r.outCh == 1 {
		for i, s := range src {
			a[2*i], a[2*i+1] = s, s
		}
	} else {
		copy(a, src)
	}
	return a, delay, nil
}

func (r *resampler) free() {
	if r.swr != nil {
		r.swr.Free()
		r.swr = nil
		r.unreg()
	}
	if r.out != nil {
		r.out.Free()
		r.out = nil
	}
}
