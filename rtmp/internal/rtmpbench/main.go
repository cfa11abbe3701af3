// Command rtmpbench measures the CPU cost of roomcast's RTMP path next to
// `ffmpeg -re -i clip.mp4 -c copy -f flv rtmp://...` pushing the same clip
// to the same nginx-rtmp server in the same run. scripts/bench-rtmp.sh
// runs it.
//
// roomcast's side is this process: the clip's packets are parsed before the
// measurement, then a Publisher sends them paced in real time; its CPU is
// getrusage(RUSAGE_SELF) over the publish (FLV packaging, go-rtmp chunking,
// socket writes, pacing, GC). ffmpeg's side is the child's user+system
// time, demuxing the MP4 included, since that is what it costs to run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/roomcast/roomcast/rtmp"
	"github.com/roomcast/roomcast/rtmp/internal/rtmptest"
)

// tb adapts rtmptest's helpers to a command.
type tb struct {
	dir      string
	cleanups []func()
}

func (t *tb) Helper()                   {}
func (t *tb) Logf(f string, a ...any)   { log.Printf(f, a...) }
func (t *tb) Fatalf(f string, a ...any) { t.cleanup(); log.Fatalf(f, a...) }
func (t *tb) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *tb) TempDir() string {
	d, err := os.MkdirTemp(t.dir, "tmp")
	if err != nil {
		log.Fatal(err)
	}
	return d
}

func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
}

func cpu(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	mp4 := flag.String("mp4", "", "H.264+AAC MP4 to push (required)")
	runs := flag.Int("runs", 1, "runs of each side, alternating; medians are printed")
	chunk := flag.Uint("chunk", 0, "roomcast's outgoing chunk size (0: the Publisher's default)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of roomcast's side here")
	flag.Parse()
	if *mp4 == "" {
		log.Fatal("-mp4 is required")
	}
	log.SetFlags(0)
	rtmptest.EnsureFFmpeg()
	work, err := os.MkdirTemp("", "rtmpbench-")
	if err != nil {
		log.Fatal(err)
	}
	t := &tb{dir: work}
	defer os.RemoveAll(work)
	defer t.cleanup()

	m, err := rtmptest.Load(t.TempDir(), *mp4, probeSpec(*mp4))
	if err != nil {
		t.Fatalf("load %s: %v", *mp4, err)
	}
	dur := m.Duration()
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{NoRecord: true})
	var ours, theirs, oursUser, theirsUser []time.Duration
	// Context switches (voluntary + involuntary, all threads): each is a
	// thread going to sleep or being woken, which on a VM can cost more than
	// the work around it; unlike CPU time they hardly depend on the load.
	var oursCS, theirsCS []time.Duration
	var bytes uint64
	for i := 0; i < *runs; i++ {
		// roomcast: a Publisher fed in real time.
		p := &rtmp.Publisher{URL: srv.URL(fmt.Sprintf("roomcast-%d", i)), Info: m.Info, ChunkSize: uint32(*chunk)}
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("publish: %v", err)
		}
		var before, after syscall.Rusage
		if *cpuProfile != "" && i == 0 {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				t.Fatalf("%v", err)
			}
			_ = pprof.StartCPUProfile(f)
			defer f.Close()
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		rtmptest.Play(context.Background(), m.Packets, 1, p.WritePacket)
		if err := p.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		if *cpuProfile != "" && i == 0 {
			pprof.StopCPUProfile()
		}
		st := p.Stats()
		if st.DroppedVideo+st.DroppedAudio > 0 || st.Outages > 0 {
			t.Fatalf("roomcast run was not clean: %+v", st)
		}
		bytes = st.Bytes
		ours = append(ours, cpu(&after)-cpu(&before))
		oursUser = append(oursUser, time.Duration(after.Utime.Nano()-before.Utime.Nano()))
		oursCS = append(oursCS, time.Duration(after.Nvcsw+after.Nivcsw-before.Nvcsw-before.Nivcsw))

		// ffmpeg: the same clip, stream copy, real time.
		cmd := exec.Command("ffmpeg", "-v", "error", "-re", "-i", *mp4, "-c", "copy", "-f", "flv",
			srv.URL(fmt.Sprintf("ffmpeg-%d", i)))
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("ffmpeg: %v", err)
		}
		theirs = append(theirs, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
		theirsUser = append(theirsUser, cmd.ProcessState.UserTime())
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			theirsCS = append(theirsCS, time.Duration(ru.Nvcsw+ru.Nivcsw))
		}
	}
	o, f := median(ours), median(theirs)
	perMin := func(d time.Duration) float64 { return d.Seconds() * float64(time.Minute) / float64(dur) }
	fmt.Printf("clip: %s, %v, %.2f Mb/s on the wire (roomcast)\n", filepath.Base(*mp4), dur.Round(time.Millisecond),
		float64(bytes)*8/dur.Seconds()/1e6)
	fmt.Printf("roomcast RTMP path:        %6.3f s CPU per minute of stream (user %.3f), median of %d\n",
		perMin(o), perMin(median(oursUser)), len(ours))
	fmt.Printf("ffmpeg -re -c copy -f flv: %6.3f s CPU per minute of stream (user %.3f), median of %d\n",
		perMin(f), perMin(median(theirsUser)), len(theirs))
	fmt.Printf("ratio roomcast/ffmpeg:     %6.2f\n", o.Seconds()/f.Seconds())
	if len(theirsCS) > 0 {
		csPerMin := func(d time.Duration) float64 { return float64(d) * float64(time.Minute) / float64(dur) }
		fmt.Printf("context switches per minute: roomcast %.0f, ffmpeg %.0f (medians)\n",
			csPerMin(median(oursCS)), csPerMin(median(theirsCS)))
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// probeSpec reads the clip's size and frame rate with ffprobe.
func probeSpec(mp4 string) rtmptest.MediaSpec {
	pr, err := rtmptest.ProbeFile(mp4)
	if err != nil {
		log.Fatal(err)
	}
	s := rtmptest.Summarize(pr)
	return rtmptest.MediaSpec{Width: s.Width, Height: s.Height, FPS: int(s.FPS + 0.5)}
}
