package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room/synth"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "record the embedded synthetic room (test patterns, names, tones; speakers take turns)",
		Description: "No network and no external service: N synthetic speakers join a room, each with a\n" +
			"colour pattern and a tone, talking in turn so the active speaker changes. Runs in real time\n" +
			"(like a live room) unless --fast.",
		Flags: append(append(append(append(canvasFlags(), kindFlags()...), streamFlags()...), watchFlags()...),
			&cli.IntFlag{Name: "speakers", Value: 4, Usage: "number of synthetic speakers (1-16)"},
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to record"},
			&cli.DurationFlag{Name: "turn", Value: 3 * time.Second, Usage: "how long each speaker talks"},
			&cli.BoolFlag{Name: "fast", Usage: "run on a virtual clock, as fast as the machine allows"},
			&cli.BoolFlag{Name: "camera", Usage: "speakers look like webcams to the encoder (a panning textured room, a swaying person): what real cameras cost"},
			&cli.StringSliceFlag{Name: "freeze", Usage: "SPEAKER@TIME: speaker number (from 0) stops sending at TIME, e.g. 1@2s (live mode)"},
		),
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.String("output") == "" && len(c.StringSlice("stream")) == 0 && c.String("hls") == "" {
		return fmt.Errorf("%w: demo needs --output FILE.mp4, --hls DIR and/or --stream URL", errUsage)
	}
	if c.Duration("duration") <= 0 {
		return fmt.Errorf("%w: --duration must be positive", errUsage)
	}
	cfg, err := pipelineConfig(c, log)
	if err != nil {
		return err
	}
	if n := c.Int("speakers"); n < 1 || n > 16 {
		return fmt.Errorf("%w: --speakers %d (want 1 to 16)", errUsage, n)
	}
	freeze := map[int]time.Duration{}
	for _, f := range c.StringSlice("freeze") {
		a, b, ok := strings.Cut(f, "@")
		i, err1 := strconv.Atoi(a)
		d, err2 := time.ParseDuration(b)
		if !ok || err1 != nil || err2 != nil || i < 0 || i >= c.Int("speakers") || d < 0 {
			return fmt.Errorf("%w: --freeze %q (want SPEAKER@TIME, e.g. 1@2s)", errUsage, f)
		}
		freeze[i] = d
	}
	if len(freeze) > 0 && c.Bool("fast") {
		return fmt.Errorf("%w: --freeze needs the live clock (drop --fast)", errUsage)
	}

	if err := applyStreamPreset(c, &cfg); err != nil {
		return err
	}
	if c.Bool("fast") && len(c.StringSlice("stream")) > 0 {
		return fmt.Errorf("%w: --stream needs the live clock (drop --fast)", errUsage)
	}
	cfg.Compositor.Offline = c.Bool("fast")
	cfg.Compositor.Duration = c.Duration("duration")
	stopWatch, err := startWatch(c, log)
	if err != nil {
		return err
	}
	defer stopWatch()
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	if err := attachOutputs(c, rec, log); err != nil {
		rec.Close()
		return err
	}
	room, err := synth.Start(rec.Compositor(), synth.Config{
		Speakers: c.Int("speakers"), Turn: c.Duration("turn"), Offline: c.Bool("fast"), Duration: c.Duration("duration"), Camera: c.Bool("camera"),
		Freeze: freeze,
	})
	if err != nil {
		rec.Close()
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	rec.Start()
	select {
	case <-rec.Done():
	case <-c.Done():
		log.Info().Msg("signal: stopping and finalising")
	}
	err = rec.Close()
	room.Close()
	if err != nil {
		return err
	}
	log.Info().Str("output", c.String("output")).Dur("duration", rec.Elapsed()).Msg("demo recorded")
	return nil
}
