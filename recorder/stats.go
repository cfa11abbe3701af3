package recorder

import (
	"sync/atomic"
	"time"

	"github.com/roomcast/roomcast/media"
)

// Stats count what the encoders produced.
type Stats struct {
	VideoFrames  int64 // encoded pictures
	VideoBytes   int64
	AudioPackets int64
	AudioBytes   int64
	// LastPTS is the presentation time of the newest packet.
	LastPTS time.Duration
	// X264Preset is the x264 preset encoding now; PresetStepDowns counts
	// the steps down asked for because live encoding stayed slower than
	// real time (overload stage 2, stepdown.go).
	X264Preset      string
	PresetStepDowns int64
	// SwitchDropped are pictures the compositor produced that were left
	// out at preset switches (the stream preset: the old encoder's
	// lookahead, see av.VideoEncoder.SwitchX264Preset); VideoFrames does
	// not count them.
	SwitchDropped int64
}

type encStats struct {
	videoFrames, videoBytes, audioPackets, audioBytes, lastPTS atomic.Int64
}

func (s *encStats) add(pkts []media.Packet) {
	for _, p := range pkts {
		if p.Kind == media.KindVideo {
			s.videoFrames.Add(1)
			s.videoBytes.Add(int64(len(p.Data)))
		} else {
			s.audioPackets.Add(1)
			s.audioBytes.Add(int64(len(p.Data)))
		}
		if int64(p.PTS) > s.lastPTS.Load() {
			s.lastPTS.Store(int64(p.PTS))
		}
	}
}

// Stats returns the encoders' counters. Safe from any goroutine.
func (r *Recorder) Stats() Stats {
	st := Stats{
		VideoFrames: r.stats.videoFrames.Load(), VideoBytes: r.stats.videoBytes.Load(),
		AudioPackets: r.stats.audioPackets.Load(), AudioBytes: r.stats.audioBytes.Load(),
		LastPTS:         time.Duration(r.stats.lastPTS.Load()),
		PresetStepDowns: r.stepDowns.Load(),
	}
	if r.venc != nil { // nil for an audio-only output
		st.X264Preset, st.SwitchDropped = r.venc.X264Preset(), r.venc.Dropped()
	}
	return st
}
