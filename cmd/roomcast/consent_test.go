package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/room/janus/janustest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// colourShare is the fraction of the picture's pixels (sampled every 4th
// pixel) within 16 of colour c.
func colourShare(img *media.Image, c media.YUV) float64 {
	n, hit := 0, 0
	for y := 0; y < img.Height; y += 4 {
		for x := 0; x < img.Width; x += 4 {
			n++
			p := img.At(x, y)
			if max(abs(int(p.Y)-int(c.Y)), abs(int(p.U)-int(c.U)), abs(int(p.V)-int(c.V))) <= 16 {
				hit++
			}
		}
	}
	return float64(hit) / float64(n)
}

// TestRecordConsent: in a LiveKit room, bob is on --exclude, carol joins
// with the attribute roomcast.consent=no, and dave opts out mid-session
// (the host's application sets his attribute through the server API).
// Bob's and carol's colours are absent from every decoded frame and their
// tones from the mix; dave is seen and heard until his opt-out and gone
// from the frames shortly after it; alice is there throughout.
func TestRecordConsent(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	srv := lktest.StartServer(t)
	const room = "consent"
	withAttr := func(at *auth.AccessToken, _ *auth.VideoGrant) {
		at.SetAttributes(map[string]string{"roomcast.consent": "no"})
	}
	dYellow := newRecColour("yellow", 0xe0, 0xd0, 0x28)
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "vp8", Color: recRed.hex, Audio: true, ToneHz: 400})
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "bob", Name: "Bob", Video: "vp8", Color: recBlue.hex, Audio: true, ToneHz: 620})
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "carol", Name: "Carol", Video: "vp8", Color: recGreen.hex, Audio: true, ToneHz: 940,
		Token: srv.Token(room, "carol", "Carol", withAttr)})
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "dave", Name: "Dave", Video: "vp8", Color: dYellow.hex, Audio: true, ToneHz: 1250})
	dir := t.TempDir()
	out := filepath.Join(dir, "consent.mp4")
	secret := writeSecret(t, dir, "secret", srv.APISecret)
	p := startRecord(t, nil, "--log-format", "json", "record",
		"--room", srv.URL+"/"+room, "--api-key", srv.APIKey, "--api-secret-file", secret,
		"--size", "640x360", "--duration", "10s", "-o", out, "--exclude", "bob")
	start := p.waitLine(t, `"message":"recording"`, 15*time.Second)
	time.Sleep(time.Until(start.Add(5 * time.Second)))
	rs := lksdk.NewRoomServiceClient(srv.HTTPURL(), srv.APIKey, srv.APISecret)
	optAt := time.Since(start).Seconds()
	if _, err := rs.UpdateParticipant(context.Background(), &livekit.UpdateParticipantRequest{
		Room: room, Identity: "dave", Attributes: map[string]string{"roomcast.consent": "no"}}); err != nil {
		t.Fatalf("setting dave's opt-out: %v", err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
	}
	se := p.stderr()
	// Minimisation: info-level logs use per-session opaque ids.
	for _, name := range []string{"Bob", "Carol", "Dave", "Alice", `"bob"`, `"carol"`, `"dave"`, `"alice"`} {
		for _, l := range strings.Split(se, "\n") {
			if strings.Contains(l, name) {
				t.Errorf("the info-level log names %s: %s", name, l)
				break
			}
		}
	}
	if !strings.Contains(se, `"participant":"p-`) {
		t.Errorf("the log does not name participants by opaque id:\n%s", tail(se, 10))
	}
	t.Logf("dave opted out at %.2f s", optAt)

	// Not received at all: roomcast never subscribed to bob's and carol's
	// tracks (the server's own log, and roomcast's), and unsubscribed
	// dave's after his opt-out.
	var identity string
	added, unsub := map[string]int{}, map[string]int{}
	for _, l := range strings.Split(se, "\n") {
		var m struct{ Component, Message, Participant, Identity string }
		if json.Unmarshal([]byte(l), &m) != nil || m.Component != "livekit" {
			continue
		}
		switch m.Message {
		case "joined":
			identity = m.Identity
		case "track added":
			added[m.Participant]++
		case "track unsubscribed (not to be recorded)":
			unsub[m.Participant]++
		}
	}
	subscribed, unsubscribed := srv.Subscriptions(identity)
	for _, who := range []string{"alice", "bob", "carol", "dave"} {
		ids := srv.TrackIDs(room, who)
		if len(ids) != 2 {
			t.Fatalf("%s publishes %d tracks, want 2", who, len(ids))
		}
		for _, id := range ids {
			switch {
			case (who == "bob" || who == "carol") && subscribed[id]:
				t.Errorf("the server sent %s's track %s to roomcast (%s)", who, id, identity)
			case (who == "alice" || who == "dave") && !subscribed[id]:
				t.Errorf("the server log has no subscription of roomcast (%q) to %s's track %s", identity, who, id)
			case who == "dave" && !unsubscribed[id]:
				t.Errorf("dave's track %s was not unsubscribed after his opt-out", id)
			}
		}
	}
	if len(added) != 2 || len(unsub) != 1 {
		t.Errorf("roomcast added tracks of %d participants %v and unsubscribed %v, want alice's and dave's, and dave's", len(added), added, unsub)
	}
	for p, n := range unsub {
		if added[p] != 2 || n != 2 {
			t.Errorf("unsubscribed %d tracks of %s (who had %d added), want 2 of 2", n, p, added[p])
			for _, l := range strings.Split(se, "\n") {
				if strings.Contains(l, p) {
					t.Log(l)
				}
			}
		}
	}

	const fps = 30
	frames := allFrames(t, out, 320, 180)
	lastDave, firstGone := -1.0, -1.0
	for i, img := range frames {
		ts := float64(i) / fps
		for _, c := range []recColour{recBlue, recGreen} {
			if s := colourShare(img, c.yuv); s > 0.001 {
				t.Errorf("frame %d (%.2f s): %.1f%% of the picture is %s, an excluded participant's colour", i, ts, 100*s, c.name)
			}
		}
		if ts > 1 && colourShare(img, recRed.yuv) < 0.05 {
			t.Errorf("frame %d (%.2f s): alice's red is missing", i, ts)
		}
		if colourShare(img, dYellow.yuv) > 0.01 {
			lastDave = ts
		} else if ts > optAt-1 && firstGone < 0 {
			firstGone = ts
		}
	}
	if t.Failed() {
		// What roomcast reported: its warnings, the tracks and the
		// compositor's counts tell a stalled track from a layout fault.
		for _, l := range strings.Split(se, "\n") {
			if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) ||
				strings.Contains(l, `"component":"compositor"`) || strings.Contains(l, `"component":"live"`) {
				t.Log(l)
			}
		}
	}
	t.Logf("dave last seen at %.2f s, gone from %.2f s (opt-out sent at %.2f s)", lastDave, firstGone, optAt)
	if lastDave < optAt-1.5 {
		t.Errorf("dave was not seen before his opt-out (last %.2f s)", lastDave)
	}
	if lastDave > optAt+0.5 {
		t.Errorf("dave still seen at %.2f s, more than 0.5 s after his opt-out at %.2f s", lastDave, optAt)
	}

	x := audioMono(t, out)
	checkTones(t, x, []toneSpan{
		{"alice", 400, 1, 9.5, true},
		{"bob", 620, 0.5, 9.8, false},
		{"carol", 940, 0.5, 9.8, false},
		{"dave before", 1250, 1, optAt - 0.5, true},
		{"dave after", 1250, optAt + 0.6, 9.8, false},
	})
}

// TestRecordRecorderGrant: a supplied token without LiveKit's recorder
// grant (participants would not see "recording") is a warning, and a usage
// error with --require-recording-flag, before joining.
func TestRecordRecorderGrant(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	srv := lktest.StartServer(t)
	dir := t.TempDir()
	plain := writeSecret(t, dir, "plain", srv.Token("grant", "roomcast-x", "roomcast", func(_ *auth.AccessToken, g *auth.VideoGrant) { g.Hidden = true }))
	r := runCLI(t, "record", "--room", srv.URL+"/grant", "--token-file", plain, "--require-recording-flag", "-o", filepath.Join(dir, "never.mp4"))
	if r.code != exitUsage || !strings.Contains(r.stderr, "recorder grant") {
		t.Errorf("--require-recording-flag with a token without the grant: exit %d, want %d with \"recorder grant\"\n%s", r.code, exitUsage, tail(r.stderr, 3))
	}
	r = runCLI(t, "record", "--room", srv.URL+"/grant", "--token-file", plain, "--duration", "1s", "-o", filepath.Join(dir, "warned.mp4"))
	if r.code != 0 || !strings.Contains(r.stderr, "no recorder grant") {
		t.Errorf("a token without the grant: exit %d, want 0 with a warning\n%s", r.code, tail(r.stderr, 5))
	}
	withGrant := writeSecret(t, dir, "rec", srv.Token("grant", "roomcast-y", "roomcast", lktest.Hidden()))
	r = runCLI(t, "record", "--room", srv.URL+"/grant", "--token-file", withGrant, "--require-recording-flag", "--duration", "1s", "-o", filepath.Join(dir, "ok.mp4"))
	if r.code != 0 || strings.Contains(r.stderr, "recorder grant") {
		t.Errorf("a token with the grant: exit %d, want 0 without a warning\n%s", r.code, tail(r.stderr, 5))
	}
}

// allFrames decodes every picture, scaled (nearest neighbour) to w×h.
func allFrames(t *testing.T, path string, w, h int) []*media.Image {
	t.Helper()
	out := ffmpeg(t, "-i", path, "-an", "-vf", fmt.Sprintf("scale=%d:%d:flags=neighbor", w, h), "-fps_mode", "passthrough",
		"-pix_fmt", "yuv420p", "-f", "rawvideo", "-")
	size := w*h + 2*(w/2)*(h/2)
	var imgs []*media.Image
	for i := 0; i+size <= len(out); i += size {
		m := media.NewImage(w, h)
		copy(m.Y, out[i:i+w*h])
		copy(m.U, out[i+w*h:])
		copy(m.V, out[i+w*h+len(m.U):])
		imgs = append(imgs, m)
	}
	if len(imgs) < 250 {
		t.Fatalf("%s: decoded %d pictures, want about 300", path, len(imgs))
	}
	return imgs
}

// TestRecordConsentJanus: in a Janus VideoRoom (Go pion publishers),
// bob (blue, 620 Hz) is on --exclude by his feed ID, carol (green, 940 Hz)
// publishes with roomcast.consent=no in her stream descriptions (roomcast's
// convention for participant attributes in Janus, which has none), and
// dave (yellow, 1250 Hz) opts out mid-session with an SDP-less configure
// carrying new descriptions. roomcast never subscribes to bob's and
// carol's feeds (no track of theirs added, their feed IDs in no log line):
// their colours are absent from every decoded frame and their tones from
// the mix. Dave is seen and heard until his opt-out, and no frame later
// than one frame period after the moment roomcast saw it (its consent log
// line, on the compositor's clock) shows him; his tracks are removed.
// Alice (red, 400 Hz) is there throughout.
func TestRecordConsentJanus(t *testing.T) {
	e2e(t)
	janustest.SkipIfShort(t)
	t.Parallel()
	var kind roomKind
	for _, k := range roomKinds {
		if k.name == "janus" {
			kind = k
		}
	}
	dYellow := newRecColour("yellow", 0xe0, 0xd0, 0x28)
	roomURL, creds, _, publish := kind.start(t)
	publish(pubSpec{id: "alice", name: "Alice", colour: recRed.hex, codec: "vp8", tone: 400})
	bob := publish(pubSpec{id: "bob", name: "Bob", colour: recBlue.hex, codec: "vp8", tone: 620})
	carol := publish(pubSpec{id: "carol", name: "Carol", colour: recGreen.hex, codec: "vp8", tone: 940,
		attrs: map[string]string{"roomcast.consent": "no"}})
	dave := publish(pubSpec{id: "dave", name: "Dave", colour: dYellow.hex, codec: "vp8", tone: 1250}).(janusPub)
	out := filepath.Join(t.TempDir(), "janus-consent.mp4")
	p := startRecord(t, nil, append(append([]string{"--log-format", "json", "record", "--room", roomURL}, creds...),
		"--size", "640x360", "--duration", "10s", "-o", out, "--exclude", bob.ID())...)
	start := p.waitLine(t, `"message":"recording"`, 30*time.Second)
	time.Sleep(time.Until(start.Add(5 * time.Second)))
	if err := dave.SetAttributes(map[string]string{"roomcast.consent": "no"}); err != nil {
		t.Fatalf("dave's opt-out: %v", err)
	}
	if code := p.wait(t, 60*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
	}
	se := p.stderr()
	added, removed := map[string]int{}, map[string]int{}
	var compStart, optSeen time.Time
	for _, l := range strings.Split(se, "\n") {
		for _, who := range []kindPub{bob, carol} {
			if strings.Contains(l, who.ID()) {
				t.Errorf("a log line names an excluded participant's feed %s: %s", who.ID(), l)
			}
		}
		for _, name := range []string{"Alice", "Bob", "Carol", "Dave"} {
			if strings.Contains(l, name) {
				t.Errorf("the info-level log names %s: %s", name, l)
			}
		}
		var m struct{ Component, Message, Participant, Track, Time string }
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, m.Time)
		switch {
		case m.Component == "janus" && m.Message == "track added":
			added[m.Participant]++
		case m.Component == "janus" && m.Message == "track removed":
			removed[m.Track]++
		case m.Component == "compositor" && m.Message == "compositor started":
			compStart = at
		case m.Component == "consent" && strings.Contains(m.Message, "opted out"):
			optSeen = at
		}
	}
	if len(added) != 2 {
		t.Errorf("roomcast added tracks of %d participants %v, want alice's and dave's", len(added), added)
	}
	for _, sid := range []string{dave.ID() + "/0", dave.ID() + "/1"} {
		if removed[sid] == 0 {
			t.Errorf("dave's track %s was not removed from the subscription after his opt-out (removed: %v)", sid, removed)
		}
	}
	if strings.Count(se, "excluded from the recording") < 2 {
		t.Errorf("the log does not say two participants were excluded:\n%s", tail(se, 10))
	}
	if compStart.IsZero() || optSeen.IsZero() {
		t.Fatalf("no compositor start (%v) or opt-out (%v) in the log:\n%s", compStart, optSeen, tail(se, 20))
	}
	// The compositor composes the picture of media time ts at
	// compStart + ts (+ its latency): the opt-out seen at optAt must show
	// in every picture after optAt + one frame.
	const fps = 30
	optAt := optSeen.Sub(compStart).Seconds()
	frames := allFrames(t, out, 320, 180)
	red, lastDave, firstGone := 0, -1.0, -1.0
	for i, img := range frames {
		ts := float64(i) / fps
		for _, c := range []recColour{recBlue, recGreen} {
			if s := colourShare(img, c.yuv); s > 0.001 {
				t.Errorf("frame %d (%.2f s): %.1f%% of the picture is %s, an excluded participant's colour", i, ts, 100*s, c.name)
			}
		}
		if colourShare(img, recRed.yuv) > 0.05 {
			red++
		}
		if s := colourShare(img, dYellow.yuv); s > 0.001 {
			lastDave = ts
			if ts > optAt+1.0/fps {
				t.Errorf("frame %d (%.3f s): %.1f%% is dave's yellow, more than one frame after his opt-out was seen at %.3f s", i, ts, 100*s, optAt)
			}
		} else if ts > optAt-1 && firstGone < 0 {
			firstGone = ts
		}
	}
	t.Logf("alice's red in %d of %d frames; dave last seen at %.3f s, gone from %.3f s, opt-out seen at %.3f s", red, len(frames), lastDave, firstGone, optAt)
	if red < len(frames)/2 {
		t.Errorf("alice's red in only %d of %d frames", red, len(frames))
	}
	if lastDave < optAt-1.5 {
		t.Errorf("dave was not seen before his opt-out (last %.2f s, opt-out at %.2f s)", lastDave, optAt)
	}
	x := audioMono(t, out)
	checkTones(t, x, []toneSpan{
		{"alice", 400, 2, 9.5, true},
		{"bob", 620, 0.5, 9.8, false},
		{"carol", 940, 0.5, 9.8, false},
		{"dave before", 1250, 2, optAt - 0.5, true},
		{"dave after", 1250, optAt + 0.6, 9.8, false},
	})
}

// toneSpan is a tone that must be present in (or absent from) the mix
// between a and b seconds.
type toneSpan struct {
	who     string
	f       float64
	a, b    float64
	present bool
}

// checkTones measures each span's tone by Goertzel: present ≥ 0.03,
// absent < 0.003.
func checkTones(t *testing.T, x []float32, spans []toneSpan) {
	t.Helper()
	for _, c := range spans {
		a := recToneAmp(span(x, 0, c.a, c.b), c.f)
		t.Logf("%s: %g Hz amplitude %.4f over %.1f–%.1f s", c.who, c.f, a, c.a, c.b)
		if c.present && a < 0.03 {
			t.Errorf("%s: %g Hz amplitude %.4f, want ≥ 0.03", c.who, c.f, a)
		}
		if !c.present && a > 0.003 {
			t.Errorf("%s: %g Hz amplitude %.4f in the mix, want none (< 0.003)", c.who, c.f, a)
		}
	}
}
