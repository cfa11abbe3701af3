package av

import (
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/media"
)

func TestSubAligns(t *testing.T) {
	m := media.NewImage(64, 48)
	s := m.Sub(3, 5, 11, 9)
	if s.Width != 10 || s.Height != 8 || s.StrideY != 64 || s.StrideC != 32 {
		t.Fatalf("sub %dx%d strides %d/%d", s.Width, s.Height, s.StrideY, s.StrideC)
	}
	red := media.RGB(255, 0, 0)
	s.Fill(red)
	if m.At(2, 4) != red || m.At(11, 11) != red || m.At(12, 4) == red || m.At(2, 12) == red || m.At(1, 4) == red {
		t.Error("sub view does not map onto (2,4)-(12,12) of the parent")
	}
	if c := m.Sub(60, 40, 100, 100); c.Width != 4 || c.Height != 8 {
		t.Errorf("clipped sub %dx%d, want 4x8", c.Width, c.Height)
	}
}

func TestScaleIntoView(t *testing.T) {
	sc := NewScaler()
	defer sc.Close()
	red, blue, grey := media.RGB(255, 0, 0), media.RGB(0, 0, 255), media.RGB(128, 128, 128)

	// Source: a 640x360 picture whose left half is red, right half blue;
	// we take only the red half as a view.
	src := media.NewImage(640, 360)
	src.Fill(blue)
	src.FillRect(0, 0, 320, 360, red)
	view := src.Sub(0, 0, 320, 360)

	canvas := media.NewImage(1280, 720)
	canvas.Fill(grey)
	tile := canvas.Sub(100, 50, 480, 270)
	if err := sc.Scale(tile, view); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]int{{100, 50}, {579, 319}, {340, 180}, {102, 318}} {
		colourNear(t, canvas.At(p[0], p[1]), red, 2, "inside tile")
	}
	for _, p := range [][2]int{{99, 50}, {580, 200}, {300, 49}, {300, 320}, {0, 0}, {1279, 719}} {
		if c := canvas.At(p[0], p[1]); c != grey {
			t.Errorf("outside tile at %v: %v, want untouched grey", p, c)
		}
	}
	// Reuse and a new size pair.
	if err := sc.Scale(canvas.Sub(0, 0, 64, 36), src); err != nil {
		t.Fatal(err)
	}
	colourNear(t, canvas.At(2, 2), red, 2, "left")
	colourNear(t, canvas.At(60, 30), blue, 2, "right")
	if len(sc.ctxs) != 2 {
		t.Errorf("%d cached contexts, want 2", len(sc.ctxs))
	}
	// Same size: a copy.
	same := media.NewImage(320, 360)
	if err := sc.Scale(same, view); err != nil {
		t.Fatal(err)
	}
	if same.At(319, 359) != red {
		t.Error("same-size copy")
	}
	if err := sc.Scale(media.NewImage(2, 2), &media.Image{Width: 0, Height: 0}); err == nil {
		t.Error("empty source accepted")
	}
}

func benchScale(b *testing.B, sw, sh, dw, dh int) {
	sc := NewScaler()
	defer sc.Close()
	src := media.NewImage(sw, sh)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			src.Y[y*src.StrideY+x] = byte(x + y)
		}
	}
	dst := media.NewImage(dw, dh)
	b.SetBytes(int64(sw * sh * 3 / 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sc.Scale(dst, src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScale640x360To480x270(b *testing.B)   { benchScale(b, 640, 360, 480, 270) }
func BenchmarkScale1920x1080To640x360(b *testing.B) { benchScale(b, 1920, 1080, 640, 360) }

// BenchmarkScaleIntoTile enlarges a 640x360 camera into the 960x540 main
// tile of a 1280x720 canvas, through a view, as the compositor does.
func BenchmarkScaleIntoTile(b *testing.B) {
	sc := NewScaler()
	defer sc.Close()
	src := media.NewImage(640, 360)
	canvas := media.NewImage(1280, 720)
	tile := canvas.Sub(160, 0, 960, 540)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sc.Scale(tile, src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode720p(b *testing.B) {
	e, err := NewVideoEncoder(VideoEncoderConfig{Width: 1280, Height: 720, FPS: 30, X264Preset: "veryfast"})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	// A moving picture so x264 has real work: testsrc2 frames.
	path := ffmpeg(b, "src.mkv", "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30:d=2", "-c:v", "rawvideo", "-pix_fmt", "yuv420p")
	_, items, _ := readAll(b, path)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.Encode(items[i%len(items)].Video, time.Duration(i)*time.Second/30); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := e.Flush(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkDecode360p(b *testing.B) {
	path := ffmpeg(b, "src.h264", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=4",
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast", "-b:v", "800k", "-f", "h264")
	pkts := demux(b, path, astiav.MediaTypeVideo)
	d, err := NewVideoDecoder("h264")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(pkts)
		if k == 0 && i > 0 {
			d.Flush()
		}
		if _, err := d.Decode(pkts[k].data, time.Duration(i)*time.Second/30); err != nil {
			b.Fatal(err)
		}
	}
}
