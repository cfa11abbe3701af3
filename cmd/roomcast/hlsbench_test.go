package main

// The HLS viewers benchmark (make bench, scripts/bench-hls.sh): not a test.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// procStat reads a process's CPU seconds (utime+stime) and VmRSS/VmHWM (kB).
func procStat(pid int) (cpu float64, rssKB, hwmKB int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, 0, 0, false
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rssKB = n
		case "VmHWM":
			hwmKB = n
		}
	}
	return (ut + st) / 100, rssKB, hwmKB, true
}

// phase measures the broadcaster over a stretch of wall time.
type phase struct {
	cpu         float64 // cores
	maxRSS, rss int64   // kB: highest VmRSS sampled, last
}

func measure(pid int, d time.Duration) phase {
	c0, _, _, _ := procStat(pid)
	t0 := time.Now()
	var p phase
	for time.Since(t0) < d {
		time.Sleep(500 * time.Millisecond)
		_, rss, _, ok := procStat(pid)
		if ok {
			p.maxRSS, p.rss = max(p.maxRSS, rss), rss
		}
	}
	c1, _, _, _ := procStat(pid)
	p.cpu = (c1 - c0) / time.Since(t0).Seconds()
	return p
}

// viewer is one simulated HLS client following the live playlist.
type viewer struct {
	fetched   int
	stalls    []string
	latencies []time.Duration
	bytes     int64
}

var segLine = regexp.MustCompile(`(?m)^#EXTINF:([0-9.]+),\n([0-9a-f]{8}-[0-9]+\.m4s)$`)

// follow plays the live stream like a player, without decoding: it polls
// the playlist every second (half the target duration), joins three
// segments from the live edge and fetches every new segment in order.
// Playback starts when the first segment is in; segment i is due when the
// segments before it have played. A segment that arrives after it was due
// (or fails, or vanished) is a stall: a player would have shown the spinner
// and resumed late, so the clock shifts by the delay.
func (v *viewer) follow(base, id string, until time.Time) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	seen := map[string]bool{}
	first := true
	nextPing := time.Now()
	var playStart time.Time
	var due time.Duration // media time queued before the next segment
	for time.Now().Before(until) {
		poll := time.Now()
		if poll.After(nextPing) {
			if r, err := c.Get(base + "state?v=" + id); err == nil {
				io.Copy(io.Discard, r.Body)
				r.Body.Close()
			}
			nextPing = poll.Add(5 * time.Second)
		}
		r, err := c.Get(base + "hls/index.m3u8")
		if err != nil {
			v.stalls = append(v.stalls, "playlist: "+err.Error())
			time.Sleep(time.Second)
			continue
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		segs := segLine.FindAllStringSubmatch(string(body), -1)
		if first {
			for _, m := range segs[:max(0, len(segs)-3)] {
				seen[m[2]] = true
			}
			first = false
		}
		for _, m := range segs {
			n := m[2]
			if seen[n] {
				continue
			}
			seen[n] = true
			d, _ := strconv.ParseFloat(m[1], 64)
			t0 := time.Now()
			r, err := c.Get(base + "hls/" + n)
			if err != nil {
				v.stalls = append(v.stalls, n+": "+err.Error())
				continue
			}
			nb, _ := io.Copy(io.Discard, r.Body)
			r.Body.Close()
			done := time.Now()
			v.latencies = append(v.latencies, done.Sub(t0))
			v.bytes += nb
			v.fetched++
			if r.StatusCode != 200 {
				v.stalls = append(v.stalls, fmt.Sprintf("%s: HTTP %d", n, r.StatusCode))
				continue
			}
			if playStart.IsZero() {
				playStart = done
			}
			if late := done.Sub(playStart.Add(due)); late > 0 {
				v.stalls = append(v.stalls, fmt.Sprintf("%s: arrived %.2f s after it was due", n, late.Seconds()))
				playStart = playStart.Add(late)
			}
			due += time.Duration(d * float64(time.Second))
		}
		time.Sleep(time.Until(poll.Add(time.Second)))
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// TestBenchHLS: a live 720p demo serving its watch page in-process (--hls
// --watch); roomcast's CPU and RSS for BENCH_HLS_SECONDS without viewers,
// then with BENCH_HLS_VIEWERS HLS clients on loopback following the live
// playlist: stalls, p50/p99 segment fetch latency, the viewer count the
// page reports. Skipped unless ROOMCAST_BENCH_HLS is set.
func TestBenchHLS(t *testing.T) {
	if os.Getenv("ROOMCAST_BENCH_HLS") == "" {
		t.Skip("benchmark: set ROOMCAST_BENCH_HLS=1 (scripts/bench-hls.sh)")
	}
	secs, _ := strconv.Atoi(os.Getenv("BENCH_HLS_SECONDS"))
	if secs <= 0 {
		secs = 60
	}
	nview, _ := strconv.Atoi(os.Getenv("BENCH_HLS_VIEWERS"))
	if nview <= 0 || nview > 1000 {
		nview = 200
	}
	dir := t.TempDir()
	tok := "bench-token-0123456789"
	cmd := exec.Command(bin, "demo", "--duration", fmt.Sprintf("%ds", 2*secs+30), "--preset", "stream",
		"--video-bitrate", "3M", "--hls", filepath.Join(dir, "hls"), "--hls-window", "6",
		"--watch", "127.0.0.1:0", "--watch-token", tok)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var base string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "watch page: "); ok {
			base = u
			break
		}
	}
	if base == "" {
		t.Fatal("no watch URL on stderr")
	}
	go io.Copy(io.Discard, stderr)
	time.Sleep(15 * time.Second) // encoder warm, playlist has a window
	idle := measure(cmd.Process.Pid, time.Duration(secs)*time.Second)

	viewers := make([]*viewer, nview)
	var wg sync.WaitGroup
	until := time.Now().Add(time.Duration(secs) * time.Second)
	for i := range viewers {
		viewers[i] = &viewer{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 2 * time.Second / time.Duration(nview)) // join over 2 s
			viewers[i].follow(base, fmt.Sprintf("benchviewer%05d", i), until)
		}()
	}
	var counted int
	go func() {
		time.Sleep(time.Duration(secs) * time.Second * 3 / 4)
		r, err := http.Get(base + "state")
		if err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if m := regexp.MustCompile(`"viewers":(\d+)`).FindSubmatch(b); m != nil {
				counted, _ = strconv.Atoi(string(m[1]))
			}
		}
	}()
	busy := measure(cmd.Process.Pid, time.Duration(secs)*time.Second)
	wg.Wait()
	_, _, hwm, _ := procStat(cmd.Process.Pid)

	var lat []time.Duration
	var stalled, fetched int
	var bytes int64
	var firstStall string
	for _, v := range viewers {
		lat = append(lat, v.latencies...)
		fetched += v.fetched
		bytes += v.bytes
		if len(v.stalls) > 0 {
			stalled++
			if firstStall == "" {
				firstStall = v.stalls[0]
			}
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	lines := []string{
		fmt.Sprintf("hls: 720p30 live demo (--preset stream --video-bitrate 3M), %d s per phase, %d viewers on loopback (each its own connection, polling every 1 s); load average %s", secs, nview, loadavg()),
		fmt.Sprintf("hls: roomcast without viewers %.3f cores, RSS %.0f MB", idle.cpu, float64(idle.maxRSS)/1024),
		fmt.Sprintf("hls: roomcast with %d viewers %.3f cores, RSS %.0f MB (peak RSS of the run %.0f MB)", nview, busy.cpu, float64(busy.maxRSS)/1024, float64(hwm)/1024),
		fmt.Sprintf("hls: %d segments fetched (%.1f MB, %.1f Mb/s served; the stream itself %.2f Mb/s), segment fetch p50 %.1f ms, p99 %.1f ms, max %.1f ms",
			fetched, float64(bytes)/1e6, float64(bytes)*8/1e6/float64(secs), float64(bytes)*8/1e6/float64(max(fetched, 1))/2,
			pct(0.5).Seconds()*1000, pct(0.99).Seconds()*1000, pct(1).Seconds()*1000),
		fmt.Sprintf("hls: %d of %d viewers stalled%s; the page counted %d viewers", stalled, nview, map[bool]string{true: " (first: " + firstStall + ")", false: ""}[stalled > 0], counted),
	}
	for _, l := range lines {
		t.Log("BENCH " + l)
	}
	if stalled > 0 {
		t.Errorf("%d viewers stalled", stalled)
	}
	if fetched < nview*(secs/2-3) {
		t.Errorf("only %d segments fetched by %d viewers in %d s", fetched, nview, secs)
	}
}
