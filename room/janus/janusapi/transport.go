package janusapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsTransport is Janus's WebSocket transport (subprotocol janus-protocol):
// requests and events share one connection.
type wsTransport struct {
	u       *url.URL
	conn    *websocket.Conn
	writeMu sync.Mutex
	once    sync.Once
}

func dialWS(ctx context.Context, u *url.URL, tlsConf *tls.Config) (*wsTransport, error) {
	d := websocket.Dialer{
		Subprotocols:     []string{"janus-protocol"},
		HandshakeTimeout: 10 * time.Second,
		TLSClientConfig:  tlsConf,
	}
	conn, resp, err := d.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w: %s answered HTTP %s", ErrConnect, Redact(u.String()), resp.Status)
		}
		return nil, netError("dial", u, err)
	}
	// Plugin events with SDPs are a few kB; nothing legitimate is near this.
	conn.SetReadLimit(4 << 20)
	return &wsTransport{u: u, conn: conn}, nil
}

func (w *wsTransport) send(ctx context.Context, msg map[string]any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("janus: encode request: %v", err)
	}
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Second)
	}
	_ = w.conn.SetWriteDeadline(dl)
	if err := w.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return netError("write", w.u, err)
	}
	return nil
}

func (w *wsTransport) run(deliver func([]byte)) error {
	for {
		_, b, err := w.conn.ReadMessage()
		if err != nil {
			return netError("read", w.u, err)
		}
		deliver(b)
	}
}

func (w *wsTransport) close() { w.once.Do(func() { _ = w.conn.Close() }) }

// httpTransport is Janus's REST transport: each request is a POST to the
// base path, the session's or the handle's path, answered synchronously
// (success, ack, error); events come from a long poll (GET on the session
// path) that also keeps the session alive.
type httpTransport struct {
	base   *url.URL
	client *http.Client
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
}

func newHTTPTransport(u *url.URL, tlsConf *tls.Config, c *Client) *httpTransport {
	ctx, cancel := context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	base := *u
	base.RawQuery = ""
	if base.Path == "" || base.Path == "/" {
		base.Path = "/janus"
	}
	return &httpTransport{base: &base, client: &http.Client{Transport: tr}, c: c, ctx: ctx, cancel: cancel}
}

func (h *httpTransport) path(ids ...uint64) *url.URL {
	u := *h.base
	for _, id := range ids {
		if id != 0 {
			u.Path += "/" + strconv.FormatUint(id, 10)
		}
	}
	return &u
}

func (h *httpTransport) send(ctx context.Context, msg map[string]any) error {
	sid, _ := msg["session_id"].(uint64)
	hid, _ := msg["handle_id"].(uint64)
	u := h.path(sid, hid)
	b, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("janus: encode request: %v", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return netError("request", u, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return netError("POST", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return netError("POST", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return httpStatusError(u, resp)
	}
	h.c.deliver(body)
	return nil
}

// run long-polls the session until close or a failure. The API secret and
// token go in the query string (a GET has no body); errors never show it.
func (h *httpTransport) run(deliver func([]byte)) error {
	u := h.path(h.c.Session)
	q := url.Values{}
	q.Set("maxev", "10")
	if h.c.opts.APISecret != "" {
		q.Set("apisecret", h.c.opts.APISecret)
	}
	if h.c.opts.Token != "" {
		q.Set("token", h.c.opts.Token)
	}
	for {
		q.Set("rid", strconv.FormatInt(time.Now().UnixMilli(), 10))
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return netError("long poll", u, err)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			if h.ctx.Err() != nil {
				return ErrClosed
			}
			return netError("long poll", u, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			if h.ctx.Err() != nil {
				return ErrClosed
			}
			return netError("long poll", u, err)
		}
		if resp.StatusCode/100 != 2 {
			return httpStatusError(u, resp)
		}
		deliver(body)
		select {
		case <-h.c.done:
			return ErrClosed
		default:
		}
	}
}

func (h *httpTransport) close() {
	h.cancel()
	h.client.CloseIdleConnections()
}
