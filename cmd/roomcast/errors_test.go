package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// errorCase is a run that must fail before doing any work: one error line
// and nothing else on stderr, a documented exit code, nothing left behind.
type errorCase struct {
	name string
	args []string
	code int
	want []string // substrings of the error line (case-insensitive)
}

// checkFails runs c in dir and asserts the error contract; out is the
// output path the run was given.
func checkFails(t *testing.T, dir, out string, c errorCase) {
	t.Helper()
	before := dirNames(t, dir)
	r := runCLI(t, c.args...)
	if r.code != c.code {
		t.Errorf("exit %d, want %d\nstderr:\n%s\nstdout:\n%s", r.code, c.code, tail(r.stderr, 10), tail(r.stdout, 5))
	}
	line := errorLine(t, r)
	// Nothing was started, so nothing else is worth a line.
	if extra := strings.TrimSpace(strings.TrimSuffix(strings.TrimRight(r.stderr, "\n"), line)); extra != "" {
		t.Errorf("want the error line alone on stderr; before it:\n%s", extra)
	}
	for _, w := range c.want {
		if !strings.Contains(strings.ToLower(line), strings.ToLower(w)) {
			t.Errorf("error line %q does not mention %q", line, w)
		}
	}
	if out != "" {
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s was created by a failed run", out)
		}
	}
	if after := dirNames(t, dir); !slices.Equal(before, after) {
		t.Errorf("a failed run changed %s: before %v, after %v", dir, before, after)
	}
}

// TestBadInput: inputs that cannot be composed fail before any output
// exists: exit 3, one line naming the file and the reason.
func TestBadInput(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.webm")
	generate(t, good, solidInput("red", "320x180", 30, 440, 1, "vp8", "opus"))

	random := filepath.Join(dir, "random.webm")
	b := make([]byte, 64<<10)
	_, _ = rand.Read(b)
	if err := os.WriteFile(random, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// An unknown codec: a Matroska file whose codec IDs are not VP8/Opus.
	vp8 := filepath.Join(dir, "vp8.mkv")
	generate(t, vp8, solidInput("blue", "320x180", 30, 440, 1, "vp8", "opus"))
	mkv, err := os.ReadFile(vp8)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(mkv, []byte("V_VP8")) != 1 || bytes.Count(mkv, []byte("A_OPUS")) != 1 {
		t.Fatal("generated MKV does not hold the codec IDs V_VP8 and A_OPUS once each")
	}
	mkv = bytes.Replace(mkv, []byte("V_VP8"), []byte("V_VPX"), 1)
	mkv = bytes.Replace(mkv, []byte("A_OPUS"), []byte("A_OPUX"), 1)
	unsupported := filepath.Join(dir, "unknown-codec.mkv")
	if err := os.WriteFile(unsupported, mkv, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(vp8); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "out.mp4")
	for _, c := range []errorCase{
		{"missing file", []string{"compose", "-o", out, "--input", filepath.Join(dir, "missing.webm")}, 3, []string{"missing.webm", "not found"}},
		{"random bytes", []string{"compose", "-o", out, "--input", random}, 3, []string{"random.webm"}},
		{"unsupported codec", []string{"compose", "-o", out, "--input", unsupported}, 3, []string{"unknown-codec.mkv", "unsupported"}},
		{"one good one missing", []string{"compose", "-o", out, "--input", good, "--input", "file=" + filepath.Join(dir, "gone.mkv") + ",name=Gone,offset=1s"}, 3, []string{"gone.mkv"}},
		{"one good one corrupt", []string{"compose", "-o", out, "--input", good, "--input", random}, 3, []string{"random.webm"}},
	} {
		t.Run(c.name, func(t *testing.T) { checkFails(t, dir, out, c) })
	}
}

// TestTruncatedInput: a recording cut short (a crashed recorder's file) is
// composed as far as it goes, with a warning, into a complete MP4.
func TestTruncatedInput(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	full := filepath.Join(dir, "full.webm")
	generate(t, full, solidInput("0x28aa3c", "640x360", 30, 700, 3, "vp8", "opus"))
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.webm")
	if err := os.WriteFile(cut, b[:len(b)*6/10], 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mp4")
	r := mustCLI(t, "compose", "-o", out, "--input", cut)
	warned := false
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, " WRN ") || strings.Contains(l, " ERR ") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("a truncated input was composed without a warning:\n%s", tail(r.stderr, 10))
	}
	finalised(t, out)
	playable(t, out)
	d := atof(ffprobe(t, out).Format.Duration)
	t.Logf("60%% of a 3 s recording composed into %.3f s", d)
	if d < 1.2 || d > 2.5 {
		t.Errorf("composed %.3f s from 60%% of a 3 s recording, want what it holds (1.2-2.5 s)", d)
	}
}

// TestBadOutput: an output that cannot be written fails at once with exit 4
// and changes nothing; an existing file is never replaced without -y.
func TestBadOutput(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	regular := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(regular, []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "existing.mp4")
	orig := []byte("an earlier recording\n")
	if err := os.WriteFile(existing, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(existing, old, old); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(dir, "in.webm")
	generate(t, input, solidInput("red", "320x180", 30, 440, 1, "vp8", "opus"))
	demo := []string{"demo", "--fast", "--duration", "1s", "-o"}
	for _, c := range []errorCase{
		{"directory missing", append(demo, filepath.Join(dir, "nodir", "x.mp4")), 4, []string{"nodir", "does not exist"}},
		{"parent is a file", append(demo, filepath.Join(regular, "x.mp4")), 4, []string{"notes.txt"}},
		{"output is a directory", append(demo, dir), 4, []string{"directory"}},
		{"exists without -y", append(demo, existing), 4, []string{"existing.mp4", "exists"}},
		{"compose to a missing directory", []string{"compose", "--input", input, "-o", filepath.Join(dir, "nodir", "x.mp4")}, 4, []string{"nodir"}},
		{"compose over an existing file", []string{"compose", "--input", input, "-o", existing}, 4, []string{"existing.mp4", "exists"}},
	} {
		t.Run(c.name, func(t *testing.T) { checkFails(t, dir, "", c) })
	}
	b, err := os.ReadFile(existing)
	st, serr := os.Stat(existing)
	if err != nil || serr != nil || !bytes.Equal(b, orig) || !st.ModTime().Equal(old) {
		t.Errorf("existing output was touched: %q, mtime %v (want %q, %v)", b, st.ModTime(), orig, old)
	}
	// With -y it is replaced by a complete recording.
	mustCLI(t, "demo", "--fast", "--duration", "1s", "-y", "-o", existing)
	finalised(t, existing)
}

// TestUsageErrors: bad flags and arguments exit 2 with one line, before
// anything is created.
func TestUsageErrors(t *testing.T) {
	e2e(t)
	t.Parallel()
	// Each case writes to its own directory: a failure must not hide the next.
	root := t.TempDir()
	const out = "OUT"
	for _, c := range []errorCase{
		{"size too small", []string{"demo", "--fast", "--size", "10x10", "-o", out}, 2, []string{"--size"}},
		{"size not a size", []string{"demo", "--fast", "--size", "big", "-o", out}, 2, []string{"--size"}},
		{"unknown layout", []string{"demo", "--fast", "--layout", "mosaic", "-o", out}, 2, []string{"mosaic"}},
		{"unknown fit", []string{"demo", "--fast", "--fit", "stretch", "-o", out}, 2, []string{"stretch"}},
		{"unknown preset", []string{"demo", "--fast", "--preset", "turbo", "-o", out}, 2, []string{"turbo"}},
		{"bad bitrate", []string{"demo", "--fast", "--video-bitrate", "lots", "-o", out}, 2, []string{"bitrate"}},
		{"unknown flag", []string{"demo", "--fast", "--bogus", "-o", out}, 2, []string{"bogus"}},
		{"unknown global flag", []string{"--bogus", "demo", "-o", out}, 2, []string{"bogus"}},
		{"no output", []string{"demo", "--fast"}, 2, []string{"--output"}},
		{"too many speakers", []string{"demo", "--fast", "--speakers", "17", "-o", out}, 2, []string{"17"}},
		{"freeze a speaker that is not there", []string{"demo", "--freeze", "9@1s", "-o", out}, 2, []string{"--freeze"}},
		{"compose without inputs", []string{"compose", "-o", out}, 2, []string{"--input"}},
		{"compose bad offset", []string{"compose", "-o", out, "--input", "file=a.webm,offset=soon"}, 2, []string{"offset"}},
		{"compose unknown key", []string{"compose", "-o", out, "--input", "file=a.webm,volume=3"}, 2, []string{"volume"}},
		{"compose stray argument", []string{"compose", "-o", out, "--input", "a.webm", "b.webm"}, 2, []string{"b.webm"}},
		{"unknown command", []string{"mosaic", "-o", out}, 2, []string{"mosaic"}},
		{"audio-only and video-only", []string{"demo", "--fast", "--audio-only", "--video-only", "-o", out}, 2, []string{"--audio-only"}},
		{"fps zero", []string{"demo", "--fast", "--fps", "0", "-o", out}, 2, []string{"--fps"}},
		{"fps negative", []string{"demo", "--fast", "--fps", "-5", "-o", out}, 2, []string{"--fps"}},
		{"fps too high", []string{"demo", "--fast", "--fps", "121", "-o", out}, 2, []string{"--fps"}},
		{"negative duration", []string{"demo", "--fast", "--duration", "-3s", "-o", out}, 2, []string{"duration"}},
		{"zero keyint", []string{"demo", "--fast", "--keyint", "0s", "-o", out}, 2, []string{"--keyint"}},
		{"audio bitrate too low", []string{"demo", "--fast", "--audio-bitrate", "1k", "-o", out}, 2, []string{"--audio-bitrate"}},
		{"video bitrate too low", []string{"demo", "--fast", "--video-bitrate", "10k", "-o", out}, 2, []string{"--video-bitrate"}},
		{"compose negative gap", []string{"compose", "-o", out, "--gap", "-2", "--input", "a.webm"}, 2, []string{"--gap"}},
		{"recover without file", []string{"recover"}, 2, []string{"FILE"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, err := os.MkdirTemp(root, "case")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "x.mp4")
			for i, a := range c.args {
				if a == out {
					c.args[i] = path
				}
			}
			checkFails(t, dir, path, c)
		})
	}
}

// umask reads the process's file mode creation mask (Linux).
func umask(t *testing.T) os.FileMode {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			return os.FileMode(m)
		}
	}
	t.Fatal("no Umask in /proc/self/status")
	return 0
}

// TestOutputFileMode: a finalised recording has the permissions of any file
// the user creates (0644 less the umask), so a web server or the next step
// of a pipeline can read it.
func TestOutputFileMode(t *testing.T) {
	e2e(t)
	t.Parallel()
	out := filepath.Join(t.TempDir(), "mode.mp4")
	mustCLI(t, "demo", "--fast", "--duration", "1s", "-o", out)
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := 0o644 &^ umask(t); st.Mode().Perm() != want {
		t.Errorf("%s has mode %v, want %v (0644 less the umask)", out, st.Mode().Perm(), want)
	}
}

// TestDiskFull fills a 3 MB tmpfs: exit 4 with one line saying so, and the
// file on it plays up to what was written.
func TestDiskFull(t *testing.T) {
	e2e(t)
	t.Parallel()
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a 3 MB tmpfs to fill (needs root or CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})
	out := filepath.Join(mnt, "full.mp4")
	// Every picture a keyframe at ultrafast: ~0.5 MB per second of media.
	r := runCLI(t, "demo", "--fast", "--duration", "30s", "--keyint", "34ms", "--x264-preset", "ultrafast", "-o", out)
	if r.code != 4 {
		t.Errorf("disk full: exit %d, want 4\n%s", r.code, tail(r.stderr, 10))
	}
	line := errorLine(t, r)
	if l := strings.ToLower(line); !strings.Contains(l, "disk full") && !strings.Contains(l, "no space") {
		t.Errorf("error line %q does not say the disk is full", line)
	}
	playable(t, out)
	p := ffprobe(t, out)
	d := atof(p.Format.Duration)
	t.Logf("disk full after %s of media, %d bytes", p.Format.Duration, fileSize(t, out))
	if math.IsNaN(d) || d < 1 || p.Stream("video") == nil {
		t.Errorf("the file left on the full disk holds %s s (streams %d), want the seconds written before it filled", p.Format.Duration, len(p.Streams))
	}
}
