package serve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Webhook is one receiver of events.
type Webhook struct {
	URL    string
	Secret string // HMAC-SHA256 key; never logged
}

// Webhook events.
const (
	EventStarted         = "broadcast.started"
	EventStopped         = "broadcast.stopped"
	EventFailed          = "broadcast.failed"
	EventRecordingReady  = "recording.ready"
	EventDestinationDown = "destination.down"
)

// SignWebhook is the signature a receiver checks: hex HMAC-SHA256 of
// "<timestamp>.<body>" under the webhook's secret, sent as
// X-Roomcast-Signature: sha256=<hex> with X-Roomcast-Timestamp.
func SignWebhook(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// webhooks delivers events, each receiver in its own goroutine per event,
// retrying with exponential backoff.
type webhooks struct {
	hooks    []Webhook
	client   *http.Client
	log      zerolog.Logger
	st       *store
	now      func() time.Time
	attempts int
	backoff  time.Duration
	ctx      context.Context
	wg       sync.WaitGroup
}

func (w *webhooks) send(event string, data any) {
	if len(w.hooks) == 0 {
		return
	}
	body, _ := json.Marshal(map[string]any{"event": event, "time": w.now().UTC().Format(time.RFC3339), "data": data})
	for _, h := range w.hooks {
		w.wg.Add(1)
		go w.deliver(h, event, body)
	}
}

func (w *webhooks) deliver(h Webhook, event string, body []byte) {
	defer w.wg.Done()
	delay := w.backoff
	for attempt := 1; attempt <= w.attempts; attempt++ {
		ts := strconv.FormatInt(w.now().Unix(), 10)
		status, err := w.post(h, ts, body)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		w.st.logDelivery(event, h.URL, attempt, status, msg, w.now())
		l := w.log.Info()
		if err != nil {
			l = w.log.Warn().Str("error", msg)
		}
		l.Str("event", event).Str("url", h.URL).Int("attempt", attempt).Int("status", status).Msg("webhook delivery")
		if err == nil {
			return
		}
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay *= 2
	}
}

func (w *webhooks) post(h Webhook, ts string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Roomcast-Timestamp", ts)
	req.Header.Set("X-Roomcast-Signature", SignWebhook(h.Secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

func (w *webhooks) wait() { w.wg.Wait() }
