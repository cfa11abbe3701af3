package recorder

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/pseudo"
	"github.com/roomcast/roomcast/room"
)

// screenSuffix distinguishes a participant's screen share input from its camera.
const screenSuffix = "#screen"

// RoomSink connects a room (any connector) to a compositor: it is the
// room's room.Handler, gives each participant a tile (camera, or a
// placeholder with the name), each screen share its own tile, decodes every
// track in that track's own worker goroutine (its room.TrackSink) and pushes
// pictures and sound onto the compositor's clock. Its Handler methods follow
// room's threading contract; SetOffset and OnTiles are safe from any
// goroutine.
type RoomSink struct {
	// Pseudonyms names participants in info-level logs; set it before the
	// room starts, to the room's (room.Config.Pseudonyms). It defaults to
	// a fresh Namer.
	Pseudonyms *pseudo.Namer

	comp *compositor.Compositor
	fit  layout.Fit
	log  zerolog.Logger

	// offset maps the room clock to the compositor clock: pts = room PTS -
	// offset. Set when the compositor starts (SetOffset).
	offset atomic.Int64
	// started is the wall clock (Unix ns) of SetOffset, 0 before: media
	// decoded earlier is not pushed, its room-clock stamps would land in
	// the future of the output clock.
	started atomic.Int64

	// Heard lists identities whose sound is recorded but whose camera tile
	// is never shown (a screen-share egress's presenter, a track
	// composite's audio from someone else); their screen shares still get
	// tiles. Set before the room starts.
	Heard []string

	// OnSelf, when set, is told of changes to roomcast's own participant
	// made by others (room.SelfObserver), on the room's event goroutine.
	OnSelf func(room.Participant)

	// Events is where session events go (buffered; drops when full).
	Events chan room.SessionEvent
	// Closed receives the reason when the room ends by itself.
	Closed chan error

	mu     sync.Mutex
	inputs map[string]*compositor.Input // by input ID (identity, identity#screen)
	names  map[string]string            // identity -> display name
	video  map[string][]*room.Track     // input ID -> video tracks
	bySID  map[string]*room.Track       // track SID -> track
	tiles  map[string]layout.Rect       // input ID -> last tile
	// ended sums the network counters of the tracks that ended (see
	// NetStats).
	ended room.TrackStats
}

// NewRoomSink prepares the glue for comp; pass it as room.Config.Handler
// and as compositor.Config.OnTiles (through RoomSink.OnTiles).
func NewRoomSink(comp *compositor.Compositor, log zerolog.Logger) *RoomSink {
	return &RoomSink{
		Pseudonyms: pseudo.New(),
		comp:       comp, fit: comp.Config().Fit, log: log.With().Str("component", "live").Logger(),
		Events: make(chan room.SessionEvent, 64), Closed: make(chan error, 1),
		inputs: map[string]*compositor.Input{}, names: map[string]string{},
		video: map[string][]*room.Track{}, bySID: map[string]*room.Track{},
		tiles: map[string]layout.Rect{},
	}
}

// SetOffset sets the room-clock time at which the compositor's clock is
// zero; call it when the compositor starts. Pictures and sound decoded before
// are dropped.
func (l *RoomSink) SetOffset(roomNow time.Duration) {
	l.offset.Store(int64(roomNow))
	l.started.Store(time.Now().UnixNano())
}

func (l *RoomSink) pts(roomPTS time.Duration) time.Duration {
	return roomPTS - time.Duration(l.offset.Load())
}

// input returns (creating) the compositor input with that ID.
func (l *RoomSink) input(id, name string, screen bool) *compositor.Input {
	l.mu.Lock()
	defer l.mu.Unlock()
	if in, ok := l.inputs[id]; ok {
		return in
	}
	in := l.comp.AddInput(id, name, compositor.InputOptions{Screen: screen, Hidden: !screen && slices.Contains(l.Heard, id)})
	l.inputs[id] = in
	return in
}

func (l *RoomSink) remove(id string) { l.removeInput(id, nil) }

// removeInput removes the input with that ID if it is only (or any, when
// only is nil).
func (l *RoomSink) removeInput(id string, only *compositor.Input) {
	l.mu.Lock()
	in := l.inputs[id]
	if in == nil || (only != nil && in != only) {
		l.mu.Unlock()
		return
	}
	delete(l.inputs, id)
	delete(l.video, id)
	delete(l.tiles, id)
	l.mu.Unlock()
	in.Remove()
}

// ParticipantJoined gives the participant a tile at once (placeholder with
// the name until video arrives; audio-only speakers keep it).
func (l *RoomSink) ParticipantJoined(p room.Participant) {
	l.mu.Lock()
	l.names[p.ID] = p.Name
	l.mu.Unlock()
	l.input(p.ID, p.Name, false)
}

// Participants is how many participants are in the room (those with a
// tile, hidden recorders excluded). Safe from any goroutine.
func (l *RoomSink) Participants() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.names)
}

// SelfUpdated passes a change of roomcast's own participant to OnSelf.
func (l *RoomSink) SelfUpdated(p room.Participant) {
	if l.OnSelf != nil {
		l.OnSelf(p)
	}
}

// ParticipantUpdated changes nothing: a tile keeps the name it was given
// when the participant joined.
func (l *RoomSink) ParticipantUpdated(room.Participant) {}

// ParticipantLeft removes the participant's tiles.
func (l *RoomSink) ParticipantLeft(id string) {
	l.remove(id)
	l.remove(id + screenSuffix)
	l.mu.Lock()
	delete(l.names, id)
	l.mu.Unlock()
}

// TrackAdded returns a decoding sink that feeds the right input.
func (l *RoomSink) TrackAdded(t *room.Track) room.TrackSink {
	screen := t.Source == room.SourceScreenShare || t.Source == room.SourceScreenShareAudio
	id, name := t.ParticipantID, t.ParticipantName
	if screen {
		id += screenSuffix
		name += " (screen)"
	}
	in := l.input(id, name, screen)
	s := &trackSink{l: l, t: t, in: in, inputID: id, screen: screen, added: time.Now(),
		log: l.log.With().Str("track", t.SID).Str("participant", l.Pseudonyms.ID(t.ParticipantID)).Str("codec", t.Codec).Logger()}
	var err error
	if t.Kind == room.KindVideo {
		s.vdec, err = av.NewVideoDecoder(t.Codec, av.WithLog(s.log))
		if err == nil {
			l.mu.Lock()
			l.video[id] = append(l.video[id], t)
			l.bySID[t.SID] = t
			rect, shown := l.tiles[id]
			l.mu.Unlock()
			if shown {
				w, h := l.shownSize(t, rect)
				s.log.Debug().Int("width", w).Int("height", h).Msg("shown size")
				t.SetVideoDimensions(w, h)
			}
			in.SetVideoMuted(t.Muted)
			s.waitKey = true
			t.RequestKeyframe()
		}
	} else {
		s.adec, err = av.NewAudioDecoder(t.Codec, av.WithLog(s.log))
		l.mu.Lock()
		l.bySID[t.SID] = t
		l.mu.Unlock()
	}
	if err != nil {
		s.log.Error().Err(err).Msg("cannot decode this track; it is ignored")
		return nil
	}
	s.log.Info().Str("kind", t.Kind.String()).Str("source", t.Source.String()).Msg("track added")
	return s
}

// TrackMuted shows the placeholder for a muted camera.
func (l *RoomSink) TrackMuted(sid string, muted bool) {
	l.mu.Lock()
	t := l.bySID[sid]
	var in *compositor.Input
	if t != nil && t.Kind == room.KindVideo {
		id := t.ParticipantID
		if t.Source == room.SourceScreenShare {
			id += screenSuffix
		}
		in = l.inputs[id]
	}
	l.mu.Unlock()
	if in != nil {
		in.SetVideoMuted(muted)
		if !muted {
			t.RequestKeyframe()
		}
	}
}

// ActiveSpeakers moves the main tile to the loudest speaker; silence keeps
// the last one (the big tile does not jump back and forth).
func (l *RoomSink) ActiveSpeakers(ids []string) {
	// Debug level may name people (minimisation applies to info and up).
	l.log.Debug().Strs("speakers", ids).Msg("active speakers")
	if len(ids) > 0 {
		l.comp.SetActiveSpeaker(ids[0])
	}
}

// Session forwards session events for the command's stop rules.
func (l *RoomSink) Session(e room.SessionEvent) {
	ev := l.log.Info().Str("event", e.Kind.String())
	if e.Participant != "" {
		ev = ev.Str("participant", l.Pseudonyms.ID(e.Participant))
	}
	ev.Msg("session")
	select {
	case l.Events <- e:
	default:
	}
}

// RoomClosed reports the end of the room.
func (l *RoomSink) RoomClosed(reason error) {
	select {
	case l.Closed <- reason:
	default:
	}
}

// OnTiles asks every shown video track for the simulcast layer that fits
// its tile, and for a keyframe when its tile grew (a sharper layer comes).
func (l *RoomSink) OnTiles(tiles []layout.Tile) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := make(map[string]bool, len(tiles))
	for _, tl := range tiles {
		seen[tl.ID] = true
		old, had := l.tiles[tl.ID]
		l.tiles[tl.ID] = tl.Rect
		if had && old.W == tl.Rect.W && old.H == tl.Rect.H {
			continue
		}
		for _, t := range l.video[tl.ID] {
			w, h := l.shownSize(t, tl.Rect)
			l.log.Debug().Str("track", t.SID).Int("width", w).Int("height", h).Msg("shown size")
			t.SetVideoDimensions(w, h)
			if had && tl.Rect.W*tl.Rect.H > old.W*old.H {
				t.RequestKeyframe()
			}
		}
	}
	for id := range l.tiles {
		if !seen[id] {
			delete(l.tiles, id)
		}
	}
}

// shownSize is the size t's pictures take when drawn in tile r: what the
// server should choose a simulcast layer for. It is not the tile's size: a
// 16:9 camera letterboxed into a tall grid cell (1x2 grid) is shown at half
// the cell's height, cropped it is scaled past the cell in one direction.
// Unknown publisher sizes fall back to the tile.
func (l *RoomSink) shownSize(t *room.Track, r layout.Rect) (w, h int) {
	if t.Width <= 0 || t.Height <= 0 {
		return r.W, r.H
	}
	src, dst := layout.Place(t.Width, t.Height, r, l.fit)
	if src.Empty() {
		return r.W, r.H
	}
	return t.Width * dst.W / src.W, t.Height * dst.H / src.H
}

// NetStats are the receive counters of a room's tracks (room.TrackStats:
// packets lost, late, repaired, retransmitted; NACKs and PLIs sent).
type NetStats struct {
	// Total sums every track since the room started, ended ones included.
	Total room.TrackStats
	// Tracks are the tracks open now, in no particular order.
	Tracks []TrackNetStats
}

// TrackNetStats are one open track's counters.
type TrackNetStats struct {
	SID string
	// Participant is the publisher's pseudonym (as in the logs), Kind
	// "audio" or "video".
	Participant, Kind string
	room.TrackStats
}

// NetStats returns the room's receive counters. Safe from any goroutine.
func (l *RoomSink) NetStats() NetStats {
	l.mu.Lock()
	ns := NetStats{Total: l.ended}
	tracks := make([]*room.Track, 0, len(l.bySID))
	for _, t := range l.bySID {
		tracks = append(tracks, t)
	}
	// Read the open tracks under the lock: a track that ends meanwhile
	// (trackSink.Close) moves its counts to ended under it, and must not be
	// counted twice.
	for _, t := range tracks {
		st := t.Stats()
		ns.Total.Add(st)
		ns.Tracks = append(ns.Tracks, TrackNetStats{SID: t.SID, Participant: l.Pseudonyms.ID(t.ParticipantID), Kind: t.Kind.String(), TrackStats: st})
	}
	l.mu.Unlock()
	return ns
}

// endTrack moves an ended track's counters to the room's totals.
// Called with l.mu held.
func (l *RoomSink) endTrack(t *room.Track) room.TrackStats {
	st := t.Stats()
	if l.bySID[t.SID] == t { // not a newer track with the same SID
		delete(l.bySID, t.SID)
	}
	l.ended.Add(st)
	return st
}

// trackSink decodes one track in its worker goroutine.
type trackSink struct {
	l       *RoomSink
	t       *room.Track
	in      *compositor.Input
	inputID string
	screen  bool
	vdec    *av.VideoDecoder
	adec    *av.AudioDecoder
	waitKey bool
	errors  int
	clipped int // wild audio samples (see sanitize)
	added   time.Time
	pushed  bool // a picture or sound went to the compositor
	w, h    int  // size of the last picture
	log     zerolog.Logger
	// nextLayerCheck is when a simulcast track's picture size is next
	// compared with the size it is shown at (see checkLayer).
	nextLayerCheck time.Time
	layerAsks      int // asks since the picture size last changed
}

// layerCheckEvery is how often a simulcast track whose pictures do not fit
// the size they are shown at asks the server again for that size.
const layerCheckEvery = time.Second

// layerAsksMax bounds how often one picture size is asked away from.
const layerAsksMax = 5

// checkLayer asks the server again for the shown size when a simulcast
// track's pictures are a layer too large (half their height would still
// cover the shown height) or too small while a larger layer is published.
// The server picks the layer when it is asked, from the layer sizes it has
// seen by then: asked before the publisher's larger layers have started
// (a browser starts them as its bandwidth estimate grows), it can settle
// on a layer that does not fit, and keeps it until asked again.
func (s *trackSink) checkLayer(now time.Time) {
	if !s.t.Simulcast || s.layerAsks >= layerAsksMax || now.Before(s.nextLayerCheck) {
		return
	}
	s.nextLayerCheck = now.Add(layerCheckEvery)
	s.l.mu.Lock()
	rect, shown := s.l.tiles[s.inputID]
	var w, h int
	if shown {
		w, h = s.l.shownSize(s.t, rect)
	}
	s.l.mu.Unlock()
	if !shown || h <= 0 {
		return
	}
	need := (h*9 + 9) / 10 // servers pick a layer within 90% of the height asked for
	tooLarge := s.h/2 >= need
	tooSmall := s.h < need && s.t.Height > s.h
	if !tooLarge && !tooSmall {
		return
	}
	s.log.Debug().Int("width", w).Int("height", h).Int("picture_width", s.w).Int("picture_height", s.h).
		Msg("the layer does not fit the shown size; asking again")
	s.layerAsks++
	s.t.SetVideoDimensions(w, h)
}

// live reports whether the compositor clock runs (SetOffset was called),
// and logs the track's first output once: the join-to-first-picture time is
// read from this line.
func (s *trackSink) live(kind string) bool {
	st := s.l.started.Load()
	if st == 0 {
		return false
	}
	if !s.pushed {
		s.pushed = true
		now := time.Now()
		s.log.Info().Str("kind", kind).Dur("since_start", now.Sub(time.Unix(0, st))).
			Dur("since_track", now.Sub(s.added)).Msg("first " + kind + " decoded")
	}
	return true
}

func (s *trackSink) WriteFrame(f room.Frame) {
	pts := s.l.pts(f.PTS)
	if s.adec != nil {
		// The sound at its capture time, not the packet's (the encoder's
		// look-ahead; av.AudioDecoder.Delay).
		pts -= s.adec.Delay()
		a, err := s.adec.Decode(f.Data, pts)
		if err != nil {
			s.fail(err)
			return
		}
		if n := sanitize(a); n > 0 {
			s.clipped += n
			s.fail(fmt.Errorf("%w: %d samples NaN or beyond ±%d", errBadSound, n, wildSample))
		}
		if s.live("audio") {
			s.in.PushAudio(a, pts)
		}
		return
	}
	if s.waitKey {
		if !f.Keyframe {
			return
		}
		s.waitKey = false
	}
	frames, err := s.vdec.Decode(f.Data, pts)
	if err != nil {
		// A broken picture: ask for a keyframe and skip until it comes,
		// rather than showing smeared references.
		s.fail(err)
		s.waitKey = true
		s.t.RequestKeyframe()
		return
	}
	// One access unit is one picture in time: a VP9 SVC superframe can
	// decode to each of its spatial layers, of which the last is the one
	// to show.
	if len(frames) > 1 {
		for _, fr := range frames[:len(frames)-1] {
			media.PutImage(fr.Image)
		}
		frames = frames[len(frames)-1:]
	}
	for _, fr := range frames {
		if fr.Image.Width != s.w || fr.Image.Height != s.h {
			// A new stream size: the publisher's first picture, or a
			// simulcast layer switch after OnTiles asked for another size.
			s.w, s.h = fr.Image.Width, fr.Image.Height
			s.log.Info().Int("width", s.w).Int("height", s.h).Msg("picture size")
			// Give the server time to act on the size it was last asked for.
			s.nextLayerCheck = time.Now().Add(layerCheckEvery)
			s.layerAsks = 0
		}
		s.checkLayer(time.Now())
		// Decode before the start too: the decoder needs its references.
		if s.live("video") {
			s.in.PushVideo(fr.Image, fr.PTS)
		} else {
			media.PutImage(fr.Image)
		}
	}
}

// errBadSound: a decoder returned NaN or samples far beyond full scale (a
// corrupt or hostile stream; FFmpeg's Opus decoder turns random bytes into
// such sound).
var errBadSound = errors.New("decoded sound out of range")

// wildSample: no real recording overshoots full scale this much; a stream
// that does is broken.
const wildSample = 4

// sanitize clamps sound to full scale and silences NaN, in place, and says
// how many samples were NaN or wild. One participant's broken stream must not
// drive the mix's limiter (which follows the loudest peak) down for
// everyone, nor poison it with NaN.
func sanitize(a media.Audio) (wild int) {
	for i, v := range a {
		switch {
		case v != v: // NaN
			a[i] = 0
			wild++
		case v > 1:
			a[i] = 1
			if v > wildSample {
				wild++
			}
		case v < -1:
			a[i] = -1
			if v < -wildSample {
				wild++
			}
		}
	}
	return wild
}

func (s *trackSink) fail(err error) {
	s.errors++
	if s.errors == 1 || s.errors%100 == 0 {
		s.log.Warn().Err(err).Int("errors", s.errors).Msg("decode error")
	}
}

func (s *trackSink) Close() {
	var st room.TrackStats
	if s.vdec != nil {
		s.vdec.Close()
		s.l.mu.Lock()
		vs := s.l.video[s.inputID]
		for i, t := range vs {
			if t == s.t {
				s.l.video[s.inputID] = append(vs[:i:i], vs[i+1:]...)
				break
			}
		}
		last := len(s.l.video[s.inputID]) == 0
		st = s.l.endTrack(s.t)
		s.l.mu.Unlock()
		if s.screen && last {
			// Screen share stopped: its tile goes (unless the input is
			// already another one: the participant left and came back).
			s.l.removeInput(s.inputID, s.in)
		} else if last {
			// Camera unpublished: the participant stays, as a placeholder.
			s.in.SetVideoMuted(true)
		}
	}
	if s.adec != nil {
		s.adec.Close()
		s.l.mu.Lock()
		st = s.l.endTrack(s.t)
		s.l.mu.Unlock()
	}
	s.log.Info().Int("decode_errors", s.errors).Int("wild_samples", s.clipped).
		Uint64("packets", st.Packets).Uint64("lost", st.Lost).Uint64("late", st.Late).Uint64("queue_drops", st.QueueDrops).
		Uint64("repaired", st.Repaired).Uint64("retransmissions", st.Retransmissions).Uint64("nacked", st.NACKed).
		Uint64("keyframe_requests", st.KeyframeRequests).Msg("track ended")
}
