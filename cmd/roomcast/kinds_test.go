package main

// One end-to-end scenario per room kind (LiveKit, Janus VideoRoom) through
// the real binary: the same publishers, the same timeline, the same
// assertions on the recorded MP4. Kind-specific set-up lives in the table.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/room/janus/janustest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// kindPub is a publisher as the scenario drives it.
type kindPub interface {
	// StopVideo stops the camera as the kind's clients do: LiveKit mutes
	// (the server tells roomcast), a Janus client just stops sending (Janus
	// has no mute signal; the tile falls back after 2 s without pictures).
	StopVideo()
	Leave()
	// ID is the participant ID roomcast reports (LiveKit identity, Janus
	// feed ID).
	ID() string
	// SetSpeaking switches the audio level the server's speaker detection
	// reads between loud and silent.
	SetSpeaking(on bool)
}

type pubSpec struct {
	id, name, colour, codec string
	tone                    int
	screen                  bool
}

// roomKind starts a server of one kind and returns the --room URL, the
// credential arguments and a way to publish into the room.
type roomKind struct {
	name  string
	start func(t *testing.T) (roomURL string, args []string, secrets []string, publish func(pubSpec) kindPub)
}

type lkPub struct{ p *lktest.Publisher }

func (p lkPub) StopVideo() { _ = p.p.Mute("video", true) }
func (p lkPub) Leave()     { p.p.Close() }

func (p lkPub) SetSpeaking(on bool) { p.p.SetSpeaking(on) }
func (p lkPub) ID() string          { return p.p.Identity }

type janusPub struct{ p *janustest.Publisher }

func (p janusPub) StopVideo() { p.p.Vanish() }
func (p janusPub) Leave()     { _ = p.p.Leave() }

func (p janusPub) SetSpeaking(on bool) { p.p.SetSpeaking(on) }
func (p janusPub) ID() string          { return fmt.Sprint(p.p.ID) }

var roomKinds = []roomKind{
	{"livekit", func(t *testing.T) (string, []string, []string, func(pubSpec) kindPub) {
		srv := lktest.StartServer(t)
		secret := writeSecret(t, t.TempDir(), "secret", srv.APISecret)
		return srv.URL + "/kinds", []string{"--api-key", srv.APIKey, "--api-secret-file", secret}, []string{srv.APISecret},
			func(s pubSpec) kindPub {
				return lkPub{lktest.StartPublisher(t, srv, "kinds", lktest.PublisherOptions{
					Identity: s.id, Name: s.name, Video: s.codec, Color: s.colour, Audio: s.tone > 0, ToneHz: s.tone, ScreenShare: s.screen,
				})}
			}
	}},
	{"janus", func(t *testing.T) (string, []string, []string, func(pubSpec) kindPub) {
		const apiSecret, pin = "janus-api-s3cret", "7351"
		srv := janustest.StartWith(t, janustest.Options{APISecret: apiSecret})
		id := srv.CreateRoom(janustest.RoomOptions{PIN: pin, AudioLevelEvents: true})
		dir := t.TempDir()
		return fmt.Sprintf("janus+ws://127.0.0.1:%d/%d", srv.WSPort, id),
			[]string{"--janus-api-secret-file", writeSecret(t, dir, "secret", apiSecret), "--pin-file", writeSecret(t, dir, "pin", pin)},
			[]string{apiSecret},
			func(s pubSpec) kindPub {
				return janusPub{janustest.StartPublisher(t, srv, id, janustest.PublisherOptions{
					Display: s.name, Video: s.codec, Color: s.colour, Audio: s.tone > 0, ToneHz: s.tone, ScreenShare: s.screen, PIN: pin,
				})}
			}
	}},
}

// TestRecordRoomKinds: two speakers (red H.264 + 400 Hz, blue VP8 + 620 Hz)
// in a grid; a third joins sharing a green screen (screenshare layout, the
// screen large, her placeholder in the column), then leaves (grid again); blue stops its camera (its tile
// shows the placeholder). The MP4 holds exactly 60 s × 30 pictures (long enough for a loaded machine, where joining takes a publisher up to 30 s) and
// both tones; no secret reaches the log.
func TestRecordRoomKinds(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	for _, k := range roomKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			roomURL, creds, secrets, publish := k.start(t)
			publish(pubSpec{id: "alice", name: "Alice", colour: recRed.hex, codec: "h264", tone: 400})
			bob := publish(pubSpec{id: "bob", name: "Bob", colour: recBlue.hex, codec: "vp8", tone: 620})
			dir := t.TempDir()
			if d := os.Getenv("ROOMCAST_KEEP_DIR"); d != "" {
				dir = d // inspect the recording after the test
			}
			out := filepath.Join(dir, k.name+".mp4")
			p := startRecord(t, nil, append(append([]string{"--log-format", "json", "record", "--room", roomURL}, creds...),
				"--layout", "grid", "--duration", "60s", "-o", out)...)
			start := p.waitLine(t, `"message":"recording"`, 20*time.Second)
			// Each step waits for the previous one's check point: joining
			// takes a publisher 1-3 s here (media generation, ICE), so the
			// check times follow the events, not a fixed schedule.
			since := func() float64 { return time.Since(start).Seconds() }
			sleepTo := func(s float64) { time.Sleep(time.Until(start.Add(time.Duration(s * float64(time.Second))))) }
			sleepTo(3)
			screen := publish(pubSpec{id: "carol", name: "Carol", colour: recGreen.hex, codec: "vp8", screen: true})
			shared := since()
			sleepTo(shared + 3.5)
			screen.Leave()
			left := since()
			sleepTo(left + 3)
			bob.StopVideo()
			stopped := since()
			t.Logf("screen shared at %.2f s, left at %.2f s, camera stopped at %.2f s", shared, left, stopped)
			if stopped+4 > 60 {
				t.Fatalf("the timeline ran late (camera stopped at %.1f s): the machine is overloaded", stopped)
			}
			if code := p.wait(t, 70*time.Second); code != 0 {
				t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
			}
			se := p.stderr()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("roomcast's log:\n%s", tail(se, 80))
				}
			})
			for _, s := range secrets {
				if strings.Contains(se, s) {
					t.Fatal("a secret reached the log")
				}
			}
			finalised(t, out)
			if got := len(probePackets(t, out, "v")); got != 1800 {
				t.Errorf("recording has %d pictures, want 1800 (60 s × 30 fps)", got)
			}
			checks := []struct {
				at   float64
				kind layout.Kind
				srcs []layout.Source
				want []string // main tile first for screenshare; sorted otherwise
			}{
				{2.5, layout.Grid, sources(2), []string{"blue", "red"}},
				// Carol shares a screen and no camera: her participant tile
				// (placeholder) joins the column beside the large screen.
				{shared + 2.5, layout.Screenshare, append(sources(3), layout.Source{ID: "3", Screen: true}), []string{"green", "blue", "placeholder", "red"}},
				{left + 2.5, layout.Grid, sources(2), []string{"blue", "red"}},
				{stopped + 3.5, layout.Grid, sources(2), []string{"placeholder", "red"}},
			}
			var idx []int
			for _, c := range checks {
				idx = append(idx, int(math.Round(c.at*30)))
			}
			imgs := grabFrames(t, out, 1280, 720, idx...)
			for i, c := range checks {
				tiles := layout.Compute(layout.Params{Kind: c.kind, Width: 1280, Height: 720, Sources: c.srcs})
				var main string
				var rest []string
				for _, tl := range tiles {
					got := recTile(imgs[i], tl.Rect)
					if tl.Main && c.kind == layout.Screenshare {
						main = got
						continue
					}
					rest = append(rest, got)
				}
				sort.Strings(rest)
				var got []string
				if c.kind == layout.Screenshare {
					got = append([]string{main}, rest...)
				} else {
					got = rest
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("t=%.1fs (%v): tiles show %v, want %v", c.at, c.kind, got, c.want)
				}
			}
			x := audioMono(t, out)
			for f, until := range map[float64]float64{400: 59, 620: stopped} {
				if a := recToneAmp(span(x, 0, 1, until), f); a < 0.03 {
					t.Errorf("%g Hz tone: amplitude %.4f in the mix, want ≥ 0.03", f, a)
				}
			}
		})
	}
}

// TestRecordJanusJoinErrors: a Janus room roomcast cannot join ends the run
// within the connect timeout with exit 5 and one error line that names
// the problem and shows neither the API secret nor the PIN.
func TestRecordJanusJoinErrors(t *testing.T) {
	e2e(t)
	janustest.SkipIfShort(t)
	t.Parallel()
	const apiSecret, pin = "janus-api-s3cret", "4711-pin"
	srv := janustest.StartWith(t, janustest.Options{APISecret: apiSecret})
	id := srv.CreateRoom(janustest.RoomOptions{PIN: pin})
	dir := t.TempDir()
	good := writeSecret(t, dir, "secret", apiSecret)
	ws := fmt.Sprintf("janus+ws://127.0.0.1:%d", srv.WSPort)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no such room", []string{"--room", fmt.Sprintf("%s/%d", ws, id+1), "--janus-api-secret-file", good}, "no such room"},
		{"wrong pin", []string{"--room", fmt.Sprintf("%s/%d", ws, id), "--janus-api-secret-file", good,
			"--pin-file", writeSecret(t, dir, "pin", "x"+pin)}, "pin"},
		{"pin in the URL, wrong", []string{"--room", fmt.Sprintf("%s/%d?pin=%s", ws, id, "y"+pin), "--janus-api-secret-file", good}, "pin"},
		{"wrong api secret", []string{"--room", fmt.Sprintf("%s/%d", ws, id),
			"--janus-api-secret-file", writeSecret(t, dir, "bad", "x"+apiSecret)}, "secret"},
		{"wrong api secret over http", []string{"--room", fmt.Sprintf("janus+http://127.0.0.1:%d/janus/%d", srv.HTTPPort, id),
			"--janus-api-secret-file", filepath.Join(dir, "bad")}, "secret"},
		{"no server", []string{"--room", fmt.Sprintf("janus+ws://127.0.0.1:%d/%d", freePort(t), id), "--janus-api-secret-file", good}, "connect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "never.mp4")
			r := runCLI(t, append(append([]string{"record"}, c.args...), "--connect-timeout", "5s", "-o", out)...)
			t.Logf("exit %d after %v: %s", r.code, r.elapsed.Round(time.Millisecond), strings.TrimSpace(tail(r.stderr, 1)))
			if r.code != exitRoom {
				t.Errorf("exit %d, want %d (room error)\n%s", r.code, exitRoom, tail(r.stderr, 10))
			}
			if r.elapsed > 7*time.Second {
				t.Errorf("took %v, want the error within the 5 s connect timeout", r.elapsed)
			}
			line := errorLine(t, r)
			if !strings.Contains(strings.ToLower(line), c.want) {
				t.Errorf("error line %q does not say %q", line, c.want)
			}
			for _, s := range []string{apiSecret, pin} {
				if strings.Contains(r.stderr+r.stdout, s) {
					t.Errorf("a secret reached the output")
				}
			}
		})
	}
}

// TestRecordRoomKindsSpeaker: the server's active speaker drives the
// speaker layout for every room kind that reports one (LiveKit's speaker
// updates, Janus's talking events in a room with audiolevel_event): red
// speaks first and has the big tile, then blue does.
func TestRecordRoomKindsSpeaker(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	for _, k := range roomKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			roomURL, creds, _, publish := k.start(t)
			red := publish(pubSpec{id: "alice", name: "Alice", colour: recRed.hex, codec: "h264", tone: 400})
			blue := publish(pubSpec{id: "bob", name: "Bob", colour: recBlue.hex, codec: "vp8", tone: 620})
			out := filepath.Join(t.TempDir(), k.name+".mp4")
			p := startRecord(t, nil, append(append([]string{"--log-format", "json", "--log-level", "debug", "record", "--room", roomURL}, creds...),
				"--layout", "speaker", "--duration", "45s", "-o", out)...)
			start := p.waitLine(t, `"message":"recording"`, 20*time.Second)
			// Servers report changes of level, so the levels change after
			// roomcast joined, as real speech does. Checks follow roomcast's
			// own "active speakers" lines (debug): on a loaded machine the
			// server's detection takes seconds.
			red.SetSpeaking(true)
			first := time.Since(start).Seconds()
			redAt := p.waitLine(t, `"speakers":["`+red.ID(), 30*time.Second).Sub(start).Seconds()
			sleepTo := func(s float64) { time.Sleep(time.Until(start.Add(time.Duration(s * float64(time.Second))))) }
			sleepTo(redAt + 2)
			red.SetSpeaking(false)
			blue.SetSpeaking(true)
			blueAt := p.waitLine(t, `"speakers":["`+blue.ID(), 30*time.Second).Sub(start).Seconds()
			t.Logf("red speaking from %.2f s (shown %.2f s), blue shown at %.2f s", first, redAt, blueAt)
			if blueAt+2 > 40 {
				t.Fatalf("the timeline ran late (blue at %.1f s): the machine is overloaded", blueAt)
			}
			if code := p.wait(t, 70*time.Second); code != 0 {
				t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
			}
			se := p.stderr()
			t.Cleanup(func() {
				if t.Failed() {
					var lines []string
					for _, l := range strings.Split(se, "\n") {
						if strings.Contains(l, "speaker") || strings.Contains(l, "joined") || strings.Contains(l, "recording") {
							lines = append(lines, l)
						}
					}
					t.Logf("roomcast's log (speakers):\n%s", strings.Join(lines, "\n"))
				}
			})
			finalised(t, out)
			at := []float64{redAt + 1.5, blueAt + 1.5}
			want := []string{"red", "blue"}
			imgs := grabFrames(t, out, 1280, 720, int(math.Round(at[0]*30)), int(math.Round(at[1]*30)))
			for i, img := range imgs {
				tiles := layout.Compute(layout.Params{Kind: layout.Speaker, Width: 1280, Height: 720, Sources: sources(2), Active: "0"})
				for _, tl := range tiles {
					if tl.Main {
						if c := recTile(img, tl.Rect); c != want[i] {
							t.Errorf("t=%.1fs: the big tile shows %s, want the speaker's %s", at[i], c, want[i])
						}
					}
				}
			}
		})
	}
}
