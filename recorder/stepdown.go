package recorder

import "time"

// Live overload degrades in a documented order (README "Overload"):
//  1. the compositor repeats the previous picture once the clock is late,
//     and (stream preset) skips frames once MaxLag late, so media time keeps
//     to the wall clock at once;
//  2. when that lasts, the encoder steps its x264 preset down at the next
//     keyframe (stepDown decides, av.VideoEncoder.SwitchX264Preset
//     switches): one step after two seconds with a tenth of the frames
//     degraded, at once after one second with half of them, two steps with
//     three quarters; again while the overload lasts, down to ultrafast;
//  3. warnings with figures: once when degradation starts (compositor), and
//     at each step down (here); status and metrics count both.
// A switch drains the old encoder (its lookahead: 5 frames at 30 fps in
// the stream preset), a stall the compositor then catches up by skipping.
// The preset is never stepped back up within a run: a broadcast that was
// overloaded once is likely to be again (the room fills up, another
// broadcast starts), and a switch costs a keyframe's worth of quality.

// Defaults of the step-down judgement.
const (
	// stepWindow is the media time judged at once.
	stepWindow = time.Second
	// stepDegraded: a window is overloaded when at least this share of
	// its frames were repeated or skipped; two such windows in a row ask
	// for a faster preset.
	stepDegraded = 0.10
	// stepSevere: a window with this share degraded asks at once, and for
	// two steps when stepSevere2 (encoding is several times too slow:
	// each switch drains the old encoder, so fewer switches cost less).
	stepSevere  = 0.5
	stepSevere2 = 0.75
	// stepEncodeShare: only when the encoder took at least this share of
	// the window's wall time does a faster preset help; otherwise the
	// repeats are composing's cost, or the catching up of a lag built
	// before (repeated pictures encode cheaply).
	stepEncodeShare = 0.25
)

// stepDown judges, once per window of media time, whether live encoding
// stays slower than real time: frames degraded while the encoder takes a
// good part of the time. It is pure: fed each encoded frame's
// presentation time, the compositor's degraded-frame counter and the
// encoder's wall time for it. After asking, it waits for the switch
// (switched) and judges again from the window after it: the lag built up
// before is still being caught up in the window it happens in.
type stepDown struct {
	fps int

	started  bool
	start    time.Duration // the window's first pts
	degraded int64         // the counter at the window's start
	frames   int64         // frames encoded in the window
	work     time.Duration // encode time in the window
	over     int           // overloaded windows in a row
	waiting  bool          // asked; the switch has not happened yet
	cooldown bool          // the window of the switch is not judged

	// Figures of the last judged window, for the log line.
	lastShare  float64
	lastWork   time.Duration // mean encode time per frame
	lastEncode float64       // encode time / window length
}

// frame records one encoded frame; it reports how many presets to step
// down now (0: none).
func (s *stepDown) frame(pts time.Duration, degraded int64, work time.Duration) int {
	if !s.started {
		s.started, s.start, s.degraded = true, pts, degraded
	}
	if pts-s.start < stepWindow {
		s.frames++
		s.work += work
		return 0
	}
	// A window ended: judge it against the frames it should have held
	// (skipped ones never reach the encoder).
	want := float64(pts-s.start) * float64(s.fps) / float64(time.Second)
	share := float64(degraded-s.degraded) / max(want, 1)
	s.lastShare = share
	s.lastWork = s.work / time.Duration(max(s.frames, 1))
	s.lastEncode = float64(s.work) / float64(pts-s.start)
	s.start, s.degraded, s.frames, s.work = pts, degraded, 1, work
	if s.waiting {
		return 0
	}
	if s.cooldown {
		s.cooldown = false
		return 0
	}
	if share < stepDegraded || s.lastEncode < stepEncodeShare {
		s.over = 0
		return 0
	}
	s.over++
	if s.over < 2 && share < stepSevere {
		return 0
	}
	s.over, s.waiting = 0, true
	if share >= stepSevere2 {
		return 2
	}
	return 1
}

// switched tells that the encoder switched presets (at pts): the window
// it falls in is not judged.
func (s *stepDown) switched() {
	s.waiting, s.cooldown = false, true
}
