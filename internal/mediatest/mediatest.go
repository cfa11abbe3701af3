// Package mediatest is the one place tests run the ffmpeg and ffprobe
// command-line tools: they generate inputs and judge outputs the way a
// person's player would. Tests of every package (av, mp4, rtmp, recorder,
// cmd/roomcast) use it instead of wrappers of their own.
//
// ffprobe's JSON is decoded into one Probe type holding what the tests
// read; times stay strings as ffprobe prints them ("N/A" included) and
// Secs converts them.
//
// Shared media fixtures live in the repository's top-level testdata/
// folder (Go ignores it as a package); Fixture finds them from any
// package's test.
package mediatest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Probe is the part of ffprobe's JSON output the tests read.
type Probe struct {
	Streams []Stream `json:"streams"`
	Format  Format   `json:"format"`
	Packets []Packet `json:"packets"`
	Frames  []Frame  `json:"frames"`
}

// Stream is one stream (-show_streams).
type Stream struct {
	Index        int    `json:"index"`
	CodecType    string `json:"codec_type"` // "video", "audio"
	CodecName    string `json:"codec_name"`
	Profile      string `json:"profile"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	RFrameRate   string `json:"r_frame_rate"`
	AvgFrameRate string `json:"avg_frame_rate"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	StartTime    string `json:"start_time"`
	Duration     string `json:"duration"`
	// NbReadFrames and NbReadPackets need -count_frames / -count_packets.
	NbReadFrames  string `json:"nb_read_frames"`
	NbReadPackets string `json:"nb_read_packets"`
}

// Format is the container (-show_format).
type Format struct {
	FormatName string `json:"format_name"`
	Duration   string `json:"duration"`
	StartTime  string `json:"start_time"`
}

// Packet is one demuxed packet (-show_packets, or -show_entries packet=…).
type Packet struct {
	StreamIndex  int    `json:"stream_index"`
	PTSTime      string `json:"pts_time"`
	DTSTime      string `json:"dts_time"`
	DurationTime string `json:"duration_time"`
	Flags        string `json:"flags"` // "K__" for a keyframe
	Pos          string `json:"pos"`
}

// Frame is one decoded frame (-show_entries frame=…).
type Frame struct {
	PTSTime   string `json:"pts_time"`
	NbSamples int    `json:"nb_samples"`
	KeyFrame  int    `json:"key_frame"`
}

// ProbeFile runs ffprobe -v error args… -of json path. args choose what to
// show (-show_streams, -show_format, -show_packets, -count_frames, …).
func ProbeFile(path string, args ...string) (*Probe, error) {
	full := append(append([]string{"-v", "error"}, args...), "-of", "json", path)
	out, err := exec.Command("ffprobe", full...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("ffprobe %s: %v: %s", path, err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("ffprobe %s: %v", path, err)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("ffprobe %s: %v", path, err)
	}
	return &p, nil
}

// MustProbe is ProbeFile failing the test on error.
func MustProbe(t testing.TB, path string, args ...string) *Probe {
	t.Helper()
	p, err := ProbeFile(path, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Stream returns the first stream of a kind ("video", "audio"), or nil.
func (p *Probe) Stream(kind string) *Stream {
	for i := range p.Streams {
		if p.Streams[i].CodecType == kind {
			return &p.Streams[i]
		}
	}
	return nil
}

// Secs parses a time in seconds as ffprobe prints it; NaN when it is not a
// number ("N/A", "").
func Secs(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return v
}

// FrameInfo is one decoded frame, times in seconds.
type FrameInfo struct {
	PTS     float64
	Samples int
	Key     bool
}

// Frames lists the decoded frames of the first video ("v") or audio ("a")
// stream in presentation order; limit > 0 reads only that many packets.
func Frames(t testing.TB, path, sel string, limit int) []FrameInfo {
	t.Helper()
	args := []string{"-select_streams", sel + ":0", "-show_entries", "frame=pts_time,nb_samples,key_frame"}
	if limit > 0 {
		args = append(args, "-read_intervals", fmt.Sprintf("%%+#%d", limit))
	}
	p := MustProbe(t, path, args...)
	fs := make([]FrameInfo, len(p.Frames))
	for i, f := range p.Frames {
		fs[i] = FrameInfo{PTS: Secs(f.PTSTime), Samples: f.NbSamples, Key: f.KeyFrame == 1}
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].PTS < fs[j].PTS })
	return fs
}

// PacketInfo is one demuxed packet, times in seconds.
type PacketInfo struct {
	PTS, DTS float64
	Key      bool
}

// Packets lists the packets of the first stream of kind sel ("v", "a") in
// file order.
func Packets(t testing.TB, path, sel string) []PacketInfo {
	t.Helper()
	p := MustProbe(t, path, "-select_streams", sel+":0", "-show_entries", "packet=pts_time,dts_time,flags")
	ps := make([]PacketInfo, len(p.Packets))
	for i, k := range p.Packets {
		ps[i] = PacketInfo{PTS: Secs(k.PTSTime), DTS: Secs(k.DTSTime), Key: strings.Contains(k.Flags, "K")}
	}
	return ps
}

// FFmpeg runs ffmpeg -nostdin -hide_banner -v error args… and returns its
// standard output; an error fails the test with the tail of its messages.
func FFmpeg(t testing.TB, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-nostdin", "-hide_banner", "-v", "error"}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, Tail(se.String(), 10))
	}
	return so.Bytes()
}

// DecodeErrors decodes the whole file with ffmpeg and returns what it
// complained about: "" when every frame decodes without a message.
func DecodeErrors(path string) string {
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
	var se bytes.Buffer
	cmd.Stderr = &se
	err := cmd.Run()
	msg := strings.TrimSpace(se.String())
	if err != nil {
		return fmt.Sprintf("%v: %s", err, msg)
	}
	return msg
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Fixture is the path of a shared media fixture in the repository's
// top-level testdata/ folder.
func Fixture(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", name)
}
