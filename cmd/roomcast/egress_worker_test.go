package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestEgressWorkerErrors: egress-worker's bad settings fail at once with
// one line and a documented code; a secret given on the command line never
// reaches stderr.
func TestEgressWorkerErrors(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	ok := []string{"egress-worker", "--redis", "redis://127.0.0.1:1", "--ws-url", "ws://127.0.0.1:7880",
		"--api-key", "APIkey", "--api-secret", "s3cr3t-never-printed", "--output-dir", dir}
	with := func(flag, value string) []string {
		out := append([]string(nil), ok...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	for _, c := range []errorCase{
		{"no redis", with("--redis", ""), exitUsage, []string{"--redis"}},
		{"bad redis", with("--redis", "http://:pw-never-printed@x:1"), exitUsage, []string{"--redis"}},
		{"bad ws url", with("--ws-url", "ftp://x"), exitUsage, []string{"--ws-url"}},
		{"no secret", with("--api-secret", ""), exitUsage, []string{"--api-secret"}},
		{"negative capacity", with("--cpu-capacity", "-1"), exitUsage, []string{"--cpu-capacity"}},
		{"zero cost", with("--cpu-cost", "0"), exitUsage, []string{"--cpu-cost"}},
		{"output dir", with("--output-dir", filepath.Join(dir, "missing")), exitOutput, []string{"--output-dir"}},
		{"unknown config key", append(append([]string(nil), ok...), "--config", writeFile(t, dir, "bad.yaml", "redis-url: x\n")), exitUsage, []string{"unknown key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFails(t, dir, "", c)
		})
	}
	// Redis unreachable: exit 5, the error names Redis.
	r := runCLI(t, ok...)
	if r.code != exitRoom {
		t.Fatalf("unreachable Redis: exit %d, want %d\n%s", r.code, exitRoom, tail(r.stderr, 10))
	}
	if line := errorLine(t, r); !strings.Contains(line, "redis") {
		t.Fatalf("error line %q does not name Redis", line)
	}
	if strings.Contains(r.stderr, "s3cr3t") {
		t.Fatal("the API secret reached stderr")
	}
	// The YAML config supplies what the flags do not.
	cfg := writeFile(t, dir, "w.yaml", "redis: redis://127.0.0.1:1\nws-url: ws://127.0.0.1:7880\napi-key: k\napi-secret: s3cr3t-never-printed\n")
	r = runCLI(t, "egress-worker", "--config", cfg, "--output-dir", dir)
	if r.code != exitRoom {
		t.Fatalf("config file: exit %d, want %d (Redis unreachable)\n%s", r.code, exitRoom, tail(r.stderr, 10))
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEgressWorkerSIGTERM: the binary as a LiveKit egress worker (settings
// from the environment), a room composite started through the Egress API,
// then SIGTERM: exit 0, the file finalised and the egress reported
// complete to the server.
func TestEgressWorkerSIGTERM(t *testing.T) {
	e2e(t)
	lktest.SkipIfShort(t)
	t.Parallel()
	rd := lktest.StartRedis(t)
	srv := lktest.StartServerWith(t, lktest.ServerOptions{Redis: rd.Addr})
	const room = "cli-egress"
	pub := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice",
		Video: "h264", Color: "red", Audio: true, Width: 160, Height: 120, FPS: 10})
	defer pub.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--log-format", "json", "egress-worker", "--cpu-capacity", "1")
	cmd.Env = append(os.Environ(), "ROOMCAST_REDIS="+rd.Addr, "ROOMCAST_WS_URL="+srv.URL,
		"ROOMCAST_API_KEY="+srv.APIKey, "ROOMCAST_API_SECRET="+srv.APISecret, "ROOMCAST_OUTPUT_DIR="+dir)
	var se bytes.Buffer
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return se.Write(p) })
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	logs := func() string { mu.Lock(); defer mu.Unlock(); return se.String() }
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs(), "egress worker registered") {
		if time.Now().After(deadline) {
			t.Fatalf("worker not registered:\n%s", tail(logs(), 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
	client := lksdk.NewEgressClient(srv.HTTPURL(), srv.APIKey, srv.APISecret)
	ctx := context.Background()
	info, err := client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{RoomName: room,
		Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{
			Width: 320, Height: 180, Framerate: 10, VideoBitrate: 200}},
		FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "cli.mp4"}}})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, tail(logs(), 20))
	}
	status := func() *livekit.EgressInfo {
		res, err := client.ListEgress(ctx, &livekit.ListEgressRequest{EgressId: info.EgressId})
		if err != nil || len(res.Items) != 1 {
			t.Fatalf("ListEgress: %v", err)
		}
		return res.Items[0]
	}
	for deadline = time.Now().Add(30 * time.Second); status().Status != livekit.EgressStatus_EGRESS_ACTIVE; {
		if time.Now().After(deadline) {
			t.Fatalf("not active: %s\n%s", status(), tail(logs(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not exit within 30 s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, tail(logs(), 20))
	}
	got := status()
	if got.Status != livekit.EgressStatus_EGRESS_COMPLETE || len(got.FileResults) != 1 {
		t.Fatalf("after SIGTERM: %s", got)
	}
	finalised(t, filepath.Join(dir, "cli.mp4"))
	playable(t, filepath.Join(dir, "cli.mp4"))
	if strings.Contains(logs(), srv.APISecret) {
		t.Fatal("the API secret is in the worker's log")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
