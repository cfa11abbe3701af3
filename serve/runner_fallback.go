package serve

// FallbackRunner is a thin adapter over the existing recorder + room/synth +
// rtmp path, used until the session core (package session) lands; delete
// this file then and adapt session.Session to Runner instead.

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/mp4"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room/synth"
	"github.com/roomcast/roomcast/rtmp"
)

// FallbackRunner runs demo: rooms (and RTMP destinations) on the recorder.
type FallbackRunner struct {
	// InsecureTLS accepts self-signed rtmps certificates (tests only).
	InsecureTLS bool
}

// demoOptions parses "demo:" and "demo:?speakers=3&busy=1".
func demoOptions(room string) (synth.Config, error) {
	cfg := synth.Config{Speakers: 4}
	rest, ok := strings.CutPrefix(room, "demo:")
	if !ok {
		return cfg, fmt.Errorf("%w: %q: this server runs demo: rooms only (the session core has not landed)", ErrSpec, room)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(rest, "?"))
	if err != nil {
		return cfg, fmt.Errorf("%w: demo options %q: %v", ErrSpec, rest, err)
	}
	if s := q.Get("speakers"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 16 {
			return cfg, fmt.Errorf("%w: demo speakers %q (want 1 to 16)", ErrSpec, s)
		}
		cfg.Speakers = n
	}
	cfg.Busy = q.Get("busy") == "1" || q.Get("busy") == "true"
	return cfg, nil
}

// Start implements Runner.
func (fr FallbackRunner) Start(ctx context.Context, spec Spec, log zerolog.Logger) (Broadcast, error) {
	scfg, err := demoOptions(spec.Room)
	if err != nil {
		return nil, err
	}
	kind, err := layout.ParseKind(spec.Layout)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	cfg := recorder.Config{
		Compositor: compositor.Config{Width: spec.Width, Height: spec.Height, FPS: 30, Layout: kind, Duration: spec.Duration},
		Log:        log,
		Encoding:   recorder.Encoding{Preset: "record", X264Preset: "veryfast"},
	}
	if len(spec.Destinations) > 0 {
		p, _ := rtmp.PresetByName("generic")
		cfg.Encoding.Preset = "stream"
		cfg.Encoding.VideoBitrate = p.VideoBitrate(spec.Height, 30)
		cfg.Encoding.Profile = p.Profile
		if p.KeyframeInterval > 0 {
			cfg.Encoding.KeyframeInterval = p.KeyframeInterval
		}
	}
	rec, err := recorder.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	b := &fallbackBroadcast{rec: rec, stop: make(chan struct{}), done: make(chan struct{}), fps: 30}
	b.state.Store("starting")
	if spec.Output != "" {
		w, err := mp4.Create(spec.Output, rec.Info(), mp4.Options{Log: log})
		if err != nil {
			rec.Close()
			return nil, err
		}
		_ = os.Chmod(spec.Output, 0o600)
		b.mp4 = w
		rec.AddOutput("mp4", &lateCounter{Output: w, b: b}, true)
	}
	var pubs []*rtmp.Publisher
	for _, d := range spec.Destinations {
		dest, err := rtmp.ResolveURL(d.URL, rtmp.KeyLookup{})
		if err != nil {
			rec.Close()
			return nil, fmt.Errorf("%w: destination %s: %v", ErrStream, d.Name, err)
		}
		p := &rtmp.Publisher{Dest: dest, Info: rec.Info(), InsecureSkipVerify: fr.InsecureTLS, Logger: log,
			RequestKeyframe: rec.RequestKeyframe}
		pubs = append(pubs, p)
		b.dests = append(b.dests, fallbackDest{name: d.Name, p: p})
	}
	if len(pubs) > 0 {
		f := rtmp.NewFanout(pubs...)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := f.Start(sctx)
		cancel()
		if err != nil {
			f.Close()
			rec.Close()
			if b.mp4 != nil {
				_ = os.Remove(spec.Output)
			}
			return nil, fmt.Errorf("%w: %v", ErrStream, err)
		}
		for i, p := range pubs {
			rec.AddOutput("rtmp "+spec.Destinations[i].Name, pubOutput{p}, false)
		}
	}
	scfg.Duration = spec.Duration
	room, err := synth.Start(rec.Compositor(), scfg)
	if err != nil {
		rec.Close()
		return nil, fmt.Errorf("%w: %v", ErrRoom, err)
	}
	for i := 0; i < scfg.Speakers; i++ {
		b.speakers = append(b.speakers, synth.Names[i%len(synth.Names)])
	}
	b.start = time.Now()
	rec.Start()
	b.state.Store("live")
	go func() {
		defer close(b.done)
		select {
		case <-rec.Done():
		case <-b.stop:
		}
		b.state.Store("stopping")
		b.err = rec.Close()
		room.Close()
		if spec.Output != "" {
			_ = os.Chmod(spec.Output, 0o600)
		}
		if b.err != nil {
			b.state.Store("failed")
		} else {
			b.state.Store("done")
		}
	}()
	return b, nil
}

type fallbackDest struct {
	name string
	p    *rtmp.Publisher
}

type fallbackBroadcast struct {
	rec      *recorder.Recorder
	mp4      *mp4.Writer
	dests    []fallbackDest
	speakers []string
	start    time.Time
	fps      int
	late     atomic.Int64
	state    atomic.Value
	once     sync.Once
	stop     chan struct{}
	done     chan struct{}
	err      error
}

func (b *fallbackBroadcast) Stop()       { b.once.Do(func() { close(b.stop) }) }
func (b *fallbackBroadcast) Wait() error { <-b.done; return b.err }

func (b *fallbackBroadcast) Status() Status {
	st := b.rec.Compositor().Stats()
	s := Status{State: b.state.Load().(string), Elapsed: b.rec.Elapsed(), Speakers: b.speakers,
		FramesOut: st.VideoFrames, Dropped: b.late.Load()}
	if b.mp4 != nil {
		s.BytesWritten = b.mp4.Bytes()
	}
	for _, d := range b.dests {
		ps := d.p.Stats()
		state := ps.State.String()
		s.Destinations = append(s.Destinations, DestinationStatus{Name: d.name, State: state,
			Reconnects: max(ps.Connects-1, 0), Dropped: ps.DroppedVideo})
		s.BytesWritten += int64(ps.Bytes)
		s.Dropped += int64(ps.DroppedVideo)
	}
	return s
}

// lateThreshold: a video packet reaching the recording this much after its
// real-time due moment (beyond the encoder's lookahead) counts as dropped:
// a live output would have lost it.
const lateThreshold = 2 * time.Second

// lateCounter counts video packets that reach the output too late to be
// live.
type lateCounter struct {
	recorder.Output
	b *fallbackBroadcast
}

func (l *lateCounter) WritePacket(p media.Packet) error {
	if p.Kind == media.KindVideo && time.Since(l.b.start) > p.DTS+lateThreshold {
		l.b.late.Add(1)
	}
	return l.Output.WritePacket(p)
}

// pubOutput adapts a Publisher to recorder.Output without ever blocking.
type pubOutput struct{ p *rtmp.Publisher }

func (s pubOutput) WritePacket(pkt media.Packet) error {
	select {
	case <-s.p.Done():
		if err := s.p.Err(); err != nil {
			return err
		}
		return rtmp.ErrClosed
	default:
	}
	s.p.WritePacket(pkt)
	return nil
}

func (s pubOutput) Close() error { return s.p.Close() }
