// Package udprelay is a userspace UDP relay for impaired-network tests: it
// stands between WebRTC clients and a media server (a livekit-server that
// advertises the relay's address as its own) and holds each datagram the
// server sends for a random time, so packets arrive late and out of order,
// as over a jittery network. The kernel's netem qdisc would do this, but
// the test machines have none; loss and blackouts stay with nftables.
//
// The relay works like a NAT: every client address gets its own upstream
// socket, so the server sees one peer per client and ICE (which checks the
// addresses it hears from) works through it.
package udprelay

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes a relay. Listen and Server are required.
type Config struct {
	// Listen is the address clients send to ("127.0.0.2:7882").
	Listen string
	// Server is where the datagrams go ("127.0.0.1:7882").
	Server string
	// UpstreamIP is the local address the per-client upstream sockets bind
	// to, so that a firewall rule can tell relayed traffic from direct
	// traffic. It defaults to any.
	UpstreamIP string
	// Delay is how long each server → client datagram is held, drawn per
	// datagram (see Uniform). It defaults to none. Client → server
	// datagrams are forwarded at once.
	Delay func() time.Duration
}

// Uniform returns a Delay drawn uniformly from [lo, hi] with its own seeded
// generator (safe for concurrent use).
func Uniform(lo, hi time.Duration, seed uint64) func() time.Duration {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return func() time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return lo + time.Duration(r.Int64N(int64(hi-lo)+1))
	}
}

// Stats count what the relay forwarded.
type Stats struct {
	// Up and Down are datagrams forwarded to the server and to clients.
	Up, Down uint64
	// Reordered are the Down datagrams delivered after one the server sent
	// later.
	Reordered uint64
	// Flows is the number of client addresses seen.
	Flows int
}

// Relay is a running relay. Close stops it.
type Relay struct {
	cfg    Config
	server *net.UDPAddr
	down   *net.UDPConn

	mu    sync.Mutex
	flows map[netip.AddrPort]*net.UDPConn

	qmu   sync.Mutex
	queue delayQueue
	sent  uint64 // order of arrival from the server
	wake  chan struct{}

	up, delivered, reordered atomic.Uint64
	maxDelivered             uint64 // the highest arrival order delivered (scheduler only)

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Start listens on cfg.Listen and starts forwarding.
func Start(cfg Config) (*Relay, error) {
	laddr, err := net.ResolveUDPAddr("udp4", cfg.Listen)
	if err != nil {
		return nil, err
	}
	server, err := net.ResolveUDPAddr("udp4", cfg.Server)
	if err != nil {
		return nil, err
	}
	down, err := net.ListenUDP("udp4", laddr)
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, server: server, down: down, flows: map[netip.AddrPort]*net.UDPConn{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	r.wg.Add(2)
	go r.readClients()
	go r.schedule()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() *net.UDPAddr { return r.down.LocalAddr().(*net.UDPAddr) }

// Stats returns the counters. Safe from any goroutine.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	n := len(r.flows)
	r.mu.Unlock()
	return Stats{Up: r.up.Load(), Down: r.delivered.Load(), Reordered: r.reordered.Load(), Flows: n}
}

// Close stops forwarding, drops what is held and waits for its goroutines.
// Idempotent.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.down.Close()
		r.mu.Lock()
		for _, c := range r.flows {
			c.Close()
		}
		r.mu.Unlock()
	})
	r.wg.Wait()
	return nil
}

// readClients forwards client datagrams upstream, opening a flow per
// client address.
func (r *Relay) readClients() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.down.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		up := r.flow(from)
		if up == nil {
			continue
		}
		if _, err := up.Write(buf[:n]); err == nil {
			r.up.Add(1)
		}
	}
}

// flow returns the upstream socket of a client, opening it (and its reader)
// on first use; nil once closed or when it cannot be opened.
func (r *Relay) flow(client netip.AddrPort) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.flows[client]; c != nil {
		return c
	}
	select {
	case <-r.stop:
		return nil
	default:
	}
	var local *net.UDPAddr
	if r.cfg.UpstreamIP != "" {
		local = &net.UDPAddr{IP: net.ParseIP(r.cfg.UpstreamIP)}
	}
	c, err := net.DialUDP("udp4", local, r.server)
	if err != nil {
		return nil
	}
	r.flows[client] = c
	r.wg.Add(1)
	go r.readServer(c, client)
	return c
}

// readServer queues the server's datagrams for one client, each with its
// own delay.
func (r *Relay) readServer(c *net.UDPConn, client netip.AddrPort) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an earlier send: keep going
		}
		var d time.Duration
		if r.cfg.Delay != nil {
			d = r.cfg.Delay()
		}
		b := append([]byte(nil), buf[:n]...)
		r.qmu.Lock()
		r.sent++
		heap.Push(&r.queue, &held{due: time.Now().Add(d), order: r.sent, to: client, b: b})
		r.qmu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// schedule delivers held datagrams when they are due.
func (r *Relay) schedule() {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now()
		next := time.Hour
		for {
			r.qmu.Lock()
			if r.queue.Len() == 0 {
				r.qmu.Unlock()
				break
			}
			h := r.queue[0]
			if h.due.After(now) {
				next = h.due.Sub(now)
				r.qmu.Unlock()
				break
			}
			heap.Pop(&r.queue)
			r.qmu.Unlock()
			if _, err := r.down.WriteToUDPAddrPort(h.b, h.to); err == nil {
				r.delivered.Add(1)
				if h.order < r.maxDelivered {
					r.reordered.Add(1)
				} else {
					r.maxDelivered = h.order
				}
			}
		}
		timer.Reset(next)
		select {
		case <-r.stop:
			return
		case <-r.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// held is a datagram waiting for its time.
type held struct {
	due   time.Time
	order uint64
	to    netip.AddrPort
	b     []byte
}

// delayQueue is a min-heap by due time (container/heap).
type delayQueue []*held

func (q delayQueue) Len() int { return len(q) }
func (q delayQueue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return q[i].order < q[j].order
	}
	return q[i].due.Before(q[j].due)
}
func (q delayQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *delayQueue) Push(x any)   { *q = append(*q, x.(*held)) }
func (q *delayQueue) Pop() any {
	old := *q
	h := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return h
}
