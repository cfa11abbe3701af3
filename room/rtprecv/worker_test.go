package rtprecv

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/roomcast/roomcast/room"
)

// fakeSource is a remote track fed by the test: each packet is read with
// its interceptor attributes; SetReadDeadline ends the stream.
type fakeSource struct {
	pkts chan fakePacket
	once sync.Once
	done chan struct{}
}

type fakePacket struct {
	b []byte
	a interceptor.Attributes
}

func newFakeSource() *fakeSource {
	return &fakeSource{pkts: make(chan fakePacket, 64), done: make(chan struct{})}
}

func (s *fakeSource) Read(b []byte) (int, interceptor.Attributes, error) {
	select {
	case p := <-s.pkts:
		return copy(b, p.b), p.a, nil
	case <-s.done:
		return 0, nil, io.EOF
	}
}

func (s *fakeSource) SetReadDeadline(time.Time) error {
	s.once.Do(func() { close(s.done) })
	return nil
}

// send queues one VP8 packet (a one-packet picture: the keyframe for
// seq 0, inter pictures after), as retransmission (RTX) when rtx is set.
func (s *fakeSource) send(t *testing.T, ssrc uint32, seq uint16, rtx bool) {
	t.Helper()
	payload := cat([]byte{0x10}, vp8Inter)
	if seq == 0 {
		payload = cat([]byte{0x10}, vp8Key320)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: ssrc, Marker: true}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var a interceptor.Attributes
	if rtx {
		a = interceptor.Attributes{}
		a.Set(webrtc.AttributeRtxSsrc, ssrc+1)
	}
	s.pkts <- fakePacket{b: b, a: a}
}

type countingSink struct {
	mu     sync.Mutex
	frames int
	closed chan struct{}
}

func (c *countingSink) WriteFrame(room.Frame) { c.mu.Lock(); c.frames++; c.mu.Unlock() }
func (c *countingSink) Close()                { close(c.closed) }

// TestWorkerCountsNetworkEvents feeds a worker a packet stream with
// reordering, a retransmission on the RTX stream, a duplicate, a loss
// and a late packet, while the connection's NACK generator (simulated:
// RTCP written through the Feedback interceptor) asks for packets again:
// each shows in its own counter.
func TestWorkerCountsNetworkEvents(t *testing.T) {
	if rtxSSRCAttribute != webrtc.AttributeRtxSsrc {
		t.Fatalf("rtxSSRCAttribute %q, pion/webrtc sets %q", rtxSSRCAttribute, webrtc.AttributeRtxSsrc)
	}
	const ssrc = 1234
	fb := NewFeedback()
	icp, err := fb.NewInterceptor("")
	if err != nil {
		t.Fatal(err)
	}
	var wire []rtcp.Packet
	var wireMu sync.Mutex
	writer := icp.BindRTCPWriter(interceptor.RTCPWriterFunc(func(p []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		wireMu.Lock()
		wire = append(wire, p...)
		wireMu.Unlock()
		return 0, nil
	}))
	w := NewWorker(Config{
		Kind: room.KindVideo, Codec: "vp8", SSRC: ssrc, Clock: NewClock(time.Now()),
		Latency: 30 * time.Millisecond, KeyframeInterval: 50 * time.Millisecond, Feedback: fb,
		WritePLI: func() { _, _ = writer.Write([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}, nil) },
	})
	src := newFakeSource()
	sink := &countingSink{closed: make(chan struct{})}
	w.Start(src, sink, nil)

	for _, seq := range []uint16{0, 1, 2, 4, 3} { // 3 fills a hole: repaired
		src.send(t, ssrc, seq, false)
	}
	// The NACK generator asks for 5 and 6 again; a NACK about another
	// stream is not this track's.
	_, _ = writer.Write([]rtcp.Packet{
		&rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: []rtcp.NackPair{{PacketID: 5, LostPackets: 1}}},
		&rtcp.TransportLayerNack{MediaSSRC: 999, Nacks: []rtcp.NackPair{{PacketID: 1}}},
	}, nil)
	src.send(t, ssrc, 5, true)  // on the RTX stream
	src.send(t, ssrc, 7, false) // 6 never comes
	src.send(t, ssrc, 7, false) // a duplicate, while 7 waits behind the hole
	time.Sleep(150 * time.Millisecond)
	src.send(t, ssrc, 8, false)
	src.send(t, ssrc, 2, false) // long after its turn: late
	time.Sleep(100 * time.Millisecond)
	w.Halt()
	w.Wait()
	<-sink.closed

	st := w.Stats()
	t.Logf("%+v", st)
	want := room.TrackStats{Packets: 10, Lost: 1, Late: 1, Duplicates: 1, Repaired: 1, Retransmissions: 1, NACKs: 1, NACKed: 2}
	got := room.TrackStats{Packets: st.Packets, Lost: st.Lost, Late: st.Late, Duplicates: st.Duplicates, Repaired: st.Repaired,
		Retransmissions: st.Retransmissions, NACKs: st.NACKs, NACKed: st.NACKed}
	if got != want {
		t.Errorf("counters %+v, want %+v", got, want)
	}
	// A PLI at the start and one after the loss (the pictures after it
	// wait for a keyframe that never comes): both counted, both written.
	wireMu.Lock()
	plis := 0
	for _, p := range wire {
		if _, ok := p.(*rtcp.PictureLossIndication); ok {
			plis++
		}
	}
	wireMu.Unlock()
	if st.KeyframeRequests < 2 || uint64(plis) != st.KeyframeRequests {
		t.Errorf("keyframe requests %d, PLIs written %d: want the same, at least 2", st.KeyframeRequests, plis)
	}
	if st.WaitingKey == 0 || st.Frames != 6 {
		t.Errorf("frames %d (want 6: 0-5), waiting for a keyframe %d (want > 0: 7 and 8)", st.Frames, st.WaitingKey)
	}
	// The ended worker no longer counts its SSRC's feedback.
	fb.mu.Lock()
	n := len(fb.tracks)
	fb.mu.Unlock()
	if n != 0 {
		t.Errorf("the feedback counter still tracks %d SSRCs after the worker ended", n)
	}
}
