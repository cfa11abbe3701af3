package testnet

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPortsDistinctAndBindable: the ports differ and a server can bind
// each of them on 127.0.0.1 afterwards.
func TestPortsDistinctAndBindable(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		ports := Ports(t, network, 5)
		seen := map[int]bool{}
		for _, p := range ports {
			if seen[p] || p <= 0 {
				t.Fatalf("%s ports %v: not distinct", network, ports)
			}
			seen[p] = true
			addr := "127.0.0.1:" + strconv.Itoa(p)
			if network == "udp" {
				c, err := net.ListenPacket("udp4", addr)
				if err != nil {
					t.Fatalf("binding %s/%s: %v", network, addr, err)
				}
				c.Close()
			} else {
				l, err := net.Listen("tcp4", addr)
				if err != nil {
					t.Fatalf("binding %s/%s: %v", network, addr, err)
				}
				l.Close()
			}
		}
	}
}

// TestPortsReservedAcrossProcesses: while a test holds a port, no other
// test, of this process or another, can be given it (the CI failure: two
// parallel tests' nginx on one port); when the test ends the port is
// released.
func TestPortsReservedAcrossProcesses(t *testing.T) {
	if p := os.Getenv("TESTNET_CHILD_PORT"); p != "" {
		port, _ := strconv.Atoi(p)
		f, ok := reserve(filepath.Join(os.TempDir(), "roomcast-testnet"), port)
		if ok {
			f.Close()
			fmt.Println("RESERVED")
		} else {
			fmt.Println("REFUSED")
		}
		return
	}
	child := func(port int) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPortsReservedAcrossProcesses$")
		cmd.Env = append(os.Environ(), "TESTNET_CHILD_PORT="+strconv.Itoa(port))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return string(out)
	}
	var port int
	t.Run("held", func(t *testing.T) {
		port = Port(t)
		if port < lowPort || port > highPort {
			t.Fatalf("port %d outside %d-%d", port, lowPort, highPort)
		}
		if f, ok := reserve(filepath.Join(os.TempDir(), "roomcast-testnet"), port); ok {
			f.Close()
			t.Fatalf("another test of this process could reserve held port %d", port)
		}
		if out := child(port); !strings.Contains(out, "REFUSED") {
			t.Fatalf("another process could reserve held port %d: %s", port, out)
		}
	})
	if out := child(port); !strings.Contains(out, "RESERVED") {
		t.Fatalf("port %d still held after its test ended: %s", port, out)
	}
}
