package serve

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testnet"
)

// startNginxRTMP runs nginx with Debian's RTMP module on a free loopback
// port (application "live"); kill stops it hard, as a crash would.
func startNginxRTMP(t *testing.T) (port int, kill func()) {
	t.Helper()
	mod := "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("nginx RTMP module missing (make peers installs libnginx-mod-rtmp): %v", err)
	}
	port = testnet.Port(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`load_module %s;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events {}
rtmp { server { listen 127.0.0.1:%[3]d; application live { live on; } } }
`, mod, dir, port)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-c", conf, "-p", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nginx: %v", err)
	}
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port, kill
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx did not start listening")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDestinationDown: a broadcast streams to a saved destination (real
// nginx-rtmp) and records; the destination vanishes (nginx killed). A
// signed destination.down webhook reaches the receiver, the API and the
// host page say in plain words what is wrong (without the key), and the
// recording goes on and is ready at the end.
func TestDestinationDown(t *testing.T) {
	skipShort(t)
	const secret = "whsec-destdown-98765"
	port, kill := startNginxRTMP(t)
	var mu sync.Mutex
	var downs []map[string]any
	var badSigs int
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !hmac.Equal([]byte(SignWebhook(secret, r.Header.Get("X-Roomcast-Timestamp"), body)), []byte(r.Header.Get("X-Roomcast-Signature"))) {
			badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev struct {
			Event string
			Data  map[string]any
		}
		_ = json.Unmarshal(body, &ev)
		if ev.Event == EventDestinationDown {
			downs = append(downs, ev.Data)
		}
	}))
	defer recv.Close()
	e := newEnv(t, func(c *Config) {
		c.Webhooks = []Webhook{{URL: recv.URL, Secret: secret}}
		c.WebhookBackoff = 50 * time.Millisecond
	})
	e.secret = append(e.secret, secret)
	c := e.api()
	if code := c.json("POST", "/api/v1/destinations", map[string]string{"name": "mirror",
		"url": fmt.Sprintf("rtmp://127.0.0.1:%d/live", port), "key": streamKey}, nil); code != http.StatusCreated {
		t.Fatalf("add destination: %d", code)
	}
	var v BroadcastView
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:?speakers=1", "size": "320x180",
		"destinations": []string{"mirror"}}, &v); code != http.StatusCreated {
		t.Fatalf("start: %d %+v", code, v)
	}
	c.waitElapsed(v.ID, 2)
	// Publishing, seen by at least one status tick before the outage.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var b BroadcastView
		c.json("GET", "/api/v1/broadcasts/"+v.ID, nil, &b)
		if len(b.DestStates) == 1 && b.DestStates[0].State == "publishing" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("destination not publishing: %+v", b.DestStates)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	kill()

	deadline = time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(downs)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no destination.down webhook within 60 s of the destination vanishing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	d := downs[0]
	if d["id"] != v.ID || d["destination"] != "mirror" || !isDown(fmt.Sprint(d["state"])) || !strings.Contains(fmt.Sprint(d["message"]), "mirror") {
		t.Errorf("destination.down payload %v", d)
	}
	if badSigs > 0 {
		t.Errorf("%d deliveries with a bad signature", badSigs)
	}
	mu.Unlock()

	var b BroadcastView
	c.json("GET", "/api/v1/broadcasts/"+v.ID, nil, &b)
	if b.State != "live" || len(b.DestStates) != 1 || !isDown(b.DestStates[0].State) ||
		!strings.Contains(b.DestStates[0].Message, "Lost the connection to mirror") && !strings.Contains(b.DestStates[0].Message, "mirror gave up") {
		t.Errorf("after the outage: state %s, destinations %+v", b.State, b.DestStates)
	}
	page := e.client()
	page.login("admin", adminPassword)
	_, html := page.do("GET", "/", nil, nil)
	if !strings.Contains(string(html), `class="small error-text dest-error"`) || !strings.Contains(string(html), "mirror") {
		t.Errorf("the host page does not show the destination's trouble:\n%s", html)
	}
	// The recording is not disturbed.
	was := b.Elapsed
	c.waitElapsed(v.ID, was+2)
	c.json("POST", "/api/v1/broadcasts/"+v.ID+"/stop", nil, nil)
	c.waitState(v.ID, "done", 3*time.Minute)
	r := c.waitRecording(v.ID)
	if r.State != "ready" || r.Duration < was+1.5 {
		t.Errorf("recording after the outage: %s, %.1f s", r.State, r.Duration)
	}
	playable(t, e.recPath(r.ID), 1)
}
