package testnet

import (
	"net"
	"strconv"
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
