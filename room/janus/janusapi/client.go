package janusapi

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Options configure a Client. Zero values take the documented defaults.
type Options struct {
	// APISecret is sent as "apisecret" with every request when the server
	// requires one. Never logged.
	APISecret string
	// Token is sent as "token" with every request (token_auth). Never
	// logged.
	Token string
	// KeepAlive is the interval of keepalive requests, well under the
	// server's session_timeout (60 s by default). It defaults to 25 s.
	KeepAlive time.Duration
	// InsecureTLS accepts any certificate for wss:// and https:// (test
	// servers only).
	InsecureTLS bool
	// OnEvent receives every message that is not the answer to a request
	// (plugin events, webrtcup, media, hangup, trickle…). It is called from
	// the connection's read goroutine and must not block.
	OnEvent func(m *Message)
	// Logger gets protocol-level lines (debug). The zero Logger discards.
	Logger zerolog.Logger
}

// Client is one connection to a Janus server carrying one session. Create
// it with Dial; Close destroys the session and closes the connection.
type Client struct {
	opts Options
	log  zerolog.Logger
	tr   transport
	// Session is the Janus session ID.
	Session uint64

	mu      sync.Mutex
	pending map[string]chan *Message

	done      chan struct{}
	errMu     sync.Mutex
	err       error
	endOnce   sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// transport moves JSON messages. send delivers a request (and, for HTTP,
// the synchronous answer through deliver); run reads events until the
// connection fails or close is called.
type transport interface {
	send(ctx context.Context, msg map[string]any) error
	run(deliver func([]byte)) error
	close()
}

// Dial connects to a Janus server and creates a session. url is
// ws://host:port[/path], wss://…, or http(s)://host:port/janus (the HTTP
// transport's base path). Errors wrap ErrConnect, or are an *Error (e.g.
// 403 unauthorized: wrong API secret or token) from the server.
func Dial(ctx context.Context, rawURL string, o Options) (*Client, error) {
	if o.KeepAlive <= 0 {
		o.KeepAlive = 25 * time.Second
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not a URL", ErrConnect, Redact(rawURL))
	}
	c := &Client{
		opts:    o,
		log:     o.Logger,
		pending: map[string]chan *Message{},
		done:    make(chan struct{}),
	}
	var tlsConf *tls.Config
	if o.InsecureTLS {
		tlsConf = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test servers only, documented
	}
	switch u.Scheme {
	case "ws", "wss":
		c.tr, err = dialWS(ctx, u, tlsConf)
		if err != nil {
			return nil, err
		}
	case "http", "https":
		c.tr = newHTTPTransport(u, tlsConf, c)
	default:
		return nil, fmt.Errorf("%w: URL scheme %q (want ws, wss, http or https)", ErrConnect, u.Scheme)
	}
	if ws, ok := c.tr.(*wsTransport); ok {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.end(ws.run(c.deliver))
		}()
	}
	m, err := c.call(ctx, map[string]any{"janus": "create"}, true)
	if err != nil {
		c.shutdown()
		return nil, err
	}
	if m.Data == nil || m.Data.ID == 0 {
		c.shutdown()
		return nil, fmt.Errorf("%w: create: no session id in the answer", ErrConnect)
	}
	c.Session = m.Data.ID
	if h, ok := c.tr.(*httpTransport); ok {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.end(h.run(c.deliver))
		}()
	}
	c.wg.Add(1)
	go c.keepalive()
	return c, nil
}

// Done is closed when the connection or session ended (Close, a transport
// failure, the session timing out); Err says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the client runs; then the reason it ended (ErrClosed
// after Close).
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// end records why the client stopped, once, and fails pending requests.
func (c *Client) end(err error) {
	c.endOnce.Do(func() {
		if err == nil {
			err = fmt.Errorf("%w: connection closed", ErrConnect)
		}
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
		c.tr.close()
	})
}

func (c *Client) shutdown() {
	c.end(ErrClosed)
	c.wg.Wait()
}

// Close destroys the session (best effort, 2 s) and closes the connection.
// Idempotent; waits for the client's goroutines.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		select {
		case <-c.done:
		default:
			if c.Session != 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, _ = c.call(ctx, map[string]any{"janus": "destroy", "session_id": c.Session}, true)
				cancel()
			}
		}
		c.end(ErrClosed)
	})
	c.wg.Wait()
	return nil
}

func (c *Client) keepalive() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.call(ctx, map[string]any{"janus": "keepalive", "session_id": c.Session}, true)
			cancel()
			if err != nil {
				c.log.Debug().Err(err).Msg("keepalive failed")
			}
		}
	}
}

// Attach attaches the session to a plugin ("janus.plugin.videoroom") and
// returns the handle ID.
func (c *Client) Attach(ctx context.Context, plugin string) (uint64, error) {
	return c.AttachOpaque(ctx, plugin, "")
}

// AttachOpaque attaches like Attach, tagging the handle with an opaque ID
// (Janus's "opaque_id": shown to its admin API and event handlers, so an
// operator can tell which client a handle is); "" sends none.
func (c *Client) AttachOpaque(ctx context.Context, plugin, opaqueID string) (uint64, error) {
	msg := map[string]any{"janus": "attach", "plugin": plugin, "session_id": c.Session}
	if opaqueID != "" {
		msg["opaque_id"] = opaqueID
	}
	m, err := c.call(ctx, msg, true)
	if err != nil {
		return 0, err
	}
	if m.Data == nil || m.Data.ID == 0 {
		return 0, fmt.Errorf("%w: attach: no handle id in the answer", ErrConnect)
	}
	return m.Data.ID, nil
}

// Detach detaches a handle (its PeerConnection is hung up).
func (c *Client) Detach(ctx context.Context, handle uint64) error {
	_, err := c.call(ctx, map[string]any{"janus": "detach", "session_id": c.Session, "handle_id": handle}, true)
	return err
}

// Request sends a plugin message and returns its answer: the synchronous
// "success" or, after the "ack", the asynchronous "event" of the same
// transaction. A plugin error in the answer is returned as an *Error.
func (c *Client) Request(ctx context.Context, handle uint64, body any, jsep *JSEP) (*Message, error) {
	msg := map[string]any{"janus": "message", "session_id": c.Session, "handle_id": handle, "body": body}
	if jsep != nil {
		msg["jsep"] = jsep
	}
	m, err := c.call(ctx, msg, false)
	if err != nil {
		return nil, err
	}
	if perr := pluginError(m.PluginData); perr != nil {
		return m, perr
	}
	return m, nil
}

// Trickle sends one ICE candidate (nil: end of candidates) for a handle.
func (c *Client) Trickle(ctx context.Context, handle uint64, candidate any) error {
	msg := map[string]any{"janus": "trickle", "session_id": c.Session, "handle_id": handle}
	if candidate == nil {
		msg["candidate"] = map[string]any{"completed": true}
	} else {
		msg["candidate"] = candidate
	}
	_, err := c.call(ctx, msg, true)
	return err
}

// call sends msg with a new transaction and waits for its answer; with
// ackFinal an "ack" is the answer, otherwise the next message of the
// transaction is.
func (c *Client) call(ctx context.Context, msg map[string]any, ackFinal bool) (*Message, error) {
	tx := newTransaction()
	msg["transaction"] = tx
	if c.opts.APISecret != "" {
		msg["apisecret"] = c.opts.APISecret
	}
	if c.opts.Token != "" {
		msg["token"] = c.opts.Token
	}
	ch := make(chan *Message, 2)
	c.mu.Lock()
	c.pending[tx] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, tx)
		c.mu.Unlock()
	}()
	select {
	case <-c.done:
		return nil, c.Err()
	default:
	}
	if err := c.tr.send(ctx, msg); err != nil {
		return nil, err
	}
	for {
		select {
		case m := <-ch:
			switch {
			case m.Janus == "error":
				if m.Error == nil {
					return m, &Error{Code: 0, Reason: "error without details"}
				}
				return m, m.Error
			case m.Janus == "ack" && !ackFinal:
				continue
			}
			return m, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no answer to %q: %v", ErrConnect, msg["janus"], ctx.Err())
		case <-c.done:
			return nil, c.Err()
		}
	}
}

// deliver routes one received JSON text (an object, or an array of them
// from an HTTP long poll) to the waiting request or to OnEvent.
func (c *Client) deliver(b []byte) {
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) > 0 && b[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(b, &list); err != nil {
			c.log.Debug().Err(err).Msg("undecodable message list")
			return
		}
		for _, one := range list {
			c.deliver(one)
		}
		return
	}
	m := new(Message)
	if err := json.Unmarshal(b, m); err != nil {
		c.log.Debug().Err(err).Msg("undecodable message")
		return
	}
	if m.Janus == "keepalive" { // HTTP long poll: nothing happened
		return
	}
	if m.Janus == "timeout" && m.SessionID == c.Session {
		c.end(fmt.Errorf("%w: session %d timed out on the server", ErrConnect, c.Session))
		return
	}
	if m.Janus == "error" && m.Transaction == "" && m.Error != nil && m.Error.Code == CodeSessionNotFound {
		// An HTTP long poll after the server lost the session (restart).
		c.end(fmt.Errorf("%w: the server no longer knows session %d", ErrConnect, c.Session))
		return
	}
	if m.Transaction != "" {
		c.mu.Lock()
		ch := c.pending[m.Transaction]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default:
			}
			return
		}
	}
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(m)
	}
}

func newTransaction() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Redact returns a URL fit for logs and errors: no user info, and the
// values of query parameters that may carry secrets (pin, apisecret,
// token, secret) replaced.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	q := u.Query()
	changed := false
	for k := range q {
		switch strings.ToLower(k) {
		case "pin", "apisecret", "token", "secret", "api_secret":
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// netError turns a transport error into an ErrConnect without the request
// URL (an HTTP long poll carries the API secret and token in its query).
func netError(what string, u *url.URL, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%w: %s %s: %v", ErrConnect, what, Redact(u.String()), err)
}

// httpStatusError reports a non-2xx HTTP answer.
func httpStatusError(u *url.URL, resp *http.Response) error {
	return fmt.Errorf("%w: %s answered HTTP %s", ErrConnect, Redact(u.String()), resp.Status)
}
