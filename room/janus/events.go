package janus

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
)

// publisherInfo is a VideoRoom publisher as listed in "joined" and
// "publishers" events.
type publisherInfo struct {
	ID      anyID        `json:"id"`
	Display string       `json:"display"`
	Streams []streamInfo `json:"streams"`
	Talking *bool        `json:"talking"`
	Dummy   bool         `json:"dummy"`
}

// streamInfo is one media stream of a publisher (publisher side: Mid) or
// of the subscription (subscriber side: Mid is the subscription's m-line,
// FeedMid the publisher's).
type streamInfo struct {
	Type        string `json:"type"`
	Mid         string `json:"mid"`
	Codec       string `json:"codec"`
	Description string `json:"description"`
	Disabled    bool   `json:"disabled"`
	Active      *bool  `json:"active"`
	FeedID      anyID  `json:"feed_id"`
	FeedMid     string `json:"feed_mid"`
	FeedDisplay string `json:"feed_display"`
	FeedDesc    string `json:"feed_description"`
}

// videoroomData is the plugin data of VideoRoom answers and events; which
// fields are set depends on Videoroom ("joined", "event", "attached",
// "updated", "talking", "stopped-talking", "destroyed", …).
type videoroomData struct {
	Videoroom   string          `json:"videoroom"`
	ID          anyID           `json:"id"`
	Publishers  []publisherInfo `json:"publishers"`
	Unpublished json.RawMessage `json:"unpublished"`
	Leaving     json.RawMessage `json:"leaving"`
	Kicked      json.RawMessage `json:"kicked"`
	Streams     []streamInfo    `json:"streams"`
	ErrorCode   int             `json:"error_code"`
	Error       string          `json:"error"`
	Configured  string          `json:"configured"`
}

// feedIDOf reads the number-or-string ID of "unpublished"/"leaving"
// ("ok" when it is roomcast itself).
func feedIDOf(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	s := strings.Trim(string(raw), `"`)
	if s == "ok" {
		return ""
	}
	return s
}

// isScreen tells a screen share from a camera by the stream's
// description: Janus has no source notion, so roomcast treats a video
// stream whose description (or, without one, whose publisher's display
// name) mentions "screen" as a screen share — what janus.js apps set when
// they publish a screen ("Screen", "screenshare", "alice (screen)").
func isScreen(desc, display string) bool {
	if desc != "" {
		return strings.Contains(strings.ToLower(desc), "screen")
	}
	return strings.Contains(strings.ToLower(display), "(screen)")
}

// eventQueue is an unbounded FIFO of closures: network callbacks push
// without ever blocking; the event goroutine takes them.
type eventQueue struct {
	mu   sync.Mutex
	fns  []func()
	wake chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{wake: make(chan struct{}, 1)} }

func (q *eventQueue) push(fn func()) {
	q.mu.Lock()
	q.fns = append(q.fns, fn)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) take() []func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	fns := q.fns
	q.fns = nil
	return fns
}

// anyID is a Janus ID sent as a JSON number or (string_ids) a string.
type anyID string

func (a *anyID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*a = ""
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	*a = anyID(s)
	return nil
}

// wire is the ID as Janus wants it back: a number when it is one.
func (a anyID) wire() any {
	if n, err := strconv.ParseUint(string(a), 10, 64); err == nil {
		return n
	}
	return string(a)
}
