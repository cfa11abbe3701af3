package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/hls/watch"
	"github.com/roomcast/roomcast/mp4"
)

// ErrAdmission: the machine cannot run one more broadcast in real time.
var ErrAdmission = errors.New("not enough CPU for another broadcast")

// BroadcastRequest is what a host asks for (page form or API body).
type BroadcastRequest struct {
	Room         string   `json:"room"`
	Layout       string   `json:"layout"`
	Size         string   `json:"size"`
	Record       *bool    `json:"record"`
	Destinations []string `json:"destinations"` // saved names or rtmp(s):// URLs
	StartAt      string   `json:"start_at"`     // RFC 3339; empty: now
	Duration     string   `json:"duration"`     // Go duration, e.g. 90m; empty: until stopped
	// HLS publishes the broadcast on a watch page at an unguessable URL
	// (watch_url in the answer); HLSReplay (default true) keeps it as the
	// replay after the end; WatchPasscode optionally guards the page.
	HLS           bool   `json:"hls"`
	HLSReplay     *bool  `json:"hls_replay"`
	WatchPasscode string `json:"watch_passcode"`
	// Title is the watch page's heading (default: "Live broadcast").
	Title string `json:"title"`
	// Labels is what the tiles, the status and the recordings list show of
	// the speakers' names: name (default), initials or none.
	Labels string `json:"labels"`
}

// BroadcastView is a broadcast as the API and the page show it.
type BroadcastView struct {
	ID           string        `json:"id"`
	Room         string        `json:"room"`
	Layout       string        `json:"layout"`
	Size         string        `json:"size"`
	Record       bool          `json:"record"`
	Destinations []string      `json:"destinations"`
	State        string        `json:"state"`
	Error        string        `json:"error,omitempty"`
	StartAt      string        `json:"start_at,omitempty"`
	Started      string        `json:"started,omitempty"`
	Ended        string        `json:"ended,omitempty"`
	Elapsed      float64       `json:"elapsed_seconds"`
	Speakers     int           `json:"speakers"`
	FPS          float64       `json:"output_fps"`
	BitrateKbps  float64       `json:"bitrate_kbps"`
	FramesOut    int64         `json:"frames_out"`
	Dropped      int64         `json:"dropped_frames"`
	Degraded     int64         `json:"degraded_frames"`
	BytesWritten int64         `json:"bytes_written"`
	Network      NetworkStatus `json:"network"`
	// X264Preset and PresetStepDowns: the encoder's preset now and its
	// steps down under overload (serve.Status).
	X264Preset      string              `json:"x264_preset,omitempty"`
	PresetStepDowns int64               `json:"preset_step_downs"`
	DestStates      []DestinationStatus `json:"destination_states"`
	RecordingID     string              `json:"recording_id,omitempty"`
	// SpeakerNames: while live, what the tiles show of the names of the
	// people on the picture; afterwards, of everyone who was (per Labels).
	SpeakerNames []string `json:"speaker_names"`
	Labels       string   `json:"labels"`
	Title        string   `json:"title,omitempty"`
	// HLS broadcasts have a watch page: WatchURL (a capability: whoever
	// has it can watch) and the approximate number of Viewers now.
	HLS       bool   `json:"hls"`
	HLSReplay bool   `json:"hls_replay,omitempty"`
	WatchURL  string `json:"watch_url,omitempty"`
	Passcode  bool   `json:"watch_passcode_set,omitempty"`
	Viewers   int    `json:"viewers"`
}

// live is a running broadcast.
type live struct {
	row      broadcastRow
	b        Broadcast
	recID    string
	recPath  string
	dests    []Destination
	done     chan struct{}
	shutdown atomic.Bool // stopped by server shutdown
	stopBy   atomic.Value
	watchTok string // the watch page's token (HLS broadcasts)
	hlsDir   string
	passcode string

	mu        sync.Mutex
	last      Status
	lastAt    time.Time
	fps, kbps float64
	destState map[string]string
	// dropHist holds the dropped-frame count of the last samples (one a
	// second); droppedRecent is how many were lost over them.
	dropHist      []int64
	droppedRecent int64
	// names is everyone the picture has named so far, in order of
	// appearance (what the tiles showed, per the label style).
	names    []string
	namesSet map[string]bool
}

// noteNames adds the names on the picture now to those seen.
func (l *live) noteNames(now []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.noteNamesLocked(now)
}

func (l *live) noteNamesLocked(now []string) {
	if l.namesSet == nil {
		l.namesSet = map[string]bool{}
	}
	for _, n := range now {
		if !l.namesSet[n] {
			l.namesSet[n] = true
			l.names = append(l.names, n)
		}
	}
}

func parseSize(s string) (int, int, error) {
	switch strings.ToLower(s) {
	case "", "720p":
		return 1280, 720, nil
	case "1080p":
		return 1920, 1080, nil
	case "360p":
		return 640, 360, nil
	}
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || w < 64 || h < 64 || w > 3840 || h > 2160 || w%2 == 1 || h%2 == 1 {
		return 0, 0, fmt.Errorf("%w: size %q (want 720p, 1080p or WIDTHxHEIGHT, even, up to 3840x2160)", ErrSpec, s)
	}
	return w, h, nil
}

var layouts = []string{"grid", "speaker", "single", "screenshare"}

// redactURL shows an RTMP URL without its last path segment (the key).
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "(invalid URL)"
	}
	p.User = nil
	p.RawQuery = ""
	path := strings.TrimSuffix(p.Path, "/")
	if i := strings.LastIndex(path, "/"); i > 0 {
		path = path[:i] + "/***"
	}
	p.Path = path
	return p.String()
}

func checkRTMPURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "rtmp" && p.Scheme != "rtmps") || p.Host == "" {
		return fmt.Errorf("%w: destination %s is not an rtmp:// or rtmps:// URL", ErrSpec, redactURL(u))
	}
	return nil
}

// resolveDestinations turns names and URLs into destinations with keys.
func (s *Server) resolveDestinations(u user, items []string) ([]Destination, []string, error) {
	saved, err := s.st.destinations(u.ID)
	if err != nil {
		return nil, nil, err
	}
	var out []Destination
	var names []string
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if strings.Contains(it, "://") {
			if err := checkRTMPURL(it); err != nil {
				return nil, nil, err
			}
			out = append(out, Destination{Name: redactURL(it), URL: it})
			names = append(names, redactURL(it))
			continue
		}
		found := false
		for _, d := range saved {
			if d.Name == it {
				key, err := s.keys.open(d.KeyEnc, "dest:"+strconv.FormatInt(d.ID, 10))
				if err != nil {
					return nil, nil, err
				}
				out = append(out, Destination{Name: d.Name, URL: strings.TrimSuffix(d.URL, "/") + "/" + key})
				names = append(names, d.Name)
				found = true
				break
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("%w: no saved destination named %q", ErrSpec, it)
		}
	}
	return out, names, nil
}

// StartBroadcast validates a request and starts it now or schedules it.
func (s *Server) StartBroadcast(u user, req BroadcastRequest) (BroadcastView, error) {
	room := strings.TrimSpace(req.Room)
	if room == "" {
		return BroadcastView{}, fmt.Errorf("%w: the room URL is empty", ErrSpec)
	}
	if req.Layout == "" {
		req.Layout = "grid"
	}
	okLayout := false
	for _, l := range layouts {
		okLayout = okLayout || l == req.Layout
	}
	if !okLayout {
		return BroadcastView{}, fmt.Errorf("%w: layout %q (want grid, speaker, single or screenshare)", ErrSpec, req.Layout)
	}
	w, h, err := parseSize(req.Size)
	if err != nil {
		return BroadcastView{}, err
	}
	record := req.Record == nil || *req.Record
	dests, names, err := s.resolveDestinations(u, req.Destinations)
	if err != nil {
		return BroadcastView{}, err
	}
	if !record && len(dests) == 0 && !req.HLS {
		return BroadcastView{}, fmt.Errorf("%w: nothing to do: turn recording on, publish a watch page or pick a destination", ErrSpec)
	}
	if _, err := compositor.ParseLabelStyle(req.Labels); err != nil {
		return BroadcastView{}, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	if len(req.Title) > 200 || len(req.WatchPasscode) > 200 {
		return BroadcastView{}, fmt.Errorf("%w: title or passcode longer than 200 characters", ErrSpec)
	}
	if req.WatchPasscode != "" && !req.HLS {
		return BroadcastView{}, fmt.Errorf("%w: a watch passcode needs the watch page (hls) on", ErrSpec)
	}
	var dur time.Duration
	if req.Duration != "" {
		if dur, err = time.ParseDuration(req.Duration); err != nil || dur <= 0 {
			return BroadcastView{}, fmt.Errorf("%w: duration %q (want e.g. 90m)", ErrSpec, req.Duration)
		}
	}
	now := s.now()
	startAt := now
	if req.StartAt != "" {
		if startAt, err = time.Parse(time.RFC3339, req.StartAt); err != nil {
			return BroadcastView{}, fmt.Errorf("%w: start time %q (want RFC 3339, e.g. 2026-12-01T18:00:00Z)", ErrSpec, req.StartAt)
		}
	}
	row := broadcastRow{ID: "b_" + randomToken(9), UserID: u.ID, Room: room, Layout: req.Layout, Width: w, Height: h,
		Record: record, DestNames: strings.Join(names, "\n"), StartAt: startAt, Duration: dur, State: "scheduled", Created: now, Stats: "{}",
		HLS: req.HLS, HLSReplay: req.HLSReplay == nil || *req.HLSReplay, Title: strings.TrimSpace(req.Title), Labels: req.Labels}
	if req.HLS {
		// The token is a capability the host hands out: stored sealed (to
		// show it again) and hashed (to find the broadcast by it).
		tok := watch.NewToken()
		row.WatchHash = tokenHash(tok)
		row.WatchEnc = s.keys.sealString(tok, "watch:"+row.ID)
		if req.WatchPasscode != "" {
			row.PassEnc = s.keys.sealString(req.WatchPasscode, "wpass:"+row.ID)
		}
	}
	if len(dests) > 0 {
		b, _ := json.Marshal(dests)
		row.DestsEnc = s.keys.sealString(string(b), "bdest:"+row.ID)
	}
	if startAt.After(now.Add(time.Second)) {
		if err := s.st.insertBroadcast(row); err != nil {
			return BroadcastView{}, err
		}
		_ = s.audit.Append(u.Name, "broadcast.schedule", row.ID, room+" at "+startAt.UTC().Format(time.RFC3339))
		return s.view(row), nil
	}
	row.StartAt = now
	// Admission before anything is stored: a refusal leaves no trace but
	// the counter and the log.
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if err := s.admit(w, h); err != nil {
		return BroadcastView{}, err
	}
	row.State = "starting"
	if err := s.st.insertBroadcast(row); err != nil {
		return BroadcastView{}, err
	}
	_ = s.audit.Append(u.Name, "broadcast.start", row.ID, room)
	if err := s.launch(row, dests); err != nil {
		row, _ = s.st.broadcast(row.ID)
		return s.view(row), err
	}
	row, _ = s.st.broadcast(row.ID)
	return s.view(row), nil
}

// admit decides whether one more broadcast of w×h fits in real time. The
// estimate comes from what the running ones are measured to cost.
func (s *Server) admit(w, h int) error {
	// Costs scale with the picture: sizes are counted in 720p equivalents,
	// so broadcasts of different sizes share one measured cost per unit.
	unit := func(w, h int) float64 { return float64(w*h) / (1280 * 720) }
	s.mu.Lock()
	n := len(s.running)
	var settled, young float64 // 720p units of the running broadcasts
	var behind []string
	for _, l := range s.running {
		if s.now().Sub(l.row.Started) < 5*time.Second {
			young += unit(l.row.Width, l.row.Height)
		} else {
			settled += unit(l.row.Width, l.row.Height)
		}
		l.mu.Lock()
		if l.droppedRecent > 0 {
			behind = append(behind, l.row.ID)
		}
		l.mu.Unlock()
	}
	closing := s.closing
	s.mu.Unlock()
	if closing {
		return errors.New("the server is shutting down")
	}
	if s.cfg.CPUCapacity < 0 {
		return nil
	}
	if len(behind) > 0 {
		// Measured directly: a running broadcast already loses frames.
		s.counters.refusals.Add(1)
		s.log.Warn().Int("running", n).Strs("behind", behind).Msg("broadcast refused by admission control: running broadcasts lose frames")
		return fmt.Errorf("%w: %d of the %d running broadcasts are already dropping frames (the machine cannot keep them in real time); a new one would make it worse. Stop a broadcast or try later",
			ErrAdmission, len(behind), n)
	}
	per := s.cfg.CPUPerBroadcast // cores per 720p unit until measured
	used := s.cpu.rate()
	if settled > 0 && used > 0 {
		// Measured: what the running broadcasts cost per unit (the young
		// ones are still starting, so they count with the settled ones).
		per = used / (settled + young)
	}
	need := per * unit(w, h)
	predicted := used + need
	if settled == 0 {
		predicted = used + young*per + need
	}
	if n > 0 && predicted > s.cfg.CPUCapacity {
		s.counters.refusals.Add(1)
		s.log.Warn().Int("running", n).Float64("cores_used", used).Float64("cores_needed", need).
			Float64("capacity", s.cfg.CPUCapacity).Msg("broadcast refused by admission control")
		return fmt.Errorf("%w: %d broadcasts already use %.2f of the %.2f cores this server may use, and a new %dx%d one needs about %.2f more: it would not keep up in real time. Stop a broadcast, choose a smaller size, or try later",
			ErrAdmission, n, used, s.cfg.CPUCapacity, w, h, need)
	}
	return nil
}

// launch starts a stored broadcast through the runner.
func (s *Server) launch(row broadcastRow, dests []Destination) error {
	log := s.cfg.Log.With().Str("broadcast", row.ID).Logger()
	spec := Spec{Room: row.Room, Layout: row.Layout, Width: row.Width, Height: row.Height, Destinations: dests, Duration: row.Duration,
		Labels: row.Labels}
	l := &live{row: row, dests: dests, done: make(chan struct{}), destState: map[string]string{}}
	if row.HLS {
		l.hlsDir = s.hlsDir(row.ID)
		l.watchTok, l.passcode = s.watchSecrets(row)
		spec.HLSDir, spec.HLSReplay = l.hlsDir, row.HLSReplay
	}
	if row.Record {
		l.recID = "r_" + randomToken(9)
		l.recPath = filepath.Join(s.recDir, l.recID+".mp4")
		if len(s.cfg.EncryptTo) > 0 {
			l.recPath += ageSuffix
			spec.Encrypt = s.cfg.EncryptTo
		}
		spec.Output = l.recPath
		// Stored before the first byte: a crash from here on leaves a row
		// the next start recovers.
		if err := s.st.insertRecording(recordingRow{ID: l.recID, BroadcastID: row.ID, UserID: row.UserID, Path: l.recPath,
			State: "recording", Created: s.now()}); err != nil {
			return err
		}
	}
	// Start-ups take turns: a broadcast's first second (joining, opening
	// x264, its first keyframe and lookahead) costs several times its
	// steady state, and several at the same instant can put the running
	// broadcasts behind the wall clock (repeated pictures, a preset step
	// down) although the machine holds them all once started.
	select {
	case s.startGate <- struct{}{}:
	case <-s.ctx.Done():
		return errors.New("the server is shutting down")
	}
	var once sync.Once
	release := func() { once.Do(func() { <-s.startGate }) }
	b, err := s.cfg.Runner.Start(s.ctx, spec, log)
	if err != nil {
		release()
		msg := s.friendly(err, dests)
		if l.recID != "" {
			_ = s.st.deleteRecording(l.recID)
			_ = os.Remove(l.recPath)
		}
		if l.hlsDir != "" {
			_ = os.RemoveAll(l.hlsDir)
		}
		_ = s.st.updateBroadcast(row.ID, "failed", msg, time.Time{}, s.now(), "{}")
		log.Warn().Str("error", msg).Msg("broadcast failed to start")
		s.hooks.send(EventFailed, map[string]any{"id": row.ID, "room": row.Room, "error": msg})
		return errors.New(msg)
	}
	now := s.now()
	l.row.State, l.row.Started = "live", now
	l.b = b
	_ = s.st.updateBroadcast(row.ID, "live", "", now, time.Time{}, "{}")
	s.mu.Lock()
	s.running[row.ID] = l
	s.mu.Unlock()
	log.Info().Str("room", row.Room).Bool("record", row.Record).Int("destinations", len(dests)).Msg("broadcast started")
	s.hooks.send(EventStarted, map[string]any{"id": row.ID, "room": row.Room})
	s.wg.Add(2)
	go s.watch(l)
	go func() {
		defer s.wg.Done()
		defer release()
		s.settleStart(l)
	}()
	return nil
}

// Start-up settling: the next broadcast may start once this one has sent
// startSettleFrames output frames, has ended, or startSettleMax has passed
// (a room still waiting for its first speaker composes nothing).
const (
	startSettleFrames = 30
	startSettleMax    = 3 * time.Second
)

// settleStart returns when l's start-up is over (see startSettleFrames).
func (s *Server) settleStart(l *live) {
	deadline := time.NewTimer(startSettleMax)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return
		case <-l.done:
			return
		case <-s.ctx.Done():
			return
		case <-tick.C:
			if l.b.Status().FramesOut >= startSettleFrames {
				return
			}
		}
	}
}

// friendly turns a runner error into a sentence for the host, with every
// destination URL and key scrubbed out.
func (s *Server) friendly(err error, dests []Destination) string {
	msg := err.Error()
	switch {
	case errors.Is(err, ErrRoom):
		msg = "Could not join the room: " + msg
	case errors.Is(err, ErrStream):
		msg = "A stream destination refused the stream (check its URL and key): " + msg
	case errors.Is(err, ErrSpec):
		msg = "Invalid settings: " + msg
	}
	return scrub(msg, dests)
}

func scrub(msg string, dests []Destination) string {
	for _, d := range dests {
		msg = strings.ReplaceAll(msg, d.URL, d.Name)
		if i := strings.LastIndex(strings.TrimSuffix(d.URL, "/"), "/"); i > 0 {
			if key := d.URL[i+1:]; len(key) >= 4 {
				msg = strings.ReplaceAll(msg, key, "***")
			}
		}
	}
	return msg
}

// watch waits for a broadcast to end and files its outcome.
func (s *Server) watch(l *live) {
	defer s.wg.Done()
	err := l.b.Wait()
	st := l.b.Status()
	l.noteNames(st.SpeakerNames)
	s.counters.framesOut.Add(st.FramesOut)
	s.counters.dropped.Add(st.Dropped)
	s.counters.degraded.Add(st.Degraded)
	s.counters.stepDowns.Add(st.PresetStepDowns)
	s.counters.bytes.Add(st.BytesWritten)
	s.counters.net.add(st.Network)
	for _, d := range st.Destinations {
		s.counters.reconnects.Add(d.Reconnects)
	}
	log := s.cfg.Log.With().Str("broadcast", l.row.ID).Logger()
	state, msg := "done", ""
	switch {
	case err != nil:
		state, msg = "failed", s.friendly(err, l.dests)
	case l.shutdown.Load():
		state, msg = "interrupted", "the server shut down during the broadcast"
	}
	final := s.liveView(l)
	l.mu.Lock()
	// Afterwards the broadcast lists everyone the picture named.
	final.SpeakerNames = append([]string{}, l.names...)
	l.mu.Unlock()
	stats, _ := json.Marshal(final)
	_ = s.st.updateBroadcast(l.row.ID, state, msg, l.row.Started, s.now(), string(stats))
	s.mu.Lock()
	delete(s.running, l.row.ID)
	s.mu.Unlock()
	// The recording stays listed as "recording" (not downloadable) until
	// it is described; Close waits for this through l.done.
	if l.recID != "" {
		l.mu.Lock()
		names := append([]string(nil), l.names...)
		l.mu.Unlock()
		s.fileRecording(l, err, st.Speakers, names, st.Elapsed)
	}
	close(l.done)
	ev := map[string]any{"id": l.row.ID, "room": l.row.Room, "state": state}
	if err != nil {
		ev["error"] = msg
		log.Warn().Str("error", msg).Msg("broadcast failed")
		s.hooks.send(EventFailed, ev)
	} else {
		log.Info().Str("state", state).Msg("broadcast ended")
		s.hooks.send(EventStopped, ev)
	}
}

// fileRecording finalises the database's view of a recording after its
// broadcast ended.
func (s *Server) fileRecording(l *live, runErr error, speakers int, names []string, elapsed time.Duration) {
	log := s.cfg.Log.With().Str("recording", l.recID).Logger()
	r, err := s.st.recording(l.recID)
	if err != nil {
		return
	}
	if _, serr := os.Stat(l.recPath); serr != nil {
		_ = s.st.deleteRecording(l.recID)
		return
	}
	r.State = "ready"
	if runErr != nil {
		// What was written stays playable: make it a regular MP4 (an
		// encrypted one is crash-safe as it is: `roomcast decrypt` reads
		// it up to its last sealed chunk).
		if !encrypted(l.recPath) {
			if rerr := mp4.Recover(l.recPath, log); rerr != nil {
				log.Error().Err(rerr).Msg("recovering the recording")
			}
		}
		r.State, r.Note = "interrupted", "the broadcast failed; the file holds what was recorded"
	} else if l.shutdown.Load() {
		r.State, r.Note = "interrupted", "the server shut down; the file was finalised"
	}
	r.Speakers = fmt.Sprint(speakers)
	r.SpeakerNames = strings.Join(names, "\n")
	_ = os.Chmod(l.recPath, 0o600)
	s.describe(&r, log)
	if encrypted(r.Path) {
		// The server may not be able to read it: the media time recorded.
		r.Duration = elapsed
	}
	if runErr != nil && r.Duration <= 0 && r.Poster == "" {
		// Failed before any media (a destination refused at start): no
		// empty file is left behind.
		log.Info().Msg("removing the empty recording of a failed broadcast")
		s.removeRecording(r)
		return
	}
	_ = s.st.updateRecording(r)
	s.hooks.send(EventRecordingReady, map[string]any{"id": r.ID, "broadcast": r.BroadcastID, "state": r.State,
		"duration_seconds": r.Duration.Seconds(), "size": r.Size})
}

// Stop asks a broadcast to stop (or cancels a scheduled one).
func (s *Server) Stop(u user, id string) error {
	row, err := s.st.broadcast(id)
	if err != nil {
		return err
	}
	if row.UserID != u.ID && !u.Admin {
		return errForbidden
	}
	s.mu.Lock()
	l := s.running[id]
	s.mu.Unlock()
	if l != nil {
		_ = s.audit.Append(u.Name, "broadcast.stop", id, "")
		l.stopBy.Store(u.Name)
		l.b.Stop()
		return nil
	}
	if row.State == "scheduled" {
		_ = s.audit.Append(u.Name, "broadcast.cancel", id, "")
		return s.st.updateBroadcast(id, "cancelled", "", time.Time{}, s.now(), "{}")
	}
	return nil
}

// WaitBroadcast blocks until a running broadcast has been filed (tests).
func (s *Server) WaitBroadcast(id string) {
	s.mu.Lock()
	l := s.running[id]
	s.mu.Unlock()
	if l != nil {
		<-l.done
	}
}

// scheduler starts scheduled broadcasts when due.
func (s *Server) scheduler() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		due, err := s.st.broadcasts(0, "state='scheduled' AND start_at<=?", ms(s.now()))
		if err != nil {
			continue
		}
		for _, row := range due {
			s.startScheduled(row)
		}
	}
}

func (s *Server) startScheduled(row broadcastRow) {
	var dests []Destination
	if len(row.DestsEnc) > 0 {
		plain, err := s.keys.open(row.DestsEnc, "bdest:"+row.ID)
		if err == nil {
			err = json.Unmarshal([]byte(plain), &dests)
		}
		if err != nil {
			_ = s.st.updateBroadcast(row.ID, "failed", "the destinations cannot be read: "+err.Error(), time.Time{}, s.now(), "{}")
			return
		}
	}
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if err := s.admit(row.Width, row.Height); err != nil {
		_ = s.st.updateBroadcast(row.ID, "failed", err.Error(), time.Time{}, s.now(), "{}")
		s.hooks.send(EventFailed, map[string]any{"id": row.ID, "room": row.Room, "error": err.Error()})
		return
	}
	_ = s.st.updateBroadcast(row.ID, "starting", "", time.Time{}, time.Time{}, "{}")
	_ = s.audit.Append("scheduler", "broadcast.start", row.ID, row.Room)
	_ = s.launch(row, dests)
}

// checkDestinations refreshes rates and fires destination-down events.
func (s *Server) checkDestinations() {
	s.mu.Lock()
	lives := make([]*live, 0, len(s.running))
	for _, l := range s.running {
		lives = append(lives, l)
	}
	s.mu.Unlock()
	now := time.Now()
	for _, l := range lives {
		st := l.b.Status()
		l.mu.Lock()
		if !l.lastAt.IsZero() {
			dt := now.Sub(l.lastAt).Seconds()
			if dt > 0 {
				l.fps = float64(st.FramesOut-l.last.FramesOut) / dt
				l.kbps = float64(st.BytesWritten-l.last.BytesWritten) * 8 / 1000 / dt
			}
		}
		l.last, l.lastAt = st, now
		l.noteNamesLocked(st.SpeakerNames)
		l.dropHist = append(l.dropHist, st.Dropped)
		if len(l.dropHist) > 5 {
			l.dropHist = l.dropHist[1:]
		}
		l.droppedRecent = st.Dropped - l.dropHist[0]
		var down []DestinationStatus
		for _, d := range st.Destinations {
			prev := l.destState[d.Name]
			l.destState[d.Name] = d.State
			if d.State != prev && prev != "" && isDown(d.State) && !isDown(prev) {
				down = append(down, d)
			}
		}
		l.mu.Unlock()
		for _, d := range down {
			s.log.Warn().Str("broadcast", l.row.ID).Str("destination", d.Name).Str("state", d.State).Msg("destination down")
			s.hooks.send(EventDestinationDown, map[string]any{"id": l.row.ID, "destination": d.Name, "state": d.State, "message": d.Message})
		}
	}
}

func isDown(state string) bool {
	switch strings.ToLower(state) {
	case "reconnecting", "failed", "down":
		return true
	}
	return false
}

func (s *Server) liveView(l *live) BroadcastView {
	v := s.view(l.row)
	l.mu.Lock()
	st, fps, kbps := l.last, l.fps, l.kbps
	l.mu.Unlock()
	if st.State == "" {
		st = l.b.Status()
	}
	v.State = "live"
	if st.State == "stopping" {
		v.State = "stopping"
	}
	v.Elapsed = st.Elapsed.Seconds()
	v.Speakers = st.Speakers
	v.FPS, v.BitrateKbps = fps, kbps
	v.FramesOut, v.Dropped, v.BytesWritten = st.FramesOut, st.Dropped, st.BytesWritten
	v.Degraded = st.Degraded
	v.X264Preset, v.PresetStepDowns = st.X264Preset, st.PresetStepDowns
	v.Network = st.Network
	v.DestStates = st.Destinations
	v.RecordingID = l.recID
	v.SpeakerNames = st.SpeakerNames
	if v.SpeakerNames == nil {
		v.SpeakerNames = []string{}
	}
	if l.watchTok != "" {
		v.Viewers = s.viewers.Viewers(l.watchTok)
	}
	return v
}

func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// view renders a stored broadcast; a running one gets its live figures.
func (s *Server) view(row broadcastRow) BroadcastView {
	v := BroadcastView{ID: row.ID, Room: row.Room, Layout: row.Layout, Size: fmt.Sprintf("%dx%d", row.Width, row.Height),
		Record: row.Record, State: row.State, Error: row.Error, StartAt: rfc(row.StartAt), Started: rfc(row.Started),
		Ended: rfc(row.Ended), Destinations: []string{}, DestStates: []DestinationStatus{}, SpeakerNames: []string{},
		Labels: row.Labels, Title: row.Title, HLS: row.HLS}
	if v.Labels == "" {
		v.Labels = "name"
	}
	if row.HLS {
		v.HLSReplay = row.HLSReplay
		tok, pass := s.watchSecrets(row)
		if tok != "" {
			v.WatchURL = s.cfg.BaseURL + "/watch/" + tok + "/"
			v.Viewers = s.viewers.Viewers(tok)
		}
		v.Passcode = pass != ""
	}
	if row.DestNames != "" {
		v.Destinations = strings.Split(row.DestNames, "\n")
	}
	if row.State != "live" && row.Stats != "" && row.Stats != "{}" {
		var old BroadcastView
		if json.Unmarshal([]byte(row.Stats), &old) == nil {
			v.Elapsed, v.Speakers, v.FramesOut, v.Dropped, v.BytesWritten = old.Elapsed, old.Speakers, old.FramesOut, old.Dropped, old.BytesWritten
			v.Degraded, v.Network = old.Degraded, old.Network
			v.X264Preset, v.PresetStepDowns = old.X264Preset, old.PresetStepDowns
			v.DestStates, v.RecordingID = old.DestStates, old.RecordingID
			if old.SpeakerNames != nil {
				v.SpeakerNames = old.SpeakerNames
			}
		}
	}
	if v.DestStates == nil {
		v.DestStates = []DestinationStatus{}
	}
	return v
}

// broadcastView returns the current view of one broadcast.
func (s *Server) broadcastView(id string) (BroadcastView, broadcastRow, error) {
	s.mu.Lock()
	l := s.running[id]
	s.mu.Unlock()
	if l != nil {
		return s.liveView(l), l.row, nil
	}
	row, err := s.st.broadcast(id)
	if err != nil {
		return BroadcastView{}, row, err
	}
	return s.view(row), row, nil
}

// listBroadcasts returns a user's broadcasts (all for an admin), live
// figures included.
func (s *Server) listBroadcasts(u user) ([]BroadcastView, error) {
	uid := u.ID
	if u.Admin {
		uid = 0
	}
	rows, err := s.st.broadcasts(uid, "")
	if err != nil {
		return nil, err
	}
	out := make([]BroadcastView, 0, len(rows))
	for _, r := range rows {
		s.mu.Lock()
		l := s.running[r.ID]
		s.mu.Unlock()
		if l != nil {
			out = append(out, s.liveView(l))
		} else {
			out = append(out, s.view(r))
		}
	}
	return out, nil
}
