package recorder_test

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// procSnapshot is what a leak shows in: goroutines, open files, resident
// memory.
type procSnapshot struct {
	goroutines, fds int
	// rssKB is the resident memory, less the race detector's own under
	// -race: its shadow and meta-shadow (shadowKB), which keep pages of
	// memory that was freed, and its internal allocator's regions
	// (raceKB), which are never returned (golang/go#63276, #37233).
	rssKB, shadowKB, raceKB int64
	heapMB                  float64 // the Go heap in use (logged)
}

func (p procSnapshot) String() string {
	if !raceEnabled {
		return fmt.Sprintf("%d goroutines, %d open files, RSS %.1f MB (Go heap %.1f MB)",
			p.goroutines, p.fds, float64(p.rssKB)/1024, p.heapMB)
	}
	return fmt.Sprintf("%d goroutines, %d open files, RSS %.1f MB (Go heap %.1f MB; race detector's shadow %.1f MB and its own regions %.1f MB more)",
		p.goroutines, p.fds, float64(p.rssKB)/1024, p.heapMB, float64(p.shadowKB)/1024, float64(p.raceKB)/1024)
}

// The race detector's shadow and meta-shadow on linux/amd64 (TSan's Go
// mapping: shadow from 0x200000000000, meta-shadow up to 0x400000000000).
const shadowStart, shadowEnd = 0x200000000000, 0x400000000000

// residentKB sums the resident memory of /proc/self/smaps, and apart that
// of the race detector's shadow mappings and of anonymous mappings of
// exactly 1 MiB on a 1 MiB boundary (regions1M). Under -race the latter
// are the race runtime's internal allocator: its regions come in that
// shape, with 1 MiB holes between them, and grow with the churn (1.7 →
// 12.6 MB over 150 cycles, 0.09 MB a cycle, while the process's threads
// stayed at 13), whereas a build without -race had none in 150 cycles.
func residentKB(t *testing.T) (total, shadow, regions1M int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	inShadow, in1M := false, false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && !strings.HasSuffix(f[0], ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			e, err2 := strconv.ParseUint(hi, 16, 64)
			ok := err1 == nil && err2 == nil
			inShadow = ok && a >= shadowStart && a < shadowEnd
			// Fields: range, perms, offset, device, inode, [path].
			in1M = ok && !inShadow && len(f) == 5 && e-a == mib && a%mib == 0
			continue
		}
		if f[0] == "Rss:" && len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			total += kb
			switch {
			case inShadow:
				shadow += kb
			case in1M:
				regions1M += kb
			}
		}
	}
	return total, shadow, regions1M
}

// snapshotProc collects garbage, returns memory to the OS and reads the
// process's counts.
func snapshotProc(t *testing.T) procSnapshot {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := procSnapshot{goroutines: runtime.NumGoroutine(), fds: len(fds), heapMB: float64(ms.HeapInuse) / (1 << 20)}
	total, shadow, regions1M := residentKB(t)
	s.rssKB = total
	if raceEnabled {
		s.rssKB, s.shadowKB, s.raceKB = total-shadow-regions1M, shadow, regions1M
	}
	return s
}

// cycleT collects the cleanups of one churn cycle's helpers, so that the
// cycle's publisher is released at its end rather than kept to the test's.
type cycleT struct {
	testing.TB
	cleanups []func()
}

func (c *cycleT) Cleanup(f func()) { c.cleanups = append(c.cleanups, f) }

func (c *cycleT) done() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
}

// TestLiveChurn: while a host stays, a guest (VP8 camera and Opus
// microphone) joins and leaves one recorded room 50 times, each time as
// soon as roomcast has subscribed to both its tracks and again once its
// tile is gone. Afterwards the
// process's goroutines, open files and resident memory are back within
// 10 % of what they were after 20 warm-up cycles, and the output still has exactly duration × fps
// pictures, its duration that of its sound.
func TestLiveChurn(t *testing.T) {
	lktest.SkipIfShort(t)
	const cycles, warmup = 50, 20
	srv := lktest.StartServer(t)
	dir := t.TempDir()
	video := lktest.GenerateVideo(t, dir, lktest.VideoSpec{Codec: "vp8", Color: "orange"})
	audio := lktest.GenerateAudio(t, dir, lktest.AudioSpec{})
	const room = "churn"
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 10 s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The host keeps the room open (LiveKit closes a room its last
	// visible participant left) and the picture busy.
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "host", Name: "Host", Video: "vp8", VideoSamples: video, Audio: true, AudioSamples: audio})
	// No set duration: the recording runs until the churn is over.
	s := startSession(t, srv, room, compositor.Config{Width: 320, Height: 180})
	tracks := func() int { return len(s.live.NetStats().Tracks) }
	waitFor("the host's tracks subscribed", func() bool { return tracks() == 2 })

	var base procSnapshot
	start := time.Now()
	for i := range cycles + warmup {
		if i == warmup {
			// Let the warm-up's leftovers (SDK timers, closing sockets) end.
			time.Sleep(time.Second)
			base = snapshotProc(t)
			t.Logf("baseline after %d cycles: %v", warmup, base)
			start = time.Now()
		}
		if i == warmup+cycles/2 {
			t.Logf("after %d cycles: %v", i-warmup, snapshotProc(t))
		}
		ct := &cycleT{TB: t}
		p := lktest.StartPublisher(ct, srv, room, lktest.PublisherOptions{Identity: fmt.Sprintf("churn-%d", i), Name: "Churn",
			Video: "vp8", VideoSamples: video, Audio: true, AudioSamples: audio})
		waitFor(fmt.Sprintf("cycle %d: both tracks subscribed", i), func() bool { return tracks() == 4 })
		p.Close()
		ct.done()
		waitFor(fmt.Sprintf("cycle %d: participant gone", i), func() bool {
			return s.live.Participants() == 1 && tracks() == 2
		})
	}
	t.Logf("%d cycles in %v (%v each)", cycles, time.Since(start).Round(time.Millisecond), (time.Since(start) / cycles).Round(time.Millisecond))
	// Give what ends asynchronously (the SDK's and pion's goroutines,
	// sockets in close) a few seconds, then compare.
	var after procSnapshot
	within := func(now, was float64) bool { return now <= was*1.10 }
	// Measured while the recording still runs (its end would take its
	// goroutines and files with it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = snapshotProc(t)
		ok := within(float64(after.goroutines), float64(base.goroutines)) && within(float64(after.fds), float64(base.fds)) &&
			within(float64(after.rssKB), float64(base.rssKB))
		if ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("after %d cycles: %v", cycles, after)
	if !within(float64(after.goroutines), float64(base.goroutines)) {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines %d after the churn, %d before (more than 10 %%):\n%s", after.goroutines, base.goroutines, buf[:n])
	}
	if !within(float64(after.fds), float64(base.fds)) {
		t.Errorf("open files %d after the churn, %d before (more than 10 %%)", after.fds, base.fds)
	}
	// (Warm-up: with the race detector's shadow counted, RSS grew 15–25 %
	// over the first 25 cycles, and ~0.3 MB a cycle after 20 warm-up
	// cycles, while the Go heap stayed near 10 MB.)
	if !within(float64(after.rssKB), float64(base.rssKB)) {
		t.Errorf("RSS %.1f MB after the churn, %.1f MB before (more than 10 %%)", float64(after.rssKB)/1024, float64(base.rssKB)/1024)
	}
	st := s.live.NetStats().Total
	t.Logf("tracks' totals: %d packets, %d frames, %d lost", st.Packets, st.Frames, st.Lost)
	wall := s.at()
	if err := s.stop(); err != nil {
		t.Fatalf("recording: %v", err)
	}
	// Every picture the compositor made is in the file, on the 1/fps
	// grid; the sound lasts as long (within a frame); the recording kept
	// the wall clock.
	frames := s.rec.Compositor().Stats().VideoFrames
	dur := time.Duration(frames) * time.Second / 30
	checkFrameCount(t, s.out, dur, 30)
	a := mediatest.MustProbe(t, s.out, "-show_streams").Stream("audio")
	if d := mediatest.Secs(a.Duration) - dur.Seconds(); math.Abs(d) > 1.0/30 {
		t.Errorf("sound lasts %s s, pictures %.3f s", a.Duration, dur.Seconds())
	}
	if d := wall - dur; d > time.Second || d < -time.Second {
		t.Errorf("%v of media in %v: the recording fell off the wall clock", dur, wall)
	}
	t.Logf("%v recorded, %d pictures", dur, frames)
}
