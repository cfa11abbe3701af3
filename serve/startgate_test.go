package serve

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// gateRunner starts broadcasts that send their first output frame
// `warmup` after Start and 30 frames a second from then on, and records
// when each Start was called.
type gateRunner struct {
	warmup time.Duration
	frames bool // false: a room that never composes (no speaker yet)
	mu     sync.Mutex
	starts []time.Time
}

func (r *gateRunner) Start(ctx context.Context, spec Spec, log zerolog.Logger) (Broadcast, error) {
	now := time.Now()
	r.mu.Lock()
	r.starts = append(r.starts, now)
	r.mu.Unlock()
	return &gateBroadcast{r: r, at: now, done: make(chan struct{})}, nil
}

type gateBroadcast struct {
	r    *gateRunner
	at   time.Time
	once sync.Once
	done chan struct{}
	n    atomic.Int64
}

func (b *gateBroadcast) Stop()       { b.once.Do(func() { close(b.done) }) }
func (b *gateBroadcast) Wait() error { <-b.done; return nil }
func (b *gateBroadcast) Status() Status {
	st := Status{State: "recording"}
	if since := time.Since(b.at) - b.r.warmup; b.r.frames && since > 0 {
		st.FramesOut = int64(since.Seconds() * 30)
	}
	return st
}

// TestStartsTakeTurns: broadcasts asked for at the same instant start one
// after the other, each once the previous one has sent its first second
// of output (or after startSettleMax when it composes nothing), so a
// start-up's burst of work never overlaps another's.
func TestStartsTakeTurns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		r        *gateRunner
		min, max time.Duration // gap between consecutive starts
	}{
		{"composing", &gateRunner{warmup: 200 * time.Millisecond, frames: true}, 1200 * time.Millisecond, 1200*time.Millisecond + 500*time.Millisecond},
		{"waiting for a speaker", &gateRunner{}, startSettleMax, startSettleMax + 500*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) { c.Runner = tc.r; c.CPUCapacity = -1 })
			c := e.api()
			var wg sync.WaitGroup
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:", "size": "320x180"}, nil); code != http.StatusCreated {
						t.Errorf("POST broadcast: %d", code)
					}
				}()
			}
			wg.Wait()
			tc.r.mu.Lock()
			starts := append([]time.Time(nil), tc.r.starts...)
			tc.r.mu.Unlock()
			if len(starts) != 3 {
				t.Fatalf("%d starts, want 3", len(starts))
			}
			for i := 1; i < len(starts); i++ {
				if gap := starts[i].Sub(starts[i-1]); gap < tc.min || gap > tc.max {
					t.Errorf("start %d came %v after start %d, want %v to %v", i+1, gap, i, tc.min, tc.max)
				}
			}
		})
	}
}
