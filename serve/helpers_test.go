package serve

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"
)

// Secrets every test uses, so the scan at the end of each test can look
// for them in logs, responses and pages.
const (
	adminPassword = "correct-horse-battery-9"
	streamKey     = "sk-live-SECRET-7f3a9c"
)

// testClock is real time plus an offset a test can move forward.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// syncBuf is a goroutine-safe log buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one server under test, on 127.0.0.1.
type env struct {
	t      *testing.T
	srv    *Server
	http   *httptest.Server
	clock  *testClock
	logs   *syncBuf
	dir    string
	cfg    Config
	seen   *syncBuf // every response body the tests received
	secret []string // values that must never show up
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: &testClock{}, logs: &syncBuf{}, dir: t.TempDir(), seen: &syncBuf{}}
	e.cfg = Config{Data: e.dir, AdminPassword: adminPassword, Runner: SessionRunner{},
		Log: zerolog.New(e.logs).With().Timestamp().Logger(), Now: e.clock.Now, BcryptCost: bcrypt.MinCost}
	if mod != nil {
		mod(&e.cfg)
	}
	e.start()
	e.secret = []string{adminPassword, streamKey}
	t.Cleanup(func() {
		e.stop()
		e.scan()
	})
	return e
}

func (e *env) start() {
	e.t.Helper()
	srv, err := Open(e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv = srv
	e.http = httptest.NewServer(srv.Handler())
	e.cfg.BaseURL = ""
}

func (e *env) stop() {
	if e.http != nil {
		e.http.CloseClientConnections()
		e.http.Close()
		e.http = nil
	}
	if e.srv != nil {
		if err := e.srv.Close(); err != nil {
			e.t.Errorf("closing the server: %v", err)
		}
		e.srv = nil
	}
}

// scan fails the test when a secret appears in a log line or a response.
func (e *env) scan() {
	logs, seen := e.logs.String(), e.seen.String()
	if strings.Contains(logs, "rendering a page") {
		e.t.Errorf("a page failed to render (see the log)")
	}
	for _, s := range e.secret {
		if s == "" {
			continue
		}
		if strings.Contains(logs, s) {
			e.t.Errorf("secret %.6s… appears in the server's log", s)
		}
		if strings.Contains(seen, s) {
			e.t.Errorf("secret %.6s… appears in a response", s)
		}
	}
}

// client is an HTTP client that remembers cookies and records bodies.
type client struct {
	e      *env
	hc     *http.Client
	bearer string
	csrf   string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, hc: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

func (c *client) do(method, path string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	c.e.t.Helper()
	u := path
	if !strings.HasPrefix(path, "http") {
		u = c.e.http.URL + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.e.seen.Write(b)
	for _, v := range resp.Header {
		c.e.seen.Write([]byte(strings.Join(v, " ")))
	}
	return resp, b
}

func (c *client) json(method, path string, in any, out any) int {
	c.e.t.Helper()
	var body io.Reader
	hdr := map[string]string{}
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
		hdr["Content-Type"] = "application/json"
	}
	if c.csrf != "" {
		hdr["X-CSRF-Token"] = c.csrf
	}
	resp, b := c.do(method, path, body, hdr)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			c.e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

var csrfRe = regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`)

// login logs in through the form and keeps the page's CSRF token.
func (c *client) login(name, pw string) {
	c.e.t.Helper()
	resp, b := c.do("POST", "/login", strings.NewReader(url.Values{"name": {name}, "password": {pw}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/" {
		c.e.t.Fatalf("login: %d at %s: %s", resp.StatusCode, resp.Request.URL.Path, b)
	}
	m := csrfRe.FindSubmatch(b)
	if m == nil {
		c.e.t.Fatal("no CSRF token on the home page")
	}
	c.csrf = string(m[1])
}

// token mints an API token for the admin.
func (e *env) token() string {
	e.t.Helper()
	tok, err := e.srv.CreateToken("admin", "test")
	if err != nil {
		e.t.Fatal(err)
	}
	e.secret = append(e.secret, tok)
	return tok
}

func (e *env) api() *client {
	c := e.client()
	c.bearer = e.token()
	return c
}

// startDemo starts a demo broadcast through the API and returns it.
func (c *client) startDemo(room, size string, dur time.Duration) BroadcastView {
	c.e.t.Helper()
	var v BroadcastView
	req := map[string]any{"room": room, "size": size, "layout": "grid"}
	if dur > 0 {
		req["duration"] = dur.String()
	}
	if code := c.json("POST", "/api/v1/broadcasts", req, &v); code != http.StatusCreated {
		c.e.t.Fatalf("start %s: %d %+v", room, code, v)
	}
	return v
}

// waitState polls a broadcast until it reaches state.
func (c *client) waitState(id, state string, within time.Duration) BroadcastView {
	c.e.t.Helper()
	deadline := time.Now().Add(within)
	var v BroadcastView
	for time.Now().Before(deadline) {
		c.json("GET", "/api/v1/broadcasts/"+id, nil, &v)
		if v.State == state {
			return v
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.e.t.Fatalf("broadcast %s: state %q after %v, want %q (%s)", id, v.State, within, state, v.Error)
	return v
}

func (c *client) recordings() []RecordingView {
	c.e.t.Helper()
	var out struct{ Recordings []RecordingView }
	if code := c.json("GET", "/api/v1/recordings", nil, &out); code != 200 {
		c.e.t.Fatalf("recordings: %d", code)
	}
	return out.Recordings
}

func fileBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitElapsed waits until a broadcast has produced this much media (on a
// loaded machine media time lags wall time).
func (c *client) waitElapsed(id string, seconds float64) {
	c.e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var v BroadcastView
		c.json("GET", "/api/v1/broadcasts/"+id, nil, &v)
		if v.Elapsed >= seconds {
			return
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("broadcast %s: %.2f s of media after 3 minutes (state %s)", id, v.Elapsed, v.State)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitRecording waits until a broadcast's recording is described (ready or
// interrupted) and returns it.
func (c *client) waitRecording(broadcastID string) RecordingView {
	c.e.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		for _, r := range c.recordings() {
			if r.BroadcastID == broadcastID && r.State != "recording" {
				return r
			}
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("no finished recording for %s after 3 minutes", broadcastID)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// skipShort skips tests that run real broadcasts under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs real demo broadcasts (FFmpeg encoders)")
	}
}
