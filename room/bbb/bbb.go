// Package bbb joins a running BigBlueButton 3 meeting through its LiveKit
// media bridge: the BBB API's getMeetingInfo (signed with the server's
// shared secret) turns the meeting id people know into BBB's internal
// meeting id, which is the LiveKit room's name; roomcast then joins that
// LiveKit room as a hidden participant with a token minted from the BBB
// server's LiveKit API key and secret.
//
// Room URL: bbb+https://bbb.example.org/<meetingID>, optionally
// bbb+https://bbb.example.org/<prefix>/<meetingID> for an API under a
// prefix, with query parameters
//
//	livekit=wss://…   the LiveKit server (default wss://<host>/livekit)
//	checksum=sha1     the checksum algorithm (default sha256; sha1 for old servers)
//
// Credentials: Secret is BBB's shared secret; APIKey/APISecret are
// LiveKit's (from the BBB server's LiveKit configuration).
package bbb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/bbb/api"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit"
)

// Target is what a bbb+http(s) room URL names.
type Target struct {
	API       string // https://host/bigbluebutton/api
	MeetingID string
	LiveKit   string // wss://host/livekit
	Checksum  string
}

// ParseURL splits a bbb+https://host/<meetingID> room URL.
func ParseURL(roomURL string) (Target, error) {
	var t Target
	u, err := url.Parse(roomURL)
	if err != nil || u.Host == "" {
		return t, fmt.Errorf("%w: room URL is not a bbb+https://host/<meetingID> URL", room.ErrConfig)
	}
	scheme := strings.TrimPrefix(strings.ToLower(u.Scheme), "bbb+")
	if scheme != "http" && scheme != "https" {
		return t, fmt.Errorf("%w: room URL scheme %q (want bbb+https or bbb+http)", room.ErrConfig, u.Scheme)
	}
	path := strings.Trim(u.Path, "/")
	i := strings.LastIndex(path, "/")
	prefix, id := "", path
	if i >= 0 {
		prefix, id = path[:i], path[i+1:]
	}
	if id == "" {
		return t, fmt.Errorf("%w: room URL names no meeting (bbb+https://host/<meetingID>)", room.ErrConfig)
	}
	t.MeetingID = id
	base := scheme + "://" + u.Host
	if prefix != "" {
		base += "/" + prefix
	}
	if !strings.HasSuffix(base, "/bigbluebutton/api") {
		base += "/bigbluebutton/api"
	}
	t.API = base
	q := u.Query()
	t.LiveKit = q.Get("livekit")
	if t.LiveKit == "" {
		ws := "wss"
		if scheme == "http" {
			ws = "ws"
		}
		t.LiveKit = ws + "://" + u.Host + "/livekit"
	}
	t.Checksum = q.Get("checksum")
	return t, nil
}

// Open builds the room; nothing is contacted before Start.
func Open(cfg room.Config) (room.Room, error) {
	t, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials.Secret == "" {
		return nil, fmt.Errorf("%w: BigBlueButton needs the server's shared secret ($BBB_SECRET or --bbb-secret-file)", room.ErrConfig)
	}
	if cfg.Credentials.APIKey == "" || cfg.Credentials.APISecret == "" {
		return nil, fmt.Errorf("%w: BigBlueButton 3 needs its LiveKit API key and secret ($LIVEKIT_API_KEY, $LIVEKIT_API_SECRET)", room.ErrConfig)
	}
	if cfg.Handler == nil {
		return nil, fmt.Errorf("%w: no handler", room.ErrConfig)
	}
	return &Room{cfg: cfg, target: t, created: time.Now(), done: make(chan struct{}),
		client: &api.Client{Base: t.API, Secret: cfg.Credentials.Secret, Checksum: t.Checksum}}, nil
}

// Room is a BBB meeting joined through its LiveKit room.
type Room struct {
	cfg     room.Config
	target  Target
	client  *api.Client
	created time.Time

	mu       sync.Mutex
	inner    room.Room
	offset   time.Duration // inner clock zero on ours
	started  bool
	closed   bool
	done     chan struct{}
	doneOnce sync.Once
	err      error
	// Internal is the internal meeting id (the LiveKit room), after Start.
	internal string
}

// Internal returns BBB's internal meeting id once Start resolved it.
func (r *Room) Internal() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.internal
}

// Start resolves the meeting through the BBB API, then joins its LiveKit room.
func (r *Room) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return room.ErrClosed
	}
	if r.started {
		r.mu.Unlock()
		return fmt.Errorf("%w: Start called twice", room.ErrConfig)
	}
	r.started = true
	r.mu.Unlock()
	log := r.cfg.Logger.With().Str("component", "bbb").Str("meeting", r.target.MeetingID).Logger()
	mi, err := r.client.GetMeetingInfo(ctx, r.target.MeetingID)
	if err != nil {
		err = apiError(err)
		r.finish(err)
		return err
	}
	log.Info().Str("internal_meeting_id", mi.InternalMeetingID).Int("participants", mi.ParticipantCount).Msg("meeting found")
	names := map[string]string{}
	for _, a := range mi.Attendees {
		names[a.UserID] = a.FullName
	}
	inner, err := livekit.Open(room.Config{
		URL:         strings.TrimSuffix(r.target.LiveKit, "/") + "/" + mi.InternalMeetingID,
		Credentials: room.Credentials{APIKey: r.cfg.Credentials.APIKey, APISecret: r.cfg.Credentials.APISecret},
		Identity:    r.cfg.Identity, Name: r.cfg.Name, ConnectTimeout: r.cfg.ConnectTimeout,
		Handler: &handler{h: r.cfg.Handler, names: names, r: r}, Logger: r.cfg.Logger,
	})
	if err != nil {
		r.finish(err)
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		inner.Close()
		return room.ErrClosed
	}
	r.inner, r.internal = inner, mi.InternalMeetingID
	r.offset = time.Since(r.created)
	r.mu.Unlock()
	if err := inner.Start(ctx); err != nil {
		r.finish(err)
		return err
	}
	go func() {
		<-inner.Done()
		r.finish(inner.Err())
	}()
	return nil
}

func apiError(err error) error {
	switch {
	case errors.Is(err, api.ErrChecksum):
		return fmt.Errorf("%w: %v", room.ErrUnauthorized, err)
	case errors.Is(err, api.ErrNotFound):
		return fmt.Errorf("%w: %v", room.ErrNotFound, err)
	case errors.Is(err, api.ErrConfig):
		return fmt.Errorf("%w: %v", room.ErrConfig, err)
	}
	return fmt.Errorf("%w: %v", room.ErrUnreachable, err)
}

func (r *Room) finish(err error) {
	r.doneOnce.Do(func() {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(r.done)
	})
}

// Close leaves the LiveKit room. Idempotent.
func (r *Room) Close() error {
	r.mu.Lock()
	r.closed = true
	inner := r.inner
	r.mu.Unlock()
	var err error
	if inner != nil {
		err = inner.Close()
	}
	r.finish(nil)
	return err
}

// Now is the media clock: zero when Open returned.
func (r *Room) Now() time.Duration { return time.Since(r.created) }

// Done is closed when the room ended.
func (r *Room) Done() <-chan struct{} { return r.done }

// Err says why the room ended (nil after Close).
func (r *Room) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	return r.err
}

// Identity is roomcast's identity in the LiveKit room.
func (r *Room) Identity() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inner == nil {
		return ""
	}
	return r.inner.Identity()
}

func (r *Room) shift() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offset
}

// Announce announces through the meeting's LiveKit room (room.Announcer).
func (r *Room) Announce(ctx context.Context, a room.Announcement) error {
	r.mu.Lock()
	inner := r.inner
	r.mu.Unlock()
	if an, ok := inner.(room.Announcer); ok {
		return an.Announce(ctx, a)
	}
	return fmt.Errorf("%w: not joined", room.ErrClosed)
}

// handler puts the LiveKit room's events on this room's clock and fills in
// display names from the BBB attendee list where LiveKit has none.
type handler struct {
	h     room.Handler
	names map[string]string
	r     *Room
}

// name finds the attendee behind a LiveKit identity: BBB names its media
// participants after the user id (possibly with a suffix).
func (h *handler) name(p room.Participant) room.Participant {
	if p.Name != "" && p.Name != p.ID {
		return p
	}
	for id, n := range h.names {
		if p.ID == id || strings.HasPrefix(p.ID, id+"_") || strings.HasPrefix(p.ID, id+"-") {
			p.Name = n
			break
		}
	}
	return p
}

// WantTracks passes the consent filter's choice on to the LiveKit room.
func (h *handler) WantTracks(p room.Participant) bool {
	if f, ok := h.h.(room.SubscriptionFilter); ok {
		return f.WantTracks(h.name(p))
	}
	return true
}

func (h *handler) ParticipantJoined(p room.Participant)  { h.h.ParticipantJoined(h.name(p)) }
func (h *handler) ParticipantUpdated(p room.Participant) { h.h.ParticipantUpdated(h.name(p)) }
func (h *handler) ParticipantLeft(id string)             { h.h.ParticipantLeft(id) }
func (h *handler) TrackMuted(sid string, muted bool)     { h.h.TrackMuted(sid, muted) }
func (h *handler) ActiveSpeakers(ids []string)           { h.h.ActiveSpeakers(ids) }
func (h *handler) RoomClosed(reason error)               { h.h.RoomClosed(reason) }
func (h *handler) Session(e room.SessionEvent) {
	e.At += h.r.shift()
	h.h.Session(e)
}

func (h *handler) TrackAdded(t *room.Track) room.TrackSink {
	t.ParticipantName = h.name(room.Participant{ID: t.ParticipantID, Name: t.ParticipantName}).Name
	s := h.h.TrackAdded(t)
	if s == nil {
		return nil
	}
	return &shiftSink{s: s, off: h.r.shift()}
}

type shiftSink struct {
	s   room.TrackSink
	off time.Duration
}

func (s *shiftSink) WriteFrame(f room.Frame) {
	f.PTS += s.off
	s.s.WriteFrame(f)
}

func (s *shiftSink) Close() { s.s.Close() }
