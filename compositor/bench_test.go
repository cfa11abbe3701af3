package compositor

// The composite step on its own: what one output frame costs the compositor
// (layout, scaling every tile with the real swscale Scaler, blits, labels),
// with every input delivering a new 640x360 picture per frame as a live
// camera does. av imports only media, so this internal test may use it; it
// makes the compositor's test binary link FFmpeg (run through make).

import (
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/media"
)

type discardSink struct{}

func (discardSink) WriteVideo(*media.Image, time.Duration) error { return nil }
func (discardSink) WriteAudio(media.Audio, time.Duration) error  { return nil }

// camera draws a 640x360 picture: a colour field with a white bar whose
// position depends on f, so consecutive pictures differ.
func camera(c media.YUV, f int) *media.Image {
	m := media.NewImage(640, 360)
	m.Fill(c)
	m.FillRect((f*40)%600, 0, 40, 44, media.RGB(250, 250, 250))
	return m
}

func BenchmarkComposite(b *testing.B) {
	for _, size := range []struct{ w, h int }{{1280, 720}, {1920, 1080}} {
		for _, tiles := range []int{4, 9, 16} {
			b.Run(fmt.Sprintf("%dp/%dtiles", size.h, tiles), func(b *testing.B) {
				benchComposite(b, size.w, size.h, tiles)
			})
		}
	}
}

func benchComposite(b *testing.B, w, h, tiles int) {
	sc := av.NewScaler()
	defer sc.Close()
	c, err := New(Config{Width: w, Height: h, Scaler: sc}, discardSink{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ins := make([]*Input, tiles)
	pics := make([][2]*media.Image, tiles)
	for i := range ins {
		ins[i] = c.AddInput(fmt.Sprintf("cam-%d", i), fmt.Sprintf("Speaker number %d", i+1), InputOptions{})
		col := media.RGB(uint8(40+13*i), uint8(200-9*i), uint8(60+11*i))
		pics[i] = [2]*media.Image{camera(col, 0), camera(col, 1)}
	}
	frame := time.Second / 30
	var t time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i, in := range ins {
			in.PushVideo(pics[i][n%2], t)
		}
		if err := c.renderVideo(t); err != nil {
			b.Fatal(err)
		}
		t += frame
		n++
	}
	// The share of one core the step takes at 30 fps.
	b.ReportMetric(float64(b.Elapsed())/float64(n)/float64(frame), "cores@30fps")
}
