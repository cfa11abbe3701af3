package rtmp

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/roomcast/roomcast/media"
)

func testInfo() media.StreamInfo {
	return media.StreamInfo{Width: 640, Height: 360, FPS: 30,
		VideoConfig: annexB(spsBaseline, ppsBaseline), SampleRate: 48000, Channels: 2, AudioConfig: []byte{0x11, 0x90}}
}

// A publisher whose queue exists but whose writer goroutine does not run,
// so the queue's state is under the test's control.
func stalledPublisher(t *testing.T, queue int) *Publisher {
	p := &Publisher{URL: "rtmp://127.0.0.1/live/k", Info: testInfo(), QueueSize: queue}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.init(); err != nil {
		t.Fatal(err)
	}
	p.queue = make(chan media.Packet, p.QueueSize)
	p.state.Store(int32(StatePublishing))
	return p
}

func TestWritePacketDropsVideoToKeyframe(t *testing.T) {
	p := stalledPublisher(t, 3)
	key := media.Packet{Kind: media.KindVideo, Key: true}
	inter := media.Packet{Kind: media.KindVideo}
	audio := media.Packet{Kind: media.KindAudio}
	for _, pkt := range []media.Packet{key, inter, audio} {
		p.WritePacket(pkt)
	}
	p.WritePacket(inter) // queue full: dropped, video now waits for a keyframe
	p.WritePacket(audio) // dropped too
	<-p.queue
	<-p.queue
	p.WritePacket(inter) // room, but it refers to the lost frame
	p.WritePacket(audio) // audio goes through
	p.WritePacket(key)
	p.WritePacket(inter) // queue full again
	st := p.Stats()
	if st.DroppedVideo != 3 || st.DroppedAudio != 1 {
		t.Fatalf("dropped video %d audio %d, want 3 and 1", st.DroppedVideo, st.DroppedAudio)
	}
	var kinds []string
	for len(p.queue) > 0 {
		q := <-p.queue
		k := "a"
		if q.Kind == media.KindVideo {
			k = "P"
			if q.Key {
				k = "K"
			}
		}
		kinds = append(kinds, k)
	}
	if got := kinds; len(got) != 3 || got[0] != "a" || got[1] != "a" || got[2] != "K" {
		t.Fatalf("queue holds %v, want [a a K]", got)
	}
}

func TestWritePacketNeverBlocks(t *testing.T) {
	p := stalledPublisher(t, 8)
	t0 := time.Now()
	for i := range 100_000 {
		p.WritePacket(media.Packet{Kind: media.KindVideo, Key: i%60 == 0})
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("100k WritePacket calls on a full queue took %v", d)
	}
}

func TestLifecycleWithoutServer(t *testing.T) {
	// Before Start and after Close, WritePacket drops; Close is idempotent.
	p := &Publisher{URL: "rtmp://127.0.0.1:1/live/k", Info: testInfo()}
	p.WritePacket(media.Packet{Kind: media.KindAudio})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	p.WritePacket(media.Packet{Kind: media.KindVideo})
	if st := p.Stats(); st.DroppedAudio != 1 || st.DroppedVideo != 1 || st.State != StateClosed {
		t.Fatalf("stats %+v", st)
	}

	// Invalid configuration fails Start without goroutines.
	bad := &Publisher{URL: "rtmp://127.0.0.1/live/k", Info: media.StreamInfo{VideoConfig: []byte{0, 0, 1, 0x67}}}
	if err := bad.Start(context.Background()); err == nil {
		t.Fatal("Start accepted a config without PPS")
	}
	if err := bad.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}
	bad.Close()

	// A cancelled context ends the attempt.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Publisher{URL: "rtmp://127.0.0.1:1/live/k", Info: testInfo()}
	if err := c.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with a cancelled context: %v", err)
	}
	if c.Err() == nil || c.Stats().State != StateFailed {
		t.Fatalf("state %v err %v", c.Stats().State, c.Err())
	}
	<-c.Done()
	c.Close()
}

func TestPresets(t *testing.T) {
	for _, name := range []string{"generic", "PeerTube", "owncast", "youtube"} {
		p, ok := PresetByName(name)
		if !ok || p.KeyframeInterval > 2*time.Second || p.AudioSampleRate != 48000 || p.Profile == "" {
			t.Errorf("%s: %+v", name, p)
		}
		if r := p.VideoBitrate(720, 30); r < 1_000_000 || r > 8_000_000 {
			t.Errorf("%s: 720p30 bitrate %d", name, r)
		}
		if p.VideoBitrate(1080, 60) <= p.VideoBitrate(720, 30) {
			t.Errorf("%s: bitrate ladder does not grow", name)
		}
	}
	if _, ok := PresetByName("nope"); ok {
		t.Error("unknown preset found")
	}
}

func BenchmarkVideoTag(b *testing.B) {
	// A 12.5 kB access unit: a 3 Mb/s stream at 30 fps.
	// CABAC slice data looks random; emulation prevention rules out
	// 00 00 0x inside it.
	slice := make([]byte, 12500)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range slice {
		slice[i] = byte(r.Uint32())
		if i >= 2 && slice[i-1] == 0 && slice[i-2] == 0 && slice[i] <= 3 {
			slice[i] = 4
		}
	}
	slice[0] = 0x65
	au := annexB([]byte{9, 0xf0}, slice)
	var dst []byte
	b.SetBytes(int64(len(au)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = videoTag(dst[:0], false, 33, au)
	}
}

func TestInBandParameterSets(t *testing.T) {
	idr := []byte{0x65, 0x88, 0x84}
	if ps := inBandParameterSets(annexB([]byte{9, 0xf0}, idr)); ps != nil {
		t.Fatalf("found %x in a frame without parameter sets", ps)
	}
	ps := inBandParameterSets(annexB([]byte{9, 0xf0}, spsHigh, ppsHigh, idr))
	rec, err := avcDecoderConfig(ps)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := avcDecoderConfig(annexB(spsHigh, ppsHigh))
	if string(rec) != string(want) {
		t.Fatalf("record %x, want %x", rec, want)
	}
}
