package rtmp

import (
	"slices"
	"strings"
	"time"
)

// Preset is what an ingest expects from the encoder. The lead maps it onto
// the encoder configuration; this package only publishes.
type Preset struct {
	Name        string
	Description string
	// URLFormat shows the destination URL the service gives out.
	URLFormat string
	// Profile is the H.264 profile to encode ("baseline", "main", "high").
	Profile string
	// KeyframeInterval is the maximum GOP duration.
	KeyframeInterval time.Duration
	// Bitrates gives the video bitrate by output height: the first step
	// whose MaxHeight is at least the output height applies.
	Bitrates []BitrateStep
	// AudioBitrate and AudioSampleRate configure the AAC encoder.
	AudioBitrate    int
	AudioSampleRate int
	AudioChannels   int
}

// BitrateStep is one row of a bitrate ladder.
type BitrateStep struct {
	MaxHeight int
	Bitrate   int // bits/s at 30 fps; VideoBitrate scales it for 60 fps
}

// VideoBitrate is the preset's video bitrate for an output of the given
// height and frame rate (60 fps streams get 1.5 times the 30 fps rate).
func (p Preset) VideoBitrate(height, fps int) int {
	if len(p.Bitrates) == 0 {
		return 0
	}
	step := p.Bitrates[len(p.Bitrates)-1]
	for _, s := range p.Bitrates {
		if height <= s.MaxHeight {
			step = s
			break
		}
	}
	if fps > 30 {
		return step.Bitrate * 3 / 2
	}
	return step.Bitrate
}

// Common ladder: conservative CBR rates that every ingest below accepts.
var commonLadder = []BitrateStep{
	{MaxHeight: 360, Bitrate: 1_000_000},
	{MaxHeight: 480, Bitrate: 1_500_000},
	{MaxHeight: 720, Bitrate: 2_500_000},
	{MaxHeight: 1080, Bitrate: 4_500_000},
}

// Presets lists the known destinations. Facts behind the values: YouTube
// asks for H.264 with keyframes every 2 s (at most 4 s), CBR and AAC at
// 128 kb/s, and gives 3-8 Mb/s for 720p and 1080p at 30 fps; PeerTube
// and Owncast transcode or remux into HLS whose segments start at
// keyframes, so a 2 s GOP keeps their latency and segment length in check;
// 48 kHz is the rate roomcast mixes at and all of them accept it.
var Presets = []Preset{
	{
		Name:             "generic",
		Description:      "any RTMP ingest (nginx-rtmp, SRS, mediamtx...)",
		URLFormat:        "rtmp://HOST[:PORT]/APP/KEY",
		Profile:          "main",
		KeyframeInterval: 2 * time.Second,
		Bitrates:         commonLadder,
		AudioBitrate:     128_000,
		AudioSampleRate:  48_000,
		AudioChannels:    2,
	},
	{
		Name:             "peertube",
		Description:      "PeerTube live (RTMP on port 1935, RTMPS on 1936 when enabled)",
		URLFormat:        "rtmp://HOST:1935/live/KEY or rtmps://HOST:1936/live/KEY",
		Profile:          "high",
		KeyframeInterval: 2 * time.Second,
		Bitrates:         commonLadder,
		AudioBitrate:     128_000,
		AudioSampleRate:  48_000,
		AudioChannels:    2,
	},
	{
		Name:             "owncast",
		Description:      "Owncast (RTMP on port 1935, app live, key = the stream key)",
		URLFormat:        "rtmp://HOST:1935/live/KEY",
		Profile:          "high",
		KeyframeInterval: 2 * time.Second,
		Bitrates:         commonLadder,
		AudioBitrate:     128_000,
		AudioSampleRate:  48_000,
		AudioChannels:    2,
	},
	{
		Name:             "youtube",
		Description:      "YouTube Live and ingests that follow its recommendations",
		URLFormat:        "rtmps://a.rtmps.youtube.com/live2/KEY",
		Profile:          "high",
		KeyframeInterval: 2 * time.Second,
		Bitrates: []BitrateStep{
			{MaxHeight: 720, Bitrate: 4_000_000},
			{MaxHeight: 1080, Bitrate: 6_000_000},
		},
		AudioBitrate:    128_000,
		AudioSampleRate: 48_000,
		AudioChannels:   2,
	},
}

// PresetByName finds a preset, case-insensitively.
func PresetByName(name string) (Preset, bool) {
	i := slices.IndexFunc(Presets, func(p Preset) bool { return strings.EqualFold(p.Name, name) })
	if i < 0 {
		return Preset{}, false
	}
	return Presets[i], true
}
