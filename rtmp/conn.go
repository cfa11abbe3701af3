package rtmp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/handshake"
	"github.com/yutopp/go-rtmp/message"
)

// Chunk stream IDs (RTMP 1.0 spec 5.3.1.1): 2 is reserved for protocol
// control. Metadata, audio and video share one chunk stream, as librtmp
// (and so OBS) does: go-rtmp interleaves the chunks of different chunk
// streams, so separate ones would let a short audio message overtake a
// long video frame and reach the server out of timestamp order, while on
// one chunk stream each message is complete before the next starts.
const (
	csControl = 2
	csCommand = 3 // NetConnection commands on message stream 0
	csMedia   = 4 // @setDataFrame, audio, video
	csStream  = 8 // NetStream commands (publish)
)

// Transaction IDs of the commands we wait for.
const (
	txnConnect      = 1
	txnRelease      = 2
	txnFCPublish    = 3
	txnCreateStream = 4
	txnFCUnpublish  = 5
	txnDelete       = 6
)

// dialConfig is the part of a Publisher's settings a connection needs.
type dialConfig struct {
	tls              *tls.Config
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	commandTimeout   time.Duration
	writeTimeout     time.Duration
	chunkSize        uint32
	sendBuffer       int
	log              zerolog.Logger
	written          *atomic.Uint64 // bytes written on the socket; may be nil
}

// serverEvent is what the read loop hands to the writer goroutine.
type serverEvent struct {
	name   string // command name: _result, _error, onStatus...
	txn    int64
	args   []any
	ping   bool   // a PingRequest user control event
	pingTS uint32 // its timestamp, echoed in the response
}

// conn is one publishing RTMP connection. go-rtmp's ChunkStreamer does the
// socket writes on its own goroutine, fed by Write calls from exactly one
// goroutine at a time: dial's until it returns, then the Publisher's.
type conn struct {
	nc       net.Conn
	cs       *gortmp.ChunkStreamer
	dest     *Destination
	cfg      *dialConfig
	streamID uint32
	events   chan serverEvent
	readDone chan struct{}
	readErr  error // set before readDone closes
	ioErr    atomic.Pointer[error]
	mw       *meteredConn
	pending  []byte // media messages encoded since the last flushMedia

	serverChunkSize atomic.Uint32
	fmsVer          string
	publishedAt     time.Time

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc

	closeOnce sync.Once
}

// dial opens a connection and takes it to the publishing state: TCP, TLS,
// RTMP handshake, connect, createStream, publish. Each step has its own
// timeout and ctx aborts any of them.
func dial(ctx context.Context, d *Destination, cfg *dialConfig) (*conn, error) {
	nd := net.Dialer{
		Timeout:   cfg.dialTimeout,
		KeepAlive: 15 * time.Second,
		Control:   socketControl(cfg.writeTimeout, cfg.sendBuffer),
	}
	nc, err := nd.DialContext(ctx, "tcp", d.Addr())
	if err != nil {
		return nil, dialError(ctx, d, err)
	}
	// Blocking reads and writes below ignore ctx; expiring the deadlines
	// on cancellation unblocks them.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if d.Scheme == "rtmps" {
		tc := tls.Client(nc, tlsConfigFor(cfg.tls, d.Host))
		hctx, cancel := context.WithTimeout(ctx, cfg.handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = nc.Close()
			return nil, tlsError(ctx, d, err)
		}
		nc = tc
	}

	_ = nc.SetDeadline(time.Now().Add(cfg.handshakeTimeout))
	if err := handshake.HandshakeWithServer(nc, nc, &handshake.Config{SkipHandshakeVerification: true}); err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if isTimeout(err) {
			return nil, &stepError{kind: ErrTimeout, dest: d.String(), step: "RTMP handshake",
				msg: fmt.Sprintf("no answer within %v: the server accepted TCP but does not speak RTMP", cfg.handshakeTimeout)}
		}
		return nil, &stepError{kind: ErrRefused, dest: d.String(), step: "RTMP handshake",
			msg: "the server closed the connection (is this an RTMP port? rtmps:// on a plain port or the reverse?)", cause: rootCause(err)}
	}
	_ = nc.SetDeadline(time.Time{})

	c := newConn(nc, d, cfg)
	if err := c.publish(ctx); err != nil {
		c.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if !stop() { // ctx was cancelled at the last moment
		c.close()
		return nil, ctx.Err()
	}
	return c, nil
}

func newConn(nc net.Conn, d *Destination, cfg *dialConfig) *conn {
	c := &conn{
		nc:       nc,
		dest:     d,
		cfg:      cfg,
		events:   make(chan serverEvent, 64),
		readDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	mw := &meteredConn{Conn: nc, raw: newRawWriter(nc), timeout: cfg.writeTimeout, counter: cfg.written, ioErr: &c.ioErr}
	c.mw = mw
	mr := &errReader{r: nc, ioErr: &c.ioErr}
	// The streamer flushes after every chunk and its buffer holds one chunk
	// and its header, so each of its socket writes is one whole chunk: our
	// media writes (queueMedia, flushMedia) go between them, never inside.
	c.cs = gortmp.NewChunkStreamer(bufio.NewReaderSize(mr, 16<<10), bufio.NewWriterSize(mw, int(cfg.chunkSize)+64), nil)
	c.serverChunkSize.Store(gortmp.DefaultChunkSize)
	go c.readLoop()
	return c
}

// publish runs the NetConnection/NetStream command sequence that FFmpeg and
// OBS use (RTMP 1.0 spec 7.2): connect, releaseStream, FCPublish,
// createStream, publish, and waits for NetStream.Publish.Start.
func (c *conn) publish(ctx context.Context) error {
	d := c.dest
	// Our chunk size must be set before the first write: the streamer's
	// goroutine reads it, and only the channel hand-off of the first write
	// orders our store before its loads.
	if err := c.cs.SelfState().SetChunkSize(c.cfg.chunkSize); err != nil {
		return err
	}
	if err := c.write(csControl, 0, 0, &message.SetChunkSize{ChunkSize: c.cfg.chunkSize}); err != nil {
		return c.stepErr(ErrRefused, "set chunk size", err)
	}

	if err := c.command(csCommand, 0, "connect", txnConnect, &message.NetConnectionConnect{
		Command: message.NetConnectionConnectCommand{
			App:      d.App,
			Type:     "nonprivate",
			FlashVer: "FMLE/3.0 (compatible; roomcast)",
			TCURL:    d.TCURL(),
		},
	}); err != nil {
		return c.stepErr(ErrRefused, "connect", err)
	}
	err := c.await(ctx, "connect", func(ev serverEvent) (bool, error) {
		if ev.txn != txnConnect || (ev.name != "_result" && ev.name != "_error") {
			return false, nil
		}
		if ev.name == "_error" {
			return true, &stepError{kind: ErrRefused, dest: d.String(), step: "connect",
				msg: fmt.Sprintf("server refused application %q: %s", d.App, c.describe(ev))}
		}
		if props, ok := argMap(ev.args, 0); ok {
			c.fmsVer, _ = props["fmsVer"].(string)
		}
		return true, nil
	})
	if err != nil {
		return err
	}

	// Answers to these two vary between servers (_result, _error or none)
	// and are ignored; they free a stale publish on some ingests.
	if err := c.command(csCommand, 0, "releaseStream", txnRelease, &message.NetConnectionReleaseStream{StreamName: d.Key}); err != nil {
		return c.stepErr(ErrRefused, "releaseStream", err)
	}
	if err := c.command(csCommand, 0, "FCPublish", txnFCPublish, &message.NetStreamFCPublish{StreamName: d.Key}); err != nil {
		return c.stepErr(ErrRefused, "FCPublish", err)
	}
	if err := c.command(csCommand, 0, "createStream", txnCreateStream, &message.NetConnectionCreateStream{}); err != nil {
		return c.stepErr(ErrRefused, "createStream", err)
	}
	err = c.await(ctx, "createStream", func(ev serverEvent) (bool, error) {
		if ev.txn != txnCreateStream || (ev.name != "_result" && ev.name != "_error") {
			return false, nil
		}
		if ev.name == "_error" {
			return true, &stepError{kind: ErrRefused, dest: d.String(), step: "createStream", msg: c.describe(ev)}
		}
		for _, a := range ev.args {
			if id, ok := a.(float64); ok && id >= 1 && id < 1<<31 {
				c.streamID = uint32(id)
				return true, nil
			}
		}
		return true, &stepError{kind: ErrRefused, dest: d.String(), step: "createStream", msg: "answer carries no stream id"}
	})
	if err != nil {
		return err
	}

	// Transaction 0: publish is answered by onStatus, not _result (7.2.2.6).
	if err := c.command(csStream, c.streamID, "publish", 0, &message.NetStreamPublish{PublishingName: d.Key, PublishingType: "live"}); err != nil {
		return c.stepErr(ErrRejected, "publish", err)
	}
	return c.await(ctx, "publish", func(ev serverEvent) (bool, error) {
		if ev.name != "onStatus" {
			return false, nil
		}
		info, _ := argMap(ev.args, 1)
		code, _ := info["code"].(string)
		level, _ := info["level"].(string)
		desc, _ := info["description"].(string)
		switch {
		case code == "NetStream.Publish.Start":
			c.publishedAt = time.Now()
			return true, nil
		case strings.EqualFold(level, "error") || strings.Contains(code, "Publish.") && code != "NetStream.Publish.Reset":
			return true, classifyStatus(d, code, d.scrub(desc))
		}
		return false, nil
	})
}

// classifyStatus turns a publish onStatus error into a sentinel. Servers
// disagree on codes: nginx-rtmp answers a taken key with BadName "Already
// publishing", node-media-server with BadName "Stream already publishing" or
// BadConnection, auth modules with Unauthorized or BadName.
func classifyStatus(d *Destination, code, desc string) error {
	lc := strings.ToLower(code + " " + desc)
	kind := ErrRejected
	switch {
	case strings.Contains(lc, "already") || strings.Contains(lc, "in use") || strings.Contains(lc, "badconnection"):
		kind = ErrAlreadyPublishing
	case strings.Contains(lc, "badname") || strings.Contains(lc, "unauthorized") || strings.Contains(lc, "denied") ||
		strings.Contains(lc, "forbidden") || strings.Contains(lc, "auth"):
		kind = ErrBadKey
	}
	msg := code
	if desc != "" {
		msg += " (" + desc + ")"
	}
	return &stepError{kind: kind, dest: d.String(), step: "publish", msg: "server answered " + msg}
}

// await waits for a server event accepted by match, bounded by the command
// timeout, the connection's death and ctx. Ping requests are answered here
// too, since nothing else reads events during set-up.
func (c *conn) await(ctx context.Context, step string, match func(serverEvent) (bool, error)) error {
	t := time.NewTimer(c.cfg.commandTimeout)
	defer t.Stop()
	handle := func(ev serverEvent) (bool, error) {
		if ev.ping {
			return false, c.pong(ev.pingTS)
		}
		return match(ev)
	}
	for {
		select {
		case ev := <-c.events:
			if done, err := handle(ev); done || err != nil {
				return err
			}
		case <-c.readDone:
			// The server may answer and then close: look at what it said.
			for {
				select {
				case ev := <-c.events:
					if done, err := handle(ev); done || err != nil {
						return err
					}
					continue
				default:
				}
				break
			}
			kind, msg := ErrRefused, "the server closed the connection"
			if step == "publish" {
				// PeerTube's embedded node-media-server, nginx on_publish
				// and node-media-server's duplicate check all do this.
				kind, msg = ErrRejected, "the server closed the connection in answer to publish (unknown stream key, or the key is already publishing)"
			}
			return &stepError{kind: kind, dest: c.dest.String(), step: step, msg: msg, cause: c.readCause()}
		case <-c.cs.Done():
			return c.stepErr(ErrRefused, step, c.writeErr())
		case <-t.C:
			return &stepError{kind: ErrTimeout, dest: c.dest.String(), step: step,
				msg: fmt.Sprintf("no answer within %v", c.cfg.commandTimeout)}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *conn) stepErr(kind error, step string, err error) error {
	if isTimeout(err) {
		kind = ErrTimeout
	}
	return &stepError{kind: kind, dest: c.dest.String(), step: step, cause: err}
}

// describe renders an _error answer's information object, scrubbed.
func (c *conn) describe(ev serverEvent) string {
	for i := range ev.args {
		if m, ok := argMap(ev.args, i); ok {
			code, _ := m["code"].(string)
			desc, _ := m["description"].(string)
			if code != "" || desc != "" {
				return c.dest.scrub(strings.TrimSpace(code + " " + desc))
			}
		}
	}
	return "no details"
}

func argMap(args []any, i int) (map[string]any, bool) {
	if i >= len(args) {
		return nil, false
	}
	switch m := args[i].(type) {
	case map[string]any:
		return m, true
	default:
		return nil, false
	}
}

// command writes an AMF0 command message.
func (c *conn) command(csid int, streamID uint32, name string, txn int64, body message.AMFConvertible) error {
	var buf bytes.Buffer
	if err := message.EncodeBodyAnyValues(message.NewAMFEncoder(&buf, message.EncodingTypeAMF0), body); err != nil {
		return err
	}
	return c.write(csid, 0, streamID, &message.CommandMessage{
		CommandName: name, TransactionID: txn, Encoding: message.EncodingTypeAMF0, Body: &buf,
	})
}

// pong answers a server ping (user control event 7).
func (c *conn) pong(ts uint32) error {
	return c.write(csControl, 0, 0, &message.UserCtrl{Event: &message.UserCtrlEventPingResponse{Timestamp: ts}})
}

// write queues one message on go-rtmp's streamer. The streamer writes
// asynchronously and, once its goroutine has died, silently accepts and
// drops messages, so its death is checked first. A chunk stream still busy
// with the previous message after writeTimeout means the link stalled.
func (c *conn) write(csid int, ts uint32, streamID uint32, msg message.Message) error {
	select {
	case <-c.cs.Done():
		return c.writeErr()
	default:
	}
	// go-rtmp waits on ctx for the chunk stream's previous message. No
	// per-write timer is needed: a stalled socket write fails at the write
	// deadline (meteredConn) or TCP_USER_TIMEOUT, which stops the streamer
	// and releases the wait.
	err := c.cs.Write(c.ctx, csid, ts, &gortmp.ChunkMessage{StreamID: streamID, Message: msg})
	if err != nil {
		return c.classifyWrite(err)
	}
	return nil
}

// queueMedia encodes one media message (audio, video or data on csMedia)
// after those queued before; flushMedia sends them. The connection's
// chunk size applies: publish set it before any media.
func (c *conn) queueMedia(typeID byte, ts uint32, body []byte) {
	c.pending = appendMessage(c.pending, csMedia, typeID, ts, c.streamID, body, int(c.cfg.chunkSize))
}

// flushMedia writes the queued media messages in one socket write from the
// caller's goroutine (go-rtmp's streamer would hand each chunk to its
// goroutine and flush after each). csMedia carries nothing else, so its
// header state is ours alone.
func (c *conn) flushMedia() error {
	if len(c.pending) == 0 && !c.mw.hasRest() {
		return nil
	}
	select {
	case <-c.cs.Done():
		c.pending = c.pending[:0]
		return c.writeErr()
	default:
	}
	_, err := c.mw.Write(c.pending)
	// Keep a typical batch's buffer; let a burst's (a keyframe) go.
	if cap(c.pending) > 256<<10 {
		c.pending = nil
	} else {
		c.pending = c.pending[:0]
	}
	if err != nil {
		return c.classifyWrite(err)
	}
	return nil
}

// tryFlushMedia writes the queued media messages without waiting (see
// meteredConn.tryWrite). done is false when some of them could not be
// written yet: flushMedia must follow, from a goroutine that may wait.
func (c *conn) tryFlushMedia() (done bool, err error) {
	select {
	case <-c.cs.Done():
		c.pending = c.pending[:0]
		return true, c.writeErr()
	default:
	}
	busy, done, err := c.mw.tryWrite(c.pending)
	if busy {
		return false, nil // c.pending waits for flushMedia
	}
	if cap(c.pending) > 256<<10 {
		c.pending = nil
	} else {
		c.pending = c.pending[:0]
	}
	if err != nil {
		return true, c.classifyWrite(err)
	}
	return done, nil
}

// writeErr is why the streamer's goroutine stopped.
func (c *conn) writeErr() error {
	if err := c.cs.Err(); err != nil {
		return c.classifyWrite(err)
	}
	return net.ErrClosed
}

// classifyWrite names a stall as such: our write deadline, go-rtmp's wait
// for the previous message, or the kernel's TCP_USER_TIMEOUT (ETIMEDOUT).
func (c *conn) classifyWrite(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) || errors.Is(err, syscall.ETIMEDOUT) {
		return &stepError{kind: ErrTimeout, dest: c.dest.String(), step: "write",
			msg: fmt.Sprintf("stalled for %v (half-open connection or uplink too slow)", c.cfg.writeTimeout)}
	}
	return rootCause(err)
}

// readCause is why the read loop stopped, valid after readDone.
func (c *conn) readCause() error {
	if errors.Is(c.readErr, io.EOF) {
		return nil // "closed the connection" says it all
	}
	return rootCause(c.readErr)
}

// readLoop reads everything the server sends. It never blocks on the
// writer: events go to a buffered channel and are dropped if nobody reads
// them (a publisher receives a handful per connection).
func (c *conn) readLoop() {
	defer close(c.readDone)
	// go-rtmp panics on some malformed chunk headers; a broken server must
	// not take the process down.
	defer func() {
		if r := recover(); r != nil {
			c.readErr = fmt.Errorf("malformed data from the server: %v", r)
		}
	}()
	var cm gortmp.ChunkMessage
	decodeErrors := 0
	for {
		if _, _, err := c.cs.Read(&cm); err != nil {
			if p := c.ioErr.Load(); p != nil || decodeErrors > 100 {
				c.readErr = err
				return
			}
			// A message we cannot decode (AMF3, an unknown user control
			// event) was fully consumed; the stream is still in sync.
			decodeErrors++
			c.cfg.log.Debug().Err(err).Msg("ignored a message from the server")
			continue
		}
		decodeErrors = 0
		switch m := cm.Message.(type) {
		case *message.SetChunkSize:
			if err := c.cs.PeerState().SetChunkSize(m.ChunkSize); err != nil {
				c.readErr = err
				return
			}
			c.serverChunkSize.Store(m.ChunkSize)
		case *message.UserCtrl:
			if p, ok := m.Event.(*message.UserCtrlEventPingRequest); ok {
				c.emit(serverEvent{ping: true, pingTS: p.Timestamp})
			}
		case *message.CommandMessage:
			ev := serverEvent{name: m.CommandName, txn: m.TransactionID}
			if m.Encoding == message.EncodingTypeAMF0 {
				dec := message.NewAMFDecoder(m.Body, m.Encoding)
				for len(ev.args) < 16 {
					var v any
					if err := dec.Decode(&v); err != nil {
						break
					}
					ev.args = append(ev.args, v)
				}
			}
			c.emit(ev)
		}
	}
}

func (c *conn) emit(ev serverEvent) {
	select {
	case c.events <- ev:
	default:
		c.cfg.log.Debug().Str("command", ev.name).Msg("dropped a server event nobody read")
	}
}

// flush waits until every message queued so far on the given chunk streams
// has reached the socket. It leaves those chunk streams unusable, so it is
// only for closing.
func (c *conn) flush(deadline time.Time, csids ...int) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for _, cs := range csids {
		select {
		case <-c.cs.Done():
			return
		default:
		}
		if _, err := c.cs.NewChunkWriter(ctx, cs); err != nil {
			return
		}
	}
}

// unpublish waits for the media sent so far, then tells the server we are
// done (FCUnpublish, deleteStream) so that it releases the key at once.
// Media after deleteStream would make some servers open a new recording.
func (c *conn) unpublish(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	_ = c.flushMedia() // media is written synchronously; this sends any left
	_ = c.command(csCommand, 0, "FCUnpublish", txnFCUnpublish, &message.NetStreamFCUnpublish{StreamName: c.dest.Key})
	_ = c.command(csCommand, 0, "deleteStream", txnDelete, &message.NetStreamDeleteStream{StreamID: c.streamID})
	c.flush(deadline, csCommand, csControl)
}

// close tears the connection down and waits for go-rtmp's goroutines.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.cs.Close()
		_ = c.nc.Close()
		<-c.readDone
		<-c.cs.Done()
	})
}

// meteredConn refreshes the write deadline and counts bytes for every write
// the streamer makes. Refreshing at most every 250 ms keeps the syscall
// count down; a stalled write still fails within writeTimeout+250ms.
// Writes come from go-rtmp's streamer goroutine (one whole chunk each) and
// from the publisher's (flushMedia, tryWrite); mu keeps each write whole on
// the wire: the rest of a partial tryWrite goes out before any other write.
type meteredConn struct {
	net.Conn
	timeout time.Duration
	counter *atomic.Uint64
	ioErr   *atomic.Pointer[error]
	raw     *rawWriter // plain TCP on Linux: writes without the runtime's syscall entry
	mu      sync.Mutex
	last    time.Time // guarded by mu
	rest    []byte    // guarded by mu: what tryWrite could not write yet
	hasMore atomic.Bool
}

func (m *meteredConn) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshDeadline()
	if len(m.rest) > 0 {
		if _, err := m.write(m.rest); err != nil {
			return 0, err
		}
		m.dropRest()
	}
	if len(b) == 0 {
		return 0, nil
	}
	return m.write(b)
}

// refreshDeadline moves the write deadline on, at most every 250 ms. The
// caller holds mu.
func (m *meteredConn) refreshDeadline() {
	if now := time.Now(); now.Sub(m.last) > 250*time.Millisecond {
		_ = m.Conn.SetWriteDeadline(now.Add(m.timeout))
		m.last = now
	}
}

func (m *meteredConn) write(b []byte) (int, error) {
	var n int
	var err error
	if m.raw != nil {
		n, err = m.raw.Write(b)
	} else {
		n, err = m.Conn.Write(b)
	}
	m.count(n, err)
	return n, err
}

func (m *meteredConn) count(n int, err error) {
	if m.counter != nil {
		m.counter.Add(uint64(n))
	}
	if err != nil {
		m.ioErr.CompareAndSwap(nil, &err)
	}
}

func (m *meteredConn) dropRest() {
	if cap(m.rest) > 1<<20 {
		m.rest = nil
	} else {
		m.rest = m.rest[:0]
	}
	m.hasMore.Store(false)
}

// hasRest reports whether a tryWrite left bytes to write.
func (m *meteredConn) hasRest() bool { return m.hasMore.Load() }

// canTryWrite reports whether tryWrite may be used: a plain TCP socket
// with nothing left over from the previous one.
func (m *meteredConn) canTryWrite() bool { return m.raw != nil && !m.hasMore.Load() }

// tryWrite writes b without waiting. busy: another write is under way and
// nothing was written. Otherwise, when the socket's send buffer fills, what
// is left is kept (copied) and goes out first on the next Write, and done
// is false. A Write must follow a busy or a false done, from a goroutine
// that may wait.
func (m *meteredConn) tryWrite(b []byte) (busy, done bool, err error) {
	if !m.mu.TryLock() {
		return true, false, nil
	}
	defer m.mu.Unlock()
	if len(m.rest) > 0 || m.raw == nil {
		return true, false, nil
	}
	m.refreshDeadline() // the poller fails even a non-blocking write past it
	n, err := m.raw.tryWrite(b)
	m.count(n, err)
	if err != nil {
		return false, true, err
	}
	if n < len(b) {
		m.rest = append(m.rest, b[n:]...)
		m.hasMore.Store(true)
		return false, false, nil
	}
	return false, true, nil
}

// errReader records socket read errors so the read loop can tell them from
// undecodable messages.
type errReader struct {
	r     io.Reader
	ioErr *atomic.Pointer[error]
}

func (e *errReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.ioErr.CompareAndSwap(nil, &err)
	}
	return n, err
}

func tlsConfigFor(base *tls.Config, host string) *tls.Config {
	var c *tls.Config
	if base != nil {
		c = base.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = host
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

func dialError(ctx context.Context, d *Destination, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if isTimeout(err) {
		return &stepError{kind: ErrTimeout, dest: d.String(), step: "dial", msg: "no TCP answer (host down or firewalled?)"}
	}
	return &stepError{kind: ErrUnreachable, dest: d.String(), step: "dial", cause: rootCause(err)}
}

func tlsError(ctx context.Context, d *Destination, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return &stepError{kind: ErrTimeout, dest: d.String(), step: "TLS handshake", msg: "no answer"}
	}
	msg := ""
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown):
		msg = "certificate signed by an unknown authority (self-signed? use the insecure option only for test servers)"
	case errors.As(err, &hostErr):
		msg = "certificate is not valid for this host name"
	case errors.As(err, &certErr):
		msg = "certificate does not verify"
	case errors.Is(err, io.EOF):
		msg = "the server closed the connection (is this a TLS port?)"
	}
	return &stepError{kind: ErrTLS, dest: d.String(), step: "TLS handshake", msg: msg, cause: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// rootCause strips go-rtmp's pkg/errors wrappers down to the OS-level
// error, which is what a user can act on.
func rootCause(err error) error {
	if err == nil {
		return nil
	}
	for {
		var op *net.OpError
		if errors.As(err, &op) {
			if errors.Is(op.Err, syscall.ECONNREFUSED) || errors.Is(op.Err, syscall.ECONNRESET) || errors.Is(op.Err, syscall.EPIPE) {
				return op.Err
			}
			return op
		}
		type causer interface{ Cause() error }
		if c, ok := err.(causer); ok && c.Cause() != nil && c.Cause() != err {
			err = c.Cause()
			continue
		}
		return err
	}
}
