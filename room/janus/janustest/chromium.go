package janustest

import (
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room/livekit/lktest"
)

//go:embed page/publisher.html
var publisherPage []byte

// JanusJS is Debian's janus.js (libjs-janus-gateway), what the page loads.
const JanusJS = "/usr/share/javascript/janus-gateway/janus.js"

// ChromiumOptions configure a browser publisher.
type ChromiumOptions struct {
	Display string
	// Color of the fake camera (ffmpeg colour), default "green"; ToneHz of
	// the fake microphone, default 440; Width and Height default 640x360.
	Color         string
	ToneHz        int
	Width, Height int
	PIN           string
}

// ChromiumEvent is a progress report from the page.
type ChromiumEvent struct {
	At           time.Time
	Name, Detail string // connected, joined (Detail: the publisher ID), published, error…
}

// Chromium is headless Chromium publishing its fake camera and microphone
// into a VideoRoom with Janus's own janus.js, from a page served on
// 127.0.0.1.
type Chromium struct {
	Events chan ChromiumEvent

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	srv    *http.Server
	cmds   chan string
	once   sync.Once
	logf   string
}

// StartChromium launches the browser publisher; it is killed (by process
// group) on test cleanup. Chromium's log (which holds the page URL with
// any secret) stays in a file of the test's temp dir.
func StartChromium(t testing.TB, s *Server, room uint64, o ChromiumOptions) *Chromium {
	t.Helper()
	bin, err := lktest.ChromiumBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(JanusJS); err != nil {
		t.Fatalf("janus.js not installed (run scripts/peers.sh): %v", err)
	}
	if o.Display == "" {
		o.Display = "chromium-" + randHex(3)
	}
	if o.Width == 0 {
		o.Width, o.Height = 640, 360
	}
	if o.Color == "" {
		o.Color = "green"
	}
	if o.ToneHz == 0 {
		o.ToneHz = 440
	}
	dir := t.TempDir()
	y4m, wav := filepath.Join(dir, "camera.y4m"), filepath.Join(dir, "mic.wav")
	ffmpeg := func(args ...string) {
		cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("janustest: ffmpeg: %v\n%s", err, out)
		}
	}
	ffmpeg("-f", "lavfi", "-i", fmt.Sprintf("color=c=%s:s=%dx%d:r=30,drawbox=x='mod(t*120,iw-60)':y=30:w=60:h=60:c=white:t=fill", o.Color, o.Width, o.Height),
		"-t", "2", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", y4m)
	ffmpeg("-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000", o.ToneHz), "-t", "4", "-ac", "1", "-c:a", "pcm_s16le", wav)

	c := &Chromium{Events: make(chan ChromiumEvent, 64), t: t, cmds: make(chan string, 8), exited: make(chan struct{}), logf: filepath.Join(dir, "chromium.log")}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(publisherPage)
	})
	mux.HandleFunc("/janus.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, JanusJS) })
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		select {
		case c.Events <- ChromiumEvent{At: time.Now(), Name: r.URL.Query().Get("ev"), Detail: r.URL.Query().Get("detail")}:
		default:
		}
	})
	mux.HandleFunc("/cmd", func(w http.ResponseWriter, r *http.Request) {
		select {
		case cmd := <-c.cmds:
			_, _ = w.Write([]byte(cmd))
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()

	q := url.Values{}
	q.Set("server", s.WSURL())
	q.Set("room", strconv.FormatUint(room, 10))
	q.Set("display", o.Display)
	if o.PIN != "" {
		q.Set("pin", o.PIN)
	}
	cred := s.Credentials()
	if cred.APISecret != "" {
		q.Set("apisecret", cred.APISecret)
	}
	if cred.Token != "" {
		q.Set("token", cred.Token)
	}
	logf, err := os.Create(c.logf)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--mute-audio", "--allow-loopback-in-peer-connection",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
		"--use-file-for-fake-video-capture="+y4m, "--use-file-for-fake-audio-capture="+wav,
		"http://"+ln.Addr().String()+"/?"+q.Encode())
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("janustest: start chromium: %v", err)
	}
	go func() {
		_ = c.cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	t.Cleanup(c.Close)
	return c
}

// WaitFor waits for the page to report name; a page error or the browser
// exiting fails the test.
func (c *Chromium) WaitFor(name string, timeout time.Duration) ChromiumEvent {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-c.Events:
			if ev.Name == name {
				return ev
			}
			if ev.Name == "error" {
				c.t.Fatalf("janustest: chromium page error: %s", ev.Detail)
			}
		case <-c.exited:
			c.t.Fatalf("janustest: chromium exited before %q", name)
		case <-deadline:
			c.t.Fatalf("janustest: chromium: no %q within %v", name, timeout)
		}
	}
}

// Command sends the page "leave" or "unpublish".
func (c *Chromium) Command(cmd string) { c.cmds <- cmd }

// Close kills the browser's process group and stops the page server.
func (c *Chromium) Close() {
	c.once.Do(func() {
		if c.cmd != nil && c.cmd.Process != nil {
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-c.exited:
			case <-time.After(10 * time.Second):
			}
		}
		if c.srv != nil {
			_ = c.srv.Close()
		}
	})
}
