package main

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/roomcast/roomcast/atrest/atresttest"
)

// ageKeyFile makes an identity file and returns it with its public key.
func ageKeyFile(t *testing.T) (keyFile, recipient string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, id.Recipient().String()
}

func noPlaintext(t *testing.T, dir string) {
	t.Helper()
	found, err := atresttest.ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("plaintext on disk: %s", f)
	}
}

// TestDemoEncryptedKill9: a live recording encrypted with --encrypt-to and
// killed with SIGKILL after 6 s never leaves a plaintext MP4 box on disk
// (scanned while it runs and after), and `roomcast decrypt` recovers a
// finalised, playable MP4 that lost at most 2 s. A wrong key is exit 7
// and writes nothing; a file that is not encrypted is exit 3.
func TestDemoEncryptedKill9(t *testing.T) {
	e2e(t)
	t.Parallel()
	keyFile, rcpt := ageKeyFile(t)
	dir := t.TempDir()
	enc := filepath.Join(dir, "live.mp4.age")
	cmd := exec.Command(bin, "demo", "--duration", "60s", "-o", enc, "--encrypt-to", rcpt)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var se bytes.Buffer
	cmd.Stderr = &se
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	for time.Since(start) < 6*time.Second {
		noPlaintext(t, dir)
		time.Sleep(250 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	noPlaintext(t, dir)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("the output directory holds %d entries, want the encrypted recording alone", len(ents))
	}

	outDir := t.TempDir()
	out := filepath.Join(outDir, "live.mp4")
	r := mustCLI(t, "decrypt", "--identity", keyFile, "-o", out, enc)
	if !strings.Contains(r.stderr, "cut short") {
		t.Errorf("decrypting a killed recording did not say it was cut short:\n%s", tail(r.stderr, 5))
	}
	finalised(t, out)
	playable(t, out)
	pk := probePackets(t, out, "v")
	var last float64
	for _, q := range pk {
		last = math.Max(last, q.PTS)
	}
	v0, _ := origins(t, out)
	media := last - v0 + 1.0/30
	t.Logf("killed after %.2f s: decrypted %d pictures, %.2f s of video, %d bytes encrypted", elapsed.Seconds(), len(pk), media, fileSize(t, enc))
	if media < elapsed.Seconds()-2 {
		t.Errorf("killed after %.2f s, the decrypted file holds %.2f s of video: want ≥ %.2f s (at most 2 s lost)", elapsed.Seconds(), media, elapsed.Seconds()-2)
	}

	wrongKey, _ := ageKeyFile(t)
	wrongOut := filepath.Join(outDir, "wrong.mp4")
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"wrong key", []string{"decrypt", "-i", wrongKey, "-o", wrongOut, enc}, exitKey, "wrong key"},
		{"missing identity file", []string{"decrypt", "-i", filepath.Join(outDir, "none.txt"), "-o", wrongOut, enc}, exitKey, "identity"},
		{"not encrypted", []string{"decrypt", "-i", keyFile, "-o", wrongOut, out}, exitInput, "not an age-encrypted file"},
		{"no identity", []string{"decrypt", "-o", wrongOut, enc}, exitUsage, "identity"},
		{"existing output", []string{"decrypt", "-i", keyFile, "-o", out, enc}, exitOutput, "exists"},
	} {
		r := runCLI(t, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", c.name, r.code, c.code, c.msg, tail(r.stderr, 3))
		}
		if _, err := os.Stat(wrongOut); !os.IsNotExist(err) {
			t.Errorf("%s: %s was written", c.name, wrongOut)
		}
	}
}

// TestEncryptedFinished: demo and compose with --encrypt-to-file write a
// finished encrypted recording that the standard age tool decrypts to a
// playable MP4 of the full length, as does `roomcast decrypt` (finalised).
func TestEncryptedFinished(t *testing.T) {
	e2e(t)
	t.Parallel()
	keyFile, rcpt := ageKeyFile(t)
	dir := t.TempDir()
	rf := filepath.Join(t.TempDir(), "recipients.txt")
	if err := os.WriteFile(rf, []byte("# archive key\n"+rcpt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(t.TempDir(), "in.mp4")
	generate(t, in, solidInput("red", "320x240", 30, 440, 3, "h264", "aac"))
	runs := map[string][]string{
		"demo":    {"demo", "--fast", "--duration", "3s", "--encrypt-to-file", rf, "-o", filepath.Join(dir, "demo.mp4.age")},
		"compose": {"compose", "--input", "file=" + in + ",name=Red", "--encrypt-to-file", rf, "-o", filepath.Join(dir, "compose.mp4.age")},
	}
	for name, args := range runs {
		mustCLI(t, args...)
		enc := args[len(args)-1]
		noPlaintext(t, dir)
		out := filepath.Join(t.TempDir(), name+".mp4")
		r := mustCLI(t, "decrypt", "-i", keyFile, "-o", out, enc)
		if strings.Contains(r.stderr, "cut short") {
			t.Errorf("%s: a finished recording decrypted as torn", name)
		}
		finalised(t, out)
		playable(t, out)
		// The same run unencrypted gives the same pictures.
		plain := filepath.Join(t.TempDir(), name+"-plain.mp4")
		mustCLI(t, append(args[:len(args)-4:len(args)-4], "-o", plain)...)
		n, _ := strconv.Atoi(ffprobe(t, out, "-count_frames").Stream("video").NbReadFrames)
		want, _ := strconv.Atoi(ffprobe(t, plain, "-count_frames").Stream("video").NbReadFrames)
		if n != want || n < 90 {
			t.Errorf("%s: decrypted %d frames, the unencrypted run %d (want about 90: 3 s at 30 fps)", name, n, want)
		}
		if _, err := exec.LookPath("age"); err != nil {
			t.Errorf("the age tool is not installed (make peers): cannot check that it decrypts the recording")
			continue
		}
		byAge := filepath.Join(t.TempDir(), name+"-age.mp4")
		if b, err := exec.Command("age", "-d", "-i", keyFile, "-o", byAge, enc).CombinedOutput(); err != nil {
			t.Fatalf("%s: age -d: %v: %s", name, err, b)
		}
		playable(t, byAge)
		if m, _ := strconv.Atoi(ffprobe(t, byAge, "-count_frames").Stream("video").NbReadFrames); m != n {
			t.Errorf("%s: age -d gives %d frames, roomcast decrypt %d", name, m, n)
		}
	}
	// Bad recipients are usage errors that create nothing.
	for _, bad := range [][]string{
		{"--encrypt-to", "age1notakey"},
		{"--encrypt-to-file", filepath.Join(dir, "none.txt")},
		{"--encrypt-to-file", keyFile}, // an identity file by mistake
	} {
		out := filepath.Join(dir, "bad.mp4")
		r := runCLI(t, append([]string{"demo", "--fast", "--duration", "1s", "-o", out}, bad...)...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", bad, r.code, exitUsage, tail(r.stderr, 3))
		}
		if b, _ := os.ReadFile(keyFile); strings.Contains(r.stderr, strings.TrimSpace(string(b))) {
			t.Errorf("%v: the error shows the secret key", bad)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: %s was created", bad, out)
		}
	}
}
