package egress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"
)

// Config configures a Worker. Zero values take the documented defaults.
type Config struct {
	// Redis is the Redis livekit-server is configured with. Required.
	Redis redis.UniversalClient
	// WSURL is the LiveKit server's URL for joining rooms
	// (ws://host:7880 or wss://…). Required.
	WSURL string
	// APIKey and APISecret mint each egress's join token (hidden,
	// recorder, identity = the egress ID). Required; never logged.
	APIKey, APISecret string
	// OutputDir is where files are written; request paths are relative to
	// it and may not leave it. It defaults to the working directory.
	OutputDir string
	// NodeID names this worker on the bus. It defaults to "RCW_" and 12
	// random hex digits.
	NodeID string
	// CPUCapacity is the number of cores this worker may fill; 0 (the
	// default) measures the machine's idle CPU instead, as LiveKit's
	// workers do.
	CPUCapacity float64
	// CPUCost is the estimated cores an egress uses (a 720p30 room
	// composite). It defaults to DefaultCPUCost.
	CPUCost float64
	// EmptyTimeout ends an egress when its room has been empty this long
	// (0: only when the room closes, as LiveKit's egress does).
	EmptyTimeout time.Duration
	// LeaseTTL is how long after its last heartbeat a worker's egresses
	// are reported failed by the others. It defaults to 5 s.
	LeaseTTL time.Duration
	// InsecureTLS accepts self-signed rtmps certificates (tests only).
	InsecureTLS bool
	// Log is the worker's logger; each egress logs with its egress ID.
	Log zerolog.Logger
}

// DefaultCPUCost is the estimated CPU (cores) of one 720p30 room composite
// on a roomcast worker. `make bench` (scripts/bench-egress.sh: four
// publishers, 2-core machine) measured 0.39 cores; the margin is for
// cameras with more detail than the bench's moving test patterns.
const DefaultCPUCost = 0.75

// Worker is one egress worker on the bus. Create with New, then Start;
// Close stops every egress (files finalised, reported) and leaves the bus.
type Worker struct {
	cfg Config
	log zerolog.Logger
	cap capacity

	bus      psrpc.MessageBus
	internal rpc.EgressInternalServer
	handler  rpc.EgressHandlerServer
	io       rpc.IOInfoClient

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	jobs   map[string]*job
	closed bool
	once   sync.Once
}

// New checks the configuration; nothing touches the bus before Start.
func New(cfg Config) (*Worker, error) {
	switch {
	case cfg.Redis == nil:
		return nil, errors.New("egress: no Redis client")
	case cfg.WSURL == "":
		return nil, errors.New("egress: no LiveKit URL (ws_url)")
	case cfg.APIKey == "" || cfg.APISecret == "":
		return nil, errors.New("egress: the API key and secret are required (they mint the egress's join token)")
	case cfg.CPUCapacity < 0 || cfg.CPUCost < 0:
		return nil, errors.New("egress: negative CPU capacity or cost")
	}
	if cfg.NodeID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.NodeID = "RCW_" + hex.EncodeToString(b)
	}
	if cfg.OutputDir == "" {
		cfg.OutputDir = "."
	}
	if cfg.CPUCost == 0 {
		cfg.CPUCost = DefaultCPUCost
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 5 * time.Second
	}
	w := &Worker{
		cfg:  cfg,
		log:  cfg.Log.With().Str("component", "egress-worker").Str("node", cfg.NodeID).Logger(),
		jobs: map[string]*job{},
		cap: capacity{fixed: cfg.CPUCapacity, cost: cfg.CPUCost, meter: newIdleMeter(),
			recent: 10 * time.Second, now: time.Now},
	}
	return w, nil
}

// NodeID is the worker's name on the bus.
func (w *Worker) NodeID() string { return w.cfg.NodeID }

// Start registers on the bus: from then on the worker bids for requests.
func (w *Worker) Start(ctx context.Context) error {
	if err := w.cfg.Redis.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("egress: redis: %w", err)
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.bus = psrpc.NewRedisMessageBus(w.cfg.Redis)
	var err error
	if w.io, err = rpc.NewIOInfoClient(w.bus, psrpc.WithClientTimeout(10*time.Second)); err != nil {
		return fmt.Errorf("egress: IOInfo client: %w", err)
	}
	if w.handler, err = rpc.NewEgressHandlerServer(w, w.bus, psrpc.WithServerID(w.cfg.NodeID)); err != nil {
		return fmt.Errorf("egress: handler server: %w", err)
	}
	if w.internal, err = rpc.NewEgressInternalServer(w, w.bus, psrpc.WithServerID(w.cfg.NodeID)); err != nil {
		return fmt.Errorf("egress: internal server: %w", err)
	}
	if w.cap.fixed == 0 {
		w.cap.meter.sample()
	}
	// Measure before bidding: a worker that has not measured bids nothing.
	w.wg.Add(2)
	go w.heartbeat()
	go w.janitor()
	if err := w.internal.RegisterStartEgressTopic(""); err != nil {
		return fmt.Errorf("egress: register StartEgress: %w", err)
	}
	if err := w.internal.RegisterListActiveEgressTopic(""); err != nil {
		return fmt.Errorf("egress: register ListActiveEgress: %w", err)
	}
	w.log.Info().Float64("cpu_capacity", w.cfg.CPUCapacity).Float64("cpu_cost", w.cfg.CPUCost).
		Str("output_dir", w.cfg.OutputDir).Msg("egress worker registered")
	return nil
}

// Close stops bidding, stops every running egress (each file finalised and
// reported complete) and leaves the bus. Idempotent; it waits.
func (w *Worker) Close() error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true
		jobs := make([]*job, 0, len(w.jobs))
		for _, j := range w.jobs {
			jobs = append(jobs, j)
		}
		w.mu.Unlock()
		if w.internal != nil {
			w.internal.DeregisterStartEgressTopic("")
			w.internal.DeregisterListActiveEgressTopic("")
		}
		for _, j := range jobs {
			j.stop("worker shutting down")
		}
		for _, j := range jobs {
			<-j.done
		}
		if w.cancel != nil {
			w.cancel()
		}
		w.wg.Wait()
		if w.internal != nil {
			w.internal.Shutdown()
		}
		if w.handler != nil {
			w.handler.Shutdown()
		}
		if w.io != nil {
			w.io.Close()
		}
	})
	return nil
}

// Running is the number of egresses this worker runs.
func (w *Worker) Running() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.jobs)
}

func (w *Worker) starts() []time.Time {
	out := make([]time.Time, 0, len(w.jobs))
	for _, j := range w.jobs {
		out = append(out, j.accepted)
	}
	return out
}

// StartEgressAffinity is the worker's bid (psrpc): negative when it cannot
// take the request, higher when it already runs egresses.
func (w *Worker) StartEgressAffinity(_ context.Context, _ *rpc.StartEgressRequest) float32 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return affinityFull
	}
	a := w.cap.affinity(w.starts())
	w.log.Debug().Float32("affinity", a).Int("running", len(w.jobs)).Msg("bid")
	return a
}

// StartEgress runs a request the server gave this worker. A request
// roomcast cannot honour is answered with a failed EgressInfo (and
// reported, so egress_ended is sent); one that no longer fits (another
// request took the room since the bid) is refused with ResourceExhausted,
// which the server retries on another worker.
func (w *Worker) StartEgress(_ context.Context, req *rpc.StartEgressRequest) (*livekit.EgressInfo, error) {
	now := time.Now()
	info := newInfo(req, now)
	// The session's components add their own "component".
	log := w.cfg.Log.With().Str("node", w.cfg.NodeID).Str("egress_id", req.EgressId).Str("room", info.RoomName).Logger()
	p, err := buildPlan(req, w.cfg.OutputDir, now)
	if err == nil {
		err = w.resolveTracks(p)
	}
	if err != nil {
		info.Status = livekit.EgressStatus_EGRESS_FAILED
		info.Error = err.Error()
		info.ErrorCode = 400
		info.EndedAt = now.UnixNano()
		log.Warn().Err(err).Msg("request refused")
		// Stored and egress_ended sent before the server's CreateEgress,
		// which then finds it and sends no egress_started.
		w.report(info)
		return info, nil
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, psrpc.NewErrorf(psrpc.Unavailable, "egress worker %s is shutting down", w.cfg.NodeID)
	}
	if _, dup := w.jobs[req.EgressId]; dup {
		w.mu.Unlock()
		return nil, psrpc.NewErrorf(psrpc.AlreadyExists, "egress %s already running", req.EgressId)
	}
	if !w.cap.canAccept(w.starts()) {
		w.mu.Unlock()
		log.Info().Msg("full: request refused (the server retries another worker)")
		return nil, psrpc.NewErrorf(psrpc.ResourceExhausted, "egress worker %s is full", w.cfg.NodeID)
	}
	j := newJob(w, req, p, info, log)
	w.jobs[req.EgressId] = j
	w.mu.Unlock()
	w.lease(j.id)
	if err := w.registerJob(j.id); err != nil {
		log.Error().Err(err).Msg("register egress topics")
	}
	// Stored (and egress_started sent) before the session can report
	// active: the server's own CreateEgress after this answer then finds
	// it and does nothing, whatever the order the two arrive in.
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if _, err := w.io.CreateEgress(cctx, j.snapshot()); err != nil {
		log.Warn().Err(err).Msg("create egress info (the server stores it on our answer)")
	}
	cancel()
	go j.run()
	log.Info().Str("kind", kindName(req)).Int("streams", len(p.streams)).Bool("file", p.file != "").Msg("egress accepted")
	return j.snapshot(), nil
}

// resolveTracks finds a track composite's tracks in the room (the server's
// RoomService): their publishers are the participants recorded, and the
// one whose camera is not the video is heard without a tile. A track that
// is not published, or of the wrong kind, refuses the request.
func (w *Worker) resolveTracks(p *plan) error {
	if p.audioTrack == "" && p.videoTrack == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs := lksdk.NewRoomServiceClient(w.cfg.WSURL, w.cfg.APIKey, w.cfg.APISecret)
	res, err := rs.ListParticipants(ctx, &livekit.ListParticipantsRequest{Room: p.roomName})
	if err != nil {
		return fmt.Errorf("%w: listing the participants of room %s: %v", ErrBadRequest, p.roomName, err)
	}
	find := func(sid string, want livekit.TrackType) (string, *livekit.TrackInfo, error) {
		for _, pi := range res.Participants {
			for _, ti := range pi.Tracks {
				if ti.Sid != sid {
					continue
				}
				if ti.Type != want {
					return "", nil, fmt.Errorf("%w: track %s is %s, not %s", ErrBadRequest, sid, ti.Type, want)
				}
				return pi.Identity, ti, nil
			}
		}
		return "", nil, fmt.Errorf("%w: track %s is not published in room %s", ErrBadRequest, sid, p.roomName)
	}
	var shown string // the identity whose camera tile shows the video track
	if p.videoTrack != "" {
		id, ti, err := find(p.videoTrack, livekit.TrackType_VIDEO)
		if err != nil {
			return err
		}
		p.only = append(p.only, id)
		if ti.Source != livekit.TrackSource_SCREEN_SHARE {
			shown = id
		}
	}
	if p.audioTrack != "" {
		id, _, err := find(p.audioTrack, livekit.TrackType_AUDIO)
		if err != nil {
			return err
		}
		if !slices.Contains(p.only, id) {
			p.only = append(p.only, id)
		}
	}
	for _, id := range p.only {
		if id != shown {
			p.heard = append(p.heard, id)
		}
	}
	return nil
}

func kindName(req *rpc.StartEgressRequest) string {
	switch req.Request.(type) {
	case *rpc.StartEgressRequest_RoomComposite:
		return "room_composite"
	case *rpc.StartEgressRequest_Participant:
		return "participant"
	case *rpc.StartEgressRequest_TrackComposite:
		return "track_composite"
	}
	return fmt.Sprintf("%T", req.Request)
}

func (w *Worker) registerJob(id string) error {
	return errors.Join(w.handler.RegisterStopEgressTopic(id), w.handler.RegisterUpdateStreamTopic(id),
		w.handler.RegisterUpdateEgressTopic(id))
}

func (w *Worker) deregisterJob(id string) {
	w.handler.DeregisterStopEgressTopic(id)
	w.handler.DeregisterUpdateStreamTopic(id)
	w.handler.DeregisterUpdateEgressTopic(id)
}

// jobDone forgets a finished job.
func (w *Worker) jobDone(j *job) {
	w.deregisterJob(j.id)
	w.mu.Lock()
	delete(w.jobs, j.id)
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	w.cfg.Redis.SRem(ctx, jobsKey, j.id)
	w.cfg.Redis.Del(ctx, leaseKey(j.id))
}

func (w *Worker) job(id string) (*job, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	j, ok := w.jobs[id]
	if !ok {
		return nil, psrpc.NewErrorf(psrpc.NotFound, "egress %s not running on this worker", id)
	}
	return j, nil
}

// ListActiveEgress answers the server's listing of running egresses.
func (w *Worker) ListActiveEgress(context.Context, *rpc.ListActiveEgressRequest) (*rpc.ListActiveEgressResponse, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	res := &rpc.ListActiveEgressResponse{}
	for id := range w.jobs {
		res.EgressIds = append(res.EgressIds, id)
	}
	return res, nil
}

// StopEgress ends an egress: the file is finalised, the info reports
// ending now and complete when done.
func (w *Worker) StopEgress(_ context.Context, req *livekit.StopEgressRequest) (*livekit.EgressInfo, error) {
	j, err := w.job(req.EgressId)
	if err != nil {
		return nil, err
	}
	return j.stop("stopped by request"), nil
}

// UpdateStream adds and removes stream URLs of a running egress.
func (w *Worker) UpdateStream(ctx context.Context, req *livekit.UpdateStreamRequest) (*livekit.EgressInfo, error) {
	j, err := w.job(req.EgressId)
	if err != nil {
		return nil, err
	}
	return j.updateStream(ctx, req.AddOutputUrls, req.RemoveOutputUrls)
}

// UpdateEgress changes a running egress in one call: its layout (room
// composites) and stream URLs. A web egress's URL cannot change (roomcast
// runs no web egress).
func (w *Worker) UpdateEgress(ctx context.Context, req *livekit.UpdateEgressRequest) (*livekit.EgressInfo, error) {
	j, err := w.job(req.EgressId)
	if err != nil {
		return nil, err
	}
	if req.Url != "" {
		return nil, psrpc.NewErrorf(psrpc.InvalidArgument, "roomcast: a web egress URL cannot be updated (roomcast runs no web egress)")
	}
	if req.Layout != "" {
		if err := j.setLayout(req.Layout); err != nil {
			return nil, psrpc.NewError(psrpc.InvalidArgument, err)
		}
	}
	if len(req.AddStreamUrls) > 0 || len(req.RemoveStreamUrls) > 0 {
		return j.updateStream(ctx, req.AddStreamUrls, req.RemoveStreamUrls)
	}
	return j.snapshot(), nil
}

// report sends an EgressInfo to the server (IOInfo.UpdateEgress): stored,
// listed, and sent as a webhook when it starts or ends.
func (w *Worker) report(info *livekit.EgressInfo) {
	info = proto.Clone(info).(*livekit.EgressInfo)
	info.UpdatedAt = time.Now().UnixNano()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.io.UpdateEgress(ctx, info); err != nil {
		w.log.Error().Err(err).Str("egress_id", info.EgressId).Str("status", info.Status.String()).Msg("report egress update")
	}
}

// newInfo is the EgressInfo of a request just received: its request is
// kept with every stream key redacted.
func newInfo(req *rpc.StartEgressRequest, now time.Time) *livekit.EgressInfo {
	info := &livekit.EgressInfo{
		EgressId: req.EgressId, RoomId: req.RoomId, Status: livekit.EgressStatus_EGRESS_STARTING,
		SourceType: livekit.EgressSourceType_EGRESS_SOURCE_TYPE_SDK, UpdatedAt: now.UnixNano(),
	}
	switch r := req.Request.(type) {
	case *rpc.StartEgressRequest_RoomComposite:
		rc := proto.Clone(r.RoomComposite).(*livekit.RoomCompositeEgressRequest)
		info.RoomName = rc.RoomName
		redactStreams(rc.StreamOutputs)
		if s, ok := rc.Output.(*livekit.RoomCompositeEgressRequest_Stream); ok {
			redactStreams([]*livekit.StreamOutput{s.Stream})
		}
		info.Request = &livekit.EgressInfo_RoomComposite{RoomComposite: rc}
	case *rpc.StartEgressRequest_Participant:
		pe := proto.Clone(r.Participant).(*livekit.ParticipantEgressRequest)
		info.RoomName = pe.RoomName
		redactStreams(pe.StreamOutputs)
		info.Request = &livekit.EgressInfo_Participant{Participant: pe}
	case *rpc.StartEgressRequest_TrackComposite:
		info.RoomName = r.TrackComposite.RoomName
	case *rpc.StartEgressRequest_Track:
		info.RoomName = r.Track.RoomName
	case *rpc.StartEgressRequest_Web:
		info.SourceType = livekit.EgressSourceType_EGRESS_SOURCE_TYPE_WEB
	}
	if req.RoomName != "" && info.RoomName == "" {
		info.RoomName = req.RoomName
	}
	return info
}

func redactStreams(outs []*livekit.StreamOutput) {
	for _, o := range outs {
		for i, u := range o.Urls {
			o.Urls[i] = redactURL(u)
		}
	}
}
