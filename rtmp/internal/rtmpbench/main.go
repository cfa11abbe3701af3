// Command rtmpbench measures the CPU cost of roomcast's RTMP path next to
// `ffmpeg -re -i clip.mp4 -c copy -f flv rtmp://...` pushing the same clip
// to the same nginx-rtmp server in the same run. scripts/bench-rtmp.sh
// runs it.
//
// roomcast's side is this process: the clip's packets are parsed before the
// measurement, then a Publisher sends them in real time, fed as a broadcast
// feeds it: once per output frame, the compositor's clock hands over what
// its encoders produced in that frame (one picture, one or two AAC frames)
// to the stream's output queue (recorder.OutputQueue), whose goroutine
// writes them to the Publisher. Its CPU is getrusage(RUSAGE_SELF) over the
// publish (queue hand-off, FLV packaging, chunking, socket writes, pacing,
// GC). A second figure feeds the Publisher directly, packet by packet at
// each packet's own time (as ffmpeg -re does), which costs a Go process one
// wake-up per packet. ffmpeg's side is the child's user+system time,
// demuxing the MP4 included, since that is what it costs to run.
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

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/recorder"
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
	fps := probeSpec(*mp4).FPS
	var ours, direct, theirs, oursUser, theirsUser []time.Duration
	// Context switches (voluntary + involuntary, all threads): each is a
	// thread going to sleep or being woken, which on a VM can cost more than
	// the work around it; unlike CPU time they hardly depend on the load.
	var oursCS, directCS, theirsCS []time.Duration
	var bytes uint64
	for i := 0; i < *runs; i++ {
		// roomcast, as a broadcast feeds it; then fed packet by packet.
		for _, byFrame := range []bool{true, false} {
			name := fmt.Sprintf("roomcast-%d-%v", i, byFrame)
			p := &rtmp.Publisher{URL: srv.URL(name), Info: m.Info, ChunkSize: uint32(*chunk)}
			if err := p.Start(context.Background()); err != nil {
				t.Fatalf("publish: %v", err)
			}
			var before, after syscall.Rusage
			profile := *cpuProfile != "" && i == 0 && byFrame
			if profile {
				f, err := os.Create(*cpuProfile)
				if err != nil {
					t.Fatalf("%v", err)
				}
				_ = pprof.StartCPUProfile(f)
				defer f.Close()
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			if byFrame {
				q := recorder.NewOutputQueue(name, output{p}, recorder.OutputOptions{Policy: recorder.PolicyStream}, nil, zerolog.Nop())
				playFrames(m.Packets, fps, func(pkt media.Packet) {
					if err := q.Push(pkt); err != nil {
						t.Fatalf("output: %v", err)
					}
				})
				if err := q.Close(); err != nil {
					t.Fatalf("output: %v", err)
				}
				if h := q.Health(); h.Dropped > 0 {
					t.Fatalf("the output queue dropped %d packets", h.Dropped)
				}
			} else {
				rtmptest.Play(context.Background(), m.Packets, 1, p.WritePacket)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
			if profile {
				pprof.StopCPUProfile()
			}
			st := p.Stats()
			if st.DroppedVideo+st.DroppedAudio > 0 || st.Outages > 0 {
				t.Fatalf("roomcast run was not clean: %+v", st)
			}
			bytes = st.Bytes
			cs := time.Duration(after.Nvcsw + after.Nivcsw - before.Nvcsw - before.Nivcsw)
			if byFrame {
				ours = append(ours, cpu(&after)-cpu(&before))
				oursUser = append(oursUser, time.Duration(after.Utime.Nano()-before.Utime.Nano()))
				oursCS = append(oursCS, cs)
			} else {
				direct = append(direct, cpu(&after)-cpu(&before))
				directCS = append(directCS, cs)
			}
		}

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
	d := median(direct)
	fmt.Printf("roomcast fed per packet:   %6.3f s CPU per minute of stream (ratio %.2f), median of %d\n",
		perMin(d), d.Seconds()/f.Seconds(), len(direct))
	if len(theirsCS) > 0 {
		csPerMin := func(d time.Duration) float64 { return float64(d) * float64(time.Minute) / float64(dur) }
		fmt.Printf("context switches per minute: roomcast %.0f (per packet %.0f), ffmpeg %.0f (medians)\n",
			csPerMin(median(oursCS)), csPerMin(median(directCS)), csPerMin(median(theirsCS)))
	}
}

// output is the Publisher as a recorder output (what the session attaches).
type output struct{ p *rtmp.Publisher }

func (o output) WritePacket(pkt media.Packet) error {
	select {
	case <-o.p.Done():
		return fmt.Errorf("publisher ended: %v", o.p.Err())
	default:
	}
	o.p.WritePacket(pkt)
	return nil
}

func (o output) Close() error { return nil }

// playFrames releases the packets as a broadcast's clock does: at each
// output frame's instant, every packet whose time has come, in order.
func playFrames(pkts []media.Packet, fps int, write func(media.Packet)) {
	if len(pkts) == 0 || fps <= 0 {
		return
	}
	start := time.Now()
	t0 := rtmptest.DecodeTime(pkts[0])
	period := time.Second / time.Duration(fps)
	tick := time.NewTicker(period)
	defer tick.Stop()
	for i := 0; i < len(pkts); {
		<-tick.C
		now := time.Since(start)
		for ; i < len(pkts) && rtmptest.DecodeTime(pkts[i])-t0 <= now; i++ {
			write(pkts[i])
		}
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
