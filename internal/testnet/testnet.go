// Package testnet gives tests the loopback ports for the servers they
// start (livekit-server, janus, nginx, node-media-server, Redis), so every
// harness picks them the same way and test traffic stays on 127.0.0.1.
//
// Tests run in parallel within a package, `go test ./...` without -p 1
// runs packages in parallel processes, and many tests start the same kind
// of server. A port taken from the kernel (bind to :0, close) can be handed
// out again, in this process or another, before our server binds it; CI
// once saw a test publish to another test's nginx that way.
// So ports are picked below the kernel's ephemeral range (where neither
// bind-to-0 nor outgoing connections land) and each one is reserved for the
// whole test by an flock on a file shared by all test processes of the
// machine. The lock dies with the process, so a killed test leaves nothing
// held.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// TB is what Ports needs of a testing.TB.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// The range ports are picked from: above the well-known and registered
// services most machines run, below Linux's default ephemeral range
// (32768-60999).
const (
	lowPort  = 20000
	highPort = 32767
)

// Ports returns n distinct ports of 127.0.0.1 on network ("tcp" or "udp"),
// free when picked and reserved against every other caller of this package
// on the machine until the test ends.
func Ports(t TB, network string, n int) []int {
	t.Helper()
	if network != "tcp" && network != "udp" {
		t.Fatalf("testnet: network %q, want tcp or udp", network)
	}
	dir := filepath.Join(os.TempDir(), "roomcast-testnet")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("testnet: %v", err)
	}
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 2000 {
			t.Fatalf("testnet: no free %s port in %d-%d after %d tries", network, lowPort, highPort, tries)
		}
		p := lowPort + rand.IntN(highPort-lowPort+1)
		f, ok := reserve(dir, p)
		if !ok {
			continue
		}
		if !free(network, p) {
			f.Close()
			continue
		}
		t.Cleanup(func() { f.Close() })
		ports = append(ports, p)
	}
	return ports
}

// Port is one free TCP port of 127.0.0.1.
func Port(t TB) int {
	t.Helper()
	return Ports(t, "tcp", 1)[0]
}

// reserve takes the port's lock file; the reservation lasts until f is
// closed or the process ends. A second reservation of the same port fails,
// in this process or another.
func reserve(dir string, port int) (f *os.File, ok bool) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// free reports whether a server could bind the port on 127.0.0.1 now.
func free(network string, port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if network == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}
