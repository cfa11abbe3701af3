package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/recorder"
)

func composeCommand() *cli.Command {
	return &cli.Command{
		Name:      "compose",
		Usage:     "compose per-speaker recordings (WebM/MKV/MP4) into one MP4, faster than real time",
		ArgsUsage: " ",
		Description: "Each --input is FILE, or a comma-separated list of file=FILE,name=NAME,offset=DURATION\n" +
			"(offset: when that speaker starts on the output timeline, e.g. 12.5s). The name labels the tile;\n" +
			"it defaults to the file name. Example:\n" +
			"  roomcast compose -o talk.mp4 --layout speaker \\\n" +
			"    --input file=alice.webm,name=Alice --input file=bob.mkv,name=Bob,offset=3s\n" +
			"A BigBlueButton raw recording folder instead of inputs:\n" +
			"  roomcast compose --from-bbb /var/bigbluebutton/recording/raw/<meeting-id> -o meeting.mp4",
		Flags: append(append(canvasFlags(),
			&cli.StringSliceFlag{Name: "input", Aliases: []string{"i"}, Usage: "a speaker's recording (repeat for each speaker)"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this much output (default: until every input has ended)"},
		), bbbFlags()...),
		Action: runCompose,
	}
}

type inputSpec struct {
	path, name string
	offset     time.Duration
}

func parseInput(s string) (inputSpec, error) {
	var in inputSpec
	if !strings.Contains(s, "file=") {
		in.path = s
	} else {
		for _, kv := range strings.Split(s, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return in, fmt.Errorf("%w: --input %q: %q is not key=value", errUsage, s, kv)
			}
			switch strings.TrimSpace(k) {
			case "file":
				in.path = v
			case "name":
				in.name = v
			case "offset":
				d, err := time.ParseDuration(v)
				if err != nil || d < 0 {
					return in, fmt.Errorf("%w: --input %q: offset %q (want e.g. 2.5s)", errUsage, s, v)
				}
				in.offset = d
			default:
				return in, fmt.Errorf("%w: --input %q: unknown key %q (want file, name, offset)", errUsage, s, k)
			}
		}
	}
	if in.path == "" {
		return in, fmt.Errorf("%w: --input %q has no file", errUsage, s)
	}
	if in.name == "" {
		in.name = strings.TrimSuffix(filepath.Base(in.path), filepath.Ext(in.path))
	}
	return in, nil
}

func runCompose(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.String("output") == "" {
		return fmt.Errorf("%w: compose needs --output FILE.mp4", errUsage)
	}
	if c.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (inputs go in --input)", errUsage, c.Args().First())
	}
	defer offlineGC()()
	if c.String("from-bbb") != "" {
		return runComposeBBB(c, log)
	}
	specs := c.StringSlice("input")
	if len(specs) == 0 {
		return fmt.Errorf("%w: compose needs at least one --input", errUsage)
	}
	var inputs []inputSpec
	for _, s := range specs {
		in, err := parseInput(s)
		if err != nil {
			return err
		}
		inputs = append(inputs, in)
	}
	cfg, err := pipelineConfig(c, log)
	if err != nil {
		return err
	}
	cfg.Compositor.Offline = true
	cfg.Compositor.Duration = c.Duration("duration")

	// Open every input before creating the output: bad input leaves nothing behind.
	var sources []*recorder.FileSource
	defer func() {
		for _, s := range sources {
			s.Close()
		}
	}()
	// Each input's decoder gets its share of the CPUs (see av.FileOptions).
	fo := av.FileOptions{DecoderThreads: max(1, runtime.NumCPU()/len(inputs))}
	for _, in := range inputs {
		src, err := recorder.OpenFileSourceWith(in.path, in.name, in.offset, fo, log)
		if err != nil {
			return err
		}
		sources = append(sources, src)
	}
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	if err := attachOutputs(c, rec, log); err != nil { // the MP4 and --hls
		rec.Close()
		return err
	}
	for i, s := range sources {
		s.Start(rec.Compositor(), fmt.Sprintf("input-%d", i))
	}
	start := time.Now()
	rec.Start()
	interrupted := false
	select {
	case <-rec.Done():
	case <-c.Done():
		interrupted = true
		log.Warn().Msg("signal: stopping early and finalising what was composed")
	}
	err = rec.Close()
	var readErr error
	for _, s := range sources {
		if e := s.Wait(); e != nil && readErr == nil {
			readErr = e
		}
	}
	if err != nil {
		return err
	}
	took := time.Since(start)
	out := rec.Elapsed()
	if interrupted {
		return fmt.Errorf("%w: %s holds only the first %.1f s", errInterrupted, c.String("output"), out.Seconds())
	}
	if readErr != nil {
		return fmt.Errorf("%s is incomplete: %w", c.String("output"), readErr)
	}
	for _, s := range sources {
		if f, a := s.Decoded(); f == 0 && a == 0 {
			return fmt.Errorf("%s: %w: no decodable picture or sound (%s was written without it)", s.Path, av.ErrCorrupt, c.String("output"))
		}
	}
	log.Info().Str("output", c.String("output")).Dur("duration", out).Dur("took", took).
		Float64("speed", out.Seconds()/max(took.Seconds(), 1e-3)).Msg("composed")
	return nil
}

// composeGCPercent is the Go collector's target for an offline compose:
// the heap is then mostly queued and pooled pictures (pointer-free pixel
// buffers the collector does not scan), so collecting at 25 % growth
// instead of Go's default 100 % costs little CPU (scripts/bench.sh: within
// the run-to-run noise) and lowers the peak RSS by about 10 MB at 720p:
// with the default, garbage pictures let the heap reach twice its ~16 MB
// live size before a collection.
const composeGCPercent = 25

// offlineGC applies composeGCPercent unless GOGC was set, and returns
// what restores the previous setting. The compose command is the
// process's only job when run from the command line; serve and record keep
// Go's default.
func offlineGC() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(composeGCPercent)
	return func() { debug.SetGCPercent(old) }
}
