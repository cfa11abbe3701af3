package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/egress"
)

func egressWorkerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: []string{"ROOMCAST_CONFIG"}, Usage: "YAML file with any of these flags as keys (redis: ..., ws-url: ...); flags and environment win"},
		&cli.StringFlag{Name: "redis", EnvVars: []string{"ROOMCAST_REDIS"}, Usage: "the Redis livekit-server uses: redis://[:password@]host:port[/db] (a password is better in $ROOMCAST_REDIS_PASSWORD)"},
		&cli.StringFlag{Name: "redis-password", EnvVars: []string{"ROOMCAST_REDIS_PASSWORD"}, Usage: "Redis password (prefer the environment)"},
		&cli.StringFlag{Name: "ws-url", EnvVars: []string{"ROOMCAST_WS_URL", "LIVEKIT_URL"}, Usage: "LiveKit server URL the egresses join rooms at (ws://host:7880, wss://...)"},
		&cli.StringFlag{Name: "api-key", EnvVars: []string{"ROOMCAST_API_KEY", "LIVEKIT_API_KEY"}, Usage: "LiveKit API key (mints each egress's hidden recorder token)"},
		&cli.StringFlag{Name: "api-secret", EnvVars: []string{"ROOMCAST_API_SECRET", "LIVEKIT_API_SECRET"}, Usage: "LiveKit API secret (prefer the environment or --api-secret-file)"},
		&cli.StringFlag{Name: "api-secret-file", EnvVars: []string{"ROOMCAST_API_SECRET_FILE"}, Usage: "file holding the API secret"},
		&cli.StringFlag{Name: "output-dir", Value: ".", EnvVars: []string{"ROOMCAST_OUTPUT_DIR"}, Usage: "directory file outputs are written to (request paths are relative to it and may not leave it)"},
		&cli.Float64Flag{Name: "cpu-capacity", EnvVars: []string{"ROOMCAST_CPU_CAPACITY"}, Usage: "cores this worker may fill (0: measure the machine's idle CPU, as LiveKit's workers do)"},
		&cli.Float64Flag{Name: "cpu-cost", Value: egress.DefaultCPUCost, EnvVars: []string{"ROOMCAST_CPU_COST"}, Usage: "estimated cores per egress (a 720p30 room composite; see make bench)"},
		&cli.StringFlag{Name: "node-id", EnvVars: []string{"ROOMCAST_NODE_ID"}, Usage: "this worker's name on the bus (default RCW_ + random)"},
		&cli.DurationFlag{Name: "empty-timeout", EnvVars: []string{"ROOMCAST_EMPTY_TIMEOUT"}, Usage: "end an egress whose room stayed empty this long (0: when the room closes, as LiveKit's egress)"},
		&cli.BoolFlag{Name: "insecure-tls", EnvVars: []string{"ROOMCAST_INSECURE_TLS"}, Usage: "accept self-signed rtmps certificates (test servers only)"},
	}
}

func egressWorkerCommand() *cli.Command {
	return &cli.Command{
		Name:  "egress-worker",
		Usage: "be a LiveKit Egress worker: take egress requests from livekit-server over its Redis and record/stream them",
		Description: "Registers on livekit-server's Redis message bus as an egress worker: the server's Egress API\n" +
			"(StartRoomCompositeEgress, StartParticipantEgress, StopEgress, UpdateStream, ListEgress, webhooks)\n" +
			"then runs on roomcast. Every flag can also come from the environment (ROOMCAST_REDIS, ...) or a YAML\n" +
			"file (--config). SIGINT/SIGTERM stop every egress, finalise its file and report it complete.",
		Flags:  egressWorkerFlags(),
		Before: func(c *cli.Context) error { return applyConfigFileFor(c, egressWorkerFlags()) },
		Action: runEgressWorker,
	}
}

// redisOptions parses --redis (a URL, or a bare host:port as in
// livekit-server's own configuration).
func redisOptions(c *cli.Context) (*redis.Options, error) {
	raw := c.String("redis")
	if raw == "" {
		return nil, fmt.Errorf("%w: egress-worker needs --redis (the Redis livekit-server is configured with)", errUsage)
	}
	if !strings.Contains(raw, "://") {
		raw = "redis://" + raw
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		// The URL may hold a password: never echo it.
		return nil, fmt.Errorf("%w: --redis is not a redis://host:port URL", errUsage)
	}
	if p := c.String("redis-password"); p != "" {
		opt.Password = p
	}
	return opt, nil
}

func runEgressWorker(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	ropt, err := redisOptions(c)
	if err != nil {
		return err
	}
	apiSecret, err := secret(c, "api-secret", "api-secret-file")
	if err != nil {
		return err
	}
	ws := c.String("ws-url")
	if u, perr := url.Parse(ws); ws == "" || perr != nil || u.Host == "" ||
		(u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%w: --ws-url %q: want the LiveKit server's ws:// or wss:// URL", errUsage, ws)
	}
	if c.String("api-key") == "" || apiSecret == "" {
		return fmt.Errorf("%w: egress-worker needs --api-key and --api-secret (or their environment variables)", errUsage)
	}
	if c.Float64("cpu-capacity") < 0 || c.Float64("cpu-cost") <= 0 {
		return fmt.Errorf("%w: --cpu-capacity must not be negative and --cpu-cost must be positive", errUsage)
	}
	if c.Duration("empty-timeout") < 0 {
		return fmt.Errorf("%w: --empty-timeout is negative", errUsage)
	}
	dir := c.String("output-dir")
	if st, serr := os.Stat(dir); serr != nil || !st.IsDir() {
		return &exitError{exitOutput, fmt.Errorf("--output-dir %s: not a directory", dir)}
	}
	// go-redis's own messages (pool dial errors) are process-wide: the
	// program's log, at warn level, never with the password (not in them).
	redis.SetLogger(redisLog{log})
	rc := redis.NewClient(ropt)
	defer rc.Close()
	w, err := egress.New(egress.Config{
		Redis: rc, WSURL: ws, APIKey: c.String("api-key"), APISecret: apiSecret, OutputDir: dir,
		NodeID: c.String("node-id"), CPUCapacity: c.Float64("cpu-capacity"), CPUCost: c.Float64("cpu-cost"),
		EmptyTimeout: c.Duration("empty-timeout"), InsecureTLS: c.Bool("insecure-tls"), Log: log,
	})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := w.Start(c.Context); err != nil {
		w.Close()
		return &exitError{exitRoom, err}
	}
	<-c.Context.Done()
	log.Info().Int("running", w.Running()).Msg("signal: stopping every egress and leaving the bus")
	return w.Close()
}

// redisLog routes go-redis's lines to the program's logger.
type redisLog struct{ log zerolog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn().Str("component", "redis").Msgf(format, v...)
}
