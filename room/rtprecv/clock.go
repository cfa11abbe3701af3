package rtprecv

import (
	"sync"
	"time"
)

// Clock is a room's media clock, the one every PTS is on: time since the
// Room started. Arrival times use Go's monotonic clock; sender-report times
// are wall-clock (NTP) instants and are compared with the epoch's wall time.
// A connector makes one per Room (NewClock) and gives it to every worker.
type Clock struct {
	epoch time.Time
}

// NewClock returns the clock that is zero at epoch (usually time.Now()).
func NewClock(epoch time.Time) Clock { return Clock{epoch: epoch} }

// Since is t on the room clock: the connector's Room.Now is
// Since(time.Now()).
func (c Clock) Since(t time.Time) time.Duration { return c.since(t) }

func (c Clock) since(t time.Time) time.Duration { return t.Sub(c.epoch) }

func (c Clock) wall(t time.Time) time.Duration { return t.Sub(c.epoch.Round(0)) }

// ntpTime converts a 64-bit NTP timestamp (RFC 3550 section 4: seconds since
// 1900 in the high 32 bits, fraction in the low) to a time.Time.
func ntpTime(ntp uint64) time.Time {
	const ntpToUnix = 2208988800
	secs := int64(ntp>>32) - ntpToUnix
	frac := (ntp & 0xffffffff) * 1e9 >> 32
	return time.Unix(secs, int64(frac))
}

// ParticipantClock holds how a participant's sender clock relates to ours,
// shared by all its tracks so that its audio and video keep their relative
// timing. It is decided once, at the first sender report of any of its
// tracks: when the sender's wall clock agrees with ours within maxSkew
// (both synchronised by NTP, as usual) its capture times are used as they
// are, which keeps different participants in sync; otherwise the sender's
// clock is shifted onto our arrival clock. The zero value is ready: a
// connector keeps one per publisher and passes it to each of its workers.
type ParticipantClock struct {
	mu      sync.Mutex
	decided bool
	offset  time.Duration
}

func (p *ParticipantClock) offsetFor(arrivalMinusCapture, maxSkew time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.decided {
		p.decided = true
		// Capture cannot follow arrival by much with synchronised clocks;
		// transit plus sender latency rarely exceeds maxSkew.
		if arrivalMinusCapture < -maxSkew/4 || arrivalMinusCapture > maxSkew {
			p.offset = arrivalMinusCapture
		}
	}
	return p.offset
}

// senderReport is the NTP<->RTP pair of the newest RTCP SR of a track.
type senderReport struct {
	ntp time.Time
	rtp uint32
}

// trackClock maps one track's RTP timestamps to the room clock. onSR is
// called from the SDK's RTCP goroutine, pts from the track worker.
type trackClock struct {
	room    Clock
	rate    float64 // RTP clock rate, Hz
	part    *ParticipantClock
	maxSkew time.Duration

	mu sync.Mutex
	sr *senderReport

	// worker-owned
	tsStarted bool
	tsHigh    int64
	based     bool
	baseExt   int64
	basePTS   time.Duration
	haveLast  bool
	last      time.Duration
	lastExt   int64
	corr      time.Duration // still to absorb from a backward step
	usingSR   bool
	// step is how far a frame's mapping moved when it first went to the
	// sender's clock (negative: back); logged by the worker.
	step time.Duration
}

func newTrackClock(room Clock, rate uint32, part *ParticipantClock, maxSkew time.Duration) *trackClock {
	if rate == 0 {
		rate = 90000
	}
	return &trackClock{room: room, rate: float64(rate), part: part, maxSkew: maxSkew}
}

func (c *trackClock) onSR(ntp uint64, rtpTS uint32) {
	if ntp == 0 {
		return
	}
	c.mu.Lock()
	c.sr = &senderReport{ntp: ntpTime(ntp), rtp: rtpTS}
	c.mu.Unlock()
}

// unwrap extends a 32-bit RTP timestamp to int64 around the highest seen.
func (c *trackClock) unwrap(ts uint32) int64 {
	if !c.tsStarted {
		c.tsStarted, c.tsHigh = true, int64(ts)
		return c.tsHigh
	}
	v := c.tsHigh + int64(int32(ts-uint32(c.tsHigh)))
	if v > c.tsHigh {
		c.tsHigh = v
	}
	return v
}

func (c *trackClock) ticks(d int64) time.Duration {
	return time.Duration(float64(d) / c.rate * float64(time.Second))
}

// slewRate is how fast a backward step of the mapping is absorbed: PTS
// then advance 10% slower than media time until they meet the new mapping,
// instead of stalling (a 100 ms step takes 1 s of media). Typical first
// steps are the publisher's capture-to-arrival latency, 20-100 ms.
const slewRate = 0.1

// pts returns the room-clock capture time of a frame with RTP timestamp ts
// whose first packet arrived at arrival. Before the first sender report it
// is the arrival time of the track's first frame plus RTP time elapsed
// since; after, the sender's capture clock. The first report usually moves
// the mapping back (capture came before arrival by the sender's and the
// network's latency); PTS never go backwards: the step is slewed away.
func (c *trackClock) pts(ts uint32, arrival time.Time) time.Duration {
	ext := c.unwrap(ts)
	if !c.based {
		c.based, c.baseExt, c.basePTS = true, ext, c.room.since(arrival)
	}
	raw := c.basePTS + c.ticks(ext-c.baseExt)

	c.mu.Lock()
	sr := c.sr
	c.mu.Unlock()
	if sr != nil {
		srExt := ext + int64(int32(sr.rtp-uint32(ext)))
		capture := c.room.wall(sr.ntp) + c.ticks(ext-srExt)
		arrivalPTS := c.room.since(arrival)
		byArrival := raw
		raw = capture + c.part.offsetFor(arrivalPTS-capture, c.maxSkew)
		if !c.usingSR {
			c.step = raw - byArrival
		}
		c.usingSR = true
	}
	if !c.haveLast {
		c.haveLast, c.last, c.lastExt = true, raw, ext
		return raw
	}
	elapsed := max(c.ticks(ext-c.lastExt), 0)
	c.corr -= time.Duration(float64(elapsed) * slewRate)
	if c.corr < 0 {
		c.corr = 0
	}
	p := raw + c.corr
	if target := c.last + time.Duration(float64(elapsed)*(1-slewRate)); p < target {
		// The mapping stepped back: carry on from where we were.
		c.corr += target - p
		p = target
	}
	if p <= c.last {
		p = c.last + time.Microsecond
	}
	c.last = p
	if ext > c.lastExt {
		c.lastExt = ext
	}
	return p
}
