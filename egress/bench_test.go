package egress_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// liveKitRoomCompositeCPU is LiveKit Egress's default admission cost of a
// room composite (cpu_cost.room_composite_cpu_cost: 4 CPUs; a worker with
// fewer declines it): what its Chrome + GStreamer pipeline is expected to use.
const liveKitRoomCompositeCPU = 4.0

// TestBenchEgress (scripts/bench-egress.sh, skipped unless
// ROOMCAST_BENCH_EGRESS is set): the CPU of one room composite on a
// roomcast egress worker, requested through the Egress API like any LiveKit
// user does: four publishers (two H.264, two VP8, 640x360@30 moving
// pictures with Opus tones) into the default preset (1280x720@30, H.264,
// 3 Mb/s). The worker runs in its own process; its CPU (utime+stime from
// /proc/<pid>/stat) is read over BENCH_EGRESS_SECONDS after a 5 s warm-up.
func TestBenchEgress(t *testing.T) {
	if os.Getenv("ROOMCAST_BENCH_EGRESS") == "" {
		t.Skip("benchmark: set ROOMCAST_BENCH_EGRESS (scripts/bench-egress.sh)")
	}
	secs := 30
	if s, err := strconv.Atoi(os.Getenv("BENCH_EGRESS_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	r := newRig(t)
	const room = "egress-bench"
	for i, c := range []struct{ codec, colour string }{{"h264", "red"}, {"vp8", "green"}, {"h264", "blue"}, {"vp8", "yellow"}} {
		p := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("P%d", i),
			Video: c.codec, Color: c.colour, Width: 640, Height: 360, FPS: 30, Audio: true, ToneHz: 300 + 200*i, Speaking: i == 0})
		defer p.Close()
	}
	time.Sleep(time.Second)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_REDIS="+r.redis.Addr, "CHILD_WS="+r.srv.URL,
		"CHILD_KEY="+r.srv.APIKey, "CHILD_SECRET="+r.srv.APISecret, "CHILD_DIR="+dir, "CHILD_CAPACITY=8")
	out, _ := cmd.StdoutPipe()
	var childLog syncBuffer
	cmd.Stderr = &childLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-exited })
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatalf("worker did not start: %v\n%s", err, childLog.String())
	}
	idle0, _ := procCPU(cmd.Process.Pid)
	time.Sleep(3 * time.Second)
	idle1, _ := procCPU(cmd.Process.Pid)
	ctx := context.Background()
	// measure runs one request for secs after a 5 s warm-up: the worker's
	// cores over that window and the completed info.
	measure := func(req *livekit.RoomCompositeEgressRequest) (float64, *livekit.EgressInfo) {
		info, err := r.client.StartRoomCompositeEgress(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
		time.Sleep(5 * time.Second)
		c0, _ := procCPU(cmd.Process.Pid)
		w0 := time.Now()
		time.Sleep(time.Duration(secs) * time.Second)
		c1, _ := procCPU(cmd.Process.Pid)
		wall := time.Since(w0)
		if _, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
			t.Fatal(err)
		}
		done := r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 60*time.Second, nil)
		return (c1 - c0).Seconds() / wall.Seconds(), done
	}
	cores, done := measure(&livekit.RoomCompositeEgressRequest{
		RoomName: room, Layout: "grid", FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "bench.mp4"}},
	})
	rss := procHWM(cmd.Process.Pid)
	idle := (idle1 - idle0).Seconds() / 3
	f := done.FileResults[0]
	t.Logf("BENCH egress room composite (4 publishers 640x360@30 -> 1280x720@30 H.264 3 Mb/s, %d s): %.2f cores on the roomcast worker (idle worker %.3f cores), peak RSS %d MB; LiveKit Egress admits a room composite at %.0f CPUs: %.1fx",
		secs, cores, idle, rss>>20, liveKitRoomCompositeCPU, liveKitRoomCompositeCPU/cores)
	t.Logf("BENCH egress file: %s, %.1f s of media, %d kB", f.Filename, time.Duration(f.Duration).Seconds(), f.Size>>10)
	// The same room audio-only: no camera subscribed or decoded, no
	// picture drawn or encoded.
	acores, adone := measure(&livekit.RoomCompositeEgressRequest{
		RoomName: room, AudioOnly: true, FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "bench-audio.mp4"}},
	})
	t.Logf("BENCH egress audio-only room composite (the same 4 publishers -> AAC 128 kb/s, %d s): %.3f cores (%.0f%% of the composite), %d kB",
		secs, acores, 100*acores/cores, adone.FileResults[0].Size>>10)
}

// procCPU is a process's utime+stime.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
	st, _ := strconv.ParseInt(string(f[12]), 10, 64)
	return time.Duration(ut+st) * time.Second / 100, nil
}

// procHWM is a process's peak RSS (VmHWM) in bytes.
func procHWM(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("VmHWM:")) {
			f := bytes.Fields(l)
			kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return kb << 10
		}
	}
	return 0
}
