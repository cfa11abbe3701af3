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
// stream whose description text (attribute fields aside, or, without a
// description, whose publisher's display name) mentions "screen" as a
// screen share — what janus.js apps set when they publish a screen
// ("Screen", "screenshare", "alice (screen)").
func isScreen(desc, display string) bool {
	if desc != "" {
		text, _ := parseDescription(desc)
		return strings.Contains(strings.ToLower(text), "screen")
	}
	return strings.Contains(strings.ToLower(display), "(screen)")
}

// parseDescription splits a stream description by roomcast's convention
// for participant attributes in Janus, which has none: the description is
// a list of fields separated by ";", a field "key=value" (key without
// spaces) is an attribute, the other fields are the description's text.
// "camera; roomcast.consent=no" is the text "camera" and the attribute
// roomcast.consent = "no".
func parseDescription(desc string) (text string, attrs map[string]string) {
	var texts []string
	for _, f := range strings.Split(desc, ";") {
		f = strings.TrimSpace(f)
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if ok && k != "" && !strings.ContainsAny(k, " \t") {
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs[k] = v
			continue
		}
		if f != "" {
			texts = append(texts, f)
		}
	}
	return strings.Join(texts, "; "), attrs
}

// streamAttributes are a publisher's attributes: the key=value fields of
// all its streams' descriptions, in the order Janus lists the streams (a
// key set in several streams takes the last stream's value; applications
// should set the same pairs on every stream).
func streamAttributes(streams []streamInfo) map[string]string {
	var attrs map[string]string
	for _, st := range streams {
		_, a := parseDescription(st.Description)
		for k, v := range a {
			if attrs == nil {
				attrs = map[string]string{}
			}
			attrs[k] = v
		}
	}
	return attrs
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
