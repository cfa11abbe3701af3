package rtmp

import (
	"time"

	"github.com/roomcast/roomcast/media"
)

// decodeTime is the time a packet must be sent at: DTS for video, PTS for
// AAC (which has no reordering; encoders do not always fill its DTS).
func decodeTime(p *media.Packet) time.Duration {
	if p.Kind == media.KindAudio {
		return p.PTS
	}
	return p.DTS
}

// interleaver merges the audio and video packet streams into one stream in
// decode-time order. Encoders emit video late (x264's lookahead) and audio
// early, but RTMP servers want timestamps that never go back, across tracks.
// A packet waits until the other track has caught up to it, or until its
// own track has buffered more than window of media (a stalled track must
// not stop the other).
type interleaver struct {
	hasAudio, hasVideo bool
	window             time.Duration
	a, v               []media.Packet
}

func (q *interleaver) push(p media.Packet) {
	if p.Kind == media.KindAudio {
		q.a = append(q.a, p)
	} else {
		q.v = append(q.v, p)
	}
}

func (q *interleaver) len() int { return len(q.a) + len(q.v) }

func (q *interleaver) reset() {
	clear(q.a)
	clear(q.v)
	q.a, q.v = q.a[:0], q.v[:0]
}

// pop returns the next packet ready to go; flush releases everything.
func (q *interleaver) pop(flush bool) (media.Packet, bool) {
	switch {
	case len(q.a) > 0 && len(q.v) > 0:
		if decodeTime(&q.a[0]) < decodeTime(&q.v[0]) {
			return shift(&q.a), true
		}
		return shift(&q.v), true
	case len(q.v) > 0:
		if flush || !q.hasAudio || span(q.v) > q.window {
			return shift(&q.v), true
		}
	case len(q.a) > 0:
		if flush || !q.hasVideo || span(q.a) > q.window {
			return shift(&q.a), true
		}
	}
	return media.Packet{}, false
}

func span(s []media.Packet) time.Duration {
	return decodeTime(&s[len(s)-1]) - decodeTime(&s[0])
}

// shift pops the head without letting the backing array grow forever.
func shift(s *[]media.Packet) media.Packet {
	p := (*s)[0]
	(*s)[0] = media.Packet{}
	*s = (*s)[1:]
	if len(*s) == 0 {
		*s = (*s)[:0:0]
	}
	return p
}

// stamped is a packet with its RTMP timestamp (ms from the connection's
// start) and, for video, the composition time offset.
type stamped struct {
	p   media.Packet
	ts  uint32
	cts int32
}

// audioPreroll is how far before the first keyframe audio is still sent on
// a new connection: enough for the AAC encoder's priming frame (1024
// samples, 21 ms at 48 kHz) that comes out with a negative PTS.
const audioPreroll = 50 * time.Millisecond

// timeline turns one connection's packets into RTMP timestamps. A
// connection starts at a video keyframe (players and servers cannot decode
// anything before it), with timestamps from 0, and timestamps never go back
// within the connection (RTMP 1.0 spec 5.3.1.2.1 treats them as
// monotonic; nginx-rtmp and node-media-server compute deltas from them).
type timeline struct {
	hasVideo bool
	started  bool
	base     time.Duration
	last     uint32
	pending  []media.Packet // audio waiting for the first keyframe

	droppedVideo, droppedAudio, clamped uint64
}

// next returns what to send for p, possibly nothing (waiting for a
// keyframe) or several packets (held audio released by the keyframe).
func (t *timeline) next(p media.Packet, out []stamped) []stamped {
	if !t.started {
		if p.Kind == media.KindAudio && t.hasVideo {
			t.pending = append(t.pending, p)
			// Only the last moments before the keyframe can be kept.
			for len(t.pending) > 0 && decodeTime(&t.pending[0]) < p.PTS-time.Second {
				t.pending = t.pending[1:]
				t.droppedAudio++
			}
			return out
		}
		if p.Kind == media.KindVideo && !p.Key {
			t.droppedVideo++
			return out
		}
		t.started = true
		t.base = decodeTime(&p)
		from := decodeTime(&p) - audioPreroll
		var keep []media.Packet
		for _, a := range t.pending {
			if a.PTS >= from {
				keep = append(keep, a)
				t.base = min(t.base, a.PTS)
			} else {
				t.droppedAudio++
			}
		}
		t.pending = nil
		for _, a := range keep {
			out = append(out, t.stamp(a))
		}
	}
	return append(out, t.stamp(p))
}

func (t *timeline) ms(d time.Duration) int64 {
	d -= t.base
	if d < 0 {
		return -int64((-d + time.Millisecond/2) / time.Millisecond)
	}
	return int64((d + time.Millisecond/2) / time.Millisecond)
}

func (t *timeline) stamp(p media.Packet) stamped {
	ts := t.ms(decodeTime(&p))
	if ts < int64(t.last) {
		ts = int64(t.last)
		t.clamped++
	}
	s := stamped{p: p, ts: uint32(ts)}
	if p.Kind == media.KindVideo {
		s.cts = int32(max(t.ms(p.PTS)-ts, 0))
	}
	t.last = s.ts
	return s
}
