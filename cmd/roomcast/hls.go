package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/hls"
	"github.com/roomcast/roomcast/hls/watch"
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

// watchFlags: serving the watch page from a live command (record, demo).
func watchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "watch", Usage: "serve the watch page of the --hls broadcast on `ADDR` (e.g. 127.0.0.1:8080; put nginx in front for a crowd)"},
		&cli.StringFlag{Name: "watch-token", Usage: "the watch URL's secret token (default: random, printed on stderr)"},
		&cli.StringFlag{Name: "watch-title", Value: "Broadcast", Usage: "title shown on the watch page"},
		&cli.StringFlag{Name: "watch-passcode-file", Usage: "file holding a passcode viewers must enter"},
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

// startWatch serves the --hls broadcast's watch page at /watch/TOKEN/ when
// --watch is given, from before the broadcast starts (the page says "starts
// soon") to the end of the command. The returned stop is never nil.
func startWatch(c *cli.Context, log zerolog.Logger) (stop func(), err error) {
	addr := c.String("watch")
	if addr == "" {
		return func() {}, nil
	}
	dir := c.String("hls")
	if dir == "" {
		return nil, fmt.Errorf("%w: --watch serves the --hls directory: give --hls DIR", errUsage)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	tok := c.String("watch-token")
	if tok == "" {
		tok = watch.NewToken()
	} else if len(tok) < 16 {
		return nil, fmt.Errorf("%w: --watch-token needs at least 16 characters (it is the page's only secret)", errUsage)
	}
	var pass string
	if f := c.String("watch-passcode-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: --watch-passcode-file: %v", errUsage, err)
		}
		pass = strings.TrimSpace(string(b))
	}
	b := watch.Broadcast{Title: c.String("watch-title"), Dir: dir, Passcode: pass}
	h := watch.New(watch.Config{Log: log, Lookup: func(t string) (watch.Broadcast, bool) {
		return b, subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1
	}})
	mux := http.NewServeMux()
	mux.Handle("/watch/", http.StripPrefix("/watch", h))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: --watch: %v", errUsage, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("watch server stopped")
		}
	}()
	// The URL holds the secret token: printed for the host, never logged.
	fmt.Fprintf(c.App.ErrWriter, "watch page: http://%s/watch/%s/\n", ln.Addr(), tok)
	log.Info().Str("addr", ln.Addr().String()).Bool("hls.js", h.HasHLSJS()).Msg("serving the watch page")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
