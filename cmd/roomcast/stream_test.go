package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testnet"
)

// nginxRTMP is nginx with Debian's RTMP module, recording every publish to
// its own FLV file (record_unique), bound to 127.0.0.1.
type nginxRTMP struct {
	dir, conf string
	port      int
	cmd       *exec.Cmd
}

func startNginx(t *testing.T, extra string) *nginxRTMP {
	t.Helper()
	mod := "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("nginx RTMP module missing (make peers installs libnginx-mod-rtmp): %v", err)
	}
	n := &nginxRTMP{dir: t.TempDir(), port: testnet.Port(t)}
	rec := filepath.Join(n.dir, "rec")
	if err := os.MkdirAll(rec, 0o777); err != nil {
		t.Fatal(err)
	}
	n.conf = filepath.Join(n.dir, "nginx.conf")
	// Workers as the test's user (root in CI), so they can write the
	// recordings into the test's private temp dir.
	conf := fmt.Sprintf(`load_module %s;
user root;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events {}
rtmp {
  server {
    listen 127.0.0.1:%[3]d;
    application live { live on; record all; record_path %[4]s; record_unique on; }
    %[5]s
  }
}
`, mod, n.dir, n.port, rec, extra)
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.start(t)
	t.Cleanup(n.stop)
	return n
}

func (n *nginxRTMP) start(t *testing.T) {
	t.Helper()
	n.cmd = exec.Command("nginx", "-c", n.conf, "-p", n.dir)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("nginx: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", n.port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("nginx did not start listening")
}

// stop kills nginx hard (master and workers), as a crash would.
func (n *nginxRTMP) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.cmd = nil
}

func (n *nginxRTMP) url(key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", n.port, key)
}

// recordings lists the FLV files nginx wrote, oldest first.
func (n *nginxRTMP) recordings(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(n.dir, "rec", "*.flv"))
	sort.Slice(files, func(i, j int) bool {
		a, _ := os.Stat(files[i])
		b, _ := os.Stat(files[j])
		return a.ModTime().Before(b.ModTime())
	})
	return files
}

// checkFLV asserts what a viewer's player would get from the ingest.
func checkFLV(t *testing.T, path string, wantDur float64) {
	t.Helper()
	p := ffprobe(t, path)
	v, a := p.Stream("video"), p.Stream("audio")
	if v == nil || a == nil || v.CodecName != "h264" || a.CodecName != "aac" {
		t.Fatalf("%s: want h264 + aac, got %+v", path, p)
	}
	if v.Width != 1280 || v.Height != 720 {
		t.Fatalf("%s: %dx%d, want 1280x720", path, v.Width, v.Height)
	}
	pk := probePackets(t, path, "v")
	if len(pk) == 0 || !pk[0].Key {
		t.Fatalf("%s: does not start with a keyframe", path)
	}
	last, lastKey := pk[0].DTS, pk[0].PTS
	for i, q := range pk[1:] {
		if q.DTS < last {
			t.Fatalf("%s: DTS goes back at packet %d (%.3f < %.3f)", path, i+1, q.DTS, last)
		}
		last = q.DTS
		if q.Key {
			if gap := q.PTS - lastKey; gap > 2.05 {
				t.Fatalf("%s: keyframes %.2f s apart (want ≤ 2 s)", path, gap)
			}
			lastKey = q.PTS
		}
	}
	if wantDur > 0 {
		dur := pk[len(pk)-1].PTS - pk[0].PTS + 1.0/30
		if d := dur - wantDur; d > 0.5 || d < -0.5 {
			t.Fatalf("%s: %.2f s of video, want %.2f ± 0.5", path, dur, wantDur)
		}
		fps := float64(len(pk)-1) / (pk[len(pk)-1].PTS - pk[0].PTS)
		if fps < 29.5 || fps > 30.5 {
			t.Fatalf("%s: %.2f fps", path, fps)
		}
	}
}

func TestStreamWhileRecording(t *testing.T) {
	e2e(t)
	t.Parallel()
	n := startNginx(t, "")
	dir := t.TempDir()
	out := filepath.Join(dir, "rec.mp4")
	// The key comes from the environment, as the README recommends.
	cmd := exec.Command(bin, "demo", "--duration", "6s", "-o", out, "--stream", n.url("${ROOMCAST_TEST_KEY}"), "--stream-preset", "peertube")
	cmd.Env = append(os.Environ(), "ROOMCAST_TEST_KEY=s3cret-key-4711")
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("roomcast: %v\n%s", err, tail(stripANSI(string(outb)), 20))
	}
	if strings.Contains(string(outb), "s3cret-key-4711") {
		t.Fatal("the stream key reached the output")
	}
	finalised(t, out)
	if got := len(probePackets(t, out, "v")); got != 180 {
		t.Fatalf("recording has %d frames, want 180", got)
	}
	recs := n.recordings(t)
	if len(recs) != 1 {
		t.Fatalf("nginx recorded %d streams, want 1", len(recs))
	}
	checkFLV(t, recs[0], 6)
}

func TestStreamServerRestart(t *testing.T) {
	e2e(t)
	t.Parallel()
	n := startNginx(t, "")
	dir := t.TempDir()
	out := filepath.Join(dir, "rec.mp4")
	cmd := exec.Command(bin, "demo", "--duration", "14s", "-o", out, "--stream", n.url("restart"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var se strings.Builder
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	time.Sleep(5 * time.Second)
	n.stop() // the ingest dies mid-stream
	time.Sleep(2 * time.Second)
	n.start(t) // and comes back
	if err := cmd.Wait(); err != nil {
		t.Fatalf("roomcast: %v\n%s", err, tail(stripANSI(se.String()), 20))
	}
	// The recording did not notice: every frame, evenly spaced.
	finalised(t, out)
	pk := probePackets(t, out, "v")
	if len(pk) != 420 {
		t.Fatalf("recording has %d frames, want 420", len(pk))
	}
	pts := make([]float64, len(pk))
	for i, p := range pk {
		pts[i] = p.PTS
	}
	sort.Float64s(pts)
	for i := 1; i < len(pts); i++ {
		if pts[i]-pts[i-1] > 0.034 {
			t.Fatalf("recording has a gap at %.3f s", pts[i-1])
		}
	}
	// The ingest got a second publish that starts with a keyframe.
	recs := n.recordings(t)
	if len(recs) < 2 {
		t.Fatalf("nginx recorded %d publishes, want a second one after the restart\n%s", len(recs), tail(stripANSI(se.String()), 20))
	}
	checkFLV(t, recs[0], 0)
	checkFLV(t, recs[len(recs)-1], 0)
	if !strings.Contains(stripANSI(se.String()), "reconnect") {
		t.Log(tail(stripANSI(se.String()), 20))
	}
}

func TestCheckIngest(t *testing.T) {
	e2e(t)
	t.Parallel()
	n := startNginx(t, "application closed { live on; deny publish all; }")
	r := mustCLI(t, "check-ingest", "--duration", "3s", n.url("probe-key"))
	if !strings.Contains(r.stdout, "ACCEPTED") || strings.Contains(r.stdout, "NOT ACCEPTED") {
		t.Fatalf("check-ingest did not report acceptance:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "chunk size") || !strings.Contains(r.stdout, "kb/s") {
		t.Fatalf("report lacks chunk size or bitrate:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "probe-key") {
		t.Fatal("the stream key reached the output")
	}
	recs := n.recordings(t)
	if len(recs) != 1 {
		log, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
		t.Fatalf("nginx recorded %d streams\n%s", len(recs), tail(string(log), 10))
	}
	checkFLV(t, recs[0], 3)

	// A refused publish: a clear error and exit 6 within 5 s.
	bad := strings.Replace(n.url("k"), "/live/", "/closed/", 1)
	r = runCLI(t, "check-ingest", "--duration", "3s", bad)
	if r.code != exitStream || r.elapsed > 5*time.Second || !strings.Contains(r.stdout, "NOT ACCEPTED") {
		t.Fatalf("refused publish: exit %d after %s\n%s%s", r.code, r.elapsed, r.stdout, r.stderr)
	}
	// Nobody listening: exit 6 at once.
	r = runCLI(t, "check-ingest", "--duration", "3s", fmt.Sprintf("rtmp://127.0.0.1:%d/live/k", testnet.Port(t)))
	if r.code != exitStream || r.elapsed > 5*time.Second {
		t.Fatalf("unreachable: exit %d after %s\n%s", r.code, r.elapsed, r.stderr)
	}
}

// TestStreamOnlyGivesUp: a stream-only broadcast (no -o) whose only
// destination gave up reconnecting stops at once with exit 6 rather than
// running to its end and reporting success.
func TestStreamOnlyGivesUp(t *testing.T) {
	e2e(t)
	t.Parallel()
	n := startNginx(t, "")
	cmd := exec.Command(bin, "record", "--room", "demo:?speakers=1", "--duration", "90s",
		"--stream", n.url("gone"), "--stream-give-up", "2s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var se strings.Builder
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	time.Sleep(4 * time.Second)
	n.stop() // the only ingest dies for good
	stopped := time.Now()
	err := cmd.Wait()
	took := time.Since(stopped)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("exit %d %v after the ingest died", code, took.Round(100*time.Millisecond))
	if code != exitStream {
		t.Errorf("exit %d, want %d (every destination gave up)\n%s", code, exitStream, tail(stripANSI(se.String()), 15))
	}
	// Give-up after 2 s of outage, plus the backoff step and a status tick.
	if took > 20*time.Second {
		t.Errorf("stopped %v after the ingest died, want soon after the 2 s give-up", took)
	}
}
