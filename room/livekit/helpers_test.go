package livekit

import (
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testLogger writes to the test log at debug level when ROOMCAST_TEST_LOG is
// set, and discards otherwise.
func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("ROOMCAST_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	zerolog.TimeFieldFormat = "15:04:05.000"
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.TraceLevel).With().Timestamp().Logger()
}

// recSink records frames (data kept only when keep is set).
type recSink struct {
	keep     bool
	mu       sync.Mutex
	frames   []Frame
	arrivals []time.Time
	closed   bool
}

func (s *recSink) WriteFrame(f Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keep {
		f.Data = f.Data[:min(len(f.Data), 16):min(len(f.Data), 16)]
	}
	s.frames = append(s.frames, f)
	s.arrivals = append(s.arrivals, time.Now())
}

func (s *recSink) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *recSink) snapshot() ([]Frame, []time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames), slices.Clone(s.arrivals), s.closed
}

func (s *recSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

// recHandler records every Handler call.
type recHandler struct {
	mu       sync.Mutex
	log      []string
	joined   []Participant
	left     []string
	tracks   []*Track
	sinks    map[string]*recSink
	mutes    map[string][]bool
	speakers [][]string
	sessions []SessionEvent
	closed   error
	keepData bool
	changed  chan struct{}
}

func newRecHandler() *recHandler {
	return &recHandler{sinks: map[string]*recSink{}, mutes: map[string][]bool{}, changed: make(chan struct{}, 1)}
}

func (h *recHandler) poke() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *recHandler) ParticipantJoined(p Participant) {
	h.mu.Lock()
	h.joined = append(h.joined, p)
	h.log = append(h.log, "join "+p.ID)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) ParticipantLeft(id string) {
	h.mu.Lock()
	h.left = append(h.left, id)
	h.log = append(h.log, "leave "+id)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) TrackAdded(t *Track) TrackSink {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &recSink{keep: h.keepData}
	h.tracks = append(h.tracks, t)
	h.sinks[t.SID] = s
	h.log = append(h.log, "track "+t.ParticipantID+" "+t.Kind.String())
	h.poke()
	return s
}

func (h *recHandler) TrackMuted(sid string, muted bool) {
	h.mu.Lock()
	h.mutes[sid] = append(h.mutes[sid], muted)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) ActiveSpeakers(ids []string) {
	h.mu.Lock()
	h.speakers = append(h.speakers, ids)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) Session(e SessionEvent) {
	h.mu.Lock()
	h.sessions = append(h.sessions, e)
	h.log = append(h.log, "session "+e.Kind.String())
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) RoomClosed(reason error) {
	h.mu.Lock()
	h.closed = reason
	h.mu.Unlock()
	h.poke()
}

// track finds the track of participant id and kind.
func (h *recHandler) track(id string, k Kind) (*Track, *recSink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.tracks) - 1; i >= 0; i-- {
		t := h.tracks[i]
		if t.ParticipantID == id && t.Kind == k {
			return t, h.sinks[t.SID]
		}
	}
	return nil, nil
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
