package rtmptest

import (
	"context"
	"io"
	"time"

	"github.com/roomcast/roomcast/media"
)

// Play hands packets to write at the pace of their decode times (speed 1 is
// real time), like an encoder fed by a live clock. It returns the media
// duration played, or early when ctx ends.
func Play(ctx context.Context, pkts []media.Packet, speed float64, write func(media.Packet)) time.Duration {
	if len(pkts) == 0 {
		return 0
	}
	start := time.Now()
	t0 := DecodeTime(pkts[0])
	var played time.Duration
	// One timer for the whole run, as a live clock would: a new timer per
	// packet costs an allocation and more scheduler work per wake-up.
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for _, p := range pkts {
		at := time.Duration(float64(DecodeTime(p)-t0) / speed)
		if wait := time.Until(start.Add(at)); wait > 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				return played
			}
		}
		write(p)
		played = max(played, p.PTS+p.Duration-t0)
	}
	return played
}

// Source is a PacketSource over a packet slice (for CheckIngest).
type Source struct {
	Pkts []media.Packet
	i    int
}

// NextPacket returns the next packet or io.EOF.
func (s *Source) NextPacket() (media.Packet, error) {
	if s.i >= len(s.Pkts) {
		return media.Packet{}, errEOF
	}
	s.i++
	return s.Pkts[s.i-1], nil
}

var errEOF = io.EOF
