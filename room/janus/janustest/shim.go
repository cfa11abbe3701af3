package janustest

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

//go:embed shim/loopback.c
var shimSource []byte

var shim struct {
	once sync.Once
	path string
	err  error
}

// LoopbackShim returns the LD_PRELOAD library that lets janus gather ICE
// candidates on lo (see shim/loopback.c), building it with cc once per
// source version into the roomcast cache ($ROOMCAST_CACHE, default
// ~/.cache/roomcast; a fresh temporary directory if neither is writable).
func LoopbackShim(t testing.TB) string {
	t.Helper()
	shim.once.Do(func() { shim.path, shim.err = buildShim() })
	if shim.err != nil {
		t.Fatalf("janustest: loopback shim: %v", shim.err)
	}
	return shim.path
}

func buildShim() (string, error) {
	sum := sha256.Sum256(shimSource)
	name := "janus-loopback-" + hex.EncodeToString(sum[:6]) + ".so"
	var dirs []string
	if d := os.Getenv("ROOMCAST_CACHE"); d != "" {
		dirs = append(dirs, filepath.Join(d, "janustest"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".cache", "roomcast", "janustest"))
	}
	var last error
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if last = compileShim(dir, p); last == nil {
			return p, nil
		}
	}
	dir, err := os.MkdirTemp("", "janustest-shim-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if err := compileShim(dir, p); err != nil {
		return "", fmt.Errorf("%v (cache: %v)", err, last)
	}
	return p, nil
}

// compileShim builds into a temporary name and renames, so concurrent
// test binaries never load a half-written library.
func compileShim(dir, out string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src, err := os.CreateTemp(dir, "loopback-*.c")
	if err != nil {
		return err
	}
	defer os.Remove(src.Name())
	if _, err := src.Write(shimSource); err != nil {
		src.Close()
		return err
	}
	src.Close()
	tmp := out + fmt.Sprintf(".%d.tmp", os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.Command("cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", tmp, src.Name(), "-ldl")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cc: %v: %s", err, b)
	}
	return os.Rename(tmp, out)
}
