package rtmptest

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/roomcast/roomcast/internal/mediatest"
)

// Probe is what ffprobe says about a recorded file (internal/mediatest,
// the one probing helper).
type Probe = mediatest.Probe

// ProbeFile runs ffprobe on path: streams and packets.
func ProbeFile(path string) (*Probe, error) {
	return mediatest.ProbeFile(path, "-show_streams", "-show_packets")
}

// Want is what a received stream must look like.
type Want struct {
	Width, Height int
	FPS           float64
	MaxGOP        time.Duration // longest keyframe interval allowed
	Duration      time.Duration // media duration sent
	Tolerance     time.Duration // on Duration
}

// Summary is the measured side, for messages and reports.
type Summary struct {
	Video, Audio    string
	Width, Height   int
	FPS             float64
	MaxGOP          time.Duration
	Duration        time.Duration
	VideoPackets    int
	AudioPackets    int
	FirstVideoKey   bool
	NonMonotonic    int
	FirstTS, LastTS time.Duration
}

func secs(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

func rate(s string) float64 {
	a, b, ok := strings.Cut(s, "/")
	n, _ := strconv.ParseFloat(a, 64)
	if !ok {
		return n
	}
	d, _ := strconv.ParseFloat(b, 64)
	if d == 0 {
		return 0
	}
	return n / d
}

// Summarize measures a probe.
func Summarize(p *Probe) Summary {
	var s Summary
	vIdx, aIdx := -1, -1
	for _, st := range p.Streams {
		switch st.CodecType {
		case "video":
			vIdx, s.Video, s.Width, s.Height = st.Index, st.CodecName, st.Width, st.Height
			s.FPS = rate(st.AvgFrameRate)
			if s.FPS == 0 {
				s.FPS = rate(st.RFrameRate)
			}
		case "audio":
			aIdx, s.Audio = st.Index, st.CodecName
		}
	}
	last := map[int]time.Duration{}
	var lastKey time.Duration
	haveKey := false
	first, end := time.Duration(math.MaxInt64), time.Duration(0)
	for _, pk := range p.Packets {
		dts, ok := secs(pk.DTSTime)
		if !ok {
			dts, _ = secs(pk.PTSTime)
		}
		pts, ok := secs(pk.PTSTime)
		if !ok {
			pts = dts
		}
		dur, _ := secs(pk.DurationTime)
		if l, seen := last[pk.StreamIndex]; seen && dts < l {
			s.NonMonotonic++
		}
		last[pk.StreamIndex] = dts
		first = min(first, pts)
		end = max(end, pts+dur)
		switch pk.StreamIndex {
		case vIdx:
			if s.VideoPackets == 0 {
				s.FirstVideoKey = strings.Contains(pk.Flags, "K")
			}
			s.VideoPackets++
			if strings.Contains(pk.Flags, "K") {
				if haveKey {
					s.MaxGOP = max(s.MaxGOP, pts-lastKey)
				}
				lastKey, haveKey = pts, true
			}
		case aIdx:
			s.AudioPackets++
		}
	}
	if haveKey {
		s.MaxGOP = max(s.MaxGOP, end-lastKey) // the last GOP counts too
	}
	if first != time.Duration(math.MaxInt64) {
		s.FirstTS, s.LastTS, s.Duration = first, end, end-first
	}
	return s
}

// Check compares a summary with what was sent and returns the problems.
func (s Summary) Check(w Want) []string {
	var bad []string
	if s.Video != "h264" {
		bad = append(bad, fmt.Sprintf("video codec %q, want h264", s.Video))
	}
	if s.Audio != "aac" {
		bad = append(bad, fmt.Sprintf("audio codec %q, want aac", s.Audio))
	}
	if w.Width != 0 && (s.Width != w.Width || s.Height != w.Height) {
		bad = append(bad, fmt.Sprintf("resolution %dx%d, want %dx%d", s.Width, s.Height, w.Width, w.Height))
	}
	if w.FPS != 0 && math.Abs(s.FPS-w.FPS) > 0.5 {
		bad = append(bad, fmt.Sprintf("frame rate %.2f, want %.2f", s.FPS, w.FPS))
	}
	// A GOP is measured from one keyframe to the next, plus one frame's
	// rounding in FLV's millisecond timestamps.
	if w.MaxGOP != 0 && s.MaxGOP > w.MaxGOP+50*time.Millisecond {
		bad = append(bad, fmt.Sprintf("keyframe interval %v, want at most %v", s.MaxGOP, w.MaxGOP))
	}
	if w.Duration != 0 {
		tol := w.Tolerance
		if tol == 0 {
			tol = 500 * time.Millisecond
		}
		if d := s.Duration - w.Duration; d > tol || d < -tol {
			bad = append(bad, fmt.Sprintf("duration %v, want %v ± %v", s.Duration, w.Duration, tol))
		}
	}
	if !s.FirstVideoKey {
		bad = append(bad, "first video packet is not a keyframe")
	}
	if s.NonMonotonic > 0 {
		bad = append(bad, fmt.Sprintf("%d timestamps go back", s.NonMonotonic))
	}
	return bad
}

// DecodeErrors decodes the whole file with ffmpeg and returns what it
// complained about (empty when every frame decodes).
func DecodeErrors(path string) string { return mediatest.DecodeErrors(path) }
