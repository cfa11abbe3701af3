package lktest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/testnet"
)

// Redis is a redis-server process on 127.0.0.1 (Debian's, installed by
// scripts/peers.d/50-redis.sh) with no persistence: livekit-server's message
// bus and egress store for egress-worker tests.
type Redis struct {
	// Addr is 127.0.0.1:<port>.
	Addr string
}

// StartRedis starts redis-server on a free loopback port, without
// persistence, and waits until it accepts connections. It is killed on test
// cleanup (and by the kernel if the test binary dies).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("lktest: redis-server not installed (run scripts/peers.sh as root): %v", err)
	}
	dir := t.TempDir()
	port := testnet.Port(t)
	logPath := filepath.Join(dir, "redis.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes", "--daemonize", "no")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("lktest: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("redis-server log:\n%s", b)
		}
	})
	r := &Redis{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.Addr, time.Second)
		if err == nil {
			// A PING answered means it is ready, not just listening.
			_, _ = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if n > 0 && string(buf[:n]) == "+PONG\r\n" {
				return r
			}
		}
		select {
		case <-exited:
			t.Fatal("lktest: redis-server exited during start-up")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("lktest: redis-server not ready after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
