package lktest

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// captureClock returns the RTP timestamp that a sample captured at wall
// time now would carry on the stream with this SSRC.
type captureClock func(ssrc uint32, now time.Time) (uint32, bool)

// srInterceptorFactory builds senderReporter interceptors. pion's own
// sender-report interceptor pairs "now" with the last packet's timestamp
// plus elapsed time, which assumes packets leave the moment they are
// captured; these reports state the publisher's real capture clock, so a
// publisher can model capture-to-send latency and receivers can still sync.
type srInterceptorFactory struct {
	clock    captureClock
	interval time.Duration
}

func (f *srInterceptorFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &senderReporter{clock: f.clock, interval: f.interval, streams: map[uint32]*srStream{}, done: make(chan struct{})}, nil
}

type srStream struct {
	ssrc            uint32
	packets, octets atomic.Uint32
}

type senderReporter struct {
	interceptor.NoOp
	clock    captureClock
	interval time.Duration

	mu      sync.Mutex
	streams map[uint32]*srStream
	writer  interceptor.RTCPWriter
	once    sync.Once
	done    chan struct{}
	closed  sync.Once
	wg      sync.WaitGroup
}

func (s *senderReporter) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	s.mu.Lock()
	s.writer = w
	s.mu.Unlock()
	s.once.Do(func() {
		s.wg.Add(1)
		go s.loop()
	})
	return w
}

func (s *senderReporter) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	st := &srStream{ssrc: info.SSRC}
	s.mu.Lock()
	s.streams[info.SSRC] = st
	s.mu.Unlock()
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		st.packets.Add(1)
		st.octets.Add(uint32(len(payload)))
		return w.Write(h, payload, a)
	})
}

func (s *senderReporter) UnbindLocalStream(info *interceptor.StreamInfo) {
	s.mu.Lock()
	delete(s.streams, info.SSRC)
	s.mu.Unlock()
}

func (s *senderReporter) Close() error {
	s.closed.Do(func() { close(s.done) })
	s.wg.Wait()
	return nil
}

func (s *senderReporter) loop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-tick.C:
			s.mu.Lock()
			w := s.writer
			var pkts []rtcp.Packet
			for ssrc, st := range s.streams {
				if st.packets.Load() == 0 {
					continue
				}
				ts, ok := s.clock(ssrc, now)
				if !ok {
					continue
				}
				pkts = append(pkts, &rtcp.SenderReport{
					SSRC:        ssrc,
					NTPTime:     toNTP(now),
					RTPTime:     ts,
					PacketCount: st.packets.Load(),
					OctetCount:  st.octets.Load(),
				})
			}
			s.mu.Unlock()
			if w != nil && len(pkts) > 0 {
				_, _ = w.Write(pkts, nil)
			}
		}
	}
}

// toNTP converts wall time to a 64-bit NTP timestamp (RFC 3550 section 4).
func toNTP(t time.Time) uint64 {
	const ntpToUnix = 2208988800
	secs := uint64(t.Unix() + ntpToUnix)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// publisherInterceptors replaces the SDK's defaults for lktest publishers:
// NACK responses (so the server can repair loss) and capture-clock sender
// reports. The NACK history is 256 packets (seconds of a test clip, far
// more than a repair on loopback needs): pion's default of 1024 fills for
// half a minute and would show as growth in the memory of a test that
// measures its own process (TestLiveChurn).
func publisherInterceptors(clock captureClock) ([]interceptor.Factory, error) {
	resp, err := nack.NewResponderInterceptor(nack.ResponderSize(256))
	if err != nil {
		return nil, err
	}
	return []interceptor.Factory{resp, &srInterceptorFactory{clock: clock, interval: 250 * time.Millisecond}}, nil
}
