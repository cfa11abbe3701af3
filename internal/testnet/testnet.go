// Package testnet gives tests the loopback ports for the servers they
// start (livekit-server, janus, nginx, node-media-server, Redis), so every
// harness picks them the same way and test traffic stays on 127.0.0.1.
package testnet

import "net"

// TB is what Ports needs of a testing.TB.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Ports returns n distinct ports of 127.0.0.1 on network ("tcp" or "udp")
// that were free a moment ago. They are held open together, so they
// differ, then released for the server to bind; on a test machine the
// window between is harmless.
func Ports(t TB, network string, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		switch network {
		case "udp":
			c, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("free UDP port: %v", err)
			}
			defer c.Close()
			ports = append(ports, c.LocalAddr().(*net.UDPAddr).Port)
		case "tcp":
			l, err := net.Listen("tcp4", "127.0.0.1:0")
			if err != nil {
				t.Fatalf("free TCP port: %v", err)
			}
			defer l.Close()
			ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		default:
			t.Fatalf("testnet: network %q, want tcp or udp", network)
		}
	}
	return ports
}

// Port is one free TCP port of 127.0.0.1.
func Port(t TB) int {
	t.Helper()
	return Ports(t, "tcp", 1)[0]
}
