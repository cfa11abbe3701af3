package recorder_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room/janus/janustest"
)

// TestBenchLiveJanus is the Janus twin of TestBenchLive (run by
// scripts/bench-live.sh with ROOMCAST_BENCH_LIVE=1): four pion publishers
// (two H.264, two VP8, 640x360@30, each with an Opus tone) in a Janus
// VideoRoom on this machine; the roomcast binary records the room for
// BENCH_LIVE_SECONDS (default 60) at 1280x720@30, libx264 veryfast,
// --preset stream 3 Mb/s. It reports the recorder's CPU in cores (rusage
// at exit, and the steady state from /proc/<pid>/stat), its peak RSS
// (VmHWM) and the time from joining to each track's first decoded picture.
func TestBenchLiveJanus(t *testing.T) {
	if os.Getenv("ROOMCAST_BENCH_LIVE") == "" {
		t.Skip("benchmark: run scripts/bench-live.sh (ROOMCAST_BENCH_LIVE=1)")
	}
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("BENCH_LIVE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	bin := roomcastBinary(t)
	srv := janustest.Start(t)
	roomID := srv.CreateRoom(janustest.RoomOptions{AudioLevelEvents: true})
	for i, sp := range []struct {
		name, codec, colour string
		tone                int
	}{{"Alice", "h264", "0xd02828", 330}, {"Bob", "vp8", "0x2838d0", 440}, {"Carol", "h264", "0x28c038", 550}, {"Dave", "vp8", "0xe0d028", 660}} {
		janustest.StartPublisher(t, srv, roomID, janustest.PublisherOptions{
			Display: sp.name, Video: sp.codec, Color: sp.colour, Width: 640, Height: 360, FPS: 30, Audio: true, ToneHz: sp.tone, Speaking: i == 0,
		})
	}
	time.Sleep(time.Second)

	dir := t.TempDir()
	out := filepath.Join(dir, "record.mp4")
	cmd := exec.Command(bin, "--log-format", "json", "record", "--room", fmt.Sprintf("janus+ws://127.0.0.1:%d/%d", srv.WSPort, roomID),
		"--duration", fmt.Sprintf("%ds", secs), "-o", out, "--preset", "stream", "--video-bitrate", "3M", "--x264-preset", "veryfast")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	var (
		mu              sync.Mutex
		joinedAt, recAt time.Time
		firsts, logTail []string
		firstLast       time.Time
	)
	linesDone := make(chan struct{})
	go func() {
		defer close(linesDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l, now := sc.Text(), time.Now()
			mu.Lock()
			logTail = append(logTail, l)
			if len(logTail) > 40 {
				logTail = logTail[1:]
			}
			switch {
			case joinedAt.IsZero() && strings.Contains(l, `"message":"joined"`):
				joinedAt = now
			case recAt.IsZero() && strings.Contains(l, `"message":"recording"`):
				recAt = now
			case strings.Contains(l, `"message":"first video decoded"`):
				who, _ := jsonFieldOf(l, "participant")
				firsts = append(firsts, fmt.Sprintf("%v %v after joined", who, now.Sub(joinedAt).Round(time.Millisecond)))
				firstLast = now
			}
			mu.Unlock()
		}
	}()
	var samples []procSample
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tick := time.NewTicker(250 * time.Millisecond)
sampling:
	for {
		select {
		case <-exited:
			break sampling
		case <-tick.C:
			if s, ok := readProc(cmd.Process.Pid); ok {
				samples = append(samples, s)
			}
		case <-time.After(time.Duration(secs+60) * time.Second):
			t.Fatal("roomcast record did not finish in time")
		}
	}
	tick.Stop()
	wall := time.Since(start)
	<-linesDone
	mu.Lock()
	defer mu.Unlock()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("roomcast record: exit %d\n%s", code, strings.Join(logTail, "\n"))
	}
	cpu, maxrss := rusageOf(cmd.ProcessState)
	var hwm int64
	for _, s := range samples {
		hwm = max(hwm, s.hwmKB)
	}
	var steady float64
	if !recAt.IsZero() && len(samples) > 2 {
		a := slices.IndexFunc(samples, func(s procSample) bool { return s.at.After(recAt.Add(5 * time.Second)) })
		b := len(samples) - 2
		if a >= 0 && b > a {
			steady = (samples[b].cpu - samples[a].cpu) / samples[b].at.Sub(samples[a].at).Seconds()
		}
	}
	frames := len(frameTimes(t, out))
	res := []string{
		fmt.Sprintf("janus: 4 publishers 640x360@30 (2 H.264, 2 VP8, Opus) in a Janus 1.1.2 VideoRoom -> 1280x720@30 libx264 veryfast --preset stream 3 Mb/s, %d s", secs),
		fmt.Sprintf("janus record: %.2f CPU-s over %.2f s wall = %.3f cores (rusage); steady state %.3f cores; %d frames",
			cpu, wall.Seconds(), cpu/wall.Seconds(), steady, frames),
		fmt.Sprintf("janus record: peak RSS %.1f MB (VmHWM), %.1f MB (rusage maxrss)", float64(hwm)/1024, maxrss),
		fmt.Sprintf("janus join: room joined %v after start; last first picture %v after joined", joinedAt.Sub(start).Round(time.Millisecond), firstLast.Sub(joinedAt).Round(time.Millisecond)),
	}
	for _, f := range firsts {
		res = append(res, "janus first picture: "+f)
	}
	for _, l := range res {
		t.Log("BENCH " + l)
	}
	if frames != secs*30 {
		t.Errorf("the recording has %d frames, want %d", frames, secs*30)
	}
	if len(firsts) != 4 {
		t.Errorf("%d tracks logged a first picture, want 4", len(firsts))
	}
}
