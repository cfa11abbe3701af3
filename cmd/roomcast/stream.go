package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/rtmp"
)

// streamFlags: RTMP(S) destinations, for the live commands.
func streamFlags() []cli.Flag {
	names := make([]string, len(rtmp.Presets))
	for i, p := range rtmp.Presets {
		names[i] = p.Name
	}
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "stream", Usage: "RTMP(S) destination, repeatable; keep the key out of the command line with " +
			"rtmp://host/live/${ENV_VAR} or ${file:/path/to/key} (single-quote it in the shell)"},
		&cli.StringFlag{Name: "stream-preset", Value: "generic", Usage: "destination settings: " + strings.Join(names, ", ")},
		&cli.BoolFlag{Name: "insecure-tls", Usage: "accept any rtmps certificate (self-signed test servers only)"},
		&cli.DurationFlag{Name: "stream-give-up", Value: 10 * time.Minute, Usage: "stop reconnecting a destination after an outage this long"},
	}
}

// applyStreamPreset makes the one shared encode fit the ingest: CBR-like,
// no B-frames, the preset's profile, keyframe interval and bitrates, unless
// the user set them explicitly.
func applyStreamPreset(c *cli.Context, cfg *recorder.Config) error {
	if len(c.StringSlice("stream")) == 0 {
		return nil
	}
	p, ok := rtmp.PresetByName(c.String("stream-preset"))
	if !ok {
		return fmt.Errorf("%w: --stream-preset %q", errUsage, c.String("stream-preset"))
	}
	e := &cfg.Encoding
	if !c.IsSet("preset") {
		e.Preset = "stream"
	}
	if e.VideoBitrate == 0 {
		e.VideoBitrate = p.VideoBitrate(cfg.Compositor.Height, cfg.Compositor.FPS)
	}
	if !c.IsSet("keyint") && p.KeyframeInterval > 0 {
		e.KeyframeInterval = p.KeyframeInterval
	}
	if e.Profile == "" {
		e.Profile = p.Profile
	}
	if !c.IsSet("audio-bitrate") && p.AudioBitrate > 0 {
		e.AudioBitrate = p.AudioBitrate
	}
	return nil
}

// publisher builds (not starts) a Publisher for one --stream value.
func publisher(c *cli.Context, value string, info media.StreamInfo, rec *recorder.Recorder, log zerolog.Logger) (*rtmp.Publisher, error) {
	dest, err := rtmp.ResolveURL(value, rtmp.KeyLookup{})
	if err != nil {
		return nil, fmt.Errorf("%w: --stream: %v", errUsage, err)
	}
	p := &rtmp.Publisher{
		Dest: dest, Info: info, InsecureSkipVerify: c.Bool("insecure-tls"), Logger: log,
		Backoff: rtmp.Backoff{GiveUpAfter: c.Duration("stream-give-up")},
	}
	if rec != nil {
		p.RequestKeyframe = rec.RequestKeyframe
	}
	return p, nil
}
