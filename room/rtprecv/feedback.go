package rtprecv

import (
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// Feedback counts the NACKs (RFC 4585 §6.2.1) a peer connection sends about
// the tracks it receives, per media SSRC: the NACK generator interceptor of
// the connector's SDK writes them, not rtprecv (whose keyframe requests the
// Worker counts itself). It is a pion interceptor factory: register it
// in the connection's interceptor registry before the NACK generator (the
// generator writes its NACKs through the interceptors registered before
// it), one Feedback per connector (a room), and give it to each track's
// Worker (Config.Feedback), which reads its own SSRC's counts.
type Feedback struct {
	mu     sync.Mutex
	tracks map[uint32]*feedbackCount
}

type feedbackCount struct {
	nackPackets, nacked atomic.Uint64
}

// NewFeedback returns an empty counter.
func NewFeedback() *Feedback { return &Feedback{tracks: map[uint32]*feedbackCount{}} }

// NewInterceptor implements interceptor.Factory.
func (f *Feedback) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &feedbackInterceptor{f: f}, nil
}

// track starts counting for ssrc (a worker's media SSRC) and returns its
// counts; feedback about SSRCs nobody counts is not kept.
func (f *Feedback) track(ssrc uint32) *feedbackCount {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.tracks[ssrc]
	if c == nil {
		c = &feedbackCount{}
		f.tracks[ssrc] = c
	}
	return c
}

// forget stops counting for ssrc if c still counts it (a worker that
// ended; a newer worker for the same SSRC keeps its own).
func (f *Feedback) forget(ssrc uint32, c *feedbackCount) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tracks[ssrc] == c {
		delete(f.tracks, ssrc)
	}
}

// count looks at outgoing RTCP. It never blocks: a map lookup per packet.
func (f *Feedback) count(pkts []rtcp.Packet) {
	for _, p := range pkts {
		n, ok := p.(*rtcp.TransportLayerNack)
		if !ok {
			continue
		}
		f.mu.Lock()
		c := f.tracks[n.MediaSSRC]
		f.mu.Unlock()
		if c == nil {
			continue
		}
		var nacked uint64
		for i := range n.Nacks {
			n.Nacks[i].Range(func(uint16) bool { nacked++; return true })
		}
		c.nackPackets.Add(1)
		c.nacked.Add(nacked)
	}
}

type feedbackInterceptor struct {
	interceptor.NoOp
	f *Feedback
}

func (i *feedbackInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		i.f.count(pkts)
		return w.Write(pkts, a)
	})
}

// rtxSSRCAttribute is the interceptor attribute pion/webrtc v4 sets on a
// packet TrackRemote.Read unwrapped from the RTX repair stream (RFC 4588):
// a retransmission the sender made because a NACK asked for it
// (webrtc.AttributeRtxSsrc; rtprecv does not import pion/webrtc).
const rtxSSRCAttribute = "rtx_ssrc"
