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
	audioSnap      = media.SampleRate / 50 // offline, 20 ms: closer than this to contiguous is contiguous
)

// Live lip sync (see PushAudio): a live input's sound is placed where its
// pictures are shown, not only where its timestamps say. Pictures are
// shown at output frame instants (up to half a frame from their own, and
// later when takeVideo slips), so the sound follows the pictures' mean
// presentation lag; it moves there by stretching or squeezing chunks by at
// most syncStretch, so the sound stays continuous.
const (
	syncDeadband = media.SampleRate / 1000   // 1 ms: nearer than this is in place
	syncJump     = media.SampleRate * 2 / 10 // 200 ms: further than this jumps (gap or overlap)
	syncStretch  = 20                        // a chunk changes by at most 1/20 (5 %) of its length
	lagWindow    = 30                        // output frames: the presentation lag's moving mean
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
	// The latest output frames' presentation lags (live, takeVideo): how
	// long after its own instant the picture on show was shown. Their
	// mean (lag) is how much later the sound is placed too (PushAudio).
	lags    [lagWindow]time.Duration // a ring
	nLagged int64                    // output frames whose lag was taken
	lagSum  time.Duration
	syncOff int64 // live: where the latest sound chunk was queued against its place (sample frames)
	late    int64 // live: how much later than their place the chunks are queued, as they came late (sample frames)
	// Live: the latest chunk's slack (how long before the mixer needed
	// it) and, after a sudden drop of it, when the stall is over.
	slack      time.Duration
	haveSlack  bool
	stallUntil time.Time
	syncLog    time.Duration // owned by the compositor goroutine: the output instant of the latest lip-sync log

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
// which takes ownership of a.
//
// Offline, chunks within 20 ms of the previous chunk's end are treated as
// contiguous, so timestamp jitter does not click.
//
// Live, the sound is placed at pts plus the pictures' presentation lag
// (lip sync: a picture stamped p is shown at the output frame nearest to
// p, or a frame or two later when the input slipped, and its sound must be
// heard then too). Chunks stay contiguous while that place is within 1 ms;
// beyond (a mapping step after a sender report, the lag changing), a
// periodic chunk leaves out or repeats one pitch period (splice), and any
// other is stretched or squeezed by a quarter of the distance, at most 5 %
// of its length, until the sound is back in place; beyond 200 ms it jumps.
// Sound that comes too late for that place is not dropped: it is heard as
// soon as the mixer can take it (Stats.LateAudio).
func (in *Input) PushAudio(a media.Audio, pts time.Duration) bool {
	n := a.Frames()
	if n == 0 {
		return true
	}
	if in.c.cfg.Offline && !in.throttle(pts) {
		return false
	}
	in.mu.Lock()
	defer in.c.poke()
	defer in.mu.Unlock()
	if in.removed {
		return false
	}
	if in.c.cfg.Offline {
		idx := int64(pts) * media.SampleRate / int64(time.Second)
		if in.haveIdx && idx != in.nextIdx && abs64(idx-in.nextIdx) < audioSnap {
			idx = in.nextIdx
		}
		return in.queueAudio(a, idx)
	}
	idx := int64(pts+in.lag()) * media.SampleRate / int64(time.Second)
	// A chunk must land ahead of the mixer to be heard at all. One that
	// comes after its place was mixed moves later, to a quarter of the
	// Latency ahead of the mixer, and the input's sound with it: a gap,
	// not a stretch, so a sender whose audio clock runs slow (a starved
	// browser's does: each chunk a little later than the one before) is
	// heard at its own pitch with a short gap now and then. in.late holds
	// that delay until chunks come early enough again (half the Latency
	// ahead), then the sound slides back to its place.
	//
	// A stall is different: the sender or the network stops, then what
	// was held back comes all at once, the sound's pictures lost meanwhile
	// too. Its chunks that come too late are left out as before, so the
	// sound stays with its pictures: a chunk whose slack (how long before
	// the mixer needs it) is more than half the Latency below the previous
	// one's (for the first chunk, below the Latency) starts a stall that
	// lasts as long as that drop.
	floor := in.c.mixed.Load()
	margin := int64(in.c.cfg.Latency/4) * media.SampleRate / int64(time.Second)
	now := in.c.cfg.now()
	if st := in.c.startNano.Load(); st != 0 {
		due := time.Duration(now.UnixNano()-st) - in.c.cfg.Latency // the instant the mixer is due at now
		slack := time.Duration(idx*int64(time.Second)/media.SampleRate) - due
		// An input's first chunk is judged against one that came on
		// time: late at once is a stall (its receiver started late, the
		// process stalled as it joined), never a slow clock, which
		// shows only as a slide.
		prev := in.slack
		if !in.haveSlack {
			prev = in.c.cfg.Latency
		}
		if drop := prev - slack; drop > in.c.cfg.Latency/2 {
			in.stallUntil = now.Add(drop)
		}
		in.slack, in.haveSlack = slack, true
	}
	if in.late > 0 && idx+in.late > floor+2*margin {
		in.late = max(floor+margin-idx, 0)
	}
	idx += in.late
	d := idx - in.nextIdx
	if in.haveIdx {
		in.syncOff = -d
	}
	if (idx < floor || (in.haveIdx && abs64(d) < syncJump && in.nextIdx < floor)) && !now.Before(in.stallUntil) {
		// Here or contiguous, it would never be heard: a gap, and later
		// if need be.
		if idx < floor+margin {
			in.late += floor + margin - idx
			idx = floor + margin
		}
		in.c.count(func(s *Stats) { s.LateAudio++ })
		return in.queueAudio(a, idx)
	}
	if in.haveIdx {
		switch {
		case abs64(d) <= syncDeadband:
			idx = in.nextIdx
		case abs64(d) < syncJump:
			if p := period(a); p > 0 {
				// Periodic sound (a voice, a tone) moves a whole pitch
				// period at a time, left out or repeated, so its pitch
				// stays; until it is half a period off it stays put.
				if abs64(d) >= int64(p+1)/2 {
					a = splice(a, p, d > 0)
					in.c.count(func(s *Stats) { s.SyncAdjusted += int64(p) })
				}
				idx = in.nextIdx
				break
			}
			// Otherwise (noise, silence) it is resampled: a quarter of
			// the way per chunk (a 2 ms error is gone in about 10
			// chunks), at most 5 %: small corrections are gentle, large
			// ones fast.
			c := max(min(d/4, int64(n/syncStretch)), -int64(n/syncStretch))
			if c != 0 {
				a = stretch(a, n+int(c))
				in.c.count(func(s *Stats) { s.SyncAdjusted += abs64(c) })
			}
			idx = in.nextIdx
		}
	}
	return in.queueAudio(a, idx)
}

// lag is the mean presentation lag of the latest output frames (0 before
// the first picture). Called with in.mu held.
func (in *Input) lag() time.Duration {
	if in.nLagged == 0 {
		return 0
	}
	return in.lagSum / time.Duration(min(in.nLagged, lagWindow))
}

// queueAudio queues a at sample frame idx. Called with in.mu held.
func (in *Input) queueAudio(a media.Audio, idx int64) bool {
	n := a.Frames()
	if !in.c.cfg.Offline && (!in.haveIdx || idx != in.nextIdx) {
		in.fadeAtBreak(a)
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

// fadeLen is how long the sound ramps on either side of a break in an
// input's sound (2.5 ms): long enough not to click, too short to hear.
const fadeLen = media.SampleRate / 400

// fadeAtBreak ramps the sound at a break (live): a, which starts away from
// where the sound before it ended (a gap, an overlap) or starts the
// input's sound, fades in, and the chunk queued before it fades out over
// its last fadeLen sample frames if they are still to be mixed. Called
// with in.mu held; a is the pusher's, given to the compositor.
func (in *Input) fadeAtBreak(a media.Audio) {
	for i := range min(fadeLen, a.Frames()) {
		g := float32(i+1) / float32(fadeLen+1)
		for ch := range media.Channels {
			a[i*media.Channels+ch] *= g
		}
	}
	if len(in.audio) == 0 {
		return
	}
	last := in.audio[len(in.audio)-1]
	m := last.a.Frames()
	k := min(fadeLen, m)
	if last.idx+int64(m-k) < in.c.mixed.Load() {
		return // already (being) heard
	}
	for i := range k {
		g := float32(k-i) / float32(fadeLen+1)
		for ch := range media.Channels {
			last.a[(m-k+i)*media.Channels+ch] *= g
		}
	}
}

// stretch resamples a (interleaved, media.Channels) to m sample frames by
// linear interpolation, its first and last samples kept: a pitch change of
// (m-n)/n for the chunk's duration, inaudible in speech at a few percent.
func stretch(a media.Audio, m int) media.Audio {
	n := a.Frames()
	if m == n || n < 2 || m < 2 {
		return a
	}
	out := make(media.Audio, m*media.Channels)
	step := float64(n-1) / float64(m-1)
	for j := range m {
		x := float64(j) * step
		i := int(x)
		if i >= n-1 {
			i = n - 2
		}
		f := float32(x - float64(i))
		for ch := range media.Channels {
			s0, s1 := a[i*media.Channels+ch], a[(i+1)*media.Channels+ch]
			out[j*media.Channels+ch] = s0 + (s1-s0)*f
		}
	}
	return out
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
	if !in.c.cfg.Offline && (f.img != nil || in.cur != nil && len(in.video) > 0) {
		// How late the picture on show is (negative: early), the mean of
		// the latest second's output frames: the sound follows it
		// (PushAudio). A picture held because the input's rate is lower
		// than the output's counts again (a viewer sees it longer); one held
		// because the next has not come (late, stalled) does not. A whole
		// number of the rate conversion's patterns (25 or 24 fps on a
		// 30 fps grid: 6 and 5 frames) fits in the second.
		l := t - in.curPTS
		if f.img != nil {
			l = t - f.pts
		}
		k := in.nLagged % lagWindow
		if in.nLagged >= lagWindow {
			in.lagSum -= in.lags[k]
		}
		in.nLagged++
		in.lags[k] = l
		in.lagSum += l
	}
	wall := in.lastPush
	lag, off := in.lag(), in.syncOff
	in.mu.Unlock()
	if !in.c.cfg.Offline && f.img != nil && t-in.syncLog >= 2*time.Second {
		in.syncLog = t
		in.c.log.Debug().Str("input", in.id).Dur("t", t).Dur("shown_late", t-f.pts).Dur("lag", lag).
			Dur("sound_off", time.Duration(off*int64(time.Second)/media.SampleRate)).Msg("lip sync")
	}
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
