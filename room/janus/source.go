package janus

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// timedSource is a track's RTP source that ends after timeout without a
// packet: Janus does not notice a publisher whose media path died, so the
// track would otherwise live on silently. rtprecv's Halt sets a deadline
// in the past, which must win over the rolling one.
type timedSource struct {
	tr       *webrtc.TrackRemote
	timeout  time.Duration
	halted   atomic.Bool
	timedOut atomic.Bool
}

func (s *timedSource) Read(b []byte) (int, interceptor.Attributes, error) {
	if !s.halted.Load() {
		_ = s.tr.SetReadDeadline(time.Now().Add(s.timeout))
		if s.halted.Load() {
			_ = s.tr.SetReadDeadline(time.Now())
		}
	}
	n, a, err := s.tr.Read(b)
	var ne net.Error
	if err != nil && !s.halted.Load() && errors.As(err, &ne) && ne.Timeout() {
		s.timedOut.Store(true)
	}
	return n, a, err
}

func (s *timedSource) SetReadDeadline(t time.Time) error {
	s.halted.Store(true)
	return s.tr.SetReadDeadline(t)
}
