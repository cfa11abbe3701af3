package recorder_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	lkproto "github.com/livekit/protocol/livekit"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestBenchSoak is the soak figure of scripts/bench-soak.sh (set
// ROOMCAST_BENCH_SOAK=1): two publishers in a livekit-server on 127.0.0.1
// capture a white flash and a 1 kHz beep at the same instants, twice in
// every 4 s (lktest.FlashBeep, the same epoch); the roomcast binary records
// the room for BENCH_SOAK_SECONDS (default 1200) at 1280x720@30 with its
// default encoding (the record preset, x264 veryfast), while its VmRSS is
// read from /proc every second. On the file, as a player shows it (frame
// presentation times, the sound from its first frame), each flash of the
// left tile is paired with its beep: the A/V offset of every pair, and the
// least-squares slope of offset over time is the A/V drift in ms/hour
// (target ≤ 10). The RSS slope (MB/hour) is fitted from the second minute
// on (the first fills the queues and the allocator's arenas).
func TestBenchSoak(t *testing.T) {
	if os.Getenv("ROOMCAST_BENCH_SOAK") == "" {
		t.Skip("benchmark: run scripts/bench-soak.sh (ROOMCAST_BENCH_SOAK=1)")
	}
	secs := 1200
	if v, err := strconv.Atoi(os.Getenv("BENCH_SOAK_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	bin := roomcastBinary(t)
	srv := lktest.StartServer(t)
	dir := t.TempDir()
	const room = "soak"
	video, audio := lktest.FlashBeep(t, dir)
	epoch := time.Now().Add(500 * time.Millisecond)
	for _, id := range []string{"ann", "ben"} {
		r := joinRaw(t, srv, room, id, strings.ToUpper(id[:1])+id[1:])
		publishRaw(t, r, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: "vp8", FPS: 30, Width: 320, Height: 240,
			Samples: video, Epoch: epoch})
		publishRaw(t, r, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Samples: audio, Epoch: epoch})
	}
	time.Sleep(time.Second)
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(srv.APISecret), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "soak.mp4")
	logf, err := os.Create(filepath.Join(dir, "roomcast.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--log-format", "json", "record", "--room", srv.URL+"/"+room, "--api-key", srv.APIKey,
		"--api-secret-file", secret, "--duration", fmt.Sprintf("%ds", secs), "--size", "1280x720", "-o", out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logf
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var samples []procSample
	tick := time.NewTicker(time.Second)
	deadline := time.After(time.Duration(secs+120) * time.Second)
sampling:
	for {
		select {
		case <-exited:
			break sampling
		case <-tick.C:
			if s, ok := readProc(cmd.Process.Pid); ok {
				samples = append(samples, s)
			}
		case <-deadline:
			t.Fatal("roomcast record did not finish in time")
		}
	}
	tick.Stop()
	wall := time.Since(start)
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("roomcast record: exit %d\n%s", code, mediatest.Tail(string(b), 30))
	}
	cpu, _ := rusageOf(cmd.ProcessState)

	// A/V: flashes of the left tile (rows 5-12 of the 32x18 thumbnail,
	// clear of the name label) against the beeps, on the file's timeline.
	ts := frameTimes(t, out)
	v0 := ts[0]
	for i := range ts {
		ts[i] -= v0
	}
	flashes := mediatest.FlashOnsets(mediatest.LumaMeans(t, out, 2, 5, 14, 12), ts)
	beeps := mediatest.BeepOnsets(audioMono(t, out), firstAudioTime(t, out)-v0)
	var at, off []float64
	for _, f := range flashes {
		k := slices.IndexFunc(beeps, func(b float64) bool { return math.Abs(b-f) < 0.5 })
		if k < 0 {
			continue
		}
		at = append(at, f)
		off = append(off, (f-beeps[k])*1000)
	}
	media := ts[len(ts)-1] + 1.0/30
	if len(at) < len(flashes)*9/10 || len(at) < 4 {
		t.Fatalf("%d flashes, %d beeps, %d paired in %.0f s: flashes %.3f…, beeps %.3f…", len(flashes), len(beeps), len(at), media,
			flashes[:min(len(flashes), 6)], beeps[:min(len(beeps), 6)])
	}
	driftPerS, _ := fit(at, off)
	var lo, hi, sum float64 = math.Inf(1), math.Inf(-1), 0
	for _, o := range off {
		lo, hi, sum = min(lo, o), max(hi, o), sum+o
	}
	// RSS from the second minute (or the second half of a short run).
	from := min(60*time.Second, wall/2)
	var rt, rmb []float64
	var rss0, rssEnd int64
	for _, s := range samples {
		if s.at.Sub(start) < from {
			continue
		}
		if rss0 == 0 {
			rss0 = s.rsKB
		}
		rssEnd = s.rsKB
		rt = append(rt, s.at.Sub(start).Hours())
		rmb = append(rmb, float64(s.rsKB)/1024)
	}
	rssSlope, _ := fit(rt, rmb)
	var hwm int64
	for _, s := range samples {
		hwm = max(hwm, s.hwmKB)
	}
	fmt.Printf("BENCH soak: %.0f s of media recorded in %.0f s of wall time (LiveKit room, 2 flash+beep publishers, 1280x720@30 record preset), %.2f cores\n",
		media, wall.Seconds(), cpu/wall.Seconds())
	fmt.Printf("BENCH soak A/V: %d flash/beep pairs, offset (picture − sound) mean %+.1f ms, range %+.1f…%+.1f ms; drift %+.1f ms/hour (target ≤ 10)\n",
		len(at), sum/float64(len(off)), lo, hi, driftPerS*3600)
	fmt.Printf("BENCH soak RSS: %.0f MB at %v, %.0f MB at the end, peak %.0f MB; slope %+.1f MB/hour (fitted over %d samples from %v on)\n",
		float64(rss0)/1024, from.Round(time.Second), float64(rssEnd)/1024, float64(hwm)/1024, rssSlope, len(rt), from.Round(time.Second))
}

// fit is the least-squares line y = a·x + b.
func fit(x, y []float64) (a, b float64) {
	n := float64(len(x))
	if n < 2 {
		return 0, 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	a = (n*sxy - sx*sy) / d
	return a, (sy - a*sx) / n
}
