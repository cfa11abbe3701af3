package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/registry"
)

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:    "record",
		Aliases: []string{"stream"},
		Usage:   "join a LiveKit room as a hidden participant and record (--output) and/or stream (--stream) it live",
		Description: "--room is the LiveKit server URL with the room name as its last path segment\n" +
			"(wss://livekit.example.org/weekly-webinar), or just the room name with --livekit-url.\n" +
			"Credentials: an access token (--token-file, or $LIVEKIT_TOKEN), or an API key and secret\n" +
			"($LIVEKIT_API_KEY, $LIVEKIT_API_SECRET or --api-secret-file) from which roomcast mints a\n" +
			"short-lived hidden recorder token. Secrets on the command line are visible to other users\n" +
			"of the machine (ps): prefer the environment or a file.\n" +
			"Stops on --duration, SIGINT/SIGTERM, when the room closes, or when it has been empty for\n" +
			"--empty-timeout; the MP4 is finalised in every case.",
		Flags: append(append(canvasFlags(), streamFlags()...),
			&cli.StringFlag{Name: "room", Required: true, Usage: "LiveKit server URL + room (wss://host/room), or a room name with --livekit-url"},
			&cli.StringFlag{Name: "livekit-url", EnvVars: []string{"LIVEKIT_URL"}, Usage: "LiveKit server URL when --room is a bare name"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"LIVEKIT_TOKEN"}, Usage: "access token (prefer the environment or --token-file)"},
			&cli.StringFlag{Name: "token-file", Usage: "file holding the access token"},
			&cli.StringFlag{Name: "api-key", EnvVars: []string{"LIVEKIT_API_KEY"}, Usage: "API key to mint roomcast's own token"},
			&cli.StringFlag{Name: "api-secret", EnvVars: []string{"LIVEKIT_API_SECRET"}, Usage: "API secret (prefer the environment or --api-secret-file)"},
			&cli.StringFlag{Name: "api-secret-file", Usage: "file holding the API secret"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this much recording (0: no limit)"},
			&cli.DurationFlag{Name: "wait-first-speaker", Usage: "start recording only when the first speaker publishes; give up (exit 5) after this long (0: record at once)"},
			&cli.DurationFlag{Name: "empty-timeout", Value: 60 * time.Second, Usage: "stop when the room has been empty this long (0: never)"},
			&cli.DurationFlag{Name: "connect-timeout", Value: 10 * time.Second, Usage: "give up joining after this long"},
		),
		Action: runRecord,
	}
}

// secret returns a flag's value or the trimmed content of its file flag.
func secret(c *cli.Context, flag, fileFlag string) (string, error) {
	if p := c.String(fileFlag); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%w: --%s: %v", errUsage, fileFlag, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return c.String(flag), nil
}

// roomURL is the room to join: --room when it is a URL (wss://host/room,
// or any scheme room/registry knows), else a bare LiveKit room name joined
// to --livekit-url.
func roomURL(c *cli.Context) (string, error) {
	r := c.String("room")
	if strings.Contains(r, "://") {
		if u, err := url.Parse(r); err != nil || u.Host == "" {
			return "", fmt.Errorf("%w: --room %q is not a URL", errUsage, r)
		}
		return r, nil
	}
	if _, ok := registry.Lookup(registry.Scheme(r)); ok {
		return r, nil
	}
	server := strings.TrimSuffix(c.String("livekit-url"), "/")
	if server == "" || r == "" {
		return "", fmt.Errorf("%w: --room needs a server URL and a room name (wss://host/room, or --livekit-url with a bare name)", errUsage)
	}
	return server + "/" + r, nil
}

func runRecord(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	roomAddr, err := roomURL(c)
	if err != nil {
		return err
	}
	token, err := secret(c, "token", "token-file")
	if err != nil {
		return err
	}
	apiSecret, err := secret(c, "api-secret", "api-secret-file")
	if err != nil {
		return err
	}
	if c.String("output") == "" && len(c.StringSlice("stream")) == 0 {
		return fmt.Errorf("%w: record needs --output FILE.mp4 and/or --stream URL", errUsage)
	}
	cfg, err := pipelineConfig(c, log)
	if err != nil {
		return err
	}
	if err := applyStreamPreset(c, &cfg); err != nil {
		return err
	}
	cfg.Compositor.Duration = c.Duration("duration")
	cfg.Compositor.ExternalSpeaker = true
	cfg.Compositor.AutoScreenshare = true
	var live *recorder.RoomSink
	cfg.Compositor.OnTiles = func(t []layout.Tile) { live.OnTiles(t) }
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	live = recorder.NewRoomSink(rec.Compositor(), log)
	rm, err := registry.Open(room.Config{
		URL:            roomAddr,
		Credentials:    room.Credentials{Token: token, APIKey: c.String("api-key"), APISecret: apiSecret},
		ConnectTimeout: c.Duration("connect-timeout"), Handler: live, Logger: log,
	})
	if err != nil {
		rec.Close()
		return roomError(err)
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("connect-timeout")+time.Second)
	err = rm.Start(ctx)
	cancel()
	if err != nil {
		rec.Close()
		rm.Close()
		return roomError(err)
	}
	defer rm.Close()
	log.Info().Str("room", roomName(roomAddr)).Str("identity", rm.Identity()).Msg("joined")

	// Wait for the first speaker if asked.
	if w := c.Duration("wait-first-speaker"); w > 0 {
		timer := time.NewTimer(w)
	wait:
		for {
			select {
			case e := <-live.Events:
				if e.Kind == room.EventFirstSpeaker {
					break wait
				}
			case <-timer.C:
				rec.Close()
				return &exitError{exitRoom, fmt.Errorf("no speaker published within %s", w)}
			case err := <-live.Closed:
				rec.Close()
				return roomError(err)
			case <-c.Done():
				rec.Close()
				return nil
			}
		}
		timer.Stop()
	}
	// Outputs only when the recording starts: a failed join or a speaker
	// who never comes leaves no empty file behind, and an ingest is not
	// held open without media (most drop such a publisher anyway).
	if err := attachOutputs(c, rec, log); err != nil {
		rec.Close()
		return err
	}
	live.SetOffset(rm.Now())
	rec.Start()
	log.Info().Msg("recording")

	var emptyC <-chan time.Time
	var emptyT *time.Timer
	var endErr error
loop:
	for {
		select {
		case <-rec.Done():
			break loop
		case <-c.Done():
			log.Info().Msg("signal: stopping and finalising")
			break loop
		case err := <-live.Closed:
			if errors.Is(err, room.ErrRoomClosed) {
				log.Info().Err(err).Msg("room closed: stopping")
			} else {
				log.Error().Err(err).Msg("lost the room: stopping")
				endErr = roomError(err)
			}
			break loop
		case e := <-live.Events:
			switch e.Kind {
			case room.EventRoomEmpty:
				if d := c.Duration("empty-timeout"); d > 0 {
					emptyT = time.NewTimer(d)
					emptyC = emptyT.C
				}
			case room.EventRoomOccupied:
				if emptyT != nil {
					emptyT.Stop()
					emptyC = nil
				}
			}
		case <-emptyC:
			log.Info().Dur("empty_for", c.Duration("empty-timeout")).Msg("room empty: stopping")
			break loop
		}
	}
	err = rec.Close()
	rm.Close()
	if err != nil {
		return err
	}
	log.Info().Dur("duration", rec.Elapsed()).Msg("recording done")
	return endErr
}

// roomError maps room failures to exit codes: configuration mistakes are
// usage errors, the rest room errors.
func roomError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, room.ErrConfig) {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return &exitError{exitRoom, err}
}

// roomName is the last path segment of a room URL, for the log.
func roomName(roomURL string) string {
	u, err := url.Parse(roomURL)
	if err != nil {
		return ""
	}
	p := strings.Trim(u.Path, "/")
	if p == "" {
		return u.Opaque
	}
	return p[strings.LastIndex(p, "/")+1:]
}
