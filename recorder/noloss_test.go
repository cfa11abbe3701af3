package recorder_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// Numbered pictures: every source picture carries its own number as a bar
// code the output can be read back with, through VP8, scaling and x264.
const (
	// codeBits numbers up to 4095 pictures (136 s at 30 fps).
	codeBits = 12
	// codeBars: a white and a black marker bar, then the bits, lowest
	// first (white = 1).
	codeBars = 2 + codeBits
	// Source pictures are 320x180 (16:9: in the single layout on a 16:9
	// canvas they fill the canvas exactly) in four bands of 45 rows: the
	// code, a moving test pattern (so pictures cost what a small camera
	// layer costs, ~2 kB and a couple of packets each, and a keyframe
	// several), the code inverted (a picture is only read when both
	// agree), the test pattern again (where the name label goes).
	codeW, codeH = 320, 180
)

// everyFrameJitter is how long the relay holds each datagram the server
// sends to a client: uniform in 0–30 ms, the delay variation of a decent
// home connection (broadband or good Wi-Fi) to a media server. Drawn per
// packet, it also reorders the packets of a picture and neighbouring
// pictures, which real networks rarely do: harsher than the field.
const everyFrameJitter = 30 * time.Millisecond

// numberedVideo encodes secs seconds of numbered 320x180 pictures at 30 fps
// as VP8 (about 500 kbit/s, a keyframe every 30 pictures exactly, one IVF
// frame per picture) and returns the frames; picture k shows number k.
func numberedVideo(t *testing.T, dir string, secs int) [][]byte {
	t.Helper()
	const fps = 30
	if secs*fps >= 1<<codeBits {
		t.Fatalf("numberedVideo: %d s is more pictures than %d bits number", secs, codeBits)
	}
	// One pixel per bar and band, scaled up without blending. geq's N is
	// the picture number.
	bit := `if(lt(X\,2)\,eq(X\,0)\,mod(floor(N/pow(2\,X-2))\,2))`
	code := fmt.Sprintf(`color=c=black:s=%dx4:r=%d:d=%d,format=gray,geq=lum='if(mod(Y\,2)\,128\,255*abs(eq(Y\,2)-%s))',`+
		`scale=%d:%d:flags=neighbor,format=yuv420p[c];`, codeBars, fps, secs, bit, codeW, codeH)
	pattern := fmt.Sprintf("testsrc2=s=%dx%d:r=%d:d=%d", codeW, codeH/4, fps, secs)
	graph := code + pattern + "[a];" + pattern + fmt.Sprintf("[b];[c][a]overlay=y=%d[c2];[c2][b]overlay=y=%d", codeH/4, 3*codeH/4)
	path := dir + "/numbered.ivf"
	ffmpegRun(t, "-f", "lavfi", "-i", graph, "-pix_fmt", "yuv420p", "-c:v", "libvpx", "-deadline", "realtime",
		"-cpu-used", "8", "-g", fmt.Sprint(fps), "-keyint_min", fmt.Sprint(fps), "-auto-alt-ref", "0", "-lag-in-frames", "0",
		"-b:v", "1M", "-f", "ivf", path)
	video := lktest.ReadIVF(t, path)
	if len(video) != secs*fps {
		t.Fatalf("numbered video: %d pictures, want %d", len(video), secs*fps)
	}
	for i, v := range video {
		if key := v[0]&1 == 0; key != (i%fps == 0) { // VP8 frame tag: bit 0 clear on keyframes
			t.Fatalf("numbered video: picture %d keyframe %v, want one every %d", i, key, fps)
		}
	}
	return video
}

// readNumbers decodes the video of path as a player does (every picture
// once, in presentation order) and reads the number each picture shows in
// a full-canvas tile, -1 where it shows none (placeholder, background, a
// picture that does not read cleanly).
func readNumbers(t *testing.T, path string) []int {
	t.Helper()
	// Area-average each bar's band into 4x4 cells and read the inner
	// 2x2, clear of the bars' edges and of the next band.
	const cw, ch = 4 * codeBars, 16
	out := mediatest.FFmpeg(t, "-i", path, "-an", "-vf", fmt.Sprintf("scale=%d:%d:flags=area,format=gray", cw, ch),
		"-fps_mode", "passthrough", "-f", "rawvideo", "-")
	n := len(out) / (cw * ch)
	nums := make([]int, n)
	for i := range nums {
		px := out[i*cw*ch : (i+1)*cw*ch]
		cell := func(bar, band int) int {
			x, y := 4*bar+1, 4*band+1
			return (int(px[y*cw+x]) + int(px[y*cw+x+1]) + int(px[(y+1)*cw+x]) + int(px[(y+1)*cw+x+1])) / 4
		}
		nums[i] = -1
		v := 0
		ok := true
		for b := 0; b < codeBars && ok; b++ {
			top, inv := cell(b, 0), cell(b, 2)
			var one bool
			switch {
			case top > 160 && inv < 96:
				one = true
			case top < 96 && inv > 160:
			default:
				ok = false
			}
			switch {
			case b == 0:
				ok = ok && one
			case b == 1:
				ok = ok && !one
			case one:
				v |= 1 << (b - 2)
			}
		}
		if ok {
			nums[i] = v
		}
	}
	return nums
}

// frameNumberReport compares the numbers read from the output's pictures
// (nums, -1: none) with the source: from the first numbered picture to the
// last, every number once, in order, each in its own output frame. It
// returns the problems found (at most a few of each kind) and the span.
// sentLate are pictures the publisher itself sent too late to make their
// frame: their absence, and the previous picture held in their place, are
// listed in excused instead.
func frameNumberReport(nums []int, sentLate map[int]time.Duration) (problems, excused []string, first, last int) {
	first = slices.IndexFunc(nums, func(v int) bool { return v >= 0 })
	if first < 0 {
		return []string{"no output picture shows a number"}, nil, -1, -1
	}
	last = len(nums) - 1
	for nums[last] < 0 {
		last--
	}
	const show = 8
	var missing, dup, back, blank, lateMissing, lateHeld []string
	held, gone := 0, 0
	add := func(l *[]string, format string, args ...any) {
		if len(*l) < show {
			*l = append(*l, fmt.Sprintf(format, args...))
		} else if len(*l) == show {
			*l = append(*l, "…")
		}
	}
	seen := map[int]int{}
	prev := nums[first] - 1
	for i := first; i <= last; i++ {
		v := nums[i]
		switch {
		case v < 0:
			add(&blank, "frame %d", i)
			continue
		case seen[v] > 0 && sentLate[v+1] > 0:
			add(&lateHeld, "%d (frame %d)", v, i)
			held++
		case seen[v] > 0:
			add(&dup, "%d (frames %d and %d)", v, seen[v]-1, i)
		case v < prev:
			add(&back, "%d after %d (frame %d)", v, prev, i)
		}
		if _, ok := seen[v]; !ok {
			seen[v] = i + 1
		}
		prev = max(prev, v)
	}
	for v := nums[first]; v <= prev; v++ {
		switch {
		case seen[v] == 0 && sentLate[v] > 0:
			add(&lateMissing, "%d (sent %v late)", v, sentLate[v].Round(time.Millisecond))
			gone++
		case seen[v] == 0:
			add(&missing, "%d", v)
		}
	}
	for _, l := range []struct {
		what string
		l    []string
	}{{"missing source pictures", missing}, {"shown twice", dup}, {"out of order", back}, {"output frames without a number", blank}} {
		if len(l.l) > 0 {
			problems = append(problems, l.what+": "+strings.Join(l.l, ", "))
		}
	}
	if frames, span := last-first+1, nums[last]-nums[first]+1; frames != span-gone+held {
		problems = append(problems, fmt.Sprintf("%d output frames from number %d to %d, a span of %d source pictures", frames, nums[first], nums[last], span))
	}
	if len(lateMissing) > 0 {
		excused = append(excused, "missing, sent late by the publisher: "+strings.Join(lateMissing, ", "))
	}
	if len(lateHeld) > 0 {
		excused = append(excused, "held while the next was sent late: "+strings.Join(lateHeld, ", "))
	}
	return problems, excused, first, last
}

func TestFrameNumberReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		nums []int
		want []string
	}{
		{"exact", []int{-1, -1, 40, 41, 42, 43, -1}, nil},
		{"missing", []int{-1, 40, 41, 43, 44}, []string{"missing source pictures: 42", "4 output frames from number 40 to 44, a span of 5 source pictures"}},
		{"held", []int{40, 41, 41, 42}, []string{"shown twice: 41 (frames 1 and 2)", "4 output frames from number 40 to 42, a span of 3 source pictures"}},
		{"swapped", []int{40, 42, 41, 43}, []string{"out of order: 41 after 42 (frame 2)"}},
		{"blank", []int{40, -1, 42}, []string{"missing source pictures: 41", "output frames without a number: frame 1"}},
		{"none", []int{-1, -1}, []string{"no output picture shows a number"}},
		// 42 and 43 sent late: 41 held, 42 lost; 44 lost with nothing to excuse it.
		{"sent late", []int{40, 41, 41, 43, 45}, []string{"missing source pictures: 44", "5 output frames from number 40 to 45, a span of 6 source pictures"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var late map[int]time.Duration
			if tc.name == "sent late" {
				late = map[int]time.Duration{42: 300 * time.Millisecond, 43: 250 * time.Millisecond}
			}
			got, excused, _, _ := frameNumberReport(tc.nums, late)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.name == "sent late" && !slices.Equal(excused, []string{"missing, sent late by the publisher: 42 (sent 300ms late)", "held while the next was sent late: 41 (frame 2)"}) {
				t.Errorf("excused %q", excused)
			}
		})
	}
}

// TestLiveEveryFrame: a 30 fps publisher into a 30 fps recording loses no
// picture. The publisher sends VP8 pictures that each show their number as
// a bar code; the LiveKit server's media to roomcast goes through a relay
// that holds each packet 0–30 ms (everyFrameJitter: arrival jitter and
// reordering, no loss), in a network namespace the test creates. roomcast
// records the single layout, the publisher's picture filling the canvas,
// for 60 s from its first picture. Read back from the finalised MP4 as a
// player decodes it: from the first numbered output frame to the last,
// every source number appears exactly once, in order, one per output
// frame; and the compositor's counters say no picture was dropped (neither
// rate conversion nor loss).
func TestLiveEveryFrame(t *testing.T) {
	lktest.SkipIfShort(t)
	if !inNetns(t, "TestLiveEveryFrame") {
		return
	}
	const (
		fps  = 30
		span = 60 * time.Second
	)
	// The publisher starts before roomcast's first picture (join,
	// subscription, the next keyframe: 1–3 s, up to 10 s allowed) and
	// must not loop within the recording.
	video := numberedVideo(t, t.TempDir(), 75)
	srv := lktest.StartServerWith(t, lktest.ServerOptions{NodeIP: relayIP})
	relay, _, _ := throughJitterRelay(t, srv, everyFrameJitter)
	const room = "everyframe"
	s := startSession(t, srv, room, compositor.Config{Layout: layout.Single, FPS: fps})
	pub := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{
		Identity: "counter", Name: "Counter", Video: "vp8", Width: codeW, Height: codeH, FPS: fps,
		VideoSamples: video,
		// Keyframe requests are served by the samples' own keyframes (one
		// a second): a jump to a keyframe would skip numbers.
		KeepCaptureClock: true,
	})

	// Record 60 s (plus the playout delay, plus a little) from the first
	// picture roomcast decoded.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.logs.String(), "first video decoded") {
		if time.Now().After(deadline) {
			t.Fatal("no picture decoded 10 s after the publisher joined")
		}
		time.Sleep(20 * time.Millisecond)
	}
	first := s.at()
	s.sleepUntil(first + span + s.cc.Latency + 500*time.Millisecond)
	if err := s.stop(); err != nil {
		t.Fatalf("recording: %v", err)
	}
	sent, _ := pub.Sent()
	pub.Close()

	st := s.rec.Compositor().Stats()
	rs := relay.Stats()
	ns := s.live.NetStats().Total
	t.Logf("first picture decoded at %v; compositor: %d frames, dropped %d (lost %d), repeated %d, skipped %d, max lag %v",
		first.Round(time.Millisecond), st.VideoFrames, st.DroppedVideo, st.LostVideo, st.RepeatedVideo, st.SkippedVideo, st.MaxLag)
	t.Logf("relay: %+v; publisher sent %d pictures, the latest %v after its capture time", rs, sent, pub.MaxVideoLateness().Round(time.Millisecond))
	t.Logf("roomcast: packets %d, lost %d, late %d, repaired (reordered) %d, NACKs %d, PLIs %d, queue drops %d",
		ns.Packets, ns.Lost, ns.Late, ns.Repaired, ns.NACKs, ns.KeyframeRequests, ns.QueueDrops)
	// The jitter was there: the media came through the relay, reordered.
	if rs.Down < uint64(span.Seconds()*fps) || rs.Reordered == 0 || ns.Repaired == 0 {
		t.Errorf("relay %+v, %d packets repaired: want the media through the relay, reordered", rs, ns.Repaired)
	}

	nums := readNumbers(t, s.out)
	ts := frameTimes(t, s.out)
	if len(ts) != len(nums) {
		t.Fatalf("ffprobe counts %d video frames, ffmpeg decoded %d", len(ts), len(nums))
	}
	// On a starved machine the publisher (in this test's process) can
	// send pictures too late for the playout delay: roomcast must count
	// them lost, and nothing else may be missing.
	sentLate := pub.VideoSentLate(s.cc.Latency / 2)
	problems, excused, a, b := frameNumberReport(nums, sentLate)
	for _, p := range problems {
		t.Error(p)
	}
	for _, e := range excused {
		t.Logf("not roomcast's: %s", e)
	}
	if a >= 0 {
		t.Logf("%d output frames; numbers %d (frame %d, %.3f s) to %d (frame %d, %.3f s)", len(nums), nums[a], a, ts[a]-ts[0], nums[b], b, ts[b]-ts[0])
		if got := time.Duration(float64(nums[b]-nums[a]+1) / fps * float64(time.Second)); got < span {
			t.Errorf("the numbered pictures span %v of the source, want at least %v", got, span)
		}
	}
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; d < 0.9/fps || d > 1.1/fps {
			t.Errorf("frame %d: PTS step %.4f s, want %.4f s", i, d, 1.0/fps)
			break
		}
	}
	// Nothing was dropped, neither by rate conversion nor lost, and the
	// final log line (what an operator reads) says so.
	logs := s.logs.String()
	if len(excused) == 0 {
		if st.DroppedVideo != 0 || st.LostVideo != 0 {
			t.Errorf("compositor dropped %d pictures (%d of them lost), want none", st.DroppedVideo, st.LostVideo)
		}
		if !strings.Contains(logs, `"dropped_video":0,"lost_video":0`) {
			t.Errorf("the compositor's last log line does not say dropped_video 0, lost_video 0:\n%s", tailLines(logs, 5))
		}
	} else if st.DroppedVideo != st.LostVideo || st.LostVideo > int64(len(sentLate)) {
		// Pictures the sender delivered late are lost, not rate conversion.
		t.Errorf("compositor dropped %d pictures (%d of them lost), want only lost ones, at most the %d sent late", st.DroppedVideo, st.LostVideo, len(sentLate))
	}
}
