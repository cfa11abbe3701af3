package egress

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
	"github.com/livekit/psrpc"
	"github.com/rs/zerolog"
	"google.golang.org/protobuf/proto"

	"github.com/roomcast/roomcast/consent"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/session"
)

// job is one accepted egress: a session and the EgressInfo it reports.
type job struct {
	w        *Worker
	id       string
	plan     *plan
	log      zerolog.Logger
	accepted time.Time
	done     chan struct{}

	reports chan *livekit.EgressInfo // in order, to the reporter goroutine; closed under mu

	mu      sync.Mutex
	info    *livekit.EgressInfo
	sess    *session.Session
	stopped bool
	// reportsClosed: the job has ended, nothing more is queued.
	reportsClosed bool
	streams       map[string]*livekit.StreamInfo // by full URL (the info shows it redacted)
	fileInfo      *livekit.FileInfo
	segInfo       *livekit.SegmentsInfo
}

func newJob(w *Worker, req *rpc.StartEgressRequest, p *plan, info *livekit.EgressInfo, log zerolog.Logger) *job {
	j := &job{
		w: w, id: req.EgressId, plan: p, log: log, accepted: time.Now(), done: make(chan struct{}),
		reports: make(chan *livekit.EgressInfo, 32), info: info, streams: map[string]*livekit.StreamInfo{},
	}
	if p.file != "" {
		j.fileInfo = &livekit.FileInfo{Filename: j.relName(p.file), Location: p.file}
		info.FileResults = []*livekit.FileInfo{j.fileInfo}
	}
	if p.hls.dir != "" {
		j.segInfo = &livekit.SegmentsInfo{PlaylistName: j.relName(filepath.Join(p.hls.dir, p.hls.playlistName()))}
		j.segInfo.PlaylistLocation = filepath.Join(p.hls.dir, p.hls.playlistName())
		if p.hls.livePlaylist != "" {
			j.segInfo.LivePlaylistName = j.relName(filepath.Join(p.hls.dir, p.hls.livePlaylist))
			j.segInfo.LivePlaylistLocation = filepath.Join(p.hls.dir, p.hls.livePlaylist)
		}
		info.SegmentResults = []*livekit.SegmentsInfo{j.segInfo}
	}
	for _, u := range p.streams {
		si := &livekit.StreamInfo{Url: redactURL(u), Status: livekit.StreamInfo_ACTIVE}
		j.streams[u] = si
		info.StreamResults = append(info.StreamResults, si)
	}
	return j
}

// relName is the file's name relative to the output directory.
func (j *job) relName(path string) string {
	base, _ := filepath.Abs(j.w.cfg.OutputDir)
	if rel, err := filepath.Rel(base, path); err == nil {
		return rel
	}
	return filepath.Base(path)
}

// snapshot is a copy of the current info (safe to hand to the bus).
func (j *job) snapshot() *livekit.EgressInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.snapshotLocked()
}

func (j *job) snapshotLocked() *livekit.EgressInfo {
	info := proto.Clone(j.info).(*livekit.EgressInfo)
	info.UpdatedAt = time.Now().UnixNano()
	return info
}

// queueReport hands the current info to the reporter without blocking
// (the session's event callback must not block).
func (j *job) queueReport() {
	if j.reportsClosed {
		return
	}
	select {
	case j.reports <- j.snapshotLocked():
	default:
		j.log.Warn().Msg("egress update dropped: reporter behind")
	}
}

func (j *job) reporter(done chan<- struct{}) {
	defer close(done)
	for info := range j.reports {
		j.w.report(info)
	}
}

// run is the job's goroutine: session from join to finalised file, then
// the final report.
func (j *job) run() {
	defer close(j.done)
	defer j.w.jobDone(j)
	repDone := make(chan struct{})
	go j.reporter(repDone)

	p := j.plan
	var streams []session.Stream
	for _, u := range p.streams {
		streams = append(streams, session.Stream{URL: u, InsecureTLS: j.w.cfg.InsecureTLS})
	}
	pol := consent.Policy{Only: p.only, Tracks: p.tracks}
	pipeline := p.pipeline
	if p.hls.dir != "" {
		// The directory is made by the HLS writer; a template may name
		// parents for it.
		if err := os.MkdirAll(filepath.Dir(p.hls.dir), 0o755); err != nil {
			j.log.Warn().Err(err).Msg("creating the segments' parent directory")
		}
	}
	if p.file != "" {
		// A template may name a sub-directory (inside the output directory).
		if err := os.MkdirAll(filepath.Dir(p.file), 0o755); err != nil {
			j.log.Warn().Err(err).Msg("creating the file's directory")
		}
	}
	sess, err := session.New(session.Config{
		Room:         strings.TrimSuffix(j.w.cfg.WSURL, "/") + "/" + p.roomName,
		Credentials:  room.Credentials{APIKey: j.w.cfg.APIKey, APISecret: j.w.cfg.APISecret},
		Identity:     j.id, // LiveKit's UpdateLayout addresses the egress participant by its egress ID
		Name:         "● Recording",
		Consent:      pol,
		Heard:        p.heard,
		Pipeline:     pipeline,
		Outputs:      session.Outputs{MP4: p.file, Streams: streams, HLS: p.hls.session(pipeline.Encoding.KeyframeInterval)},
		EmptyTimeout: j.w.cfg.EmptyTimeout,
		Log:          j.log,
		OnEvent:      j.onEvent,
		OnSelf:       j.onSelf,
	})
	if err == nil {
		j.mu.Lock()
		j.sess = sess
		stopped := j.stopped
		j.mu.Unlock()
		if stopped {
			sess.Stop()
		}
		if err = sess.Start(context.Background()); err == nil {
			err = sess.Wait()
		}
	}
	var st session.Status
	if sess != nil {
		st = sess.Status()
	}
	j.mu.Lock()
	j.reportsClosed = true
	close(j.reports)
	j.mu.Unlock()
	<-repDone
	final := j.finish(st, err)
	j.w.report(final)
	ev := j.log.Info()
	if err != nil {
		ev = j.log.Warn().Err(err)
	}
	ev.Str("status", final.Status.String()).Msg("egress ended")
}

// onEvent follows the session (called from its goroutine; never blocks).
func (j *job) onEvent(e session.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch e.Kind {
	case session.EventStarted:
		now := e.At.UnixNano()
		if j.info.Status == livekit.EgressStatus_EGRESS_STARTING {
			j.info.Status = livekit.EgressStatus_EGRESS_ACTIVE
		}
		j.info.StartedAt = now
		if j.fileInfo != nil {
			j.fileInfo.StartedAt = now
		}
		if j.segInfo != nil {
			j.segInfo.StartedAt = now
		}
		for _, s := range j.streams {
			s.StartedAt = now
		}
		j.queueReport()
	case session.EventDestinationDown, session.EventDestinationUp:
		j.queueReport()
	}
}

// onSelf applies LiveKit's UpdateLayout: the server writes {"layout": …}
// into the egress participant's metadata (called on the room's event
// goroutine).
func (j *job) onSelf(p room.Participant) {
	var md struct {
		Layout *string `json:"layout"`
	}
	if p.Metadata == "" || json.Unmarshal([]byte(p.Metadata), &md) != nil || md.Layout == nil {
		return
	}
	if err := j.setLayout(*md.Layout); err != nil {
		j.log.Warn().Err(err).Msg("layout update refused")
	}
}

// setLayout switches a running composite to one of LiveKit's layouts.
func (j *job) setLayout(name string) error {
	if !j.plan.roomComposite {
		return unsupported("layout updates of a %s egress (only room composites have a layout)", j.plan.kind)
	}
	k, err := layoutKind(name)
	if err != nil {
		return err
	}
	j.mu.Lock()
	sess := j.sess
	j.mu.Unlock()
	if sess == nil {
		return psrpc.NewErrorf(psrpc.FailedPrecondition, "egress %s is not recording yet", j.id)
	}
	if err := sess.SetLayout(k); err != nil {
		return err
	}
	j.log.Info().Str("layout", string(k)).Msg("layout switched")
	return nil
}

// stop asks the egress to end (StopEgress, worker shutdown): the info says
// ending until the file is finalised.
func (j *job) stop(reason string) *livekit.EgressInfo {
	j.mu.Lock()
	sess := j.sess
	first := !j.stopped
	j.stopped = true
	if first && j.info.Status <= livekit.EgressStatus_EGRESS_ACTIVE {
		j.info.Status = livekit.EgressStatus_EGRESS_ENDING
		j.info.Details = reason
		j.queueReport()
	}
	info := j.snapshotLocked()
	j.mu.Unlock()
	if first {
		j.log.Info().Str("reason", reason).Msg("stopping egress")
	}
	if sess != nil {
		sess.Stop()
	}
	return info
}

// updateStream adds and removes stream destinations while recording.
func (j *job) updateStream(ctx context.Context, add, remove []string) (*livekit.EgressInfo, error) {
	j.mu.Lock()
	sess := j.sess
	status := j.info.Status
	j.mu.Unlock()
	if sess == nil || status != livekit.EgressStatus_EGRESS_ACTIVE {
		return nil, psrpc.NewErrorf(psrpc.FailedPrecondition, "egress %s is %s: streams change only while active", j.id, status)
	}
	for _, u := range add {
		if err := checkStreamURL(u); err != nil {
			return nil, psrpc.NewError(psrpc.InvalidArgument, err)
		}
	}
	var errs []error
	for _, u := range add {
		if err := sess.AddStream(ctx, session.Stream{URL: u, InsecureTLS: j.w.cfg.InsecureTLS}); err != nil {
			j.log.Warn().Err(err).Str("url", redactURL(u)).Msg("adding stream failed")
			errs = append(errs, err)
			continue
		}
		now := time.Now().UnixNano()
		j.mu.Lock()
		si := &livekit.StreamInfo{Url: redactURL(u), Status: livekit.StreamInfo_ACTIVE, StartedAt: now}
		j.streams[u] = si
		j.info.StreamResults = append(j.info.StreamResults, si)
		j.mu.Unlock()
		j.log.Info().Str("url", redactURL(u)).Msg("stream added")
	}
	for _, u := range remove {
		if err := sess.RemoveStream(u); err != nil {
			errs = append(errs, err)
			continue
		}
		now := time.Now().UnixNano()
		j.mu.Lock()
		if si := j.streams[u]; si != nil {
			si.Status, si.EndedAt = livekit.StreamInfo_FINISHED, now
			si.Duration = now - si.StartedAt
			delete(j.streams, u)
		}
		j.mu.Unlock()
		j.log.Info().Str("url", redactURL(u)).Msg("stream removed")
	}
	j.mu.Lock()
	j.queueReport()
	info := j.snapshotLocked()
	j.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return info, psrpc.NewError(psrpc.InvalidArgument, err)
	}
	return info, nil
}

// finish writes the results into the info: complete, or failed with the
// session's error.
func (j *job) finish(st session.Status, err error) *livekit.EgressInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now().UnixNano()
	info := j.info
	info.EndedAt = now
	if info.StartedAt == 0 && !st.Started.IsZero() {
		info.StartedAt = st.Started.UnixNano()
	}
	if j.fileInfo != nil {
		f := j.fileInfo
		f.EndedAt = now
		if st.Recording != "" {
			f.Duration = st.Elapsed.Nanoseconds()
			if fi, serr := os.Stat(st.Recording); serr == nil {
				f.Size = fi.Size()
			}
		}
	}
	if g := j.segInfo; g != nil {
		g.EndedAt = now
		g.SegmentCount, g.Duration, g.Size = segmentsWritten(g.PlaylistLocation)
	}
	for _, s := range j.streams {
		s.EndedAt = now
		if s.StartedAt != 0 {
			s.Duration = now - s.StartedAt
		}
		s.Status = livekit.StreamInfo_FINISHED
		if err != nil {
			s.Status, s.Error = livekit.StreamInfo_FAILED, err.Error()
		}
	}
	// The health of each stream output tells which ones failed on their own.
	for _, h := range st.Outputs {
		if h.Critical || h.State != "failed" {
			continue
		}
		for _, s := range j.streams {
			if "rtmp "+s.Url == h.Name && h.Err != nil {
				s.Status, s.Error = livekit.StreamInfo_FAILED, h.Err.Error()
			}
		}
	}
	if err != nil {
		info.Status = livekit.EgressStatus_EGRESS_FAILED
		info.Error = err.Error()
		info.ErrorCode = 500
		if errors.Is(err, session.ErrRoom) {
			info.ErrorCode = 503
		}
	} else {
		info.Status = livekit.EgressStatus_EGRESS_COMPLETE
		if st.Recording == "" && j.fileInfo != nil {
			// Stopped before anything was recorded: no file was made.
			info.FileResults = nil
		}
		if j.segInfo != nil && j.segInfo.SegmentCount == 0 {
			info.SegmentResults = nil
		}
	}
	return j.snapshotLocked()
}

// segmentsWritten reads the final playlist: how many segments it lists,
// their media time (EXTINF) and their bytes on disk.
func segmentsWritten(playlist string) (count, dur, size int64) {
	b, err := os.ReadFile(playlist)
	if err != nil {
		return 0, 0, 0
	}
	dir := filepath.Dir(playlist)
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				dur += int64(f * float64(time.Second))
			}
		case l != "" && !strings.HasPrefix(l, "#"):
			count++
			if fi, err := os.Stat(filepath.Join(dir, filepath.Base(l))); err == nil {
				size += fi.Size()
			}
		}
	}
	return count, dur, size
}
