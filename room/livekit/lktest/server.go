// Package lktest starts the real peers that room/livekit and the recorder's
// live tests talk to: a livekit-server bound to 127.0.0.1, Go publishers
// sending known media through server-sdk-go, and headless Chromium publishing
// a fake camera and microphone with livekit-client. Every process it starts is
// killed by process group on test cleanup, and all traffic stays on loopback.
package lktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/room/livekit/sdklog"
)

// ServerVersion is the livekit-server release the tests run against,
// installed by scripts/peers.d/30-livekit.sh.
const ServerVersion = "1.13.5"

// Server is a livekit-server process listening on 127.0.0.1.
type Server struct {
	// URL is the signalling address, ws://127.0.0.1:<port>.
	URL string
	// APIKey and APISecret are generated per server; the secret is 64 hex
	// characters because livekit-server refuses secrets under 32.
	APIKey, APISecret string
	// HTTPPort, UDPPort and TCPPort are the loopback ports in use; a restart
	// reuses them so clients can reconnect to the same address.
	HTTPPort, UDPPort, TCPPort int

	t       testing.TB
	opts    ServerOptions
	bin     string
	dir     string
	logPath string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has been reaped.
	exited chan struct{}
}

// Cache returns the directory the peer installers write to
// ($ROOMCAST_CACHE, default ~/.cache/roomcast).
func Cache() string {
	if c := os.Getenv("ROOMCAST_CACHE"); c != "" {
		return c
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "roomcast")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "roomcast")
}

// ServerBinary returns the path of the pinned livekit-server, or an error
// naming the installer when it is missing.
func ServerBinary() (string, error) {
	p := filepath.Join(Cache(), "bin", "livekit-server-"+ServerVersion)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("livekit-server %s not installed at %s (run scripts/peers.sh as root): %w", ServerVersion, p, err)
	}
	return p, nil
}

// SkipIfShort skips integration tests under -short; otherwise a missing peer
// is a failure, not a skip.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs livekit-server (skipped with -short)")
	}
}

// ServerOptions adjust the generated configuration.
type ServerOptions struct {
	// NoAutoCreate makes joining a room that does not exist fail instead
	// of creating it.
	NoAutoCreate bool
	// Redis is a redis-server address (host:port, see StartRedis): the
	// server then runs its message bus (psrpc) and egress store on it, so
	// egress workers can register. Empty: no Redis, no egress.
	Redis string
	// Webhooks are URLs the server posts its webhook events to (room,
	// participant, egress…), signed with the server's API key.
	Webhooks []string
	// NodeIP is the address the server advertises in its ICE candidates
	// (same UDP port); it still listens on 127.0.0.1. A test puts a relay
	// there (internal/udprelay) to come between the server and its
	// clients. Default 127.0.0.1.
	NodeIP string
}

// StartServer starts livekit-server on free loopback ports and waits until it
// answers. The process group is killed on cleanup; its log is printed only
// when the test failed.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return StartServerWith(t, ServerOptions{})
}

// StartServerWith is StartServer with options.
func StartServerWith(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	bin, err := ServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	// Keep the SDK's (and pion's) process-wide log out of test output.
	sdklog.Install(zerolog.Nop())
	tcp := testnet.Ports(t, "tcp", 2)
	s := &Server{
		t:         t,
		bin:       bin,
		dir:       t.TempDir(),
		APIKey:    "APIroomcast" + randHex(4),
		APISecret: randHex(32),
		HTTPPort:  tcp[0],
		UDPPort:   testnet.Ports(t, "udp", 1)[0],
		TCPPort:   tcp[1],
		opts:      o,
	}
	s.URL = fmt.Sprintf("ws://127.0.0.1:%d", s.HTTPPort)
	s.logPath = filepath.Join(s.dir, "livekit-server.log")
	if err := os.WriteFile(filepath.Join(s.dir, "config.yaml"), []byte(s.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.dumpLog()
		}
	})
	s.Start()
	return s
}

// config keeps every ICE candidate on 127.0.0.1: binding alone is not
// enough, the RTC sockets would still offer the machine's other addresses
// (see /work/shared/notes/livekit-chromium-loopback.md).
func (s *Server) config() string {
	return fmt.Sprintf(`port: %d
bind_addresses: [127.0.0.1]
log_level: debug
rtc:
  udp_port: %d
  tcp_port: %d
  node_ip: %s
  use_external_ip: false
  enable_loopback_candidate: true
  interfaces:
    includes: [lo]
  ips:
    includes: [127.0.0.1/32]
  stun_servers: ["127.0.0.1:%d"]
keys:
  %s: %s
room:
  auto_create: %v
  empty_timeout: 60
  departure_timeout: 5
`, s.HTTPPort, s.UDPPort, s.TCPPort, s.nodeIP(), s.UDPPort, s.APIKey, s.APISecret, !s.opts.NoAutoCreate) + s.extraConfig()
}

func (s *Server) nodeIP() string {
	if s.opts.NodeIP != "" {
		return s.opts.NodeIP
	}
	return "127.0.0.1"
}

// extraConfig is the Redis and webhook sections, when asked for.
func (s *Server) extraConfig() string {
	var b strings.Builder
	if s.opts.Redis != "" {
		fmt.Fprintf(&b, "redis:\n  address: %s\n", s.opts.Redis)
	}
	if len(s.opts.Webhooks) > 0 {
		fmt.Fprintf(&b, "webhook:\n  api_key: %s\n  urls:\n", s.APIKey)
		for _, u := range s.opts.Webhooks {
			fmt.Fprintf(&b, "    - %q\n", u)
		}
	}
	return b.String()
}

// Start launches the server process (again, after Stop) on the same ports
// and waits up to 10 s for it to answer HTTP.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("lktest: server already running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "--config", filepath.Join(s.dir, "config.yaml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group (killed as a whole on cleanup); killed by the
	// kernel if the test binary dies without cleaning up (a -timeout panic).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("lktest: start livekit-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			s.dumpLog()
			s.t.Fatal("lktest: livekit-server exited during start-up")
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", s.HTTPPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.dumpLog()
			s.t.Fatalf("lktest: livekit-server not ready after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server's process group and waits for it. Safe to call when
// already stopped.
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

// Restart kills the server and starts it again on the same ports: every
// room and participant is lost, as in a crash.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Token mints a join token for room with the given identity and grants
// (canPublish/canSubscribe default to true).
func (s *Server) Token(room, identity, name string, opts ...TokenOption) string {
	s.t.Helper()
	tok, err := MintToken(s.APIKey, s.APISecret, room, identity, name, opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// TokenOption adjusts a token minted by MintToken.
type TokenOption func(*auth.AccessToken, *auth.VideoGrant)

// Hidden marks the participant hidden (and a recorder), as roomcast itself.
func Hidden() TokenOption {
	return func(_ *auth.AccessToken, g *auth.VideoGrant) { g.Hidden, g.Recorder = true, true }
}

// Recorder marks the participant a recorder without hiding it (another
// recording bot in the room).
func Recorder() TokenOption {
	return func(_ *auth.AccessToken, g *auth.VideoGrant) { g.Recorder = true }
}

// Attributes gives the participant key/value attributes at join and lets
// it change them (and its metadata) later.
func Attributes(attrs map[string]string) TokenOption {
	return func(at *auth.AccessToken, g *auth.VideoGrant) {
		at.SetAttributes(attrs)
		g.SetCanUpdateOwnMetadata(true)
	}
}

// Metadata gives the participant metadata at join.
func Metadata(md string) TokenOption {
	return func(at *auth.AccessToken, _ *auth.VideoGrant) { at.SetMetadata(md) }
}

// ValidFor sets the token lifetime (default 1 h).
func ValidFor(d time.Duration) TokenOption {
	return func(at *auth.AccessToken, _ *auth.VideoGrant) { at.SetValidFor(d) }
}

// ExpiredToken signs a join token that expired an hour ago (the SDK's
// minting cannot make one).
func (s *Server) ExpiredToken(room, identity string) string {
	s.t.Helper()
	g := &auth.VideoGrant{RoomJoin: true, Room: room}
	claims := struct {
		jwt.RegisteredClaims
		Video *auth.VideoGrant `json:"video"`
	}{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.APIKey,
			Subject:   identity,
			IssuedAt:  jwt.NewNumericDate(time.Now().Add(-2 * time.Hour)),
			NotBefore: jwt.NewNumericDate(time.Now().Add(-2 * time.Hour)),
			ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Hour)),
		},
		Video: g,
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(s.APISecret))
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// MintToken signs a join token with the server's API key and secret.
func MintToken(apiKey, apiSecret, room, identity, name string, opts ...TokenOption) (string, error) {
	at := auth.NewAccessToken(apiKey, apiSecret)
	g := &auth.VideoGrant{RoomJoin: true, Room: room}
	g.SetCanPublish(true)
	g.SetCanSubscribe(true)
	at.SetIdentity(identity).SetName(name).SetValidFor(time.Hour)
	for _, o := range opts {
		o(at, g)
	}
	at.SetVideoGrant(g)
	return at.ToJWT()
}

// HTTPURL is the server's API address, http://127.0.0.1:<port>.
func (s *Server) HTTPURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.HTTPPort) }

// DeleteRoom closes room through the server API: every participant is
// disconnected with reason ROOM_DELETED.
func (s *Server) DeleteRoom(room string) {
	s.t.Helper()
	c := lksdk.NewRoomServiceClient(s.HTTPURL(), s.APIKey, s.APISecret)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.DeleteRoom(ctx, &livekit.DeleteRoomRequest{Room: room}); err != nil {
		s.t.Fatalf("lktest: delete room %s: %v", room, err)
	}
}

// Log returns what the server printed so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Subscriptions returns the track IDs the server's log says subscriber
// subscribed to ("track subscribed") and unsubscribed from ("unsubscribing
// from track"): the server's own record of what it sent a participant.
func (s *Server) Subscriptions(subscriber string) (subscribed, unsubscribed map[string]bool) {
	subscribed, unsubscribed = map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(s.Log(), "\n") {
		if !strings.Contains(l, `"participant": "`+subscriber+`"`) {
			continue
		}
		i := strings.Index(l, `"trackID": "`)
		if i < 0 {
			continue
		}
		id := l[i+len(`"trackID": "`):]
		id = id[:max(strings.IndexByte(id, '"'), 0)]
		switch {
		case strings.Contains(l, "\ttrack subscribed\t"):
			subscribed[id] = true
		case strings.Contains(l, "\tunsubscribing from track\t"):
			unsubscribed[id] = true
		}
	}
	return subscribed, unsubscribed
}

// TrackIDs returns the IDs of the tracks identity publishes in room, from
// the server API.
func (s *Server) TrackIDs(room, identity string) []string {
	s.t.Helper()
	rs := lksdk.NewRoomServiceClient(s.HTTPURL(), s.APIKey, s.APISecret)
	res, err := rs.ListParticipants(context.Background(), &livekit.ListParticipantsRequest{Room: room})
	if err != nil {
		s.t.Fatalf("lktest: list participants: %v", err)
	}
	var out []string
	for _, p := range res.Participants {
		if p.Identity == identity {
			for _, ti := range p.Tracks {
				out = append(out, ti.Sid)
			}
		}
	}
	return out
}

func (s *Server) dumpLog() {
	b, _ := os.ReadFile(s.logPath)
	const max = 8000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	s.t.Logf("livekit-server log (tail):\n%s", b)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
