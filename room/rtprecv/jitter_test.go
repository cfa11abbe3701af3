package rtprecv

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func pk(seq int64, at time.Duration) *rtpPacket {
	return &rtpPacket{seq: seq, ts: uint32(seq), payload: []byte{byte(seq)}, arrival: t0.Add(at)}
}

// popAll drains what the buffer releases at now, as "seq" or "seq+gap".
func popAll(j *jitterBuffer, now time.Duration) []int64 {
	var out []int64
	for {
		p, skipped, ok := j.pop(t0.Add(now))
		if !ok {
			return out
		}
		if skipped > 0 {
			out = append(out, -int64(skipped))
		}
		out = append(out, p.seq)
	}
}

func TestJitterBuffer(t *testing.T) {
	const lat = 100 * time.Millisecond
	t.Run("in order passes straight through", func(t *testing.T) {
		j := newJitterBuffer(64, lat)
		var got []int64
		for i := int64(10); i < 15; i++ {
			j.push(pk(i, 0))
			got = append(got, popAll(j, 0)...)
		}
		if want := []int64{10, 11, 12, 13, 14}; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
	})
	t.Run("reordered packets come out in order", func(t *testing.T) {
		j := newJitterBuffer(64, lat)
		j.push(pk(1, 0))
		j.push(pk(3, time.Millisecond))
		got := popAll(j, time.Millisecond)
		j.push(pk(2, 2*time.Millisecond))
		got = append(got, popAll(j, 2*time.Millisecond)...)
		if want := []int64{1, 2, 3}; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
		if j.stats.lost != 0 {
			t.Fatalf("lost %d", j.stats.lost)
		}
	})
	t.Run("a hole is given up after the latency", func(t *testing.T) {
		j := newJitterBuffer(64, lat)
		j.push(pk(1, 0))
		j.push(pk(4, 10*time.Millisecond))
		j.push(pk(5, 20*time.Millisecond))
		got := popAll(j, 50*time.Millisecond)
		if dl, ok := j.deadline(); !ok || dl != t0.Add(110*time.Millisecond) {
			t.Fatalf("deadline %v %v", dl, ok)
		}
		got = append(got, popAll(j, 110*time.Millisecond)...)
		if want := []int64{1, -2, 4, 5}; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
		if j.stats.lost != 2 {
			t.Fatalf("lost %d", j.stats.lost)
		}
		// The lost packets turning up later are late, not delivered.
		j.push(pk(2, 120*time.Millisecond))
		if got := popAll(j, 120*time.Millisecond); len(got) != 0 || j.stats.late != 1 {
			t.Fatalf("late packet delivered: %v late=%d", got, j.stats.late)
		}
	})
	t.Run("duplicates are dropped", func(t *testing.T) {
		j := newJitterBuffer(64, lat)
		j.push(pk(1, 0))
		j.push(pk(3, 0))
		j.push(pk(3, 0))
		if j.stats.duplicate != 1 {
			t.Fatalf("duplicate %d", j.stats.duplicate)
		}
	})
	t.Run("a jump beyond the buffer flushes it", func(t *testing.T) {
		j := newJitterBuffer(64, lat)
		j.push(pk(1, 0))
		popAll(j, 0)
		j.push(pk(5, 0))
		if !j.push(pk(1000, 0)) {
			t.Fatal("jump not reported as flushed")
		}
		if got := popAll(j, 0); !slices.Equal(got, []int64{1000}) {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("sequence numbers wrap", func(t *testing.T) {
		var u seqUnwrapper
		var got []int64
		for _, s := range []uint16{65534, 65535, 1, 0, 2} {
			got = append(got, u.unwrap(s))
		}
		if want := []int64{65534, 65535, 65537, 65536, 65538}; !slices.Equal(got, want) {
			t.Fatalf("got %v want %v", got, want)
		}
	})
}

// collect runs packets through a framer and returns the frames.
func collect(f *framer, pkts ...*rtpPacket) []rawFrame {
	var out []rawFrame
	for _, p := range pkts {
		if p == nil {
			f.loss()
			continue
		}
		f.push(p, func(r rawFrame) { out = append(out, r) })
	}
	return out
}

func vp8Pkt(seq int64, ts uint32, marker bool, payload []byte) *rtpPacket {
	return &rtpPacket{seq: seq, ts: ts, marker: marker, payload: payload, arrival: t0}
}

func TestFramerVideo(t *testing.T) {
	key := cat(vp8Desc(true, 0, 1), vp8Key320)
	inter := cat(vp8Desc(true, 0, 2), vp8Inter)
	newF := func() *framer { return newFramer("vp8", vp8Depacketizer{}, true) }

	t.Run("waits for a keyframe, then passes frames", func(t *testing.T) {
		f := newF()
		got := collect(f, vp8Pkt(1, 100, true, inter), vp8Pkt(2, 200, true, key), vp8Pkt(3, 300, true, inter))
		if len(got) != 2 || !got[0].info.keyframe || got[1].ts != 300 {
			t.Fatalf("frames %+v", got)
		}
		if f.stats.waitingKey != 1 {
			t.Fatalf("waitingKey %d", f.stats.waitingKey)
		}
	})
	t.Run("loss inside a frame drops it and waits for the next keyframe", func(t *testing.T) {
		f := newF()
		first := cat(vp8Desc(true, 0, 3), vp8Inter[:3])
		rest := cat(vp8Desc(false, 0, 3), vp8Inter[3:])
		got := collect(f,
			vp8Pkt(1, 100, true, key),
			vp8Pkt(2, 200, false, first), nil, vp8Pkt(4, 200, true, rest), // broken
			vp8Pkt(5, 300, true, inter), // whole, but its reference is gone
			vp8Pkt(6, 400, true, key),
			vp8Pkt(7, 500, true, inter),
		)
		var ts []uint32
		for _, r := range got {
			ts = append(ts, r.ts)
		}
		if !slices.Equal(ts, []uint32{100, 400, 500}) {
			t.Fatalf("frames at %v", ts)
		}
		if !got[1].discontinuity || got[2].discontinuity {
			t.Fatalf("discontinuity flags %v %v", got[1].discontinuity, got[2].discontinuity)
		}
		if f.stats.broken != 1 || f.stats.waitingKey != 1 {
			t.Fatalf("stats %+v", f.stats)
		}
	})
	t.Run("missing marker: the next timestamp ends the frame", func(t *testing.T) {
		f := newF()
		got := collect(f, vp8Pkt(1, 100, false, key), vp8Pkt(2, 200, true, inter))
		if len(got) != 2 {
			t.Fatalf("%d frames", len(got))
		}
	})
	t.Run("LiveKit's blank keyframes never come out", func(t *testing.T) {
		f := newF()
		blank := cat([]byte{0x10}, lkBlankVP8)
		got := collect(f, vp8Pkt(1, 100, true, key), vp8Pkt(2, 200, true, blank), vp8Pkt(3, 300, true, blank))
		if len(got) != 1 || f.stats.blank != 2 {
			t.Fatalf("%d frames, blank %d", len(got), f.stats.blank)
		}
	})
	t.Run("padding is ignored", func(t *testing.T) {
		f := newF()
		got := collect(f, vp8Pkt(1, 100, true, key), vp8Pkt(2, 100, false, nil), vp8Pkt(3, 200, true, inter))
		if len(got) != 2 || f.stats.broken != 0 {
			t.Fatalf("%d frames, %+v", len(got), f.stats)
		}
	})
	t.Run("h264 blank keyframe", func(t *testing.T) {
		f := newFramer("h264", &h264Depacketizer{}, true)
		got := collect(f, &rtpPacket{seq: 1, ts: 1, marker: true, payload: stapA(lkBlankSPS, lkBlankPPS, lkBlankIDR)})
		if len(got) != 0 || f.stats.blank != 1 {
			t.Fatalf("%d frames, %+v", len(got), f.stats)
		}
	})
}

func TestFramerAudio(t *testing.T) {
	f := newFramer("opus", opusDepacketizer{}, false)
	got := collect(f,
		&rtpPacket{seq: 1, ts: 0, payload: []byte{0xf8, 1}},
		&rtpPacket{seq: 2, ts: 960, payload: []byte{0xf8, 2}},
		nil,
		&rtpPacket{seq: 4, ts: 2880, payload: []byte{0xf8, 4}},
	)
	if len(got) != 3 || !got[2].discontinuity || got[1].discontinuity || f.needKey {
		t.Fatalf("frames %+v", got)
	}
}

func TestTrackClock(t *testing.T) {
	room := Clock{epoch: t0}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ntp := func(d time.Duration) uint64 { return toNTPForTest(t0.Add(d)) }

	t.Run("before a sender report: arrival of the first frame plus RTP time", func(t *testing.T) {
		c := newTrackClock(room, 90000, &ParticipantClock{}, time.Second)
		if p := c.pts(1000, at(500*time.Millisecond)); p != 500*time.Millisecond {
			t.Fatalf("pts %v", p)
		}
		// 3000 ticks later = 33.3 ms, whatever the arrival jitter.
		if p := c.pts(4000, at(540*time.Millisecond)); p != 500*time.Millisecond+33333333 {
			t.Fatalf("pts %v", p)
		}
	})
	t.Run("sender reports put two participants on one clock", func(t *testing.T) {
		// Two tracks with unrelated RTP bases; both capture something at
		// wall time 2 s; the second is sent 300 ms later.
		a := newTrackClock(room, 48000, &ParticipantClock{}, time.Second)
		b := newTrackClock(room, 90000, &ParticipantClock{}, time.Second)
		a.onSR(ntp(time.Second), 1_000_000)
		b.onSR(ntp(time.Second), 4_294_000_000) // wraps before the event
		pa := a.pts(1_000_000+48000, at(2*time.Second+5*time.Millisecond))
		pb := b.pts(4_294_000_000+90000, at(2*time.Second+305*time.Millisecond))
		if pa != 2*time.Second || pb != 2*time.Second {
			t.Fatalf("pts %v and %v, want 2s", pa, pb)
		}
	})
	t.Run("a sender clock far off is aligned to arrival", func(t *testing.T) {
		pc := &ParticipantClock{}
		c := newTrackClock(room, 90000, pc, time.Second)
		c.onSR(ntp(-time.Hour), 0) // sender's clock is an hour behind
		p := c.pts(90000, at(10*time.Second))
		// capture (1 s after its SR, i.e. -59 min) shifted by (arrival - capture)
		if p != 10*time.Second {
			t.Fatalf("pts %v", p)
		}
		// The other track of the participant gets the same shift.
		v := newTrackClock(room, 48000, pc, time.Second)
		v.onSR(ntp(-time.Hour), 5000)
		if p := v.pts(5000+48000, at(10*time.Second+40*time.Millisecond)); p != 10*time.Second {
			t.Fatalf("second track pts %v", p)
		}
	})
	t.Run("a backward step is slewed away, not stalled", func(t *testing.T) {
		c := newTrackClock(room, 90000, &ParticipantClock{}, time.Second)
		c.pts(0, at(time.Second))
		// The first report says frames are captured 100 ms before they
		// arrive.
		c.onSR(ntp(900*time.Millisecond), 0)
		last := time.Second
		var steps []time.Duration
		for i := 1; i <= 90; i++ {
			p := c.pts(uint32(i*3000), at(time.Second+time.Duration(i)*33333333))
			steps = append(steps, p-last)
			last = p
		}
		for i, d := range steps {
			if d < 29*time.Millisecond || d > 34*time.Millisecond {
				t.Fatalf("step %d is %v: PTS must keep moving at about the frame rate", i, d)
			}
		}
		// After 1 s of media the 100 ms are absorbed: PTS is the capture time.
		want := 900*time.Millisecond + 90*33333333
		if (last - want).Abs() > time.Millisecond {
			t.Fatalf("after 3 s PTS %v, want %v", last, want)
		}
	})
	t.Run("NTP conversion", func(t *testing.T) {
		want := time.Date(2026, 11, 21, 7, 0, 0, 250_000_000, time.UTC)
		if got := ntpTime(toNTPForTest(want)); got.Sub(want).Abs() > time.Microsecond {
			t.Fatalf("got %v", got)
		}
	})
}

func toNTPForTest(t time.Time) uint64 {
	secs := uint64(t.Unix() + 2208988800)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}
