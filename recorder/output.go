package recorder

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// Every output is written by its own goroutine from its own bounded queue,
// so a slow disk or a congested link never delays the compositor's clock:
// the clock goroutine only encodes and enqueues. What a queue does when its
// output falls behind is the output's Policy.

// Policy is what an output's queue does when the output cannot keep up.
type Policy int

const (
	// PolicyRecord never drops a packet: the recording must hold
	// everything. The queue grows up to OutputOptions.MaxQueueBytes (the
	// memory budget). In a live run a disk slower than real time for that
	// long fails the output with ErrBehind (a critical output then stops
	// the run cleanly and the file, finalised, holds everything up to that
	// point): memory stays bounded, nothing is silently lost and the clock
	// never waits. The lag is visible before that: Health.State is "behind"
	// and a warning is logged once the queue holds more than a second of
	// media. Offline runs (no clock to protect) wait for the disk instead.
	PolicyRecord Policy = iota
	// PolicyStream drops rather than waits: when the queue is full every
	// queued packet is discarded (it is stale by then), video resumes at
	// the next keyframe (one is requested from the encoder), audio at once.
	// Drops are counted in Health.Dropped.
	PolicyStream
)

func (p Policy) String() string {
	if p == PolicyStream {
		return "stream"
	}
	return "record"
}

// ErrBehind: a recording output fell further behind real time than its
// memory budget allows.
var ErrBehind = errors.New("output too slow for real time: memory budget exhausted")

// Queue defaults.
const (
	// DefaultRecordQueueBytes is a recording's memory budget: at 6 Mb/s
	// (1080p) about three minutes of disk stall.
	DefaultRecordQueueBytes = 128 << 20
	// DefaultStreamQueueBytes bounds a stream's queue: a few seconds of
	// video at streaming bitrates. A stream that lags more is better
	// restarted at a keyframe.
	DefaultStreamQueueBytes = 8 << 20
	// DefaultStreamQueuePackets: about 6 s of 30 fps video with 48 kHz AAC.
	DefaultStreamQueuePackets = 500
	// offlineQueueBytes bounds an offline run's queue: the producer waits
	// for the output there.
	offlineQueueBytes = 4 << 20
	// behindAfter is the queued media time from which an output counts as
	// behind.
	behindAfter = time.Second
)

// OutputOptions describe how an output is fed. The zero value is a
// non-critical PolicyRecord output with the default budget.
type OutputOptions struct {
	// Critical: the output's failure stops the run (the recording). A
	// non-critical output (a stream) fails alone.
	Critical bool
	// Policy defaults to PolicyRecord.
	Policy Policy
	// MaxQueueBytes is the queue's memory budget in payload bytes. It
	// defaults to DefaultRecordQueueBytes or DefaultStreamQueueBytes.
	MaxQueueBytes int64
	// MaxQueuePackets bounds a PolicyStream queue's length. It defaults to
	// DefaultStreamQueuePackets; PolicyRecord queues are bounded by bytes
	// only.
	MaxQueuePackets int
}

// Reporter is implemented by outputs that have a life of their own (an RTMP
// publisher reconnecting): Health includes its report.
type Reporter interface {
	Report() Report
}

// Report is an output's own view of its health.
type Report struct {
	State      string // e.g. "publishing", "reconnecting"
	Reconnects int64
	Dropped    int64 // packets the output itself dropped
	Bytes      int64 // bytes it wrote (framing included), when it knows
	LastError  error
}

// Health is a snapshot of one output.
type Health struct {
	Name     string
	Critical bool
	Policy   Policy
	// State is "running", "behind" (the queue holds more than a second of
	// media), "failed", "closed", or the output's own state (Reporter).
	State string
	// Queued packets and payload bytes waiting; QueuedMedia is the media
	// time they span (the output's lag behind the encoder).
	Queued      int
	QueuedBytes int64
	QueuedMedia time.Duration
	// MaxQueuedBytes is the largest the queue has been.
	MaxQueuedBytes int64
	// Packets and Bytes written to the output (payload bytes, or the
	// output's own count when it reports one).
	Packets int64
	Bytes   int64
	// Dropped packets: by the queue (PolicyStream) plus by the output.
	Dropped    int64
	Reconnects int64
	Err        error
}

// outputQueue feeds one Output from its own goroutine.
type outputQueue struct {
	name    string
	o       Output
	opt     OutputOptions
	offline bool
	log     zerolog.Logger
	// keyframe asks the encoder for a keyframe (PolicyStream resumes).
	keyframe func()

	mu         sync.Mutex
	cond       *sync.Cond // signalled when the queue changes
	q          []media.Packet
	head       int
	bytes      int64
	maxBytes   int64
	waitKey    bool
	lastKeyReq time.Time
	closing    bool
	failed     error
	writing    bool
	warned     bool
	written    int64
	wbytes     int64
	dropped    int64
	done       chan struct{}
}

func newOutputQueue(name string, o Output, opt OutputOptions, offline bool, keyframe func(), log zerolog.Logger) *outputQueue {
	if opt.MaxQueueBytes <= 0 {
		switch {
		case opt.Policy == PolicyStream:
			opt.MaxQueueBytes = DefaultStreamQueueBytes
		case offline:
			// Offline the queue is back-pressure, not a shock absorber.
			opt.MaxQueueBytes = offlineQueueBytes
		default:
			opt.MaxQueueBytes = DefaultRecordQueueBytes
		}
	}
	if opt.MaxQueuePackets <= 0 {
		opt.MaxQueuePackets = DefaultStreamQueuePackets
	}
	q := &outputQueue{name: name, o: o, opt: opt, offline: offline, keyframe: keyframe,
		log: log.With().Str("output", name).Logger(), done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// push enqueues p without waiting (except offline PolicyRecord, which waits
// for room). It returns the output's failure, if it has failed.
func (q *outputQueue) push(p media.Packet) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failed != nil {
		return q.failed
	}
	if q.closing {
		return ErrClosedOutput
	}
	size := int64(len(p.Data))
	switch q.opt.Policy {
	case PolicyStream:
		if p.Kind == media.KindVideo {
			if q.waitKey && !p.Key {
				q.dropped++
				return nil
			}
			q.waitKey = false
		}
		if q.len() >= q.opt.MaxQueuePackets || q.bytes+size > q.opt.MaxQueueBytes {
			// Behind: everything queued is stale. Drop it and this packet;
			// video starts again at a keyframe.
			n := q.len()
			q.reset()
			q.waitKey = true
			if p.Kind == media.KindAudio {
				// Audio needs no keyframe: keep it flowing.
				q.append(p, size)
			} else {
				n++
			}
			q.dropped += int64(n)
			q.log.Warn().Int("dropped", n).Int64("dropped_total", q.dropped).
				Msg("output fell behind: dropped its queue; video resumes at the next keyframe")
			q.requestKeyframe()
			return nil
		}
	default:
		for q.bytes+size > q.opt.MaxQueueBytes && q.len() > 0 {
			if !q.offline {
				q.failed = fmt.Errorf("%w: %d MB queued (%.1f s of media)", ErrBehind,
					q.bytes>>20, q.span().Seconds())
				q.log.Error().Err(q.failed).Msg("recording output cannot keep up; stopping it")
				q.reset()
				q.cond.Broadcast()
				return q.failed
			}
			q.cond.Wait()
			if q.failed != nil {
				return q.failed
			}
		}
	}
	q.append(p, size)
	return nil
}

// ErrClosedOutput: a packet after the output was closed.
var ErrClosedOutput = errors.New("output closed")

func (q *outputQueue) requestKeyframe() {
	if q.keyframe == nil {
		return
	}
	if now := time.Now(); now.Sub(q.lastKeyReq) >= time.Second {
		q.lastKeyReq = now
		q.keyframe()
	}
}

func (q *outputQueue) len() int { return len(q.q) - q.head }

func (q *outputQueue) append(p media.Packet, size int64) {
	q.q = append(q.q, p)
	q.bytes += size
	q.maxBytes = max(q.maxBytes, q.bytes)
	if !q.warned && q.span() > behindAfter {
		q.warned = true
		q.log.Warn().Dur("lag", q.span()).Int64("queued_bytes", q.bytes).
			Msg("output is behind real time (slow disk or link); queueing")
	}
	q.cond.Broadcast()
}

func (q *outputQueue) reset() {
	clear(q.q)
	q.q, q.head, q.bytes = q.q[:0], 0, 0
}

// span is the media time the queue holds.
func (q *outputQueue) span() time.Duration {
	if q.len() < 2 {
		return 0
	}
	return q.q[len(q.q)-1].DTS - q.q[q.head].DTS
}

func (q *outputQueue) run() {
	defer close(q.done)
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for q.len() == 0 && !q.closing {
			q.cond.Wait()
		}
		if q.len() == 0 {
			return // closing and drained
		}
		p := q.q[q.head]
		q.q[q.head] = media.Packet{}
		q.head++
		if q.head > 1024 && q.head*2 > len(q.q) {
			// Compact: the slice does not grow forever.
			n := copy(q.q, q.q[q.head:])
			clear(q.q[n:])
			q.q, q.head = q.q[:n], 0
		}
		size := int64(len(p.Data))
		q.bytes -= size
		q.writing = true
		q.mu.Unlock()
		err := q.o.WritePacket(p)
		q.mu.Lock()
		q.writing = false
		if err != nil {
			if q.failed == nil {
				q.failed = err
			}
			if q.opt.Critical {
				q.log.Error().Err(err).Msg("recording output failed; stopping")
			} else {
				q.log.Error().Err(err).Msg("output failed; the others continue")
			}
			q.reset()
			q.cond.Broadcast()
			return
		}
		q.written++
		q.wbytes += size
		if q.warned && q.span() < behindAfter/2 {
			q.warned = false
			q.log.Info().Msg("output caught up")
		}
		q.cond.Broadcast()
	}
}

// close lets the goroutine write what is queued and waits for it; it
// returns the output's failure.
func (q *outputQueue) close() error {
	q.mu.Lock()
	q.closing = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed
}

// err is the output's failure, nil while it works.
func (q *outputQueue) err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failed
}

func (q *outputQueue) health() Health {
	q.mu.Lock()
	h := Health{
		Name: q.name, Critical: q.opt.Critical, Policy: q.opt.Policy, State: "running",
		Queued: q.len(), QueuedBytes: q.bytes, QueuedMedia: q.span(), MaxQueuedBytes: q.maxBytes,
		Packets: q.written, Bytes: q.wbytes, Dropped: q.dropped, Err: q.failed,
	}
	closing, failed := q.closing, q.failed != nil
	q.mu.Unlock()
	if r, ok := q.o.(Reporter); ok {
		rep := r.Report()
		if rep.State != "" {
			h.State = rep.State
		}
		h.Reconnects = rep.Reconnects
		h.Dropped += rep.Dropped
		if rep.Bytes > 0 {
			h.Bytes = rep.Bytes
		}
		if h.Err == nil {
			h.Err = rep.LastError
		}
	}
	switch {
	case failed:
		h.State = "failed"
	case closing:
		h.State = "closed"
	case h.State == "running" && h.QueuedMedia > behindAfter:
		h.State = "behind"
	}
	return h
}

// OutputQueue is one output fed as a live Recorder feeds each of its
// outputs: Push never waits (Policy decides what a full queue does) and the
// output is written by the queue's own goroutine. It is for code that
// produces encoded packets itself, e.g. a benchmark of an output's cost as
// a broadcast drives it.
type OutputQueue struct{ q *outputQueue }

// NewOutputQueue starts the queue's goroutine. keyframe (may be nil) is
// called when a PolicyStream queue dropped video and needs a keyframe.
func NewOutputQueue(name string, o Output, opt OutputOptions, keyframe func(), log zerolog.Logger) *OutputQueue {
	return &OutputQueue{newOutputQueue(name, o, opt, false, keyframe, log)}
}

// Push enqueues p; it returns the output's failure once it has failed.
func (q *OutputQueue) Push(p media.Packet) error { return q.q.push(p) }

// Close writes what is queued, stops the goroutine and returns the output's
// failure. It does not close the output.
func (q *OutputQueue) Close() error { return q.q.close() }

// Health is the queue's and the output's state.
func (q *OutputQueue) Health() Health { return q.q.health() }
