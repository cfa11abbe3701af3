// Package rtmptest holds what the rtmp package's integration tests and its
// benchmark tool share: test media made with the ffmpeg CLI and parsed in
// pure Go, real RTMP servers (nginx-rtmp, node-media-server) run as child
// processes on 127.0.0.1, a TCP proxy that can freeze, and ffprobe checks.
package rtmptest

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/roomcast/roomcast/media"
)

// MediaSpec describes a test clip: testsrc2 and a sine tone, H.264 with a
// fixed GOP and AAC.
type MediaSpec struct {
	Width, Height, FPS int
	Duration           time.Duration
	GOP                int // frames between keyframes
	BFrames            int
	VideoBitrate       int // bits/s
}

// Media is a parsed clip: the packets an encoder would have produced, in
// decode order, and the stream description.
type Media struct {
	Info    media.StreamInfo
	Packets []media.Packet
	MP4     string // the clip as MP4 (for ffmpeg comparisons)
}

// Duration is the media time the packets cover.
func (m *Media) Duration() time.Duration {
	var first, last time.Duration
	for i, p := range m.Packets {
		t := p.PTS + p.Duration
		if i == 0 || p.PTS < first {
			first = p.PTS
		}
		last = max(last, t)
	}
	return last - first
}

// Generate encodes the clip into dir with the ffmpeg CLI, then splits the
// Annex B and ADTS elementary streams into packets using the per-packet
// sizes and timestamps that ffmpeg's framemd5 muxer prints.
func Generate(dir string, s MediaSpec) (*Media, error) {
	mp4 := filepath.Join(dir, "clip.mp4")
	args := []string{"-v", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", s.Width, s.Height, s.FPS),
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprintf("%.3f", s.Duration.Seconds()),
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(s.GOP), "-keyint_min", strconv.Itoa(s.GOP), "-sc_threshold", "0",
		"-bf", strconv.Itoa(s.BFrames),
		"-b:v", strconv.Itoa(s.VideoBitrate), "-maxrate", strconv.Itoa(s.VideoBitrate), "-bufsize", strconv.Itoa(s.VideoBitrate),
		"-c:a", "aac", "-b:a", "128k", "-ac", "2", mp4}
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg encode: %v: %s", err, out)
	}
	return Load(dir, mp4, s)
}

// Load splits an MP4 (H.264 + AAC) into packets.
func Load(dir, mp4 string, s MediaSpec) (*Media, error) {
	h264, adts := filepath.Join(dir, "video.h264"), filepath.Join(dir, "audio.aac")
	for _, a := range [][]string{
		{"-v", "error", "-y", "-i", mp4, "-map", "0:v", "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", h264},
		{"-v", "error", "-y", "-i", mp4, "-map", "0:a", "-c", "copy", "-f", "adts", adts},
	} {
		if out, err := exec.Command("ffmpeg", a...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ffmpeg %v: %v: %s", a, err, out)
		}
	}
	md5, err := exec.Command("ffmpeg", "-v", "error", "-i", mp4, "-map", "0:v", "-map", "0:a", "-c", "copy",
		"-bsf:v", "h264_mp4toannexb", "-f", "framemd5", "-").Output()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg framemd5: %v", err)
	}
	entries, err := parseFrameMD5(md5)
	if err != nil {
		return nil, err
	}
	vdata, err := os.ReadFile(h264)
	if err != nil {
		return nil, err
	}
	adata, err := os.ReadFile(adts)
	if err != nil {
		return nil, err
	}
	aus, asc, err := SplitADTS(adata)
	if err != nil {
		return nil, err
	}
	m := &Media{MP4: mp4, Info: media.StreamInfo{
		Width: s.Width, Height: s.Height, FPS: s.FPS, VideoBitrate: s.VideoBitrate,
		SampleRate: 48000, Channels: 2, AudioBitrate: 128000, AudioConfig: asc,
	}}
	ai := 0
	for _, e := range entries {
		p := media.Packet{PTS: e.pts, DTS: e.dts, Duration: e.dur}
		if e.stream == 0 {
			if e.size > len(vdata) {
				return nil, errors.New("video elementary stream shorter than framemd5 says")
			}
			p.Kind, p.Data, vdata = media.KindVideo, vdata[:e.size:e.size], vdata[e.size:]
			p.Key = hasNAL(p.Data, 5)
			if p.Key && m.Info.VideoConfig == nil {
				m.Info.VideoConfig = paramSets(p.Data)
			}
		} else {
			if ai >= len(aus) {
				return nil, errors.New("fewer ADTS frames than framemd5 lines")
			}
			p.Kind, p.Data = media.KindAudio, aus[ai]
			ai++
		}
		m.Packets = append(m.Packets, p)
	}
	if len(vdata) != 0 || ai != len(aus) {
		return nil, fmt.Errorf("leftover data: %d video bytes, %d audio frames", len(vdata), len(aus)-ai)
	}
	if m.Info.VideoConfig == nil {
		return nil, errors.New("no keyframe with SPS/PPS")
	}
	// Decode order across tracks, as an encoder loop would hand them out.
	slices.SortStableFunc(m.Packets, func(a, b media.Packet) int {
		return cmp.Compare(DecodeTime(a), DecodeTime(b))
	})
	return m, nil
}

// DecodeTime is DTS for video and PTS for audio.
func DecodeTime(p media.Packet) time.Duration {
	if p.Kind == media.KindAudio {
		return p.PTS
	}
	return p.DTS
}

type md5Entry struct {
	stream        int
	dts, pts, dur time.Duration
	size          int
}

func parseFrameMD5(b []byte) ([]md5Entry, error) {
	tb := map[int][2]int64{}
	var out []md5Entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "#tb "); ok {
			var idx int
			var num, den int64
			if _, err := fmt.Sscanf(rest, "%d: %d/%d", &idx, &num, &den); err != nil {
				return nil, fmt.Errorf("framemd5 %q: %v", line, err)
			}
			tb[idx] = [2]int64{num, den}
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) < 5 {
			return nil, fmt.Errorf("framemd5 line %q", line)
		}
		var v [5]int64
		for i := range v {
			n, err := strconv.ParseInt(strings.TrimSpace(f[i]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("framemd5 line %q: %v", line, err)
			}
			v[i] = n
		}
		r, ok := tb[int(v[0])]
		if !ok {
			return nil, fmt.Errorf("no time base for stream %d", v[0])
		}
		conv := func(x int64) time.Duration { return time.Duration(x * r[0] * int64(time.Second) / r[1]) }
		out = append(out, md5Entry{stream: int(v[0]), dts: conv(v[1]), pts: conv(v[2]), dur: conv(v[3]), size: int(v[4])})
	}
	return out, sc.Err()
}

// SplitADTS returns the raw AAC access units of an ADTS stream (ISO/IEC
// 13818-7 6.2) and the AudioSpecificConfig its first header describes.
func SplitADTS(b []byte) (aus [][]byte, asc []byte, err error) {
	for len(b) > 0 {
		if len(b) < 7 || b[0] != 0xff || b[1]&0xf0 != 0xf0 {
			return nil, nil, errors.New("ADTS: lost sync")
		}
		hdr := 7
		if b[1]&1 == 0 {
			hdr = 9 // CRC present
		}
		n := int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5])>>5
		if n < hdr || n > len(b) {
			return nil, nil, fmt.Errorf("ADTS: bad frame length %d", n)
		}
		if asc == nil {
			object := b[2]>>6 + 1
			freq := b[2] >> 2 & 0xf
			chans := (b[2]&1)<<2 | b[3]>>6
			asc = []byte{object<<3 | freq>>1, freq<<7 | chans<<3}
		}
		aus = append(aus, b[hdr:n:n])
		b = b[n:]
	}
	return aus, asc, nil
}

func nals(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return out
		}
		b = b[i+3:]
		j := bytes.Index(b, []byte{0, 0, 1})
		n := b
		if j >= 0 {
			n = b[:j]
		}
		n = bytes.TrimRight(n, "\x00")
		if len(n) > 0 {
			out = append(out, n)
		}
		if j < 0 {
			return out
		}
	}
}

func hasNAL(au []byte, typ byte) bool {
	for _, n := range nals(au) {
		if n[0]&0x1f == typ {
			return true
		}
	}
	return false
}

func paramSets(au []byte) []byte {
	var out []byte
	for _, n := range nals(au) {
		if t := n[0] & 0x1f; t == 7 || t == 8 {
			out = append(append(out, 0, 0, 0, 1), n...)
		}
	}
	return out
}
