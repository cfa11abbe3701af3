package av

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/roomcast/roomcast/bitstream"
	"github.com/roomcast/roomcast/media"
)

// TestVideoEncoderSwitchPreset: a preset switch requested mid-GOP happens
// at the next keyframe of the regular spacing (or a forced one), keeps the
// timestamps, carries the new SPS/PPS in band, and the stream decodes
// across it, every picture once with its colour. With B-frames the old
// encoder is drained (every picture kept); without (stream), the pictures
// of its lookahead, just before each switch, are dropped and counted.
func TestVideoEncoderSwitchPreset(t *testing.T) {
	for _, preset := range []string{PresetRecord, PresetStream} {
		t.Run(preset, func(t *testing.T) {
			e, err := NewVideoEncoder(VideoEncoderConfig{Width: 320, Height: 240, FPS: 30, Preset: preset,
				KeyframeInterval: time.Second, Bitrate: 800_000, X264Preset: "medium"})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			first := e.Config()
			img := media.NewImage(320, 240)
			var pkts []media.Packet
			presetAt := map[int]string{}
			for i := range 100 {
				switch i {
				case 10:
					if err := e.SwitchX264Preset("veryfast"); err != nil { // at the regular keyframe, 30
						t.Fatal(err)
					}
				case 35:
					if err := e.SwitchX264Preset("ultrafast"); err != nil { // at the forced one, 45
						t.Fatal(err)
					}
				case 45:
					e.ForceKeyframe()
				}
				img.Fill(colourAt(i))
				p, err := e.Encode(img, time.Duration(i)*time.Second/30)
				if err != nil {
					t.Fatalf("Encode %d: %v", i, err)
				}
				pkts = append(pkts, p...)
				presetAt[i] = e.X264Preset()
			}
			p, err := e.Flush()
			if err != nil {
				t.Fatal(err)
			}
			pkts = append(pkts, p...)
			for i, want := range map[int]string{29: "medium", 30: "veryfast", 44: "veryfast", 45: "ultrafast", 99: "ultrafast"} {
				if presetAt[i] != want {
					t.Errorf("after frame %d the preset is %q, want %q", i, presetAt[i], want)
				}
			}
			if e.Switches() != 2 {
				t.Errorf("%d switches, want 2", e.Switches())
			}
			dropped := 0
			if preset == PresetStream {
				dropped = int(e.Dropped())
				if dropped < 2 || dropped > 2*10 {
					t.Errorf("%d pictures dropped at two switches, want 1-10 each (x264's lookahead)", dropped)
				}
				// The dropped ones are those just before each switch.
				have := map[int]bool{}
				for _, p := range pkts {
					have[frameIndex(p.PTS, 30)] = true
				}
				for i := range 100 {
					if !have[i] && !(i >= 20 && i < 30 || i >= 35 && i < 45) {
						t.Errorf("frame %d is missing", i)
					}
				}
			} else if e.Dropped() != 0 {
				t.Errorf("%d pictures dropped with B-frames, want none", e.Dropped())
			}
			if len(pkts) != 100-dropped {
				t.Fatalf("%d packets, want 100 - %d dropped", len(pkts), dropped)
			}
			keys := keyFrames(pkts, 30)
			if !slices.Equal(keys, []int{0, 30, 45, 75}) {
				t.Errorf("keyframes at %v, want [0 30 45 75]", keys)
			}
			for i, p := range pkts {
				if p.DTS > p.PTS || (i > 0 && p.DTS <= pkts[i-1].DTS) {
					t.Fatalf("packet %d: dts %v pts %v after dts %v", i, p.DTS, p.PTS, pkts[max(i-1, 0)].DTS)
				}
				k := frameIndex(p.PTS, 30)
				ps := paramSets(p.Data)
				switch k {
				case 30, 45:
					if ps == nil || bytes.Equal(ps, first) {
						t.Errorf("the keyframe at %d does not carry the new encoder's SPS/PPS", k)
					}
				default:
					if ps != nil {
						t.Errorf("frame %d carries parameter sets", k)
					}
				}
			}
			if bytes.Equal(e.Config(), first) {
				t.Errorf("Config still describes the first encoder")
			}
			if preset == PresetRecord {
				if err := e.SwitchX264Preset("medium"); err == nil {
					t.Errorf("a slower preset was accepted with B-frames on")
				}
			}
			if err := e.SwitchX264Preset("warp"); err == nil {
				t.Errorf("an unknown preset was accepted")
			}
			if n := decodeAll(t, first, pkts, 30, false); n != 100-dropped {
				t.Errorf("decoded %d distinct frames, want %d", n, 100-dropped)
			}
		})
	}
}

// TestVideoEncoderKeyframesByTime: a live compositor that skips frames
// sends fewer than FPS pictures a second; keyframes stay KeyframeInterval
// apart in time, not in pictures.
func TestVideoEncoderKeyframesByTime(t *testing.T) {
	e, err := NewVideoEncoder(VideoEncoderConfig{Width: 160, Height: 120, FPS: 30, Preset: PresetStream, KeyframeInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img := media.NewImage(160, 120)
	var pkts []media.Packet
	for i := 0; i < 120; i += 4 { // 7.5 pictures a second
		img.Fill(colourAt(i))
		p, err := e.Encode(img, time.Duration(i)*time.Second/30)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p...)
	}
	p, err := e.Flush()
	if err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, p...)
	if keys := keyFrames(pkts, 30); !slices.Equal(keys, []int{0, 32, 64, 96}) {
		t.Errorf("keyframes at frames %v, want [0 32 64 96] (the first picture at least 1 s after the last keyframe)", keys)
	}
}

func TestFasterX264Preset(t *testing.T) {
	for in, want := range map[string]string{"slower": "slow", "veryfast": "superfast", "superfast": "ultrafast", "ultrafast": "", "nonsense": ""} {
		got, ok := FasterX264Preset(in)
		if got != want || ok != (want != "") {
			t.Errorf("FasterX264Preset(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// paramSets returns the SPS and PPS NAL units an access unit carries.
func paramSets(au []byte) []byte {
	var out []byte
	for _, nal := range bitstream.SplitAnnexB(au) {
		if ty := bitstream.H264Type(nal); ty == bitstream.H264SPS || ty == 8 {
			out = append(append(out, 0, 0, 0, 1), nal...)
		}
	}
	return out
}
