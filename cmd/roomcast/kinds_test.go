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
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
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
	// Freeze loses every packet for d, as a network that stops delivering
	// (the server is told nothing).
	Freeze(d time.Duration)
}

type pubSpec struct {
	id, name, colour, codec string
	tone                    int
	screen                  bool
	// video and audio replace the generated colour and tone (looped
	// samples captured from epoch on; keyframe requests unanswered so the
	// pictures keep their capture times).
	video, audio [][]byte
	epoch        time.Time
	// attrs are participant attributes from the start (LiveKit token
	// attributes; Janus stream descriptions' key=value fields).
	attrs map[string]string
}

// roomKind starts a server of one kind and returns the --room URL, the
// credential arguments and a way to publish into the room.
type roomKind struct {
	name  string
	start func(t *testing.T) (roomURL string, args []string, secrets []string, publish func(pubSpec) kindPub)
	// restart restarts the server started last by start (on the same
	// ports; every session and room lost) and brings the room back as an
	// operator would; republish is true when the kind's publishers do not
	// rejoin by themselves (janustest's publishers have no reconnect
	// logic; LiveKit's SDK rejoins).
	restart func(t *testing.T) (republish bool)
}

// lastServer is what roomKind.restart restarts, per test.
var (
	lastServerMu sync.Mutex
	lastServer   = map[*testing.T]func() bool{}
)

func setRestart(t *testing.T, f func() bool) {
	lastServerMu.Lock()
	defer lastServerMu.Unlock()
	lastServer[t] = f
	t.Cleanup(func() {
		lastServerMu.Lock()
		defer lastServerMu.Unlock()
		delete(lastServer, t)
	})
}

func restartLast(t *testing.T) bool {
	lastServerMu.Lock()
	f := lastServer[t]
	lastServerMu.Unlock()
	if f == nil {
		t.Fatal("no server to restart")
	}
	return f()
}

type lkPub struct{ p *lktest.Publisher }

func (p lkPub) StopVideo() { _ = p.p.Mute("video", true) }
func (p lkPub) Leave()     { p.p.Close() }

func (p lkPub) SetSpeaking(on bool)    { p.p.SetSpeaking(on) }
func (p lkPub) Freeze(d time.Duration) { p.p.Freeze(d) }
func (p lkPub) ID() string             { return p.p.Identity }

type janusPub struct{ p *janustest.Publisher }

func (p janusPub) StopVideo() { p.p.Vanish() }
func (p janusPub) Leave()     { _ = p.p.Leave() }

func (p janusPub) SetSpeaking(on bool)    { p.p.SetSpeaking(on) }
func (p janusPub) Freeze(d time.Duration) { p.p.Freeze(d) }
func (p janusPub) ID() string             { return fmt.Sprint(p.p.ID) }

// SetAttributes changes the publisher's attributes mid-session (an
// SDP-less configure with new stream descriptions).
func (p janusPub) SetAttributes(a map[string]string) error { return p.p.SetAttributes(a) }

var roomKinds = []roomKind{
	{"livekit", func(t *testing.T) (string, []string, []string, func(pubSpec) kindPub) {
		srv := lktest.StartServer(t)
		setRestart(t, func() bool { srv.Restart(); return false })
		secret := writeSecret(t, t.TempDir(), "secret", srv.APISecret)
		return srv.URL + "/kinds", []string{"--api-key", srv.APIKey, "--api-secret-file", secret}, []string{srv.APISecret},
			func(s pubSpec) kindPub {
				var token string
				if len(s.attrs) > 0 {
					token = srv.Token("kinds", s.id, s.name, func(at *auth.AccessToken, _ *auth.VideoGrant) { at.SetAttributes(s.attrs) })
				}
				return lkPub{lktest.StartPublisher(t, srv, "kinds", lktest.PublisherOptions{
					Identity: s.id, Name: s.name, Video: s.codec, Color: s.colour, Audio: s.tone > 0 || s.audio != nil, ToneHz: s.tone, ScreenShare: s.screen,
					VideoSamples: s.video, AudioSamples: s.audio, Epoch: s.epoch, KeepCaptureClock: s.video != nil, Token: token,
				})}
			}
	}, restartLast},
	{"janus", func(t *testing.T) (string, []string, []string, func(pubSpec) kindPub) {
		const apiSecret, pin = "janus-api-s3cret", "7351"
		srv := janustest.StartWith(t, janustest.Options{APISecret: apiSecret})
		id := srv.CreateRoom(janustest.RoomOptions{PIN: pin, AudioLevelEvents: true})
		setRestart(t, func() bool {
			srv.Restart()
			srv.CreateRoom(janustest.RoomOptions{ID: id, PIN: pin, AudioLevelEvents: true})
			return true
		})
		// Every pair Janus selects is checked for 127.0.0.1 at the end
		// (janustest); roomcast's own must have been among them.
		t.Cleanup(func() {
			if _, ok := srv.WaitSelectedPair("roomcast", 0); !ok && !t.Failed() {
				t.Error("janus reported no selected ICE pair for roomcast's subscription")
			}
		})
		dir := t.TempDir()
		return fmt.Sprintf("janus+ws://127.0.0.1:%d/%d", srv.WSPort, id),
			[]string{"--janus-api-secret-file", writeSecret(t, dir, "secret", apiSecret), "--pin-file", writeSecret(t, dir, "pin", pin)},
			[]string{apiSecret},
			func(s pubSpec) kindPub {
				return janusPub{janustest.StartPublisher(t, srv, id, janustest.PublisherOptions{
					Display: s.name, Video: s.codec, Color: s.colour, Audio: s.tone > 0 || s.audio != nil, ToneHz: s.tone, ScreenShare: s.screen, PIN: pin,
					VideoSamples: s.video, AudioSamples: s.audio, Epoch: s.epoch, KeepCaptureClock: s.video != nil,
					Attributes: s.attrs,
				})}
			}
	}, restartLast},
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
		{"no server", []string{"--room", fmt.Sprintf("janus+ws://127.0.0.1:%d/%d", testnet.Port(t), id), "--janus-api-secret-file", good}, "connect"},
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

// gridTiles is the 2-speaker grid of a 1280x720 recording, left tile first.
func gridTiles() []layout.Tile {
	return layout.Compute(layout.Params{Kind: layout.Grid, Width: 1280, Height: 720, Sources: sources(2)})
}

// tileLuma is the mean luma of a tile's middle (in mediatest.LumaMeans's
// 32x18 cells, clear of its edges and its label) in every picture.
func tileLuma(t *testing.T, path string, r layout.Rect) []float64 {
	const gw, gh = mediatest.LumaGridW, mediatest.LumaGridH
	return mediatest.LumaMeans(t, path, r.X*gw/1280+2, r.Y*gh/720+r.H*gh/720/4, (r.X+r.W)*gw/1280-2, (r.Y+r.H)*gh/720-r.H*gh/720/4)
}

// TestRecordRoomKindsAVSync: two publishers capture a white flash and a
// 1 kHz beep at the same instants (the same epoch, different RTP bases,
// sent on their capture clock). In the MP4, on its own media clock, each
// flash and its beep are within 60 ms, and the two publishers' flashes
// land on the same picture ±1.
func TestRecordRoomKindsAVSync(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	video, audio := lktest.FlashBeep(t, t.TempDir())
	for _, k := range roomKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			roomURL, creds, _, publish := k.start(t)
			epoch := time.Now().Add(500 * time.Millisecond)
			publish(pubSpec{id: "ann", name: "Ann", codec: "vp8", video: video, audio: audio, epoch: epoch})
			publish(pubSpec{id: "ben", name: "Ben", codec: "vp8", video: video, audio: audio, epoch: epoch})
			dir := t.TempDir()
			if d := os.Getenv("ROOMCAST_KEEP_DIR"); d != "" {
				dir = d // inspect the recording after the test
			}
			out := filepath.Join(dir, k.name+"-sync.mp4")
			p := startRecord(t, nil, append(append([]string{"--log-format", "json", "--log-level", "debug", "record", "--room", roomURL}, creds...),
				"--layout", "grid", "--duration", "12s", "-o", out)...)
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
			}
			if os.Getenv("ROOMCAST_KEEP_DIR") != "" {
				_ = os.WriteFile(out+".log", []byte(p.stderr()), 0o644)
			}
			finalised(t, out)
			// Times are the pictures' own (the pace is TestRecordRoomKindsFreeze's).
			frames := probeFrames(t, out, "v", 0)
			v0, a0 := origins(t, out)
			ts := make([]float64, len(frames))
			for i, f := range frames {
				ts[i] = f.PTS - v0
			}
			tiles := gridTiles()
			var flashes, all [2][]float64
			for i := range flashes {
				means := tileLuma(t, out, tiles[i].Rect)
				if len(means) != len(ts) {
					t.Fatalf("ffmpeg decoded %d pictures, ffprobe lists %d", len(means), len(ts))
				}
				all[i] = mediatest.FlashOnsets(means, ts)
				// Lip sync is judged from settle s after the tile's first
				// picture (black: darker than the placeholder): until a
				// track's first sender report (Janus sends its own once a
				// second) its mapping is by arrival, and the step to the
				// sender's clock is slewed at 10 % (a 150 ms step takes
				// 1.5 s of media) rather than jumping the picture or sound.
				const settle = 2.0
				first := slices.IndexFunc(means, func(m float64) bool { return m < 60 })
				if first < 0 {
					t.Fatalf("tile %d never shows the publisher's picture", i)
				}
				for _, f := range all[i] {
					if f >= ts[first]+settle {
						flashes[i] = append(flashes[i], f)
					}
				}
				t.Logf("tile %d: first picture at %.3f s; sync judged from %.3f s", i, ts[first], ts[first]+settle)
			}
			beeps := mediatest.BeepOnsets(audioMono(t, out), a0-v0)
			t.Logf("flashes left %.3f, right %.3f; beeps %.3f", all[0], all[1], beeps)
			// Flashes come every 2 s; joining and the first keyframe take
			// a few seconds on a loaded machine.
			if len(flashes[0]) < 3 || len(flashes[1]) < 3 || len(beeps) < 3 {
				t.Fatalf("found %d+%d flashes once settled and %d beeps, want at least 3 each in 12 s", len(flashes[0]), len(flashes[1]), len(beeps))
			}
			for i, side := range []string{"left", "right"} {
				other := all[1-i]
				for _, fl := range flashes[i] {
					j := slices.IndexFunc(other, func(r float64) bool { return math.Abs(r-fl) < 0.5 })
					if j < 0 {
						t.Errorf("flash at %.3f s on the %s has no twin in the other tile", fl, side)
						continue
					}
					if d := other[j] - fl; math.Abs(d) > 1.5/30 {
						t.Errorf("the two publishers' flashes are %+.0f ms apart (at %.3f and %.3f s), want the same picture ±1", d*1000, fl, other[j])
					}
				}
			}
			for _, fs := range flashes {
				for _, fl := range fs {
					k := slices.IndexFunc(beeps, func(b float64) bool { return math.Abs(b-fl) < 0.5 })
					if k < 0 {
						t.Errorf("flash at %.3f s has no beep", fl)
						continue
					}
					d := fl - beeps[k]
					t.Logf("flash %.3f s, beep %.3f s: A/V offset %+.1f ms", fl, beeps[k], d*1000)
					if math.Abs(d) > 0.060 {
						t.Errorf("flash at %.3f s, beep at %.3f s: A/V offset %+.0f ms, want within ±60 ms", fl, beeps[k], d*1000)
					}
				}
			}
		})
	}
}

// TestRecordRoomKindsFreeze: one speaker's network stops delivering for
// 5 s (every packet lost, the server told nothing). The recording keeps
// its pace (exactly 12 s × 30 pictures), the frozen tile holds its last
// picture, then shows the placeholder with the name, and comes back when
// packets flow again; the other speaker moves and sounds throughout.
func TestRecordRoomKindsFreeze(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	const fA, fB = 400.0, 620.0
	gen := t.TempDir()
	red := lktest.GenerateVideo(t, gen, lktest.VideoSpec{Codec: "h264", Graph: lktest.MovingBox(recRed.hex, 320, 240, 30)})
	blueDir := filepath.Join(gen, "blue")
	if err := os.Mkdir(blueDir, 0o755); err != nil {
		t.Fatal(err)
	}
	blue := lktest.GenerateVideo(t, blueDir, lktest.VideoSpec{Codec: "vp8", Graph: lktest.MovingBox(recBlue.hex, 320, 240, 30)})
	for _, k := range roomKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			roomURL, creds, _, publish := k.start(t)
			publish(pubSpec{id: "alice", name: "Alice", codec: "h264", tone: int(fA), video: red})
			bob := publish(pubSpec{id: "bob", name: "Bob", codec: "vp8", tone: int(fB), video: blue})
			out := filepath.Join(t.TempDir(), k.name+".mp4")
			p := startRecord(t, nil, append(append([]string{"--log-format", "json", "record", "--room", roomURL}, creds...),
				"--layout", "grid", "--duration", "12s", "-o", out)...)
			start := p.waitLine(t, `"message":"recording"`, 20*time.Second)
			time.Sleep(time.Until(start.Add(2500 * time.Millisecond)))
			bob.Freeze(5 * time.Second)
			fz := time.Since(start).Seconds()
			t.Logf("bob frozen from %.2f s to %.2f s", fz, fz+5)
			if fz > 3.5 {
				t.Fatalf("the timeline ran late (freeze at %.1f s): the machine is overloaded", fz)
			}
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
			}
			se := p.stderr()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("roomcast's log:\n%s", tail(se, 60))
				}
			})
			finalised(t, out)
			checkPace(t, out, 12*30, 30, se)
			times := []float64{2.0, fz + 0.8, fz + 1.3, fz + 3.5, fz + 4.5, fz + 7.5}
			imgs := picturesAt(t, out, times...)
			tiles := gridTiles()
			// Which tile is whose: alice's is red before the freeze.
			ar, br := tiles[0].Rect, tiles[1].Rect
			if recTile(imgs[0], br) == recRed.name {
				ar, br = br, ar
			}
			want := []struct{ alice, bob, what string }{
				{"red", "blue", "before the freeze"},
				{"red", "blue", "frozen, within the stall timeout: bob's last picture held"},
				{"red", "blue", "frozen, within the stall timeout: bob's last picture held"},
				{"red", "placeholder", "frozen past the stall timeout: placeholder"},
				{"red", "placeholder", "frozen past the stall timeout: placeholder"},
				{"red", "blue", "2.5 s after the network came back"},
			}
			for i, w := range want {
				when := fmt.Sprintf("t=%.2fs (%s)", times[i], w.what)
				if c := recTile(imgs[i], ar); c != w.alice {
					t.Errorf("%s: alice's tile shows %s, want %s", when, c, w.alice)
				}
				if c := recTile(imgs[i], br); c != w.bob {
					t.Errorf("%s: bob's tile shows %s, want %s", when, c, w.bob)
				}
			}
			if !mediatest.HasCentredName(imgs[3], br) {
				t.Errorf("t=%.2fs: bob's placeholder carries no name", times[3])
			}
			// Held means held: bob's box did not move between the two frozen
			// pictures; alice's did (her pictures kept coming).
			if b1, b2 := mediatest.BoxX(imgs[1], br), mediatest.BoxX(imgs[2], br); b1 < 0 || math.Abs(b1-b2) > 1 {
				t.Errorf("bob's held picture changed during the freeze: box at %.1f then %.1f", b1, b2)
			}
			if a1, a2 := mediatest.BoxX(imgs[1], ar), mediatest.BoxX(imgs[2], ar); a1 < 0 || a2 < 0 || math.Abs(a1-a2) < 3 {
				t.Errorf("alice's picture did not move during bob's freeze: box at %.1f then %.1f", a1, a2)
			}
			x := audioMono(t, out)
			for _, c := range []struct {
				a, b            float64
				present, absent []float64
			}{
				{0.5, fz - 0.1, []float64{fA, fB}, nil},
				{fz + 0.5, fz + 4.9, []float64{fA}, []float64{fB}},
				{fz + 6, 11.8, []float64{fA, fB}, nil},
			} {
				w := span(x, 0, c.a, c.b)
				for _, f := range c.present {
					if a := recToneAmp(w, f); a < 0.03 {
						t.Errorf("%.1f–%.1f s: %g Hz amplitude %.4f, want ≥ 0.03 (speaker not in the mix)", c.a, c.b, f, a)
					}
				}
				for _, f := range c.absent {
					if a := recToneAmp(w, f); a > 0.006 {
						t.Errorf("%.1f–%.1f s: %g Hz amplitude %.4f, want ≤ 0.006 (frozen speaker in the mix)", c.a, c.b, f, a)
					}
				}
			}
		})
	}
}

// picturesAt decodes the pictures on show at the given media times (0 =
// the first picture), found by their timestamps rather than by index: a
// compositor that skips frames under overload (MaxLag) leaves gaps, after
// which index/fps is no longer the time.
func picturesAt(t *testing.T, path string, times ...float64) []*media.Image {
	t.Helper()
	fs := probeFrames(t, path, "v", 0)
	if len(fs) == 0 {
		t.Fatalf("%s: no pictures", path)
	}
	var idx []int
	for _, at := range times {
		i := sort.Search(len(fs), func(i int) bool { return fs[i].PTS-fs[0].PTS > at+0.001 }) - 1
		idx = append(idx, max(i, 0))
	}
	return grabFrames(t, path, 1280, 720, idx...)
}

// checkPace: exactly n pictures, one every 1/fps. A miss names the
// compositor's own account from roomcast's log (se): frames it skipped
// because it ran more than MaxLag behind real time (an overloaded machine).
func checkPace(t *testing.T, path string, n, fps int, se string) {
	t.Helper()
	fs := probeFrames(t, path, "v", 0)
	if len(fs) != n {
		var stats string
		for _, l := range strings.Split(se, "\n") {
			if strings.Contains(l, `"message":"compositor stopped"`) {
				stats = l
			}
		}
		t.Errorf("recording has %d pictures, want %d; compositor: %s", len(fs), n, stats)
	}
	for i := 1; i < len(fs); i++ {
		if d := fs[i].PTS - fs[i-1].PTS; math.Abs(d-1/float64(fps)) > 1e-3 {
			t.Errorf("picture %d: PTS step %.4f s, want %.4f s", i, d, 1/float64(fps))
			break
		}
	}
}

// TestRecordRoomKindsRestart: the server restarts mid-recording (every
// session and room lost, back on the same address). `roomcast record`
// keeps its pace throughout (exactly 30 s × 30 pictures), rejoins, and the
// two speakers' tiles and tones come back; the run ends with exit 0 (a
// recording stopped by its duration is a success, README's exit codes).
func TestRecordRoomKindsRestart(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	const fA, fB = 400.0, 620.0
	for _, k := range roomKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			roomURL, creds, _, publish := k.start(t)
			specs := []pubSpec{
				{id: "alice", name: "Alice", colour: recRed.hex, codec: "h264", tone: int(fA)},
				{id: "bob", name: "Bob", colour: recBlue.hex, codec: "vp8", tone: int(fB)},
			}
			for _, s := range specs {
				publish(s)
			}
			out := filepath.Join(t.TempDir(), k.name+"-restart.mp4")
			p := startRecord(t, nil, append(append([]string{"--log-format", "json", "record", "--room", roomURL}, creds...),
				"--layout", "grid", "--duration", "30s", "-o", out)...)
			start := p.waitLine(t, `"message":"recording"`, 20*time.Second)
			since := func(at time.Time) float64 { return at.Sub(start).Seconds() }
			for range specs {
				p.waitLine(t, `"message":"first video decoded"`, 20*time.Second)
			}
			time.Sleep(time.Until(start.Add(3 * time.Second)))
			down := since(time.Now())
			if republish := k.restart(t); republish {
				for _, s := range specs {
					publish(s)
				}
			}
			up := since(time.Now())
			// Back when both speakers' pictures decode again.
			var back float64
			for range specs {
				back = since(p.waitLine(t, `"message":"first video decoded"`, 25*time.Second))
			}
			t.Logf("server down at %.2f s, up (and publishing) at %.2f s, both pictures back at %.2f s", down, up, back)
			if back+4 > 30 {
				t.Fatalf("the pictures came back at %.1f s, too late to check before the end: the machine is overloaded", back)
			}
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("exit %d, want 0\n%s", code, tail(p.stderr(), 30))
			}
			se := p.stderr()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("roomcast's log:\n%s", tail(se, 60))
				}
			})
			finalised(t, out)
			checkPace(t, out, 30*30, 30, se)
			at := []float64{2, back + 2.5}
			imgs := picturesAt(t, out, at...)
			for i, img := range imgs {
				var got []string
				for _, tl := range gridTiles() {
					got = append(got, recTile(img, tl.Rect))
				}
				sort.Strings(got)
				if !slices.Equal(got, []string{"blue", "red"}) {
					t.Errorf("t=%.1fs: tiles show %v, want blue and red (no duplicate, no missing tile)", at[i], got)
				}
			}
			x := audioMono(t, out)
			for _, f := range []float64{fA, fB} {
				if a := recToneAmp(span(x, 0, back+0.5, 29.8), f); a < 0.03 {
					t.Errorf("after the restart: %g Hz amplitude %.4f, want ≥ 0.03", f, a)
				}
			}
		})
	}
}

// TestRecordRoomKindsVanish: a speaker's media stops without a word to the
// server (a publisher whose network died; the server still lists it). Its
// tile holds the last picture, shows the placeholder with the name after
// the 2 s stall timeout and keeps it, its tone leaves the mix, the other
// speaker carries on. Janus (which never notices) has the dead streams
// ended after the documented 10 s without a packet; LiveKit's server
// decides about its participants itself.
func TestRecordRoomKindsVanish(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	const fA, fB = 400.0, 620.0
	for _, k := range roomKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			roomURL, creds, _, publish := k.start(t)
			publish(pubSpec{id: "alice", name: "Alice", colour: recRed.hex, codec: "h264", tone: int(fA)})
			bob := publish(pubSpec{id: "bob", name: "Bob", colour: recBlue.hex, codec: "vp8", tone: int(fB)})
			out := filepath.Join(t.TempDir(), k.name+"-vanish.mp4")
			p := startRecord(t, nil, append(append([]string{"--log-format", "json", "record", "--room", roomURL}, creds...),
				"--layout", "grid", "--duration", "20s", "-o", out)...)
			start := p.waitLine(t, `"message":"recording"`, 20*time.Second)
			time.Sleep(time.Until(start.Add(3 * time.Second)))
			bob.Freeze(time.Hour)
			gone := time.Since(start).Seconds()
			ended := -1.0
			if k.name == "janus" {
				ended = p.waitLine(t, `"message":"no media: track ended"`, 20*time.Second).Sub(start).Seconds()
				if d := ended - gone; d < 9 || d > 13 {
					t.Errorf("the vanished streams ended %.1f s after their last packet, want the documented 10 s", d)
				}
			}
			t.Logf("bob vanished at %.2f s; streams ended at %.2f s", gone, ended)
			if gone > 4.5 || ended > 16 {
				t.Fatalf("the timeline ran late: the machine is overloaded")
			}
			if code := p.wait(t, 60*time.Second); code != 0 {
				t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
			}
			se := p.stderr()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("roomcast's log:\n%s", tail(se, 60))
				}
			})
			finalised(t, out)
			checkPace(t, out, 20*30, 30, se)
			times := []float64{2, gone + 1.2, gone + 3.5, 19.5}
			imgs := picturesAt(t, out, times...)
			tiles := gridTiles()
			ar, br := tiles[0].Rect, tiles[1].Rect
			if recTile(imgs[0], br) == recRed.name {
				ar, br = br, ar
			}
			for i, w := range []struct{ alice, bob, what string }{
				{"red", "blue", "before"},
				{"red", "blue", "within the stall timeout: bob's last picture held"},
				{"red", "placeholder", "past the stall timeout"},
				{"red", "placeholder", "at the end (the server still lists bob)"},
			} {
				when := fmt.Sprintf("t=%.2fs (%s)", times[i], w.what)
				if c := recTile(imgs[i], ar); c != w.alice {
					t.Errorf("%s: alice's tile shows %s, want %s", when, c, w.alice)
				}
				if c := recTile(imgs[i], br); c != w.bob {
					t.Errorf("%s: bob's tile shows %s, want %s", when, c, w.bob)
				}
			}
			for _, i := range []int{2, 3} {
				if !mediatest.HasCentredName(imgs[i], br) {
					t.Errorf("t=%.2fs: bob's placeholder carries no name", times[i])
				}
			}
			x := audioMono(t, out)
			if a := recToneAmp(span(x, 0, gone+0.5, 19.8), fB); a > 0.006 {
				t.Errorf("bob's %g Hz tone after he vanished: amplitude %.4f, want ≤ 0.006", fB, a)
			}
			if a := recToneAmp(span(x, 0, gone+0.5, 19.8), fA); a < 0.03 {
				t.Errorf("alice's %g Hz tone after bob vanished: amplitude %.4f, want ≥ 0.03", fA, a)
			}
		})
	}
}
