package rtmp

import (
	"context"
	"errors"
	"sync"

	"github.com/roomcast/roomcast/media"
)

// Fanout feeds one encoded stream to several Publishers. Each destination
// has its own queue, goroutine and reconnection, so a slow, failing or
// rejected destination never delays the others or the caller.
type Fanout struct {
	pubs []*Publisher
}

// NewFanout groups publishers that have not been started yet.
func NewFanout(pubs ...*Publisher) *Fanout {
	return &Fanout{pubs: pubs}
}

// Publishers returns the destinations, in the order given.
func (f *Fanout) Publishers() []*Publisher { return f.pubs }

// Start starts every destination concurrently and returns how many are
// publishing. err joins the failures (each names its redacted
// destination). Destinations that started keep running even when err is
// not nil: the caller decides whether a partial start is acceptable, and
// Close stops them all.
func (f *Fanout) Start(ctx context.Context) (started int, err error) {
	errs := make([]error, len(f.pubs))
	var wg sync.WaitGroup
	for i, p := range f.pubs {
		wg.Go(func() { errs[i] = p.Start(ctx) })
	}
	wg.Wait()
	for _, e := range errs {
		if e == nil {
			started++
		}
	}
	return started, errors.Join(errs...)
}

// WritePacket hands the packet to every destination; it never blocks.
// Publishers share p.Data and never modify it.
func (f *Fanout) WritePacket(p media.Packet) {
	for _, pub := range f.pubs {
		pub.WritePacket(p)
	}
}

// Stats returns each destination's counters, in order.
func (f *Fanout) Stats() []Stats {
	s := make([]Stats, len(f.pubs))
	for i, p := range f.pubs {
		s[i] = p.Stats()
	}
	return s
}

// Close closes every destination concurrently and joins their errors.
func (f *Fanout) Close() error {
	errs := make([]error, len(f.pubs))
	var wg sync.WaitGroup
	for i, p := range f.pubs {
		wg.Go(func() { errs[i] = p.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}
