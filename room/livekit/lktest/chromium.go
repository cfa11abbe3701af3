package lktest

import (
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room/livekit/sdklog"
)

//go:embed page/publisher.html
var publisherPage []byte

// LKClientVersion is the livekit-client release the page loads, installed
// by scripts/peers.d/30-livekit.sh into $ROOMCAST_CACHE/lkclient.
const LKClientVersion = "2.23.0"

// ChromiumOptions configures a browser publisher.
type ChromiumOptions struct {
	Identity, Name string
	// Codec is the video codec livekit-client publishes: "vp8" (default),
	// "h264", "vp9" or "av1".
	Codec string
	// Simulcast publishes two layers (half and full size); default true.
	NoSimulcast bool
	// Color of the fake camera (ffmpeg colour name or 0xRRGGBB), default
	// "green"; ToneHz of the fake microphone, default 440.
	Color  string
	ToneHz int
	// Width and Height of the fake camera, default 640x360.
	Width, Height int
	// Frames is a y4m file to use instead of a generated one; WAV likewise.
	Y4M, WAV string
}

// ChromiumEvent is a progress report from the page.
type ChromiumEvent struct {
	At     time.Time
	Name   string // connected, published, done, error, disconnected, ...
	Detail string
}

// Chromium is a headless Chromium running livekit-client on a page served
// from 127.0.0.1, publishing its fake camera and microphone.
type Chromium struct {
	Identity string
	// Started is when the browser process was launched.
	Started time.Time
	// Events receives the page's reports (buffered; unread ones are dropped).
	Events chan ChromiumEvent

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	srv    *http.Server
	cmds   chan string
	once   sync.Once
	mu     sync.Mutex
	errs   []string
	seen   []ChromiumEvent
	logf   string
}

// ChromiumBinary finds Debian's chromium.
func ChromiumBinary() (string, error) {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium not installed (run scripts/peers.sh as root)")
}

func lkClientScript() (string, error) {
	p := filepath.Join(Cache(), "lkclient", "node_modules", "livekit-client", "dist", "livekit-client.umd.js")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("livekit-client %s not installed at %s (run scripts/peers.sh): %w", LKClientVersion, p, err)
	}
	return p, nil
}

// StartChromium launches headless Chromium publishing into room on s. It
// is killed (by process group) on test cleanup. Chromium's own log holds
// the join token, so it goes to a file in the test's temp dir and is only
// summarised (errors from the page) in test output.
func StartChromium(t testing.TB, s *Server, room string, o ChromiumOptions) *Chromium {
	t.Helper()
	bin, err := ChromiumBinary()
	if err != nil {
		t.Fatal(err)
	}
	script, err := lkClientScript()
	if err != nil {
		t.Fatal(err)
	}
	if o.Identity == "" {
		o.Identity = "chromium-" + randHex(3)
	}
	if o.Name == "" {
		o.Name = o.Identity
	}
	if o.Width == 0 {
		o.Width, o.Height = 640, 360
	}
	if o.Color == "" {
		o.Color = "green"
	}
	dir := t.TempDir()
	if o.Y4M == "" {
		o.Y4M = filepath.Join(dir, "camera.y4m")
		runFFmpeg(t, "-f", "lavfi", "-i",
			fmt.Sprintf("color=c=%s:s=%dx%d:r=30,drawbox=x='mod(t*120,iw-60)':y=30:w=60:h=60:c=white:t=fill", o.Color, o.Width, o.Height),
			"-t", "2", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", o.Y4M)
	}
	if o.WAV == "" {
		hz := o.ToneHz
		if hz == 0 {
			hz = 440
		}
		o.WAV = filepath.Join(dir, "mic.wav")
		runFFmpeg(t, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=48000", hz),
			"-t", "4", "-ac", "1", "-c:a", "pcm_s16le", o.WAV)
	}

	c := &Chromium{
		Identity: o.Identity,
		Events:   make(chan ChromiumEvent, 64),
		t:        t,
		cmds:     make(chan string, 8),
		exited:   make(chan struct{}),
		logf:     filepath.Join(dir, "chromium.log"),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(publisherPage)
	})
	mux.HandleFunc("/livekit-client.umd.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, script)
	})
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		ev := ChromiumEvent{At: time.Now(), Name: r.URL.Query().Get("ev"), Detail: r.URL.Query().Get("detail")}
		c.mu.Lock()
		if ev.Name == "error" {
			c.errs = append(c.errs, ev.Detail)
		}
		c.seen = append(c.seen, ev)
		c.mu.Unlock()
		select {
		case c.Events <- ev:
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
	q.Set("url", s.URL)
	q.Set("token", s.Token(room, o.Identity, o.Name))
	q.Set("codec", o.Codec)
	q.Set("width", fmt.Sprint(o.Width))
	q.Set("height", fmt.Sprint(o.Height))
	if o.NoSimulcast {
		q.Set("simulcast", "0")
	}
	page := "http://" + ln.Addr().String() + "/?" + q.Encode()

	logf, err := os.Create(c.logf)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--mute-audio",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
		"--use-file-for-fake-video-capture=" + o.Y4M,
		"--use-file-for-fake-audio-capture=" + o.WAV,
		"--autoplay-policy=no-user-gesture-required",
		page,
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Own process group (killed as a whole on cleanup); killed by the
	// kernel if the test binary dies without cleaning up (a -timeout panic).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.Started = time.Now()
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("lktest: start chromium: %v", err)
	}
	go func() {
		_ = c.cmd.Wait()
		logf.Close()
		close(c.exited)
	}()
	t.Cleanup(c.Close)
	return c
}

// WaitFor waits for the page to report event name and returns it; a page
// error or the browser exiting fails the test.
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
				c.t.Fatalf("lktest: chromium page error: %s", ev.Detail)
			}
		case <-c.exited:
			c.t.Fatalf("lktest: chromium exited before %q (log: %s)", name, c.logTail())
		case <-deadline:
			c.t.Fatalf("lktest: chromium: no %q within %v; page errors %v", name, timeout, c.Errors())
		}
	}
}

// Seen returns every event the page reported so far named name (all of
// them for ""), whether or not WaitFor took it: the page reports recording
// (room.isRecording, "true"/"false"), chat ("identity: text" of a text
// stream on lk.chat), chatmessage (a ChatMessage packet), data ("topic
// payload"), participant and attributes ("identity {name, attributes}").
func (c *Chromium) Seen(name string) []ChromiumEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ChromiumEvent
	for _, ev := range c.seen {
		if name == "" || ev.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

// WaitSeen waits until the page has reported, after the instant since, an
// event named name whose detail contains substr (see Seen), and returns it.
func (c *Chromium) WaitSeen(name, substr string, since time.Time, timeout time.Duration) ChromiumEvent {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, ev := range c.Seen(name) {
			if ev.At.After(since) && strings.Contains(ev.Detail, substr) {
				return ev
			}
		}
		select {
		case <-c.exited:
			c.t.Fatalf("lktest: chromium exited before %s %q (log: %s)", name, substr, c.logTail())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("lktest: chromium: no %s %q within %v; seen %v; page errors %v", name, substr, timeout, c.Seen(name), c.Errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Command sends the page "mute video", "unmute audio", "unpublish video" or
// "leave".
func (c *Chromium) Command(cmd string) { c.cmds <- cmd }

// Errors returns the errors the page reported.
func (c *Chromium) Errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// logTail returns the end of Chromium's log with anything token-shaped
// removed.
func (c *Chromium) logTail() string {
	b, _ := os.ReadFile(c.logf)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return sdklog.Redactor{}.String(string(b))
}

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
