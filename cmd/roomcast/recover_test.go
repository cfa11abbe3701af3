package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
