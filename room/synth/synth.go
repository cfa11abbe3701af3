// Package synth is an embedded synthetic room: N speakers with distinct
// colour test patterns, names and tones, taking turns to talk so the active
// speaker changes. It feeds the compositor directly (its media is already
// "decoded") and needs no network: `roomcast demo` and the tests use it, and
// `roomcast check-ingest` uses one speaker as its test card.
package synth

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/media"
)

// Palette is the speakers' colours, in order; tests look for them in tiles.
var Palette = []media.YUV{
	media.RGB(220, 40, 40),   // red
	media.RGB(40, 170, 60),   // green
	media.RGB(40, 80, 220),   // blue
	media.RGB(230, 180, 30),  // amber
	media.RGB(160, 60, 200),  // purple
	media.RGB(30, 180, 190),  // teal
	media.RGB(240, 120, 170), // pink
	media.RGB(130, 130, 130), // grey
}

// Names of the speakers, in order.
var Names = []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra",
	"Barbara Liskov", "Ken Thompson", "Frances Allen", "John McCarthy"}

// Tone is speaker i's frequency in Hz (distinct, not harmonics of each other).
func Tone(i int) float64 { return 330 + 110*float64(i) }

// Config describes the room.
type Config struct {
	// Speakers defaults to 4; at most 16 (colours and names repeat past 8).
	Speakers int
	// Width, Height of each speaker's camera; default 640x360.
	Width, Height int
	// FPS of each camera; default 30.
	FPS int
	// Turn is how long each speaker talks before the next; default 3 s.
	// While talking a speaker's tone is loud, otherwise it murmurs at -30 dB.
	Turn time.Duration
	// Offline pushes as fast as the compositor takes it (virtual clock).
	Offline bool
	// Duration of the media each speaker produces; 0 = until Close.
	Duration time.Duration
	// Busy fills the pictures with moving noise around a centre patch of the
	// speaker's colour, so the encoder needs its whole bitrate (a test card
	// that measures what an ingest link carries).
	Busy bool
	// Camera makes each picture look like a webcam to the encoder: a
	// textured background (a room: soft shapes and fine detail) that the
	// "camera" pans and shakes by a few pixels, a person-shaped patch of
	// the speaker's colour that sways and nods at the centre, and the ±1
	// of noise a camera picture keeps after the sender's encoder. Motion estimation finds most of it, as
	// with real cameras; unlike Busy's noise, which no encoder can predict.
	Camera bool
	// Names overrides the speakers' names (in order).
	Names []string
	// Freeze makes speaker i stop sending anything (pictures and sound)
	// from media time Freeze[i] on, like a peer whose network froze.
	Freeze map[int]time.Duration
}

// Room runs one goroutine per speaker.
type Room struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start adds the speakers to comp and starts producing media.
func Start(comp *compositor.Compositor, cfg Config) (*Room, error) {
	if cfg.Speakers == 0 {
		cfg.Speakers = 4
	}
	if cfg.Speakers < 1 || cfg.Speakers > 16 {
		return nil, fmt.Errorf("synth: %d speakers (want 1 to 16)", cfg.Speakers)
	}
	if cfg.Width == 0 {
		cfg.Width, cfg.Height = 640, 360
	}
	if cfg.FPS == 0 {
		cfg.FPS = 30
	}
	if cfg.Turn == 0 {
		cfg.Turn = 3 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Room{cfg: cfg, ctx: ctx, cancel: cancel}
	start := time.Now()
	for i := 0; i < cfg.Speakers; i++ {
		name := Names[i%len(Names)]
		if i >= len(Names) {
			name = fmt.Sprintf("%s %d", name, i/len(Names)+1)
		}
		if i < len(cfg.Names) {
			name = cfg.Names[i]
		}
		in := comp.AddInput(fmt.Sprintf("synth-%d", i), name, compositor.InputOptions{})
		r.wg.Add(1)
		go r.speak(in, i, start)
	}
	return r, nil
}

// Close stops the speakers and waits for them. Idempotent.
func (r *Room) Close() {
	r.once.Do(r.cancel)
	r.wg.Wait()
}

// Talking reports which speaker talks at media time t.
func (r *Room) Talking(t time.Duration) int {
	return int(t/r.cfg.Turn) % r.cfg.Speakers
}

func (r *Room) speak(in *compositor.Input, i int, start time.Time) {
	defer r.wg.Done()
	defer in.EndOfStream()
	cfg := r.cfg
	var sample int64 // next audio sample frame
	// One second of the tone, loud and murmured: every Tone is a whole
	// number of hertz, so the second repeats exactly.
	loud, quiet := toneTable(Tone(i), 0.4), toneTable(Tone(i), 0.02)
	var cam *camera
	if cfg.Camera {
		cam = newCamera(cfg.Width, cfg.Height, Palette[i%len(Palette)], uint64(i)+1)
	}
	for f := int64(0); ; f++ {
		// Exact instants (f/FPS, not f times a rounded frame duration):
		// a turn that starts on a frame starts on that frame, for the
		// pictures and the sound.
		t := time.Duration(f) * time.Second / time.Duration(cfg.FPS)
		if cfg.Duration > 0 && t >= cfg.Duration {
			return
		}
		if ft, ok := cfg.Freeze[i]; ok && t >= ft {
			// Frozen: silent until Close, without ending the stream.
			<-r.ctx.Done()
			return
		}
		if !cfg.Offline {
			if d := time.Until(start.Add(t)); d > 0 {
				select {
				case <-r.ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		if r.ctx.Err() != nil {
			return
		}
		var img *media.Image
		if cfg.Camera {
			img = cam.frame(f)
		} else {
			img = Pattern(cfg.Width, cfg.Height, Palette[i%len(Palette)], f)
		}
		if cfg.Busy {
			noise(img, uint64(f)*0x9E3779B97F4A7C15+uint64(i)+1)
		}
		in.PushVideo(img, t)
		// Sound up to the end of this frame.
		end := (f + 1) * media.SampleRate / int64(cfg.FPS)
		tone := quiet
		if r.Talking(t) == i {
			tone = loud
		}
		a := make(media.Audio, (end-sample)*media.Channels)
		for k := int64(0); k < end-sample; k++ {
			v := tone[(sample+k)%media.SampleRate]
			a[2*k], a[2*k+1] = v, v
		}
		in.PushAudio(a, time.Duration(sample)*time.Second/media.SampleRate)
		sample = end
	}
}

// toneTable is one second of amp·sin at hz, which must be whole.
func toneTable(hz, amp float64) []float32 {
	t := make([]float32, media.SampleRate)
	w := 2 * math.Pi * hz / media.SampleRate
	for k := range t {
		t[k] = float32(amp * math.Sin(w*float64(k)))
	}
	return t
}

// Pattern draws frame f of a speaker's camera: a solid colour field (tests
// find it at the tile's centre) with a white bar sweeping along the top
// eighth, so the picture visibly moves.
func Pattern(w, h int, c media.YUV, f int64) *media.Image {
	m := media.GetImage(w, h)
	m.Fill(c)
	band := h / 8
	bw := w / 16
	x := int(f*int64(w)/60) % (w - bw)
	m.FillRect(x, 0, bw, band, media.RGB(250, 250, 250))
	return m
}

// noise overwrites the luma outside the centre half of the picture with
// xorshift noise: incompressible detail that changes every frame.
func noise(m *media.Image, seed uint64) {
	x := seed | 1
	x0, x1 := m.Width/4, m.Width*3/4
	y0, y1 := m.Height/4, m.Height*3/4
	for y := 0; y < m.Height; y++ {
		row := m.Y[y*m.StrideY : y*m.StrideY+m.Width]
		for i := 0; i < len(row); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for k := 0; k < 8 && i+k < len(row); k++ {
				if y >= y0 && y < y1 && i+k >= x0 && i+k < x1 {
					continue
				}
				row[i+k] = 16 + uint8(x>>(8*k))%220
			}
		}
	}
}
