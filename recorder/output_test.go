package recorder

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/media"
)

// gateOutput is a fake slow disk or link: WritePacket waits for the gate
// (closed: no wait) and then for delay.
type gateOutput struct {
	gate  chan struct{}
	delay time.Duration

	mu     sync.Mutex
	got    []media.Packet
	closed bool
}

func newGate() *gateOutput { return &gateOutput{gate: make(chan struct{})} }

func (g *gateOutput) WritePacket(p media.Packet) error {
	<-g.gate
	if g.delay > 0 {
		time.Sleep(g.delay)
	}
	g.mu.Lock()
	g.got = append(g.got, p)
	g.mu.Unlock()
	return nil
}

func (g *gateOutput) Close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return nil
}

func (g *gateOutput) packets() []media.Packet {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]media.Packet(nil), g.got...)
}

// pkt makes the i-th packet of a 30 fps video stream with a keyframe every
// keyEvery frames, or an audio packet.
func pkt(i int, kind media.Kind, keyEvery int) media.Packet {
	p := media.Packet{Kind: kind, Data: make([]byte, 1000), PTS: time.Duration(i) * time.Second / 30}
	p.DTS = p.PTS
	p.Data[0] = byte(i)
	p.Data[1] = byte(i >> 8)
	if kind == media.KindVideo {
		p.Key = i%keyEvery == 0
	}
	return p
}

func seq(p media.Packet) int { return int(p.Data[0]) | int(p.Data[1])<<8 }

// A recording output that blocks never holds up the producer, and gets every
// packet, in order, once it moves again.
func TestRecordQueueNeverDropsNorBlocks(t *testing.T) {
	g := newGate()
	q := newOutputQueue("mp4", g, OutputOptions{Critical: true}, false, nil, zerolog.Nop())
	const n = 3000
	start := time.Now()
	for i := range n {
		if err := q.push(pkt(i, media.KindVideo, 60)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("pushing %d packets to a blocked output took %v", n, d)
	}
	h := q.health()
	if h.Queued < n-1 || h.QueuedBytes < int64(n-1)*1000 || h.State != "behind" || h.Dropped != 0 {
		t.Errorf("blocked output health: %+v", h)
	}
	close(g.gate)
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	got := g.packets()
	if len(got) != n {
		t.Fatalf("output got %d packets, want %d", len(got), n)
	}
	for i, p := range got {
		if seq(p) != i {
			t.Fatalf("packet %d is #%d: out of order", i, seq(p))
		}
	}
	h = q.health()
	if h.Packets != n || h.Bytes != n*1000 || h.Queued != 0 || h.State != "closed" || h.MaxQueuedBytes < int64(n-1)*1000 {
		t.Errorf("after drain: %+v", h)
	}
}

// Past its memory budget a live recording fails loudly (ErrBehind) rather
// than grow without bound or make the clock wait.
func TestRecordQueueBudget(t *testing.T) {
	g := newGate()
	q := newOutputQueue("mp4", g, OutputOptions{Critical: true, MaxQueueBytes: 50_000}, false, nil, zerolog.Nop())
	var err error
	i := 0
	for ; i < 1000 && err == nil; i++ {
		err = q.push(pkt(i, media.KindVideo, 60))
	}
	if !errors.Is(err, ErrBehind) {
		t.Fatalf("err = %v after %d packets, want ErrBehind", err, i)
	}
	if i < 50 || i > 52 {
		t.Errorf("failed after %d packets of 1000 bytes with a 50000 byte budget", i)
	}
	if h := q.health(); h.State != "failed" || !errors.Is(h.Err, ErrBehind) {
		t.Errorf("health %+v", h)
	}
	close(g.gate)
	if err := q.close(); !errors.Is(err, ErrBehind) {
		t.Errorf("close: %v", err)
	}
}

// Offline (no clock to protect) the producer waits for the output instead.
func TestRecordQueueOfflineWaits(t *testing.T) {
	g := newGate()
	q := newOutputQueue("mp4", g, OutputOptions{Critical: true, MaxQueueBytes: 10_000}, true, nil, zerolog.Nop())
	pushed := make(chan int)
	go func() {
		for i := range 100 {
			if err := q.push(pkt(i, media.KindVideo, 60)); err != nil {
				t.Error(err)
			}
		}
		pushed <- 100
	}()
	select {
	case <-pushed:
		t.Fatal("offline push did not wait for the blocked output")
	case <-time.After(200 * time.Millisecond):
	}
	close(g.gate)
	<-pushed
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	if n := len(g.packets()); n != 100 {
		t.Errorf("got %d packets, want 100", n)
	}
}

// A stream that falls behind drops its stale queue and resumes at a
// keyframe (asking the encoder for one); audio keeps flowing; drops are
// counted.
func TestStreamQueueResumesAtKeyframe(t *testing.T) {
	g := newGate()
	var keyReqs atomic.Int32
	q := newOutputQueue("rtmp", g, OutputOptions{Policy: PolicyStream, MaxQueuePackets: 40}, false,
		func() { keyReqs.Add(1) }, zerolog.Nop())
	// 100 video frames (keyframe every 30) interleaved with audio, while the
	// link is stalled.
	var sent []media.Packet
	for i := range 100 {
		v := pkt(i, media.KindVideo, 30)
		a := pkt(i, media.KindAudio, 30)
		for _, p := range []media.Packet{v, a} {
			if err := q.push(p); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, p)
		}
	}
	h := q.health()
	if h.Dropped == 0 || h.Queued > 40 {
		t.Fatalf("stalled stream: %+v", h)
	}
	if keyReqs.Load() == 0 {
		t.Error("no keyframe requested after dropping")
	}
	close(g.gate)
	if err := q.close(); err != nil {
		t.Fatal(err)
	}
	got := g.packets()
	if int64(len(got))+q.health().Dropped != int64(len(sent)) {
		t.Errorf("written %d + dropped %d != sent %d", len(got), q.health().Dropped, len(sent))
	}
	// Every run of video after a gap starts with a keyframe.
	last := -1
	var videos int
	for _, p := range got {
		if p.Kind != media.KindVideo {
			continue
		}
		videos++
		i := seq(p)
		if i != last+1 && !p.Key {
			t.Errorf("video resumes at frame %d after %d without a keyframe", i, last)
		}
		last = i
	}
	if videos == 0 || last != 99 {
		t.Errorf("%d video packets written, last %d (want the stream to end at frame 99)", videos, last)
	}
}

// A live Recorder whose only output blocks keeps its clock: frames are
// composed and encoded at the frame rate meanwhile, and the output gets
// every one of them afterwards.
func TestRecorderClockIgnoresBlockedOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time")
	}
	rec, err := New(Config{Compositor: compositor.Config{Width: 160, Height: 90, FPS: 30}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	g := newGate()
	rec.AddOutput("mp4", g, true)
	rec.Start()
	time.Sleep(1500 * time.Millisecond)
	st := rec.Stats()
	// 1.5 s minus the 200 ms playout latency and x264's lookahead: at 30
	// fps a blocked sink would have let at most one frame through.
	if st.VideoFrames < 20 {
		t.Errorf("only %d frames encoded in 1.5 s while the output was blocked", st.VideoFrames)
	}
	if h := rec.Health()[0]; h.Packets != 0 || h.Queued == 0 {
		t.Errorf("blocked output: %+v", h)
	}
	close(g.gate)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	st = rec.Stats()
	got := g.packets()
	if int64(len(got)) != st.VideoFrames+st.AudioPackets {
		t.Errorf("output got %d packets, encoders made %d video + %d audio", len(got), st.VideoFrames, st.AudioPackets)
	}
	var lastDTS time.Duration = -time.Hour
	for _, p := range got {
		if p.Kind == media.KindVideo {
			if p.DTS <= lastDTS {
				t.Fatalf("video DTS %v after %v", p.DTS, lastDTS)
			}
			lastDTS = p.DTS
		}
	}
	if !g.closed {
		t.Error("output not closed")
	}
}
