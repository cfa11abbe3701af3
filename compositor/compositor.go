// Package compositor turns many irregular inputs into one steady output: it
// emits a canvas picture every 1/FPS and a block of mixed audio every
// AudioBlock samples, from one media clock, whatever the inputs do. Inputs
// push decoded pictures and sound from their own goroutines with their own
// timestamps; a late or silent input is held, then replaced by a placeholder,
// never waited for (live mode). In offline mode the same engine runs on a
// virtual clock as fast as the inputs allow.
//
// It is pure Go: scaling is delegated to an injected Scaler (av's swscale in
// production), so layout, timing and mixing test without cgo.
package compositor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
)

// ErrNoInputs is returned by an offline run that was given nothing to compose.
var ErrNoInputs = errors.New("compositor: no inputs")

// Scaler resizes a picture. Scale fills all of dst from all of src (src may
// be a sub-image view). It is only called from the compositor's goroutine.
type Scaler interface {
	Scale(dst, src *media.Image) error
}

// Sink receives the composed output, always from the compositor's goroutine,
// in time order. The picture is only valid during the call. An error stops
// the compositor and is returned by Wait.
type Sink interface {
	WriteVideo(img *media.Image, pts time.Duration) error
	WriteAudio(a media.Audio, pts time.Duration) error
}

// Config configures a Compositor. Zero values take the documented defaults.
type Config struct {
	// Width and Height of the canvas. They default to 1280x720.
	Width, Height int
	// FPS is the output frame rate. It defaults to 30.
	FPS int
	// Layout defaults to grid.
	Layout layout.Kind
	// AutoScreenshare switches to the screenshare layout while a screen
	// source is visible. It defaults to false; the live recorder sets it.
	AutoScreenshare bool
	// Fit defaults to letterbox.
	Fit layout.Fit
	// Gap between tiles in pixels. It defaults to 0.
	Gap int
	// Background colour of the canvas. It defaults to a dark grey.
	Background *media.YUV
	// BackgroundImage, when set, is scaled to the canvas and shown behind the tiles.
	BackgroundImage *media.Image
	// Labels is what tiles and placeholders show of a participant's name.
	// It defaults to LabelName.
	Labels LabelStyle
	// NoLabels is Labels = LabelNone (kept for --no-labels).
	NoLabels bool
	// StallTimeout is how long a tile holds an input's last picture before it
	// shows the placeholder. It defaults to 2 s.
	StallTimeout time.Duration
	// Offline runs on a virtual clock: output is produced as fast as every
	// input has delivered data up to the output time.
	Offline bool
	// OfflineAhead bounds the queues offline: an input's Push blocks while
	// its data is this far ahead of the output clock (unless the output
	// waits for that input). It defaults to DefaultOfflineAhead.
	OfflineAhead time.Duration
	// Latency is the live playout delay: a picture stamped t is shown at
	// start+t+Latency, so inputs that arrive a little late still make their
	// frame. It defaults to 200 ms. Unused offline.
	Latency time.Duration
	// RepeatAfter (live): when the clock is this late at a video frame
	// (composing or encoding cannot keep real time), the frame repeats the
	// previous canvas instead of composing a new one: the output keeps its
	// exact frame rate and timestamps, the effective picture rate drops, and
	// the encoder gets an identical picture (mostly skipped blocks, several
	// times cheaper to encode). A new picture is still composed at least
	// every fourth frame. It defaults to DefaultRepeatAfter or two frame
	// periods, whichever is longer: a short stall (another process taking
	// the CPU for a moment, one slow keyframe) is absorbed by catching up,
	// and only lasting overload costs pictures. Negative: never (the clock
	// falls behind instead).
	RepeatAfter time.Duration
	// MaxLag (live) is the last resort: when the clock is this late at a
	// video frame even with repeats, the frame is skipped (not composed or
	// encoded; in the file the previous picture lasts one frame longer),
	// so media time never trails the wall clock by more than about MaxLag.
	// Audio is never skipped. It defaults to 1 s; negative: never skip.
	MaxLag time.Duration
	// Duration stops the output after this much media time. Zero means until
	// Close (live) or until every input has ended (offline).
	Duration time.Duration
	// NoVideo makes an audio-only output: no picture is laid out, drawn or
	// handed to the sink, and inputs' pictures are dropped on arrival (a
	// live room should not even decode them: see room.TrackSelector). It
	// defaults to false.
	NoVideo bool
	// NoAudio makes a video-only output: no sound reaches the sink. With
	// ExternalSpeaker the mixer does not run at all and inputs' sound is
	// dropped on arrival; without, it still measures each input's loudness
	// (the built-in active-speaker detection). It defaults to false.
	// NoVideo and NoAudio together are refused.
	NoAudio bool
	// AudioBlock is the number of sample frames per audio block. It defaults
	// to 1024, one AAC frame.
	AudioBlock int
	// ExternalSpeaker disables the built-in loudness-based active speaker
	// detection; SetActiveSpeaker then decides (LiveKit sends its own).
	ExternalSpeaker bool
	// OnTiles, when set, is told the tiles of every new layout, from the
	// compositor's goroutine (so it must not block): a live room uses it to
	// ask each track for the simulcast layer that fits its tile, and for a
	// keyframe when a tile grows.
	OnTiles func(tiles []layout.Tile)
	// NoHighlight turns off the frame drawn around the active speaker's
	// tile in the grid layout.
	NoHighlight bool
	// OnFrame, when set, is called from the compositor's goroutine before
	// each video frame at t is laid out, so a scripted timeline (a recorded
	// meeting's talking events) can call SetActiveSpeaker or SetLayout for
	// exactly that instant. It must not block.
	OnFrame func(t time.Duration)
	// Scaler is required.
	Scaler Scaler
	// Log defaults to a disabled logger.
	Log zerolog.Logger
	// now and sleep are the clock; tests inject them.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration)
}

// Defaults.
const (
	DefaultWidth        = 1280
	DefaultHeight       = 720
	DefaultFPS          = 30
	DefaultStallTimeout = 2 * time.Second
	DefaultLatency      = 200 * time.Millisecond
	DefaultAudioBlock   = 1024
	DefaultMaxLag       = time.Second
	DefaultRepeatAfter  = 250 * time.Millisecond
)

// drainMax bounds what a live output still makes after Close.
const drainMax = 2 * time.Second

// offlineMargin: an offline input counts as caught up to t once it has
// delivered data past t+offlineMargin (or ended); it covers decoder reorder
// delay and imperfect interleaving in files.
const offlineMargin = 500 * time.Millisecond

// minPictureEvery: under overload a new picture is still composed at least
// every this many frames (a quarter of the frame rate) while the lag is
// under MaxLag, so the picture moves on rather than freezing.
const minPictureEvery = 4

// DefaultOfflineAhead: each queued 640x360 picture is 345 kB, so 8 pictures
// per input rather than a second's 30 saved ~45 MB of peak RSS (heap plus GC
// headroom) composing four inputs, while leaving each decoder a quarter of a
// second of slack to run in parallel with the encoder.
const DefaultOfflineAhead = 250 * time.Millisecond

func (c *Config) setDefaults() error {
	if c.OfflineAhead <= 0 {
		c.OfflineAhead = DefaultOfflineAhead
	}
	if c.NoLabels {
		c.Labels = LabelNone
	}
	if c.Labels < LabelName || c.Labels > LabelNone {
		return fmt.Errorf("compositor: label style %d", c.Labels)
	}
	if c.Width == 0 && c.Height == 0 {
		c.Width, c.Height = DefaultWidth, DefaultHeight
	}
	if c.Width < 16 || c.Height < 16 || c.Width > 7680 || c.Height > 4320 {
		return fmt.Errorf("compositor: canvas %dx%d out of range (16x16 to 7680x4320)", c.Width, c.Height)
	}
	c.Width, c.Height = c.Width&^1, c.Height&^1
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.FPS < 1 || c.FPS > 120 {
		return fmt.Errorf("compositor: frame rate %d out of range (1 to 120)", c.FPS)
	}
	if c.NoVideo && c.NoAudio {
		return fmt.Errorf("compositor: no video and no audio: nothing to produce")
	}
	if c.Layout == "" {
		c.Layout = layout.Grid
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.Latency == 0 {
		c.Latency = DefaultLatency
	}
	if c.AudioBlock == 0 {
		c.AudioBlock = DefaultAudioBlock
	}
	if c.RepeatAfter == 0 {
		c.RepeatAfter = max(DefaultRepeatAfter, 2*time.Second/time.Duration(c.FPS))
	}
	if c.MaxLag == 0 {
		c.MaxLag = DefaultMaxLag
	}
	if c.Background == nil {
		bg := media.RGB(0x20, 0x22, 0x28)
		c.Background = &bg
	}
	if c.Scaler == nil {
		return errors.New("compositor: no scaler")
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	return nil
}

// Stats are counters for logs and tests.
type Stats struct {
	VideoFrames  int64
	AudioBlocks  int64
	DroppedVideo int64 // pictures inputs pushed that were never shown
	// LostVideo are the DroppedVideo that were lost rather than left out
	// by rate conversion: pictures that arrived after the output frame
	// nearest to their instant had been composed (later than the playout
	// Latency), or overflowed a live queue. DroppedVideo - LostVideo are
	// pictures an input sent faster than the output frame rate.
	LostVideo    int64
	DroppedAudio int64 // sample frames never mixed: overflowed a live queue, or past when taken
	// SyncAdjusted (live) are the sample frames of sound added (stretched)
	// or removed (squeezed) to keep each input's sound with its pictures
	// as they are shown (Input.PushAudio).
	SyncAdjusted int64
	// LateAudio (live) are the sound chunks that came after their place
	// had been mixed (a sender whose audio clock runs slow, a network or
	// CPU stall longer than the Latency): each is moved later, to just
	// ahead of the mixer, instead of being lost, and the input's sound
	// stays that much later (Input.PushAudio).
	LateAudio int64
	Layouts   int64 // layout changes
	// Overload (live): output frames that repeated the previous canvas
	// (RepeatAfter) or were skipped (MaxLag), and the largest lag of the
	// clock behind real time seen at a frame.
	RepeatedVideo int64
	SkippedVideo  int64
	MaxLag        time.Duration
}

// Compositor is the clock-driven engine. Create it with New, add inputs, then
// Start; Close stops it and waits.
type Compositor struct {
	cfg  Config
	sink Sink
	log  zerolog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	err    error

	mu       sync.Mutex
	inputs   []*Input // join order
	active   string   // external active speaker
	kind     layout.Kind
	clock    time.Duration // output media time, for offline back-pressure
	waitFor  time.Duration // what waitReady waits for (offline)
	advance  chan struct{} // closed and replaced whenever clock moves
	wake     chan struct{} // inputs poke the offline loop when data arrives
	started  bool
	closed   bool
	closedAt time.Time // when Close was called (live: the output catches up to it)
	seq      int
	stats    Stats
	autoSpk  speakerDetector
	renderer *renderer
	mixer    *mixer
	// mixed is the first sample frame not yet mixed (live: a chunk
	// queued before it would never be heard). Written by the compositor
	// goroutine, read by pushers.
	mixed atomic.Int64
	// startNano is the wall clock (cfg.now) when the live loop started,
	// in Unix nanoseconds; 0 before.
	startNano atomic.Int64
}

// New checks cfg and builds a compositor that writes to sink.
func New(cfg Config, sink Sink) (*Compositor, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Compositor{
		cfg: cfg, sink: sink, log: cfg.Log.With().Str("component", "compositor").Logger(),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		kind: cfg.Layout, advance: make(chan struct{}), wake: make(chan struct{}, 1),
	}
	r, err := newRenderer(&c.cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	c.renderer = r
	c.mixer = newMixer(cfg.AudioBlock)
	return c, nil
}

// Config returns the effective configuration (defaults applied).
func (c *Compositor) Config() Config { return c.cfg }

// InputOptions describe an input when it is added.
type InputOptions struct {
	// Screen marks a screen share (it gets the large tile in the screenshare layout).
	Screen bool
	// Start is the media time from which an offline input is on stage;
	// before it the input has no tile. Live inputs are on stage at once.
	Start time.Duration
	// NoVideo: the input only ever has sound; it shows its placeholder.
	NoVideo bool
	// NoAudio: the input never has sound (an offline file without an audio
	// stream), so its pictures alone say it has caught up.
	NoAudio bool
	// End is the media time from which an offline input leaves the stage
	// (zero: when its data ends). Until End an input whose data ended early
	// holds its last picture, then shows its placeholder.
	End time.Duration
	// Hidden: the input is heard but never gets a tile (a meeting's mixed
	// audio track).
	Hidden bool
}

// AddInput adds a participant (or a screen share). The ID must be unique;
// the name labels the tile. Safe from any goroutine, before or after Start.
func (c *Compositor) AddInput(id, name string, opt InputOptions) *Input {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	in := &Input{c: c, id: id, name: name, label: c.cfg.Labels.label(name), opt: opt, order: c.seq, added: c.cfg.now()}
	c.inputs = append(c.inputs, in)
	// Names are personal data: at debug level only.
	// Live input IDs are identities: at debug level too.
	c.log.Info().Bool("screen", opt.Screen).Msg("input added")
	c.log.Debug().Str("input", id).Str("name", name).Msg("input name")
	return in
}

// SetActiveSpeaker names the active speaker (an input ID) for the speaker and
// single layouts. With ExternalSpeaker unset, the loudness detector may
// change it again.
func (c *Compositor) SetActiveSpeaker(id string) {
	c.mu.Lock()
	c.active = id
	c.mu.Unlock()
}

// SetLayout changes the layout from the next frame on.
func (c *Compositor) SetLayout(k layout.Kind) {
	c.mu.Lock()
	c.kind = k
	c.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (c *Compositor) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Start begins producing output.
func (c *Compositor) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	go c.run()
}

// Close stops the output and waits for the loop to end. It is idempotent and
// returns the error that ended the run, if any. A live output behind real
// time first makes the frames and sound that were due before the Close
// (up to drainMax), as fast as it can; offline, Close stops at once.
func (c *Compositor) Close() error {
	c.mu.Lock()
	started := c.started
	if !c.closed {
		c.closed, c.closedAt = true, c.cfg.now()
	}
	c.mu.Unlock()
	c.cancel()
	if !started {
		return nil
	}
	<-c.done
	return c.err
}

// Done is closed when the output has ended (Duration reached, every offline
// input ended, a sink error, or Close).
func (c *Compositor) Done() <-chan struct{} { return c.done }

// Wait blocks until the run ends and returns its error.
func (c *Compositor) Wait() error {
	<-c.done
	return c.err
}

// Elapsed is the media time produced so far.
func (c *Compositor) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clock
}

func (c *Compositor) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run is the media clock: it interleaves video frames and audio blocks in
// time order.
func (c *Compositor) run() {
	defer close(c.done)
	defer c.cancel()
	var (
		frame, block int64
		composed     int64 // the latest frame composed (not repeated or skipped)
		start        = c.cfg.now()
		fps          = int64(c.cfg.FPS)
		blk          = int64(c.cfg.AudioBlock)
		drainFrom    = time.Duration(-1) // live: the output instant when Close came
	)
	c.startNano.Store(start.UnixNano())
	c.log.Info().Int("width", c.cfg.Width).Int("height", c.cfg.Height).Int("fps", c.cfg.FPS).
		Bool("offline", c.cfg.Offline).Str("layout", string(c.kind)).Msg("compositor started")
	for {
		tv := time.Duration(frame * int64(time.Second) / fps)
		if c.cfg.NoVideo {
			tv = math.MaxInt64 // the audio blocks are the clock
		}
		ta := time.Duration(block * blk * int64(time.Second) / media.SampleRate)
		if c.cfg.NoAudio && c.cfg.ExternalSpeaker {
			ta = math.MaxInt64 // no sound and no loudness to measure: no mixer
		}
		t := min(tv, ta)
		if c.cfg.Duration > 0 && t >= c.cfg.Duration {
			break
		}
		var lag time.Duration
		if c.cfg.Offline {
			ok, end := c.waitReady(t + time.Duration(blk*int64(time.Second)/media.SampleRate))
			if !ok {
				c.setErr(c.ctx.Err())
				break
			}
			if end >= 0 && t >= end && c.cfg.Duration == 0 {
				break
			}
		} else {
			due := start.Add(t + c.cfg.Latency)
			if d := due.Sub(c.cfg.now()); d > 0 {
				c.cfg.sleep(c.ctx, d)
			}
			if c.ctx.Err() != nil {
				// Closed. A loop behind real time still makes what was
				// due before the Close (at most drainMax of it): a stop
				// keeps everything that came in time.
				c.mu.Lock()
				closedAt := c.closedAt
				c.mu.Unlock()
				if drainFrom < 0 {
					drainFrom = t
				}
				if closedAt.IsZero() || due.After(closedAt) || t-drainFrom >= drainMax {
					break
				}
			}
			lag = c.cfg.now().Sub(due)
		}
		var err error
		if tv <= ta {
			switch {
			case frame == 0 || c.cfg.RepeatAfter < 0 || lag < c.cfg.RepeatAfter ||
				((c.cfg.MaxLag < 0 || lag < c.cfg.MaxLag) && frame-composed >= minPictureEvery):
				err = c.renderVideo(tv)
				composed = frame
			case c.cfg.MaxLag < 0 || lag < c.cfg.MaxLag || (c.cfg.Duration > 0 && time.Duration((frame+2)*int64(time.Second)/fps) >= c.cfg.Duration):
				// (The last two frames are never skipped: the picture
				// ends with the sound, and a muxer that gives the last
				// picture the previous one's duration gives it one frame.)
				err = c.repeatVideo(tv, lag)
			default:
				c.skipVideo(lag)
			}
			frame++
		} else {
			err = c.mixAudio(ta, block*blk)
			block++
			c.mixed.Store(block * blk)
		}
		if err != nil {
			c.setErr(err)
			break
		}
		c.setClock(t)
	}
	st := c.Stats()
	c.log.Info().Int64("frames", st.VideoFrames).Int64("audio_blocks", st.AudioBlocks).
		Int64("dropped_video", st.DroppedVideo).Int64("lost_video", st.LostVideo).Int64("dropped_audio_samples", st.DroppedAudio).
		Int64("sync_adjusted_samples", st.SyncAdjusted).Int64("late_audio_chunks", st.LateAudio).
		Int64("repeated_video", st.RepeatedVideo).Int64("skipped_video", st.SkippedVideo).
		Dur("max_lag", st.MaxLag).Msg("compositor stopped")
}

func (c *Compositor) setErr(err error) {
	if err != nil && !errors.Is(err, context.Canceled) && c.err == nil {
		c.err = err
	}
}

func (c *Compositor) setClock(t time.Duration) {
	c.mu.Lock()
	c.clock = t
	close(c.advance)
	c.advance = make(chan struct{})
	c.mu.Unlock()
}

// waitReady blocks until every input has data up to t (offline mode). It
// returns the end of all media when every input has ended (else -1), and
// false when closed.
func (c *Compositor) waitReady(t time.Duration) (bool, time.Duration) {
	// Throttled pushers re-check whether we now wait for them.
	c.mu.Lock()
	if c.waitFor != t {
		c.waitFor = t
		close(c.advance)
		c.advance = make(chan struct{})
	}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		inputs := append([]*Input(nil), c.inputs...)
		c.mu.Unlock()
		if len(inputs) == 0 {
			c.setErr(ErrNoInputs)
			return false, 0
		}
		ready, end := true, time.Duration(0)
		for _, in := range inputs {
			r, e := in.readyFor(t)
			if !r {
				ready = false
			}
			if e < 0 {
				end = -1
			} else if end >= 0 {
				end = max(end, e)
			}
		}
		if ready {
			return true, end
		}
		select {
		case <-c.ctx.Done():
			return false, 0
		case <-c.wake:
		}
	}
}

// Labels returns what the tiles on stage now show of their participants'
// names (Config.Labels: full names, initials, or nothing), in join order,
// once each: screen shares and hidden inputs are left out, and so is every
// name under LabelNone. It is what a viewer of the picture can read, so a
// host's page may show it without revealing more. Safe from any goroutine.
func (c *Compositor) Labels() []string {
	t := c.Elapsed()
	out := []string{}
	seen := map[string]bool{}
	for _, in := range c.stage(t) {
		if in.opt.Screen || in.opt.Hidden {
			continue
		}
		if l := in.Label(); l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

// stage returns the inputs that have a tile at t, in join order.
func (c *Compositor) stage(t time.Duration) []*Input {
	c.mu.Lock()
	all := append([]*Input(nil), c.inputs...)
	c.mu.Unlock()
	out := all[:0]
	for _, in := range all {
		if in.onStage(t) {
			out = append(out, in)
		}
	}
	return out
}
