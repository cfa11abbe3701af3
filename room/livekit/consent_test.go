package livekit

import (
	"context"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/consent"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestConsentUnsubscribed: behind the consent filter (a
// room.SubscriptionFilter), roomcast never subscribes to an excluded
// participant's tracks: the server's log has no subscription of roomcast
// to bob's tracks (while it has alice's), no frame of bob reaches the
// handler, and roomcast's subscription count covers only the others.
// When dave opts out mid-session (his attribute set through the server
// API), his tracks are unsubscribed at the server and their sinks closed;
// when he opts in again they are subscribed and deliver frames again.
func TestConsentUnsubscribed(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const roomName = "consent"
	for _, id := range []string{"alice", "bob", "dave"} {
		lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: id, Video: "vp8", Audio: true})
	}
	h := newRecHandler()
	r := startRoom(t, srv, roomName, consent.New(h, consent.Policy{Exclude: []string{"bob", "erin"}}, zerolog.Nop()))
	// Bob published before roomcast came (the join response); erin
	// publishes after (the track-published path).
	lktest.StartPublisher(t, srv, roomName, lktest.PublisherOptions{Identity: "erin", Video: "vp8", Audio: true})

	count := func(id string) int {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, tr := range h.tracks {
			if tr.ParticipantID == id {
				n += h.sinks[tr.SID].count()
			}
		}
		return n
	}
	waitFor(t, 15*time.Second, "alice's and dave's frames", func() bool { return count("alice") > 30 && count("dave") > 30 })
	time.Sleep(time.Second)

	rs := lksdk.NewRoomServiceClient(srv.HTTPURL(), srv.APIKey, srv.APISecret)
	trackIDs := func(id string) []string {
		ids := srv.TrackIDs(roomName, id)
		if len(ids) != 2 {
			t.Fatalf("%s publishes %d tracks, want 2", id, len(ids))
		}
		return ids
	}
	sub, _ := srv.Subscriptions(r.Identity())
	for _, sid := range trackIDs("alice") {
		if !sub[sid] {
			t.Errorf("the server log has no subscription of roomcast to alice's track %s (the log check finds nothing)", sid)
		}
	}
	for _, id := range []string{"bob", "erin"} {
		for _, sid := range trackIDs(id) {
			if sub[sid] {
				t.Errorf("roomcast subscribed to %s's track %s", id, sid)
			}
		}
		if n := count(id); n != 0 {
			t.Errorf("%d frames of %s reached the handler", n, id)
		}
	}
	if n := r.Subscriptions(); n != 4 {
		t.Errorf("roomcast asked for %d tracks, want 4 (alice's and dave's)", n)
	}

	// Dave opts out mid-session.
	daveTracks := trackIDs("dave")
	if _, err := rs.UpdateParticipant(context.Background(), &livekit.UpdateParticipantRequest{
		Room: roomName, Identity: "dave", Attributes: map[string]string{consent.DefaultAttribute: "no"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "dave's tracks unsubscribed", func() bool {
		_, unsub := srv.Subscriptions(r.Identity())
		return unsub[daveTracks[0]] && unsub[daveTracks[1]] && r.Subscriptions() == 2
	})
	waitFor(t, 5*time.Second, "dave's sinks closed", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		closed := 0
		for _, tr := range h.tracks {
			if tr.ParticipantID == "dave" {
				if _, _, c := h.sinks[tr.SID].snapshot(); c {
					closed++
				}
			}
		}
		return closed == 2
	})

	// And opts in again.
	before := count("dave")
	if _, err := rs.UpdateParticipant(context.Background(), &livekit.UpdateParticipantRequest{
		Room: roomName, Identity: "dave", Attributes: map[string]string{consent.DefaultAttribute: "yes"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "dave's frames again", func() bool { return count("dave") > before+30 })
	if n := r.Subscriptions(); n != 4 {
		t.Errorf("after dave's opt-in roomcast asks for %d tracks, want 4", n)
	}
}
