// Command roomcast turns a small WebRTC meeting into a broadcast: it
// composites the speakers into one picture and sound and records it to a
// crash-safe MP4 and/or streams it over RTMP(S).
//
// Exit codes (also in README.md):
//
//	0  done (a live recording stopped by signal, duration or room end is a success)
//	1  internal error (a bug: please report it)
//	2  usage error (bad flags or arguments)
//	3  input error (missing, corrupt or unsupported input file)
//	4  output error (unwritable path, disk full, write or finalise failure)
//	5  room error (cannot join: bad credentials, unknown room, unreachable server)
//	6  stream error (every RTMP destination failed: rejected key, unreachable, TLS)
//	7  key error (decrypt: no identity matches the recording, or the identity file is invalid)
//	130 interrupted before the job was complete (compose): the output holds what was done
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/atrest"
	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/bbb"
	"github.com/roomcast/roomcast/hls"
	"github.com/roomcast/roomcast/mp4"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room/registry"
)

// Exit codes.
const (
	exitOK          = 0
	exitInternal    = 1
	exitUsage       = 2
	exitInput       = 3
	exitOutput      = 4
	exitRoom        = 5
	exitStream      = 6
	exitKey         = 7
	exitInterrupted = 130
)

// errUsage marks bad command-line use.
var errUsage = errors.New("usage")

// errInterrupted: a signal ended a job that was not finished.
var errInterrupted = errors.New("interrupted")

// exitError carries an exit code chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// classify maps an error to its documented exit code.
func classify(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.Is(err, atrest.ErrWrongKey), errors.Is(err, atrest.ErrIdentity):
		return exitKey
	case errors.Is(err, av.ErrNotFound), errors.Is(err, av.ErrCorrupt), errors.Is(err, av.ErrUnsupported),
		errors.Is(err, atrest.ErrNotEncrypted), errors.Is(err, atrest.ErrTorn),
		errors.Is(err, mp4.ErrNotMP4), errors.Is(err, bbb.ErrInvalid), errors.Is(err, bbb.ErrNothingRecorded):
		return exitInput
	case errors.Is(err, mp4.ErrCreate), errors.Is(err, mp4.ErrDiskFull), errors.Is(err, mp4.ErrWrite),
		errors.Is(err, mp4.ErrFinalise), errors.Is(err, recorder.ErrOutput),
		errors.Is(err, hls.ErrCreate), errors.Is(err, hls.ErrDiskFull), errors.Is(err, hls.ErrWrite):
		return exitOutput
	}
	return exitInternal
}

func main() {
	// How zerolog encodes times and durations is process-wide in zerolog;
	// it is the program's log format, set once before anything logs, the
	// same for every session: timestamps to the millisecond (they were cut
	// to the second, and the text log printed ".000"), durations as
	// seconds (JSON numbers; text adds the unit, see textDurations).
	zerolog.TimeFieldFormat = logTimeFormat
	zerolog.DurationFieldUnit = time.Second
	os.Exit(run(os.Args))
}

// logTimeFormat is RFC 3339 with milliseconds.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// durationFields are the log fields that hold durations (zerolog's Dur):
// the text log prints them with their unit ("10.02s").
var durationFields = map[string]bool{
	"duration": true, "took": true, "start": true, "since_start": true, "retry_in": true, "pts": true,
	"origin": true, "empty_for": true, "container_start": true, "arrival": true, "fragment": true,
	"media": true, "wall": true, "behind": true, "elapsed": true, "timeout": true, "after": true,
}

// textDurations gives the text log's duration fields their unit.
func textDurations(evt map[string]any) error {
	for k, v := range evt {
		if !durationFields[k] {
			continue
		}
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				evt[k] = strconv.FormatFloat(f, 'f', 3, 64) + "s"
			}
		}
	}
	return nil
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	code := classify(err)
	// One clear line on stderr, whatever the logger does.
	fmt.Fprintf(os.Stderr, "roomcast: %v\n", err)
	return code
}

func newApp() *cli.App {
	cmds := []*cli.Command{recordCommand(), composeCommand(), demoCommand(), checkIngestCommand(), serveCommand(), egressWorkerCommand(), auditCommand(), tokenCommand(), recoverCommand(), decryptCommand()}
	for _, c := range cmds {
		// urfave/cli applies App.OnUsageError to global flags only.
		c.OnUsageError = usageError
	}
	return &cli.App{
		Name:  "roomcast",
		Usage: "composite a small WebRTC meeting into one broadcast: crash-safe MP4 and RTMP(S)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"ROOMCAST_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"ROOMCAST_LOG_FORMAT"}},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a Go CPU profile to this file", Hidden: true},
			&cli.StringFlag{Name: "memprofile", Usage: "write a Go allocation profile to this file on exit", Hidden: true},
		},
		Before: func(c *cli.Context) error {
			if p := c.String("cpuprofile"); p != "" {
				f, err := os.Create(p)
				if err != nil {
					return fmt.Errorf("%w: --cpuprofile: %v", errUsage, err)
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
			}
			return nil
		},
		After: func(c *cli.Context) error {
			if c.String("cpuprofile") != "" {
				pprof.StopCPUProfile()
			}
			if p := c.String("memprofile"); p != "" {
				f, err := os.Create(p)
				if err != nil {
					return fmt.Errorf("%w: --memprofile: %v", errUsage, err)
				}
				defer f.Close()
				return pprof.Lookup("allocs").WriteTo(f, 0)
			}
			return nil
		},
		Commands: cmds,
		// Without an Action, urfave falls back to help for an unknown
		// command and exits 1; it is a usage error.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("%w: unknown command %q (see roomcast --help)", errUsage, c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		ExitErrHandler:  func(*cli.Context, error) {}, // run() prints and maps errors
		OnUsageError:    usageError,
		HideHelpCommand: true,
		// --input values contain commas (file=...,name=...).
		DisableSliceFlagSeparator: true,
	}
}

func usageError(_ *cli.Context, err error, _ bool) error {
	return fmt.Errorf("%w: %v", errUsage, err)
}

// logger builds the root logger from the global flags and routes FFmpeg's
// own messages into it.
func logger(c *cli.Context) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return zerolog.Logger{}, fmt.Errorf("%w: --log-level %q", errUsage, c.String("log-level"))
	}
	var log zerolog.Logger
	switch c.String("log-format") {
	case "json":
		log = zerolog.New(os.Stderr)
	case "text":
		// Colours only on a terminal, not in a file or a cron mail.
		st, _ := os.Stderr.Stat()
		tty := st != nil && st.Mode()&os.ModeCharDevice != 0
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: !tty, FormatPrepare: textDurations})
	default:
		return zerolog.Logger{}, fmt.Errorf("%w: --log-format %q (want text or json)", errUsage, c.String("log-format"))
	}
	log = log.Level(lvl).With().Timestamp().Logger()
	// FFmpeg's own messages are per-packet or per-probe noise: av turns
	// what matters into our errors. They are shown only when debugging.
	fl := zerolog.Disabled
	if lvl <= zerolog.DebugLevel {
		fl = zerolog.WarnLevel
	}
	av.RouteFFmpegLogs(log, fl)
	// LiveKit SDK (pion) lines that name no room go to the process log.
	registry.SetProcessLogger(log)
	return log, nil
}
