// Package recorder is the middle of roomcast's pipeline: it owns the
// compositor, encodes its output once (libx264 + AAC through av) and fans the
// packets out to every output (the MP4 file, RTMP destinations). Rooms,
// files and the demo feed the compositor's inputs; outputs never see each
// other's failures.
package recorder

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/media"
)

// ErrOutput marks a failure of a critical output (the recording); the run
// stops, what was written stays playable.
var ErrOutput = errors.New("output failed")

// Output receives every encoded packet, interleaved in decode order, from
// one goroutine. mp4.Writer and the RTMP publishers implement it.
type Output interface {
	WritePacket(p media.Packet) error
	Close() error
}

// Encoding is what the encoders are asked to produce.
type Encoding struct {
	// Preset is "record" (quality) or "stream" (CBR-like, no B-frames). It
	// defaults to "record".
	Preset string
	// X264Preset is libx264's speed preset. It defaults to "veryfast".
	X264Preset string
	// VideoBitrate in bits/s: the cap for record, the target for stream.
	// It defaults to 0 (record: quality-driven) or av.DefaultStreamBitrate.
	VideoBitrate int
	// KeyframeInterval defaults to 2 s (fragments and ingests want ≤ 2 s).
	KeyframeInterval time.Duration
	// Profile is the H.264 profile; empty picks the preset's.
	Profile string
	// AudioBitrate defaults to 128 kb/s.
	AudioBitrate int
	// Threads for libx264; 0 lets it decide.
	Threads int
}

// Config configures a Recorder.
type Config struct {
	Compositor compositor.Config // Scaler and Log are filled in
	Encoding   Encoding
	Log        zerolog.Logger
}

// Recorder runs compositor → encoders → outputs.
type Recorder struct {
	log  zerolog.Logger
	comp *compositor.Compositor
	sc   *av.Scaler
	venc *av.VideoEncoder
	aenc *av.AudioEncoder
	info media.StreamInfo

	offline bool

	// Live overload, stage 2 (stepdown.go): judged in the compositor's
	// goroutine; the counters are read from any.
	step      stepDown
	stepDowns atomic.Int64
	switches  int64 // the encoder's switches already logged

	mu      sync.Mutex
	outputs []*outputQueue
	inter   interleaver
	closed  bool
	closeMu sync.Mutex
	err     error

	// Counters of the encoded stream, for status pages (atomics: read from
	// any goroutine).
	stats encStats
}

// New builds the encoders and the compositor; add inputs through
// Compositor() and outputs with AddOutput before Start.
func New(cfg Config) (*Recorder, error) {
	r := &Recorder{log: cfg.Log.With().Str("component", "recorder").Logger(), offline: cfg.Compositor.Offline}
	r.sc = av.NewScaler(av.WithLog(cfg.Log))
	cc := cfg.Compositor
	cc.Scaler = r.sc
	cc.Log = cfg.Log
	// Skipping frames under overload (compositor.Config.MaxLag) leaves gaps
	// in the pictures' timestamps; x264 with B-frames (the record preset)
	// then derives decode times that a player shows out of order around
	// the gap. The record preset therefore degrades by repeating pictures
	// only, keeping every frame; the stream preset (no B-frames) skips.
	if cc.MaxLag == 0 && cfg.Encoding.Preset != "stream" {
		cc.MaxLag = -1
	}
	comp, err := compositor.New(cc, (*sink)(r))
	if err != nil {
		r.sc.Close()
		return nil, err
	}
	r.comp = comp
	cc = comp.Config()
	e := cfg.Encoding
	if e.Preset == "" {
		e.Preset = "record"
	}
	if e.AudioBitrate == 0 {
		e.AudioBitrate = 128_000
	}
	r.step.fps = cc.FPS
	// An audio-only or video-only output has no encoder for the other kind
	// (compositor.Config.NoVideo / NoAudio): the muxers and publishers then
	// write a single track.
	if !cc.NoVideo {
		r.venc, err = av.NewVideoEncoder(av.VideoEncoderConfig{
			Width: cc.Width, Height: cc.Height, FPS: cc.FPS, Preset: e.Preset, X264Preset: e.X264Preset,
			Bitrate: e.VideoBitrate, KeyframeInterval: e.KeyframeInterval, Profile: e.Profile, Threads: e.Threads, Log: cfg.Log,
		})
		if err != nil {
			r.sc.Close()
			return nil, fmt.Errorf("video encoder: %w", err)
		}
		r.info.Width, r.info.Height, r.info.FPS = cc.Width, cc.Height, cc.FPS
		r.info.VideoBitrate, r.info.VideoConfig = r.venc.Settings().Bitrate, r.venc.Config()
		r.info.Profile, r.info.Level = r.venc.Profile(), r.venc.Level()
	}
	if !cc.NoAudio {
		r.aenc, err = av.NewAudioEncoder(av.AudioEncoderConfig{Bitrate: e.AudioBitrate, Log: cfg.Log})
		if err != nil {
			if r.venc != nil {
				r.venc.Close()
			}
			r.sc.Close()
			return nil, fmt.Errorf("audio encoder: %w", err)
		}
		r.info.SampleRate, r.info.Channels, r.info.AudioBitrate = media.SampleRate, media.Channels, e.AudioBitrate
		r.info.AudioConfig = r.aenc.Config()
	}
	// One kind only: nothing to interleave with.
	r.inter.single = cc.NoVideo || cc.NoAudio
	return r, nil
}

// Compositor is where inputs are added.
func (r *Recorder) Compositor() *compositor.Compositor { return r.comp }

// Info describes the encoded stream (for muxers and publishers).
func (r *Recorder) Info() media.StreamInfo { return r.info }

// RequestKeyframe makes the next video frame an IDR (an RTMP destination
// that reconnected asks for it). Safe from any goroutine.
func (r *Recorder) RequestKeyframe() {
	if r.venc != nil {
		r.venc.ForceKeyframe()
	}
}

// AddOutput attaches an output. A critical output's failure stops the run
// (the recording, PolicyRecord); a non-critical one (a stream, PolicyStream)
// is dropped and logged. Each output is written by its own goroutine.
func (r *Recorder) AddOutput(name string, o Output, critical bool) {
	opt := OutputOptions{Critical: critical, Policy: PolicyStream}
	if critical {
		opt.Policy = PolicyRecord
	}
	r.AddOutputWith(name, o, opt)
}

// AddOutputWith attaches an output with explicit queue options.
func (r *Recorder) AddOutputWith(name string, o Output, opt OutputOptions) {
	q := newOutputQueue(name, o, opt, r.offline, r.RequestKeyframe, r.log)
	r.mu.Lock()
	r.outputs = append(r.outputs, q)
	r.mu.Unlock()
}

// RemoveOutput detaches the output named name while the recorder runs (a
// stream destination dropped mid-broadcast): what is queued for it is
// written out, then it is closed. It reports whether such an output was
// attached. The other outputs never wait for it.
func (r *Recorder) RemoveOutput(name string) bool {
	r.mu.Lock()
	var q *outputQueue
	for i, o := range r.outputs {
		if o.name == name {
			q = o
			// A new slice: emit may be iterating over the old one.
			r.outputs = append(r.outputs[:i:i], r.outputs[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	if q == nil {
		return false
	}
	_ = q.close()
	if err := q.o.Close(); err != nil {
		r.log.Warn().Err(err).Str("output", name).Msg("closing removed output")
	}
	return true
}

// Health reports every output, in the order they were added.
func (r *Recorder) Health() []Health {
	r.mu.Lock()
	outs := append([]*outputQueue(nil), r.outputs...)
	r.mu.Unlock()
	h := make([]Health, len(outs))
	for i, o := range outs {
		h[i] = o.health()
	}
	return h
}

// Start begins the composition.
func (r *Recorder) Start() { r.comp.Start() }

// Done is closed when the composition has ended by itself (duration reached,
// inputs ended, a critical output failed).
func (r *Recorder) Done() <-chan struct{} { return r.comp.Done() }

// Elapsed is the media time produced so far.
func (r *Recorder) Elapsed() time.Duration { return r.comp.Elapsed() }

// Close stops the composition, flushes the encoders into the outputs and
// closes every output (the MP4 is finalised there). It returns the first
// critical error. Idempotent.
func (r *Recorder) Close() error {
	r.closeMu.Lock()
	defer r.closeMu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	err := r.comp.Close()
	if err == nil {
		// Flush only after a clean run; after an output error the encoders'
		// tail has nowhere to go.
		var vp, ap []media.Packet
		var ferr error
		if r.venc != nil {
			if vp, ferr = r.venc.Flush(); ferr != nil {
				r.log.Error().Err(ferr).Msg("flushing the video encoder")
			}
		}
		if r.aenc != nil {
			if ap, ferr = r.aenc.Flush(); ferr != nil {
				r.log.Error().Err(ferr).Msg("flushing the audio encoder")
			}
		}
		r.emit(append(r.inter.push(append(vp, ap...)...), r.inter.drain()...)...)
		r.log.Debug().Int("video", len(vp)).Int("audio", len(ap)).Msg("encoders flushed")
		err = r.firstCritical()
	}
	r.mu.Lock()
	outs := append([]*outputQueue(nil), r.outputs...)
	r.mu.Unlock()
	// Each queue is written out by its goroutine (the recording gets every
	// packet), then the output is closed (the MP4 finalised).
	var wg sync.WaitGroup
	errs := make([]error, len(outs))
	for i, o := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qerr := o.close()
			if qerr != nil && o.opt.Critical {
				errs[i] = fmt.Errorf("%w: %s: %w", ErrOutput, o.name, qerr)
			}
			if cerr := o.o.Close(); cerr != nil {
				r.log.Error().Err(cerr).Str("output", o.name).Msg("closing output")
				if o.opt.Critical && errs[i] == nil {
					errs[i] = fmt.Errorf("%w: %s: %w", ErrOutput, o.name, cerr)
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if err == nil && e != nil {
			err = e
		}
	}
	if r.venc != nil {
		r.venc.Close()
	}
	if r.aenc != nil {
		r.aenc.Close()
	}
	r.sc.Close()
	r.err = err
	return err
}

func (r *Recorder) firstCritical() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.outputs {
		if err := o.err(); o.opt.Critical && err != nil {
			return fmt.Errorf("%w: %s: %w", ErrOutput, o.name, err)
		}
	}
	return nil
}

// emit queues packets for every live output; it never waits for one (in a
// live run). A critical failure is returned so the compositor stops.
func (r *Recorder) emit(pkts ...media.Packet) error {
	if len(pkts) == 0 {
		return nil
	}
	r.stats.add(pkts)
	r.mu.Lock()
	outs := r.outputs
	r.mu.Unlock()
	var crit error
	for _, o := range outs {
		for _, p := range pkts {
			if err := o.push(p); err != nil {
				if o.opt.Critical && crit == nil {
					crit = fmt.Errorf("%w: %s: %w", ErrOutput, o.name, err)
				}
				break
			}
		}
	}
	return crit
}

// sink adapts the recorder to compositor.Sink: encode, interleave, fan out.
type sink Recorder

func (s *sink) WriteVideo(img *media.Image, pts time.Duration) error {
	r := (*Recorder)(s)
	t0 := time.Now()
	pkts, err := r.venc.Encode(img, pts)
	if err != nil {
		return fmt.Errorf("video encoder: %w", err)
	}
	if !r.offline {
		r.judgeOverload(pts, time.Since(t0))
	}
	return r.emit(r.inter.push(pkts...)...)
}

// judgeOverload is stage 2 of live overload (stepdown.go): when repeats and
// skips last, the x264 preset steps down at the next keyframe.
func (r *Recorder) judgeOverload(pts, work time.Duration) {
	if n := r.venc.Switches(); n != r.switches {
		r.switches = n
		r.step.switched()
		r.log.Info().Str("x264_preset", r.venc.X264Preset()).Dur("at", pts).Int64("dropped_pictures", r.venc.Dropped()).
			Msg("the encoder continues with a faster x264 preset from this keyframe on")
	}
	cs := r.comp.Stats()
	n := r.step.frame(pts, cs.RepeatedVideo+cs.SkippedVideo, work)
	if n == 0 {
		return
	}
	from := r.venc.X264Preset()
	to, steps := from, 0
	for ; steps < n; steps++ {
		next, ok := av.FasterX264Preset(to)
		if !ok {
			break
		}
		to = next
	}
	if steps == 0 {
		return // ultrafast already: stage 1 alone keeps the broadcast live
	}
	if err := r.venc.SwitchX264Preset(to); err != nil {
		r.log.Warn().Err(err).Msg("cannot step the x264 preset down")
		return
	}
	r.stepDowns.Add(int64(steps))
	r.log.Warn().Str("from", from).Str("to", to).Dur("at", pts).
		Float64("degraded_share", math.Round(r.step.lastShare*1000)/1000).Dur("encode_per_frame", r.step.lastWork).
		Float64("encode_share", math.Round(r.step.lastEncode*1000)/1000).
		Dur("frame_period", time.Second/time.Duration(r.step.fps)).Dur("max_lag", cs.MaxLag).
		Int64("repeated_video", cs.RepeatedVideo).Int64("skipped_video", cs.SkippedVideo).
		Msg("live encoding stays slower than real time: stepping the x264 preset down at the next keyframe")
}

func (s *sink) WriteAudio(a media.Audio, pts time.Duration) error {
	r := (*Recorder)(s)
	pkts, err := r.aenc.Encode(a, pts)
	if err != nil {
		return fmt.Errorf("audio encoder: %w", err)
	}
	return r.emit(r.inter.push(pkts...)...)
}
