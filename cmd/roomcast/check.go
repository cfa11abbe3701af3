package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room/synth"
	"github.com/roomcast/roomcast/rtmp"
)

func checkIngestCommand() *cli.Command {
	return &cli.Command{
		Name:      "check-ingest",
		Usage:     "push a test card with a tone to an RTMP(S) ingest and report whether it was accepted",
		ArgsUsage: "URL",
		Description: "What a host runs the day before the event: is the key accepted, does the stream stay up,\n" +
			"which chunk size and bitrate. The URL takes ${ENV_VAR} and ${file:/path} references for the key.\n" +
			"Exit 0 when accepted, 6 when not.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 10 * time.Second, Usage: "how long to push"},
			&cli.StringFlag{Name: "stream-preset", Value: "generic", Usage: "destination settings (see record --help)"},
			&cli.BoolFlag{Name: "insecure-tls", Usage: "accept any rtmps certificate (self-signed test servers only)"},
			&cli.StringFlag{Name: "size", Value: "1280x720", Usage: "test card size"},
			&cli.IntFlag{Name: "fps", Value: 30, Usage: "frame rate"},
			&cli.StringFlag{Name: "video-bitrate", Usage: "override the preset's video bitrate"},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: runCheckIngest,
	}
}

func runCheckIngest(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return fmt.Errorf("%w: check-ingest takes one URL", errUsage)
	}
	d := c.Duration("duration")
	if d <= 0 || d > 10*time.Minute {
		return fmt.Errorf("%w: --duration %s (want up to 10m)", errUsage, d)
	}
	w, h, err := parseSize(c.String("size"))
	if err != nil {
		return err
	}
	vb, err := parseBitrate(c.String("video-bitrate"))
	if err != nil {
		return err
	}
	p, ok := rtmp.PresetByName(c.String("stream-preset"))
	if !ok {
		return fmt.Errorf("%w: --stream-preset %q", errUsage, c.String("stream-preset"))
	}
	if vb == 0 {
		vb = p.VideoBitrate(h, c.Int("fps"))
	}
	// The test card is made offline, as fast as the publisher takes it:
	// CheckIngest paces the packets in real time itself.
	cfg := recorder.Config{Log: log}
	cfg.Compositor.Width, cfg.Compositor.Height, cfg.Compositor.FPS = w, h, c.Int("fps")
	cfg.Compositor.Offline = true
	cfg.Compositor.Duration = d + time.Second
	cfg.Encoding = recorder.Encoding{Preset: "stream", VideoBitrate: vb, KeyframeInterval: p.KeyframeInterval,
		Profile: p.Profile, AudioBitrate: p.AudioBitrate}
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	src := &packetQueue{ch: make(chan media.Packet, 64), done: rec.Done(), stopped: make(chan struct{})}
	rec.AddOutput("check", src, true)
	room, err := synth.Start(rec.Compositor(), synth.Config{Speakers: 1, Offline: true, Duration: d + time.Second,
		Names: []string{"roomcast test card"}, Width: 640, Height: 360, Busy: true})
	if err != nil {
		rec.Close()
		return err
	}
	pub, err := publisher(c, c.Args().First(), rec.Info(), nil, log)
	if err != nil {
		rec.Close()
		room.Close()
		return err
	}
	rec.Start()
	ctx, cancel := context.WithTimeout(c.Context, d+time.Minute)
	defer cancel()
	report, cerr := rtmp.CheckIngest(ctx, pub, src, d)
	src.stop()
	rec.Close()
	room.Close()
	printReport(c, report)
	if cerr != nil {
		return &exitError{exitStream, cerr}
	}
	return nil
}

func printReport(c *cli.Context, r *rtmp.IngestReport) {
	if r == nil {
		return
	}
	if c.Bool("json") {
		v := struct {
			*rtmp.IngestReport
			Err string `json:"Err,omitempty"`
		}{IngestReport: r}
		if r.Err != nil {
			v.Err = r.Err.Error()
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return
	}
	verdict := "ACCEPTED"
	if !r.Accepted {
		verdict = "NOT ACCEPTED"
	}
	fmt.Printf("ingest %s: %s\n", r.Destination, verdict)
	if r.Err != nil {
		fmt.Printf("  reason:            %v\n", r.Err)
	}
	if r.ServerVersion != "" {
		fmt.Printf("  server:            %s\n", r.ServerVersion)
	}
	fmt.Printf("  connect time:      %s\n", r.ConnectTime.Round(time.Millisecond))
	fmt.Printf("  chunk size:        server %d, roomcast %d\n", r.ServerChunkSize, r.ClientChunkSize)
	fmt.Printf("  pushed:            %.1f s of media in %.1f s, %d packets\n", r.Sent.Seconds(), r.Elapsed.Seconds(), r.Packets)
	fmt.Printf("  achieved bitrate:  %.0f kb/s\n", r.Bitrate/1000)
	if r.DroppedVideo+r.DroppedAudio > 0 {
		fmt.Printf("  dropped:           %d video, %d audio packets\n", r.DroppedVideo, r.DroppedAudio)
	}
}

// packetQueue turns the recorder's pushed packets into CheckIngest's pulled
// PacketSource; the bounded channel holds the offline compositor back.
type packetQueue struct {
	ch      chan media.Packet
	done    <-chan struct{}
	stopped chan struct{}
}

func (q *packetQueue) WritePacket(p media.Packet) error {
	select {
	case q.ch <- p:
		return nil
	case <-q.stopped:
		return nil // the check is over; the rest is dropped
	}
}

func (q *packetQueue) NextPacket() (media.Packet, error) {
	select {
	case p := <-q.ch:
		return p, nil
	case <-q.done:
		select {
		case p := <-q.ch:
			return p, nil
		default:
			return media.Packet{}, io.EOF
		}
	}
}

// stop releases a recorder blocked on a full queue once the check is over.
func (q *packetQueue) stop() { close(q.stopped) }

func (q *packetQueue) Close() error { return nil }
