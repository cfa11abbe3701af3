package livekit

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"
)

// Track is a subscribed remote track. Its exported fields describe it as it
// was when added and are not updated (mutes arrive as
// Handler.TrackMuted); its methods are safe to call from any goroutine.
type Track struct {
	// SID is the server's track ID.
	SID string
	// ParticipantID is the publisher's identity; ParticipantName its
	// display name.
	ParticipantID, ParticipantName string
	Kind                           Kind
	Source                         Source
	// Codec is the roomcast codec name ("h264", "vp8", "vp9", "av1",
	// "opus").
	Codec string
	// Muted is the publisher's mute state when the track was added.
	Muted bool
	// Width and Height are the published size of the largest layer, 0 for
	// audio or when the publisher did not say.
	Width, Height int
	// Simulcast is true when the publisher sends several layers; the server
	// picks one after SetVideoDimensions.
	Simulcast bool

	pub    *lksdk.RemoteTrackPublication
	rp     *lksdk.RemoteParticipant
	remote *webrtc.TrackRemote
	w      *trackWorker
}

// RequestKeyframe asks the publisher for a keyframe (RTCP PLI through the
// server), at most once per Config.KeyframeInterval; extra requests are
// ignored. For decoders that failed or tiles that grew.
func (t *Track) RequestKeyframe() {
	if t.w != nil {
		t.w.requestKeyframe(time.Now(), true)
	}
}

// SetVideoDimensions tells the server the size the track is shown at, so
// that with simulcast it forwards the smallest layer that covers it instead
// of the largest. The server sends that layer's keyframe itself.
func (t *Track) SetVideoDimensions(width, height int) {
	if t.Kind != KindVideo || width <= 0 || height <= 0 || t.pub == nil {
		return
	}
	t.pub.SetVideoDimensions(uint32(width), uint32(height))
}

// TrackStats are counters of one track since it was added.
type TrackStats struct {
	Packets, Bytes uint64
	// QueueDrops counts packets dropped because the worker fell behind.
	QueueDrops uint64
	// Malformed counts packets that did not parse as RTP.
	Malformed uint64
	// Late and Lost come from the jitter buffer: packets that arrived after
	// their turn, and packets given up on.
	Late, Lost uint64
	// Frames were delivered; Broken were incomplete or undecodable;
	// WaitingKey were whole but dropped while waiting for a keyframe;
	// Blank were LiveKit's placeholder keyframes.
	Frames, Keyframes, Broken, WaitingKey, Blank uint64
	// KeyframeRequests counts PLIs sent.
	KeyframeRequests uint64
	// SenderReports counts RTCP sender reports received.
	SenderReports uint64
}

// Stats returns the track's counters.
func (t *Track) Stats() TrackStats {
	if t.w == nil {
		return TrackStats{}
	}
	return t.w.stats()
}

// inPacket is what the RTP read loop hands the worker.
type inPacket struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
	arrival time.Time
}

// trackWorker owns one track: a read loop that never blocks and one worker
// goroutine that does everything else.
type trackWorker struct {
	t      *Track
	sink   TrackSink
	log    zerolog.Logger
	clock  *trackClock
	framer *framer
	jitter *jitterBuffer
	seq    seqUnwrapper

	in   chan inPacket
	stop chan struct{}
	kick chan struct{} // wakes the worker for a keyframe request
	wg   *sync.WaitGroup

	pliInterval time.Duration
	writePLI    func()
	onExit      func() // called when the worker ends
	pliMu       sync.Mutex
	lastPLI     time.Time

	packets, bytes, queueDrops, malformed, plis, srs atomic.Uint64
	mu                                               sync.Mutex // guards the framer/jitter counters copy
	fstats                                           framerStats
	late, lost                                       uint64
	stopOnce                                         sync.Once
}

type workerConfig struct {
	queue       int
	latency     time.Duration
	pliInterval time.Duration
}

func newTrackWorker(t *Track, sink TrackSink, d depacketizer, clock *trackClock, cfg workerConfig, writePLI func(), log zerolog.Logger, wg *sync.WaitGroup) *trackWorker {
	jsize := 512
	if t.Kind == KindAudio {
		jsize = 128
	}
	w := &trackWorker{
		t:           t,
		sink:        sink,
		log:         log,
		clock:       clock,
		framer:      newFramer(t.Codec, d, t.Kind == KindVideo),
		jitter:      newJitterBuffer(jsize, cfg.latency),
		in:          make(chan inPacket, cfg.queue),
		stop:        make(chan struct{}),
		kick:        make(chan struct{}, 1),
		wg:          wg,
		pliInterval: cfg.pliInterval,
		writePLI:    writePLI,
	}
	if log.GetLevel() <= zerolog.DebugLevel {
		w.framer.dropped = func(reason string, ts uint32, packets int) {
			w.log.Debug().Str("reason", reason).Uint32("ts", ts).Int("packets", packets).Msg("frame dropped")
		}
	}
	return w
}

// start launches the read loop and the worker.
func (w *trackWorker) start(remote *webrtc.TrackRemote) {
	w.wg.Add(2)
	go w.readLoop(remote)
	go w.run()
}

// halt stops the worker (closing the sink) and unblocks the read loop.
func (w *trackWorker) halt(remote *webrtc.TrackRemote) {
	w.stopOnce.Do(func() {
		close(w.stop)
		if remote != nil {
			_ = remote.SetReadDeadline(time.Now())
		}
	})
}

// readLoop is the RTP read loop: parse, copy the payload, hand over without
// ever blocking; when the worker's queue is full the packet is dropped and
// counted (the jitter buffer then sees a gap and the framer asks for a
// keyframe).
func (w *trackWorker) readLoop(remote *webrtc.TrackRemote) {
	defer w.wg.Done()
	defer close(w.in)
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
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

// onRTCP takes the SDK's RTCP callback (its own goroutine): sender reports
// for this track feed the clock.
func (w *trackWorker) onRTCP(p rtcp.Packet) {
	sr, ok := p.(*rtcp.SenderReport)
	if !ok || w.t.remote == nil || sr.SSRC != uint32(w.t.remote.SSRC()) {
		return
	}
	w.srs.Add(1)
	w.clock.onSR(sr.NTPTime, sr.RTPTime)
	w.log.Trace().Time("ntp", ntpTime(sr.NTPTime)).Uint32("rtp", sr.RTPTime).Msg("sender report")
}

// requestKeyframe sends a PLI unless one went out less than pliInterval ago.
func (w *trackWorker) requestKeyframe(now time.Time, fromUser bool) bool {
	if w.t.Kind != KindVideo {
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

func (w *trackWorker) run() {
	defer w.wg.Done()
	defer func() {
		if w.sink != nil {
			w.sink.Close()
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

func (w *trackWorker) push(p inPacket, emit func(rawFrame)) {
	pkt := &rtpPacket{seq: w.seq.unwrap(p.seq), ts: p.ts, marker: p.marker, payload: p.payload, arrival: p.arrival}
	if w.jitter.push(pkt) {
		w.framer.loss()
	}
	w.popReady(p.arrival, emit)
}

func (w *trackWorker) popReady(now time.Time, emit func(rawFrame)) {
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

func (w *trackWorker) deliver(f rawFrame) {
	pts := w.clock.pts(f.ts, f.arrival)
	w.log.Trace().Uint32("ts", f.ts).Dur("pts", pts).Dur("arrival", w.clock.room.since(f.arrival)).Bool("key", f.info.keyframe).Int("size", len(f.data)).Msg("frame")
	if w.sink == nil {
		return
	}
	w.sink.WriteFrame(Frame{
		Codec:         w.t.Codec,
		Data:          f.data,
		PTS:           pts,
		Keyframe:      f.info.keyframe,
		Width:         f.info.width,
		Height:        f.info.height,
		Discontinuity: f.discontinuity,
	})
}

func (w *trackWorker) snapshot() {
	w.mu.Lock()
	w.fstats = w.framer.stats
	w.late, w.lost = w.jitter.late, w.jitter.lost
	w.mu.Unlock()
}

func (w *trackWorker) stats() TrackStats {
	w.mu.Lock()
	f, late, lost := w.fstats, w.late, w.lost
	w.mu.Unlock()
	return TrackStats{
		Packets:          w.packets.Load(),
		Bytes:            w.bytes.Load(),
		QueueDrops:       w.queueDrops.Load(),
		Malformed:        w.malformed.Load(),
		Late:             late,
		Lost:             lost,
		Frames:           f.frames,
		Keyframes:        f.keyframes,
		Broken:           f.broken,
		WaitingKey:       f.waitingKey,
		Blank:            f.blank,
		KeyframeRequests: w.plis.Load(),
		SenderReports:    w.srs.Load(),
	}
}

func kindOf(k lksdk.TrackKind) Kind {
	if k == lksdk.TrackKindVideo {
		return KindVideo
	}
	return KindAudio
}

func sourceOf(s livekit.TrackSource) Source {
	switch s {
	case livekit.TrackSource_CAMERA:
		return SourceCamera
	case livekit.TrackSource_MICROPHONE:
		return SourceMicrophone
	case livekit.TrackSource_SCREEN_SHARE:
		return SourceScreenShare
	case livekit.TrackSource_SCREEN_SHARE_AUDIO:
		return SourceScreenShareAudio
	}
	return SourceUnknown
}
