package media

import "time"

// Kind says whether a stream carries pictures or sound.
type Kind int

// Stream kinds.
const (
	KindVideo Kind = iota
	KindAudio
)

// Packet is one encoded access unit, owned by Go. PTS and DTS are measured
// from the start of the output (the first frame has PTS 0).
type Packet struct {
	Kind     Kind
	Data     []byte // H.264: Annex B byte stream; AAC: raw access unit
	PTS, DTS time.Duration
	Duration time.Duration
	Key      bool
}

// StreamInfo describes the encoded output so muxers and publishers can
// write their headers.
type StreamInfo struct {
	Width, Height int
	FPS           int
	VideoBitrate  int // bits/s, 0 when quality-driven
	// VideoConfig is the H.264 decoder configuration: SPS and PPS as an
	// Annex B byte stream.
	VideoConfig []byte
	// H264 profile and level as in the SPS.
	Profile, Level int

	SampleRate, Channels int
	AudioBitrate         int
	// AudioConfig is the AAC AudioSpecificConfig (ISO 14496-3 1.6.2.1).
	AudioConfig []byte
}
