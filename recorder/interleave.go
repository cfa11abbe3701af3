package recorder

import "github.com/roomcast/roomcast/media"

// interleaver orders the two encoders' packets by decode time. The video
// encoder's lookahead returns packets later than the audio encoder, so audio
// waits here until video has caught up; every output then sees one
// time-ordered stream (FLV needs it; it spares the muxer's buffering).
type interleaver struct {
	video, audio []media.Packet
	// single: only one encoder runs (audio-only or video-only output);
	// packets pass straight through.
	single bool
}

// push adds packets and returns those now safe to emit.
func (q *interleaver) push(pkts ...media.Packet) []media.Packet {
	if q.single {
		return pkts
	}
	for _, p := range pkts {
		if p.Kind == media.KindVideo {
			q.video = append(q.video, p)
		} else {
			q.audio = append(q.audio, p)
		}
	}
	var out []media.Packet
	for len(q.video) > 0 && len(q.audio) > 0 {
		if q.audio[0].DTS <= q.video[0].DTS {
			out = append(out, q.audio[0])
			q.audio = q.audio[1:]
		} else {
			out = append(out, q.video[0])
			q.video = q.video[1:]
		}
	}
	return out
}

// drain returns everything left, in order.
func (q *interleaver) drain() []media.Packet {
	out := q.push()
	out = append(out, q.video...)
	out = append(out, q.audio...)
	q.video, q.audio = nil, nil
	return out
}
