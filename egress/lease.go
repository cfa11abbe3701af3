package egress

import (
	"context"
	"fmt"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"
)

// Redis keys of roomcast's workers (beside livekit-server's own): every
// running egress is in jobsKey and holds a lease that its worker renews
// every second; a lease that expires means the worker died (kill -9, power
// cut, lost network), and the first surviving worker to notice reports the
// egress failed — the server itself never notices a dead worker.
const (
	jobsKey     = "roomcast:egress:jobs"
	leasePrefix = "roomcast:egress:lease:"
)

func leaseKey(id string) string { return leasePrefix + id }

// lease takes or renews an egress's lease (before it is listed in
// jobsKey, so a janitor never sees a listed egress without one).
func (w *Worker) lease(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := w.cfg.Redis.Set(ctx, leaseKey(id), w.cfg.NodeID, w.cfg.LeaseTTL).Err(); err != nil {
		w.log.Warn().Err(err).Str("egress_id", id).Msg("renew lease")
		return
	}
	w.cfg.Redis.SAdd(ctx, jobsKey, id)
}

// heartbeat renews the leases of the running egresses and samples the CPU
// every second.
func (w *Worker) heartbeat() {
	defer w.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		if w.cap.fixed == 0 {
			w.cap.meter.sample()
		}
		w.mu.Lock()
		ids := make([]string, 0, len(w.jobs))
		for id := range w.jobs {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		for _, id := range ids {
			w.lease(id)
		}
	}
}

// janitor reports the egresses of dead workers failed.
func (w *Worker) janitor() {
	defer w.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		w.sweep()
	}
}

func (w *Worker) sweep() {
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	ids, err := w.cfg.Redis.SMembers(ctx, jobsKey).Result()
	if err != nil {
		return
	}
	for _, id := range ids {
		w.mu.Lock()
		_, mine := w.jobs[id]
		w.mu.Unlock()
		if mine {
			continue // alive: this very process runs it
		}
		n, err := w.cfg.Redis.Exists(ctx, leaseKey(id)).Result()
		if err != nil || n > 0 {
			continue
		}
		// Only the worker whose SREM removes it reports it.
		if removed, err := w.cfg.Redis.SRem(ctx, jobsKey, id).Result(); err != nil || removed == 0 {
			continue
		}
		info, err := w.io.GetEgress(ctx, &rpc.GetEgressRequest{EgressId: id})
		if err != nil {
			w.log.Warn().Err(err).Str("egress_id", id).Msg("lost egress: cannot load its info")
			continue
		}
		if info.Status >= livekit.EgressStatus_EGRESS_COMPLETE {
			continue
		}
		now := time.Now()
		info.Status = livekit.EgressStatus_EGRESS_FAILED
		info.Error = fmt.Sprintf("egress worker lost: no heartbeat for %v (its file holds what was recorded until then; `roomcast recover` finalises it)", w.cfg.LeaseTTL)
		info.ErrorCode = 503
		info.EndedAt = now.UnixNano()
		for _, f := range info.FileResults {
			if f.EndedAt == 0 {
				f.EndedAt = now.UnixNano()
			}
		}
		for _, s := range info.StreamResults {
			if s.Status == livekit.StreamInfo_ACTIVE {
				s.Status, s.Error, s.EndedAt = livekit.StreamInfo_FAILED, "egress worker lost", now.UnixNano()
			}
		}
		w.log.Warn().Str("egress_id", id).Str("room", info.RoomName).Msg("egress of a lost worker reported failed")
		w.report(info)
	}
}
