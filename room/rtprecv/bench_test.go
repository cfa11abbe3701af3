package rtprecv

import (
	"testing"
	"time"
)

// BenchmarkWorkerPipelineH264 measures the per-track work for one 30 fps
// 640x360-sized H.264 frame (6 FU-A packets): unwrap, jitter buffer,
// framer, depacketiser, clock.
func BenchmarkWorkerPipelineH264(b *testing.B) {
	nal := make([]byte, 6000)
	nal[0] = 0x41
	nal[1] = 0x9a
	frags := fuA(nal, 6)
	j := newJitterBuffer(512, 150*time.Millisecond)
	f := newFramer("h264", &h264Depacketizer{}, true)
	f.needKey = false
	clock := newTrackClock(Clock{epoch: t0}, 90000, &ParticipantClock{}, time.Second)
	var u seqUnwrapper
	seq := uint16(0)
	var sink int
	emit := func(r rawFrame) { _ = clock.pts(r.ts, r.arrival); sink += len(r.data) }
	b.SetBytes(int64(len(nal)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ts := uint32(i * 3000)
		now := t0.Add(time.Duration(i) * 33 * time.Millisecond)
		for k, p := range frags {
			j.push(&rtpPacket{seq: u.unwrap(seq), ts: ts, marker: k == len(frags)-1, payload: p, arrival: now})
			seq++
			for {
				q, _, ok := j.pop(now)
				if !ok {
					break
				}
				f.push(q, emit)
			}
		}
	}
	if sink == 0 {
		b.Fatal("no output")
	}
}

func BenchmarkWorkerPipelineOpus(b *testing.B) {
	j := newJitterBuffer(128, 40*time.Millisecond)
	f := newFramer("opus", opusDepacketizer{}, false)
	clock := newTrackClock(Clock{epoch: t0}, 48000, &ParticipantClock{}, time.Second)
	var u seqUnwrapper
	payload := make([]byte, 120)
	payload[0] = 0xfc
	emit := func(r rawFrame) { _ = clock.pts(r.ts, r.arrival) }
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		now := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		j.push(&rtpPacket{seq: u.unwrap(uint16(i)), ts: uint32(i * 960), payload: payload, arrival: now})
		for {
			q, _, ok := j.pop(now)
			if !ok {
				break
			}
			f.push(q, emit)
		}
	}
}
