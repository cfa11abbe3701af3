package janus

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// loopbackOnly reports whether every ICE candidate of an SDP is on a
// loopback address (and there is at least one): a Janus configured for
// this machine alone.
func loopbackOnly(s string) bool {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(s) != nil {
		return false
	}
	n := 0
	for _, m := range sd.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key != "candidate" {
				continue
			}
			f := strings.Fields(a.Value)
			if len(f) < 5 {
				return false
			}
			ip := net.ParseIP(f[4])
			if ip == nil || !ip.IsLoopback() {
				return false
			}
			n++
		}
	}
	return n > 0
}

// CandidatePair is the ICE candidate pair of the subscription's
// PeerConnection: Local is roomcast's side, Remote Janus's.
type CandidatePair struct {
	// Local and Remote are "address:port/protocol (type)".
	Local, Remote         string
	LocalIP, RemoteIP     string
	LocalPort, RemotePort int
}

// SelectedCandidatePair reports the ICE pair media arrives over, for
// diagnostics and for tests that check media stays on loopback.
func (r *Room) SelectedCandidatePair() (CandidatePair, error) {
	ch := make(chan *webrtc.PeerConnection, 1)
	r.q.push(func() {
		if r.conn != nil {
			ch <- r.conn.pc
		} else {
			ch <- nil
		}
	})
	var pc *webrtc.PeerConnection
	select {
	case pc = <-ch:
	case <-r.done:
	}
	if pc == nil {
		return CandidatePair{}, errors.New("janus: no subscription")
	}
	for _, tx := range pc.GetTransceivers() {
		rcv := tx.Receiver()
		if rcv == nil || rcv.Transport() == nil {
			continue
		}
		pair, err := rcv.Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			continue
		}
		desc := func(c *webrtc.ICECandidate) string {
			return fmt.Sprintf("%s:%d/%s (%s)", c.Address, c.Port, c.Protocol, c.Typ)
		}
		return CandidatePair{
			Local: desc(pair.Local), Remote: desc(pair.Remote),
			LocalIP: pair.Local.Address, RemoteIP: pair.Remote.Address,
			LocalPort: int(pair.Local.Port), RemotePort: int(pair.Remote.Port),
		}, nil
	}
	return CandidatePair{}, errors.New("janus: the subscription has no selected candidate pair")
}
