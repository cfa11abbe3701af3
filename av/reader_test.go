package av

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

func TestReadWebMVP8Opus(t *testing.T) {
	// A Galène/LiveKit-like track recording: VP8 + Opus in WebM.
	path := ffmpeg(t, "in.webm",
		"-f", "lavfi", "-i", "color=c=red:s=320x240:r=25:d=2",
		"-f", "lavfi", "-i", "sine=f=440:r=48000:d=2",
		"-c:v", "libvpx", "-b:v", "500k", "-c:a", "libopus", "-ac", "2")
	info, items, r := readAll(t, path)
	if !info.HasVideo || !info.HasAudio || info.VideoCodec != "vp8" || info.AudioCodec != "opus" {
		t.Fatalf("info %+v", info)
	}
	if info.Width != 320 || info.Height != 240 {
		t.Errorf("size %dx%d", info.Width, info.Height)
	}
	if info.Duration < 1900*time.Millisecond || info.Duration > 2100*time.Millisecond {
		t.Errorf("duration %v", info.Duration)
	}
	var frames int
	var audio media.Audio
	var firstAudio time.Duration = -1
	lastV := time.Duration(-1)
	for _, it := range items {
		if it.Video != nil {
			if it.PTS <= lastV {
				t.Errorf("video pts %v after %v", it.PTS, lastV)
			}
			lastV = it.PTS
			// Opus pre-skip puts the WebM's start time 6.5 ms before the
			// first picture (ffprobe agrees).
			if frames == 0 && (it.PTS < 0 || it.PTS > 10*time.Millisecond) {
				t.Errorf("first video pts %v", it.PTS)
			}
			frames++
			colourNear(t, it.Video.At(160, 120), media.RGB(255, 0, 0), 4, "vp8 red")
			continue
		}
		if firstAudio < 0 {
			firstAudio = it.PTS
		}
		audio = append(audio, it.Audio...)
	}
	if frames != 50 {
		t.Errorf("%d video frames, want 50", frames)
	}
	firstVideo := items[0].PTS
	for _, it := range items {
		if it.Video != nil {
			firstVideo = it.PTS
			break
		}
	}
	if d := firstAudio - firstVideo; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("first audio at %v, first video at %v: want together", firstAudio, firstVideo)
	}
	if d := time.Duration(audio.Frames()) * time.Second / media.SampleRate; d < 1980*time.Millisecond || d > 2020*time.Millisecond {
		t.Errorf("audio lasts %v, want 2s", d)
	}
	mid := channel(audio[48000:96000], 0)
	if f := dominantFreq(mid, 220, 440, 880, 1000); f != 440 {
		t.Errorf("tone %v Hz, want 440", f)
	}
	if r.Corrupt() != 0 {
		t.Errorf("corrupt %d", r.Corrupt())
	}
}

func TestReadMP4H264AACOffset(t *testing.T) {
	// Audio starts 0.5 s after video: the offset must survive.
	path := ffmpeg(t, "in.mp4",
		"-f", "lavfi", "-i", "color=c=0x2040C0:s=640x360:r=30:d=2",
		"-itsoffset", "0.5", "-f", "lavfi", "-i", "sine=f=1000:r=44100:d=1.5",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1")
	info, items, _ := readAll(t, path)
	if info.VideoCodec != "h264" || info.AudioCodec != "aac" || info.Width != 640 || info.Height != 360 {
		t.Fatalf("info %+v", info)
	}
	var frames int
	var audio media.Audio
	firstA, firstV := time.Duration(-1), time.Duration(-1)
	for _, it := range items {
		if it.Video != nil {
			if firstV < 0 {
				firstV = it.PTS
			}
			frames++
			colourNear(t, it.Video.At(320, 180), media.RGB(0x20, 0x40, 0xC0), 4, "h264 colour")
			continue
		}
		if firstA < 0 {
			firstA = it.PTS
		}
		audio = append(audio, it.Audio...)
	}
	if frames != 60 {
		t.Errorf("%d frames, want 60", frames)
	}
	if firstV != 0 {
		t.Errorf("first video pts %v", firstV)
	}
	// The tone starts at 0.5 s. (The file's audio track itself starts at
	// 476 ms: ffmpeg keeps the AAC encoder's 1024 priming samples there.)
	onset := firstA
	for i, v := range channel(audio, 0) {
		if v > 0.05 || v < -0.05 {
			onset = firstA + time.Duration(i)*time.Second/media.SampleRate
			break
		}
	}
	if onset < 495*time.Millisecond || onset > 505*time.Millisecond {
		t.Errorf("tone starts at %v (first audio item %v), want 500ms", onset, firstA)
	}
	// Mono 44.1 kHz comes out as two equal channels at 48 kHz.
	l, rr := channel(audio, 0), channel(audio, 1)
	for i := range l {
		if l[i] != rr[i] {
			t.Fatalf("sample %d: L %v R %v", i, l[i], rr[i])
		}
	}
	if f := dominantFreq(l[4800:52800], 500, 1000, 1500); f != 1000 {
		t.Errorf("tone %v Hz, want 1000", f)
	}
	if peak := maxAbs(l[4800:52800]); peak < 0.1 || peak > 0.2 {
		// lavfi sine has amplitude 1/8; mono must not lose 3 dB.
		t.Errorf("peak %v, want ~0.125", peak)
	}
}

func maxAbs(x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, v, -v)
	}
	return m
}

func TestReadVP9OddSize(t *testing.T) {
	path := ffmpeg(t, "in.mkv",
		"-f", "lavfi", "-i", "color=c=green:s=321x241:r=10:d=1",
		"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv420p")
	info, items, _ := readAll(t, path)
	if info.HasAudio || info.VideoCodec != "vp9" {
		t.Fatalf("info %+v", info)
	}
	if info.Width != 322 || info.Height != 242 {
		t.Errorf("size %dx%d, want 322x242", info.Width, info.Height)
	}
	if len(items) != 10 {
		t.Errorf("%d frames, want 10", len(items))
	}
	for _, it := range items {
		if it.Video.Width != 322 || it.Video.Height != 242 {
			t.Fatalf("frame %dx%d", it.Video.Width, it.Video.Height)
		}
		colourNear(t, it.Video.At(160, 120), media.RGB(0, 128, 0), 4, "vp9 green")
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenFile(filepath.Join(dir, "missing.webm"), zerolog.Nop())
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}

	junk := filepath.Join(dir, "junk.webm")
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(i*7919 + i>>8)
	}
	os.WriteFile(junk, b, 0o644)
	_, err = OpenFile(junk, zerolog.Nop())
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("junk: %v", err)
	}

	empty := filepath.Join(dir, "empty.mkv")
	os.WriteFile(empty, nil, 0o644)
	_, err = OpenFile(empty, zerolog.Nop())
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("empty: %v", err)
	}

	// A valid WAV whose only stream is G.711 A-law: our build has no decoder.
	alaw := filepath.Join(dir, "alaw.wav")
	os.WriteFile(alaw, wavHeader(6, 1, 8000, 8, 8000), 0o644)
	_, err = OpenFile(alaw, zerolog.Nop())
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("alaw: %v", err)
	}
	if err != nil && !contains(err.Error(), alaw) {
		t.Errorf("error does not name the file: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// wavHeader builds a RIFF/WAVE file with format tag tag and n bytes of data.
func wavHeader(tag, ch, rate, bits, n int) []byte {
	le16 := func(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8)) }
	le32 := func(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24)) }
	b := []byte("RIFF")
	b = le32(b, 36+n)
	b = append(b, "WAVEfmt "...)
	b = le32(b, 16)
	b = le16(b, tag)
	b = le16(b, ch)
	b = le32(b, rate)
	b = le32(b, rate*ch*bits/8)
	b = le16(b, ch*bits/8)
	b = le16(b, bits)
	b = append(b, "data"...)
	b = le32(b, n)
	return append(b, make([]byte, n)...)
}

func TestReadTruncated(t *testing.T) {
	path := ffmpeg(t, "in.webm",
		"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4",
		"-f", "lavfi", "-i", "sine=f=440:r=48000:d=4",
		"-c:v", "libvpx", "-b:v", "800k", "-c:a", "libopus")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.webm")
	os.WriteFile(cut, b[:len(b)/2], 0o644)
	_, items, _ := readAll(t, cut)
	var frames int
	for _, it := range items {
		if it.Video != nil {
			frames++
		}
	}
	if frames < 20 || frames >= 100 {
		t.Errorf("%d frames from half a 100-frame file", frames)
	}

	// Damage in the middle of an MP4's media data: the sample tables stay
	// intact, so every frame is still read, and the decoder reports damage.
	path = ffmpeg(t, "in.mp4",
		"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-movflags", "+faststart")
	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+64; i++ {
		b[i] = byte(i * 31)
	}
	bad := filepath.Join(t.TempDir(), "bad.mp4")
	os.WriteFile(bad, b, 0o644)
	r, err := OpenFile(bad, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	frames = 0
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if it.Video != nil {
			frames++
		}
	}
	t.Logf("damaged mp4: %d frames, %d corrupt", frames, r.Corrupt())
	if frames < 95 || r.Corrupt() == 0 {
		t.Errorf("damaged file: %d frames (want 100), %d corrupt (want > 0)", frames, r.Corrupt())
	}
	r.Close()
	r.Close()
}

func TestReadSizeChange(t *testing.T) {
	// WebRTC senders change resolution with bandwidth; a track recording
	// then holds VP8 frames of several sizes in one stream.
	a := ffmpeg(t, "a.webm", "-f", "lavfi", "-i", "color=c=red:s=640x360:r=30:d=1", "-c:v", "libvpx", "-deadline", "realtime")
	b := ffmpeg(t, "b.webm", "-f", "lavfi", "-i", "color=c=blue:s=320x180:r=30:d=1", "-c:v", "libvpx", "-deadline", "realtime")
	list := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(list, []byte("file '"+a+"'\nfile '"+b+"'\n"), 0o644)
	path := ffmpeg(t, "ab.webm", "-f", "concat", "-safe", "0", "-i", list, "-c", "copy")
	info, items, _ := readAll(t, path)
	if info.Width != 640 || info.Height != 360 {
		t.Errorf("info size %dx%d", info.Width, info.Height)
	}
	sizes := map[[2]int]int{}
	for _, it := range items {
		sizes[[2]int{it.Video.Width, it.Video.Height}]++
	}
	if sizes[[2]int{640, 360}] != 30 || sizes[[2]int{320, 180}] != 30 {
		t.Errorf("frames by size %v, want 30 of each", sizes)
	}
	last := items[len(items)-1]
	if last.PTS < 1900*time.Millisecond || last.PTS > 2000*time.Millisecond {
		t.Errorf("last pts %v", last.PTS)
	}
	colourNear(t, last.Video.At(10, 10), media.RGB(0, 0, 255), 8, "second part")
}

// TestReadDecoderThreads: the decoder's thread count (FileOptions, compose
// gives each input its share of the CPUs) changes the cost, never the
// pictures or their times.
func TestReadDecoderThreads(t *testing.T) {
	path := ffmpeg(t, "in.mp4",
		"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2",
		"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p")
	read := func(o FileOptions) []Item {
		r, err := OpenFileWith(path, o, zerolog.Nop())
		if err != nil {
			t.Fatalf("OpenFileWith(%+v): %v", o, err)
		}
		defer r.Close()
		var items []Item
		for {
			it, err := r.Next()
			if errors.Is(err, io.EOF) {
				return items
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			items = append(items, it)
		}
	}
	one, four := read(FileOptions{DecoderThreads: 1}), read(FileOptions{DecoderThreads: 4})
	if len(one) != 50 || len(four) != len(one) {
		t.Fatalf("%d pictures with 1 thread, %d with 4: want 50 each", len(one), len(four))
	}
	for i := range one {
		a, b := one[i], four[i]
		if a.PTS != b.PTS {
			t.Errorf("picture %d at %v with 1 thread, %v with 4", i, a.PTS, b.PTS)
		}
		if !samePicture(a.Video, b.Video) {
			t.Errorf("picture %d differs between 1 and 4 decoder threads", i)
		}
	}
}

// samePicture compares the visible pixels of two pictures (not the strides' padding).
func samePicture(a, b *media.Image) bool {
	if a.Width != b.Width || a.Height != b.Height {
		return false
	}
	w, h := a.Width, a.Height
	for r := 0; r < h; r++ {
		if !bytes.Equal(a.Y[r*a.StrideY:r*a.StrideY+w], b.Y[r*b.StrideY:r*b.StrideY+w]) {
			return false
		}
	}
	for r := 0; r < h/2; r++ {
		if !bytes.Equal(a.U[r*a.StrideC:r*a.StrideC+w/2], b.U[r*b.StrideC:r*b.StrideC+w/2]) ||
			!bytes.Equal(a.V[r*a.StrideC:r*a.StrideC+w/2], b.V[r*b.StrideC:r*b.StrideC+w/2]) {
			return false
		}
	}
	return true
}
