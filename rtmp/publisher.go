package rtmp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// Backoff configures reconnection after an established stream fails.
type Backoff struct {
	// Initial is the wait before the first reconnection attempt; each
	// failed attempt doubles it. It defaults to 1 s.
	Initial time.Duration
	// Max caps the wait between attempts. It defaults to 30 s.
	Max time.Duration
	// GiveUpAfter ends the attempts once an outage has lasted this long;
	// the Publisher then fails with ErrGaveUp. It defaults to 10 minutes.
	GiveUpAfter time.Duration
	// Disabled turns reconnection off: the first failure is final.
	Disabled bool
}

// State is where a Publisher is in its life.
type State int32

// Publisher states.
const (
	StateIdle         State = iota // not started
	StateConnecting                // Start is dialing
	StatePublishing                // streaming
	StateReconnecting              // outage: redialing with backoff
	StateFailed                    // gave up, or Start failed
	StateClosed                    // Close was called
)

func (s State) String() string {
	return [...]string{"idle", "connecting", "publishing", "reconnecting", "failed", "closed"}[s]
}

// Stats are a Publisher's counters, safe to read at any time.
type Stats struct {
	Destination string // redacted URL
	State       State
	Connects    int64         // publishes accepted, the first one included
	Outages     int64         // established streams that failed
	OutageTime  time.Duration // total time without a stream after a failure
	Packets     uint64        // media packets sent
	Bytes       uint64        // bytes written to the sockets, RTMP framing included
	// DroppedVideo and DroppedAudio count packets not sent: queue full
	// (video then waits for the next keyframe), outages, a new connection
	// waiting for its first keyframe.
	DroppedVideo, DroppedAudio uint64
	// ServerChunkSize is the chunk size the server announced on the last
	// connection (128, RTMP's default, if it announced none).
	ServerChunkSize uint32
	// LastError is the most recent connection failure, nil if none.
	LastError error
}

// Publisher pushes one encoded stream to one RTMP(S) destination.
//
// Set the exported fields, then Start. WritePacket never blocks: packets go
// through a bounded queue to a single goroutine that owns the connection;
// when the queue is full, packets are dropped and video resumes at the next
// keyframe. When an established stream fails, the Publisher reconnects with
// backoff, resends metadata and sequence headers and resumes at a keyframe
// (calling RequestKeyframe), while WritePacket keeps returning at once.
type Publisher struct {
	// URL is rtmp(s)://host[:port]/app/key; it may also be given as Dest.
	URL string
	// Dest is the parsed destination; it overrides URL when set.
	Dest *Destination
	// Info describes the stream: VideoConfig (SPS+PPS) and AudioConfig
	// (AudioSpecificConfig) are sent as sequence headers; a stream without
	// one of them has no such track.
	Info media.StreamInfo

	// TLSConfig is the base TLS configuration for rtmps (ServerName is
	// filled in from the URL). It defaults to the system roots.
	TLSConfig *tls.Config
	// InsecureSkipVerify accepts any rtmps certificate. Only for
	// self-signed test servers.
	InsecureSkipVerify bool

	// DialTimeout bounds the TCP connection. It defaults to 5 s.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and the RTMP handshake,
	// each. It defaults to 5 s.
	HandshakeTimeout time.Duration
	// CommandTimeout bounds each answer to connect, createStream and
	// publish. It defaults to 5 s.
	CommandTimeout time.Duration
	// WriteTimeout is how long a write may stall before the connection is
	// declared dead (a half-open link); also set as TCP_USER_TIMEOUT on
	// Linux. It defaults to 10 s.
	WriteTimeout time.Duration
	// AcceptWindow is how long a publish must survive after
	// NetStream.Publish.Start to count as accepted: PeerTube and some
	// auth hooks accept first and close the socket when the key turns out
	// to be unknown. Start returns only after it. It defaults to 2 s.
	AcceptWindow time.Duration
	// CloseTimeout bounds Close's flushing of queued packets. It defaults
	// to 3 s.
	CloseTimeout time.Duration

	// ChunkSize is our outgoing RTMP chunk size, announced with
	// SetChunkSize. It defaults to 4096 (RTMP's 128 costs a header every
	// 128 bytes).
	ChunkSize uint32
	// SendBuffer caps the socket send buffer (SO_SNDBUF) in bytes, which
	// bounds how much stale video a congested link holds and how soon a
	// stall is noticed. It defaults to 0: the OS's auto-tuning.
	SendBuffer int
	// QueueSize is the number of packets WritePacket may queue. It
	// defaults to 1024 (about 13 s of 30 fps video with 48 kHz AAC).
	QueueSize int
	// InterleaveWindow is how much media one track may buffer while
	// waiting for the other before it is sent anyway. It must exceed the
	// encoder's video delay (x264 lookahead). It defaults to 2 s.
	InterleaveWindow time.Duration
	// Backoff configures reconnection.
	Backoff Backoff

	// RequestKeyframe, if set, asks the encoder for a keyframe. It is
	// called after a reconnection and at most once a second while a
	// connection waits for one. It must not block.
	RequestKeyframe func()
	// Logger receives the Publisher's log lines (component "rtmp"); URLs
	// in them are redacted. It defaults to no logging.
	Logger zerolog.Logger

	dest *Destination
	cfg  dialConfig
	log  zerolog.Logger

	mu      sync.Mutex // guards queue, waitKey, lastErr, failErr
	queue   chan media.Packet
	waitKey bool
	lastErr error
	failErr error

	state       atomic.Int32
	closed      atomic.Bool
	closing     chan struct{}
	done        chan struct{}
	ctx         context.Context
	cancel      context.CancelFunc
	startResult chan error
	started     atomic.Bool
	closeOnce   sync.Once

	connects, outages          atomic.Int64
	outageTime                 atomic.Int64
	packets, written           atomic.Uint64
	droppedVideo, droppedAudio atomic.Uint64
	serverChunk                atomic.Uint32
	fmsVer                     atomic.Pointer[string]
	connectDur                 atomic.Int64

	// The sending state, guarded by wmu: the run goroutine holds it while
	// it sends, and WritePacket takes it (TryLock, never waiting) to send
	// a packet itself when the connection is idle (sendInline).
	wmu        sync.Mutex
	live       *conn // the connection streaming media; nil between connections
	inlineErr  error // a write error met by sendInline, for the run goroutine
	il         interleaver
	tl         timeline
	batch      []stamped
	avcRecord  []byte // the current AVCDecoderConfigurationRecord
	scratch    []byte
	lastKeyReq time.Time
	now        func() time.Time

	// queued counts packets put on the queue and not yet sent or dropped
	// by the run goroutine: WritePacket sends inline only when it is 0,
	// so that packets keep their order.
	queued atomic.Int64
	// kick asks the run goroutine to finish what sendInline could not
	// write without waiting, or to handle its write error.
	kick chan struct{}
	// Packets sendInline took, and its writes the socket did not take
	// whole (for tests).
	inlineSent, inlinePartial atomic.Uint64
}

func (p *Publisher) init() error {
	p.dest = p.Dest
	if p.dest == nil {
		d, err := ParseURL(p.URL)
		if err != nil {
			return err
		}
		p.dest = d
	}
	if len(p.Info.VideoConfig) == 0 && len(p.Info.AudioConfig) == 0 {
		return fmt.Errorf("rtmp: StreamInfo has neither VideoConfig nor AudioConfig")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.DialTimeout, 5*time.Second)
	def(&p.HandshakeTimeout, 5*time.Second)
	def(&p.CommandTimeout, 5*time.Second)
	def(&p.WriteTimeout, 10*time.Second)
	def(&p.AcceptWindow, 2*time.Second)
	def(&p.CloseTimeout, 3*time.Second)
	def(&p.InterleaveWindow, 2*time.Second)
	def(&p.Backoff.Initial, time.Second)
	def(&p.Backoff.Max, 30*time.Second)
	def(&p.Backoff.GiveUpAfter, 10*time.Minute)
	if p.ChunkSize == 0 {
		p.ChunkSize = 4096
	}
	if p.ChunkSize < 128 || p.ChunkSize > 1<<24-1 {
		return fmt.Errorf("rtmp: ChunkSize %d out of range [128, 16777215]", p.ChunkSize)
	}
	if p.QueueSize <= 0 {
		p.QueueSize = 1024
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.log = p.Logger.With().Str("component", "rtmp").Str("dest", p.dest.String()).Logger()
	tlsConf := p.TLSConfig
	if p.InsecureSkipVerify {
		if tlsConf != nil {
			tlsConf = tlsConf.Clone()
		} else {
			tlsConf = &tls.Config{}
		}
		tlsConf.InsecureSkipVerify = true //nolint:gosec // explicit opt-in for self-signed test servers
	}
	p.cfg = dialConfig{
		tls:              tlsConf,
		dialTimeout:      p.DialTimeout,
		handshakeTimeout: p.HandshakeTimeout,
		commandTimeout:   p.CommandTimeout,
		writeTimeout:     p.WriteTimeout,
		chunkSize:        p.ChunkSize,
		sendBuffer:       p.SendBuffer,
		log:              p.log,
		written:          &p.written,
	}
	p.il = interleaver{
		hasAudio: len(p.Info.AudioConfig) > 0,
		hasVideo: len(p.Info.VideoConfig) > 0,
		window:   p.InterleaveWindow,
	}
	// Validate the codec configuration now rather than on every connect.
	if p.il.hasVideo {
		rec, err := avcDecoderConfig(p.Info.VideoConfig)
		if err != nil {
			return fmt.Errorf("rtmp: bad H.264 decoder configuration: %w", err)
		}
		p.avcRecord = rec
	}
	if p.il.hasAudio && len(p.Info.AudioConfig) < 2 {
		return fmt.Errorf("rtmp: AudioSpecificConfig too short")
	}
	p.closing = make(chan struct{})
	p.done = make(chan struct{})
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.startResult = make(chan error, 1)
	p.kick = make(chan struct{}, 1)
	return nil
}

// Start connects and publishes. It returns once the server has accepted the
// stream and kept it for AcceptWindow, or with the reason it did not: a
// rejection (ErrBadKey, ErrAlreadyPublishing, ErrRejected), ErrRefused,
// ErrTLS, ErrTimeout, ErrUnreachable, ErrInvalidURL. Reconnection only
// applies to streams that were established: a failing Start is final. ctx
// bounds the connection attempt only.
func (p *Publisher) Start(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("rtmp: Publisher started twice")
	}
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return ErrClosed
	}
	err := p.init()
	if err == nil {
		p.queue = make(chan media.Packet, p.QueueSize)
	}
	p.mu.Unlock()
	if err != nil {
		p.state.Store(int32(StateFailed))
		return err
	}
	p.state.Store(int32(StateConnecting))
	// The attempt ends with ctx or with Close.
	dctx, cancel := context.WithCancel(p.ctx)
	stop := context.AfterFunc(ctx, cancel)
	t0 := p.now()
	c, err := dial(dctx, p.dest, &p.cfg)
	stop()
	cancel()
	if err != nil {
		if p.closed.Load() {
			err = ErrClosed
		} else if ctx.Err() != nil {
			err = ctx.Err()
		}
		p.fail(err)
		close(p.done)
		p.log.Error().Err(err).Msg("publish failed")
		return err
	}
	p.connectDur.Store(int64(p.now().Sub(t0)))
	p.connected(c)
	go p.run(c)
	return <-p.startResult
}

func (p *Publisher) connected(c *conn) {
	p.connects.Add(1)
	p.serverChunk.Store(c.serverChunkSize.Load())
	v := c.fmsVer
	p.fmsVer.Store(&v)
	p.state.Store(int32(StatePublishing))
	p.log.Info().Uint32("server_chunk_size", c.serverChunkSize.Load()).Str("server", v).Msg("publishing")
}

func (p *Publisher) fail(err error) {
	p.mu.Lock()
	p.failErr = err
	p.lastErr = err
	p.mu.Unlock()
	if !p.closed.Load() {
		p.state.Store(int32(StateFailed))
	}
}

// WritePacket sends or queues a packet and returns at once. It never
// blocks: when the connection is idle (nothing queued, no write under way,
// the socket has room) the packet is written from the caller's goroutine
// with a non-blocking write, and whatever the socket does not take at once
// is left to the Publisher's goroutine; otherwise the packet is queued for
// that goroutine. When the queue is full the packet is dropped and
// counted, and video is then dropped up to the next keyframe, since frames
// that refer to a lost one cannot be decoded. Packets written before
// Start, after Close or after the Publisher failed are dropped. The
// Publisher keeps p.Data until it is sent and never modifies it; the
// caller must not modify it either. Safe for concurrent use.
func (p *Publisher) WritePacket(pkt media.Packet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := State(p.state.Load())
	if p.queue == nil || st == StateFailed || st == StateClosed {
		p.countDrop(pkt.Kind)
		return
	}
	if pkt.Kind == media.KindVideo {
		if p.waitKey && !pkt.Key {
			p.droppedVideo.Add(1)
			return
		}
		p.waitKey = false
	}
	// Sending inline saves two goroutine hand-offs per packet (to the
	// run goroutine and back), each of which wakes an idle CPU.
	if !p.closed.Load() && p.queued.Load() == 0 && p.wmu.TryLock() {
		sent := p.sendInline(pkt)
		p.wmu.Unlock()
		if sent {
			return
		}
	}
	p.queued.Add(1)
	select {
	case p.queue <- pkt:
	default:
		p.queued.Add(-1)
		p.countDrop(pkt.Kind)
		if pkt.Kind == media.KindVideo {
			p.waitKey = true
		}
	}
}

// sendInline sends pkt from WritePacket's goroutine, under wmu, if the
// connection is streaming and idle. The socket write does not wait: what
// the send buffer cannot take now stays with the connection, to be written
// first by the next write, and the run goroutine is asked to write it (and
// blocks, with the write timeout, if the link is slow). It reports false
// when it sent nothing: the packet must be queued.
func (p *Publisher) sendInline(pkt media.Packet) bool {
	c := p.live
	if c == nil || p.inlineErr != nil || len(c.pending) > 0 || !c.mw.canTryWrite() || p.queued.Load() != 0 {
		return false
	}
	p.process(c, pkt)
	if len(c.pending) == 0 {
		return true // held by the interleaver, or dropped
	}
	p.inlineSent.Add(1)
	done, err := c.tryFlushMedia()
	if err != nil {
		p.inlineErr = err
	}
	if !done {
		p.inlinePartial.Add(1)
	}
	if !done || err != nil {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return true
}

// process passes one packet through the interleaver and the timeline and
// encodes whatever that releases on c's pending media; the caller holds
// wmu and flushes.
func (p *Publisher) process(c *conn, pkt media.Packet) {
	p.il.push(pkt)
	for {
		q, ok := p.il.pop(false)
		if !ok {
			return
		}
		p.batch = p.tl.next(q, p.batch[:0])
		if !p.tl.started && q.Kind == media.KindVideo {
			p.requestKeyframe(false)
		}
		for i := range p.batch {
			p.send(c, &p.batch[i])
		}
	}
}

func (p *Publisher) countDrop(k media.Kind) {
	if k == media.KindVideo {
		p.droppedVideo.Add(1)
	} else {
		p.droppedAudio.Add(1)
	}
}

// Close ends the stream: queued packets are sent (for at most
// CloseTimeout), the server is told the stream is over, the connection is
// closed and Close waits for the Publisher's goroutines. It returns the
// error that had stopped the Publisher, if any. It is idempotent.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		// Under mu, so that Start either sees closed or has finished
		// setting up what Close waits for.
		p.mu.Lock()
		p.closed.Store(true)
		started := p.queue != nil
		p.mu.Unlock()
		if !started {
			p.state.Store(int32(StateClosed))
			return
		}
		close(p.closing)
		p.cancel()
		<-p.done
		if State(p.state.Load()) != StateFailed {
			p.state.Store(int32(StateClosed))
		}
	})
	if err := p.Err(); !errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// Done is closed when the Publisher has stopped for good: Start failed, it
// gave up reconnecting, or Close finished. Nil before Start.
func (p *Publisher) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queue == nil {
		return nil
	}
	return p.done
}

// Err is the error that stopped the Publisher (a failed Start, or
// ErrGaveUp), nil while it runs or after a clean Close.
func (p *Publisher) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failErr
}

// Stats returns the current counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	last := p.lastErr
	dest := Redact(p.URL)
	if p.dest != nil {
		dest = p.dest.String()
	}
	p.mu.Unlock()
	return Stats{
		Destination:     dest,
		State:           State(p.state.Load()),
		Connects:        p.connects.Load(),
		Outages:         p.outages.Load(),
		OutageTime:      time.Duration(p.outageTime.Load()),
		Packets:         p.packets.Load(),
		Bytes:           p.written.Load(),
		DroppedVideo:    p.droppedVideo.Load(),
		DroppedAudio:    p.droppedAudio.Load(),
		ServerChunkSize: p.serverChunk.Load(),
		LastError:       last,
	}
}

// errServerClosed marks a connection the server closed (as opposed to a
// stall or a write error), which right after publishing means rejection.
var errServerClosed = errors.New("the server closed the connection")

// outage tracks one period without a stream.
type outage struct {
	n     int64
	start time.Time
	delay time.Duration
	cause error
}

// run owns the connection: it streams, and after a failure reconnects.
func (p *Publisher) run(c *conn) {
	defer close(p.done)
	first := true
	var out *outage
	for {
		settled, err := p.stream(c, first, out)
		c.close()
		if p.closed.Load() {
			if first && !settled {
				p.startResult <- ErrClosed
			}
			return
		}
		if !settled && errors.Is(err, errServerClosed) {
			// Accepted, then dropped: PeerTube and node-media-server
			// check the key after NetStream.Publish.Start this way.
			err = &stepError{kind: ErrRejected, dest: p.dest.String(), step: "publish",
				msg: fmt.Sprintf("the server accepted the stream, then closed the connection after %v (unknown stream key?)",
					p.now().Sub(c.publishedAt).Round(time.Millisecond))}
		}
		if first && !settled {
			// Start is waiting for this verdict; it is final.
			p.fail(err)
			p.startResult <- err
			return
		}
		if settled {
			out = &outage{n: p.outages.Add(1), start: p.now(), delay: p.Backoff.Initial}
			p.log.Warn().Err(err).Int64("outage", out.n).Msg("connection lost")
		} else {
			p.log.Warn().Err(err).Int64("outage", out.n).Msg("stream dropped right after being accepted")
		}
		out.cause = err
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		first = false
		if p.Backoff.Disabled {
			p.fail(err)
			p.log.Error().Err(err).Msg("reconnection disabled; stream stopped")
			return
		}
		p.state.Store(int32(StateReconnecting))
		if c, err = p.reconnect(out); err != nil {
			if !errors.Is(err, ErrClosed) {
				p.fail(err)
				p.log.Error().Err(err).Msg("stream stopped")
			}
			return
		}
		p.connected(c)
	}
}

// reconnect redials with backoff until it succeeds, the outage exceeds
// GiveUpAfter or Close is called. Packets arriving meanwhile are dropped
// (a live stream resumes live, at a keyframe).
func (p *Publisher) reconnect(out *outage) (*conn, error) {
	for attempt := 1; ; attempt++ {
		if !p.sleepDraining(out.delay) {
			return nil, ErrClosed
		}
		if elapsed := p.now().Sub(out.start); elapsed >= p.Backoff.GiveUpAfter {
			return nil, &stepError{kind: ErrGaveUp, dest: p.dest.String(),
				msg: fmt.Sprintf("no stream for %v (%d attempts)", elapsed.Round(time.Second), attempt-1), cause: out.cause}
		}
		c, err := p.dialDraining()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, ErrClosed) {
			return nil, err
		}
		out.cause = err
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		ev := p.log.Warn().Err(err).Int64("outage", out.n).Int("attempt", attempt).Dur("retry_in", min(out.delay*2, p.Backoff.Max))
		if errors.Is(err, ErrAlreadyPublishing) {
			// Typically our own previous connection, half-open on the
			// server's side; it goes when the server notices.
			ev.Msg("reconnect refused: the server still holds the previous publish")
		} else {
			ev.Msg("reconnect failed")
		}
		out.delay = min(out.delay*2, p.Backoff.Max)
	}
}

// sleepDraining waits d while discarding queued packets; false on Close.
func (p *Publisher) sleepDraining(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case pkt := <-p.queue:
			p.queued.Add(-1)
			p.countDrop(pkt.Kind)
		case <-t.C:
			return true
		case <-p.closing:
			return false
		}
	}
}

// dialDraining dials on a helper goroutine while discarding queued packets,
// so that the queue never fills with stale media during an attempt.
func (p *Publisher) dialDraining() (*conn, error) {
	type result struct {
		c   *conn
		err error
	}
	res := make(chan result, 1)
	t0 := p.now()
	go func() {
		c, err := dial(p.ctx, p.dest, &p.cfg)
		res <- result{c, err}
	}()
	for {
		select {
		case pkt := <-p.queue:
			p.queued.Add(-1)
			p.countDrop(pkt.Kind)
		case r := <-res:
			if r.err != nil && p.closed.Load() {
				return nil, ErrClosed
			}
			if r.err == nil {
				p.connectDur.Store(int64(p.now().Sub(t0)))
			}
			return r.c, r.err
		}
	}
}

// stream sends headers and then packets until the connection fails or
// Close. settled reports whether the connection outlived AcceptWindow. It
// returns a nil error only for Close.
func (p *Publisher) stream(c *conn, first bool, out *outage) (settled bool, err error) {
	p.wmu.Lock()
	if err := p.sendHeaders(c); err != nil {
		p.wmu.Unlock()
		return false, err
	}
	p.tl = timeline{hasVideo: p.il.hasVideo}
	p.il.reset()
	p.inlineErr = nil
	select {
	case <-p.kick: // left by the previous connection
	default:
	}
	if !first && p.il.hasVideo {
		p.requestKeyframe(true)
	}
	p.live = c
	p.wmu.Unlock()
	settle := time.NewTimer(max(p.AcceptWindow-p.now().Sub(c.publishedAt), 0))
	defer settle.Stop()
	defer func() {
		p.wmu.Lock()
		p.live = nil
		p.droppedVideo.Add(p.tl.droppedVideo)
		p.droppedAudio.Add(p.tl.droppedAudio)
		p.tl.droppedVideo, p.tl.droppedAudio = 0, 0
		p.wmu.Unlock()
	}()
	for {
		select {
		case pkt := <-p.queue:
			p.wmu.Lock()
			p.queued.Add(-1)
			// Everything the packet releases goes out in one write.
			p.process(c, pkt)
			err := p.inlineErr
			if err == nil {
				err = c.flushMedia()
			}
			p.wmu.Unlock()
			if err != nil {
				return settled, p.lost(c, err)
			}
		case <-p.kick:
			// sendInline left bytes the socket could not take at once,
			// or met an error.
			p.wmu.Lock()
			err := p.inlineErr
			if err == nil {
				err = c.flushMedia()
			}
			p.wmu.Unlock()
			if err != nil {
				return settled, p.lost(c, err)
			}
		case ev := <-c.events:
			if ev.ping {
				if err := c.pong(ev.pingTS); err != nil {
					return settled, p.lost(c, err)
				}
				continue
			}
			if ev.name == "onStatus" {
				info, _ := argMap(ev.args, 1)
				level, _ := info["level"].(string)
				code, _ := info["code"].(string)
				desc, _ := info["description"].(string)
				if level == "error" {
					return settled, &stepError{kind: ErrDisconnected, dest: p.dest.String(),
						msg: "server stopped the stream: " + code + " " + p.dest.scrub(desc)}
				}
			}
		case <-c.readDone:
			return settled, p.lost(c, nil)
		case <-c.cs.Done():
			return settled, p.lost(c, c.writeErr())
		case <-settle.C:
			settled = true
			p.serverChunk.Store(c.serverChunkSize.Load())
			if first {
				p.startResult <- nil
			} else if out != nil {
				d := c.publishedAt.Sub(out.start)
				p.outageTime.Add(int64(d))
				p.log.Info().Int64("outage", out.n).Dur("duration", d).Msg("reconnected")
			}
		case <-p.closing:
			p.wmu.Lock()
			p.drain(c)
			p.wmu.Unlock()
			return settled, nil
		}
	}
}

// lost builds the error for a connection that died while streaming.
func (p *Publisher) lost(c *conn, err error) error {
	if err == nil {
		// The read side ended: the server closed or reset the connection.
		err = errServerClosed
		if cause := c.readCause(); cause != nil {
			err = fmt.Errorf("%w: %w", errServerClosed, cause)
		}
		return &stepError{kind: ErrDisconnected, dest: p.dest.String(), cause: err}
	}
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		// Our write met a connection the server had closed: media is
		// written from this goroutine, so the write can notice before the
		// read loop does. It is the server's doing all the same (a
		// rejection right after publish, say).
		return &stepError{kind: ErrDisconnected, dest: p.dest.String(), cause: fmt.Errorf("%w: %w", errServerClosed, rootCause(err))}
	}
	var se *stepError
	if errors.As(err, &se) {
		return &stepError{kind: ErrDisconnected, dest: p.dest.String(), cause: err}
	}
	return &stepError{kind: ErrDisconnected, dest: p.dest.String(), cause: rootCause(err)}
}

// drain sends what is queued at Close, for at most CloseTimeout, then
// unpublishes. The caller holds wmu.
func (p *Publisher) drain(c *conn) {
	deadline := p.now().Add(p.CloseTimeout)
	for more := true; more; {
		select {
		case pkt := <-p.queue:
			p.queued.Add(-1)
			p.il.push(pkt)
		default:
			more = false
		}
	}
	if p.inlineErr != nil {
		return
	}
	for p.now().Before(deadline) {
		q, ok := p.il.pop(true)
		if !ok {
			break
		}
		p.batch = p.tl.next(q, p.batch[:0])
		if err := p.sendAll(c, p.batch); err != nil {
			return
		}
	}
	c.unpublish(max(time.Until(deadline), 500*time.Millisecond))
}

func (p *Publisher) requestKeyframe(force bool) {
	if p.RequestKeyframe == nil {
		return
	}
	now := p.now()
	if !force && now.Sub(p.lastKeyReq) < time.Second {
		return
	}
	p.lastKeyReq = now
	p.RequestKeyframe()
}

// sendHeaders sends onMetaData and the sequence headers, at timestamp 0,
// as every new connection needs them before any media.
func (p *Publisher) sendHeaders(c *conn) error {
	c.queueMedia(typeDataAMF0, 0, append(amfString(nil, "@setDataFrame"), onMetaData(p.Info)...))
	if p.il.hasVideo {
		c.queueMedia(typeVideo, 0, videoSeqHeaderTag(p.avcRecord))
	}
	if p.il.hasAudio {
		c.queueMedia(typeAudio, 0, audioSeqHeaderTag(p.Info.AudioConfig))
	}
	if err := c.flushMedia(); err != nil {
		return p.lost(c, err)
	}
	return nil
}

// sendAll sends a batch of packets in one socket write.
func (p *Publisher) sendAll(c *conn, batch []stamped) error {
	for i := range batch {
		p.send(c, &batch[i])
	}
	return c.flushMedia()
}

// send packages one packet as an FLV tag body and queues it on c (copied:
// one scratch buffer serves all).
func (p *Publisher) send(c *conn, s *stamped) {
	if s.p.Kind == media.KindVideo {
		if s.p.Key {
			p.checkParameterSets(c, s)
		}
		body, err := videoTag(p.scratch[:0], s.p.Key, s.cts, s.p.Data)
		p.scratch = body
		if err != nil {
			// One bad access unit from the encoder is not worth the
			// connection; the decoder will recover at the next keyframe.
			p.droppedVideo.Add(1)
			p.log.Debug().Err(err).Msg("dropped an unparsable video packet")
			return
		}
		c.queueMedia(typeVideo, s.ts, body)
	} else {
		p.scratch = audioTag(p.scratch[:0], s.p.Data)
		c.queueMedia(typeAudio, s.ts, p.scratch)
	}
	p.packets.Add(1)
}

// checkParameterSets resends the AVC sequence header when a keyframe
// carries SPS/PPS that differ from the current ones (an encoder restarted
// with new settings): decoders need the new configuration before the
// frame. Later connections start with it too.
func (p *Publisher) checkParameterSets(c *conn, s *stamped) {
	ps := inBandParameterSets(s.p.Data)
	if ps == nil {
		return
	}
	rec, err := avcDecoderConfig(ps)
	if err != nil || bytes.Equal(rec, p.avcRecord) {
		return
	}
	p.avcRecord = rec
	p.log.Info().Msg("H.264 parameter sets changed; new sequence header sent")
	c.queueMedia(typeVideo, s.ts, videoSeqHeaderTag(rec))
}
