package livekit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/pseudo"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/rtprecv"
)

var _ room.Room = (*Room)(nil)

// Room is roomcast's participant in one LiveKit room, a room.Room. Create it
// with New (or Open), join with Start, leave with Close. Events go to
// Config.Handler, following room's threading contract.
type Room struct {
	cfg   Config
	log   zerolog.Logger
	red   redactor
	clock rtprecv.Clock
	// feedback counts the NACKs the SDK's generator sends, per track.
	feedback *rtprecv.Feedback

	lk *lksdk.Room

	q         eventQueue
	wg        sync.WaitGroup // track goroutines
	loopDone  chan struct{}  // event goroutine finished
	done      chan struct{}  // room ended (closed, or closed by the server)
	closeOnce sync.Once
	endOnce   sync.Once
	errMu     sync.Mutex
	err       error
	// started: Start was called (or Close, which forbids it); loopStarted:
	// the event goroutine runs; joining: Start is joining; abandon: nobody
	// waits for that join any more (Close or Start's deadline).
	started, loopStarted, joining, abandon bool
	cancelJoin                             context.CancelFunc
	unregSDK                               func() // sdklog routing, after a join

	mu         sync.Mutex
	tracks     map[string]*track // by track SID
	partClocks map[string]*rtprecv.ParticipantClock

	// Owned by the event goroutine.
	participants map[string]bool
	// subscribed: track SID → publisher identity, for the tracks roomcast
	// asked the server for (subscriptions are manual, see subscribe).
	subscribed   map[string]string
	firstSpeaker bool
	reconnecting bool
	empty        bool
	lastSpeakers []string
	// Taken when the connection drops, to find participants that did not
	// come back after a rejoin (see reconcile).
	sidsBefore     map[string]string
	localSIDBefore string
}

// New checks cfg and fills in its defaults. Nothing connects before Start.
func New(cfg Config) (*Room, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Pseudonyms == nil {
		cfg.Pseudonyms = pseudo.New()
	}
	r := &Room{
		cfg:          cfg,
		log:          cfg.Logger.With().Str("component", "livekit").Logger(),
		red:          redactor{Secrets: []string{cfg.Token, cfg.APISecret}},
		loopDone:     make(chan struct{}),
		done:         make(chan struct{}),
		tracks:       map[string]*track{},
		partClocks:   map[string]*rtprecv.ParticipantClock{},
		participants: map[string]bool{},
		subscribed:   map[string]string{},
		empty:        true,
		clock:        rtprecv.NewClock(time.Now()),
		feedback:     rtprecv.NewFeedback(),
	}
	r.q.wake = make(chan struct{}, 1)
	r.lk = lksdk.NewRoom(r.callbacks())
	return r, nil
}

// callbacks turns the SDK's callbacks (called from its goroutines, some
// spawned per call) into closures run in order by the event goroutine.
func (r *Room) callbacks() *lksdk.RoomCallback {
	cb := lksdk.NewRoomCallback()
	cb.OnParticipantConnected = func(rp *lksdk.RemoteParticipant) {
		r.q.push(func() { r.announce(rp) })
	}
	cb.OnParticipantDisconnected = func(rp *lksdk.RemoteParticipant) {
		id := rp.Identity()
		r.q.push(func() { r.leave(id) })
	}
	cb.OnTrackPublished = func(pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		r.q.push(func() { r.subscribe(rp) })
	}
	cb.OnTrackSubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
		r.q.push(func() { r.addTrack(track, pub, rp) })
	}
	cb.OnTrackUnsubscribed = func(track *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, _ *lksdk.RemoteParticipant) {
		sid := pub.SID()
		r.q.push(func() { r.removeTrack(sid, track) })
	}
	cb.OnMetadataChanged = func(_ string, p lksdk.Participant) {
		switch pp := p.(type) {
		case *lksdk.RemoteParticipant:
			r.q.push(func() { r.updated(pp) })
		case *lksdk.LocalParticipant:
			self := room.Participant{ID: pp.Identity(), Name: pp.Name(), Metadata: pp.Metadata(), Attributes: pp.Attributes()}
			r.q.push(func() { r.selfUpdated(self) })
		}
	}
	cb.OnAttributesChanged = func(_ map[string]string, p lksdk.Participant) {
		if rp, ok := p.(*lksdk.RemoteParticipant); ok {
			r.q.push(func() { r.updated(rp) })
		}
	}
	cb.OnTrackMuted = func(pub lksdk.TrackPublication, _ lksdk.Participant) {
		sid := pub.SID()
		r.q.push(func() { r.muted(sid, true) })
	}
	cb.OnTrackUnmuted = func(pub lksdk.TrackPublication, _ lksdk.Participant) {
		sid := pub.SID()
		r.q.push(func() { r.muted(sid, false) })
	}
	cb.OnActiveSpeakersChanged = func([]lksdk.Participant) {
		// The SDK calls this from a new goroutine per update, so updates can
		// overtake each other: read the current list when handling instead.
		r.q.push(r.speakers)
	}
	cb.OnReconnecting = func() { r.q.push(func() { r.session(room.EventReconnecting) }) }
	cb.OnReconnected = func() { r.q.push(func() { r.session(room.EventReconnected) }) }
	cb.OnDisconnectedWithReason = func(lksdk.DisconnectionReason) {
		r.q.push(r.remoteClosed)
	}

	return cb
}

// Now is the current time on the room media clock, the clock of every
// Frame.PTS: zero when New returned.
func (r *Room) Now() time.Duration { return r.clock.Since(time.Now()) }

// Identity is roomcast's identity in the room (after Start).
func (r *Room) Identity() string {
	if id := r.lk.LocalParticipant.Identity(); id != "" {
		return id
	}
	return r.cfg.Identity
}

// Done is closed when the room has ended: Close was called, or the server
// closed it (then Err says why).
func (r *Room) Done() <-chan struct{} { return r.done }

// Err is nil while the room runs and after Close; otherwise the reason it
// ended (wrapping ErrRoomClosed or ErrDisconnected).
func (r *Room) Err() error {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.err
}

// Start joins the room and returns once connected, or with an error
// wrapping ErrUnauthorized, ErrRoomMismatch, ErrRoomNotFound or ErrConnect
// within Config.ConnectTimeout.
func (r *Room) Start(ctx context.Context) error {
	r.errMu.Lock()
	started := r.started
	r.started = true
	if !started {
		// Under the lock, so that Close knows what to wait for.
		r.loopStarted, r.joining = true, true
		go r.eventLoop()
	}
	r.errMu.Unlock()
	if started {
		select {
		case <-r.done:
			return ErrClosed
		default:
			return fmt.Errorf("%w: Start called twice", ErrConfig)
		}
	}
	token := r.cfg.Token
	if token == "" {
		var err error
		if token, err = mintToken(&r.cfg); err != nil {
			r.abortStart()
			return err
		}
	}
	r.red.Secrets = append(r.red.Secrets, token)

	jctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	r.errMu.Lock()
	if r.abandon { // Close came first
		r.errMu.Unlock()
		r.abortStart()
		return ErrClosed
	}
	r.cancelJoin = cancel
	r.errMu.Unlock()

	// The SDK's signal connection may take its timeout and then spend up to
	// 3 s more asking the server's validate endpoint why it failed; keep the
	// sum inside ConnectTimeout, and do not wait past it in any case.
	sdkTimeout := max(r.cfg.ConnectTimeout-3*time.Second, r.cfg.ConnectTimeout/2)
	start := time.Now()
	joined := make(chan error, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := r.lk.JoinWithContextAndToken(jctx, r.cfg.URL, token,
			// Subscriptions are roomcast's choice (see subscribe): an
			// excluded participant's media is never sent to it.
			lksdk.WithAutoSubscribe(false),
			lksdk.WithConnectTimeout(sdkTimeout),
			// Counts the SDK's NACKs per track: registered before the
			// SDK's own interceptors, so their writes pass through it.
			lksdk.WithInterceptors([]interceptor.Factory{r.feedback}),
			lksdk.WithIncludeDefaultInterceptors(true),
			lksdk.WithLogger(newSDKLogger(r.log.With().Str("sdk", "room").Logger(), r.red)),
		)
		// The SDK is not safe to disconnect while it joins: whoever gave up
		// on this join (Start's deadline, Close) left the leaving to here.
		r.errMu.Lock()
		r.joining = false
		abandon := r.abandon
		r.errMu.Unlock()
		if err != nil || abandon {
			r.lk.Disconnect()
		}
		joined <- err
	}()
	var err error
	select {
	case err = <-joined:
	case <-jctx.Done():
		r.errMu.Lock()
		stillJoining := r.joining
		r.abandon = true
		r.errMu.Unlock()
		if !stillJoining {
			// It finished just now, before it could see abandon.
			if jerr := <-joined; jerr == nil {
				r.lk.Disconnect()
			}
		}
		err = jctx.Err()
	}
	r.errMu.Lock()
	closed := r.abandon && ctx.Err() == nil && !errors.Is(jctx.Err(), context.DeadlineExceeded)
	r.errMu.Unlock()
	if closed {
		r.abortStart()
		return ErrClosed
	}
	if err != nil {
		r.abortStart()
		err = r.classifyJoinError(err)
		r.log.Warn().Err(err).Str("url", r.red.String(r.cfg.URL)).Msg("join failed")
		return err
	}
	r.errMu.Lock()
	r.unregSDK = registerSDKLogger(r.Identity(), r.log, r.red)
	r.errMu.Unlock()
	r.log.Info().Str("room", r.lk.Name()).Str("identity", r.Identity()).
		Dur("join_time", time.Since(start)).Msg("joined")
	// Participants already in the room come with the join response, without
	// a "connected" callback, in no particular order (the SDK keeps them in
	// a map and does not expose their join time): they are announced by
	// name, then identity, so that a weekly meeting's tiles are placed the
	// same way each run; later arrivals follow in the order they join.
	present := r.lk.GetRemoteParticipants()
	slices.SortFunc(present, func(a, b *lksdk.RemoteParticipant) int {
		return cmp.Or(cmp.Compare(strings.ToLower(displayName(a)), strings.ToLower(displayName(b))),
			cmp.Compare(a.Identity(), b.Identity()))
	})
	for _, rp := range present {
		r.q.push(func() { r.announce(rp); r.subscribe(rp) })
	}
	return nil
}

// abortStart ends a Start that failed: the event goroutine stops (the join
// goroutine disconnects the SDK itself; Close waits for it).
func (r *Room) abortStart() {
	r.errMu.Lock()
	r.joining = false
	r.errMu.Unlock()
	r.endLoop()
	<-r.loopDone
	r.closeOnce.Do(func() {})
	r.endOnce.Do(func() { close(r.done) })
}

func (r *Room) classifyJoinError(err error) error {
	msg := r.red.String(err.Error())
	msg = strings.TrimPrefix(msg, "unauthorized: ")
	low := strings.ToLower(err.Error())
	var opErr *net.OpError
	switch {
	// A refused or failed dial says nothing of the token, even when the
	// SDK reports it as a failed validation ("unauthorized: Get …:
	// connection refused"), so the network is checked first.
	case errors.As(err, &opErr), errors.Is(err, syscall.ECONNREFUSED),
		strings.Contains(low, "connection refused"), strings.Contains(low, "no such host"),
		strings.Contains(low, "network is unreachable"), strings.Contains(low, "connection reset"):
		return fmt.Errorf("%w: %s", ErrConnect, msg)
	case strings.Contains(low, "unauthorized"), strings.Contains(low, "401"),
		strings.Contains(low, "invalid token"), strings.Contains(low, "permission"):
		return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
	case strings.Contains(low, "not found") || strings.Contains(low, "404"):
		name := r.cfg.Room
		if name == "" {
			name, _ = tokenRoom(r.cfg.Token)
		}
		return fmt.Errorf("%w: %q (the server does not create rooms on join)", ErrRoomNotFound, name)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, lksdk.ErrConnectionTimeout):
		return fmt.Errorf("%w: no connection within %v: %s", ErrConnect, r.cfg.ConnectTimeout, msg)
	}
	return fmt.Errorf("%w: %s", ErrConnect, msg)
}

// Close leaves the room, stops every track (closing its sink) and waits for
// all goroutines. It is idempotent. Do not call it from a Handler method
// (it waits for the goroutine that calls them).
func (r *Room) Close() error {
	r.errMu.Lock()
	loop, joining := r.loopStarted, r.joining
	r.started = true // a Start after Close fails
	if joining {
		// Start is joining: cancel it; its join goroutine disconnects.
		r.abandon = true
		if r.cancelJoin != nil {
			r.cancelJoin()
		}
	}
	r.errMu.Unlock()
	r.closeOnce.Do(func() {
		if !loop {
			r.endOnce.Do(func() { close(r.done) })
			return
		}
		if !joining {
			r.lk.Disconnect()
		}
		r.q.push(func() { r.finish(nil) })
	})
	if loop {
		<-r.loopDone
	}
	r.wg.Wait()
	r.errMu.Lock()
	if r.unregSDK != nil {
		r.unregSDK()
		r.unregSDK = nil
	}
	r.errMu.Unlock()
	return nil
}

// eventLoop runs every Handler call, in order.
func (r *Room) eventLoop() {
	defer close(r.loopDone)
	for {
		fns, closed := r.q.take()
		for _, fn := range fns {
			select {
			case <-r.done:
				// The room ended: later events (a track subscribed just
				// before) must not start anything.
				return
			default:
			}
			fn()
		}
		if closed {
			return
		}
		<-r.q.wake
	}
}

func (r *Room) endLoop() { r.q.close() }

// finish stops everything; reason non-nil means the server ended the room.
// Runs on the event goroutine.
func (r *Room) finish(reason error) {
	r.endOnce.Do(func() {
		r.mu.Lock()
		tracks := make([]*track, 0, len(r.tracks))
		for sid, t := range r.tracks {
			tracks = append(tracks, t)
			delete(r.tracks, sid)
		}
		r.mu.Unlock()
		for _, t := range tracks {
			t.w.Halt()
		}
		if reason != nil {
			r.errMu.Lock()
			r.err = reason
			r.errMu.Unlock()
			r.log.Warn().Err(reason).Msg("room ended")
			r.cfg.Handler.RoomClosed(reason)
		}
		close(r.done)
	})
	r.endLoop()
}

func (r *Room) remoteClosed() {
	reason := r.lk.DisconnectReason()
	var err error
	switch reason {
	case livekit.DisconnectReason_ROOM_DELETED, livekit.DisconnectReason_ROOM_CLOSED,
		livekit.DisconnectReason_PARTICIPANT_REMOVED, livekit.DisconnectReason_DUPLICATE_IDENTITY:
		err = fmt.Errorf("%w: %s", ErrRoomClosed, reason)
	default:
		err = fmt.Errorf("%w: %s", ErrDisconnected, reason)
	}
	r.finish(err)
}

// ignored: roomcast itself, hidden participants, recorders and egress do not
// get tiles.
func (r *Room) ignored(p lksdk.Participant) bool {
	if p.Identity() == r.lk.LocalParticipant.Identity() {
		return true
	}
	if p.Kind() == lksdk.ParticipantEgress {
		return true
	}
	if perm := p.Permissions(); perm != nil && (perm.Hidden || perm.Recorder) {
		return true
	}
	return false
}

func (r *Room) announce(rp *lksdk.RemoteParticipant) {
	id := rp.Identity()
	if r.participants[id] || r.ignored(rp) {
		return
	}
	r.participants[id] = true
	name := rp.Name()
	if name == "" {
		name = id
	}
	r.log.Info().Str("participant", r.cfg.Pseudonyms.ID(id)).Msg("participant joined")
	r.log.Debug().Str("participant", r.cfg.Pseudonyms.ID(id)).Str("identity", id).Str("name", name).Msg("participant identity")
	r.cfg.Handler.ParticipantJoined(participant(rp))
	if r.empty {
		r.empty = false
		if r.firstSpeaker {
			r.session(room.EventRoomOccupied)
		}
	}
}

// participant describes rp for the Handler.
// displayName is the participant's name, or its identity when it has none.
func displayName(rp *lksdk.RemoteParticipant) string {
	if n := rp.Name(); n != "" {
		return n
	}
	return rp.Identity()
}

func participant(rp *lksdk.RemoteParticipant) room.Participant {
	name := displayName(rp)
	return room.Participant{ID: rp.Identity(), Name: name, Metadata: rp.Metadata(), Attributes: rp.Attributes()}
}

// updated reports changed metadata or attributes of a joined participant.
func (r *Room) updated(rp *lksdk.RemoteParticipant) {
	if !r.participants[rp.Identity()] {
		return
	}
	p := participant(rp)
	r.log.Debug().Str("participant", r.cfg.Pseudonyms.ID(p.ID)).Str("identity", p.ID).Msg("participant updated")
	r.cfg.Handler.ParticipantUpdated(p)
	r.subscribe(rp)
}

// selfUpdated tells the Handler (a room.SelfObserver) that roomcast's own
// participant was changed by someone else (the egress API's UpdateLayout).
func (r *Room) selfUpdated(p room.Participant) {
	if h, ok := r.cfg.Handler.(room.SelfObserver); ok {
		h.SelfUpdated(p)
	}
}

// wants asks the Handler (a room.SubscriptionFilter, the consent filter)
// whether rp's tracks are to be received at all.
func (r *Room) wants(rp *lksdk.RemoteParticipant) bool {
	if r.ignored(rp) {
		return false
	}
	if f, ok := r.cfg.Handler.(room.SubscriptionFilter); ok {
		return f.WantTracks(participant(rp))
	}
	return true
}

// wantsTrack asks the Handler (a room.TrackFilter) whether this track of a
// wanted participant is to be received (an audio-only recording takes no
// camera).
func (r *Room) wantsTrack(id string, pub *lksdk.RemoteTrackPublication) bool {
	f, ok := r.cfg.Handler.(room.TrackFilter)
	if !ok {
		return true
	}
	return f.WantTrack(&room.Track{SID: pub.SID(), ParticipantID: id, Kind: kindOf(pub.Kind()), Source: sourceOf(pub.Source())})
}

// subscribe brings rp's subscriptions in line with wants: every published
// track of a wanted participant is subscribed, none of an unwanted one
// (a participant who opts out mid-session is unsubscribed). Runs on the
// event goroutine, for every publication, attribute change, join and
// reconnect.
func (r *Room) subscribe(rp *lksdk.RemoteParticipant) {
	want := r.wants(rp)
	id := rp.Identity()
	for _, tp := range rp.TrackPublications() {
		pub, ok := tp.(*lksdk.RemoteTrackPublication)
		if !ok {
			continue
		}
		sid := pub.SID()
		want := want && r.wantsTrack(id, pub)
		_, asked := r.subscribed[sid]
		// Whether the media arrives is read from roomcast's own tracks:
		// the SDK's IsSubscribed reads a field its media goroutine writes
		// without a lock (a data race under -race).
		r.mu.Lock()
		_, receiving := r.tracks[sid]
		r.mu.Unlock()
		switch {
		case want && (!asked || !receiving):
			if err := pub.SetSubscribed(true); err != nil {
				r.log.Warn().Err(err).Str("track", sid).Msg("subscribing failed")
				continue
			}
			r.subscribed[sid] = id
		case !want && asked:
			if err := pub.SetSubscribed(false); err != nil {
				r.log.Warn().Err(err).Str("track", sid).Msg("unsubscribing failed")
				continue
			}
			delete(r.subscribed, sid)
			r.log.Info().Str("participant", r.cfg.Pseudonyms.ID(id)).Str("track", sid).Msg("track unsubscribed (not to be recorded)")
		}
	}
}

// Subscriptions is the number of tracks roomcast asked the server to send
// (for tests: an excluded participant's tracks never count).
func (r *Room) Subscriptions() int {
	n := make(chan int, 1)
	r.q.push(func() { n <- len(r.subscribed) })
	select {
	case v := <-n:
		return v
	case <-r.loopDone:
		return 0
	}
}

func (r *Room) leave(id string) {
	for sid, pid := range r.subscribed {
		if pid == id {
			delete(r.subscribed, sid)
		}
	}
	if !r.participants[id] {
		return
	}
	delete(r.participants, id)
	r.forgetClock(id)
	r.log.Info().Str("participant", r.cfg.Pseudonyms.ID(id)).Msg("participant left")
	r.cfg.Handler.ParticipantLeft(id)
	r.checkEmpty()
}

func (r *Room) checkEmpty() {
	if len(r.participants) == 0 && !r.empty && !r.reconnecting {
		r.empty = true
		r.session(room.EventRoomEmpty)
	}
}

func (r *Room) session(k room.SessionEventKind) {
	switch k {
	case room.EventReconnecting:
		if r.reconnecting {
			return
		}
		r.reconnecting = true
		r.localSIDBefore = r.lk.LocalParticipant.SID()
		r.sidsBefore = map[string]string{}
		for id := range r.participants {
			if rp := r.lk.GetParticipantByIdentity(id); rp != nil {
				r.sidsBefore[id] = rp.SID()
			}
		}
		r.log.Warn().Msg("connection lost, reconnecting")
	case room.EventReconnected:
		r.reconnecting = false
		r.log.Info().Msg("reconnected")
		// After a rejoin participants come back one by one; judge who is
		// gone once they had time to.
		time.AfterFunc(reconcileDelay, func() { r.q.push(r.reconcile) })
	}
	r.cfg.Handler.Session(room.SessionEvent{Kind: k, At: r.Now()})
}

// reconcileDelay is how long after a reconnect roomcast waits before
// declaring participants that did not come back gone.
const reconcileDelay = 5 * time.Second

// reconcile runs after a reconnect. When roomcast had to rejoin (a new
// session on a restarted server: its own SID changed), participants whose
// SID is still the one from before the outage did not rejoin that server;
// the SDK (v2.18.1) keeps them listed because it skips its own clean-up
// when a failed resume turns into a rejoin. They are reported as left.
func (r *Room) reconcile() {
	if r.reconnecting {
		return
	}
	// A rejoin starts with no subscription on the server's side.
	for _, rp := range r.lk.GetRemoteParticipants() {
		r.subscribe(rp)
	}
	if r.lk.LocalParticipant.SID() != r.localSIDBefore {
		for id := range r.participants {
			rp := r.lk.GetParticipantByIdentity(id)
			if rp == nil || rp.SID() == r.sidsBefore[id] {
				r.log.Info().Str("participant", r.cfg.Pseudonyms.ID(id)).Msg("participant did not come back after the reconnect")
				r.leave(id)
			}
		}
	}
	r.checkEmpty()
}

// forgetClock drops a participant's clock when it leaves (its tracks'
// workers keep theirs; a participant who comes back starts afresh), so that
// a long session with many comings and goings does not accumulate them.
func (r *Room) forgetClock(id string) {
	r.mu.Lock()
	delete(r.partClocks, id)
	r.mu.Unlock()
}

func (r *Room) participantClock(id string) *rtprecv.ParticipantClock {
	r.mu.Lock()
	defer r.mu.Unlock()
	pc := r.partClocks[id]
	if pc == nil {
		pc = &rtprecv.ParticipantClock{}
		r.partClocks[id] = pc
	}
	return pc
}

func (r *Room) addTrack(remote *webrtc.TrackRemote, pub *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
	if !r.wants(rp) {
		// Not asked for (a subscription from before an opt-out, or the
		// server's own choice): stop the media we will not use.
		_ = pub.SetSubscribed(false)
		delete(r.subscribed, pub.SID())
		return
	}
	r.announce(rp)
	codec := rtprecv.Codec(remote.Codec().MimeType)
	log := r.log.With().Str("participant", r.cfg.Pseudonyms.ID(rp.Identity())).Str("track", pub.SID()).
		Str("kind", string(pub.Kind())).Str("codec", remote.Codec().MimeType).Logger()
	if codec == "" {
		log.Warn().Msg("unsupported codec, track ignored")
		return
	}
	info := pub.TrackInfo()
	name := rp.Name()
	if name == "" {
		name = rp.Identity()
	}
	t := &track{
		info: &room.Track{
			SID:             pub.SID(),
			ParticipantID:   rp.Identity(),
			ParticipantName: name,
			Kind:            kindOf(pub.Kind()),
			Source:          sourceOf(pub.Source()),
			Codec:           codec,
			Muted:           pub.IsMuted(),
		},
		pub:    pub,
		remote: remote,
	}
	t.info.Control = t
	if info != nil {
		t.info.Width, t.info.Height, t.info.Simulcast = int(info.Width), int(info.Height), info.Simulcast
	}
	latency := r.cfg.AudioLatency
	if t.info.Kind == room.KindVideo {
		latency = r.cfg.VideoLatency
	}
	ssrc := remote.SSRC()
	t.w = rtprecv.NewWorker(rtprecv.Config{
		Kind:             t.info.Kind,
		Codec:            codec,
		ClockRate:        remote.Codec().ClockRate,
		SSRC:             uint32(ssrc),
		Clock:            r.clock,
		Participant:      r.participantClock(t.info.ParticipantID),
		MaxClockSkew:     r.cfg.MaxClockSkew,
		Queue:            r.cfg.QueuePackets,
		Latency:          latency,
		KeyframeInterval: r.cfg.KeyframeInterval,
		WritePLI:         func() { rp.WritePLI(ssrc) },
		Feedback:         r.feedback,
		WaitGroup:        &r.wg,
		Log:              log,
	})

	r.mu.Lock()
	old := r.tracks[t.info.SID]
	r.tracks[t.info.SID] = t
	r.mu.Unlock()
	if old != nil {
		old.w.Halt()
	}

	log.Info().Str("source", t.info.Source.String()).Bool("muted", t.info.Muted).
		Int("width", t.info.Width).Int("height", t.info.Height).Bool("simulcast", t.info.Simulcast).Msg("track added")
	sink := r.cfg.Handler.TrackAdded(t.info)
	pub.OnRTCP(t.w.OnRTCP)
	// A track whose RTP stream ended (its connection closed) leaves the
	// list even when the SDK reports no unsubscription.
	t.w.Start(remote, sink, func() { r.q.push(func() { r.forget(t) }) })
	if !r.firstSpeaker {
		r.firstSpeaker = true
		r.cfg.Handler.Session(room.SessionEvent{Kind: room.EventFirstSpeaker, At: r.Now(), Participant: t.info.ParticipantID})
	}
}

func (r *Room) removeTrack(sid string, remote *webrtc.TrackRemote) {
	r.mu.Lock()
	t := r.tracks[sid]
	if t == nil || (remote != nil && t.remote != remote) {
		r.mu.Unlock()
		return
	}
	delete(r.tracks, sid)
	r.mu.Unlock()
	t.w.Halt()
	r.log.Info().Str("track", sid).Str("participant", r.cfg.Pseudonyms.ID(t.info.ParticipantID)).Msg("track removed")
}

func (r *Room) forget(t *track) {
	r.mu.Lock()
	if r.tracks[t.info.SID] == t {
		delete(r.tracks, t.info.SID)
	}
	r.mu.Unlock()
}

func (r *Room) muted(sid string, muted bool) {
	r.mu.Lock()
	t := r.tracks[sid]
	r.mu.Unlock()
	if t == nil {
		return
	}
	r.cfg.Handler.TrackMuted(sid, muted)
}

func (r *Room) speakers() {
	var ids []string
	for _, p := range r.lk.ActiveSpeakers() {
		if r.participants[p.Identity()] {
			ids = append(ids, p.Identity())
		}
	}
	if slices.Equal(ids, r.lastSpeakers) {
		return
	}
	r.lastSpeakers = ids
	r.cfg.Handler.ActiveSpeakers(slices.Clone(ids))
}

// Tracks returns the tracks currently subscribed, by SID.
func (r *Room) Tracks() []*room.Track {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*room.Track, 0, len(r.tracks))
	for _, t := range r.tracks {
		out = append(out, t.info)
	}
	slices.SortFunc(out, func(a, b *room.Track) int { return strings.Compare(a.SID, b.SID) })
	return out
}

// CandidatePair is the ICE candidate pair media arrives over.
type CandidatePair struct {
	// Local and Remote are "address:port/protocol (type)"; Remote is the
	// server's side.
	Local, Remote         string
	LocalIP, RemoteIP     string
	LocalPort, RemotePort int
}

// SelectedCandidatePair reports the subscriber connection's selected ICE
// pair (read from a subscribed track's transport), for diagnostics and for
// tests that check media stays on loopback.
func (r *Room) SelectedCandidatePair() (CandidatePair, error) {
	r.mu.Lock()
	tracks := make([]*track, 0, len(r.tracks))
	for _, t := range r.tracks {
		tracks = append(tracks, t)
	}
	r.mu.Unlock()
	slices.SortFunc(tracks, func(a, b *track) int { return strings.Compare(a.info.SID, b.info.SID) })
	for _, t := range tracks {
		rcv := t.pub.Receiver()
		if rcv == nil || rcv.Transport() == nil {
			continue
		}
		pair, err := rcv.Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			continue
		}
		desc := func(c *webrtc.ICECandidate) string {
			return fmt.Sprintf("%s:%d/%s (%s)", c.Address, c.Port, c.Protocol, c.Typ)
		}
		return CandidatePair{
			Local: desc(pair.Local), Remote: desc(pair.Remote),
			LocalIP: pair.Local.Address, RemoteIP: pair.Remote.Address,
			LocalPort: int(pair.Local.Port), RemotePort: int(pair.Remote.Port),
		}, nil
	}
	return CandidatePair{}, errors.New("livekit: no subscribed track with a selected candidate pair")
}

// eventQueue is an unbounded FIFO of closures: SDK callbacks push without
// ever blocking the SDK's goroutines; the event goroutine takes them.
type eventQueue struct {
	mu     sync.Mutex
	fns    []func()
	closed bool
	wake   chan struct{}
}

func (q *eventQueue) push(fn func()) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.fns = append(q.fns, fn)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *eventQueue) take() ([]func(), bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	fns := q.fns
	q.fns = nil
	return fns, q.closed
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
