package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRecoverCommand: a live recording killed with SIGKILL is turned by
// `roomcast recover` into a finalised MP4 that starts at 0 (picture and
// sound, priming in the edit list) and plays; the report says how much was
// kept, matching the file; a second run leaves the file alone; a file that
// is not a recording is an input error (exit 3).
func TestRecoverCommand(t *testing.T) {
	e2e(t)
	t.Parallel()
	out := filepath.Join(t.TempDir(), "killed.mp4")
	var se bytes.Buffer
	r := startLive(t, out, &se)
	// Until a few fragments are on disk (the machine may be loaded).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st, err := os.Stat(out); err == nil && st.Size() > 150_000 {
			break
		}
	}
	if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.done
	// Tear the last fragment as a kill inside a write would.
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := []byte{0, 0, 0x40, 0, 'm', 'o', 'o', 'f', 1, 2, 3}
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()

	res := mustCLI(t, "recover", out)
	t.Logf("report: %s", res.stdout)
	m := regexp.MustCompile(`recovered ([0-9.]+)s in (\d+) fragments \((\d+) bytes\); dropped a torn tail of (\d+) bytes`).FindStringSubmatch(res.stdout)
	if m == nil {
		t.Fatalf("report %q does not say what was kept", res.stdout)
	}
	if m[4] != strconv.Itoa(len(torn)) {
		t.Errorf("report drops %s bytes, the torn tail was %d", m[4], len(torn))
	}
	finalised(t, out)
	playable(t, out)
	checkStartsAtZero(t, out)
	p := ffprobe(t, out)
	if d := atof(p.Format.Duration); d < 2 || abs(int(1000*(d-atof(m[1])))) > 50 {
		t.Errorf("file holds %.3f s, report says %s s (want ≥ 2 s, matching)", d, m[1])
	}
	if fileSize(t, out) != int64(atoi(m[3])) {
		t.Errorf("report says %s bytes, file has %d", m[3], fileSize(t, out))
	}
	if fileSize(t, out) >= st.Size() {
		t.Logf("finalised %d bytes from %d fragmented", fileSize(t, out), st.Size())
	}

	again := mustCLI(t, "recover", out)
	if !regexp.MustCompile(`already a finalised MP4`).MatchString(again.stdout) {
		t.Errorf("second recover: %q, want it to leave the file alone", again.stdout)
	}
	notMP4 := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notMP4, []byte("hello, this is not a recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "recover", notMP4); r.code != exitInput {
		t.Errorf("recover of a text file: exit %d, want %d (%s)", r.code, exitInput, r.stderr)
	}
}

// TestRecordRecoversTornOutput: `record` restarted after a crash onto the
// same -o path (a supervisor restarting the job) finds the earlier run's
// torn file there: it recovers it (torn tail cut, finalised, starts at 0)
// and moves it aside under a name of its own, records the new run at the
// path, and says so in its log. Nothing the first run recorded is lost,
// with or without -y; a finalised file at the path is still refused
// without -y and left untouched.
func TestRecordRecoversTornOutput(t *testing.T) {
	e2e(t)
	t.Parallel()
	dir := t.TempDir()
	out := filepath.Join(dir, "weekly.mp4")
	crash := func() (keptAtLeast float64) {
		t.Helper()
		var se bytes.Buffer
		r := startLive(t, out, &se)
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if st, err := os.Stat(out); err == nil && st.Size() > 150_000 {
				break
			}
		}
		if err := syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-r.done
		// What a player shows of the fragmented file before any recovery.
		before := atof(ffprobe(t, out).Format.Duration)
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte{0, 0, 0x40, 0, 'm', 'o', 'o', 'f', 1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return before
	}
	asides := func() []string {
		m, err := filepath.Glob(filepath.Join(dir, "weekly.recovered-*.mp4"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	checkRun := func(before float64, wantAsides int, extra ...string) {
		t.Helper()
		res := runCLI(t, append([]string{"record", "--room", "demo:?speakers=2", "--duration", "2s", "-o", out}, extra...)...)
		if res.code != 0 {
			t.Fatalf("record over a torn file: exit %d\n%s", res.code, tail(res.stderr, 20))
		}
		if !strings.Contains(res.stderr, "torn by a crash: recovered and moved aside") {
			t.Errorf("record's log does not say the torn file was recovered and moved aside:\n%s", tail(res.stderr, 20))
		}
		as := asides()
		if len(as) != wantAsides {
			t.Fatalf("want %d recovered files next to %s, found %v", wantAsides, out, as)
		}
		newest := ""
		for _, a := range as {
			if !strings.Contains(res.stderr, a) && !strings.Contains(res.stderr, strings.ReplaceAll(a, `\`, `\\`)) {
				continue
			}
			newest = a
		}
		if newest == "" {
			t.Fatalf("the log names none of %v as where the torn recording went:\n%s", as, tail(res.stderr, 20))
		}
		finalised(t, newest)
		playable(t, newest)
		checkStartsAtZero(t, newest)
		kept := atof(ffprobe(t, newest).Format.Duration)
		if kept < 2 || kept < before-1.1 {
			t.Errorf("recovered %s holds %.2f s; the torn file played %.2f s (a fragment is at most 1 s)", newest, kept, before)
		}
		// The new run is at the path, complete and its own.
		finalised(t, out)
		playable(t, out)
		if d := atof(ffprobe(t, out).Format.Duration); d < 1.9 || d > 2.2 {
			t.Errorf("new recording holds %.2f s, want the 2 s of --duration", d)
		}
	}
	before := crash()
	checkRun(before, 1)
	// Again, now with -y: -y replaces finished recordings, never torn ones.
	if err := os.Remove(out); err != nil { // the demo below refuses an existing file
		t.Fatal(err)
	}
	before = crash()
	checkRun(before, 2, "-y")

	// A finalised recording at the path is refused without -y, untouched.
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "record", "--room", "demo:", "--duration", "1s", "-o", out); r.code != exitOutput {
		t.Errorf("record over a finalised file without -y: exit %d, want %d", r.code, exitOutput)
	}
	if st2, err := os.Stat(out); err != nil || st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime()) || len(asides()) != 2 {
		t.Errorf("the finalised recording was touched or moved (%v, %d asides)", err, len(asides()))
	}
}
