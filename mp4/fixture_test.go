package mp4

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/media"
)

// The fixture: 10 s of testsrc2 at 25 fps, H.264 with B-frames and one
// keyframe every 4 s (so fragments must be cut by duration, not only at
// keyframes), and a 440 Hz sine as stereo AAC.
const (
	fixtureSeconds = 10
	fixtureFPS     = 25
	fixtureGOP     = 100
)

// fixture is the encoded test input as the encoder stage would hand it over.
type fixture struct {
	info     media.StreamInfo
	packets  []media.Packet // DTS order, streams interleaved
	video    int            // number of video packets
	audio    int            // number of audio packets
	duration time.Duration  // of the source file, as ffprobe reports it
	bytes    int64          // size of the source file
}

var fix *fixture

func TestMain(m *testing.M) {
	if out := os.Getenv(crashEnv); out != "" {
		crashChild(out)
		return
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mp4-fixture-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src.mp4")
	if fix, err = makeFixture(src); err != nil {
		fmt.Fprintln(os.Stderr, "fixture:", err)
		return 1
	}
	os.Setenv(fixtureEnv, src) // for the crash child
	return m.Run()
}

const fixtureEnv = "MP4_TEST_FIXTURE"

// makeFixture encodes the source with the ffmpeg CLI, unless src exists,
// and demuxes it into media.Packets.
func makeFixture(src string) (*fixture, error) {
	if _, err := os.Stat(src); err != nil {
		cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-y",
			"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d", fixtureFPS),
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
			"-t", strconv.Itoa(fixtureSeconds),
			"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", strconv.Itoa(fixtureGOP),
			"-keyint_min", strconv.Itoa(fixtureGOP), "-sc_threshold", "0", "-pix_fmt", "yuv420p", "-b:v", "1M",
			"-c:a", "aac", "-b:a", "128k", "-ac", "2",
			src)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ffmpeg: %v: %s", err, out)
		}
	}
	return demuxFixture(src)
}

func demuxFixture(src string) (*fixture, error) {
	in := astiav.AllocFormatContext()
	defer in.Free()
	if err := in.OpenInput(src, nil, nil); err != nil {
		return nil, err
	}
	defer in.CloseInput()
	if err := in.FindStreamInfo(nil); err != nil {
		return nil, err
	}
	fx := &fixture{duration: time.Duration(in.Duration()) * time.Microsecond}
	st, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	fx.bytes = st.Size()
	kinds := map[int]media.Kind{}
	var nalLen int
	for _, s := range in.Streams() {
		cp := s.CodecParameters()
		switch cp.MediaType() {
		case astiav.MediaTypeVideo:
			kinds[s.Index()] = media.KindVideo
			cfg, n, err := avcCToAnnexB(cp.ExtraData())
			if err != nil {
				return nil, err
			}
			nalLen = n
			fx.info.VideoConfig = cfg
			fx.info.Width, fx.info.Height, fx.info.FPS = cp.Width(), cp.Height(), fixtureFPS
		case astiav.MediaTypeAudio:
			kinds[s.Index()] = media.KindAudio
			fx.info.AudioConfig = slices.Clone(cp.ExtraData())
			fx.info.SampleRate, fx.info.Channels = cp.SampleRate(), cp.ChannelLayout().Channels()
		}
	}
	ns := astiav.NewRational(1, int(time.Second))
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	for {
		if err := in.ReadFrame(pkt); err != nil {
			if errors.Is(err, astiav.ErrEof) {
				break
			}
			return nil, err
		}
		k, ok := kinds[pkt.StreamIndex()]
		if !ok {
			pkt.Unref()
			continue
		}
		tb := in.Streams()[pkt.StreamIndex()].TimeBase()
		p := media.Packet{
			Kind:     k,
			Data:     slices.Clone(pkt.Data()),
			PTS:      time.Duration(astiav.RescaleQ(pkt.Pts(), tb, ns)),
			DTS:      time.Duration(astiav.RescaleQ(pkt.Dts(), tb, ns)),
			Duration: time.Duration(astiav.RescaleQ(pkt.Duration(), tb, ns)),
			Key:      pkt.Flags().Has(astiav.PacketFlagKey),
		}
		pkt.Unref()
		if k == media.KindVideo {
			if p.Data, err = lengthPrefixedToAnnexB(p.Data, nalLen); err != nil {
				return nil, err
			}
			fx.video++
		} else {
			fx.audio++
		}
		fx.packets = append(fx.packets, p)
	}
	slices.SortStableFunc(fx.packets, func(a, b media.Packet) int { return cmp.Compare(a.DTS, b.DTS) })
	return fx, nil
}

var startCode = []byte{0, 0, 0, 1}

// avcCToAnnexB turns an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// §5.3.3.1) into SPS and PPS with start codes, and returns the NAL length
// size.
func avcCToAnnexB(b []byte) ([]byte, int, error) {
	if len(b) < 7 || b[0] != 1 {
		return nil, 0, fmt.Errorf("not an avcC record (%d bytes)", len(b))
	}
	nalLen := int(b[4]&3) + 1
	var out []byte
	p := b[5:]
	for _, mask := range []byte{0x1f, 0xff} {
		if len(p) < 1 {
			return nil, 0, errors.New("short avcC")
		}
		n := int(p[0] & mask)
		p = p[1:]
		for range n {
			if len(p) < 2 {
				return nil, 0, errors.New("short avcC")
			}
			l := int(binary.BigEndian.Uint16(p))
			if len(p) < 2+l {
				return nil, 0, errors.New("short avcC")
			}
			out = append(append(out, startCode...), p[2:2+l]...)
			p = p[2+l:]
		}
	}
	return out, nalLen, nil
}

func lengthPrefixedToAnnexB(b []byte, nalLen int) ([]byte, error) {
	var out bytes.Buffer
	for len(b) > 0 {
		if len(b) < nalLen {
			return nil, errors.New("short NAL length")
		}
		var l int
		for _, c := range b[:nalLen] {
			l = l<<8 | int(c)
		}
		b = b[nalLen:]
		if l > len(b) {
			return nil, errors.New("NAL overruns packet")
		}
		out.Write(startCode)
		out.Write(b[:l])
		b = b[l:]
	}
	return out.Bytes(), nil
}

// probe is what ffprobe says (internal/mediatest, the one probing helper).
type probe struct{ *mediatest.Probe }

func ffprobe(t *testing.T, path string, packets bool) *probe {
	t.Helper()
	args := []string{"-show_format", "-show_streams", "-count_packets"}
	if packets {
		args = append(args, "-show_packets")
	}
	return &probe{mediatest.MustProbe(t, path, args...)}
}

func (p *probe) stream(t *testing.T, typ string) (int, string, int) {
	t.Helper()
	for i, s := range p.Streams {
		if s.CodecType == typ {
			n, _ := strconv.Atoi(s.NbReadPackets)
			return i, s.CodecName, n
		}
	}
	t.Fatalf("no %s stream", typ)
	return 0, "", 0
}

func seconds(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// mediaEnd is the latest packet end (pts+duration) of stream i, in seconds.
func (p *probe) mediaEnd(i int) float64 {
	end := 0.0
	for _, k := range p.Packets {
		if k.StreamIndex == i {
			end = max(end, seconds(k.PTSTime)+seconds(k.DurationTime))
		}
	}
	return end
}

// decodeAll decodes the whole file with the ffmpeg CLI and fails on any
// error message or non-zero exit.
func decodeAll(t *testing.T, path string) {
	t.Helper()
	if msg := mediatest.DecodeErrors(path); msg != "" {
		t.Fatalf("decoding %s: %s", path, msg)
	}
}

// box is one top-level ISO BMFF box (ISO/IEC 14496-12 §4.2).
type box struct {
	typ       string
	off, size int64
}

func topBoxes(t *testing.T, path string) []box {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var boxes []box
	for off := int64(0); off < int64(len(b)); {
		if int64(len(b))-off < 8 {
			t.Fatalf("%s: %d trailing bytes at %d", path, int64(len(b))-off, off)
		}
		size := int64(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		switch size {
		case 0:
			size = int64(len(b)) - off
		case 1:
			size = int64(binary.BigEndian.Uint64(b[off+8:]))
		}
		if size < 8 || off+size > int64(len(b)) {
			t.Fatalf("%s: box %q at %d has size %d beyond the file (%d)", path, typ, off, size, len(b))
		}
		boxes = append(boxes, box{typ, off, size})
		off += size
	}
	return boxes
}

func boxTypes(bs []box) []string {
	var s []string
	for _, b := range bs {
		s = append(s, b.typ)
	}
	return s
}
