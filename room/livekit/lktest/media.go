package lktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// VideoSpec describes a generated test video: a solid colour (an ffmpeg
// colour name or 0xRRGGBB) at a size and rate, encoded with keyframes every
// second.
type VideoSpec struct {
	Codec         string // "h264", "vp8" or "vp9"
	Color         string
	Width, Height int
	FPS           int
	Seconds       int
	// Graph, when set, is the lavfi source encoded instead of the colour
	// (its size and rate should match Width, Height and FPS).
	Graph string
	// KeyframeEvery is the number of pictures from one keyframe to the
	// next, exactly. It defaults to FPS (one a second).
	KeyframeEvery int
}

// AudioSpec describes a generated Opus tone (20 ms packets).
type AudioSpec struct {
	ToneHz  int
	Seconds int
	// Graph, when set, is the lavfi audio source encoded instead of the
	// tone (48 kHz).
	Graph string
}

func runFFmpeg(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("lktest: ffmpeg %v: %v\n%s", args, err, stderr.String())
	}
}

// GenerateVideo encodes spec with the ffmpeg CLI into dir and returns the
// access units (H.264 as Annex B with start codes, VP8/VP9 frames).
func GenerateVideo(t testing.TB, dir string, spec VideoSpec) [][]byte {
	t.Helper()
	if spec.Width == 0 {
		spec.Width, spec.Height = 320, 240
	}
	if spec.FPS == 0 {
		spec.FPS = 30
	}
	if spec.Seconds == 0 {
		spec.Seconds = 2
	}
	if spec.Color == "" {
		spec.Color = "red"
	}
	src := fmt.Sprintf("color=c=%s:s=%dx%d:r=%d,drawbox=x='mod(t*80,iw-40)':y=20:w=40:h=40:c=white:t=fill",
		spec.Color, spec.Width, spec.Height, spec.FPS)
	if spec.Graph != "" {
		src = spec.Graph
	}
	g := fmt.Sprint(spec.FPS)
	common := []string{"-f", "lavfi", "-i", src, "-t", fmt.Sprint(spec.Seconds), "-pix_fmt", "yuv420p"}
	if spec.KeyframeEvery > 0 {
		g = fmt.Sprint(spec.KeyframeEvery)
		common = append(common, "-keyint_min", g)
	}
	var path string
	switch spec.Codec {
	case "h264":
		path = filepath.Join(dir, "video.h264")
		runFFmpeg(t, append(common, "-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast",
			"-tune", "zerolatency", "-g", g, "-bf", "0", "-x264-params", "aud=1:repeat-headers=1", "-f", "h264", path)...)
		return ReadH264(t, path)
	case "vp8":
		path = filepath.Join(dir, "video.ivf")
		runFFmpeg(t, append(common, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
			"-g", g, "-b:v", "300k", "-f", "ivf", path)...)
		return ReadIVF(t, path)
	case "vp9":
		path = filepath.Join(dir, "video.ivf")
		runFFmpeg(t, append(common, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
			"-g", g, "-b:v", "300k", "-f", "ivf", path)...)
		return ReadIVF(t, path)
	}
	t.Fatalf("lktest: unknown video codec %q", spec.Codec)
	return nil
}

// GenerateAudio encodes a sine tone as Ogg Opus with one 20 ms packet per
// page and returns the packets.
func GenerateAudio(t testing.TB, dir string, spec AudioSpec) [][]byte {
	t.Helper()
	if spec.ToneHz == 0 {
		spec.ToneHz = 440
	}
	if spec.Seconds == 0 {
		spec.Seconds = 2
	}
	path := filepath.Join(dir, "audio.ogg")
	src := fmt.Sprintf("sine=frequency=%d:sample_rate=48000", spec.ToneHz)
	if spec.Graph != "" {
		src = spec.Graph
	}
	runFFmpeg(t, "-f", "lavfi", "-i", src,
		"-t", fmt.Sprint(spec.Seconds), "-ac", "1", "-c:a", "libopus", "-b:a", "32k",
		"-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", path)
	return ReadOgg(t, path)
}

// MovingBox is a lavfi video source: a solid colour (ffmpeg colour name or
// 0xRRGGBB) with a white 40x40 box moving across the top at 80 px/s, so a
// live picture can be told from a held one. (GenerateVideo's default box
// stands still: drawbox evaluates its position once.)
func MovingBox(color string, w, h, fps int) string {
	return fmt.Sprintf("color=c=%s:s=%dx%d:r=%d:d=2[bg];color=c=white:s=40x40:r=%d:d=2[b];[bg][b]overlay=x='mod(t*80\\,W-w)':y=20",
		color, w, h, fps, fps)
}

// Flash+beep media for A/V sync tests: black 320x240 VP8 at 30 fps with a
// white flash and Opus with a 1 kHz beep at the same instants, FlashAt and
// FlashAt+2 s of every 4 s loop, 0.1 s each. Publishers given the same
// Epoch and these samples capture each flash and beep at the same instant.
const (
	FlashBeepLoop = 4 * time.Second
	FlashAt       = 500 * time.Millisecond
)

// FlashBeep encodes the flash+beep media into dir: 120 VP8 pictures (a
// keyframe every 30) and 200 Opus packets of 20 ms, one loop each.
func FlashBeep(t testing.TB, dir string) (video, audio [][]byte) {
	t.Helper()
	const gate = `lt(mod(t+1.5\,2)\,0.1)`
	video = GenerateVideo(t, dir, VideoSpec{Codec: "vp8", Width: 320, Height: 240, FPS: 30, Seconds: 4,
		Graph: "color=c=black:s=320x240:r=30:d=4,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='" + gate + "'"})
	audio = GenerateAudio(t, dir, AudioSpec{Seconds: 4,
		Graph: "aevalsrc='if(" + gate + "\\,0.5*sin(2*PI*1000*t)\\,0)':s=48000:d=4,aformat=sample_fmts=flt"})
	// libopus pads the end with one more packet.
	if len(video) != 120 || len(audio) < 200 {
		t.Fatalf("lktest: flash+beep: %d pictures and %d Opus packets, want 120 and 200 (4 s)", len(video), len(audio))
	}
	return video, audio[:200]
}

// ReadH264 splits an Annex B file whose pictures each start with an access
// unit delimiter (x264 aud=1) into access units with 4-byte start codes.
func ReadH264(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := h264reader.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	var cur []byte
	for {
		nal, err := r.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("lktest: %s: %v", path, err)
		}
		if nal.UnitType == h264reader.NalUnitTypeAUD {
			// x264 writes an access unit delimiter in front of every picture.
			if len(cur) > 0 {
				aus = append(aus, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal.Data...)
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	if len(aus) == 0 {
		t.Fatalf("lktest: %s: no access units", path)
	}
	return aus
}

// ReadIVF returns the frames of an IVF file.
func ReadIVF(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("lktest: %s: %v", path, err)
		}
		out = append(out, frame)
	}
	if len(out) == 0 {
		t.Fatalf("lktest: %s: no frames", path)
	}
	return out
}

// ReadOgg returns the Opus packets of an Ogg file written with one packet
// per page (ffmpeg -page_duration 20000), without the header pages.
func ReadOgg(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("lktest: %s: %v", path, err)
	}
	var out [][]byte
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("lktest: %s: %v", path, err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
			continue
		}
		out = append(out, page)
	}
	if len(out) == 0 {
		t.Fatalf("lktest: %s: no Opus packets", path)
	}
	return out
}
