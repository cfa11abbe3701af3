package mp4

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/roomcast/roomcast/atrest"
	"github.com/roomcast/roomcast/atrest/atresttest"
)

func ageKey(t *testing.T) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(p, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, p
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

// TestEncryptedCrash records encrypted in a child process at real-time
// pace, scans the directory for plaintext MP4 boxes while it runs, kills it
// with SIGKILL after about 5 s, and checks that Decrypt recovers a playable
// file that lost at most 2 s.
func TestEncryptedCrash(t *testing.T) {
	t.Run("audio+video", func(t *testing.T) { encryptedCrash(t, false) })
	// 128 kb/s fills a 64 KiB chunk in 4 s: padding must seal it.
	t.Run("audio only", func(t *testing.T) { encryptedCrash(t, true) })
}

func encryptedCrash(t *testing.T, audioOnly bool) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := ageKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "crash.mp4.age")
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, crashKeyEnv+"="+id.Recipient().String())
	if audioOnly {
		cmd.Env = append(cmd.Env, crashAudioOnlyEnv+"=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "started" {
		t.Fatalf("child did not start: %q", lines.Text())
	}
	t0 := time.Now()
	for time.Since(t0) < 5*time.Second {
		noPlaintext(t, dir)
		time.Sleep(300 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	kill()
	noPlaintext(t, dir)

	out := filepath.Join(t.TempDir(), "crash.mp4")
	torn, err := Decrypt(path, out, []age.Identity{id}, false, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if !torn {
		t.Error("a killed recording decrypted as finished")
	}
	p := ffprobe(t, out, true)
	end := 1e9
	for _, kind := range []string{"video", "audio"} {
		if audioOnly && kind == "video" {
			continue
		}
		i, _, n := p.stream(t, kind)
		end = min(end, p.mediaEnd(i))
		if kind == "audio" && n >= fix.audio {
			t.Errorf("child wrote everything (%d packets) before the kill; the test proves nothing", n)
		}
	}
	t.Logf("killed after %v: decrypted media up to %.3f s; lost %.3f s",
		elapsed.Round(time.Millisecond), end, elapsed.Seconds()-end)
	if want := elapsed.Seconds() - 2; end < want {
		t.Errorf("file plays %.3f s, want at least %.3f s", end, want)
	}
	decodeAll(t, out)
	finalisedBoxes(t, out)
}

// finalisedBoxes checks that the moov comes before the mdat and no
// fragment is left.
func finalisedBoxes(t *testing.T, path string) {
	t.Helper()
	moov, mdat := -1, -1
	for i, b := range boxTypes(topBoxes(t, path)) {
		switch b {
		case "moov":
			moov = i
		case "mdat":
			mdat = i
		case "moof":
			t.Errorf("%s still fragmented", path)
			return
		}
	}
	if moov < 0 || mdat < moov {
		t.Errorf("%s: moov at %d, mdat at %d: not faststart", path, moov, mdat)
	}
}

// TestEncryptedClose writes the whole fixture encrypted and closes: the
// file is a standard age file (the age tool decrypts it to a playable
// fragmented MP4), Decrypt gives a faststart MP4 of the full duration, and
// a wrong key is ErrWrongKey with nothing written.
func TestEncryptedClose(t *testing.T) {
	id, keyFile := ageKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.mp4.age")
	w, err := Create(path, fix.info, Options{Encrypt: []age.Recipient{id.Recipient()}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, fix.packets)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	noPlaintext(t, dir)
	t.Logf("plaintext %d bytes, %d of them padding", w.Bytes(), w.padded)

	outDir := t.TempDir()
	out := filepath.Join(outDir, "rec.mp4")
	torn, err := Decrypt(path, out, []age.Identity{id}, false, testLog(t))
	if err != nil || torn {
		t.Fatalf("decrypt: torn %v, %v", torn, err)
	}
	p := ffprobe(t, out, true)
	vi, _, vn := p.stream(t, "video")
	ai, _, an := p.stream(t, "audio")
	if vn != fix.video || an != fix.audio {
		t.Errorf("decrypted %d video and %d audio packets, wrote %d and %d", vn, an, fix.video, fix.audio)
	}
	if end := min(p.mediaEnd(vi), p.mediaEnd(ai)); end < fix.duration.Seconds()-0.1 {
		t.Errorf("decrypted file plays %.3f s of %v", end, fix.duration)
	}
	finalisedBoxes(t, out)
	decodeAll(t, out)

	if _, err := exec.LookPath("age"); err != nil {
		t.Log("age tool not installed (make peers); skipping the interoperability check")
	} else {
		byAge := filepath.Join(outDir, "by-age.mp4")
		if b, err := exec.Command("age", "-d", "-i", keyFile, "-o", byAge, path).CombinedOutput(); err != nil {
			t.Fatalf("age -d: %v: %s", err, b)
		}
		f, _ := os.Open(path)
		r, err := atrest.Decrypt(f, []age.Identity{id})
		if err != nil {
			t.Fatal(err)
		}
		ours, err := io.ReadAll(r)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		theirs, _ := os.ReadFile(byAge)
		if !bytes.Equal(ours, theirs) {
			t.Errorf("age -d gives %d bytes, atrest %d", len(theirs), len(ours))
		}
		q := ffprobe(t, byAge, true)
		if _, _, n := q.stream(t, "video"); n != fix.video {
			t.Errorf("age -d output holds %d video packets, want %d", n, fix.video)
		}
		decodeAll(t, byAge)
	}

	other, _ := ageKey(t)
	wrong := filepath.Join(outDir, "wrong.mp4")
	if _, err := Decrypt(path, wrong, []age.Identity{other}, false, testLog(t)); !errors.Is(err, atrest.ErrWrongKey) {
		t.Errorf("wrong key: %v, want ErrWrongKey", err)
	}
	if _, err := os.Stat(wrong); !os.IsNotExist(err) {
		t.Errorf("wrong key left %s", wrong)
	}
}
