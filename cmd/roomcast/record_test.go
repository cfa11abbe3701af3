package main

// `roomcast record` end to end: the binary joins a real livekit-server (room/
// livekit/lktest, on 127.0.0.1) where Go publishers send known colours and
// tones, records and streams to nginx-rtmp at once, and fails cleanly on bad
// credentials. Judged by decoding the MP4 and the FLV nginx recorded.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// recColour is a publisher's colour as ffmpeg paints it and as the decoded
// output should show it.
type recColour struct {
	name string
	hex  string
	yuv  media.YUV
}

func newRecColour(name string, r, g, b uint8) recColour {
	return recColour{name, fmt.Sprintf("0x%02x%02x%02x", r, g, b), media.RGB(r, g, b)}
}

var (
	recRed    = newRecColour("red", 0xd0, 0x28, 0x28)
	recBlue   = newRecColour("blue", 0x28, 0x38, 0xd0)
	recGreen  = newRecColour("green", 0x28, 0xc0, 0x38)
	recYellow = newRecColour("yellow", 0xe0, 0xd0, 0x28)
	recGrey   = newRecColour("placeholder", 0x3a, 0x3f, 0x4b)
	recBG     = newRecColour("background", 0x20, 0x22, 0x28)
	recBlack  = newRecColour("black", 0, 0, 0)
	recAll    = []recColour{recRed, recBlue, recGreen, recYellow, recGrey, recBG, recBlack}
)

// recClassify names the test colour nearest to c ("?#rrggbb" when none is
// within 16 per component).
func recClassify(c media.YUV) string {
	best, bd := "", 1<<30
	for _, k := range recAll {
		d := max(abs(int(c.Y)-int(k.yuv.Y)), abs(int(c.U)-int(k.yuv.U)), abs(int(c.V)-int(k.yuv.V)))
		if d < bd {
			best, bd = k.name, d
		}
	}
	if bd > 16 {
		return "?" + rgbHex(c)
	}
	return best
}

// recTile names what a tile shows, 70% down its middle (clear of labels,
// placeholder names and lktest's white box).
func recTile(img *media.Image, r layout.Rect) string {
	return recClassify(meanAt(img, r.X+r.W/2, r.Y+r.H*7/10))
}

// recToneAmp is the median amplitude of f over 250 ms chunks of x: robust
// to the phase jump lktest's tones make every 2 s loop (its Opus loop holds
// one padding packet more), which cancels a long Goertzel window.
func recToneAmp(x []float32, f float64) float64 {
	const n = media.SampleRate / 4
	var amps []float64
	for i := 0; i+n <= len(x); i += n {
		amps = append(amps, toneAmp(x[i:i+n], f))
	}
	if len(amps) == 0 {
		return toneAmp(x, f)
	}
	sort.Float64s(amps)
	return amps[len(amps)/2]
}

// recProc is a roomcast process running in its own process group, its
// stderr collected.
type recProc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	err   bytes.Buffer
	lines chan string
	done  chan struct{}
}

func (p *recProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err.Write(b)
}

func (p *recProc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return stripANSI(p.err.String())
}

// startRecord starts roomcast with args (and extra environment); cleanup
// kills its process group.
func startRecord(t *testing.T, env []string, args ...string) *recProc {
	t.Helper()
	p := &recProc{lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	p.cmd.Stderr = io.MultiWriter(p, pw)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default: // nobody is waiting for lines
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// waitLine waits for a stderr line containing s and returns when it came.
func (p *recProc) waitLine(t *testing.T, s string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, s) {
				return time.Now()
			}
		case <-p.done:
			t.Fatalf("roomcast exited (%v) before logging %q:\n%s", p.cmd.ProcessState, s, tail(p.stderr(), 30))
		case <-deadline:
			t.Fatalf("roomcast did not log %q within %v:\n%s", s, timeout, tail(p.stderr(), 30))
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *recProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("roomcast still running after %v:\n%s", timeout, tail(p.stderr(), 30))
	}
	return p.cmd.ProcessState.ExitCode()
}

// writeSecret writes a credential to a private file (credentials never go
// on the command line, where ps shows them).
func writeSecret(t *testing.T, dir, name, v string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecordSpeakerLayoutAndStream: `roomcast record --layout speaker`
// joins a room of three publishers (H.264 and VP8) with an API key and
// secret, records 10 s and pushes the same session to nginx-rtmp. The
// publisher who starts speaking has the big tile, the others the filmstrip;
// when another speaks instead the big tile follows. The
// MP4 holds exactly 10 s × 30 pictures and every tone; the FLV nginx recorded
// is H.264 + AAC of the same length, showing the same layout.
func TestRecordSpeakerLayoutAndStream(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	srv := lktest.StartServer(t)
	const room = "weekly"
	tones := map[string]float64{"alice": 400, "bob": 620, "carol": 940}
	alice := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: recRed.hex, Audio: true, ToneHz: 400})
	bob := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "bob", Name: "Bob", Video: "vp8", Color: recBlue.hex, Audio: true, ToneHz: 620})
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "carol", Name: "Carol", Video: "h264", Color: recGreen.hex, Audio: true, ToneHz: 940})
	n := startNginx(t, "")
	dir := t.TempDir()
	out := filepath.Join(dir, "weekly.mp4")
	secret := writeSecret(t, dir, "secret", srv.APISecret)
	p := startRecord(t, nil, "--log-format", "json", "record",
		"--room", srv.URL+"/"+room, "--api-key", srv.APIKey, "--api-secret-file", secret,
		"--layout", "speaker", "--duration", "10s", "-o", out, "--stream", n.url("weekly"))
	start := p.waitLine(t, `"message":"recording"`, 15*time.Second)
	// The server reports changes of audio level only, never the current
	// speakers to a newcomer: lktest's constant levels must change after
	// roomcast joined (real speech changes all the time).
	alice.SetSpeaking(true)
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	alice.SetSpeaking(false)
	bob.SetSpeaking(true)
	switched := time.Since(start).Seconds()
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 30))
	}
	se := p.stderr()
	for _, s := range []string{srv.APISecret} {
		if strings.Contains(se, s) {
			t.Fatal("the API secret reached the log")
		}
	}
	t.Logf("speaker switched at %.2f s", switched)

	finalised(t, out)
	if got := len(probePackets(t, out, "v")); got != 300 {
		t.Errorf("recording has %d pictures, want 300 (10 s × 30 fps)", got)
	}
	checkSpeaker := func(file string, at []float64, want []string) {
		t.Helper()
		imgs := grabFrames(t, file, 1280, 720, func() []int {
			var idx []int
			for _, s := range at {
				idx = append(idx, int(math.Round(s*30)))
			}
			return idx
		}()...)
		for i, img := range imgs {
			tiles := layout.Compute(layout.Params{Kind: layout.Speaker, Width: 1280, Height: 720, Sources: sources(3), Active: "0"})
			var strip []string
			for _, tl := range tiles {
				c := recTile(img, tl.Rect)
				if tl.Main {
					if c != want[i] {
						t.Errorf("%s t=%.1fs: the big tile shows %s, want the speaker's %s", filepath.Base(file), at[i], c, want[i])
					}
					continue
				}
				strip = append(strip, c)
			}
			sort.Strings(strip)
			var others []string
			for _, c := range []string{"red", "blue", "green"} {
				if c != want[i] {
					others = append(others, c)
				}
			}
			sort.Strings(others)
			if !slices.Equal(strip, others) {
				t.Errorf("%s t=%.1fs: filmstrip shows %v, want %v (and nothing else: no tile for the recorder)", filepath.Base(file), at[i], strip, others)
			}
		}
	}
	checkSpeaker(out, []float64{3.0, switched + 3.5}, []string{"red", "blue"})
	x := audioMono(t, out)
	for id, f := range tones {
		if a := recToneAmp(span(x, 0, 1, 9.5), f); a < 0.03 {
			t.Errorf("%s's %g Hz tone: amplitude %.4f in the mix, want ≥ 0.03", id, f, a)
		}
	}

	// The stream: nginx closes the FLV once roomcast hung up.
	var flv string
	deadline := time.Now().Add(5 * time.Second)
	for {
		if recs := n.recordings(t); len(recs) == 1 {
			flv = recs[0]
			st1, _ := os.Stat(flv)
			time.Sleep(300 * time.Millisecond)
			if st2, _ := os.Stat(flv); st1 != nil && st2 != nil && st1.Size() == st2.Size() && st2.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx recorded %v, want one FLV", n.recordings(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkFLV(t, flv, 10)
	checkSpeaker(flv, []float64{3.0, switched + 3.5}, []string{"red", "blue"})
}

// TestRecordJoinErrors: credentials or a room roomcast cannot use end the
// run within 10 s with exit 5 and one clear error line, without printing
// the credential.
func TestRecordJoinErrors(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	srv := lktest.StartServer(t)
	dir := t.TempDir()
	badSecret := strings.Repeat("0123456789abcdef", 4)
	mint := func(key, secret, room string, opts ...lktest.TokenOption) string {
		tok, err := lktest.MintToken(key, secret, room, "roomcast-test", "roomcast", append(opts, lktest.Hidden())...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	closed := fmt.Sprintf("ws://127.0.0.1:%d", testnet.Port(t))
	cases := []struct {
		name   string
		secret string // must not be printed
		args   []string
		want   string // in the error line, lower case
	}{
		{"token signed with another secret", "", []string{"--room", srv.URL + "/lobby", "--token-file",
			writeSecret(t, dir, "forged", mint(srv.APIKey, badSecret, "lobby"))}, "unauthorized"},
		{"token for another room", "", []string{"--room", srv.URL + "/lobby", "--token-file",
			writeSecret(t, dir, "other", mint(srv.APIKey, srv.APISecret, "boardroom"))}, "another room"},
		{"unknown API key", badSecret, []string{"--room", srv.URL + "/lobby", "--api-key", "APInobody",
			"--api-secret-file", writeSecret(t, dir, "badsecret", badSecret)}, "unauthorized"},
		{"no server", srv.APISecret, []string{"--room", closed + "/lobby", "--api-key", srv.APIKey,
			"--api-secret-file", writeSecret(t, dir, "secret", srv.APISecret)}, "connect"},
		{"nobody speaks", srv.APISecret, []string{"--room", srv.URL + "/empty", "--api-key", srv.APIKey,
			"--api-secret-file", filepath.Join(dir, "secret"), "--wait-first-speaker", "2s"}, "no speaker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "never.mp4")
			r := runCLI(t, append(append([]string{"record"}, c.args...), "-o", out)...)
			t.Logf("exit %d after %v: %s", r.code, r.elapsed.Round(time.Millisecond), strings.TrimSpace(tail(r.stderr, 1)))
			if r.code != exitRoom {
				t.Errorf("exit %d, want %d (room error)\n%s", r.code, exitRoom, tail(r.stderr, 10))
			}
			if r.elapsed > 10*time.Second {
				t.Errorf("took %v, want the error within 10 s", r.elapsed)
			}
			line := errorLine(t, r)
			if !strings.Contains(strings.ToLower(line), c.want) {
				t.Errorf("error line %q does not say %q", line, c.want)
			}
			for _, s := range []string{c.secret, badSecret} {
				if s != "" && strings.Contains(r.stderr+r.stdout, s) {
					t.Errorf("a secret reached the output")
				}
			}
			for _, f := range c.args {
				if b, err := os.ReadFile(f); err == nil && strings.Contains(r.stderr+r.stdout, strings.TrimSpace(string(b))) {
					t.Errorf("the token in %s reached the output", f)
				}
			}
			if st, err := os.Stat(out); err == nil {
				t.Errorf("a failed join left %s (%d bytes)", out, st.Size())
			}
		})
	}
}

// TestRecordSessionControl: a host starts roomcast before anyone is in the
// room (--wait-first-speaker), the speaker joins 2 s later, talks for 4 s
// and leaves; roomcast stops 2 s after the room emptied (--empty-timeout)
// with exit 0 and a finalised MP4 that begins with the speaker, not with
// the wait.
func TestRecordSessionControl(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	srv := lktest.StartServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "session.mp4")
	secret := writeSecret(t, dir, "secret", srv.APISecret)
	p := startRecord(t, nil, "--log-format", "json", "record", "--room", "session", "--livekit-url", srv.URL,
		"--api-key", srv.APIKey, "--api-secret-file", secret, "--wait-first-speaker", "30s", "--empty-timeout", "2s", "-o", out)
	p.waitLine(t, `"message":"joined"`, 15*time.Second)
	time.Sleep(2 * time.Second)
	alice := lktest.StartPublisher(t, srv, "session", lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: recRed.hex, Audio: true, ToneHz: 400})
	start := p.waitLine(t, `"message":"recording"`, 10*time.Second)
	time.Sleep(time.Until(start.Add(4 * time.Second)))
	alice.Close()
	left := time.Since(start)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit %d\n%s", code, tail(p.stderr(), 20))
	}
	stopped := time.Since(start)
	t.Logf("recording started when alice published; she left at %.2f s; roomcast stopped at %.2f s", left.Seconds(), stopped.Seconds())
	if !strings.Contains(p.stderr(), "room empty: stopping") {
		t.Errorf("roomcast did not stop for the empty room:\n%s", tail(p.stderr(), 10))
	}
	if d := stopped - left; d < 2*time.Second || d > 4*time.Second {
		t.Errorf("stopped %.2f s after the room emptied, want 2 s (--empty-timeout) plus a little", d.Seconds())
	}
	finalised(t, out)
	n := len(probePackets(t, out, "v"))
	if got := float64(n) / 30; got < left.Seconds()+1.5 || got > stopped.Seconds()+0.5 {
		t.Errorf("the recording holds %.2f s, want from alice's arrival to the stop (%.2f–%.2f s)", got, left.Seconds()+2, stopped.Seconds())
	}
	// It starts with alice (the wait is not recorded): her colour fills
	// the single tile within the first second, and stays until she left.
	imgs := grabFrames(t, out, 1280, 720, 30, int(left.Seconds()*30)-15)
	for i, img := range imgs {
		tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: 1280, Height: 720, Sources: sources(1)})
		if c := recTile(img, tiles[0].Rect); c != recRed.name {
			t.Errorf("picture %d: the tile shows %s, want alice (red)", []int{30, int(left.Seconds()*30) - 15}[i], c)
		}
	}
}
