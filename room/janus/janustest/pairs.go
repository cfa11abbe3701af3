package janustest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// SelectedPair is an ICE candidate pair Janus selected for one handle's
// PeerConnection, as its event handler reported it.
type SelectedPair struct {
	Handle uint64
	// OpaqueID is what the client attached with ("roomcast" for roomcast's
	// handles, "janustest-pion-…" and "janustest-chromium-…" for the test
	// publishers).
	OpaqueID string
	// Local is Janus's side, Remote the client's: "address:port".
	Local, Remote     string
	LocalIP, RemoteIP string
	// Raw is Janus's text of the pair.
	Raw string
}

// pairCollector receives the WebRTC events of janus's sample event
// handler (HTTP POSTs on 127.0.0.1) and keeps the selected pairs.
type pairCollector struct {
	url string
	srv *http.Server
	ln  net.Listener

	mu    sync.Mutex
	pairs []SelectedPair
	bad   []string // undecodable selected-pair events
}

func startPairCollector(t testing.TB) *pairCollector {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &pairCollector{ln: ln, url: fmt.Sprintf("http://%s/events", ln.Addr())}
	c.srv = &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c
}

func (c *pairCollector) close() { _ = c.srv.Close() }

type evhEvent struct {
	Type     int             `json:"type"`
	Handle   uint64          `json:"handle_id"`
	OpaqueID string          `json:"opaque_id"`
	Event    json.RawMessage `json:"event"`
}

func (c *pairCollector) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	w.WriteHeader(http.StatusOK)
	var evs []evhEvent
	if len(body) > 0 && body[0] == '[' {
		_ = json.Unmarshal(body, &evs)
	} else {
		var e evhEvent
		if json.Unmarshal(body, &e) == nil {
			evs = append(evs, e)
		}
	}
	for _, e := range evs {
		if e.Type != 16 { // JANUS_EVENT_TYPE_WEBRTC
			continue
		}
		var d struct {
			Pair       string `json:"selected-pair"`
			Candidates *struct {
				Local, Remote struct {
					Address string `json:"address"`
					Port    int    `json:"port"`
				}
			} `json:"candidates"`
		}
		if json.Unmarshal(e.Event, &d) != nil || d.Pair == "" {
			continue
		}
		p := SelectedPair{Handle: e.Handle, OpaqueID: e.OpaqueID, Raw: d.Pair}
		if d.Candidates != nil {
			p.LocalIP, p.RemoteIP = d.Candidates.Local.Address, d.Candidates.Remote.Address
			p.Local = net.JoinHostPort(p.LocalIP, fmt.Sprint(d.Candidates.Local.Port))
			p.Remote = net.JoinHostPort(p.RemoteIP, fmt.Sprint(d.Candidates.Remote.Port))
		} else if m := pairText.FindStringSubmatch(d.Pair); m != nil {
			p.LocalIP, p.RemoteIP = m[1], m[3]
			p.Local, p.Remote = net.JoinHostPort(m[1], m[2]), net.JoinHostPort(m[3], m[4])
		}
		c.mu.Lock()
		if p.LocalIP == "" {
			c.bad = append(c.bad, d.Pair)
		} else {
			c.pairs = append(c.pairs, p)
		}
		c.mu.Unlock()
	}
}

// pairText reads "127.0.0.1:40000 [host,udp] <-> 127.0.0.1:50000 [prflx,udp]".
var pairText = regexp.MustCompile(`^\[?([0-9a-fA-F.:]+?)\]?:(\d+) \[[^]]*\] <-> \[?([0-9a-fA-F.:]+?)\]?:(\d+)`)

// SelectedPairs returns every ICE pair Janus selected so far (each
// PeerConnection's, in the order reported; a pair that changes is listed
// again).
func (s *Server) SelectedPairs() []SelectedPair {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return append([]SelectedPair(nil), s.events.pairs...)
}

// WaitSelectedPair waits up to timeout for a selected pair of a handle
// whose opaque ID starts with prefix, and returns it.
func (s *Server) WaitSelectedPair(prefix string, timeout time.Duration) (SelectedPair, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range s.SelectedPairs() {
			if strings.HasPrefix(p.OpaqueID, prefix) {
				return p, true
			}
		}
		if time.Now().After(deadline) {
			return SelectedPair{}, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkPairs fails the test for a selected pair with an end off
// 127.0.0.1: media of every Janus test (roomcast, the pion publishers,
// Chromium) stays on loopback.
func (s *Server) checkPairs() {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	for _, raw := range s.events.bad {
		s.t.Errorf("janustest: undecodable selected pair from janus: %q", raw)
	}
	if testing.Verbose() {
		for _, p := range s.events.pairs {
			s.t.Logf("janustest: janus selected %s for handle %d (%q)", p.Raw, p.Handle, p.OpaqueID)
		}
	}
	for _, p := range s.events.pairs {
		if p.LocalIP != ICEAddress || p.RemoteIP != ICEAddress {
			s.t.Errorf("janustest: janus selected the ICE pair %s for handle %d (%q): media not on %s", p.Raw, p.Handle, p.OpaqueID, ICEAddress)
		}
	}
}
