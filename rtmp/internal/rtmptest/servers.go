package rtmptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/internal/testnet"
)

// TB is the part of testing.TB the helpers need (the bench tool has its
// own implementation).
type TB interface {
	Helper()
	Logf(string, ...any)
	Fatalf(string, ...any)
	TempDir() string
	Cleanup(func())
}

// CacheDir is where scripts/peers.d installs npm packages.
func CacheDir() string {
	if d := os.Getenv("ROOMCAST_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "roomcast")
	}
	return filepath.Join(os.Getenv("HOME"), ".cache", "roomcast")
}

// EnsureFFmpeg puts the FFmpeg build from the cache on PATH when no ffmpeg
// is there (go test run outside the Makefile).
func EnsureFFmpeg() {
	if _, err := exec.LookPath("ffprobe"); err == nil {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(CacheDir(), "ffmpeg-*", "bin"))
	slices.Sort(dirs)
	if len(dirs) > 0 {
		os.Setenv("PATH", dirs[len(dirs)-1]+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
}

// Proc is a child process in its own process group, killed at cleanup.
type Proc struct {
	cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// StartProc runs name args with output to a log file in dir.
func StartProc(t TB, dir, label string, env []string, name string, args ...string) *Proc {
	t.Helper()
	logPath := filepath.Join(dir, label+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", label, err)
	}
	p := &Proc{cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	t.Cleanup(p.Kill)
	return p
}

// Kill kills the process group and waits; idempotent.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the group and waits up to 5 s before killing.
func (p *Proc) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Kill()
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Output is the process's log so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// WaitPort waits until something accepts TCP on 127.0.0.1:port.
func WaitPort(t TB, port int, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			t.Fatalf("server exited before listening on %d: %v\n%s", port, p.err, p.Output())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
}

// NginxOptions configure the generated nginx-rtmp server.
type NginxOptions struct {
	// ChunkSize is the server's outgoing chunk size (nginx's chunk_size).
	ChunkSize int
	// OnPublish is an HTTP URL nginx asks before accepting a publish (the
	// notify module; a non-2xx answer rejects it).
	OnPublish string
	// DropIdlePublisher makes nginx drop a publisher that sent nothing for
	// that long (drop_idle_publisher).
	DropIdlePublisher time.Duration
	// NoRecord turns recording off (benchmarks).
	NoRecord bool
}

// Nginx is nginx with Debian's RTMP module, recording everything it
// receives to FLV, on 127.0.0.1 with its own config, logs and pid file.
type Nginx struct {
	Port      int
	Dir       string
	RecordDir string
	t         TB
	conf      string
	proc      *Proc
	mu        sync.Mutex
}

// NginxModule is where Debian installs the RTMP module.
const NginxModule = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

// StartNginx writes a config for a free port and starts nginx in the
// foreground; cleanup kills it.
func StartNginx(t TB, o NginxOptions) *Nginx {
	t.Helper()
	if _, err := os.Stat(NginxModule); err != nil {
		t.Fatalf("nginx RTMP module missing (run scripts/peers.sh): %v", err)
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 4000
	}
	n := &Nginx{Port: testnet.Port(t), Dir: t.TempDir(), t: t}
	n.RecordDir = filepath.Join(n.Dir, "rec")
	if err := os.MkdirAll(n.RecordDir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	var extra strings.Builder
	if !o.NoRecord {
		fmt.Fprintf(&extra, "      record all;\n      record_path %s;\n      record_unique on;\n", n.RecordDir)
	}
	if o.OnPublish != "" {
		fmt.Fprintf(&extra, "      on_publish %s;\n", o.OnPublish)
	}
	if o.DropIdlePublisher > 0 {
		fmt.Fprintf(&extra, "      drop_idle_publisher %dms;\n", o.DropIdlePublisher.Milliseconds())
	}
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log info;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:%d;
    chunk_size %d;
    application live {
      live on;
%s    }
  }
}
`, NginxModule, n.Dir, n.Dir, n.Port, o.ChunkSize, extra.String())
	n.conf = filepath.Join(n.Dir, "nginx.conf")
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	n.start()
	return n
}

func (n *Nginx) start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.proc = StartProc(n.t, n.Dir, "nginx", nil, "nginx", "-p", n.Dir, "-c", n.conf, "-e", filepath.Join(n.Dir, "error.log"))
	WaitPort(n.t, n.Port, n.proc)
}

// Kill kills nginx (SIGKILL: a crash, no goodbye to clients).
func (n *Nginx) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.proc.Kill()
}

// Restart starts nginx again on the same port.
func (n *Nginx) Restart() { n.start() }

// URL is the publishing URL for key.
func (n *Nginx) URL(key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", n.Port, key)
}

// ErrorLog is nginx's error log.
func (n *Nginx) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "error.log"))
	return string(b)
}

// Recordings lists the FLV files recorded for key, oldest first
// (record_unique names them key-<unix time>.flv).
func (n *Nginx) Recordings(key string) []string {
	files, _ := filepath.Glob(filepath.Join(n.RecordDir, key+"*.flv"))
	slices.SortFunc(files, func(a, b string) int {
		sa, _ := os.Stat(a)
		sb, _ := os.Stat(b)
		if sa == nil || sb == nil {
			return strings.Compare(a, b)
		}
		return sa.ModTime().Compare(sb.ModTime())
	})
	return files
}

// NMS2 is node-media-server 2.7.4 run the way PeerTube runs it: its
// NodeRtmpSession on a plain net.Server, app "live", one accepted key; on
// postPublish it pulls the stream back with ffmpeg into an FLV, as
// PeerTube's muxing session does.
type NMS2 struct {
	Port    int
	Dir     string
	Key     string
	proc    *Proc
	PullDir string
}

// StartNMS2 starts testdata/nms2-peertube.js (scriptPath) with key.
func StartNMS2(t TB, scriptPath, key string) *NMS2 {
	t.Helper()
	mod := filepath.Join(CacheDir(), "nms2", "node_modules", "node-media-server")
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("node-media-server 2.7.4 missing (run scripts/peers.sh): %v", err)
	}
	s := &NMS2{Port: testnet.Port(t), Dir: t.TempDir(), Key: key}
	s.PullDir = filepath.Join(s.Dir, "pull")
	if err := os.MkdirAll(s.PullDir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	s.proc = StartProc(t, s.Dir, "nms2", nil, "node", scriptPath, mod, fmt.Sprint(s.Port), key, s.PullDir)
	WaitPort(t, s.Port, s.proc)
	return s
}

// URL is the publishing URL for key.
func (s *NMS2) URL(key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", s.Port, key)
}

// Output is the server's log.
func (s *NMS2) Output() string { return s.proc.Output() }

// Pulled lists the FLV files the PeerTube-style pull wrote.
func (s *NMS2) Pulled() []string {
	files, _ := filepath.Glob(filepath.Join(s.PullDir, "*.flv"))
	slices.Sort(files)
	return files
}

// WaitPulls waits until the pulling ffmpeg processes have finished (the
// script logs "pull done").
func (s *NMS2) WaitPulls(t TB, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Count(s.Output(), "pull done") >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pull not finished:\n%s", s.Output())
}

// NMS4 is node-media-server 4.x with RTMP and RTMPS on 127.0.0.1,
// recording every publish to FLV.
type NMS4 struct {
	Port, TLSPort int
	Dir           string
	RecordDir     string
	CertPEM       []byte // the self-signed certificate, for a RootCAs pool
	proc          *Proc
}

// StartNMS4 generates a self-signed certificate for 127.0.0.1 with Go's
// crypto, writes a config and starts bin/app.js.
func StartNMS4(t TB) *NMS4 {
	t.Helper()
	root := filepath.Join(CacheDir(), "nms4", "node_modules", "node-media-server")
	if _, err := os.Stat(filepath.Join(root, "bin", "app.js")); err != nil {
		t.Fatalf("node-media-server 4 missing (run scripts/peers.sh): %v", err)
	}
	ports := testnet.Ports(t, "tcp", 3)
	s := &NMS4{Port: ports[0], TLSPort: ports[1], Dir: t.TempDir()}
	s.RecordDir = filepath.Join(s.Dir, "record")
	certPEM, keyPEM, err := SelfSigned()
	if err != nil {
		t.Fatalf("cert: %v", err)
	}
	s.CertPEM = certPEM
	certPath, keyPath := filepath.Join(s.Dir, "cert.pem"), filepath.Join(s.Dir, "key.pem")
	if err := errors.Join(os.WriteFile(certPath, certPEM, 0o644), os.WriteFile(keyPath, keyPEM, 0o600)); err != nil {
		t.Fatalf("%v", err)
	}
	cfg := map[string]any{
		"bind":     "127.0.0.1",
		"notify":   map[string]any{"url": ""},
		"store":    map[string]any{"path": filepath.Join(s.Dir, "data"), "maxHistory": 100},
		"auth":     map[string]any{"play": false, "publish": false, "secret": ""},
		"rtmp":     map[string]any{"port": s.Port},
		"rtmps":    map[string]any{"port": s.TLSPort, "key": keyPath, "cert": certPath},
		"http":     map[string]any{"port": ports[2]},
		"webadmin": map[string]any{"enable": false},
		"record":   map[string]any{"auto": true, "path": s.RecordDir},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	cfgPath := filepath.Join(s.Dir, "config.json")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	s.proc = StartProc(t, s.Dir, "nms4", nil, "node", filepath.Join(root, "bin", "app.js"), "-c", cfgPath, "--no-admin")
	WaitPort(t, s.Port, s.proc)
	WaitPort(t, s.TLSPort, s.proc)
	return s
}

// URL is rtmps:// (tls) or rtmp:// for key.
func (s *NMS4) URL(key string, tls bool) string {
	if tls {
		return fmt.Sprintf("rtmps://127.0.0.1:%d/live/%s", s.TLSPort, key)
	}
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", s.Port, key)
}

// Output is the server's log.
func (s *NMS4) Output() string { return s.proc.Output() }

// Recordings lists the FLV files recorded for key.
func (s *NMS4) Recordings(key string) []string {
	files, _ := filepath.Glob(filepath.Join(s.RecordDir, "live", key, "*.flv"))
	slices.Sort(files)
	return files
}

// SelfSigned makes an ECDSA certificate for 127.0.0.1 and localhost.
func SelfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "roomcast test ingest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// Blackhole accepts TCP connections and never says anything: a host whose
// RTMP service hangs. Close stops it and its connections.
type Blackhole struct {
	Port  int
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// StartBlackhole listens on a free 127.0.0.1 port.
func StartBlackhole(t TB) *Blackhole {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	b := &Blackhole{Port: l.Addr().(*net.TCPAddr).Port, l: l}
	b.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
		}
	})
	t.Cleanup(b.Close)
	return b
}

// Close closes the listener and every accepted connection.
func (b *Blackhole) Close() {
	b.l.Close()
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

// Proxy forwards 127.0.0.1:Port to a target. Freeze makes every current
// connection stop forwarding in both directions without closing anything,
// like a link whose other end vanished; new connections are forwarded
// normally.
type Proxy struct {
	Port   int
	target string
	l      net.Listener
	mu     sync.Mutex
	pairs  []*proxyPair
	wg     sync.WaitGroup
}

type proxyPair struct {
	a, b   net.Conn
	frozen chan struct{}
	once   sync.Once
}

// StartProxy listens on a free port and forwards to target.
func StartProxy(t TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("%v", err)
	}
	p := &Proxy{Port: l.Addr().(*net.TCPAddr).Port, target: target, l: l}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

func (p *Proxy) accept() {
	for {
		a, err := p.l.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		// Small kernel buffers so that a frozen pair backs up quickly.
		for _, c := range []net.Conn{a, b} {
			_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
		}
		pp := &proxyPair{a: a, b: b, frozen: make(chan struct{})}
		p.mu.Lock()
		p.pairs = append(p.pairs, pp)
		p.mu.Unlock()
		p.wg.Go(func() { pp.pipe(a, b) })
		p.wg.Go(func() { pp.pipe(b, a) })
	}
}

func (pp *proxyPair) pipe(dst, src net.Conn) {
	buf := make([]byte, 4<<10)
	for {
		select {
		case <-pp.frozen:
			return // stop reading: the sender's buffers fill up
		default:
		}
		_ = src.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-pp.frozen:
				return
			default:
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			dst.(*net.TCPConn).CloseWrite()
			return
		}
	}
}

// Freeze stops forwarding on every existing connection.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pp := range p.pairs {
		pp.once.Do(func() { close(pp.frozen) })
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	for _, pp := range p.pairs {
		pp.once.Do(func() { close(pp.frozen) })
		pp.a.Close()
		pp.b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
