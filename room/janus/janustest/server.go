// Package janustest starts the real peers that room/janus and the Janus
// end-to-end tests talk to: Debian's janus (1.1.2) with a generated
// loopback-only configuration (VideoRoom plugin, WebSocket and HTTP
// transports on free 127.0.0.1 ports, ICE on 127.0.0.1 only, no STUN), Go
// pion publishers sending known media, and headless Chromium publishing
// with Janus's own janus.js. Every process it starts is killed by process
// group on test cleanup (and by the kernel if the test binary dies first).
//
// Janus never gathers ICE candidates on a loopback interface (it skips
// interfaces flagged IFF_LOOPBACK), so janus runs with a small LD_PRELOAD
// shim built from shim/loopback.c that reports lo as an ordinary interface
// and drops datagrams from sources off loopback (a client's checks from
// its other addresses never become candidates), and its configuration
// enforces 127.0.0.1 as the only ICE address. Every selected ICE pair Janus
// reports (through its sample event handler, posting to a collector of the
// test) is checked at cleanup: both ends on 127.0.0.1 (see
// Server.SelectedPairs).
package janustest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/room/janus/janusapi"
)

// Binary is Debian's janus, installed by scripts/peers.d/40-janus.sh.
const Binary = "/usr/bin/janus"

// LibDir is where Debian installs Janus's plugins and transports.
const LibDir = "/usr/lib/x86_64-linux-gnu/janus"

// SkipIfShort skips integration tests under -short; otherwise a missing
// janus is a failure, not a skip.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs janus (skipped with -short)")
	}
}

// Options adjust the generated configuration. Zero values: no API secret,
// no token auth, 60 s session timeout.
type Options struct {
	// APISecret makes every request need "apisecret".
	APISecret string
	// TokenSecret enables token_auth with HMAC-SHA1 signed tokens (see
	// Server.Token).
	TokenSecret string
	// SessionTimeout is how long Janus keeps a session without keepalives;
	// default 60 s.
	SessionTimeout time.Duration
}

// Server is a janus process on 127.0.0.1.
type Server struct {
	// WSPort and HTTPPort are the WebSocket and HTTP transports' ports; a
	// restart reuses them.
	WSPort, HTTPPort int
	// AdminKey is the VideoRoom's admin_key (needed to create rooms).
	AdminKey string

	t       testing.TB
	opts    Options
	dir     string
	logPath string

	events *pairCollector

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// WSURL is ws://127.0.0.1:<port>.
func (s *Server) WSURL() string { return fmt.Sprintf("ws://127.0.0.1:%d", s.WSPort) }

// HTTPURL is http://127.0.0.1:<port>/janus.
func (s *Server) HTTPURL() string { return fmt.Sprintf("http://127.0.0.1:%d/janus", s.HTTPPort) }

// Options returns the options the server runs with.
func (s *Server) Options() Options { return s.opts }

// Start starts janus with default options (see StartWith).
func Start(t testing.TB) *Server { t.Helper(); return StartWith(t, Options{}) }

// StartWith starts janus on free loopback ports and waits until both
// transports answer. It is killed on cleanup; its log is printed only when
// the test failed.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("janus not installed (run scripts/peers.sh as root): %v", err)
	}
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 60 * time.Second
	}
	s := &Server{
		t:        t,
		opts:     o,
		dir:      t.TempDir(),
		AdminKey: randHex(8),
	}
	s.logPath = filepath.Join(s.dir, "janus.log")
	s.events = startPairCollector(t)
	t.Cleanup(func() {
		s.Stop()
		s.events.close()
		s.checkPairs()
		if t.Failed() {
			s.dumpLog()
		}
	})
	// The ports were free when picked, but another process (a parallel
	// test's server) may bind one before janus does; janus then runs
	// without that transport, and the port answers for someone else.
	// Such a start is retried on fresh ports.
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		ports := testnet.Ports(t, "tcp", 2)
		s.WSPort, s.HTTPPort = ports[0], ports[1]
		s.writeConfig()
		if err = s.start(); err == nil {
			return s
		}
		t.Logf("janustest: start attempt %d on ports %d/%d: %v", attempt, s.WSPort, s.HTTPPort, err)
		s.Stop()
	}
	s.dumpLog()
	t.Fatalf("janustest: janus did not start: %v", err)
	return nil
}

func (s *Server) writeConfig() {
	disable := func(kind string, keep ...string) string {
		entries, _ := os.ReadDir(filepath.Join(LibDir, kind))
		var out []string
		for _, e := range entries {
			n := e.Name()
			if !strings.HasSuffix(n, ".so") {
				continue
			}
			kept := false
			for _, k := range keep {
				kept = kept || n == k
			}
			if !kept {
				out = append(out, n)
			}
		}
		return strings.Join(out, ",")
	}
	var auth strings.Builder
	if s.opts.APISecret != "" {
		fmt.Fprintf(&auth, "\tapi_secret = %q\n", s.opts.APISecret)
	}
	if s.opts.TokenSecret != "" {
		fmt.Fprintf(&auth, "\ttoken_auth = true\n\ttoken_auth_secret = %q\n", s.opts.TokenSecret)
	}
	files := map[string]string{
		// ICE on 127.0.0.1 only: lo is gathered thanks to the shim
		// (LoopbackShim), ice_enforce_list keeps only 127.0.0.1, and
		// "interface" makes it the address of the SDP's c= and o= lines.
		// No STUN/TURN, no mDNS, no IPv6. The sample event handler posts
		// the WebRTC events (selected pairs) to the test's collector.
		"janus.jcfg": fmt.Sprintf(`general: {
	interface = "127.0.0.1"
	configs_folder = %q
	plugins_folder = "%s/plugins"
	transports_folder = "%s/transports"
	events_folder = "%s/events"
	loggers_folder = "%s/loggers"
	debug_level = 4
	debug_timestamps = true
	admin_secret = %q
	session_timeout = %d
	server_name = %q
%s}
certificates: {
}
media: {
	ipv6 = false
}
nat: {
	nice_debug = false
	ice_enforce_list = %q
	ignore_mdns = true
}
plugins: {
	disable = %q
}
transports: {
	disable = %q
}
loggers: {
	disable = %q
}
events: {
	broadcast = true
	disable = %q
}
`, s.dir, LibDir, LibDir, LibDir, LibDir, randHex(8), int(s.opts.SessionTimeout/time.Second), serverName, auth.String(), ICEAddress,
			disable("plugins", "libjanus_videoroom.so"),
			disable("transports", "libjanus_http.so", "libjanus_websockets.so"),
			disable("loggers"), disable("events", "libjanus_sampleevh.so")),
		"janus.eventhandler.sampleevh.jcfg": fmt.Sprintf(`general: {
	enabled = true
	events = "webrtc"
	grouping = false
	json = "compact"
	backend = %q
}
`, s.events.url),
		"janus.transport.http.jcfg": fmt.Sprintf(`general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = %d
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
cors: {
}
`, s.HTTPPort),
		"janus.transport.websockets.jcfg": fmt.Sprintf(`general: {
	json = "compact"
	ws = true
	ws_port = %d
	ws_ip = "127.0.0.1"
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
`, s.WSPort),
		"janus.plugin.videoroom.jcfg": fmt.Sprintf(`general: {
	admin_key = %q
}
`, s.AdminKey),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(body), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
}

// Start launches janus (again, after Stop) on the same ports and waits up
// to 15 s for its transports.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.dumpLog()
		s.t.Fatalf("janustest: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("janus already running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(Binary, "--config", filepath.Join(s.dir, "janus.jcfg"),
		"--configs-folder", s.dir, "--disable-colors")
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+LoopbackShim(s.t))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start janus: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return errors.New("janus exited during start-up")
		default:
		}
		if msg := s.transportFailure(logStart); msg != "" {
			return fmt.Errorf("a transport did not start: %s", msg)
		}
		err := s.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("janus not ready after 15 s: %w", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// transportFailure returns janus's log line saying a transport could not
// listen (its port taken), looking only at this start's part of the log.
func (s *Server) transportFailure(from int64) string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || int64(len(b)) < from {
		return ""
	}
	for _, line := range strings.Split(string(b[from:]), "\n") {
		if strings.Contains(line, "No WebSockets server started") ||
			strings.Contains(line, "Error creating vhost") ||
			strings.Contains(line, "Couldn't start webserver") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// ready is true once both transports answer as this janus: the HTTP info
// names our server, and a session can be created over the WebSocket.
func (s *Server) ready() error {
	resp, err := http.Get(s.HTTPURL() + "/info")
	if err != nil {
		return err
	}
	var info struct {
		Janus string `json:"janus"`
		Name  string `json:"server-name"`
	}
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("info: HTTP %s", resp.Status)
	}
	if err != nil || info.Janus != "server_info" || info.Name != serverName {
		return fmt.Errorf("info: HTTP port %d answers as something else than this janus", s.HTTPPort)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := janusapi.Dial(ctx, s.WSURL(), s.Credentials())
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	return c.Close()
}

// Stop kills janus and waits for it. Safe when already stopped.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Restart kills janus and starts it again on the same ports: every
// session, handle and room created through the API is lost, as in a crash.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Token signs a token for token_auth (HMAC-SHA1 of
// "<expiry>,janus,janus.plugin.videoroom" with TokenSecret), valid for d.
func (s *Server) Token(d time.Duration) string {
	return SignToken(s.opts.TokenSecret, time.Now().Add(d))
}

// SignToken builds a Janus signed token valid until expiry for the
// VideoRoom plugin.
func SignToken(secret string, expiry time.Time) string {
	data := fmt.Sprintf("%d,janus,janus.plugin.videoroom", expiry.Unix())
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(data))
	return data + ":" + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Credentials are what a client of this server must send.
func (s *Server) Credentials() janusapi.Options {
	o := janusapi.Options{APISecret: s.opts.APISecret}
	if s.opts.TokenSecret != "" {
		o.Token = s.Token(time.Hour)
	}
	return o
}

// RoomOptions describe a VideoRoom to create.
type RoomOptions struct {
	// ID is the numeric room ID; default random.
	ID uint64
	// PIN is required to join when set.
	PIN string
	// AudioLevelEvents makes Janus send talking/stopped-talking events.
	AudioLevelEvents bool
	// VideoCodec is the list the room accepts, default "vp8,h264".
	VideoCodec string
	// Publishers is the maximum number of publishers, default 16.
	Publishers int
}

// CreateRoom creates a VideoRoom through the API and returns its ID. The
// room lives until janus stops (not permanent).
func (s *Server) CreateRoom(o RoomOptions) uint64 {
	s.t.Helper()
	if o.ID == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		o.ID = uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]) | 1
	}
	if o.VideoCodec == "" {
		o.VideoCodec = "vp8,h264"
	}
	if o.Publishers == 0 {
		o.Publishers = 16
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := janusapi.Dial(ctx, s.WSURL(), s.Credentials())
	if err != nil {
		s.t.Fatalf("janustest: create room: %v", err)
	}
	defer c.Close()
	h, err := c.Attach(ctx, "janus.plugin.videoroom")
	if err != nil {
		s.t.Fatalf("janustest: create room: %v", err)
	}
	body := map[string]any{
		"request": "create", "room": o.ID, "admin_key": s.AdminKey, "permanent": false,
		"description": fmt.Sprintf("roomcast test %d", o.ID), "publishers": o.Publishers,
		"videocodec": o.VideoCodec, "audiocodec": "opus", "notify_joining": true,
	}
	if o.PIN != "" {
		body["pin"] = o.PIN
	}
	if o.AudioLevelEvents {
		// Loud for 10 packets (200 ms) at an average level under 40 (louder
		// than -40 dBov) is talking; the Go publishers send 10 or 127.
		body["audiolevel_event"] = true
		body["audiolevel_ext"] = true
		body["audio_active_packets"] = 10
		body["audio_level_average"] = 40
	}
	m, err := c.Request(ctx, h, body, nil)
	if err != nil {
		s.t.Fatalf("janustest: create room %d: %v", o.ID, err)
	}
	var res struct {
		Videoroom string `json:"videoroom"`
		Room      uint64 `json:"room"`
	}
	if m.PluginData == nil || json.Unmarshal(m.PluginData.Data, &res) != nil || res.Videoroom != "created" {
		s.t.Fatalf("janustest: create room %d: unexpected answer", o.ID)
	}
	return res.Room
}

// Log returns what janus printed so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *Server) dumpLog() {
	b, _ := os.ReadFile(s.logPath)
	max := 8000
	if os.Getenv("ROOMCAST_TEST_LOG") != "" {
		max = 1 << 20
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	s.t.Logf("janus log (tail):\n%s", b)
}

// ICEAddress is the only address janus gathers ICE candidates on.
const ICEAddress = "127.0.0.1"

// serverName identifies our janus in its info answer.
const serverName = "roomcast-test"

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
