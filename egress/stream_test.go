package egress_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// nginxRTMP is Debian's nginx with the RTMP module on 127.0.0.1, recording
// every published stream to FLV (record_unique).
type nginxRTMP struct {
	port   int
	recDir string
}

func startNginx(t *testing.T) *nginxRTMP {
	t.Helper()
	const module = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(module); err != nil {
		t.Fatalf("nginx RTMP module missing (run scripts/peers.sh): %v", err)
	}
	dir := t.TempDir()
	n := &nginxRTMP{recDir: filepath.Join(dir, "rec")}
	if err := os.MkdirAll(n.recDir, 0o755); err != nil {
		t.Fatal(err)
	}
	n.port = testnet.Port(t)
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log info;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:%d;
    application live {
      live on;
      record all;
      record_path %s;
      record_unique on;
    }
  }
}
`, module, dir, dir, n.port, n.recDir)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nginx", "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	waitPort(t, n.port)
	return n
}

func (n *nginxRTMP) url(key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", n.port, key)
}

func (n *nginxRTMP) recordings(key string) []string {
	files, _ := filepath.Glob(filepath.Join(n.recDir, key+"*.flv"))
	return files
}

// TestStreamUpdate: a room composite streamed to nginx-rtmp; UpdateStream
// adds a second URL mid-run; both ingests receive playable streams, the
// second one shorter; stream keys appear in no log line and no EgressInfo.
func TestStreamUpdate(t *testing.T) {
	r := newRig(t)
	ng := startNginx(t)
	const room = "egress-stream"
	pub := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice",
		Video: "h264", Color: "red", Audio: true, ToneHz: 440, Width: 160, Height: 120, FPS: 15})
	defer pub.Close()
	time.Sleep(time.Second)
	cfg := r.workerConfig(2, 0.5)
	var logs syncBuffer
	cfg.Log = zerolog.New(&logs).Level(zerolog.DebugLevel)
	r.startWorker(cfg)
	ctx := context.Background()
	const key1, key2 = "k3y-one-SECRET", "k3y-two-SECRET"

	info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
		RoomName: room, Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{
			Width: 320, Height: 180, Framerate: 15, VideoBitrate: 300, KeyFrameInterval: 1}},
		StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_RTMP, Urls: []string{ng.url(key1)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
	time.Sleep(4 * time.Second)
	upd, err := r.client.UpdateStream(ctx, &livekit.UpdateStreamRequest{EgressId: info.EgressId, AddOutputUrls: []string{ng.url(key2)}})
	if err != nil {
		t.Fatalf("UpdateStream: %v", err)
	}
	if len(upd.StreamResults) != 2 {
		t.Fatalf("after UpdateStream: %d stream results", len(upd.StreamResults))
	}
	time.Sleep(4 * time.Second)
	// The first URL leaves; the second goes on.
	if _, err := r.client.UpdateStream(ctx, &livekit.UpdateStreamRequest{EgressId: info.EgressId, RemoveOutputUrls: []string{ng.url(key1)}}); err != nil {
		t.Fatalf("UpdateStream remove: %v", err)
	}
	time.Sleep(3 * time.Second)
	if _, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
		t.Fatal(err)
	}
	done := r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 30*time.Second, nil)
	if len(done.StreamResults) != 2 {
		t.Fatalf("stream results: %v", done.StreamResults)
	}
	for _, s := range done.StreamResults {
		if s.Status != livekit.StreamInfo_FINISHED || s.Duration <= 0 {
			t.Fatalf("stream result %+v", s)
		}
	}
	if s0, s1 := done.StreamResults[0], done.StreamResults[1]; s1.StartedAt < s0.StartedAt+int64(3*time.Second) ||
		s0.EndedAt > s1.EndedAt-int64(2*time.Second) {
		t.Fatalf("stream results: the added one %v..%v, the removed one %v..%v: want the second to start and end later",
			time.Unix(0, s1.StartedAt), time.Unix(0, s1.EndedAt), time.Unix(0, s0.StartedAt), time.Unix(0, s0.EndedAt))
	}
	var (
		dur [2]float64
		end [2]time.Time
	)
	for i, key := range []string{key1, key2} {
		recs := ng.recordings(key)
		if len(recs) != 1 {
			t.Fatalf("nginx recorded %d files for stream %d", len(recs), i+1)
		}
		p := mediatest.MustProbe(t, recs[0], "-show_streams", "-show_format")
		if p.Stream("video") == nil || p.Stream("audio") == nil {
			t.Fatalf("stream %d: %s lacks audio or video", i+1, recs[0])
		}
		dur[i] = mediatest.Secs(p.Format.Duration)
		if st, err := os.Stat(recs[0]); err == nil {
			end[i] = st.ModTime()
		}
		if msg := mediatest.DecodeErrors(recs[0]); msg != "" {
			t.Fatalf("stream %d: decode errors: %s", i+1, msg)
		}
	}
	if !(dur[0] >= 5 && dur[1] >= 4) {
		t.Fatalf("ingest durations %.2fs and %.2fs: want about 8 and 7", dur[0], dur[1])
	}
	// nginx closed the first recording when the URL was removed, seconds
	// before the egress stopped.
	if d := end[1].Sub(end[0]); d < 2*time.Second {
		t.Fatalf("the removed stream's recording ended %v before the other's, want the removal ~3 s earlier", d)
	}
	// Keys never leave the worker: not in its log, not in the EgressInfo
	// the server stores and lists.
	for _, key := range []string{key1, key2} {
		if strings.Contains(logs.String(), key) {
			t.Fatalf("the worker's log holds stream key %s", key)
		}
		if b := done.String(); strings.Contains(b, key) {
			t.Fatalf("the EgressInfo holds stream key %s: %s", key, b)
		}
	}
	if !bytes.Contains([]byte(done.String()), []byte("{redacted}")) {
		t.Fatalf("EgressInfo streams not shown redacted: %s", done.String())
	}
}
