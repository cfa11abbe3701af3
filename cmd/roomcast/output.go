package main

import (
	"fmt"
	"image"
	_ "image/jpeg" // background images
	_ "image/png"
	"os"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/atrest"
	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/session"
)

// canvasFlags: what the output looks like and how it is encoded; shared by
// every command that produces output.
func canvasFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "MP4 file to write (fragmented while recording, finalised on a clean stop)"},
		&cli.BoolFlag{Name: "overwrite", Aliases: []string{"y"}, Usage: "replace an existing output file (default: refuse)"},
		&cli.StringFlag{Name: "layout", Value: "grid", Usage: "grid, speaker, single or screenshare"},
		&cli.StringFlag{Name: "fit", Value: "letterbox", Usage: "letterbox or crop"},
		&cli.StringFlag{Name: "size", Value: "1280x720", Usage: "canvas WIDTHxHEIGHT, or 720p / 1080p"},
		&cli.IntFlag{Name: "fps", Value: 30, Usage: "output frame rate"},
		&cli.IntFlag{Name: "gap", Value: 0, Usage: "pixels between tiles"},
		&cli.StringFlag{Name: "background", Value: "#202228", Usage: "canvas colour (#rrggbb) or a PNG/JPEG image file"},
		&cli.StringFlag{Name: "label-style", Value: "name", Usage: "what tiles show of a participant's name: name, initials or none"},
		&cli.BoolFlag{Name: "no-labels", Usage: "do not draw names on tiles (same as --label-style none)"},
		&cli.StringFlag{Name: "preset", Value: "record", Usage: "encoder preset: record (quality) or stream (CBR-like, no B-frames)"},
		&cli.StringFlag{Name: "x264-preset", Value: "veryfast", Usage: "libx264 speed preset"},
		&cli.StringFlag{Name: "video-bitrate", Usage: "video bitrate, e.g. 3M or 2500k (cap for record, target for stream)"},
		&cli.StringFlag{Name: "audio-bitrate", Value: "128k", Usage: "AAC bitrate"},
		&cli.DurationFlag{Name: "keyint", Value: 2 * time.Second, Usage: "keyframe interval"},
		&cli.IntFlag{Name: "encoder-threads", Usage: "libx264 threads (0: x264 decides; fewer threads use less memory)"},
		&cli.StringSliceFlag{Name: "encrypt-to", Usage: "encrypt the recording as it is written to this age public key (age1…; repeatable); decrypt with `roomcast decrypt` or `age -d`"},
		&cli.StringSliceFlag{Name: "encrypt-to-file", Usage: "encrypt to every age public key in this recipients file (one a line, # comments; repeatable)"},
	}, hlsFlags()...)
}

// kindFlags choose a single-track output (record and demo).
func kindFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "audio-only", Usage: "record/stream sound only: no video track, no camera decoded, no video encoder"},
		&cli.BoolFlag{Name: "video-only", Usage: "record/stream pictures only: no audio track, no microphone decoded, no audio encoder"},
	}
}

// recipients reads --encrypt-to and --encrypt-to-file; none means a plain
// MP4.
func recipients(c *cli.Context) ([]age.Recipient, error) {
	rs, err := atrest.Recipients(c.StringSlice("encrypt-to"), c.StringSlice("encrypt-to-file"))
	if err != nil {
		return nil, fmt.Errorf("%w: --encrypt-to: %v", errUsage, err)
	}
	if len(rs) > 0 && c.String("output") == "" {
		return nil, fmt.Errorf("%w: --encrypt-to needs --output (streams are not encrypted at rest)", errUsage)
	}
	return rs, nil
}

// pipelineConfig reads the canvas flags.
func pipelineConfig(c *cli.Context, log zerolog.Logger) (recorder.Config, error) {
	var cfg recorder.Config
	kind, err := layout.ParseKind(c.String("layout"))
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	fit, err := layout.ParseFit(c.String("fit"))
	if err != nil {
		return cfg, fmt.Errorf("%w: %v", errUsage, err)
	}
	w, h, err := parseSize(c.String("size"))
	if err != nil {
		return cfg, err
	}
	if err := checkNumbers(c); err != nil {
		return cfg, err
	}
	if _, err := recipients(c); err != nil { // fail before joining or decoding anything
		return cfg, err
	}
	labels, err := compositor.ParseLabelStyle(c.String("label-style"))
	if err != nil {
		return cfg, fmt.Errorf("%w: --%v", errUsage, err)
	}
	if c.Bool("audio-only") && c.Bool("video-only") {
		return cfg, fmt.Errorf("%w: --audio-only and --video-only together leave nothing to record", errUsage)
	}
	cc := compositor.Config{Width: w, Height: h, FPS: c.Int("fps"), Layout: kind, Fit: fit, Gap: c.Int("gap"),
		Labels: labels, NoLabels: c.Bool("no-labels"), NoVideo: c.Bool("audio-only"), NoAudio: c.Bool("video-only")}
	if err := parseBackground(c.String("background"), &cc); err != nil {
		return cfg, err
	}
	vb, err := parseBitrate(c.String("video-bitrate"))
	if err != nil {
		return cfg, err
	}
	ab, err := parseBitrate(c.String("audio-bitrate"))
	if err != nil {
		return cfg, err
	}
	if vb != 0 && vb < 50_000 {
		return cfg, fmt.Errorf("%w: --video-bitrate %s is below 50k", errUsage, c.String("video-bitrate"))
	}
	if ab < 16_000 || ab > 512_000 {
		return cfg, fmt.Errorf("%w: --audio-bitrate %s (want 16k to 512k)", errUsage, c.String("audio-bitrate"))
	}
	switch p := c.String("preset"); p {
	case "record", "stream":
	default:
		return cfg, fmt.Errorf("%w: --preset %q (want record or stream)", errUsage, p)
	}
	cfg = recorder.Config{Compositor: cc, Log: log, Encoding: recorder.Encoding{
		Preset: c.String("preset"), X264Preset: c.String("x264-preset"), VideoBitrate: vb, AudioBitrate: ab,
		KeyframeInterval: c.Duration("keyint"), Threads: c.Int("encoder-threads"),
	}}
	return cfg, nil
}

// mustBePositive names the duration flags for which 0 means nothing sensible.
var mustBePositive = map[string]bool{"keyint": true, "connect-timeout": true, "stream-give-up": true, "turn": true}

// checkNumbers rejects the numeric flags that the code below would take
// silently: a frame rate out of 1–120, negative durations (and zero where
// zero means nothing), a keyframe interval over a minute, a negative gap or
// thread count.
func checkNumbers(c *cli.Context) error {
	if f := c.Int("fps"); f < 1 || f > 120 {
		return fmt.Errorf("%w: --fps %d (want 1 to 120)", errUsage, f)
	}
	if g := c.Int("gap"); g < 0 || g > 200 {
		return fmt.Errorf("%w: --gap %d (want 0 to 200 pixels)", errUsage, g)
	}
	if n := c.Int("encoder-threads"); n < 0 || n > 64 {
		return fmt.Errorf("%w: --encoder-threads %d (want 0 to 64)", errUsage, n)
	}
	if k := c.Duration("keyint"); k > time.Minute {
		return fmt.Errorf("%w: --keyint %v (want at most 1m)", errUsage, k)
	}
	for _, f := range c.Command.Flags {
		if _, ok := f.(*cli.DurationFlag); !ok {
			continue
		}
		name := f.Names()[0]
		d := c.Duration(name)
		if d < 0 || (d == 0 && mustBePositive[name]) {
			return fmt.Errorf("%w: --%s %v (want a positive duration such as 10s)", errUsage, name, d)
		}
	}
	return nil
}

func parseSize(s string) (int, int, error) {
	switch strings.ToLower(s) {
	case "720p":
		return 1280, 720, nil
	case "1080p":
		return 1920, 1080, nil
	}
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || w < 16 || h < 16 || w > 7680 || h > 4320 {
		return 0, 0, fmt.Errorf("%w: --size %q (want WIDTHxHEIGHT between 16x16 and 7680x4320, or 720p/1080p)", errUsage, s)
	}
	return w, h, nil
}

func parseBitrate(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	mul := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mul, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mul, s = 1e6, s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v*mul > 100e6 {
		return 0, fmt.Errorf("%w: bitrate %q (want e.g. 128k or 3M)", errUsage, s)
	}
	return int(v * mul), nil
}

func parseBackground(s string, cc *compositor.Config) error {
	if strings.HasPrefix(s, "#") && len(s) == 7 {
		v, err := strconv.ParseUint(s[1:], 16, 32)
		if err != nil {
			return fmt.Errorf("%w: --background %q", errUsage, s)
		}
		c := media.RGB(uint8(v>>16), uint8(v>>8), uint8(v))
		cc.Background = &c
		return nil
	}
	f, err := os.Open(s)
	if err != nil {
		return fmt.Errorf("%w: --background: %v", errUsage, err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return fmt.Errorf("%w: --background %s: not a PNG or JPEG image: %v", errUsage, s, err)
	}
	cc.BackgroundImage = fromImage(img)
	return nil
}

// fromImage converts a decoded still image to YUV 4:2:0.
func fromImage(img image.Image) *media.Image {
	b := img.Bounds()
	m := media.NewImage(b.Dx(), b.Dy())
	for y := 0; y < m.Height; y++ {
		for x := 0; x < m.Width; x++ {
			r, g, bl, _ := img.At(b.Min.X+min(x, b.Dx()-1), b.Min.Y+min(y, b.Dy()-1)).RGBA()
			c := media.RGB(uint8(r>>8), uint8(g>>8), uint8(bl>>8))
			m.Y[y*m.StrideY+x] = c.Y
			if x%2 == 0 && y%2 == 0 {
				m.U[(y/2)*m.StrideC+x/2] = c.U
				m.V[(y/2)*m.StrideC+x/2] = c.V
			}
		}
	}
	return m
}

// outputsConfig reads the output flags (--output, --overwrite, --hls…, --stream…).
func outputsConfig(c *cli.Context) session.Outputs {
	// Recipients were checked by pipelineConfig (a usage error there).
	rs, _ := recipients(c)
	o := session.Outputs{MP4: c.String("output"), Overwrite: c.Bool("overwrite"), Encrypt: rs, HLS: hlsConfig(c)}
	for _, v := range c.StringSlice("stream") {
		o.Streams = append(o.Streams, session.Stream{URL: v, InsecureTLS: c.Bool("insecure-tls"),
			GiveUpAfter: c.Duration("stream-give-up")})
	}
	return o
}

// attachMP4 creates the recording file and attaches it as the critical output.
func attachMP4(c *cli.Context, rec *recorder.Recorder, path string, overwrite bool, log zerolog.Logger) error {
	if path == "" {
		return nil
	}
	rs, err := recipients(c)
	if err != nil {
		return err
	}
	_, err = session.Outputs{MP4: path, Overwrite: overwrite, Encrypt: rs}.Attach(c.Context, rec, log)
	return sessionError(err)
}

// attachOutputs attaches every output the flags ask for: the recording
// first, then the streams (which must all start: exit 6 otherwise).
func attachOutputs(c *cli.Context, rec *recorder.Recorder, log zerolog.Logger) error {
	_, err := outputsConfig(c).Attach(c.Context, rec, log)
	return sessionError(err)
}
