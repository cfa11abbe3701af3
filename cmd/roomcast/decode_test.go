package main

// Helpers that generate inputs with the ffmpeg CLI and read outputs back:
// probed streams, frames and packets, decoded pictures (yuv420p), decoded
// sound (float32), and the measures the tests assert on.

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/media"
)

// ffmpeg runs the ffmpeg CLI and returns its standard output.
func ffmpeg(t testing.TB, args ...string) []byte {
	t.Helper()
	return mediatest.FFmpeg(t, args...)
}

// genOpts describes a synthetic per-speaker recording.
type genOpts struct {
	video  string  // lavfi video source graph (with its size, rate and duration)
	audio  string  // lavfi audio source graph
	vcodec string  // vp8, vp9 or h264
	acodec string  // opus or aac
	dur    float64 // seconds
}

// solidInput is a solid-colour picture with a sine tone.
func solidInput(colour, size string, fps int, tone, dur float64, vcodec, acodec string) genOpts {
	return genOpts{
		video:  fmt.Sprintf("color=c=%s:s=%s:r=%d:d=%g", colour, size, fps, dur),
		audio:  fmt.Sprintf("sine=f=%g:sample_rate=48000:d=%g", tone, dur),
		vcodec: vcodec, acodec: acodec, dur: dur,
	}
}

// generate writes the recording described by g to path.
func generate(t testing.TB, path string, g genOpts) {
	t.Helper()
	args := []string{"-y", "-f", "lavfi", "-i", g.video, "-f", "lavfi", "-i", g.audio, "-t", fmt.Sprint(g.dur)}
	switch g.vcodec {
	case "vp8":
		args = append(args, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k")
	case "vp9":
		args = append(args, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k")
	case "h264":
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	default:
		t.Fatalf("generate: video codec %q", g.vcodec)
	}
	switch g.acodec {
	case "opus":
		args = append(args, "-c:a", "libopus", "-b:a", "96k")
	case "aac":
		args = append(args, "-c:a", "aac", "-b:a", "128k")
	default:
		t.Fatalf("generate: audio codec %q", g.acodec)
	}
	ffmpeg(t, append(args, path)...)
}

// probe is what ffprobe says (internal/mediatest, the one probing helper).
type probe = mediatest.Probe

// ffprobe probes path's streams and format (extra arguments such as
// -count_frames go first).
func ffprobe(t testing.TB, path string, extra ...string) *probe {
	t.Helper()
	return mediatest.MustProbe(t, path, append(extra, "-show_streams", "-show_format")...)
}

func atof(s string) float64 { return mediatest.Secs(s) }

// frameInfo is one decoded frame as ffprobe reports it.
type frameInfo = mediatest.FrameInfo

// probeFrames lists the decoded frames of the first video ("v") or audio
// ("a") stream in presentation order; limit > 0 reads only that many packets.
func probeFrames(t testing.TB, path, sel string, limit int) []frameInfo {
	t.Helper()
	return mediatest.Frames(t, path, sel, limit)
}

// packetInfo is one demuxed packet.
type packetInfo = mediatest.PacketInfo

// probePackets lists the packets of the first stream of kind sel in file order.
func probePackets(t testing.TB, path, sel string) []packetInfo {
	t.Helper()
	return mediatest.Packets(t, path, sel)
}

// origins returns the file times of the first decoded picture (the output's
// media time 0) and of the first decoded audio sample.
func origins(t testing.TB, path string) (video0, audio0 float64) {
	t.Helper()
	v := probeFrames(t, path, "v", 40)
	a := probeFrames(t, path, "a", 10)
	if len(v) == 0 || len(a) == 0 {
		t.Fatalf("%s: no decodable video (%d) or audio (%d) frames at the start", path, len(v), len(a))
	}
	return v[0].PTS, a[0].PTS
}

// grabFrames decodes the pictures with the given indices (presentation
// order, 0 = the first) as yuv420p.
func grabFrames(t testing.TB, path string, w, h int, idx ...int) []*media.Image {
	t.Helper()
	var sel []string
	for _, n := range idx {
		sel = append(sel, fmt.Sprintf("eq(n\\,%d)", n))
	}
	out := ffmpeg(t, "-i", path, "-an", "-vf", "select='"+strings.Join(sel, "+")+"'", "-fps_mode", "passthrough",
		"-pix_fmt", "yuv420p", "-f", "rawvideo", "-")
	size := w*h + 2*(w/2)*(h/2)
	if len(out) != size*len(idx) {
		t.Fatalf("%s: wanted %d frames of %dx%d (%d bytes), decoded %d bytes", path, len(idx), w, h, size*len(idx), len(out))
	}
	imgs := make([]*media.Image, len(idx))
	for i := range idx {
		m := media.NewImage(w, h)
		copy(m.Y, out[i*size:i*size+w*h])
		copy(m.U, out[i*size+w*h:])
		copy(m.V, out[i*size+w*h+len(m.U):])
		imgs[i] = m
	}
	return imgs
}

// lumaFrames decodes every picture's luma, after the given ffmpeg video
// filter (crop/scale; "" for none), as w×h bytes each.
func lumaFrames(t testing.TB, path, filter string, w, h int) [][]byte {
	t.Helper()
	args := []string{"-i", path, "-an"}
	if filter != "" {
		args = append(args, "-vf", filter)
	}
	out := ffmpeg(t, append(args, "-fps_mode", "passthrough", "-pix_fmt", "gray", "-f", "rawvideo", "-")...)
	if len(out)%(w*h) != 0 {
		t.Fatalf("%s: %d bytes of %dx%d luma", path, len(out), w, h)
	}
	var fs [][]byte
	for i := 0; i < len(out); i += w * h {
		fs = append(fs, out[i:i+w*h])
	}
	return fs
}

// audioMono decodes the first audio stream's first channel at 48 kHz.
func audioMono(t testing.TB, path string) []float32 {
	t.Helper()
	out := ffmpeg(t, "-i", path, "-vn", "-af", "pan=mono|c0=c0,aresample=48000", "-c:a", "pcm_f32le", "-f", "wav", "-")
	return wavFloats(t, out)
}

// wavFloats reads the samples of a float32 WAV stream (sizes in a piped
// WAV header are placeholders, so the data chunk runs to the end).
func wavFloats(t testing.TB, b []byte) []float32 {
	t.Helper()
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatal("not a WAV stream")
	}
	for i := 12; i+8 <= len(b); {
		id, size := string(b[i:i+4]), int(binary.LittleEndian.Uint32(b[i+4:i+8]))
		if id == "data" {
			d := b[i+8:]
			s := make([]float32, len(d)/4)
			for k := range s {
				s[k] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*k:]))
			}
			return s
		}
		i += 8 + size + size%2
	}
	t.Fatal("WAV stream without data")
	return nil
}

// toneAmp is the amplitude of the frequency f in x (Goertzel; 48 kHz).
func toneAmp(x []float32, f float64) float64 {
	if len(x) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*f/media.SampleRate)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+coeff*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(p, 0)) / float64(len(x))
}

// span returns the samples of x between seconds a and b, where sample 0 is
// at time t0.
func span(x []float32, t0, a, b float64) []float32 {
	i := max(0, int(math.Round((a-t0)*media.SampleRate)))
	j := min(len(x), int(math.Round((b-t0)*media.SampleRate)))
	if i >= j {
		return nil
	}
	return x[i:j]
}

// boxes lists the top-level ISO BMFF boxes of a file.
func boxes(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	var out []string
	hdr := make([]byte, 16)
	for off := int64(0); off+8 <= st.Size(); {
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			t.Fatal(err)
		}
		size := int64(binary.BigEndian.Uint32(hdr))
		typ := string(hdr[4:8])
		switch size {
		case 1:
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				t.Fatal(err)
			}
			size = int64(binary.BigEndian.Uint64(hdr[8:16]))
		case 0:
			size = st.Size() - off
		}
		if size < 8 {
			t.Fatalf("%s: box %q at %d has size %d", path, typ, off, size)
		}
		out = append(out, typ)
		off += size
	}
	return out
}

// finalised checks that path is a regular (not fragmented) MP4 with the
// index before the media: moov before mdat, no moof.
func finalised(t testing.TB, path string) {
	t.Helper()
	bs := boxes(t, path)
	moov, mdat := -1, -1
	for i, b := range bs {
		switch b {
		case "moov":
			if moov < 0 {
				moov = i
			}
		case "mdat":
			if mdat < 0 {
				mdat = i
			}
		case "moof":
			t.Errorf("%s is still fragmented (boxes %v)", path, bs)
			return
		}
	}
	if moov < 0 || mdat < 0 || moov > mdat {
		t.Errorf("%s: want moov before mdat, boxes %v", path, bs)
	}
}

// playable checks that ffmpeg decodes the whole file without a single error.
func playable(t testing.TB, path string) {
	t.Helper()
	if msg := mediatest.DecodeErrors(path); msg != "" {
		t.Errorf("%s does not decode cleanly: ffmpeg -v error -i %s -f null -: %s", path, path, tail(msg, 10))
	}
}

// near reports whether two colours differ by at most tol in each component.
func near(a, b media.YUV, tol int) bool {
	d := func(x, y uint8) int { return int(math.Abs(float64(int(x) - int(y)))) }
	return d(a.Y, b.Y) <= tol && d(a.U, b.U) <= tol && d(a.V, b.V) <= tol
}

// meanAt averages the colour of the 9×9 block around (x, y).
func meanAt(m *media.Image, x, y int) media.YUV {
	var sy, su, sv, n int
	for yy := y - 4; yy <= y+4; yy++ {
		for xx := x - 4; xx <= x+4; xx++ {
			c := m.At(xx, yy)
			sy, su, sv, n = sy+int(c.Y), su+int(c.U), sv+int(c.V), n+1
		}
	}
	return media.YUV{Y: uint8(sy / n), U: uint8(su / n), V: uint8(sv / n)}
}

func rgbHex(c media.YUV) string {
	r, g, b := c.ToRGB()
	return fmt.Sprintf("#%02x%02x%02x", r, g, b)
}
