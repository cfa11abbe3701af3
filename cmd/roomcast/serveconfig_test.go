package main

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/serve"
)

// parseServe runs serve's flag parsing (flags, ROOMCAST_* environment, the
// YAML file) without serving, and returns the server configuration.
func parseServe(t *testing.T, args ...string) (serve.Config, string, error) {
	t.Helper()
	var cfg serve.Config
	var listen string
	app := &cli.App{Name: "roomcast", Commands: []*cli.Command{{
		Name: "serve", Flags: serveFlags(), Before: applyConfigFile,
		Action: func(c *cli.Context) error {
			var err error
			cfg, err = serveConfig(c, "http://x")
			listen = c.String("listen")
			return err
		},
	}}}
	err := app.Run(append([]string{"roomcast", "serve"}, args...))
	return cfg, listen, err
}

// TestServeConfigSources: every serve flag can come from the YAML file
// (lists included), the ROOMCAST_* environment wins over the file and the
// command line over both; unknown keys and bad values are usage errors.
func TestServeConfigSources(t *testing.T) {
	for _, k := range []string{"ROOMCAST_CONFIG", "ROOMCAST_LISTEN", "ROOMCAST_DATA", "ROOMCAST_RETENTION", "ROOMCAST_LINK_TTL",
		"ROOMCAST_CPU_CAPACITY", "ROOMCAST_WEBHOOKS", "ROOMCAST_WEBHOOK_SECRET", "ROOMCAST_EMPTY_TIMEOUT", "ROOMCAST_SECURE_COOKIES"} {
		t.Setenv(k, "") // the test's own values only
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	yml := filepath.Join(dir, "serve.yaml")
	write := func(s string) {
		if err := os.WriteFile(yml, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`listen: 127.0.0.1:9999
data: /srv/roomcast
retention: 48h
link-ttl: 2h
cpu-capacity: 1.5
webhook:
  - http://127.0.0.1:1/a
  - http://127.0.0.1:1/b
webhook-secret: from-yaml
empty-timeout: 30s
secure-cookies: true
no-announce: true
`)
	cfg, listen, err := parseServe(t, "--config", yml)
	if err != nil {
		t.Fatal(err)
	}
	hooks := []serve.Webhook{{URL: "http://127.0.0.1:1/a", Secret: "from-yaml"}, {URL: "http://127.0.0.1:1/b", Secret: "from-yaml"}}
	if listen != "127.0.0.1:9999" || cfg.Data != "/srv/roomcast" || cfg.Retention != 48*time.Hour || cfg.LinkTTL != 2*time.Hour ||
		cfg.CPUCapacity != 1.5 || !reflect.DeepEqual(cfg.Webhooks, hooks) || !cfg.SecureCookies ||
		cfg.Runner.(serve.SessionRunner).EmptyTimeout != 30*time.Second || !cfg.Runner.(serve.SessionRunner).NoAnnounce {
		t.Errorf("from YAML: listen %s, %+v", listen, cfg)
	}

	// The environment wins over the file; the file is found through
	// ROOMCAST_CONFIG too.
	t.Setenv("ROOMCAST_CONFIG", yml)
	t.Setenv("ROOMCAST_RETENTION", "72h")
	t.Setenv("ROOMCAST_DATA", "/var/lib/roomcast")
	t.Setenv("ROOMCAST_WEBHOOKS", "http://127.0.0.1:1/env")
	cfg, _, err = parseServe(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention != 72*time.Hour || cfg.Data != "/var/lib/roomcast" || cfg.LinkTTL != 2*time.Hour ||
		len(cfg.Webhooks) != 1 || cfg.Webhooks[0].URL != "http://127.0.0.1:1/env" {
		t.Errorf("environment over YAML: %+v", cfg)
	}
	// The command line wins over both.
	cfg, listen, err = parseServe(t, "--retention", "1h", "--listen", "127.0.0.1:0", "--link-ttl", "3h")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Retention != time.Hour || listen != "127.0.0.1:0" || cfg.LinkTTL != 3*time.Hour || cfg.CPUCapacity != 1.5 {
		t.Errorf("flags over environment and YAML: listen %s %+v", listen, cfg)
	}
	for _, k := range []string{"ROOMCAST_CONFIG", "ROOMCAST_RETENTION", "ROOMCAST_DATA", "ROOMCAST_WEBHOOKS"} {
		os.Unsetenv(k)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"listen: 127.0.0.1:1\nlisten-port: 8080\n", `unknown key "listen-port"`},
		{"retention: soon\n", "retention"},
		{"cpu-capacity: lots\n", "cpu-capacity"},
		{"listen: [unclosed\n", "serve.yaml"},
	} {
		write(bad.yaml)
		_, _, err := parseServe(t, "--config", yml)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("YAML %q: error %v, want a usage error naming %s", bad.yaml, err, bad.want)
		}
	}
	if _, _, err := parseServe(t, "--config", filepath.Join(dir, "missing.yaml")); !errors.Is(err, errUsage) {
		t.Errorf("missing config file: %v, want a usage error", err)
	}

	// Encryption at rest from the YAML file; the identity file lets the
	// server decrypt downloads.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write("encrypt-to: [" + id.Recipient().String() + "]\ndecrypt-identity-file: " + idFile + "\n")
	cfg, _, err = parseServe(t, "--config", yml)
	if err != nil || len(cfg.EncryptTo) != 1 || len(cfg.Identities) != 1 {
		t.Errorf("encryption from YAML: %v, %d recipients, %d identities", err, len(cfg.EncryptTo), len(cfg.Identities))
	}
	for _, args := range [][]string{{"--encrypt-to", "age1notakey"}, {"--decrypt-identity-file", idFile}} {
		if _, _, err := parseServe(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestServeFromConfigFile: the real binary takes its data directory from
// the YAML file and its address from ROOMCAST_LISTEN, and serves.
func TestServeFromConfigFile(t *testing.T) {
	e2e(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data-from-yaml")
	yml := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(yml, []byte("data: "+data+"\nlisten: 127.0.0.1:1\nretention: 240h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServeWith(t, []string{"ROOMCAST_LISTEN=127.0.0.1:0", "ROOMCAST_CONFIG=" + yml}, "--log-format", "json", "serve")
	resp, err := http.Get(p.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(data, "roomcast.db")); err != nil {
		t.Errorf("the data directory from the YAML file was not used: %v", err)
	}
}
