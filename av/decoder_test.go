package av

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asticode/go-astiav"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/bitstream"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/media"
)

type rawPacket struct {
	data []byte
	pts  time.Duration
}

// demux returns the packets of the first stream of type mt in path, as a
// WebRTC depacketizer would hand them over.
func demux(t testing.TB, path string, mt astiav.MediaType) []rawPacket {
	t.Helper()
	fc := astiav.AllocFormatContext()
	defer fc.Free()
	if err := fc.OpenInput(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		t.Fatal(err)
	}
	idx := -1
	var tb astiav.Rational
	for _, s := range fc.Streams() {
		if s.CodecParameters().MediaType() == mt {
			idx, tb = s.Index(), s.TimeBase()
			break
		}
	}
	if idx < 0 {
		t.Fatalf("%s: no %s stream", path, mt)
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var out []rawPacket
	for fc.ReadFrame(pkt) == nil {
		if pkt.StreamIndex() == idx {
			out = append(out, rawPacket{pkt.Data(), tsToDuration(pkt.Pts(), tb)})
		}
		pkt.Unref()
	}
	return out
}

// liveVideo encodes a short solid-colour clip with the ffmpeg CLI.
func liveVideo(t testing.TB, codec string) (string, media.YUV) {
	c := media.RGB(0, 0, 255)
	args := []string{"-f", "lavfi", "-i", "color=c=blue:s=320x240:r=30:d=1"}
	switch codec {
	case "vp8":
		return ffmpeg(t, "vp8.webm", append(args, "-c:v", "libvpx", "-deadline", "realtime")...), c
	case "vp9":
		return ffmpeg(t, "vp9.webm", append(args, "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8")...), c
	default:
		// Constrained baseline, as browsers send.
		return ffmpeg(t, "h264.mp4", append(args, "-c:v", "libx264", "-profile:v", "baseline", "-bsf:v", "h264_mp4toannexb", "-f", "h264")...), c
	}
}

func TestVideoDecoderLive(t *testing.T) {
	for _, codec := range []string{"h264", "vp8", "vp9"} {
		t.Run(codec, func(t *testing.T) {
			path, colour := liveVideo(t, codec)
			var pkts []rawPacket
			if codec == "h264" {
				pkts = demuxH264(t, path)
			} else {
				pkts = demux(t, path, astiav.MediaTypeVideo)
			}
			d, err := NewVideoDecoder(codec)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			n := 0
			for i, p := range pkts {
				frames, err := d.Decode(p.data, p.pts)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				// Low delay: every packet's picture comes out at once.
				if len(frames) != 1 || frames[0].PTS != p.pts {
					t.Fatalf("packet %d: %d frames", i, len(frames))
				}
				colourNear(t, frames[0].Image.At(100, 100), colour, 8, codec)
				n++
			}
			if n != 30 {
				t.Errorf("%d frames, want 30", n)
			}
		})
	}
}

// demuxH264 reads a raw Annex B file (one access unit per demuxed packet).
func demuxH264(t testing.TB, path string) []rawPacket {
	pkts := demux(t, path, astiav.MediaTypeVideo)
	for i := range pkts {
		pkts[i].pts = time.Duration(i) * time.Second / 30
	}
	return pkts
}

func TestAudioDecoderOpus(t *testing.T) {
	for _, ch := range []string{"1", "2"} {
		path := ffmpeg(t, "a.webm", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1", "-c:a", "libopus", "-ac", ch)
		d, err := NewAudioDecoder("opus")
		if err != nil {
			t.Fatal(err)
		}
		var out media.Audio
		for i, p := range demux(t, path, astiav.MediaTypeAudio) {
			a, err := d.Decode(p.data, p.pts)
			if err != nil {
				t.Fatalf("packet %d: %v", i, err)
			}
			if a.Frames() != 960 {
				t.Fatalf("packet %d: %d frames, want 960 (20 ms)", i, a.Frames())
			}
			out = append(out, a...)
		}
		d.Close()
		d.Close()
		mid := channel(out[2*12000:2*36000], 1)
		if f := dominantFreq(mid, 220, 440, 880); f != 440 {
			t.Errorf("%s ch: tone %v, want 440", ch, f)
		}
		// lavfi's sine peaks at 1/8; the ffmpeg CLI's own mono→stereo
		// upmix ("-ac 2") lowers it by 3 dB. Mono Opus decodes to two full
		// channels.
		want := 0.125
		if ch == "2" {
			want = 0.125 / math.Sqrt2
		}
		if p := float64(maxAbs(mid)); math.Abs(p-want) > 0.015 {
			t.Errorf("%s ch: peak %v, want %v", ch, p, want)
		}
	}
	if _, err := NewAudioDecoder("pcmu"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("pcmu: %v", err)
	}
}

func TestVideoDecoderGarbage(t *testing.T) {
	path, colour := liveVideo(t, "h264")
	good := demuxH264(t, path)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, codec := range []string{"h264", "vp8", "vp9", "av1"} {
		t.Run(codec, func(t *testing.T) {
			d, err := NewVideoDecoder(codec)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			errs := 0
			for i := 0; i < 300; i++ {
				b := make([]byte, 1+rng.IntN(3000))
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
				if i%3 == 0 && len(b) > 4 {
					copy(b, []byte{0, 0, 0, 1, 0x65}) // looks like an IDR slice
				}
				if _, err := d.Decode(b, time.Duration(i)*time.Millisecond); err != nil {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("garbage error does not wrap ErrCorrupt: %v", err)
					}
					errs++
				}
			}
			if errs == 0 {
				t.Errorf("300 garbage packets and no error")
			}
			t.Logf("%s: %d/300 garbage packets reported", codec, errs)
		})
	}

	// Truncated access units, then recovery at the next keyframe.
	d, err := NewVideoDecoder("h264")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Decode(good[0].data[:len(good[0].data)/2], 0); !errors.Is(err, ErrCorrupt) {
		t.Errorf("half an IDR: %v, want ErrCorrupt", err)
	}
	for i := 1; i < 5; i++ {
		d.Decode(good[i].data[:len(good[i].data)*2/3], good[i].pts)
	}
	frames, err := d.Decode(good[0].data, good[0].pts)
	if err != nil || len(frames) != 1 {
		t.Fatalf("recovery at keyframe: %d frames, %v", len(frames), err)
	}
	colourNear(t, frames[0].Image.At(10, 10), colour, 4, "after recovery")

	if _, err := NewVideoDecoder("theora"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("theora: %v", err)
	}
	d.Close()
	if _, err := d.Decode(good[0].data, 0); err == nil {
		t.Error("decode after close")
	}
}

// TestDecodersConcurrent runs one decoder per goroutine, as the live path
// does (one worker per track); run it with -race.
func TestDecodersConcurrent(t *testing.T) {
	path, _ := liveVideo(t, "vp8")
	pkts := demux(t, path, astiav.MediaTypeVideo)
	apath := ffmpeg(t, "a.webm", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1", "-c:a", "libopus")
	apkts := demux(t, apath, astiav.MediaTypeAudio)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vd, err := NewVideoDecoder("vp8")
			if err != nil {
				t.Error(err)
				return
			}
			defer vd.Close()
			ad, err := NewAudioDecoder("opus")
			if err != nil {
				t.Error(err)
				return
			}
			defer ad.Close()
			sc := NewScaler()
			defer sc.Close()
			dst := media.NewImage(160, 90)
			for i, p := range pkts {
				fr, err := vd.Decode(p.data, p.pts)
				if err != nil {
					t.Error(err)
					return
				}
				for _, f := range fr {
					if err := sc.Scale(dst, f.Image); err != nil {
						t.Error(err)
					}
				}
				if i < len(apkts) {
					if _, err := ad.Decode(apkts[i].data, apkts[i].pts); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
}

// FuzzDecodeH264 feeds arbitrary bytes to the live H.264 decoder: it may
// return errors but must not crash or hang. Seeds: testdata/fuzz.
func FuzzDecodeH264(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x47, 0xfe, 0xc8})
	f.Add([]byte{0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xff})
	d, err := NewVideoDecoder("h264")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := d.Decode(b, 0); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error does not wrap ErrCorrupt: %v", err)
		}
	})
}

// FuzzSPSProfileLevel reads profile and level from arbitrary Annex B input
// (the splitter itself is fuzzed in package bitstream).
func FuzzSPSProfileLevel(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3})
	f.Add([]byte{0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		for _, n := range bitstream.SplitAnnexB(b) {
			total += len(n)
		}
		if total > len(b) {
			t.Fatalf("NALs longer than input")
		}
		spsProfileLevel(b)
	})
}

// TestVideoDecoderAV1 decodes a committed AV1 clip: our FFmpeg build has no
// AV1 encoder. It was made with aomenc 3.6 (Debian aom-tools):
//
//	ffmpeg -f lavfi -i color=c=blue:s=160x90:r=30:d=0.333 -pix_fmt yuv420p -f yuv4mpegpipe blue.y4m
//	aomenc --ivf --cpu-used=8 --end-usage=q --cq-level=20 --kf-max-dist=30 -o blue-160x90.av1.ivf blue.y4m
func TestVideoDecoderAV1(t *testing.T) {
	path := mediatest.Fixture("blue-160x90.av1.ivf")
	pkts := demux(t, path, astiav.MediaTypeVideo)
	d, err := NewVideoDecoder("av1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	n := 0
	for i, p := range pkts {
		frames, err := d.Decode(p.data, p.pts)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if len(frames) != 1 {
			t.Errorf("packet %d: %d frames, want 1 at once", i, len(frames))
		}
		for _, f := range frames {
			if f.Image.Width != 160 || f.Image.Height != 90 {
				t.Fatalf("size %dx%d", f.Image.Width, f.Image.Height)
			}
			colourNear(t, f.Image.At(80, 45), media.RGB(0, 0, 255), 6, "av1 blue")
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d frames, want 10", n)
	}
	info, items, _ := readAll(t, path)
	if info.VideoCodec != "av1" || len(items) != 10 {
		t.Errorf("file reader: %+v, %d items", info, len(items))
	}
}

func TestRouteFFmpegLogs(t *testing.T) {
	var buf syncBuffer
	RouteFFmpegLogs(zerolog.New(&buf), zerolog.WarnLevel)
	t.Cleanup(func() { RouteFFmpegLogs(zerolog.Nop(), zerolog.ErrorLevel) })
	d, err := NewVideoDecoder("h264")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Decode([]byte{0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0}, 0) // a slice without SPS/PPS
	if s := buf.String(); !strings.Contains(s, `"component":"ffmpeg"`) || !strings.Contains(s, `"level":"warn"`) {
		t.Errorf("FFmpeg complaint not routed: %q", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FFmpeg has one log callback per process; each line must still reach the
// logger of the component whose context logged it (two sessions, two logs).
func TestFFmpegLogsRoutedByOwner(t *testing.T) {
	var a, b, fallback syncBuffer
	RouteFFmpegLogs(zerolog.New(&fallback), zerolog.WarnLevel)
	t.Cleanup(func() { RouteFFmpegLogs(zerolog.Nop(), zerolog.ErrorLevel) })
	da, err := NewVideoDecoder("h264", WithLog(zerolog.New(&a).Level(zerolog.DebugLevel).With().Str("session", "A").Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	db, err := NewVideoDecoder("h264", WithLog(zerolog.New(&b).Level(zerolog.DebugLevel).With().Str("session", "B").Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bad := []byte{0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0} // a slice without SPS/PPS
	da.Decode(bad, 0)
	da.Decode(bad, 0)
	db.Decode(bad, 0)
	if s := a.String(); !strings.Contains(s, `"session":"A"`) || !strings.Contains(s, `"component":"ffmpeg"`) || strings.Contains(s, `"B"`) {
		t.Errorf("session A's log: %q", s)
	}
	if s := b.String(); !strings.Contains(s, `"session":"B"`) || strings.Contains(s, `"A"`) {
		t.Errorf("session B's log: %q", s)
	}
	if s := fallback.String(); s != "" {
		t.Errorf("owned lines reached the process logger: %q", s)
	}
	// An owner whose logger is not at debug level hides FFmpeg's noise.
	var quiet syncBuffer
	dq, err := NewVideoDecoder("h264", WithLog(zerolog.New(&quiet).Level(zerolog.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	defer dq.Close()
	dq.Decode(bad, 0)
	if s := quiet.String() + fallback.String(); s != "" {
		t.Errorf("FFmpeg lines logged at info level: %q", s)
	}
	// After Close the context is forgotten.
	pa := uintptr(da.cc.UnsafePointer())
	da.Close()
	ffLog.mu.RLock()
	_, still := ffLog.owners[pa]
	ffLog.mu.RUnlock()
	if still {
		t.Error("a closed decoder's context is still registered")
	}
}
