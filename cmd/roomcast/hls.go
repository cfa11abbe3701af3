package main

import (
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/hls"
	"github.com/roomcast/roomcast/session"
)

// hlsFlags: the HLS output, for every command that produces output.
func hlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "hls", Usage: "also write HTTP Live Streaming into `DIR` (fMP4 segments + index.m3u8: live window, then the whole replay)"},
		&cli.IntFlag{Name: "hls-window", Value: hls.DefaultWindow, Usage: "segments listed in the live playlist"},
		&cli.BoolFlag{Name: "hls-window-only", Usage: "delete segments that left the live window (no replay)"},
		&cli.DurationFlag{Name: "hls-segment", Value: hls.DefaultSegmentDuration, Usage: "segment duration (cut at the next keyframe; not shorter than --keyint)"},
	}
}

// hlsConfig reads the --hls flags (a zero HLS when --hls is absent).
func hlsConfig(c *cli.Context) session.HLS {
	if c.String("hls") == "" {
		return session.HLS{}
	}
	return session.HLS{Dir: c.String("hls"), Window: c.Int("hls-window"), WindowOnly: c.Bool("hls-window-only"),
		SegmentDuration: c.Duration("hls-segment"), KeyframeInterval: c.Duration("keyint")}
}
