package rtprecv

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
)

// Source is one remote track's RTP stream. *webrtc.TrackRemote (pion)
// implements it.
type Source interface {
	// Read reads one RTP packet into b.
	Read(b []byte) (n int, a interceptor.Attributes, err error)
	// SetReadDeadline(now) unblocks a pending Read (to stop the worker).
	SetReadDeadline(t time.Time) error
}

// Codec maps an RTP MIME type ("video/H264", "audio/opus", …) to roomcast's
// codec name, or "" when rtprecv cannot depacketise it.
func Codec(mimeType string) string {
	c, _ := newDepacketizer(mimeType)
	return c
}

// Config describes one track's worker. Zero durations and sizes take the
// documented defaults.
type Config struct {
	// Kind and Codec (a roomcast codec name, see Codec) of the track.
	// Required.
	Kind  room.Kind
	Codec string
	// ClockRate is the RTP clock rate. It defaults to 90000.
	ClockRate uint32
	// SSRC is the track's media SSRC: OnRTCP ignores sender reports of
	// other streams.
	SSRC uint32
	// Clock is the room clock every PTS is on (one per Room).
	Clock Clock
	// Participant is shared by all tracks of one publisher, so that its
	// audio and video keep their relative timing (see ParticipantClock).
	// Required.
	Participant *ParticipantClock
	// MaxClockSkew is how far a publisher's wall clock may be from ours for
	// its sender-report times to be used as they are (which keeps
	// participants in sync with each other); beyond it the publisher's clock
	// is aligned to packet arrival instead. It defaults to 1 s.
	MaxClockSkew time.Duration
	// Queue is the number of packets between the RTP read loop and the
	// worker; packets beyond it are dropped and counted. It defaults to
	// 1024.
	Queue int
	// Latency is how long the jitter buffer waits for a missing packet (a
	// NACK retransmission) before giving up. It defaults to 150 ms for
	// video and 40 ms for audio (reordering only: Opus conceals losses).
	Latency time.Duration
	// KeyframeInterval is the minimum time between two keyframe requests.
	// It defaults to 500 ms.
	KeyframeInterval time.Duration
	// WritePLI sends a keyframe request (RTCP PLI) to the publisher. It is
	// called from the worker or from a RequestKeyframe caller and must not
	// block on the network.
	WritePLI func()
	// Feedback, when set, is the connection's RTCP feedback counter: the
	// worker reports the NACKs sent for its SSRC in Stats.
	Feedback *Feedback
	// WaitGroup, when set, counts the worker's two goroutines, so that the
	// connector's Close can wait for all its tracks at once.
	WaitGroup *sync.WaitGroup
	// Log is the track's logger (with its identity fields).
	Log zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.ClockRate == 0 {
		c.ClockRate = 90000
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = time.Second
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	if c.Latency <= 0 {
		c.Latency = 40 * time.Millisecond
		if c.Kind == room.KindVideo {
			c.Latency = 150 * time.Millisecond
		}
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = 500 * time.Millisecond
	}
	if c.WaitGroup == nil {
		c.WaitGroup = &sync.WaitGroup{}
	}
	if c.Participant == nil {
		c.Participant = &ParticipantClock{}
	}
}

// inPacket is what the RTP read loop hands the worker.
type inPacket struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
	arrival time.Time
}

// Worker owns one remote track's receive path: a read loop that never
// blocks (it drops and counts when the worker falls behind) and one worker
// goroutine that does everything else: jitter buffer (reorder, wait for
// NACK retransmissions), frame assembly and depacketisation, keyframe gate
// (PLI when broken, rate-limited), RTP -> room clock mapping from RTCP
// sender reports, and the sink's WriteFrame and Close.
type Worker struct {
	kind   room.Kind
	codec  string
	ssrc   uint32
	sink   room.TrackSink
	src    Source
	log    zerolog.Logger
	clock  *trackClock
	framer *framer
	jitter *jitterBuffer
	seq    seqUnwrapper

	in   chan inPacket
	stop chan struct{}
	kick chan struct{} // wakes the worker for a keyframe request
	wg   *sync.WaitGroup
	done chan struct{}

	pliInterval time.Duration
	writePLI    func()
	feedback    *Feedback
	fbCount     *feedbackCount // nil without Config.Feedback
	onExit      func()         // called when the worker ends
	pliMu       sync.Mutex
	lastPLI     time.Time

	packets, bytes, queueDrops, malformed, plis, srs, rtx atomic.Uint64
	mu                                                    sync.Mutex // guards the framer/jitter counters copy
	fstats                                                framerStats
	jstats                                                jitterStats
	stopOnce                                              sync.Once
	startOnce                                             sync.Once
}

// NewWorker prepares a track's worker; nothing runs before Start. It returns
// nil when cfg.Codec cannot be depacketised.
func NewWorker(cfg Config) *Worker {
	cfg.setDefaults()
	_, d := newDepacketizer(mimeOf(cfg.Codec))
	if d == nil {
		return nil
	}
	jsize := 512
	if cfg.Kind == room.KindAudio {
		jsize = 128
	}
	w := &Worker{
		kind:        cfg.Kind,
		codec:       cfg.Codec,
		ssrc:        cfg.SSRC,
		log:         cfg.Log,
		clock:       newTrackClock(cfg.Clock, cfg.ClockRate, cfg.Participant, cfg.MaxClockSkew),
		framer:      newFramer(cfg.Codec, d, cfg.Kind == room.KindVideo),
		jitter:      newJitterBuffer(jsize, cfg.Latency),
		in:          make(chan inPacket, cfg.Queue),
		stop:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		wg:          cfg.WaitGroup,
		done:        make(chan struct{}),
		pliInterval: cfg.KeyframeInterval,
		writePLI:    cfg.WritePLI,
		feedback:    cfg.Feedback,
	}
	if w.feedback != nil {
		w.fbCount = w.feedback.track(cfg.SSRC)
	}
	if cfg.Log.GetLevel() <= zerolog.DebugLevel {
		w.framer.dropped = func(reason string, ts uint32, packets int) {
			w.log.Debug().Str("reason", reason).Uint32("ts", ts).Int("packets", packets).Msg("frame dropped")
		}
	}
	return w
}

// mimeOf is the inverse of Codec for the names it returns.
func mimeOf(codec string) string {
	if codec == "opus" {
		return "audio/opus"
	}
	return "video/" + strings.ToUpper(codec)
}

// Start launches the read loop on src and the worker, which delivers to sink
// (nil discards) and calls onExit (may be nil) when it ends: after Halt, or
// when src's stream ended. It is called once; later calls do nothing.
func (w *Worker) Start(src Source, sink room.TrackSink, onExit func()) {
	w.startOnce.Do(func() {
		w.src, w.sink, w.onExit = src, sink, onExit
		w.wg.Add(2)
		go w.readLoop(src)
		go w.run()
	})
}

// Halt stops the worker (which closes the sink) and unblocks the read loop.
// It does not wait (Wait, or the Config.WaitGroup, does); it is idempotent
// and safe from any goroutine, the sink's own methods included.
func (w *Worker) Halt() {
	w.stopOnce.Do(func() {
		close(w.stop)
		if w.src != nil {
			_ = w.src.SetReadDeadline(time.Now())
		}
	})
}

// Wait waits until the worker goroutine has ended (its sink closed). Only
// after Start.
func (w *Worker) Wait() { <-w.done }

// RequestKeyframe asks the publisher for a keyframe (WritePLI) unless one
// was asked for less than Config.KeyframeInterval ago. For decoders that
// failed or tiles that grew; the worker asks by itself when frames were
// lost.
func (w *Worker) RequestKeyframe() { w.requestKeyframe(time.Now(), true) }

// readLoop is the RTP read loop: parse, copy the payload, hand over without
// ever blocking; when the worker's queue is full the packet is dropped and
// counted (the jitter buffer then sees a gap and the framer asks for a
// keyframe).
func (w *Worker) readLoop(remote Source) {
	defer w.wg.Done()
	defer close(w.in)
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, attrs, err := remote.Read(buf)
		if err != nil {
			return
		}
		if attrs != nil && attrs.Get(rtxSSRCAttribute) != nil {
			w.rtx.Add(1) // a retransmission (RTX) a NACK asked for
		}
		now := time.Now()
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			w.malformed.Add(1)
			continue
		}
		w.packets.Add(1)
		w.bytes.Add(uint64(n))
		p := inPacket{
			seq:     pkt.SequenceNumber,
			ts:      pkt.Timestamp,
			marker:  pkt.Marker,
			arrival: now,
		}
		if !isPadding(&pkt) {
			p.payload = append([]byte(nil), pkt.Payload...)
		}
		select {
		case w.in <- p:
		default:
			w.queueDrops.Add(1)
		}
		select {
		case <-w.stop:
			return
		default:
		}
	}
}

// isPadding recognises bandwidth probes. They keep their place in the
// sequence (so they are still handed over, empty) but carry no media.
// LiveKit 1.13 sends its probes with the padding bit and, after the padding
// is removed, a payload of zeros (the padding length written twice), so a
// padded payload of zeros counts as padding too: no codec's payload starts
// with a zero byte followed by zeros only.
func isPadding(p *rtp.Packet) bool {
	if len(p.Payload) == 0 {
		return true
	}
	if !p.Padding {
		return false
	}
	for _, b := range p.Payload[:len(p.Payload)-1] {
		if b != 0 {
			return false
		}
	}
	return true
}

// OnRTCP takes the track's incoming RTCP (from any goroutine): sender
// reports for Config.SSRC feed the RTP -> room clock mapping, which keeps
// a publisher's audio and video in sync (lip sync).
func (w *Worker) OnRTCP(p rtcp.Packet) {
	sr, ok := p.(*rtcp.SenderReport)
	if !ok || sr.SSRC != w.ssrc {
		return
	}
	w.srs.Add(1)
	w.clock.onSR(sr.NTPTime, sr.RTPTime)
	w.log.Trace().Time("ntp", ntpTime(sr.NTPTime)).Uint32("rtp", sr.RTPTime).Msg("sender report")
}

// requestKeyframe sends a PLI unless one went out less than pliInterval ago.
func (w *Worker) requestKeyframe(now time.Time, fromUser bool) bool {
	if w.kind != room.KindVideo {
		return false
	}
	w.pliMu.Lock()
	if !w.lastPLI.IsZero() && now.Sub(w.lastPLI) < w.pliInterval {
		w.pliMu.Unlock()
		return false
	}
	w.lastPLI = now
	w.pliMu.Unlock()
	w.plis.Add(1)
	if w.writePLI != nil {
		w.writePLI()
	}
	if fromUser {
		w.log.Debug().Msg("keyframe requested")
	}
	return true
}

func (w *Worker) run() {
	defer w.wg.Done()
	defer close(w.done)
	defer func() {
		w.snapshot() // the final counts, for the sink's Close to read
		if w.sink != nil {
			w.sink.Close()
		}
		if w.fbCount != nil {
			w.feedback.forget(w.ssrc, w.fbCount)
		}
		if w.onExit != nil {
			w.onExit()
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	emit := func(f rawFrame) { w.deliver(f) }
	// Ask for a keyframe at once: the server forwards from one anyway, but
	// a publisher with a long keyframe interval would keep the tile empty.
	w.requestKeyframe(time.Now(), false)
	for {
		select {
		case p, ok := <-w.in:
			if !ok {
				return
			}
			w.push(p, emit)
			// Take whatever else is queued before looking at timers.
		drain:
			for i := 0; i < 64; i++ {
				select {
				case p, ok := <-w.in:
					if !ok {
						return
					}
					w.push(p, emit)
				default:
					break drain
				}
			}
		case <-timer.C:
		case <-w.kick:
		case <-w.stop:
			return
		}
		now := time.Now()
		w.popReady(now, emit)
		w.snapshot()
		next := time.Hour
		if dl, ok := w.jitter.deadline(); ok {
			next = dl.Sub(now)
		}
		if w.framer.needKey {
			if w.requestKeyframe(now, false) {
				w.log.Debug().Msg("waiting for keyframe: PLI sent")
			}
			if next > w.pliInterval {
				next = w.pliInterval
			}
		}
		if next < time.Millisecond {
			next = time.Millisecond
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

func (w *Worker) push(p inPacket, emit func(rawFrame)) {
	pkt := &rtpPacket{seq: w.seq.unwrap(p.seq), ts: p.ts, marker: p.marker, payload: p.payload, arrival: p.arrival}
	if w.jitter.push(pkt) {
		w.framer.loss()
	}
	w.popReady(p.arrival, emit)
}

func (w *Worker) popReady(now time.Time, emit func(rawFrame)) {
	for {
		p, skipped, ok := w.jitter.pop(now)
		if !ok {
			return
		}
		if skipped > 0 {
			w.framer.loss()
		}
		w.framer.push(p, emit)
	}
}

func (w *Worker) deliver(f rawFrame) {
	wasSR := w.clock.usingSR
	pts := w.clock.pts(f.ts, f.arrival)
	if !wasSR && w.clock.usingSR {
		w.log.Debug().Dur("step", w.clock.step).Dur("arrival", w.clock.room.since(f.arrival)).Msg("mapped to the sender's clock")
	}
	w.log.Trace().Uint32("ts", f.ts).Dur("pts", pts).Dur("arrival", w.clock.room.since(f.arrival)).Bool("key", f.info.keyframe).Int("size", len(f.data)).Msg("frame")
	if w.sink == nil {
		return
	}
	w.sink.WriteFrame(room.Frame{
		Codec:         w.codec,
		Data:          f.data,
		PTS:           pts,
		Keyframe:      f.info.keyframe,
		Width:         f.info.width,
		Height:        f.info.height,
		Discontinuity: f.discontinuity,
	})
}

func (w *Worker) snapshot() {
	w.mu.Lock()
	w.fstats = w.framer.stats
	w.jstats = w.jitter.stats
	w.mu.Unlock()
}

// Stats returns the track's counters (safe from any goroutine).
func (w *Worker) Stats() room.TrackStats {
	w.mu.Lock()
	f, j := w.fstats, w.jstats
	w.mu.Unlock()
	st := room.TrackStats{
		Packets:          w.packets.Load(),
		Bytes:            w.bytes.Load(),
		QueueDrops:       w.queueDrops.Load(),
		Malformed:        w.malformed.Load(),
		Late:             j.late,
		Lost:             j.lost,
		Duplicates:       j.duplicate,
		Repaired:         j.repaired,
		Retransmissions:  w.rtx.Load(),
		Frames:           f.frames,
		Keyframes:        f.keyframes,
		Broken:           f.broken,
		WaitingKey:       f.waitingKey,
		Blank:            f.blank,
		KeyframeRequests: w.plis.Load(),
		SenderReports:    w.srs.Load(),
	}
	if w.fbCount != nil {
		st.NACKs, st.NACKed = w.fbCount.nackPackets.Load(), w.fbCount.nacked.Load()
	}
	return st
}
