package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestRecordAnnounce: what a participant in headless Chromium
// (livekit-client, the page of lktest) sees of roomcast:
//   - with roomcast's own minted token, room.isRecording turns true while
//     roomcast records and false after it left, and the start and stop
//     announcements arrive as chat (a text stream on lk.chat, as
//     @livekit/components' chat reads it; the ChatMessage packet; the
//     legacy lk-chat-topic JSON marked ignoreLegacy), from a participant
//     the page never lists and the server does not name (hidden);
//   - with --no-announce the flag still shows, and no chat comes;
//   - with a supplied visible token without the recorder grant (no room
//     flag), roomcast is the participant "● Recording" whose attribute
//     roomcast.recording is "true" while it records and "false" at the
//     end, and the chat comes from it.
func TestRecordAnnounce(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	srv := lktest.StartServer(t)
	const room = "announce"
	br := lktest.StartChromium(t, srv, room, lktest.ChromiumOptions{Identity: "carol", Name: "Carol"})
	br.WaitFor("connected", 30*time.Second)
	br.WaitSeen("recording", "false", time.Time{}, 5*time.Second)
	dir := t.TempDir()
	secret := writeSecret(t, dir, "secret", srv.APISecret)
	record := func(name string, args ...string) time.Time {
		t.Helper()
		start := time.Now()
		args = append([]string{"--log-format", "json", "record", "--room", srv.URL + "/" + room,
			"--size", "320x180", "--duration", "2s", "-o", filepath.Join(dir, name+".mp4")}, args...)
		r := runCLI(t, args...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", name, r.code, tail(r.stderr, 20))
		}
		return start
	}
	chats := func(since time.Time) []string {
		var out []string
		for _, name := range []string{"chat", "chatmessage", "data"} {
			for _, ev := range br.Seen(name) {
				if ev.At.After(since) {
					out = append(out, name+" "+ev.Detail)
				}
			}
		}
		return out
	}

	// 1. --no-announce: the room's recording flag (recorder grant) but no
	// chat.
	start := record("quiet", "--api-key", srv.APIKey, "--api-secret-file", secret, "--no-announce")
	on := br.WaitSeen("recording", "true", start, 10*time.Second)
	off := br.WaitSeen("recording", "false", on.At, 10*time.Second)
	t.Logf("--no-announce: room.isRecording true %v after roomcast started, false %v later", on.At.Sub(start).Round(time.Millisecond), off.At.Sub(on.At).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	if c := chats(start); len(c) > 0 {
		t.Errorf("--no-announce: the page received chat: %q", c)
	}

	// 2. The default: announced at start and at stop.
	const hello = "Recorded for the minutes: say so if you object"
	start = record("announced", "--api-key", srv.APIKey, "--api-secret-file", secret, "--announce-start", hello)
	on = br.WaitSeen("recording", "true", start, 10*time.Second)
	first := br.WaitSeen("chat", ": "+hello, start, 10*time.Second)
	last := br.WaitSeen("chat", ": roomcast has stopped recording", start, 10*time.Second)
	off = br.WaitSeen("recording", "false", on.At, 10*time.Second)
	t.Logf("announced: start chat %v after launch, stop chat %v later, flag off %v after the stop chat",
		first.At.Sub(start).Round(time.Millisecond), last.At.Sub(first.At).Round(time.Millisecond), off.At.Sub(last.At).Round(time.Millisecond))
	if !last.At.After(first.At) {
		t.Errorf("the stop announcement (%v) came before the start one (%v)", last.At, first.At)
	}
	// The server blanks a hidden participant's identity on its data.
	if sender := strings.SplitN(first.Detail, ": ", 2)[0]; sender != "" {
		t.Errorf("the chat names its hidden sender %q", sender)
	}
	br.WaitSeen("chatmessage", ": "+hello, start, 5*time.Second)
	legacy := br.WaitSeen("data", hello, start, 5*time.Second)
	if !strings.HasPrefix(legacy.Detail, "lk-chat-topic ") || !strings.Contains(legacy.Detail, `"ignoreLegacy":true`) {
		t.Errorf("legacy chat data: %q, want topic lk-chat-topic with ignoreLegacy", legacy.Detail)
	}
	for _, ev := range br.Seen("participant") {
		if strings.HasPrefix(ev.Detail, "roomcast-") {
			t.Errorf("the page lists the hidden recorder: %s", ev.Detail)
		}
	}

	// 3. A visible token without the recorder grant: no room flag, but the
	// participant "● Recording" and its attribute.
	visible := writeSecret(t, dir, "visible", srv.Token(room, "roomcast-visible", "● Recording",
		func(_ *auth.AccessToken, g *auth.VideoGrant) {
			g.SetCanPublish(false)
			g.SetCanPublishData(true)
			g.SetCanUpdateOwnMetadata(true)
		}))
	start = record("visible", "--token-file", visible)
	br.WaitSeen("participant", `roomcast-visible {"name":"● Recording"`, start, 10*time.Second)
	// As the participant joins, or as a change right after.
	br.WaitSeen("", `roomcast-visible {"name":"● Recording","attributes":{"roomcast.recording":"true"}}`, start, 10*time.Second)
	br.WaitSeen("chat", "roomcast-visible: ● This meeting is being recorded by roomcast.", start, 10*time.Second)
	br.WaitSeen("chat", "roomcast-visible: roomcast has stopped recording", start, 10*time.Second)
	br.WaitSeen("attributes", `"roomcast.recording":"false"`, start, 10*time.Second)
	for _, ev := range br.Seen("recording") {
		if ev.At.After(start) && ev.Detail == "true" {
			t.Errorf("room.isRecording turned true for a token without the recorder grant")
		}
	}
	if errs := br.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}
