package egress_test

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/roomcast/roomcast/egress"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// rig is redis-server + livekit-server (on that Redis, webhooks to a test
// receiver) + an EgressClient, all on 127.0.0.1.
type rig struct {
	t      *testing.T
	redis  *lktest.Redis
	srv    *lktest.Server
	hooks  *hookReceiver
	client *lksdk.EgressClient
}

func newRig(t *testing.T) *rig {
	t.Helper()
	lktest.SkipIfShort(t)
	r := &rig{t: t, redis: lktest.StartRedis(t), hooks: &hookReceiver{}}
	hs := httptest.NewServer(r.hooks)
	t.Cleanup(hs.Close)
	r.srv = lktest.StartServerWith(t, lktest.ServerOptions{Redis: r.redis.Addr, Webhooks: []string{hs.URL}})
	r.hooks.keys = auth.NewSimpleKeyProvider(r.srv.APIKey, r.srv.APISecret)
	r.client = lksdk.NewEgressClient(r.srv.HTTPURL(), r.srv.APIKey, r.srv.APISecret)
	return r
}

// workerConfig is a worker on this rig's bus with a fixed capacity (the
// tests decide when a worker is full; the default measures the CPU).
func (r *rig) workerConfig(capacity, cost float64) egress.Config {
	rc := redis.NewClient(&redis.Options{Addr: r.redis.Addr})
	r.t.Cleanup(func() { rc.Close() })
	return egress.Config{
		Redis: rc, WSURL: r.srv.URL, APIKey: r.srv.APIKey, APISecret: r.srv.APISecret,
		OutputDir: r.t.TempDir(), CPUCapacity: capacity, CPUCost: cost,
		Log: zerolog.New(zerolog.NewTestWriter(r.t)).Level(zerolog.InfoLevel).With().Timestamp().Logger(),
	}
}

func (r *rig) startWorker(cfg egress.Config) *egress.Worker {
	r.t.Helper()
	w, err := egress.New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { w.Close() })
	return w
}

// info is the egress as ListEgress shows it.
func (r *rig) info(id string) *livekit.EgressInfo {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := r.client.ListEgress(ctx, &livekit.ListEgressRequest{EgressId: id})
	if err != nil {
		r.t.Fatalf("ListEgress %s: %v", id, err)
	}
	if len(res.Items) != 1 {
		r.t.Fatalf("ListEgress %s: %d items", id, len(res.Items))
	}
	return res.Items[0]
}

// waitStatus polls ListEgress until the egress reaches want (failing on
// timeout); seen collects every status observed.
func (r *rig) waitStatus(id string, want livekit.EgressStatus, timeout time.Duration, seen map[livekit.EgressStatus]bool) *livekit.EgressInfo {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		info := r.info(id)
		if seen != nil {
			seen[info.Status] = true
		}
		if info.Status == want {
			return info
		}
		if info.Status >= livekit.EgressStatus_EGRESS_COMPLETE && want < livekit.EgressStatus_EGRESS_COMPLETE {
			r.t.Fatalf("egress %s ended %s (%s) while waiting for %s", id, info.Status, info.Error, want)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("egress %s: still %s after %v, want %s (error %q)", id, info.Status, timeout, want, info.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hookReceiver collects livekit-server's webhooks (signature checked).
type hookReceiver struct {
	keys   auth.KeyProvider
	mu     sync.Mutex
	events []*livekit.WebhookEvent
	bad    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	ev := &livekit.WebhookEvent{}
	ok := req.Header.Get("Authorization") != "" && protojson.Unmarshal(body, ev) == nil
	h.mu.Lock()
	if ok {
		h.events = append(h.events, ev)
	} else {
		h.bad++
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// wait returns the first event named name for the egress, waiting.
func (h *hookReceiver) wait(t *testing.T, name, egressID string, timeout time.Duration) *livekit.WebhookEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		for _, e := range h.events {
			if e.Event == name && e.EgressInfo != nil && e.EgressInfo.EgressId == egressID {
				h.mu.Unlock()
				return e
			}
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s webhook for %s after %v", name, egressID, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *hookReceiver) count(name, egressID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e.Event == name && e.EgressInfo != nil && e.EgressInfo.EgressId == egressID {
			n++
		}
	}
	return n
}

// rgbAt decodes the picture at time at (seconds), scaled to w×h, RGB.
func rgbAt(t *testing.T, path string, at float64, w, h int) []byte {
	t.Helper()
	out := mediatest.FFmpeg(t, "-ss", ftoa(at), "-i", path, "-frames:v", "1",
		"-vf", "scale="+itoa(w)+":"+itoa(h)+":flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
	if len(out) < w*h*3 {
		t.Fatalf("%s: short frame at %.1fs (%d bytes)", path, at, len(out))
	}
	return out
}

// colourName classifies the mean colour of the w×h picture's box.
func colourName(img []byte, w, x0, y0, x1, y1 int) string {
	var r, g, b, n int
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			i := (y*w + x) * 3
			r, g, b, n = r+int(img[i]), g+int(img[i+1]), b+int(img[i+2]), n+1
		}
	}
	r, g, b = r/n, g/n, b/n
	switch {
	case r > 150 && g < 90 && b < 90:
		return "red"
	case g > 150 && r < 90 && b < 90:
		return "green"
	case b > 150 && r < 90 && g < 90:
		return "blue"
	}
	return "other(" + itoa(r) + "," + itoa(g) + "," + itoa(b) + ")"
}

// audioMono decodes the audio between a and b seconds, mono 48 kHz.
func audioMono(t *testing.T, path string, a, b float64) []float32 {
	t.Helper()
	out := mediatest.FFmpeg(t, "-ss", ftoa(a), "-t", ftoa(b-a), "-i", path, "-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-")
	x := make([]float32, len(out)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(out[4*i:]))
	}
	return x
}

// toneAmp is the amplitude of frequency f in x (Goertzel at 48 kHz).
func toneAmp(x []float32, f float64) float64 {
	if len(x) == 0 {
		return 0
	}
	k := 2 * math.Cos(2*math.Pi*f/48000)
	var s1, s2 float64
	for _, v := range x {
		s0 := float64(v) + k*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - k*s1*s2
	return 2 * math.Sqrt(math.Max(p, 0)) / float64(len(x))
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
func itoa(i int) string     { return strconv.Itoa(i) }

// waitPort waits until something accepts on 127.0.0.1:port.
func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
}
