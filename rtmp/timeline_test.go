package rtmp

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/media"
)

const ms = time.Millisecond

func vid(dts, pts time.Duration, key bool) media.Packet {
	return media.Packet{Kind: media.KindVideo, DTS: dts, PTS: pts, Key: key}
}

func aud(pts time.Duration) media.Packet {
	return media.Packet{Kind: media.KindAudio, PTS: pts, DTS: pts}
}

func TestInterleaver(t *testing.T) {
	q := interleaver{hasAudio: true, hasVideo: true, window: 500 * ms}
	// Audio runs ahead of video, as with x264's lookahead.
	for _, p := range []media.Packet{aud(0), aud(21 * ms), aud(43 * ms), aud(64 * ms), vid(0, 0, true), vid(33*ms, 33*ms, false)} {
		q.push(p)
	}
	var got []time.Duration
	for {
		p, ok := q.pop(false)
		if !ok {
			break
		}
		got = append(got, decodeTime(&p))
	}
	want := []time.Duration{0, 0, 21 * ms, 33 * ms}
	if len(got) != len(want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("popped %v, want %v", got, want)
		}
	}
	// A stalled video track releases audio after the window.
	for d := 85 * ms; d < 700*ms; d += 21 * ms {
		q.push(aud(d))
	}
	n := 0
	for {
		if _, ok := q.pop(false); !ok {
			break
		}
		n++
	}
	if n == 0 || q.len() == 0 {
		t.Fatalf("stalled track: released %d, kept %d", n, q.len())
	}
	for {
		if _, ok := q.pop(true); !ok {
			break
		}
	}
	if q.len() != 0 {
		t.Fatal("flush left packets")
	}
}

func TestTimelineStartsAtKeyframe(t *testing.T) {
	tl := timeline{hasVideo: true}
	var out []stamped
	// Encoder priming: first AAC frame at -21 ms; then audio before a
	// non-key frame, which must be dropped with it.
	in := []media.Packet{
		aud(-3000 * ms), vid(-100*ms, -100*ms, false), aud(-21 * ms), vid(0, 66*ms, true),
		aud(0), vid(33*ms, 133*ms, false), aud(21 * ms), vid(66*ms, 100*ms, false),
	}
	for _, p := range in {
		out = tl.next(p, out)
	}
	type w struct {
		kind media.Kind
		ts   uint32
		cts  int32
	}
	want := []w{
		{media.KindAudio, 0, 0}, {media.KindVideo, 21, 66}, {media.KindAudio, 21, 0},
		{media.KindVideo, 54, 100}, {media.KindAudio, 42, 0}, {media.KindVideo, 87, 34},
	}
	if len(out) != len(want) {
		t.Fatalf("got %d packets %+v", len(out), out)
	}
	for i, s := range out {
		if s.p.Kind != want[i].kind || s.cts != want[i].cts {
			t.Errorf("packet %d: %v ts=%d cts=%d, want %+v", i, s.p.Kind, s.ts, s.cts, want[i])
		}
	}
	// Timestamps never go back: audio at 42 after video at 54 is clamped.
	last := uint32(0)
	for i, s := range out {
		if s.ts < last {
			t.Errorf("packet %d goes back: %d < %d", i, s.ts, last)
		}
		last = s.ts
	}
	if tl.droppedVideo != 1 || tl.droppedAudio != 1 || tl.clamped == 0 {
		t.Errorf("dropped video %d audio %d clamped %d", tl.droppedVideo, tl.droppedAudio, tl.clamped)
	}
}

func TestTimelineAudioOnly(t *testing.T) {
	tl := timeline{}
	out := tl.next(aud(-21*ms), nil)
	out = tl.next(aud(0), out)
	if len(out) != 2 || out[0].ts != 0 || out[1].ts != 21 {
		t.Fatalf("got %+v", out)
	}
}
