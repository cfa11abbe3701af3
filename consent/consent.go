// Package consent keeps the participants who did not consent out of a
// recording. It sits between a room connector and its consumer as a
// room.Handler: an excluded participant is never announced to the
// consumer, so they get no tile, no label and no active-speaker switch, and
// their tracks' frames are dropped before any decoder sees them (no
// picture, no sound in the mix). A participant who opts out mid-session is
// reported as gone at once (their tile disappears from the next frame) and
// their tracks stop at the next frame that arrives; opting in again brings
// them back.
//
// This filter is where consent is enforced: LiveKit exempts recorder
// participants from track permissions (a participant cannot hide their
// tracks from a recorder), so the server does not do it.
package consent

import (
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
)

// DefaultAttribute is the participant attribute (or top-level key of JSON
// metadata) through which a meeting application opts a participant out.
const DefaultAttribute = "roomcast.consent"

// Policy says who may be recorded. The zero value lets everyone in.
type Policy struct {
	// Only, when not empty, lists the identities that may be recorded;
	// everyone else is excluded.
	Only []string
	// Exclude lists identities that are never recorded.
	Exclude []string
	// Tracks selects which of an allowed participant's tracks are
	// recorded (kinds, sources, track SIDs); the zero value takes all. A
	// track it leaves out is never subscribed (room.TrackFilter) nor
	// decoded.
	Tracks room.TrackSelector
	// Attribute is the participant attribute whose value "no" opts a
	// participant out (also read as a top-level string of JSON metadata).
	// It defaults to DefaultAttribute; "-" disables the opt-out.
	Attribute string
}

// Allowed reports whether p may be recorded.
func (pol Policy) Allowed(p room.Participant) bool {
	if len(pol.Only) > 0 && !slices.Contains(pol.Only, p.ID) {
		return false
	}
	if slices.Contains(pol.Exclude, p.ID) {
		return false
	}
	key := pol.Attribute
	if key == "" {
		key = DefaultAttribute
	}
	if key == "-" {
		return true
	}
	if v, ok := p.Attributes[key]; ok {
		return v != "no"
	}
	if len(p.Metadata) > 0 && p.Metadata[0] == '{' {
		var m map[string]any
		if json.Unmarshal([]byte(p.Metadata), &m) == nil {
			if v, ok := m[key].(string); ok && v == "no" {
				return false
			}
		}
	}
	return true
}

// Filter is a room.Handler that forwards to next only what Policy allows.
// Its Handler methods run on the room's event goroutine, as the room
// package requires.
type Filter struct {
	next   room.Handler
	policy Policy
	log    zerolog.Logger

	parts map[string]*participant // by identity
	sids  map[string]string       // track SID → identity
	// Excluded counts participants kept out (for tests and logs).
	excluded atomic.Int64
}

type participant struct {
	p         room.Participant
	allowed   atomic.Bool
	forwarded bool // next knows the participant
	tracks    []*gate
}

// New wraps next.
func New(next room.Handler, policy Policy, log zerolog.Logger) *Filter {
	return &Filter{next: next, policy: policy, log: log.With().Str("component", "consent").Logger(),
		parts: map[string]*participant{}, sids: map[string]string{}}
}

// Excluded is how many times a participant was kept out or opted out.
func (f *Filter) Excluded() int64 { return f.excluded.Load() }

func (f *Filter) part(id string) *participant {
	pt := f.parts[id]
	if pt == nil {
		pt = &participant{p: room.Participant{ID: id, Name: id}}
		pt.allowed.Store(f.policy.Allowed(pt.p))
		f.parts[id] = pt
	}
	return pt
}

var (
	_ room.SubscriptionFilter = (*Filter)(nil)
	_ room.TrackFilter        = (*Filter)(nil)
)

// WantTrack leaves out the tracks Policy.Tracks does not pick.
func (f *Filter) WantTrack(t *room.Track) bool { return f.policy.Tracks.Picks(t) }

// WantTracks tells connectors that choose their subscriptions (LiveKit)
// not to subscribe to an excluded participant at all: their media is not
// even received. (The gates below still drop any frame that arrives, for
// connectors that cannot choose and for the moment between an opt-out and
// the unsubscription.)
func (f *Filter) WantTracks(p room.Participant) bool { return f.policy.Allowed(p) }

// ParticipantJoined forwards an allowed participant.
func (f *Filter) ParticipantJoined(p room.Participant) {
	pt := f.part(p.ID)
	pt.p = p
	ok := f.policy.Allowed(p)
	pt.allowed.Store(ok)
	if ok {
		pt.forwarded = true
		f.next.ParticipantJoined(p)
		return
	}
	f.excluded.Add(1)
	f.log.Info().Msg("a participant is excluded from the recording (no consent)")
	f.log.Debug().Str("participant", p.ID).Msg("excluded")
}

// ParticipantUpdated applies a change of consent at once.
func (f *Filter) ParticipantUpdated(p room.Participant) {
	pt := f.part(p.ID)
	pt.p = p
	was, now := pt.allowed.Load(), f.policy.Allowed(p)
	switch {
	case was && !now:
		pt.allowed.Store(false) // gates drop from the next frame
		f.excluded.Add(1)
		f.log.Info().Msg("a participant opted out: removed from the recording")
		f.log.Debug().Str("participant", p.ID).Msg("opted out")
		if pt.forwarded {
			pt.forwarded = false
			f.next.ParticipantLeft(p.ID)
		}
	case !was && now:
		pt.allowed.Store(true)
		f.log.Info().Msg("a participant opted in: added to the recording")
		pt.forwarded = true
		f.next.ParticipantJoined(p)
		for _, g := range pt.tracks {
			g.swap(f.next.TrackAdded(g.t))
		}
	case now && pt.forwarded:
		f.next.ParticipantUpdated(p)
	}
}

// ParticipantLeft forwards the leave of a participant next knew.
func (f *Filter) ParticipantLeft(id string) {
	pt := f.parts[id]
	delete(f.parts, id)
	if pt == nil {
		return
	}
	for _, g := range pt.tracks {
		delete(f.sids, g.t.SID)
	}
	if pt.forwarded {
		f.next.ParticipantLeft(id)
	}
}

// TrackAdded returns a gate: frames reach next's sink only while the
// participant is allowed; an excluded participant's frames are dropped
// before decoding.
func (f *Filter) TrackAdded(t *room.Track) room.TrackSink {
	if !f.policy.Tracks.Picks(t) {
		// Not part of this recording (a camera in an audio-only one):
		// no sink, so no decoder.
		f.log.Debug().Str("track", t.SID).Str("kind", t.Kind.String()).Str("source", t.Source.String()).Msg("track not selected")
		return nil
	}
	pt := f.part(t.ParticipantID)
	g := &gate{t: t, allowed: &pt.allowed}
	if pt.allowed.Load() {
		g.inner = f.next.TrackAdded(t)
	}
	pt.tracks = append(pt.tracks, g)
	f.sids[t.SID] = t.ParticipantID
	return g
}

// TrackMuted forwards for allowed participants.
func (f *Filter) TrackMuted(sid string, muted bool) {
	if pt := f.parts[f.sids[sid]]; pt != nil && pt.forwarded {
		f.next.TrackMuted(sid, muted)
	}
}

// ActiveSpeakers drops excluded speakers: they never take the big tile.
func (f *Filter) ActiveSpeakers(ids []string) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if pt := f.parts[id]; pt != nil && pt.allowed.Load() {
			out = append(out, id)
		}
	}
	if len(out) == 0 && len(ids) > 0 {
		return // only excluded people speak: keep the current speaker
	}
	f.next.ActiveSpeakers(out)
}

// SelfUpdated forwards (roomcast's own participant is never filtered).
func (f *Filter) SelfUpdated(p room.Participant) {
	if s, ok := f.next.(room.SelfObserver); ok {
		s.SelfUpdated(p)
	}
}

// Session forwards.
func (f *Filter) Session(e room.SessionEvent) { f.next.Session(e) }

// RoomClosed forwards.
func (f *Filter) RoomClosed(reason error) { f.next.RoomClosed(reason) }

// gate is the sink of one track; its WriteFrame and Close run on the
// track's worker goroutine, swap on the event goroutine.
type gate struct {
	t       *room.Track
	allowed *atomic.Bool

	mu      sync.Mutex
	inner   room.TrackSink // used by the worker only (under mu)
	pending room.TrackSink // a new sink after an opt-in
	swapped bool
	closed  bool
}

func (g *gate) swap(s room.TrackSink) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.pendingClose(s)
		return
	}
	if g.swapped && g.pending != nil {
		// Two opt-ins before a frame: the first new sink was never used.
		g.pendingClose(g.pending)
	}
	g.pending, g.swapped = s, true
}

// pendingClose is for a sink that never got a frame; closing it from the
// event goroutine is safe because no worker ever saw it.
func (g *gate) pendingClose(s room.TrackSink) {
	if s != nil {
		s.Close()
	}
}

func (g *gate) WriteFrame(fr room.Frame) {
	g.mu.Lock()
	if g.swapped {
		if g.inner != nil {
			g.inner.Close()
		}
		g.inner, g.pending, g.swapped = g.pending, nil, false
	}
	if !g.allowed.Load() {
		if g.inner != nil {
			g.inner.Close() // the decoder goes away with the consent
			g.inner = nil
		}
		g.mu.Unlock()
		return
	}
	s := g.inner
	g.mu.Unlock()
	if s != nil {
		s.WriteFrame(fr)
	}
}

func (g *gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.inner != nil {
		g.inner.Close()
		g.inner = nil
	}
	if g.pending != nil {
		g.pending.Close()
		g.pending = nil
	}
}
