package consent

import (
	"slices"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
)

// recorderHandler is the consumer side: it records what reached it.
type recorderHandler struct {
	mu       sync.Mutex
	joined   []string
	left     []string
	speakers [][]string
	muted    []string
	sinks    map[string][]*countSink // by participant
}

type countSink struct {
	mu     sync.Mutex
	frames int
	closed bool
}

func (s *countSink) WriteFrame(room.Frame) { s.mu.Lock(); s.frames++; s.mu.Unlock() }
func (s *countSink) Close()                { s.mu.Lock(); s.closed = true; s.mu.Unlock() }

func (h *recorderHandler) ParticipantJoined(p room.Participant) { h.joined = append(h.joined, p.ID) }
func (h *recorderHandler) ParticipantUpdated(room.Participant)  {}
func (h *recorderHandler) ParticipantLeft(id string)            { h.left = append(h.left, id) }
func (h *recorderHandler) TrackAdded(t *room.Track) room.TrackSink {
	s := &countSink{}
	if h.sinks == nil {
		h.sinks = map[string][]*countSink{}
	}
	h.sinks[t.ParticipantID] = append(h.sinks[t.ParticipantID], s)
	return s
}
func (h *recorderHandler) TrackMuted(sid string, _ bool) { h.muted = append(h.muted, sid) }
func (h *recorderHandler) ActiveSpeakers(ids []string)   { h.speakers = append(h.speakers, ids) }
func (h *recorderHandler) Session(room.SessionEvent)     {}
func (h *recorderHandler) RoomClosed(error)              {}

func TestPolicy(t *testing.T) {
	p := func(id string, attrs map[string]string, meta string) room.Participant {
		return room.Participant{ID: id, Name: id, Attributes: attrs, Metadata: meta}
	}
	for _, c := range []struct {
		name string
		pol  Policy
		p    room.Participant
		want bool
	}{
		{"default", Policy{}, p("a", nil, ""), true},
		{"excluded", Policy{Exclude: []string{"a"}}, p("a", nil, ""), false},
		{"not excluded", Policy{Exclude: []string{"b"}}, p("a", nil, ""), true},
		{"only other", Policy{Only: []string{"b"}}, p("a", nil, ""), false},
		{"only this", Policy{Only: []string{"a"}}, p("a", nil, ""), true},
		{"only and excluded", Policy{Only: []string{"a"}, Exclude: []string{"a"}}, p("a", nil, ""), false},
		{"attribute no", Policy{}, p("a", map[string]string{"roomcast.consent": "no"}, ""), false},
		{"attribute yes", Policy{}, p("a", map[string]string{"roomcast.consent": "yes"}, ""), true},
		{"attribute wins over metadata", Policy{}, p("a", map[string]string{"roomcast.consent": "yes"}, `{"roomcast.consent":"no"}`), true},
		{"metadata no", Policy{}, p("a", nil, `{"roomcast.consent":"no","x":1}`), false},
		{"metadata not json", Policy{}, p("a", nil, `roomcast.consent=no`), true},
		{"custom attribute", Policy{Attribute: "rec"}, p("a", map[string]string{"rec": "no", "roomcast.consent": "yes"}, ""), false},
		{"opt-out disabled", Policy{Attribute: "-"}, p("a", map[string]string{"roomcast.consent": "no"}, ""), true},
	} {
		if got := c.pol.Allowed(c.p); got != c.want {
			t.Errorf("%s: Allowed = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestFilter: an excluded participant never reaches the consumer; an
// opt-out mid-session removes the participant at once and stops their
// frames at the next one (the decoder sink is closed); opting in again
// brings a fresh sink.
func TestFilter(t *testing.T) {
	h := &recorderHandler{}
	f := New(h, Policy{Exclude: []string{"bob"}}, zerolog.Nop())
	alice := room.Participant{ID: "alice", Name: "Alice"}
	f.ParticipantJoined(alice)
	f.ParticipantJoined(room.Participant{ID: "bob", Name: "Bob"})
	f.ParticipantJoined(room.Participant{ID: "carol", Name: "Carol", Attributes: map[string]string{"roomcast.consent": "no"}})
	at := f.TrackAdded(&room.Track{SID: "TA", ParticipantID: "alice", Kind: room.KindVideo})
	bt := f.TrackAdded(&room.Track{SID: "TB", ParticipantID: "bob", Kind: room.KindAudio})
	ct := f.TrackAdded(&room.Track{SID: "TC", ParticipantID: "carol", Kind: room.KindVideo})
	for _, s := range []room.TrackSink{at, bt, ct} {
		s.WriteFrame(room.Frame{})
	}
	f.ActiveSpeakers([]string{"bob", "alice"})
	f.ActiveSpeakers([]string{"carol"})
	f.TrackMuted("TB", true)
	f.TrackMuted("TA", true)
	if !slices.Equal(h.joined, []string{"alice"}) || len(h.sinks["bob"]) != 0 || len(h.sinks["carol"]) != 0 {
		t.Fatalf("consumer saw joins %v and sinks %v, want alice only", h.joined, h.sinks)
	}
	if len(h.speakers) != 1 || !slices.Equal(h.speakers[0], []string{"alice"}) {
		t.Errorf("active speakers %v, want [[alice]] (excluded speakers dropped, an all-excluded list not forwarded)", h.speakers)
	}
	if !slices.Equal(h.muted, []string{"TA"}) {
		t.Errorf("mutes %v, want TA only", h.muted)
	}
	as := h.sinks["alice"][0]
	if as.frames != 1 {
		t.Errorf("alice's sink got %d frames, want 1", as.frames)
	}

	// Alice opts out mid-session.
	alice.Attributes = map[string]string{"roomcast.consent": "no"}
	f.ParticipantUpdated(alice)
	if !slices.Equal(h.left, []string{"alice"}) {
		t.Errorf("after the opt-out the consumer saw leaves %v, want alice", h.left)
	}
	at.WriteFrame(room.Frame{})
	if as.frames != 1 || !as.closed {
		t.Errorf("after the opt-out alice's sink got %d frames (want 1) and closed=%v (want true)", as.frames, as.closed)
	}
	f.ActiveSpeakers([]string{"alice"})
	if len(h.speakers) != 1 {
		t.Errorf("an opted-out speaker reached the consumer: %v", h.speakers)
	}
	// And opts in again.
	alice.Attributes = map[string]string{"roomcast.consent": "yes"}
	f.ParticipantUpdated(alice)
	if len(h.sinks["alice"]) != 2 || !slices.Equal(h.joined, []string{"alice", "alice"}) {
		t.Fatalf("opt-in: joins %v, %d sinks; want a second join and a fresh sink", h.joined, len(h.sinks["alice"]))
	}
	at.WriteFrame(room.Frame{})
	if n := h.sinks["alice"][1]; n.frames != 1 {
		t.Errorf("the fresh sink got %d frames, want 1", n.frames)
	}
	// Leaving closes what is open; an excluded participant's leave is not forwarded.
	f.ParticipantLeft("bob")
	at.Close()
	f.ParticipantLeft("alice")
	if !slices.Equal(h.left, []string{"alice", "alice"}) || !h.sinks["alice"][1].closed {
		t.Errorf("leaves %v, fresh sink closed %v", h.left, h.sinks["alice"][1].closed)
	}
	if f.Excluded() != 3 {
		t.Errorf("excluded count %d, want 3 (bob, carol, alice's opt-out)", f.Excluded())
	}
}

// TestWantTracks: the filter tells connectors not to subscribe to whom the
// policy excludes, by identity, list or attribute, as the attribute is now.
func TestWantTracks(t *testing.T) {
	f := New(nil, Policy{Exclude: []string{"bob"}}, zerolog.Nop())
	var _ room.SubscriptionFilter = f
	for _, c := range []struct {
		p    room.Participant
		want bool
	}{
		{room.Participant{ID: "alice"}, true},
		{room.Participant{ID: "bob"}, false},
		{room.Participant{ID: "carol", Attributes: map[string]string{DefaultAttribute: "no"}}, false},
		{room.Participant{ID: "carol", Attributes: map[string]string{DefaultAttribute: "yes"}}, true},
		{room.Participant{ID: "dave", Metadata: `{"roomcast.consent":"no"}`}, false},
	} {
		if got := f.WantTracks(c.p); got != c.want {
			t.Errorf("WantTracks(%+v) = %v, want %v", c.p, got, c.want)
		}
	}
}
