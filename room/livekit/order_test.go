package livekit

import (
	"slices"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestPresentParticipantsByName: participants already in the room when the
// recorder joins are announced by name (case-insensitive), then identity,
// whatever order the server lists them in, so a weekly meeting's tiles are
// placed the same way each run (two recorders agree); later arrivals follow
// in join order.
func TestPresentParticipantsByName(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "order"
	for _, p := range [][2]string{{"u-dave", "Dave"}, {"u-alice", "alice"}, {"u-carol", "Carol"}, {"u-bob2", "Bob"}, {"u-bob1", "Bob"}, {"u-eve", ""}} {
		lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: p[0], Name: p[1], Audio: true})
	}
	// Eve has no name: her identity stands for it (u-eve sorts after Dave).
	want := []string{"u-alice", "u-bob1", "u-bob2", "u-carol", "u-dave", "u-eve"}
	for run := range 2 {
		h := newRecHandler()
		r := startRoom(t, srv, roomName, h)
		waitFor(t, 10*time.Second, "everyone announced", func() bool { return len(h.joinedIDs()) >= len(want) })
		if got := h.joinedIDs(); !slices.Equal(got, want) {
			t.Errorf("recorder %d: announced %v, want %v", run, got, want)
		}
		if run == 1 {
			// A later arrival comes after everyone, though "Aaron" sorts first.
			lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "u-aaron", Name: "Aaron", Audio: true})
			waitFor(t, 10*time.Second, "Aaron announced", func() bool { return len(h.joinedIDs()) == len(want)+1 })
			if got := h.joinedIDs(); got[len(got)-1] != "u-aaron" {
				t.Errorf("announced %v, want the late Aaron last", got)
			}
		}
		_ = r.Close()
	}
}
