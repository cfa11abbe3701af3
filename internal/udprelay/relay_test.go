package udprelay

import (
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"
)

// echoServer answers each datagram with itself and records who sent it.
func echoServer(t *testing.T) (*net.UDPConn, chan string) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	from := make(chan string, 1024)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, a, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			select {
			case from <- a.String():
			default:
			}
			_, _ = c.WriteToUDP(buf[:n], a)
		}
	}()
	t.Cleanup(func() { c.Close() })
	return c, from
}

// TestRelayDelaysAndReorders: two clients send numbered datagrams through
// the relay to an echo server. Every echo comes back (loopback loses
// nothing), held 0–20 ms each, so some overtake others; the server sees
// each client as its own address, none of them the client's own.
func TestRelayDelaysAndReorders(t *testing.T) {
	before := runtime.NumGoroutine()
	srv, from := echoServer(t)
	r, err := Start(Config{Listen: "127.0.0.1:0", Server: srv.LocalAddr().String(), UpstreamIP: "127.0.0.1",
		Delay: Uniform(0, 20*time.Millisecond, 1)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var clients []*net.UDPConn
	for range 2 {
		c, err := net.DialUDP("udp4", nil, r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// Read while sending: a socket buffer holds only so many datagrams.
	type result struct {
		got, reordered int
		err            error
	}
	results := make(chan result, len(clients))
	for _, c := range clients {
		go func() {
			got := map[uint32]bool{}
			reordered, last := 0, -1
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for len(got) < n {
				var b [4]byte
				if _, err := c.Read(b[:]); err != nil {
					results <- result{len(got), reordered, err}
					return
				}
				i := int(binary.BigEndian.Uint32(b[:]))
				if i < last {
					reordered++
				}
				last = max(last, i)
				got[uint32(i)] = true
			}
			results <- result{len(got), reordered, nil}
		}()
	}
	start := time.Now()
	for i := range n {
		for _, c := range clients {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(i))
			if _, err := c.Write(b[:]); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	for range clients {
		res := <-results
		if res.err != nil {
			t.Fatalf("%d of %d echoes back: %v", res.got, n, res.err)
		}
		if res.reordered == 0 {
			t.Errorf("no echo overtook another")
		}
		t.Logf("%d echoes, %d out of order", res.got, res.reordered)
	}
	if el := time.Since(start); el < time.Duration(n)*time.Millisecond {
		t.Errorf("took %v", el)
	}
	// The relay counts a datagram once its write returned, which can be
	// after the client has read it: let the counters settle.
	st := r.Stats()
	for wait := time.Now().Add(2 * time.Second); (st.Down < 2*n || st.Up < 2*n) && time.Now().Before(wait); st = r.Stats() {
		time.Sleep(5 * time.Millisecond)
	}
	if st.Up != 2*n || st.Down != 2*n || st.Flows != 2 || st.Reordered == 0 {
		t.Errorf("stats %+v, want %d each way, 2 flows, some reordered", st, 2*n)
	}
	seen := map[string]bool{}
	for len(from) > 0 {
		seen[<-from] = true
	}
	for _, c := range clients {
		if seen[c.LocalAddr().String()] {
			t.Errorf("the server heard the client %s directly", c.LocalAddr())
		}
	}
	if len(seen) != 2 {
		t.Errorf("the server heard %d peers (%v), want one per client", len(seen), seen)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close() // idempotent
	srv.Close()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after Close, %d before", g, before)
	}
}

func TestUniform(t *testing.T) {
	d := Uniform(10*time.Millisecond, 60*time.Millisecond, 7)
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		v := d()
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo < 10*time.Millisecond || hi > 60*time.Millisecond || lo > 12*time.Millisecond || hi < 58*time.Millisecond {
		t.Errorf("range [%v, %v], want about [10ms, 60ms]", lo, hi)
	}
}
