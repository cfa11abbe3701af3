package mp4

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/roomcast/roomcast/media"
)

// crashEnv, when set, makes the test binary a crash child that records to
// the path it names, in real time, until it is killed.
const crashEnv = "MP4_TEST_CRASH_OUT"

// crashAudioOnlyEnv, when set, makes the crash child record the audio alone.
const crashAudioOnlyEnv = "MP4_TEST_CRASH_AUDIO_ONLY"

// crashKeyEnv, when set, makes the crash child encrypt to this recipient.
const crashKeyEnv = "MP4_TEST_CRASH_KEY"

func crashChild(out string) {
	fx, err := makeFixture(os.Getenv(fixtureEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fixture:", err)
		os.Exit(2)
	}
	var opts Options
	if k := os.Getenv(crashKeyEnv); k != "" {
		r, err := age.ParseX25519Recipient(k)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		opts.Encrypt = []age.Recipient{r}
	}
	info := fx.info
	audioOnly := os.Getenv(crashAudioOnlyEnv) != ""
	if audioOnly { // a low bitrate: the encrypted writer must pad to seal
		info.Width, info.Height, info.VideoConfig = 0, 0, nil
	}
	w, err := Create(out, info, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	t0 := time.Now()
	fmt.Println("started")
	base := fx.packets[0].DTS
	for _, p := range fx.packets {
		if audioOnly && p.Kind != media.KindAudio {
			continue
		}
		time.Sleep(time.Until(t0.Add(p.DTS - base)))
		if err := w.WritePacket(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	fmt.Println("done") // the parent kills us before this
	select {}
}

// TestCrash records in a child process at real-time pace, kills it with
// SIGKILL after about 5 s and checks that the file plays to its end and
// lost at most 2 s.
func TestCrash(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "crash.mp4")
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
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
	time.Sleep(5 * time.Second)
	elapsed := time.Since(t0)
	kill()

	p := ffprobe(t, path, true)
	vi, vc, vn := p.stream(t, "video")
	ai, ac, an := p.stream(t, "audio")
	if vc != "h264" || ac != "aac" {
		t.Errorf("codecs %s/%s", vc, ac)
	}
	vEnd, aEnd := p.mediaEnd(vi), p.mediaEnd(ai)
	t.Logf("killed after %v: %d video packets up to %.3f s, %d audio up to %.3f s; lost %.3f s",
		elapsed.Round(time.Millisecond), vn, vEnd, an, aEnd, elapsed.Seconds()-min(vEnd, aEnd))
	if got, want := min(vEnd, aEnd), elapsed.Seconds()-2; got < want {
		t.Errorf("file plays %.3f s, want at least %.3f s", got, want)
	}
	if vn >= fix.video {
		t.Errorf("child wrote everything (%d packets) before the kill; the test proves nothing", vn)
	}
	decodeAll(t, path)
	if out, err := exec.Command("ls", "-la", filepath.Dir(path)).Output(); err == nil && strings.Contains(string(out), ".tmp") {
		t.Errorf("unexpected temporary file: %s", out)
	}
}
