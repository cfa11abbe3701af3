package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEgressWorkerErrors: egress-worker's bad settings fail at once with
// one line and a documented code; a secret given on the command line never
// reaches stderr.
func TestEgressWorkerErrors(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	ok := []string{"egress-worker", "--redis", "redis://127.0.0.1:1", "--ws-url", "ws://127.0.0.1:7880",
		"--api-key", "APIkey", "--api-secret", "s3cr3t-never-printed", "--output-dir", dir}
	with := func(flag, value string) []string {
		out := append([]string(nil), ok...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	for _, c := range []errorCase{
		{"no redis", with("--redis", ""), exitUsage, []string{"--redis"}},
		{"bad redis", with("--redis", "http://:pw-never-printed@x:1"), exitUsage, []string{"--redis"}},
		{"bad ws url", with("--ws-url", "ftp://x"), exitUsage, []string{"--ws-url"}},
		{"no secret", with("--api-secret", ""), exitUsage, []string{"--api-secret"}},
		{"negative capacity", with("--cpu-capacity", "-1"), exitUsage, []string{"--cpu-capacity"}},
		{"zero cost", with("--cpu-cost", "0"), exitUsage, []string{"--cpu-cost"}},
		{"output dir", with("--output-dir", filepath.Join(dir, "missing")), exitOutput, []string{"--output-dir"}},
		{"unknown config key", append(append([]string(nil), ok...), "--config", writeFile(t, dir, "bad.yaml", "redis-url: x\n")), exitUsage, []string{"unknown key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkFails(t, dir, "", c)
		})
	}
	// Redis unreachable: exit 5, the error names Redis.
	r := runCLI(t, ok...)
	if r.code != exitRoom {
		t.Fatalf("unreachable Redis: exit %d, want %d\n%s", r.code, exitRoom, tail(r.stderr, 10))
	}
	if line := errorLine(t, r); !strings.Contains(line, "redis") {
		t.Fatalf("error line %q does not name Redis", line)
	}
	if strings.Contains(r.stderr, "s3cr3t") {
		t.Fatal("the API secret reached stderr")
	}
	// The YAML config supplies what the flags do not.
	cfg := writeFile(t, dir, "w.yaml", "redis: redis://127.0.0.1:1\nws-url: ws://127.0.0.1:7880\napi-key: k\napi-secret: s3cr3t-never-printed\n")
	r = runCLI(t, "egress-worker", "--config", cfg, "--output-dir", dir)
	if r.code != exitRoom {
		t.Fatalf("config file: exit %d, want %d (Redis unreachable)\n%s", r.code, exitRoom, tail(r.stderr, 10))
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
