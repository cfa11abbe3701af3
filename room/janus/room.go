package janus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/janus/janusapi"
	"github.com/roomcast/roomcast/room/rtprecv"
)

const plugin = "janus.plugin.videoroom"

// opaqueID tags roomcast's handles for the Janus operator (admin API,
// event handlers): these PeerConnections are the recorder's.
const opaqueID = "roomcast"

// Room is roomcast's participant in one Janus VideoRoom. Create it with New
// (or Open), join with Start, leave with Close. It implements room.Room.
type Room struct {
	cfg   Config
	log   zerolog.Logger
	clock rtprecv.Clock
	api   *webrtc.API
	// loopAPI gathers on loopback only, for a Janus that offers only
	// loopback candidates (made when first needed, on the event goroutine).
	loopAPI *webrtc.API
	// feedback counts the NACKs pion's generator sends, per track.
	feedback *rtprecv.Feedback

	q        *eventQueue
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	loopDone chan struct{}
	done     chan struct{}
	endOnce  sync.Once
	wg       sync.WaitGroup // event loop, track workers, RTCP readers

	errMu                        sync.Mutex
	err                          error
	started, closed, loopRunning bool
	identity                     string

	genMu sync.Mutex
	gen   int

	// Owned by the event goroutine (and by Start before it runs).
	conn         *conn
	participants map[string]*participant
	tracks       map[string]*track // by SID
	partClocks   map[string]*rtprecv.ParticipantClock
	talking      []string // feed IDs, most recent first
	lastSpeakers []string
	firstSpeaker bool
	empty        bool
	reconnecting bool
}

// conn is one connection to Janus: a session with a publisher-type handle
// (roomcast's presence in the room, which brings the room's events) and,
// once there is someone to watch, a subscriber handle with one
// multistream PeerConnection.
type conn struct {
	gen       int
	client    *janusapi.Client
	pubHandle uint64
	myID      string
	privateID uint64
	subHandle uint64
	pc        *webrtc.PeerConnection
	// subscribed: feeds in the subscription; mids: the subscription's
	// active m-lines.
	subscribed map[string]bool
	mids       map[string]streamInfo
	retry      *time.Timer
}

type participant struct {
	id, name string
	streams  []streamInfo
	// attrs are read from the streams' descriptions (parseDescription).
	attrs map[string]string
}

func (p *participant) info() room.Participant {
	return room.Participant{ID: p.id, Name: p.name, Attributes: maps.Clone(p.attrs)}
}

type track struct {
	t   *room.Track
	w   *rtprecv.Worker
	src *timedSource
	mid string
	gen int
}

// New checks cfg and fills in its defaults. Nothing connects before Start.
func New(cfg Config) (*Room, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if u, err := url.Parse(cfg.Server); err == nil {
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			// A Janus on this machine: keep media on loopback too.
			cfg.LoopbackOnly = true
		}
	}
	log := cfg.Logger.With().Str("component", "janus").Logger()
	fb := rtprecv.NewFeedback()
	api, err := newAPI(cfg.LoopbackOnly, cfg.ICEFilter, fb, log)
	if err != nil {
		return nil, fmt.Errorf("janus: WebRTC set-up: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Room{
		cfg:          cfg,
		log:          log,
		clock:        rtprecv.NewClock(time.Now()),
		api:          api,
		feedback:     fb,
		q:            newEventQueue(),
		ctx:          ctx,
		cancel:       cancel,
		loopDone:     make(chan struct{}),
		done:         make(chan struct{}),
		participants: map[string]*participant{},
		tracks:       map[string]*track{},
		partClocks:   map[string]*rtprecv.ParticipantClock{},
		empty:        true,
	}, nil
}

func newAPI(loopback bool, filter func(net.IP) bool, fb *rtprecv.Feedback, log zerolog.Logger) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	// Before the NACK generator, whose NACKs it counts.
	ir.Add(fb)
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: pionLogs{log}}
	se.SetIncludeLoopbackCandidate(true)
	if loopback {
		// A Janus on this machine offers its own host addresses: IPv4 host
		// candidates reach them without leaving the machine.
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if filter != nil {
		se.SetIPFilter(filter)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// Now is the current time on the room media clock (zero at New).
func (r *Room) Now() time.Duration { return r.clock.Since(time.Now()) }

// Identity is roomcast's participant ID in the room (after Start).
func (r *Room) Identity() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.identity
}

// Done is closed when the room has ended.
func (r *Room) Done() <-chan struct{} { return r.done }

// Err is nil while the room runs and after Close; otherwise why it ended.
func (r *Room) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Start joins the room within Config.ConnectTimeout. Errors wrap
// room.ErrUnreachable, room.ErrUnauthorized (ErrAuth, ErrWrongPIN) or
// room.ErrNotFound (ErrNoSuchRoom).
func (r *Room) Start(ctx context.Context) error {
	r.errMu.Lock()
	if r.started {
		closed := r.closed
		r.errMu.Unlock()
		if closed {
			return room.ErrClosed
		}
		return fmt.Errorf("%w: janus: Start called twice", room.ErrConfig)
	}
	r.started = true
	r.errMu.Unlock()

	jctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	start := time.Now()
	c, pubs, err := r.connect(jctx)
	if r.ctx.Err() != nil {
		if c != nil {
			_ = c.client.Close()
		}
		r.endOnce.Do(func() { close(r.done) })
		return room.ErrClosed
	}
	if err != nil {
		r.endOnce.Do(func() { close(r.done) })
		err = r.classify(err, jctx)
		r.log.Warn().Err(err).Str("server", janusapi.Redact(r.cfg.Server)).Str("room", r.cfg.Room).Msg("join failed")
		return err
	}
	r.errMu.Lock()
	if r.closed {
		r.errMu.Unlock()
		_ = c.client.Close()
		r.endOnce.Do(func() { close(r.done) })
		return room.ErrClosed
	}
	r.loopRunning = true
	r.identity = c.myID
	r.errMu.Unlock()
	r.conn = c
	r.log.Info().Str("server", janusapi.Redact(r.cfg.Server)).Str("room", r.cfg.Room).Str("id", c.myID).
		Int("publishers", len(pubs)).Dur("join_time", time.Since(start)).Msg("joined")
	r.q.push(func() { r.publishers(pubs) })
	r.wg.Add(1)
	go r.loop()
	return nil
}

// classify maps a join failure to the room sentinels. Janus's reasons
// carry no secret (the PIN and API secret are never echoed).
func (r *Room) classify(err error, ctx context.Context) error {
	var jerr *janusapi.Error
	if errors.As(err, &jerr) {
		switch {
		case jerr.Plugin && jerr.Code == 426:
			return fmt.Errorf("%w: room %s on %s (%s)", ErrNoSuchRoom, r.cfg.Room, janusapi.Redact(r.cfg.Server), jerr.Reason)
		case jerr.Plugin && (jerr.Code == 433 || jerr.Code == 429 && strings.Contains(jerr.Reason, "pin")):
			// 433: wrong PIN; 429 "Missing mandatory element (pin)".
			return fmt.Errorf("%w: room %s (%s)", ErrWrongPIN, r.cfg.Room, jerr.Reason)
		case !jerr.Plugin && (jerr.Code == janusapi.CodeUnauthorized || jerr.Code == janusapi.CodeUnauthorizedPlugin):
			return fmt.Errorf("%w: %s (%s)", ErrAuth, janusapi.Redact(r.cfg.Server), jerr.Reason)
		}
		return fmt.Errorf("%w: janus refused to join room %s: %v", room.ErrUnreachable, r.cfg.Room, jerr)
	}
	if ctx.Err() != nil && !errors.Is(err, janusapi.ErrConnect) {
		return fmt.Errorf("%w: janus: no answer from %s within %v", room.ErrUnreachable, janusapi.Redact(r.cfg.Server), r.cfg.ConnectTimeout)
	}
	return fmt.Errorf("%w: %v", room.ErrUnreachable, err)
}

func (r *Room) nextGen() int {
	r.genMu.Lock()
	defer r.genMu.Unlock()
	r.gen++
	return r.gen
}

// connect opens a session, attaches the publisher-type handle and joins
// the room without publishing (so roomcast gets the room's events but no
// tile in anyone's UI), returning the publishers already there.
func (r *Room) connect(ctx context.Context) (*conn, []publisherInfo, error) {
	c := &conn{gen: r.nextGen(), subscribed: map[string]bool{}, mids: map[string]streamInfo{}}
	opts := r.cfg.apiOptions(func(m *janusapi.Message) {
		r.q.push(func() { r.onMessage(c, m) })
	}, r.log.With().Str("api", "janus").Logger())
	client, err := janusapi.Dial(ctx, r.cfg.Server, opts)
	if err != nil {
		return nil, nil, err
	}
	c.client = client
	fail := func(err error) (*conn, []publisherInfo, error) {
		_ = client.Close()
		return nil, nil, err
	}
	if c.pubHandle, err = client.AttachOpaque(ctx, plugin, opaqueID); err != nil {
		return fail(err)
	}
	join := map[string]any{"request": "join", "ptype": "publisher", "room": r.cfg.roomID(), "display": r.cfg.Name}
	if r.cfg.PIN != "" {
		join["pin"] = r.cfg.PIN
	}
	m, err := client.Request(ctx, c.pubHandle, join, nil)
	if err != nil {
		return fail(err)
	}
	var d struct {
		videoroomData
		PrivateID uint64 `json:"private_id"`
	}
	if m.PluginData == nil || json.Unmarshal(m.PluginData.Data, &d) != nil || d.Videoroom != "joined" {
		return fail(fmt.Errorf("%w: unexpected answer to join", janusapi.ErrConnect))
	}
	c.myID, c.privateID = string(d.ID), d.PrivateID
	return c, d.Publishers, nil
}

// Close leaves the room, stops every track (closing its sink) and waits
// for all goroutines. Idempotent; not from a Handler method.
func (r *Room) Close() error {
	r.errMu.Lock()
	r.closed, r.started = true, true
	running := r.loopRunning
	r.errMu.Unlock()
	r.cancel()
	if !running {
		r.endOnce.Do(func() { close(r.done) })
	}
	r.wg.Wait()
	return nil
}

// loop is the event goroutine: every Handler call, every signalling step
// after Start, reconnects.
func (r *Room) loop() {
	defer r.wg.Done()
	defer close(r.loopDone)
	for {
		var cdone <-chan struct{}
		if r.conn != nil {
			cdone = r.conn.client.Done()
		}
		select {
		case <-r.ctx.Done():
			r.finish(nil)
			return
		case <-cdone:
			if !r.reconnect() {
				return
			}
		case <-r.q.wake:
			for _, fn := range r.q.take() {
				if r.ctx.Err() != nil {
					break
				}
				fn()
				if r.ended() {
					return
				}
			}
		}
	}
}

func (r *Room) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// finish stops everything; reason non-nil means the server ended the room.
func (r *Room) finish(reason error) {
	r.teardown(r.conn)
	r.conn = nil
	r.endOnce.Do(func() {
		if reason != nil {
			r.errMu.Lock()
			r.err = reason
			r.errMu.Unlock()
			r.log.Warn().Err(reason).Msg("room ended")
			r.cfg.Handler.RoomClosed(reason)
		}
		close(r.done)
	})
}

// teardown halts every track and closes the connection's PeerConnection
// and session.
func (r *Room) teardown(c *conn) {
	for sid, t := range r.tracks {
		t.w.Halt()
		delete(r.tracks, sid)
	}
	if c == nil {
		return
	}
	if c.retry != nil {
		c.retry.Stop()
	}
	if c.pc != nil {
		_ = c.pc.Close()
	}
	_ = c.client.Close()
}

// reconnect gets back into the room after the connection or session was
// lost (server restart, network), retrying with backoff for
// Config.ReconnectFor. Publishers still there keep their participant;
// tracks are subscribed afresh. It returns false when the room ended.
func (r *Room) reconnect() bool {
	old := r.conn
	r.conn = nil
	r.log.Warn().Err(old.client.Err()).Msg("connection to janus lost, reconnecting")
	r.teardown(old)
	r.reconnecting = true
	r.cfg.Handler.Session(room.SessionEvent{Kind: room.EventReconnecting, At: r.Now()})
	deadline := time.Now().Add(r.cfg.ReconnectFor)
	backoff := 250 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ConnectTimeout)
		c, pubs, err := r.connect(ctx)
		cancel()
		if err == nil {
			r.conn = c
			r.errMu.Lock()
			r.identity = c.myID
			r.errMu.Unlock()
			r.reconnecting = false
			r.log.Info().Str("id", c.myID).Int("publishers", len(pubs)).Msg("reconnected")
			r.cfg.Handler.Session(room.SessionEvent{Kind: room.EventReconnected, At: r.Now()})
			present := map[string]bool{}
			for _, p := range pubs {
				present[string(p.ID)] = true
			}
			for _, id := range r.participantIDs() {
				if !present[id] {
					r.gone(id, "did not come back after the reconnect")
				}
			}
			r.publishers(pubs)
			r.checkEmpty()
			return true
		}
		if r.ctx.Err() != nil {
			r.finish(nil)
			return false
		}
		if time.Now().After(deadline) {
			r.finish(fmt.Errorf("%w: janus: no way back into room %s within %v: %v", room.ErrDisconnected, r.cfg.Room, r.cfg.ReconnectFor, r.classify(err, ctx)))
			return false
		}
		r.log.Debug().Err(err).Dur("backoff", backoff).Msg("reconnect failed")
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			r.finish(nil)
			return false
		}
		backoff = min(backoff*2, 4*time.Second)
	}
}

func (r *Room) participantIDs() []string {
	ids := make([]string, 0, len(r.participants))
	for id := range r.participants {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// onMessage handles an event of connection c (stale connections' events
// are dropped).
func (r *Room) onMessage(c *conn, m *janusapi.Message) {
	if c != r.conn {
		return
	}
	switch m.Janus {
	case "event":
	case "hangup":
		if m.Sender == c.subHandle && c.subHandle != 0 {
			r.log.Warn().Str("reason", m.Reason).Msg("subscription hung up, subscribing again")
			r.resetSubscription(c)
			r.syncSubscription()
		}
		return
	case "webrtcup":
		r.log.Debug().Uint64("handle", m.Sender).Msg("WebRTC up")
		return
	case "detached":
		if m.Sender == c.pubHandle {
			r.finish(fmt.Errorf("%w: janus detached roomcast from the room", room.ErrRoomClosed))
		}
		return
	default:
		return
	}
	if m.PluginData == nil {
		return
	}
	var d videoroomData
	if err := json.Unmarshal(m.PluginData.Data, &d); err != nil {
		r.log.Debug().Err(err).Msg("undecodable VideoRoom event")
		return
	}
	if m.Sender == c.subHandle && c.subHandle != 0 {
		if m.JSEP != nil && m.JSEP.Type == "offer" {
			r.answer(c, m.JSEP, d.Streams)
		}
		return
	}
	switch d.Videoroom {
	case "talking":
		r.talk(string(d.ID), true)
		return
	case "stopped-talking":
		r.talk(string(d.ID), false)
		return
	case "destroyed":
		r.finish(fmt.Errorf("%w: janus: room %s was destroyed", room.ErrRoomClosed, r.cfg.Room))
		return
	}
	if len(d.Publishers) > 0 {
		r.publishers(d.Publishers)
	}
	if id := feedIDOf(d.Unpublished); id != "" {
		r.gone(id, "unpublished")
	}
	if len(d.Leaving) > 0 {
		if id := feedIDOf(d.Leaving); id != "" {
			r.gone(id, "left")
		} else if string(d.Leaving) == `"ok"` {
			r.finish(fmt.Errorf("%w: janus removed roomcast from room %s", room.ErrRoomClosed, r.cfg.Room))
		}
	}
	if id := feedIDOf(d.Kicked); id != "" {
		if id == c.myID {
			r.finish(fmt.Errorf("%w: janus kicked roomcast from room %s", room.ErrRoomClosed, r.cfg.Room))
			return
		}
		r.gone(id, "kicked")
	}
}

// publishers records publishers listed by Janus (new ones, or updated
// streams) and adjusts the subscription.
func (r *Room) publishers(list []publisherInfo) {
	c := r.conn
	for _, p := range list {
		id := string(p.ID)
		if p.Dummy || id == "" || (c != nil && id == c.myID) {
			continue
		}
		name := p.Display
		if name == "" {
			name = id
		}
		attrs := streamAttributes(p.Streams)
		part := r.participants[id]
		if part == nil {
			part = &participant{id: id, name: name, streams: p.Streams, attrs: attrs}
			r.participants[id] = part
			r.log.Info().Str("participant", r.cfg.Pseudonyms.ID(id)).Msg("participant joined")
			r.log.Debug().Str("participant", r.cfg.Pseudonyms.ID(id)).Str("feed", id).Str("name", name).Interface("attributes", attrs).Msg("participant identity")
			r.cfg.Handler.ParticipantJoined(part.info())
			if r.empty {
				r.empty = false
				if r.firstSpeaker {
					r.cfg.Handler.Session(room.SessionEvent{Kind: room.EventRoomOccupied, At: r.Now()})
				}
			}
		} else if part.name != name || !maps.Equal(part.attrs, attrs) {
			// A new display name, or new attributes (a publisher's
			// SDP-less configure with new descriptions).
			part.name, part.attrs = name, attrs
			r.log.Debug().Str("participant", r.cfg.Pseudonyms.ID(id)).Str("name", name).Interface("attributes", attrs).Msg("participant updated")
			r.cfg.Handler.ParticipantUpdated(part.info())
		}
		part.streams = p.Streams
		if p.Talking != nil {
			r.talk(id, *p.Talking)
		}
	}
	r.syncSubscription()
}

// gone removes a participant (left, unpublished, kicked): a Janus
// participant without published streams has nothing roomcast can show.
func (r *Room) gone(id, why string) {
	if r.participants[id] == nil {
		return
	}
	for sid, t := range r.tracks {
		if t.t.ParticipantID == id {
			t.w.Halt()
			delete(r.tracks, sid)
		}
	}
	delete(r.participants, id)
	r.forgetClock(id)
	r.log.Info().Str("participant", r.cfg.Pseudonyms.ID(id)).Str("why", why).Msg("participant left")
	r.cfg.Handler.ParticipantLeft(id)
	r.talk(id, false)
	r.checkEmpty()
	r.syncSubscription()
}

func (r *Room) checkEmpty() {
	if len(r.participants) == 0 && !r.empty && !r.reconnecting {
		r.empty = true
		r.cfg.Handler.Session(room.SessionEvent{Kind: room.EventRoomEmpty, At: r.Now()})
	}
}

// talk follows talking/stopped-talking events (rooms with
// audiolevel_event): the active speakers are the talking publishers, the
// most recent first.
func (r *Room) talk(id string, on bool) {
	i := slices.Index(r.talking, id)
	if on && r.participants[id] != nil {
		if i >= 0 {
			r.talking = slices.Delete(r.talking, i, i+1)
		}
		r.talking = slices.Insert(r.talking, 0, id)
	} else if i >= 0 {
		r.talking = slices.Delete(r.talking, i, i+1)
	}
	if slices.Equal(r.talking, r.lastSpeakers) {
		return
	}
	r.lastSpeakers = slices.Clone(r.talking)
	r.cfg.Handler.ActiveSpeakers(slices.Clone(r.talking))
}

// wanted is the set of feeds with at least one enabled audio or video
// stream, less those the Handler declines (room.SubscriptionFilter: the
// consent filter), whose media is then never sent to roomcast.
func (r *Room) wanted() map[string]bool {
	want := map[string]bool{}
	filter, _ := r.cfg.Handler.(room.SubscriptionFilter)
	for id, p := range r.participants {
		if filter != nil && !filter.WantTracks(p.info()) {
			continue
		}
		for _, s := range p.streams {
			if (s.Type == "audio" || s.Type == "video") && !s.Disabled {
				want[id] = true
			}
		}
	}
	return want
}

// syncSubscription subscribes to new feeds and unsubscribes from gone ones
// (one "join" as subscriber, then "update" requests); Janus answers with
// an offer that answer() completes. A failure retries in a second.
func (r *Room) syncSubscription() {
	c := r.conn
	if c == nil {
		return
	}
	want := r.wanted()
	var add, rem []map[string]any
	for id := range want {
		if !c.subscribed[id] {
			add = append(add, map[string]any{"feed": anyID(id).wire()})
		}
	}
	for id := range c.subscribed {
		if !want[id] {
			rem = append(rem, map[string]any{"feed": anyID(id).wire()})
		}
	}
	if len(add) == 0 && len(rem) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ConnectTimeout)
	defer cancel()
	var m *janusapi.Message
	var err error
	if c.subHandle == 0 {
		if len(add) == 0 {
			c.subscribed = map[string]bool{}
			return
		}
		if c.subHandle, err = c.client.AttachOpaque(ctx, plugin, opaqueID); err == nil {
			join := map[string]any{"request": "join", "ptype": "subscriber", "room": r.cfg.roomID(), "streams": add}
			if r.cfg.PIN != "" {
				join["pin"] = r.cfg.PIN
			}
			if c.privateID != 0 {
				join["private_id"] = c.privateID
			}
			m, err = c.client.Request(ctx, c.subHandle, join, nil)
			if err != nil {
				_ = c.client.Detach(ctx, c.subHandle)
				c.subHandle = 0
			}
		}
	} else {
		body := map[string]any{"request": "update"}
		if len(add) > 0 {
			body["subscribe"] = add
		}
		if len(rem) > 0 {
			body["unsubscribe"] = rem
		}
		m, err = c.client.Request(ctx, c.subHandle, body, nil)
	}
	if err != nil {
		if r.ctx.Err() != nil {
			return
		}
		r.log.Warn().Err(err).Int("subscribe", len(add)).Int("unsubscribe", len(rem)).Msg("subscription update failed, retrying")
		r.retryLater(c)
		return
	}
	c.subscribed = want
	if m != nil && m.JSEP != nil && m.JSEP.Type == "offer" {
		var d videoroomData
		if m.PluginData != nil {
			_ = json.Unmarshal(m.PluginData.Data, &d)
		}
		r.answer(c, m.JSEP, d.Streams)
	}
}

func (r *Room) retryLater(c *conn) {
	if c.retry != nil {
		c.retry.Stop()
	}
	c.retry = time.AfterFunc(time.Second, func() {
		r.q.push(func() {
			if c == r.conn {
				r.syncSubscription()
			}
		})
	})
}

// resetSubscription drops the subscriber handle and its PeerConnection
// (after a hang-up): the next sync subscribes from scratch.
func (r *Room) resetSubscription(c *conn) {
	for sid, t := range r.tracks {
		t.w.Halt()
		delete(r.tracks, sid)
	}
	if c.pc != nil {
		_ = c.pc.Close()
		c.pc = nil
	}
	if c.subHandle != 0 {
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		_ = c.client.Detach(ctx, c.subHandle)
		cancel()
		c.subHandle = 0
	}
	c.subscribed = map[string]bool{}
	c.mids = map[string]streamInfo{}
}

// answer completes a (re)negotiation Janus offered for the subscription:
// the streams list says which feed each m-line carries now.
func (r *Room) answer(c *conn, offer *janusapi.JSEP, streams []streamInfo) {
	if c.pc == nil {
		api := r.api
		if r.cfg.ICEFilter == nil && loopbackOnly(offer.SDP) {
			// Janus offers nothing but loopback: nothing else of this
			// machine could reach it, so gather on loopback only.
			if r.loopAPI == nil {
				var err error
				if r.loopAPI, err = newAPI(false, func(ip net.IP) bool { return ip.IsLoopback() }, r.feedback, r.log); err != nil {
					r.log.Error().Err(err).Msg("cannot set up loopback-only WebRTC")
					return
				}
			}
			api = r.loopAPI
			r.log.Debug().Msg("janus offers loopback candidates only: gathering on loopback only")
		}
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			r.log.Error().Err(err).Msg("cannot create a PeerConnection")
			return
		}
		c.pc = pc
		pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
			r.q.push(func() { r.onTrack(c, pc, tr, rcv) })
		})
		pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
			r.log.Debug().Str("state", st.String()).Msg("subscription connection")
		})
	}
	mids := map[string]streamInfo{}
	for _, s := range streams {
		if (s.Type == "audio" || s.Type == "video") && (s.Active == nil || *s.Active) && s.FeedID != "" {
			mids[s.Mid] = s
		}
	}
	c.mids = mids
	// Tracks whose m-line went away or now carries another stream end.
	for sid, t := range r.tracks {
		if t.gen != c.gen {
			continue
		}
		s, ok := mids[t.mid]
		if !ok || string(s.FeedID)+"/"+s.FeedMid != sid {
			t.w.Halt()
			delete(r.tracks, sid)
			r.log.Info().Str("track", sid).Msg("track removed")
		}
	}
	fail := func(what string, err error) {
		r.log.Warn().Err(err).Msg("subscription " + what + " failed, subscribing again")
		r.resetSubscription(c)
		r.retryLater(c)
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		fail("offer", err)
		return
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err != nil {
		fail("answer", err)
		return
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(ans); err != nil {
		fail("answer", err)
		return
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
	case <-r.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.ConnectTimeout)
	defer cancel()
	local := c.pc.LocalDescription()
	if _, err := c.client.Request(ctx, c.subHandle, map[string]any{"request": "start"}, &janusapi.JSEP{Type: "answer", SDP: local.SDP, Trickle: janusapi.NoTrickle()}); err != nil {
		if r.ctx.Err() == nil {
			fail("start", err)
		}
		return
	}
	r.log.Debug().Int("streams", len(mids)).Msg("subscription negotiated")
}

// onTrack starts the receive path of a new subscribed stream.
func (r *Room) onTrack(c *conn, pc *webrtc.PeerConnection, tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	if c != r.conn || c.pc != pc {
		return
	}
	var mid string
	for _, tx := range pc.GetTransceivers() {
		if tx.Receiver() == rcv {
			mid = tx.Mid()
		}
	}
	s, ok := c.mids[mid]
	if !ok {
		r.log.Debug().Str("mid", mid).Msg("media on an m-line with no active stream, ignored")
		return
	}
	feed := string(s.FeedID)
	part := r.participants[feed]
	if part == nil {
		// The subscription knew before the room events did.
		r.publishers([]publisherInfo{{ID: s.FeedID, Display: s.FeedDisplay, Streams: []streamInfo{{Type: s.Type, Mid: s.FeedMid, Description: s.FeedDesc}}}})
		if part = r.participants[feed]; part == nil {
			return
		}
	}
	codec := rtprecv.Codec(tr.Codec().MimeType)
	sid := feed + "/" + s.FeedMid
	log := r.log.With().Str("participant", r.cfg.Pseudonyms.ID(feed)).Str("track", sid).Str("kind", tr.Kind().String()).
		Str("codec", tr.Codec().MimeType).Logger()
	if codec == "" {
		log.Warn().Msg("unsupported codec, track ignored")
		return
	}
	kind, source := room.KindAudio, room.SourceMicrophone
	if tr.Kind() == webrtc.RTPCodecTypeVideo {
		kind, source = room.KindVideo, room.SourceCamera
		desc := s.FeedDesc
		for _, ps := range part.streams {
			if ps.Mid == s.FeedMid && ps.Description != "" {
				desc = ps.Description
			}
		}
		if isScreen(desc, part.name) {
			source = room.SourceScreenShare
		}
	}
	if old := r.tracks[sid]; old != nil {
		old.w.Halt()
	}
	ssrc := uint32(tr.SSRC())
	w := rtprecv.NewWorker(rtprecv.Config{
		Kind: kind, Codec: codec, ClockRate: tr.Codec().ClockRate, SSRC: ssrc,
		Clock: r.clock, Participant: r.participantClock(feed), Feedback: r.feedback,
		WritePLI: func() {
			go func() { _ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) }()
		},
		WaitGroup: &r.wg, Log: log,
	})
	if w == nil {
		log.Warn().Msg("unsupported codec, track ignored")
		return
	}
	t := &track{mid: mid, gen: c.gen, w: w, src: &timedSource{tr: tr, timeout: r.cfg.MediaTimeout}}
	t.t = &room.Track{
		SID: sid, ParticipantID: feed, ParticipantName: part.name,
		Kind: kind, Source: source, Codec: codec, Control: control{w},
	}
	r.tracks[sid] = t
	log.Info().Str("source", source.String()).Msg("track added")
	sink := r.cfg.Handler.TrackAdded(t.t)
	w.Start(t.src, sink, func() { r.q.push(func() { r.trackEnded(t) }) })
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			pkts, _, err := rcv.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				w.OnRTCP(p)
			}
		}
	}()
	if !r.firstSpeaker {
		r.firstSpeaker = true
		r.cfg.Handler.Session(room.SessionEvent{Kind: room.EventFirstSpeaker, At: r.Now(), Participant: feed})
	}
}

func (r *Room) trackEnded(t *track) {
	if r.tracks[t.t.SID] == t {
		delete(r.tracks, t.t.SID)
	}
	if t.src.timedOut.Load() {
		r.log.Warn().Str("track", t.t.SID).Str("participant", r.cfg.Pseudonyms.ID(t.t.ParticipantID)).
			Dur("timeout", r.cfg.MediaTimeout).Msg("no media: track ended")
	}
}

// forgetClock drops a participant's clock when it leaves (its tracks'
// workers keep theirs), so that comings and goings do not accumulate them.
// Event goroutine only, as participantClock.
func (r *Room) forgetClock(id string) { delete(r.partClocks, id) }

func (r *Room) participantClock(id string) *rtprecv.ParticipantClock {
	pc := r.partClocks[id]
	if pc == nil {
		pc = &rtprecv.ParticipantClock{}
		r.partClocks[id] = pc
	}
	return pc
}

// Tracks returns the tracks currently received (for tests and
// diagnostics). Only from the event goroutine's quiet times: it takes a
// snapshot through the event queue.
func (r *Room) Tracks() []*room.Track {
	ch := make(chan []*room.Track, 1)
	r.q.push(func() {
		out := make([]*room.Track, 0, len(r.tracks))
		for _, t := range r.tracks {
			out = append(out, t.t)
		}
		ch <- out
	})
	select {
	case out := <-ch:
		sort.Slice(out, func(i, j int) bool { return out[i].SID < out[j].SID })
		return out
	case <-r.done:
		return nil
	}
}

// control is a track's room.TrackControl.
type control struct{ w *rtprecv.Worker }

func (c control) RequestKeyframe()            { c.w.RequestKeyframe() }
func (c control) SetVideoDimensions(int, int) {}
func (c control) Stats() room.TrackStats      { return c.w.Stats() }
