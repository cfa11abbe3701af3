// Package session runs one broadcast: from a room URL, a canvas and its
// encoding, and a set of outputs, to the finalised recording. It joins the
// room (any connector of room/registry, or the synthetic demo: room), waits
// for the first speaker if asked, records while the stop rules allow
// (duration, wall-clock end, empty room, room closed, Stop, context), and
// finalises. Status gives a snapshot at any time; events report what
// happened. Each session has its own logger, room, decoders, compositor,
// encoders and outputs: several run in one process without sharing any
// mutable state. The CLI's record command and `roomcast serve` are its two
// callers.
package session

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/consent"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/pseudo"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/registry"
	"github.com/roomcast/roomcast/room/synth"
	"github.com/roomcast/roomcast/rtmp"
)

// State is where a session is in its life.
type State string

// Session states.
const (
	StateNew       State = "new"
	StateJoining   State = "joining"
	StateWaiting   State = "waiting"   // joined, waiting for the first speaker
	StateRecording State = "recording" // outputs created, the clock runs
	StateStopping  State = "stopping"  // finalising
	StateDone      State = "done"
	StateFailed    State = "failed"
)

// EventKind names an event.
type EventKind string

// Events.
const (
	EventJoined          EventKind = "joined"
	EventStarted         EventKind = "started" // the recording began
	EventDestinationDown EventKind = "destination-down"
	EventDestinationUp   EventKind = "destination-up"
	EventRecordingReady  EventKind = "recording-ready" // the MP4 is finalised (Path)
	EventStopped         EventKind = "stopped"         // the session ended cleanly
	EventFailed          EventKind = "failed"          // the session ended with Err
)

// Event is something that happened to a session.
type Event struct {
	Kind   EventKind
	At     time.Time
	Output string // the destination, for destination events
	Path   string // the recording, for recording-ready
	Err    error
}

// Status is a snapshot of a session.
type Status struct {
	State State
	// Room is the room URL (as configured; it holds no secrets).
	Room string
	// Started is when the recording began (zero before); Elapsed is the
	// media time recorded so far.
	Started time.Time
	Elapsed time.Duration
	// Speakers is the number of participants in the room.
	Speakers int
	// SpeakerNames is what the tiles show of the names of the people on
	// the canvas now (compositor.Labels): full names, initials, or none
	// at all, as the pipeline's label style says.
	SpeakerNames []string
	// FramesOut are pictures composed; FramesDropped are input pictures
	// that never made it to the canvas (late or overtaken).
	FramesOut, FramesDropped int64
	// FramesLost are the FramesDropped that arrived too late for their
	// frame (network, decoding) rather than being left out by rate
	// conversion (an input faster than the output).
	FramesLost int64
	// FramesRepeated and FramesSkipped are output frames degraded because
	// composing and encoding could not keep real time (compositor
	// RepeatAfter, MaxLag); MaxLag is the largest lag behind the wall clock.
	FramesRepeated, FramesSkipped int64
	MaxLag                        time.Duration
	// X264Preset is the x264 preset encoding now; PresetStepDowns counts
	// its steps down because live encoding stayed slower than real time
	// despite the repeats and skips (overload stage 2).
	X264Preset      string
	PresetStepDowns int64
	// Network sums the room's receive counters over every track so far
	// (packets lost, late, repaired; NACKs, retransmissions, PLIs); Tracks
	// are the open tracks' own. Empty for demo rooms.
	Network room.TrackStats
	Tracks  []recorder.TrackNetStats
	// OutputFPS and Bitrate (bits/s, audio and video) over the last second.
	OutputFPS float64
	Bitrate   int64
	// Outputs: every output's health (queue, drops, bytes, state,
	// reconnects).
	Outputs []recorder.Health
	// Recording is the MP4's absolute path, once created.
	Recording string
	// Err is why the session failed (StateFailed).
	Err error
}

// Session is one broadcast. Create it with New, then Start; Stop asks it to
// finish, Wait waits for the finalised result.
type Session struct {
	cfg   Config
	log   zerolog.Logger
	dests []*rtmp.Destination
	demo  *synth.Config

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	events   chan Event

	mu        sync.Mutex
	state     State
	err       error
	rec       *recorder.Recorder
	sink      *recorder.RoomSink
	rm        room.Room
	started   time.Time
	recording string
	sample    rateSample
	fps       float64
	bitrate   int64
	startOnce bool
	// streamNames maps each stream URL to its output (AddStream,
	// RemoveStream); guarded by mu.
	streamNames map[string]string
	streamMu    sync.Mutex // serialises AddStream and RemoveStream
}

type rateSample struct {
	at     time.Time
	frames int64
	bytes  int64
}

// New checks cfg; nothing is joined or created before Start. Errors wrap
// ErrConfig.
func New(cfg Config) (*Session, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	s := &Session{
		cfg: cfg, log: cfg.Log, state: StateNew,
		stop: make(chan struct{}), done: make(chan struct{}), events: make(chan Event, 64),
	}
	dests, err := cfg.Outputs.resolve()
	if err != nil {
		return nil, err
	}
	s.dests = dests
	if isDemo(cfg.Room) {
		dc, err := parseDemo(cfg.Room)
		if err != nil {
			return nil, err
		}
		s.demo = &dc
	}
	return s, nil
}

// Events delivers the session's events (buffered; when nobody reads, the
// oldest are not waited for: events are dropped rather than block the
// session). It is closed after the last event.
func (s *Session) Events() <-chan Event { return s.events }

// Done is closed when the session has ended (Wait returns at once).
func (s *Session) Done() <-chan struct{} { return s.done }

// Stop asks the session to finish: the recording stops and is finalised
// (before the recording started: the session ends with nothing written).
// It returns at once; Wait waits. Safe to call any number of times.
func (s *Session) Stop() { s.stopOnce.Do(func() { close(s.stop) }) }

// Wait blocks until the session has ended (call it after Start) and returns
// why it failed (nil for a clean stop: duration, Stop, the context, an
// empty or closed room).
func (s *Session) Wait() error {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Start builds the pipeline and joins the room, returning once joined (or
// with an error wrapping ErrRoom or ErrConfig within the connect timeout);
// the session then runs in its own goroutine until Wait returns.
// Cancelling ctx later stops the session like Stop.
func (s *Session) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.startOnce {
		s.mu.Unlock()
		return fmt.Errorf("%w: Start called twice", ErrConfig)
	}
	s.startOnce = true
	s.state = StateJoining
	s.mu.Unlock()
	if err := s.start(ctx); err != nil {
		s.finish(err)
		return err
	}
	go s.run(ctx)
	return nil
}

// SetLayout switches the layout from the next picture on (an API's layout
// update mid-broadcast). Safe from any goroutine; before the recording
// starts it fails with ErrConfig.
func (s *Session) SetLayout(k layout.Kind) error {
	if _, err := layout.ParseKind(string(k)); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	s.mu.Lock()
	rec := s.rec
	s.mu.Unlock()
	if rec == nil {
		return fmt.Errorf("%w: no recording running", ErrConfig)
	}
	rec.Compositor().SetLayout(k)
	return nil
}

// trackPolicy is the consent policy with the pipeline's kinds: an
// audio-only recording never subscribes to (nor decodes) a camera, a
// video-only one no microphone.
func (s *Session) trackPolicy(pc recorder.Config) consent.Policy {
	pol := s.cfg.Consent
	pol.Tracks.NoVideo = pol.Tracks.NoVideo || pc.Compositor.NoVideo
	pol.Tracks.NoAudio = pol.Tracks.NoAudio || pc.Compositor.NoAudio
	return pol
}

func (s *Session) start(ctx context.Context) error {
	pc := s.cfg.Pipeline
	pc.Log = s.log
	pc.Compositor.Duration = s.cfg.Duration
	var sink *recorder.RoomSink
	if s.demo == nil {
		// A live room names its active speaker and its screen shares.
		pc.Compositor.ExternalSpeaker = true
		pc.Compositor.AutoScreenshare = true
		pc.Compositor.OnTiles = func(t []layout.Tile) { sink.OnTiles(t) }
	}
	rec, err := recorder.New(pc)
	if err != nil {
		return classify(ErrConfig, err)
	}
	s.mu.Lock()
	s.rec = rec
	s.mu.Unlock()
	if s.demo != nil {
		return nil
	}
	sink = recorder.NewRoomSink(rec.Compositor(), s.log)
	sink.Pseudonyms = pseudo.New() // one per session, shared with the room's logs
	sink.Heard = s.cfg.Heard
	sink.OnSelf = s.cfg.OnSelf
	rm, err := registry.Open(room.Config{
		URL: s.cfg.Room, Credentials: s.cfg.Credentials, Identity: s.cfg.Identity, Name: s.cfg.Name,
		ConnectTimeout: s.cfg.ConnectTimeout, Logger: s.log, Pseudonyms: sink.Pseudonyms,
		// Consent is enforced here, before any decoder: LiveKit exempts
		// recorders from track permissions.
		Handler: consent.New(sink, s.trackPolicy(pc), s.log),
	})
	if err != nil {
		rec.Close()
		return roomErr(err)
	}
	jctx, cancel := context.WithTimeout(ctx, s.cfg.ConnectTimeout+time.Second)
	err = rm.Start(jctx)
	cancel()
	if err != nil {
		rec.Close()
		rm.Close()
		return roomErr(err)
	}
	s.mu.Lock()
	s.sink, s.rm = sink, rm
	s.mu.Unlock()
	s.log.Info().Str("room", roomName(s.cfg.Room)).Str("identity", rm.Identity()).Msg("joined")
	s.emit(Event{Kind: EventJoined})
	return nil
}

// roomName is the last path segment of a room URL, for log lines.
func roomName(u string) string {
	for i := len(u) - 1; i >= 0; i-- {
		if u[i] == '/' {
			return u[i+1:]
		}
	}
	return u
}

// run is the session's goroutine: wait, record, stop, finalise.
func (s *Session) run(ctx context.Context) {
	rec, sink, rm := s.rec, s.sink, s.rm
	closeRoom := func() {
		if rm != nil {
			rm.Close()
		}
	}
	if w := s.cfg.WaitFirstSpeaker; w > 0 && sink != nil {
		s.setState(StateWaiting)
		timer := time.NewTimer(w)
		defer timer.Stop()
	wait:
		for {
			select {
			case e := <-sink.Events:
				if e.Kind == room.EventFirstSpeaker {
					break wait
				}
			case <-timer.C:
				rec.Close()
				closeRoom()
				s.finish(classify(ErrNoSpeaker, fmt.Errorf("no speaker published within %s", w)))
				return
			case err := <-sink.Closed:
				rec.Close()
				closeRoom()
				s.finish(roomErr(err))
				return
			case <-ctx.Done():
				rec.Close()
				closeRoom()
				s.finish(nil)
				return
			case <-s.stop:
				rec.Close()
				closeRoom()
				s.finish(nil)
				return
			}
		}
	}
	// Stopped before the recording began: nothing is created.
	select {
	case <-s.stop:
		rec.Close()
		closeRoom()
		s.finish(nil)
		return
	case <-ctx.Done():
		rec.Close()
		closeRoom()
		s.finish(nil)
		return
	default:
	}
	// Outputs only when the recording starts: a failed join or a speaker
	// who never comes leaves no empty file behind, and an ingest is not
	// held open without media.
	outs := s.cfg.Outputs
	outs.names = map[string]string{}
	path, err := outs.attach(ctx, rec, s.dests, s.log)
	s.mu.Lock()
	s.streamNames = outs.names
	s.mu.Unlock()
	if err != nil {
		rec.Close()
		closeRoom()
		s.finish(err)
		return
	}
	var demo *synth.Room
	if s.demo != nil {
		dc := *s.demo
		dc.Duration = s.cfg.Duration
		if demo, err = synth.Start(rec.Compositor(), dc); err != nil {
			rec.Close()
			s.finish(classify(ErrConfig, err))
			return
		}
	}
	if sink != nil {
		sink.SetOffset(rm.Now())
	}
	rec.Start()
	s.mu.Lock()
	s.state, s.started, s.recording = StateRecording, time.Now(), path
	s.sample = rateSample{at: time.Now()}
	s.mu.Unlock()
	s.log.Info().Msg("recording")
	s.emit(Event{Kind: EventStarted, Path: path})
	s.announce(rm, true)

	var untilC <-chan time.Time
	if !s.cfg.Until.IsZero() {
		t := time.NewTimer(time.Until(s.cfg.Until))
		defer t.Stop()
		untilC = t.C
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	down := map[string]bool{}
	var (
		emptyC  <-chan time.Time
		emptyT  *time.Timer
		endErr  error
		events  <-chan room.SessionEvent
		closedC <-chan error
		// roomGone: the room ended (nobody to announce the stop to).
		roomGone bool
	)
	if sink != nil {
		events, closedC = sink.Events, sink.Closed
	}
loop:
	for {
		select {
		case <-rec.Done():
			break loop
		case <-ctx.Done():
			s.log.Info().Msg("signal: stopping and finalising")
			break loop
		case <-s.stop:
			s.log.Info().Msg("stop requested: stopping and finalising")
			break loop
		case <-untilC:
			s.log.Info().Time("until", s.cfg.Until).Msg("end time reached: stopping")
			break loop
		case err := <-closedC:
			roomGone = true
			if errors.Is(err, room.ErrRoomClosed) {
				s.log.Info().Err(err).Msg("room closed: stopping")
			} else {
				s.log.Error().Err(err).Msg("lost the room: stopping")
				endErr = roomErr(err)
			}
			break loop
		case e := <-events:
			switch e.Kind {
			case room.EventRoomEmpty:
				if d := s.cfg.EmptyTimeout; d > 0 {
					emptyT = time.NewTimer(d)
					emptyC = emptyT.C
				}
			case room.EventRoomOccupied:
				if emptyT != nil {
					emptyT.Stop()
					emptyC = nil
				}
			}
		case <-emptyC:
			s.log.Info().Dur("empty_for", s.cfg.EmptyTimeout).Msg("room empty: stopping")
			break loop
		case <-tick.C:
			s.monitor(down)
			if path == "" && s.noOutputLeft() {
				endErr = fmt.Errorf("%w: every destination gave up and there is no recording file: nothing is being broadcast", ErrStream)
				s.log.Error().Err(endErr).Msg("no output left: stopping")
				break loop
			}
		}
	}
	if emptyT != nil {
		emptyT.Stop()
	}
	s.setState(StateStopping)
	if !roomGone {
		s.announce(rm, false) // while still in the room
	}
	err = rec.Close()
	closeRoom()
	if demo != nil {
		demo.Close()
	}
	if err != nil {
		s.finish(classify(ErrOutput, err))
		return
	}
	es := rec.Stats()
	ev := s.log.Info().Dur("duration", rec.Elapsed()).Str("x264_preset", es.X264Preset).Int64("preset_step_downs", es.PresetStepDowns).
		Int64("switch_dropped", es.SwitchDropped)
	if sink != nil {
		// The room is closed: every track has ended and been counted.
		ev = netFields(ev, sink.NetStats().Total)
	}
	ev.Msg("recording done")
	if path != "" {
		s.emit(Event{Kind: EventRecordingReady, Path: path})
	}
	s.finish(endErr)
}

// netFields adds a room's receive counters to a log line.
func netFields(e *zerolog.Event, st room.TrackStats) *zerolog.Event {
	return e.Uint64("rtp_packets", st.Packets).Uint64("rtp_lost", st.Lost).Uint64("rtp_late", st.Late).
		Uint64("rtp_queue_drops", st.QueueDrops).Uint64("rtp_repaired", st.Repaired).
		Uint64("rtp_retransmissions", st.Retransmissions).Uint64("nacks", st.NACKs).Uint64("nacked", st.NACKed).
		Uint64("plis", st.KeyframeRequests).Uint64("frames_broken", st.Broken+st.WaitingKey)
}

// announceTimeout bounds each announcement (the recording runs meanwhile;
// only the session's own loop waits).
const announceTimeout = 3 * time.Second

// announce tells the room that the recording started or stopped, where
// the connector can (room.Announcer). A token that does not allow it is a
// warning: the recording goes on.
func (s *Session) announce(rm room.Room, recording bool) {
	a, ok := rm.(room.Announcer)
	if !ok || s.cfg.Announce.Off {
		return
	}
	text := s.cfg.Announce.Stop
	if recording {
		text = s.cfg.Announce.Start
	}
	ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
	defer cancel()
	start := time.Now()
	err := a.Announce(ctx, room.Announcement{Text: text, Recording: recording})
	switch {
	case errors.Is(err, room.ErrNotPermitted):
		s.log.Warn().Err(err).Bool("recording", recording).Msg("announced only in part: the token does not allow the rest")
	case err != nil:
		s.log.Warn().Err(err).Bool("recording", recording).Msg("could not announce the recording in the room")
	default:
		s.log.Info().Bool("recording", recording).Str("text", text).Dur("took", time.Since(start)).Msg("announced in the room")
	}
}

// monitor samples the output rate and reports destinations going down or
// coming back.
func (s *Session) monitor(down map[string]bool) {
	st := s.rec.Stats()
	now := time.Now()
	bytes := st.VideoBytes + st.AudioBytes
	s.mu.Lock()
	if dt := now.Sub(s.sample.at).Seconds(); dt > 0 {
		s.fps = float64(st.VideoFrames-s.sample.frames) / dt
		s.bitrate = int64(float64(bytes-s.sample.bytes) * 8 / dt)
	}
	s.sample = rateSample{at: now, frames: st.VideoFrames, bytes: bytes}
	s.mu.Unlock()
	for _, h := range s.rec.Health() {
		if h.Critical {
			continue
		}
		isDown := h.State == "reconnecting" || h.State == "failed"
		if isDown && !down[h.Name] {
			s.emit(Event{Kind: EventDestinationDown, Output: h.Name, Err: h.Err})
		} else if !isDown && down[h.Name] {
			s.emit(Event{Kind: EventDestinationUp, Output: h.Name})
		}
		down[h.Name] = isDown
	}
}

// noOutputLeft reports whether every output has failed for good (a
// stream-only broadcast whose destinations all gave up reconnecting).
func (s *Session) noOutputLeft() bool {
	hs := s.rec.Health()
	for _, h := range hs {
		if h.State != "failed" && h.State != "closed" {
			return false
		}
	}
	return len(hs) > 0
}

func (s *Session) setState(st State) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

func (s *Session) emit(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
	select {
	case s.events <- e:
	default:
	}
}

// finish records the end and closes Done.
func (s *Session) finish(err error) {
	s.mu.Lock()
	s.err = err
	if err != nil {
		s.state = StateFailed
	} else {
		s.state = StateDone
	}
	s.mu.Unlock()
	if err != nil {
		s.emit(Event{Kind: EventFailed, Err: err})
	} else {
		s.emit(Event{Kind: EventStopped})
	}
	close(s.events)
	close(s.done)
}

// Status returns a snapshot. Safe from any goroutine, at any time.
func (s *Session) Status() Status {
	s.mu.Lock()
	st := Status{
		State: s.state, Room: s.cfg.Room, Started: s.started, Recording: s.recording,
		OutputFPS: s.fps, Bitrate: s.bitrate, Err: s.err,
	}
	rec, sink := s.rec, s.sink
	s.mu.Unlock()
	if rec != nil {
		cs := rec.Compositor().Stats()
		st.FramesOut, st.FramesDropped, st.FramesLost = cs.VideoFrames, cs.DroppedVideo, cs.LostVideo
		st.FramesRepeated, st.FramesSkipped, st.MaxLag = cs.RepeatedVideo, cs.SkippedVideo, cs.MaxLag
		es := rec.Stats()
		st.X264Preset, st.PresetStepDowns = es.X264Preset, es.PresetStepDowns
		// Pictures left out at a preset switch are skipped frames too.
		st.FramesSkipped += es.SwitchDropped
		st.Elapsed = rec.Elapsed()
		st.Outputs = rec.Health()
		st.SpeakerNames = rec.Compositor().Labels()
	}
	switch {
	case sink != nil:
		st.Speakers = sink.Participants()
		ns := sink.NetStats()
		st.Network, st.Tracks = ns.Total, ns.Tracks
	case s.demo != nil && rec != nil:
		st.Speakers = s.demo.Speakers
	}
	return st
}
