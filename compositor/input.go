package compositor

import (
	"sync"
	"time"

	"github.com/roomcast/roomcast/media"
)

// Live queue bounds: beyond them the oldest data is dropped (and counted), so
// a pusher never blocks in live mode.
const (
	liveVideoQueue = 15                    // pictures
	liveAudioQueue = 2 * media.SampleRate  // sample frames (2 s)
	audioSnap      = media.SampleRate / 50 // 20 ms: closer than this to contiguous is contiguous
)

type vframe struct {
	img *media.Image
	pts time.Duration
}

type achunk struct {
	idx int64 // first sample frame on the media clock
	a   media.Audio
}

// Input is one participant's (or one screen share's) pictures and sound.
// Its methods are safe from any goroutine.
type Input struct {
	c     *Compositor
	id    string
	opt   InputOptions
	order int
	added time.Time

	mu       sync.Mutex
	name     string
	label    string // what the tile shows of name (Config.Labels)
	video    []vframe
	audio    []achunk
	queued   int   // sample frames in audio
	nextIdx  int64 // where the next contiguous audio chunk starts
	haveIdx  bool
	videoWM  time.Duration // end of the latest data pushed
	audioWM  time.Duration
	pushed   bool
	hadVideo bool // a picture was pushed
	hadAudio bool // sound was pushed
	eos      bool
	muted    bool
	removed  bool
	lastPush time.Time // wall clock of the latest picture (live stall detection)

	// Owned by the compositor goroutine.
	cur      *media.Image
	curPTS   time.Duration
	curSeq   int64
	curWall  time.Time
	slip     int // live: frames the pictures are shown after their instant (takeVideo)
	scaled   *media.Image
	scaledOf scaleKey
}

// ID returns the input's ID.
func (in *Input) ID() string { return in.id }

// Name returns the display name.
func (in *Input) Name() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.name
}

// SetName changes the label from the next frame on.
func (in *Input) SetName(name string) {
	label := in.c.cfg.Labels.label(name)
	in.mu.Lock()
	in.name, in.label = name, label
	in.mu.Unlock()
}

// Label returns what the tile shows of the name (empty: nothing).
func (in *Input) Label() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.label
}

// SetVideoMuted shows the placeholder (muted) or the pictures again.
func (in *Input) SetVideoMuted(m bool) {
	in.mu.Lock()
	in.muted = m
	in.mu.Unlock()
}

// PushVideo hands a picture stamped pts (media clock) to the compositor,
// which takes ownership of img and recycles it (media.PutImage) when done. Live: never blocks; returns false when the
// queue overflowed and an older picture was dropped. Offline: blocks while
// the input is far ahead of the output.
func (in *Input) PushVideo(img *media.Image, pts time.Duration) bool {
	if img == nil || img.Width < 2 || img.Height < 2 {
		return false
	}
	if in.c.cfg.Offline && !in.throttle(pts) {
		return false
	}
	in.mu.Lock()
	ok := true
	if in.removed {
		in.mu.Unlock()
		return false
	}
	if in.c.cfg.NoVideo {
		// Audio-only: the picture is never shown; only its time counts
		// (offline inputs are ready by their watermarks).
		media.PutImage(img)
		in.videoWM = max(in.videoWM, pts)
		in.pushed = true
		in.lastPush = in.c.cfg.now()
		in.mu.Unlock()
		in.c.poke()
		return true
	}
	in.video = append(in.video, vframe{img, pts})
	// Keep time order; inputs are usually in order already.
	for i := len(in.video) - 1; i > 0 && in.video[i].pts < in.video[i-1].pts; i-- {
		in.video[i], in.video[i-1] = in.video[i-1], in.video[i]
	}
	if !in.c.cfg.Offline && len(in.video) > liveVideoQueue {
		media.PutImage(in.video[0].img)
		in.video = in.video[1:]
		ok = false
		in.c.count(func(s *Stats) { s.DroppedVideo++; s.LostVideo++ })
	}
	in.videoWM = max(in.videoWM, pts)
	in.pushed, in.hadVideo = true, true
	in.lastPush = in.c.cfg.now()
	in.mu.Unlock()
	in.c.poke()
	return ok
}

// PushAudio hands sound starting at pts (media clock) to the compositor,
// which takes ownership of a. Chunks within 20 ms of the previous chunk's end
// are treated as contiguous, so timestamp jitter does not click.
func (in *Input) PushAudio(a media.Audio, pts time.Duration) bool {
	n := a.Frames()
	if n == 0 {
		return true
	}
	if in.c.cfg.Offline && !in.throttle(pts) {
		return false
	}
	idx := int64(pts) * media.SampleRate / int64(time.Second)
	in.mu.Lock()
	defer in.c.poke()
	defer in.mu.Unlock()
	if in.removed {
		return false
	}
	if in.haveIdx && idx != in.nextIdx && abs64(idx-in.nextIdx) < audioSnap {
		idx = in.nextIdx
	}
	in.haveIdx, in.nextIdx = true, idx+int64(n)
	if in.c.cfg.NoAudio && in.c.cfg.ExternalSpeaker {
		// Video-only, no mixer: the sound is never taken; only its time
		// counts (offline readiness).
		in.audioWM = max(in.audioWM, time.Duration(in.nextIdx*int64(time.Second)/media.SampleRate))
		in.pushed = true
		return true
	}
	in.audio = append(in.audio, achunk{idx, a[:n*media.Channels]})
	in.queued += n
	ok := true
	for !in.c.cfg.Offline && in.queued > liveAudioQueue && len(in.audio) > 1 {
		d := in.audio[0].a.Frames()
		in.audio = in.audio[1:]
		in.queued -= d
		ok = false
		in.c.count(func(s *Stats) { s.DroppedAudio += int64(d) })
	}
	in.audioWM = max(in.audioWM, time.Duration(in.nextIdx*int64(time.Second)/media.SampleRate))
	in.pushed, in.hadAudio = true, true
	return ok
}

// EndOfStream says no more data will come (offline inputs; a live input
// leaving uses Remove). The tile stays until its data has been shown.
func (in *Input) EndOfStream() {
	in.mu.Lock()
	in.eos = true
	in.mu.Unlock()
	in.c.poke()
}

// Remove takes the input off the stage from the next frame on.
func (in *Input) Remove() {
	in.mu.Lock()
	in.removed = true
	in.eos = true
	for _, f := range in.video {
		media.PutImage(f.img)
	}
	in.video, in.audio, in.queued = nil, nil, 0
	in.mu.Unlock()
	c := in.c
	c.mu.Lock()
	for i, x := range c.inputs {
		if x == in {
			c.inputs = append(c.inputs[:i:i], c.inputs[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	c.log.Info().Msg("input removed")
	c.log.Debug().Str("input", in.id).Msg("input removed")
	c.poke()
}

// throttle blocks an offline pusher while pts is far ahead of the output and
// the compositor is not waiting for this input. The second condition keeps a
// file whose streams are interleaved further apart than Config.OfflineAhead (sound
// a second ahead of its pictures, say) from deadlocking: the compositor
// waits for the lagging kind, so the leading kind must still be accepted.
func (in *Input) throttle(pts time.Duration) bool {
	c := in.c
	for {
		c.mu.Lock()
		ahead := pts - c.clock
		target := c.waitFor
		ch := c.advance
		c.mu.Unlock()
		if ahead <= c.cfg.OfflineAhead {
			return true
		}
		if ready, _ := in.readyFor(target); !ready {
			return true
		}
		select {
		case <-c.ctx.Done():
			return false
		case <-ch: // the clock moved or the compositor waits for something new
		}
	}
}

// readyFor reports whether this offline input has delivered everything up to
// t, and the end of its media once it has ended (-1 before).
func (in *Input) readyFor(t time.Duration) (bool, time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.eos {
		return true, max(in.videoWM+time.Second/time.Duration(in.c.cfg.FPS), in.audioWM, in.opt.Start, in.opt.End)
	}
	// Each kind the input has (or is known to have) has arrived past t:
	// decoders hand over pictures and sound in time order, so nothing
	// earlier can still come. Until both kinds have been seen, fall back to
	// the margin, which also covers a stream that ends before the other.
	if (in.opt.NoVideo || in.hadVideo && in.videoWM >= t) && (in.opt.NoAudio || in.hadAudio && in.audioWM >= t) &&
		(in.hadVideo || in.hadAudio) {
		return true, -1
	}
	if max(in.videoWM, in.audioWM) >= t+offlineMargin {
		return true, -1
	}
	if !in.pushed && t+offlineMargin < in.opt.Start {
		return true, -1
	}
	return false, -1
}

// onStage reports whether the input has a tile at t.
func (in *Input) onStage(t time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.removed {
		return false
	}
	if !in.c.cfg.Offline {
		return true
	}
	if t < in.opt.Start {
		return false
	}
	if in.opt.End > 0 {
		return t < in.opt.End
	}
	if in.eos && len(in.video) == 0 && len(in.audio) == 0 {
		end := max(in.videoWM+time.Second/time.Duration(in.c.cfg.FPS), in.audioWM)
		return t < end
	}
	return true
}

// maxSlipFrames bounds how many output frames a live input's pictures may
// be shown after their instant (see takeVideo).
const maxSlipFrames = 2

// takeVideo advances the input to the picture nearest to the output
// instant t (ties to the later one), so an input's own timing is kept
// within ±half a frame of the output (± half an input frame for slower
// inputs) rather than up to a frame late; pictures after that one stay
// queued for the next frames.
//
// Live, an input at the output's frame rate whose timing slips by part of
// a frame (its clock mapping settled a few milliseconds back, a capture
// time jittered across the middle of two output frames) would put two
// pictures in one output frame: the older one would be dropped and, when
// the slip is jitter, the next frame would hold. When the queued pictures
// show the input does not run faster than the output (the next frame's
// window holds at most one picture), the older picture is shown now and
// the input runs one frame behind its instant (slip), up to maxSlipFrames;
// a frame with no picture of its own takes the next one early and the
// input catches up. So every picture of such an input is shown, at most
// maxSlipFrames late, and pictures are dropped only when an input really
// runs faster than the output or arrives too late.
func (in *Input) takeVideo(t time.Duration) {
	period := time.Second / time.Duration(in.c.cfg.FPS)
	in.mu.Lock()
	at := t - time.Duration(in.slip)*period
	n := in.pick(at)
	if !in.c.cfg.Offline {
		switch {
		case n == 0 && in.slip > 0 && in.cur != nil && in.pick(at+period) > 0:
			// No picture of its own: catch up by a frame.
			in.slip--
			at += period
			n = in.pick(at)
		case n == 2 && in.slip < maxSlipFrames && in.video[0].pts >= at-3*period/2 && in.notFaster(at, period):
			in.slip++
			at -= period
			n = 1
		}
	}
	var f vframe
	if n > 0 {
		f = in.video[n-1]
		if n > 1 {
			// Older than this frame's window: its own frame was composed
			// before it arrived (late), not overtaken by a faster rate.
			early := at - period/2
			late := 0
			for _, d := range in.video[:n-1] {
				if d.pts < early {
					late++
				}
				media.PutImage(d.img)
			}
			in.c.count(func(s *Stats) { s.DroppedVideo += int64(n - 1); s.LostVideo += int64(late) })
		}
		clear(in.video[:n])
		in.video = in.video[n:]
	}
	wall := in.lastPush
	in.mu.Unlock()
	if f.img != nil {
		media.PutImage(in.cur)
		in.cur, in.curPTS, in.curWall = f.img, f.pts, wall
		in.curSeq++
	}
}

// pick is how many queued pictures to take for output instant t: the last
// of them is shown, the others are dropped. Called with in.mu held.
func (in *Input) pick(t time.Duration) int {
	limit := t + time.Second/time.Duration(2*in.c.cfg.FPS) - 1
	n := 0
	for n < len(in.video) && in.video[n].pts <= limit {
		n++
	}
	// An input slower than the output may have a picture just past the
	// limit, or an older one, nearer to t than the newest one within it.
	if n == 0 && in.cur != nil && len(in.video) > 0 && in.video[0].pts-t < t-in.curPTS {
		n = 1 // the picture on show is the older one
	}
	for n >= 1 && n < len(in.video) && in.video[n].pts-t < t-in.video[n-1].pts {
		n++
	}
	for n >= 2 && t-in.video[n-2].pts < in.video[n-1].pts-t {
		n--
	}
	if n == 0 && !in.c.cfg.Offline && len(in.video) == liveVideoQueue {
		// A live input whose clock runs ahead of ours: show its oldest
		// picture rather than nothing.
		n = 1
	}
	return n
}

// notFaster reports whether the queue shows that the input does not run
// faster than the output around t: a picture beyond the next frame has
// arrived (so the next frame's window is known), and that window holds at
// most one picture. Called with in.mu held.
func (in *Input) notFaster(t, period time.Duration) bool {
	lo, hi := t+period/2, t+3*period/2
	next := 0
	for _, f := range in.video {
		switch {
		case f.pts >= hi:
			return next <= 1
		case f.pts >= lo:
			next++
		}
	}
	return false
}

// stalled reports whether the tile should show the placeholder at t.
func (in *Input) stalled(t time.Duration) bool {
	in.mu.Lock()
	muted := in.muted
	in.mu.Unlock()
	if muted || in.opt.NoVideo || in.cur == nil {
		return true
	}
	if in.c.cfg.Offline {
		return t-in.curPTS > in.c.cfg.StallTimeout
	}
	return in.c.cfg.now().Sub(in.curWall) > in.c.cfg.StallTimeout
}

// takeAudio copies the input's sound for sample frames [idx, idx+n) into
// dst (interleaved, pre-zeroed by the caller when absent) and reports
// whether any sample was present. Older data is discarded.
func (in *Input) takeAudio(idx int64, n int, dst []float32) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	end := idx + int64(n)
	got := false
	for len(in.audio) > 0 {
		ch := &in.audio[0]
		cn := int64(ch.a.Frames())
		if ch.idx+cn <= idx { // entirely in the past
			in.c.count(func(s *Stats) { s.DroppedAudio += cn })
			in.queued -= int(cn)
			in.audio = in.audio[1:]
			continue
		}
		if ch.idx >= end {
			break
		}
		lo, hi := max(ch.idx, idx), min(ch.idx+cn, end)
		copy(dst[(lo-idx)*media.Channels:(hi-idx)*media.Channels], ch.a[(lo-ch.idx)*media.Channels:(hi-ch.idx)*media.Channels])
		got = true
		if hi == ch.idx+cn {
			in.queued -= int(cn)
			in.audio = in.audio[1:]
			continue
		}
		break
	}
	return got
}

func (c *Compositor) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// GridShift is how far to move every timestamp of a constant-rate input
// (frames stamped first, first+1/rate, ...; rate = num/den frames per
// second) so that its pictures fall on the output's frame grid, when the
// output rate is a whole multiple of the input's; 0 otherwise, or when the
// rate is unknown. Shifted this way (at most half an output frame, ties
// later), an input keeps its A/V relation exactly and each picture is shown
// at its own time: left alone, a phase near half a frame shows some
// pictures half a frame early and others half a frame late (container
// timestamps are rounded), while the sound is not moved at all.
func (c *Compositor) GridShift(first time.Duration, num, den int) time.Duration {
	fps := int64(c.cfg.FPS)
	if num <= 0 || den <= 0 || first < 0 || (fps*int64(den))%int64(num) != 0 {
		return 0
	}
	sec := int64(time.Second)
	// The nearest output instant n/fps to first (ties to the later one).
	n := (int64(first)*fps + sec/2) / sec
	for time.Duration(n*sec/fps) < first-time.Second/time.Duration(2*fps) {
		n++
	}
	return time.Duration(n*sec/fps) - first
}
