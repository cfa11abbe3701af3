package av

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/bitstream"
	"github.com/roomcast/roomcast/media"
)

var palette = []media.YUV{
	media.RGB(255, 0, 0), media.RGB(0, 200, 0), media.RGB(0, 0, 255),
	media.RGB(240, 240, 240), media.RGB(20, 20, 20), media.RGB(200, 150, 0),
}

// colourAt is the colour of input frame i: it changes every 15 frames.
func colourAt(i int) media.YUV { return palette[(i/15)%len(palette)] }

// encodeFrames encodes n solid-colour frames at cfg.FPS, forcing a keyframe
// before frame force (if ≥ 0), and returns all packets after Flush.
func encodeFrames(t testing.TB, e *VideoEncoder, n, force int) []media.Packet {
	t.Helper()
	cfg := e.Settings()
	img := media.NewImage(cfg.Width, cfg.Height)
	var pkts []media.Packet
	for i := 0; i < n; i++ {
		img.Fill(colourAt(i))
		if i == force {
			e.ForceKeyframe()
		}
		p, err := e.Encode(img, time.Duration(i)*time.Second/time.Duration(cfg.FPS))
		if err != nil {
			t.Fatalf("Encode %d: %v", i, err)
		}
		pkts = append(pkts, p...)
	}
	p, err := e.Flush()
	if err != nil {
		t.Fatalf("Flush: %v", err)
	}
	return append(pkts, p...)
}

func frameIndex(pts time.Duration, fps int) int {
	return int((pts*time.Duration(fps) + time.Second/2) / time.Second)
}

func keyFrames(pkts []media.Packet, fps int) []int {
	var keys []int
	for _, p := range pkts {
		if p.Key {
			keys = append(keys, frameIndex(p.PTS, fps))
		}
	}
	slices.Sort(keys)
	return keys
}

// decodeAll decodes encoder output with our live H.264 decoder and checks
// every picture's colour against the frame its PTS names.
// With immediate set, each packet must yield its own picture at once (no
// decoder delay), as the live path needs.
func decodeAll(t *testing.T, config []byte, pkts []media.Packet, fps int, immediate bool) int {
	t.Helper()
	d, err := NewVideoDecoder("h264")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	seen := map[int]bool{}
	for i, p := range pkts {
		data := p.Data
		if i == 0 {
			data = append(bytes.Clone(config), data...)
		}
		frames, err := d.Decode(data, p.PTS)
		if err != nil {
			t.Fatalf("decode packet %d: %v", i, err)
		}
		if immediate && (len(frames) != 1 || frames[0].PTS != p.PTS) {
			t.Fatalf("packet %d (pts %v): %d pictures out, want 1 at once", i, p.PTS, len(frames))
		}
		if i == len(pkts)-1 {
			rest, err := d.Flush()
			if err != nil {
				t.Fatalf("flush: %v", err)
			}
			frames = append(frames, rest...)
		}
		for _, f := range frames {
			k := frameIndex(f.PTS, fps)
			seen[k] = true
			colourNear(t, f.Image.At(f.Image.Width/2, f.Image.Height/2), colourAt(k), 6, "decoded frame")
		}
	}
	return len(seen)
}

func TestVideoEncoderRecord(t *testing.T) {
	e, err := NewVideoEncoder(VideoEncoderConfig{Width: 320, Height: 240, FPS: 30, KeyframeInterval: time.Second, Bitrate: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Profile() != 100 || e.Level() == 0 {
		t.Errorf("profile %d level %d, want high (100)", e.Profile(), e.Level())
	}
	cfg := e.Config()
	nals := bitstream.SplitAnnexB(cfg)
	if len(nals) < 2 || nals[0][0]&0x1f != 7 || nals[1][0]&0x1f != 8 {
		t.Fatalf("config is not SPS+PPS: % x", cfg)
	}
	pkts := encodeFrames(t, e, 100, 45)
	if len(pkts) != 100 {
		t.Fatalf("%d packets, want 100", len(pkts))
	}
	// A forced IDR restarts x264's GOP count.
	if keys := keyFrames(pkts, 30); !slices.Equal(keys, []int{0, 30, 45, 75}) {
		t.Errorf("keyframes at %v, want [0 30 45 75]", keys)
	}
	var bframes int
	for i, p := range pkts {
		if p.DTS > p.PTS {
			t.Errorf("packet %d: dts %v > pts %v", i, p.DTS, p.PTS)
		}
		if i > 0 && p.DTS <= pkts[i-1].DTS {
			t.Errorf("packet %d: dts %v after %v", i, p.DTS, pkts[i-1].DTS)
		}
		if p.PTS != p.DTS {
			bframes++
		}
		if !bytes.HasPrefix(p.Data, []byte{0, 0, 0, 1}) && !bytes.HasPrefix(p.Data, []byte{0, 0, 1}) {
			t.Fatalf("packet %d is not Annex B", i)
		}
	}
	if bframes == 0 {
		t.Errorf("record preset produced no reordering; expected B-frames")
	}
	if pkts[0].DTS >= 0 {
		t.Logf("first dts %v (no negative dts)", pkts[0].DTS)
	}
	if n := decodeAll(t, cfg, pkts, 30, false); n != 100 {
		t.Errorf("decoded %d distinct frames, want 100", n)
	}
}

func TestVideoEncoderStream(t *testing.T) {
	e, err := NewVideoEncoder(VideoEncoderConfig{Width: 320, Height: 180, FPS: 30, Preset: PresetStream, Bitrate: 800_000})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Profile() != 77 {
		t.Errorf("profile %d, want main (77)", e.Profile())
	}
	pkts := encodeFrames(t, e, 130, 100)
	for i, p := range pkts {
		if p.PTS != p.DTS {
			t.Fatalf("packet %d: pts %v dts %v; stream preset must not reorder", i, p.PTS, p.DTS)
		}
		if p.Duration != time.Second/30 {
			t.Fatalf("duration %v", p.Duration)
		}
	}
	if keys := keyFrames(pkts, 30); !slices.Equal(keys, []int{0, 60, 100}) {
		t.Errorf("keyframes at %v, want [0 60 100]", keys)
	}
	if n := decodeAll(t, e.Config(), pkts, 30, true); n != 130 {
		t.Errorf("decoded %d frames, want 130", n)
	}
}

func TestVideoEncoderErrors(t *testing.T) {
	for _, cfg := range []VideoEncoderConfig{
		{Width: 321, Height: 240},
		{Width: 320, Height: 240, Preset: "fast"},
		{Width: 320, Height: 240, Profile: "nonsense"},
		{Width: 320, Height: 240, X264Preset: "warp"},
	} {
		if e, err := NewVideoEncoder(cfg); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%+v: %v", cfg, err)
			if e != nil {
				e.Close()
			}
		}
	}
	e, err := NewVideoEncoder(VideoEncoderConfig{Width: 64, Height: 64})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encode(media.NewImage(32, 32), 0); err == nil {
		t.Error("wrong size accepted")
	}
	if _, err := e.Encode(media.NewImage(64, 64), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encode(media.NewImage(64, 64), time.Second); err == nil {
		t.Error("repeated pts accepted")
	}
	e.Close()
	e.Close()
	if _, err := e.Encode(media.NewImage(64, 64), 2*time.Second); err == nil {
		t.Error("encode after close")
	}
}

func sine(n int, f float64, start int) media.Audio {
	a := make(media.Audio, 2*n)
	for i := 0; i < n; i++ {
		v := float32(0.25 * math.Sin(2*math.Pi*f*float64(start+i)/media.SampleRate))
		a[2*i], a[2*i+1] = v, v
	}
	return a
}

func TestAudioEncoder(t *testing.T) {
	e, err := NewAudioEncoder(AudioEncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// AAC-LC, 48 kHz, stereo; FFmpeg appends an explicit "no SBR" sync
	// extension (56 e5 00), as its own MP4 and FLV muxers write it.
	if asc := e.Config(); !bytes.HasPrefix(asc, []byte{0x11, 0x90}) {
		t.Errorf("AudioSpecificConfig % x, want 11 90 ...", asc)
	}
	if e.PrimingSamples() != 1024 || e.Bitrate() != 128000 || e.FrameSize() != 1024 {
		t.Errorf("priming %d bitrate %d frame %d", e.PrimingSamples(), e.Bitrate(), e.FrameSize())
	}
	start := 5 * time.Second
	var pkts []media.Packet
	sizes := []int{480, 333, 1000, 1, 2048, 960}
	done := 0
	for i := 0; done < media.SampleRate; i++ {
		n := min(sizes[i%len(sizes)], media.SampleRate-done)
		p, err := e.Encode(sine(n, 1000, done), start+time.Duration(done)*time.Second/media.SampleRate)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p...)
		done += n
	}
	p, err := e.Flush()
	if err != nil {
		t.Fatal(err)
	}
	pkts = append(pkts, p...)
	// 48000 samples + 1024 priming, in 1024-sample packets.
	if want := (48000 + 1024 + 1023) / 1024; len(pkts) != want {
		t.Errorf("%d packets, want %d", len(pkts), want)
	}
	if want := start - e.Priming(); pkts[0].PTS != want {
		t.Errorf("first pts %v, want %v (start - priming)", pkts[0].PTS, want)
	}
	for i := 1; i < len(pkts); i++ {
		want := pkts[0].PTS + time.Duration(i*1024)*time.Second/media.SampleRate
		if d := pkts[i].PTS - want; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("packet %d pts %v, want %v", i, pkts[i].PTS, want)
		}
		if pkts[i].Kind != media.KindAudio || !pkts[i].Key {
			t.Fatalf("packet %d kind %v key %v", i, pkts[i].Kind, pkts[i].Key)
		}
	}
	// Decode back with FFmpeg's AAC decoder: a 1 kHz tone.
	pcm := decodeAAC(t, e.Config(), pkts)
	if len(pcm) < 2*48000 {
		t.Fatalf("decoded %d samples", len(pcm)/2)
	}
	mid := channel(pcm[2*10000:2*40000], 0)
	if f := dominantFreq(mid, 500, 1000, 2000); f != 1000 {
		t.Errorf("tone %v Hz, want 1000", f)
	}
	if peak := maxAbs(mid); peak < 0.2 || peak > 0.3 {
		t.Errorf("peak %v, want 0.25", peak)
	}
}

// decodeAAC decodes raw AAC packets with FFmpeg (test-only helper).
func decodeAAC(t *testing.T, asc []byte, pkts []media.Packet) media.Audio {
	t.Helper()
	c := astiav.FindDecoderByName("aac")
	cc := astiav.AllocCodecContext(c)
	defer cc.Free()
	if err := cc.SetExtraData(asc); err != nil {
		t.Fatal(err)
	}
	if err := cc.Open(c, nil); err != nil {
		t.Fatal(err)
	}
	pk, fr := newCPacket(), astiav.AllocFrame()
	defer pk.free()
	defer fr.Free()
	var rs resampler
	defer rs.free()
	var out media.Audio
	drain := func() {
		for cc.ReceiveFrame(fr) == nil {
			a, _, err := rs.convert(fr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, a...)
			fr.Unref()
		}
	}
	for _, p := range pkts {
		if err := sendData(cc, pk, p.Data, 0); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	_ = cc.SendPacket(nil)
	drain()
	return out
}

func TestAudioEncoderFlushEmpty(t *testing.T) {
	e, err := NewAudioEncoder(AudioEncoderConfig{Bitrate: 64000})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Flush()
	if err != nil || len(p) != 0 {
		t.Errorf("flush of nothing: %d packets, %v", len(p), err)
	}
	if _, err := e.Encode(sine(100, 440, 0), 0); err == nil {
		t.Error("encode after flush accepted")
	}
	e.Close()
	e.Close()
}

var _ = io.EOF
