package main

// End-to-end tests: they build the roomcast binary once, run it as a user
// would, and judge what it wrote by decoding it with the ffmpeg and ffprobe
// found on PATH (the Makefile puts the FFmpeg 7.1 build first). Every
// assertion is on decoded pixels, decoded samples or probed timestamps.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/mediatest"
)

// bin is the roomcast binary under test: built by TestMain, or the one
// named by $ROOMCAST_BIN (to test an installed or released build).
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	if b := os.Getenv("ROOMCAST_BIN"); b != "" {
		bin = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "roomcast-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "roomcast")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building roomcast: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2e skips under -short and fails when the tools the test needs are missing
// (a missing peer is a failure, not a skip).
func e2e(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs the binary and ffmpeg")
	}
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not on PATH (run through make, or export PATH=$(scripts/ffmpeg.sh prefix)/bin:$PATH)", tool)
		}
	}
}

// result is what a roomcast run left behind.
type result struct {
	code    int
	stdout  string
	stderr  string
	elapsed time.Duration
}

// runCLI runs roomcast to completion (at most two minutes) in its own process
// group, killed on timeout.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: stripANSI(se.String()), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("roomcast %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("roomcast %s: still running after 2 minutes", strings.Join(args, " "))
	}
	return r
}

// mustCLI runs roomcast and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) result {
	t.Helper()
	r := runCLI(t, args...)
	if r.code != 0 {
		t.Fatalf("roomcast %s: exit %d\n%s", strings.Join(args, " "), r.code, tail(r.stderr, 20))
	}
	return r
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

// stripANSI removes the colour codes of zerolog's console writer.
func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

func tail(s string, n int) string { return mediatest.Tail(s, n) }

// errorLine checks the one-line error contract: stderr ends with exactly one
// line "roomcast: ...", and nothing after it. It returns that line.
func errorLine(t *testing.T, r result) string {
	t.Helper()
	text := strings.TrimRight(r.stderr, "\n")
	lines := strings.Split(text, "\n")
	var idx []int
	for i, l := range lines {
		if strings.HasPrefix(l, "roomcast: ") {
			idx = append(idx, i)
		}
	}
	if len(idx) != 1 {
		t.Fatalf("want exactly one \"roomcast: \" error line on stderr, got %d:\n%s", len(idx), tail(r.stderr, 20))
	}
	if idx[0] != len(lines)-1 {
		t.Errorf("the error line is not one line (or not the last one): after %q stderr goes on with\n%s",
			lines[idx[0]], strings.Join(lines[idx[0]+1:], "\n"))
	}
	for _, bad := range []string{"panic:", "goroutine ", "Incorrect Usage"} {
		if strings.Contains(r.stderr+r.stdout, bad) {
			t.Errorf("output contains %q:\n%s", bad, tail(r.stderr+r.stdout, 20))
		}
	}
	return lines[idx[0]]
}

// dirNames lists a directory (sorted names).
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}
