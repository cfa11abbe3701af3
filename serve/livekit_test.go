package serve

import (
	"image/jpeg"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestLiveKitBesideDemos: one serve process runs a real LiveKit broadcast
// (livekit-server on loopback, one Go publisher "Alice" in red) and three
// demo: broadcasts at once. Each has its own status (speakers and their
// names) and its own file: the LiveKit recording shows Alice's red, the
// demos their own two speakers, and no room's speakers leak into another.
func TestLiveKitBesideDemos(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	pub := lktest.StartPublisher(t, srv, "webinar", lktest.PublisherOptions{Identity: "alice", Name: "Alice Example",
		Video: "h264", Color: "red", Audio: true, Speaking: true})
	defer pub.Close()
	e := newEnv(t, func(c *Config) {
		c.Runner = SessionRunner{Credentials: func(u string) room.Credentials {
			if strings.HasPrefix(u, srv.URL) {
				return room.Credentials{APIKey: srv.APIKey, APISecret: srv.APISecret}
			}
			return room.Credentials{}
		}}
		// Admission is not under test (on a loaded machine a lagging
		// broadcast would refuse the next).
		c.CPUCapacity = -1
	})
	e.secret = append(e.secret, srv.APISecret)
	c := e.api()
	lk := c.startDemo(srv.URL+"/webinar", "320x180", 0)
	d1 := c.startDemo("demo:?speakers=2", "320x180", 0)
	d2 := c.startDemo("demo:?speakers=3", "320x180", 0)
	d3 := c.startDemo("demo:?speakers=1", "320x180", 0)
	ids := []string{lk.ID, d1.ID, d2.ID, d3.ID}
	wantNames := [][]string{{"Alice Example"}, {"Ada Lovelace", "Grace Hopper"}, {"Ada Lovelace", "Grace Hopper", "Alan Turing"}, {"Ada Lovelace"}}
	for _, id := range ids {
		c.waitElapsed(id, 2)
	}
	// Each broadcast's own live status.
	deadline := time.Now().Add(30 * time.Second)
	for i, id := range ids {
		for {
			var v BroadcastView
			c.json("GET", "/api/v1/broadcasts/"+id, nil, &v)
			if v.State == "live" && v.Speakers == len(wantNames[i]) && reflect.DeepEqual(v.SpeakerNames, wantNames[i]) && v.FramesOut > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broadcast %d (%s): state %s, speakers %d %q, frames %d; want %d %q", i, id, v.State, v.Speakers, v.SpeakerNames, v.FramesOut, len(wantNames[i]), wantNames[i])
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	c.waitElapsed(lk.ID, 4) // her camera is on screen by then
	// The network counters: received packets for the LiveKit room only.
	for i, id := range ids {
		var v BroadcastView
		c.json("GET", "/api/v1/broadcasts/"+id, nil, &v)
		if got := v.Network.Packets > 0; got != (i == 0) {
			t.Errorf("broadcast %d: network %+v, want packets only for the LiveKit room", i, v.Network)
		}
	}
	for _, id := range ids {
		c.json("POST", "/api/v1/broadcasts/"+id+"/stop", nil, nil)
	}
	paths := map[string]bool{}
	for i, id := range ids {
		v := c.waitState(id, "done", 3*time.Minute)
		if i == 0 && v.Network.Packets == 0 {
			t.Errorf("the ended LiveKit broadcast lists no packets received: %+v", v.Network)
		}
		if !reflect.DeepEqual(v.SpeakerNames, wantNames[i]) {
			t.Errorf("broadcast %d ended listing %q, want %q", i, v.SpeakerNames, wantNames[i])
		}
		r := c.waitRecording(id)
		if r.State != "ready" || !reflect.DeepEqual(r.SpeakerNames, wantNames[i]) {
			t.Errorf("broadcast %d: recording %s %q", i, r.State, r.SpeakerNames)
		}
		p := e.recPath(r.ID)
		if paths[p] {
			t.Errorf("two broadcasts share %s", p)
		}
		paths[p] = true
		playable(t, p, 1)
		f, err := os.Open(strings.TrimSuffix(p, ".mp4") + ".jpg")
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0: // Alice's red camera fills the single tile; no demo colour
			// (The poster may show her placeholder: on a loaded machine
			// her first picture can come after 1 s. The last one cannot.)
			if y, u, v := lastCentre(t, p); u > 120 || v < 190 {
				t.Errorf("LiveKit recording: last picture's centre is YUV %d,%d,%d, want Alice's red", y, u, v)
			}
			for _, fx := range []float64{0.2, 0.8} {
				if cr, cg, cb := posterColour(t, img, fx, 0.5); near(cr, cg, cb, 40, 170, 60) || near(cr, cg, cb, 40, 80, 220) {
					t.Errorf("LiveKit recording shows a demo speaker's colour at x=%.1f", fx)
				}
			}
		case 1: // red | green
			if cr, cg, cb := posterColour(t, img, 0.75, 0.55); !near(cr, cg, cb, 40, 170, 60) {
				t.Errorf("demo 2: right tile %d,%d,%d, want green", cr, cg, cb)
			}
		case 2: // red green / blue
			if cr, cg, cb := posterColour(t, img, 0.5, 0.8); !near(cr, cg, cb, 40, 80, 220) {
				t.Errorf("demo 3: bottom tile %d,%d,%d, want blue", cr, cg, cb)
			}
		case 3: // one demo speaker: the demo's red (not Alice's camera red), nothing else
			if cr, cg, cb := posterColour(t, img, 0.5, 0.55); !near(cr, cg, cb, 220, 40, 40) {
				t.Errorf("demo 1: centre %d,%d,%d, want red", cr, cg, cb)
			}
			for _, fx := range []float64{0.1, 0.9} {
				if cr, cg, cb := posterColour(t, img, fx, 0.55); near(cr, cg, cb, 40, 170, 60) || near(cr, cg, cb, 40, 80, 220) {
					t.Errorf("one-speaker demo shows another room's colour at x=%.1f", fx)
				}
			}
		}
	}
	// The ended broadcasts' network counters stay in /metrics.
	_, m := c.do("GET", "/metrics", nil, nil)
	if !regexp.MustCompile(`(?m)^roomcast_rtp_packets_received_total [1-9][0-9]*$`).Match(m) ||
		!regexp.MustCompile(`(?m)^roomcast_keyframe_requests_total [1-9][0-9]*$`).Match(m) {
		t.Errorf("metrics without RTP packets and keyframe requests:\n%s", m)
	}
}

// lastCentre returns the YUV at the centre of a recording's last picture.
func lastCentre(t *testing.T, path string) (y, u, v uint8) {
	t.Helper()
	rd, err := av.OpenFile(path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for {
		it, err := rd.Next()
		if err == io.EOF {
			return y, u, v
		}
		if err != nil {
			t.Fatal(err)
		}
		if m := it.Video; m != nil {
			y = m.Y[m.Height/2*m.StrideY+m.Width/2]
			u, v = m.U[m.Height/4*m.StrideC+m.Width/4], m.V[m.Height/4*m.StrideC+m.Width/4]
		}
	}
}
