package rtprecv

import "time"

// rtpPacket is the part of an RTP packet the worker keeps.
type rtpPacket struct {
	seq     int64 // extended sequence number
	ts      uint32
	marker  bool
	payload []byte
	arrival time.Time
}

// seqUnwrapper extends 16-bit RTP sequence numbers to int64, tolerating
// reordering of up to half the sequence space.
type seqUnwrapper struct {
	started bool
	high    int64
}

func (u *seqUnwrapper) unwrap(s uint16) int64 {
	if !u.started {
		u.started, u.high = true, int64(s)
		return u.high
	}
	v := u.high + int64(int16(s-uint16(u.high)))
	if v > u.high {
		u.high = v
	}
	return v
}

// jitterBuffer puts packets back in sequence order and waits up to latency
// for a missing packet (which the NACK interceptor is asking the server to
// resend) before declaring it lost. Time is passed in, so it is tested
// without sleeping.
type jitterBuffer struct {
	latency time.Duration
	slots   []*rtpPacket // ring indexed by seq % len
	started bool
	next    int64 // next sequence number to deliver
	high    int64 // highest sequence number stored
	count   int

	stats jitterStats
}

// jitterStats count what the jitter buffer saw.
type jitterStats struct {
	// late arrived after their turn (given up on, or played out);
	// duplicate were already stored; lost were given up on; repaired
	// filled a hole in time: a reordered packet or a retransmission.
	late, duplicate, lost, repaired uint64
}

func newJitterBuffer(size int, latency time.Duration) *jitterBuffer {
	return &jitterBuffer{latency: latency, slots: make([]*rtpPacket, size)}
}

func (j *jitterBuffer) slot(seq int64) **rtpPacket {
	n := int64(len(j.slots))
	return &j.slots[((seq%n)+n)%n]
}

// push stores p. Packets older than the delivery point are counted late and
// dropped; a jump beyond the buffer's reach flushes it (the gap is counted
// lost) and restarts from p, which push reports as flushed: the caller must
// treat it as a discontinuity.
func (j *jitterBuffer) push(p *rtpPacket) (flushed bool) {
	if !j.started {
		j.started, j.next, j.high = true, p.seq, p.seq
	}
	size := int64(len(j.slots))
	switch {
	case p.seq < j.next:
		if j.next-p.seq > size*4 {
			// The sender restarted its sequence far behind: follow it.
			j.reset(p.seq)
			flushed = true
			break
		}
		j.stats.late++
		return false
	case p.seq >= j.next+size:
		j.stats.lost += uint64(p.seq - j.next)
		j.reset(p.seq)
		flushed = true
	}
	s := j.slot(p.seq)
	if *s != nil && (*s).seq == p.seq {
		j.stats.duplicate++
		return false
	}
	*s = p
	j.count++
	if p.seq > j.high {
		j.high = p.seq
	} else if !flushed && p.seq < j.high {
		j.stats.repaired++
	}
	return flushed
}

func (j *jitterBuffer) reset(seq int64) {
	for i := range j.slots {
		j.slots[i] = nil
	}
	j.count = 0
	j.next, j.high = seq, seq
}

// pop returns the next packet in order, or, when the next one is missing
// and the oldest packet after the hole has waited latency, that packet with
// the number of packets skipped. ok is false when nothing can be delivered
// yet.
func (j *jitterBuffer) pop(now time.Time) (p *rtpPacket, skipped int, ok bool) {
	if j.count == 0 {
		return nil, 0, false
	}
	if s := j.slot(j.next); *s != nil && (*s).seq == j.next {
		p = *s
		*s = nil
		j.count--
		j.next++
		return p, 0, true
	}
	first := j.firstAfterHole()
	if first == nil || now.Sub(first.arrival) < j.latency {
		return nil, 0, false
	}
	skipped = int(first.seq - j.next)
	j.stats.lost += uint64(skipped)
	*j.slot(first.seq) = nil
	j.count--
	j.next = first.seq + 1
	return first, skipped, true
}

// firstAfterHole is the lowest-numbered stored packet.
func (j *jitterBuffer) firstAfterHole() *rtpPacket {
	for seq := j.next; seq <= j.high; seq++ {
		if s := *j.slot(seq); s != nil && s.seq == seq {
			return s
		}
	}
	return nil
}

// deadline is when pop will give up waiting for the missing packet, if a
// packet is waiting behind a hole.
func (j *jitterBuffer) deadline() (time.Time, bool) {
	if j.count == 0 {
		return time.Time{}, false
	}
	first := j.firstAfterHole()
	if first == nil {
		return time.Time{}, false
	}
	return first.arrival.Add(j.latency), true
}
