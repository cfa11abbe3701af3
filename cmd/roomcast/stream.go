package main

import (
	"context"
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

// attachStreams starts every destination and attaches it to the recorder.
// A destination that cannot start is a clear error (exit 6): the host must
// fix the key or URL before the event. Later failures reconnect and never
// disturb the recording or the other destinations.
func attachStreams(c *cli.Context, rec *recorder.Recorder, log zerolog.Logger) error {
	var pubs []*rtmp.Publisher
	for _, v := range c.StringSlice("stream") {
		p, err := publisher(c, v, rec.Info(), rec, log)
		if err != nil {
			return err
		}
		pubs = append(pubs, p)
	}
	if len(pubs) == 0 {
		return nil
	}
	f := rtmp.NewFanout(pubs...)
	ctx, cancel := context.WithTimeout(c.Context, 30*time.Second)
	defer cancel()
	if _, err := f.Start(ctx); err != nil {
		f.Close()
		return &exitError{exitStream, err}
	}
	for _, p := range pubs {
		rec.AddOutput("rtmp "+p.Dest.String(), streamOutput{p}, false)
	}
	return nil
}

// streamOutput adapts a Publisher to recorder.Output: writes never block;
// once the Publisher has given up, the recorder drops it.
type streamOutput struct{ p *rtmp.Publisher }

func (s streamOutput) WritePacket(pkt media.Packet) error {
	select {
	case <-s.p.Done():
		if err := s.p.Err(); err != nil {
			return err
		}
		return rtmp.ErrClosed
	default:
	}
	s.p.WritePacket(pkt)
	return nil
}

func (s streamOutput) Close() error { return s.p.Close() }
