package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/roomcast/roomcast/atrest"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/serve"
)

func serveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", EnvVars: []string{"ROOMCAST_CONFIG"}, Usage: "YAML file with any of these flags as keys (listen: ..., data: ...); flags and environment win"},
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", EnvVars: []string{"ROOMCAST_LISTEN"}, Usage: "address to serve on"},
		&cli.StringFlag{Name: "data", EnvVars: []string{"ROOMCAST_DATA"}, Usage: "data directory: database, secret, audit log, recordings/ (created 0700)"},
		&cli.StringFlag{Name: "base-url", EnvVars: []string{"ROOMCAST_BASE_URL"}, Usage: "public URL of the server, for links (default http://LISTEN)"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"ROOMCAST_TLS_CERT"}, Usage: "TLS certificate file (serve HTTPS; cookies become Secure)"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"ROOMCAST_TLS_KEY"}, Usage: "TLS key file"},
		&cli.BoolFlag{Name: "secure-cookies", EnvVars: []string{"ROOMCAST_SECURE_COOKIES"}, Usage: "mark cookies Secure (behind a TLS proxy)"},
		&cli.DurationFlag{Name: "retention", Value: 30 * 24 * time.Hour, EnvVars: []string{"ROOMCAST_RETENTION"}, Usage: "delete recordings older than this (negative: keep)"},
		&cli.DurationFlag{Name: "link-ttl", Value: 7 * 24 * time.Hour, EnvVars: []string{"ROOMCAST_LINK_TTL"}, Usage: "how long download links stay valid"},
		&cli.Float64Flag{Name: "cpu-capacity", EnvVars: []string{"ROOMCAST_CPU_CAPACITY"}, Usage: "cores broadcasts may use together (default 85% of the machine; negative: no admission control)"},
		&cli.StringSliceFlag{Name: "webhook", EnvVars: []string{"ROOMCAST_WEBHOOKS"}, Usage: "URL receiving event webhooks, repeatable"},
		&cli.StringFlag{Name: "webhook-secret", EnvVars: []string{"ROOMCAST_WEBHOOK_SECRET"}, Usage: "HMAC-SHA256 key signing webhooks (prefer the environment)"},
		&cli.BoolFlag{Name: "insecure-tls", EnvVars: []string{"ROOMCAST_INSECURE_TLS"}, Usage: "accept self-signed rtmps certificates (test servers only)"},
		&cli.BoolFlag{Name: "no-announce", EnvVars: []string{"ROOMCAST_NO_ANNOUNCE"}, Usage: "tell no room when its broadcast starts and stops (chat message and roomcast's recording attribute; see GDPR.md)"},
		&cli.DurationFlag{Name: "empty-timeout", Value: 2 * time.Minute, EnvVars: []string{"ROOMCAST_EMPTY_TIMEOUT"}, Usage: "stop a broadcast whose room stayed empty this long (0: never)"},
		&cli.StringSliceFlag{Name: "encrypt-to", EnvVars: []string{"ROOMCAST_ENCRYPT_TO"}, Usage: "encrypt every recording as it is written to this age public key (age1…; repeatable)"},
		&cli.StringSliceFlag{Name: "encrypt-to-file", EnvVars: []string{"ROOMCAST_ENCRYPT_TO_FILE"}, Usage: "encrypt to every age public key in this recipients file (repeatable)"},
		&cli.StringFlag{Name: "decrypt-identity-file", EnvVars: []string{"ROOMCAST_DECRYPT_IDENTITY_FILE"}, Usage: "age identity file matching --encrypt-to: downloads are decrypted (without it they are the encrypted files)"},
	}
}

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the host's web page and JSON API: start, watch, stop and schedule broadcasts, download recordings",
		Description: "Every flag can also come from the environment (ROOMCAST_LISTEN, ROOMCAST_DATA, ...) or a YAML\n" +
			"file (--config). The first admin account comes from $ROOMCAST_ADMIN_PASSWORD; without it a one-time\n" +
			"setup link is printed. SIGINT/SIGTERM stop every broadcast and finalise its recording.",
		Flags:  serveFlags(),
		Before: applyConfigFile,
		Action: runServe,
	}
}

// applyConfigFile sets every flag the YAML file names and the command line
// and environment did not.
func applyConfigFile(c *cli.Context) error { return applyConfigFileFor(c, serveFlags()) }

// applyConfigFileFor is applyConfigFile for a command with these flags.
func applyConfigFileFor(c *cli.Context, flags []cli.Flag) error {
	p := c.String("config")
	if p == "" {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("%w: --config: %v", errUsage, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: --config %s: %v", errUsage, p, err)
	}
	known := map[string]bool{}
	for _, f := range flags {
		known[f.Names()[0]] = true
	}
	for k, v := range m {
		if !known[k] || k == "config" {
			return fmt.Errorf("%w: --config %s: unknown key %q", errUsage, p, k)
		}
		if c.IsSet(k) {
			continue
		}
		vals := []any{v}
		if l, ok := v.([]any); ok {
			vals = l
		}
		for _, x := range vals {
			if err := c.Set(k, fmt.Sprint(x)); err != nil {
				return fmt.Errorf("%w: --config %s: %s: %v", errUsage, p, k, err)
			}
		}
	}
	return nil
}

func runServe(c *cli.Context) error {
	log, err := logger(c)
	if err != nil {
		return err
	}
	if c.String("data") == "" {
		return fmt.Errorf("%w: serve needs --data DIR (or ROOMCAST_DATA)", errUsage)
	}
	if err := os.MkdirAll(c.String("data"), 0o700); err != nil {
		return &exitError{exitOutput, fmt.Errorf("--data: %w", err)}
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("%w: --listen: %v", errUsage, err)
	}
	tlsOn := c.String("tls-cert") != ""
	base := c.String("base-url")
	if base == "" {
		scheme := "http"
		if tlsOn {
			scheme = "https"
		}
		base = scheme + "://" + ln.Addr().String()
	}
	cfg, err := serveConfig(c, base)
	if err != nil {
		ln.Close()
		return err
	}
	cfg.Log = log
	srv, err := serve.Open(cfg)
	if err != nil {
		ln.Close()
		return &exitError{exitOutput, err}
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() {
		if tlsOn {
			errc <- hs.ServeTLS(ln, c.String("tls-cert"), c.String("tls-key"))
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	log.Info().Str("url", base).Str("data", c.String("data")).Msg("serving")
	select {
	case err = <-errc:
	case <-c.Done():
		log.Info().Msg("signal: stopping every broadcast and finalising recordings")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = hs.Shutdown(ctx) // SSE streams end when the server closes below
	cancel()
	cerr := srv.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return cerr
}

// serveConfig is the server's configuration from the flags (after the
// environment and the YAML file filled in theirs).
func serveConfig(c *cli.Context, base string) (serve.Config, error) {
	rs, err := atrest.Recipients(c.StringSlice("encrypt-to"), c.StringSlice("encrypt-to-file"))
	if err != nil {
		return serve.Config{}, fmt.Errorf("%w: --encrypt-to: %v", errUsage, err)
	}
	var ids []age.Identity
	if p := c.String("decrypt-identity-file"); p != "" {
		if len(rs) == 0 {
			return serve.Config{}, fmt.Errorf("%w: --decrypt-identity-file without --encrypt-to", errUsage)
		}
		if ids, err = atrest.Identities(p); err != nil {
			return serve.Config{}, fmt.Errorf("%w: --decrypt-identity-file: %v", errUsage, err)
		}
	}
	var hooks []serve.Webhook
	for _, u := range c.StringSlice("webhook") {
		hooks = append(hooks, serve.Webhook{URL: u, Secret: c.String("webhook-secret")})
	}
	return serve.Config{
		Data: c.String("data"), AdminPassword: os.Getenv("ROOMCAST_ADMIN_PASSWORD"), BaseURL: strings.TrimSuffix(base, "/"),
		SecureCookies: c.String("tls-cert") != "" || c.Bool("secure-cookies"), Runner: serve.SessionRunner{
			InsecureTLS: c.Bool("insecure-tls"), EmptyTimeout: c.Duration("empty-timeout"), NoAnnounce: c.Bool("no-announce"),
			// LiveKit rooms: roomcast mints its own token from the API key
			// and secret in serve's environment (never from a request).
			Credentials: func(string) room.Credentials {
				return room.Credentials{APIKey: os.Getenv("LIVEKIT_API_KEY"), APISecret: os.Getenv("LIVEKIT_API_SECRET")}
			},
		},
		Retention: c.Duration("retention"), LinkTTL: c.Duration("link-ttl"), CPUCapacity: c.Float64("cpu-capacity"),
		Webhooks: hooks, EncryptTo: rs, Identities: ids,
	}, nil
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "check the audit log of a serve data directory",
		Subcommands: []*cli.Command{{
			Name:  "verify",
			Usage: "verify the hash chain of DATA/audit.jsonl (exit 0: intact; 3: edited, removed or reordered lines)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "data", EnvVars: []string{"ROOMCAST_DATA"}, Usage: "serve data directory"},
				&cli.StringFlag{Name: "file", Usage: "audit log file (default DATA/audit.jsonl)"},
			},
			Action: func(c *cli.Context) error {
				p := c.String("file")
				if p == "" {
					if c.String("data") == "" {
						return fmt.Errorf("%w: audit verify needs --data DIR or --file", errUsage)
					}
					p = c.String("data") + "/audit.jsonl"
				}
				res, err := serve.VerifyAuditFile(p, c.String("data"))
				if err != nil {
					return &exitError{exitInput, err}
				}
				fmt.Printf("audit log intact: %d entries, last hash %s\n", res.Seq, res.Last)
				return nil
			},
		}},
	}
}

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "mint an API bearer token for an account of a serve data directory (printed once)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", EnvVars: []string{"ROOMCAST_DATA"}, Required: true, Usage: "serve data directory"},
			&cli.StringFlag{Name: "user", Value: "admin", Usage: "account"},
			&cli.StringFlag{Name: "label", Value: "cli", Usage: "what the token is for"},
		},
		Action: func(c *cli.Context) error {
			tok, err := serve.MintToken(c.String("data"), c.String("user"), c.String("label"))
			if err != nil {
				return err
			}
			fmt.Println(tok)
			return nil
		},
	}
}
