package rtprecv

import (
	"fmt"
	"time"
)

// maxPacketsPerFrame bounds the memory one frame can take (about 1.2 MB of
// payload); a larger frame is dropped as broken.
const maxPacketsPerFrame = 1024

// rawFrame is a depacketised frame before it gets its PTS.
type rawFrame struct {
	ts            uint32
	arrival       time.Time
	data          []byte
	info          frameInfo
	discontinuity bool
}

// framerStats counts what the framer dropped and why.
type framerStats struct {
	frames     uint64 // emitted
	broken     uint64 // incomplete or undecodable frames dropped
	waitingKey uint64 // complete frames dropped while waiting for a keyframe
	blank      uint64 // LiveKit placeholder keyframes dropped
	keyframes  uint64
	lossEvents uint64
	lastInfoW  int
	lastInfoH  int
}

// framer groups in-order RTP packets into frames, depacketises them and,
// for video, holds frames back after a loss until a keyframe arrives (the
// decoder's reference chain is broken; NACK already had its chance in the
// jitter buffer). It is pure: no goroutines, no clock.
type framer struct {
	video bool
	codec string
	d     depacketizer

	have     bool
	curTS    uint32
	arrival  time.Time
	payloads [][]byte
	broken   bool

	// needKey is true from the start and after any loss until a keyframe
	// gets through; the worker requests one (PLI) while it is set.
	needKey       bool
	discontinuity bool

	// dropped, when set, hears why a frame was dropped (for tracing).
	dropped func(reason string, ts uint32, packets int)

	stats framerStats
}

func newFramer(codec string, d depacketizer, video bool) *framer {
	return &framer{video: video, codec: codec, d: d, needKey: video}
}

// loss tells the framer that packets are missing before the next one.
func (f *framer) loss() {
	f.stats.lossEvents++
	f.discontinuity = true
	if f.have {
		f.broken = true
	}
	if f.video {
		f.needKey = true
	}
}

// push adds the next packet in sequence order; completed frames go to out.
func (f *framer) push(p *rtpPacket, out func(rawFrame)) {
	if len(p.payload) == 0 {
		return // padding-only packets (bandwidth probes) carry no media
	}
	if !f.video {
		// Each Opus packet is a frame (RFC 7587); the marker bit only flags
		// the start of a talkspurt.
		f.have, f.curTS, f.arrival = true, p.ts, p.arrival
		f.payloads = append(f.payloads[:0], p.payload)
		f.broken = false
		f.finish(out)
		return
	}
	if f.have && p.ts != f.curTS {
		// The previous frame ended without a marker bit but with no packet
		// missing either (a loss would have marked it broken): the
		// depacketiser judges whether it is whole.
		f.finish(out)
	}
	if !f.have {
		f.have, f.curTS, f.arrival = true, p.ts, p.arrival
		f.payloads = f.payloads[:0]
		f.broken = !f.d.frameStart(p.payload)
	}
	if len(f.payloads) >= maxPacketsPerFrame {
		f.broken = true
	} else {
		f.payloads = append(f.payloads, p.payload)
	}
	if p.marker {
		f.finish(out)
	}
}

func (f *framer) finish(out func(rawFrame)) {
	f.have = false
	payloads := f.payloads
	f.payloads = f.payloads[:0]
	if f.broken {
		f.drop("incomplete", payloads)
		f.stats.broken++
		f.discontinuity = true
		if f.video {
			f.needKey = true
		}
		return
	}
	size := 64
	for _, p := range payloads {
		size += len(p) + len(annexBStart)
	}
	data, info, err := f.d.assemble(make([]byte, 0, size), payloads)
	if err != nil {
		f.drop("depacketise: "+err.Error(), payloads)
		f.stats.broken++
		f.discontinuity = true
		if f.video {
			f.needKey = true
		}
		return
	}
	if f.video && info.keyframe && isBlankKeyframe(f.codec, info) {
		// When a track is muted or closed LiveKit sends tiny black keyframes
		// (VP8 8x8, H.264 2x2) so that receivers' decoders show something;
		// roomcast shows its own placeholder instead. The decoder never sees
		// them, so its state is still the publisher's stream.
		f.stats.blank++
		return
	}
	if f.video && f.needKey && !info.keyframe {
		f.drop("waiting for keyframe", payloads)
		f.stats.waitingKey++
		return
	}
	if info.keyframe {
		f.needKey = false
		f.stats.keyframes++
		if info.width > 0 {
			f.stats.lastInfoW, f.stats.lastInfoH = info.width, info.height
		}
	}
	f.stats.frames++
	out(rawFrame{ts: f.curTS, arrival: f.arrival, data: data, info: info, discontinuity: f.discontinuity})
	f.discontinuity = false
}

func (f *framer) drop(reason string, payloads [][]byte) {
	if f.dropped != nil {
		if len(payloads) > 0 {
			reason += fmt.Sprintf(" first=% x len=%d", payloads[0][:min(8, len(payloads[0]))], len(payloads[0]))
		}
		f.dropped(reason, f.curTS, len(payloads))
	}
}

// isBlankKeyframe recognises LiveKit's placeholder frames by their size:
// no camera or screen sends pictures of 16x16 pixels or less.
func isBlankKeyframe(codec string, info frameInfo) bool {
	switch codec {
	case "vp8", "h264":
		return info.width > 0 && info.width <= 16 && info.height > 0 && info.height <= 16
	}
	return false
}
