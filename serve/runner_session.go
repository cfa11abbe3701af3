package serve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/rtmp"
	"github.com/roomcast/roomcast/session"
)

// SessionRunner runs broadcasts on the session core (package session):
// every room kind it supports (demo:, LiveKit, ...).
type SessionRunner struct {
	// Credentials returns the credentials for a room URL (for example the
	// LiveKit API key and secret from the server's environment). Nil: none.
	Credentials func(roomURL string) room.Credentials
	// InsecureTLS accepts self-signed rtmps certificates (tests only).
	InsecureTLS bool
	// EmptyTimeout stops a broadcast whose room stayed empty this long
	// (0: never).
	EmptyTimeout time.Duration
	// NoAnnounce sends no start and stop announcements into the rooms
	// (session.Announce.Off); by default every broadcast announces itself.
	NoAnnounce bool
}

// lateAllowance is how far media time may trail wall time before the
// frames beyond it count as dropped: a live output would have lost them.
const lateAllowance = 2 * time.Second

// Start implements Runner.
func (r SessionRunner) Start(ctx context.Context, spec Spec, log zerolog.Logger) (Broadcast, error) {
	kind, err := layout.ParseKind(spec.Layout)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	labels, err := compositor.ParseLabelStyle(spec.Labels)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpec, err)
	}
	pc := recorder.Config{
		Compositor: compositor.Config{Width: spec.Width, Height: spec.Height, FPS: 30, Layout: kind, Labels: labels},
		Encoding:   recorder.Encoding{Preset: "record", X264Preset: "veryfast"},
	}
	if len(spec.Destinations) > 0 {
		// One encode fits both: the stream preset's CBR, profile and GOP.
		p, _ := rtmp.PresetByName("generic")
		pc.Encoding.Preset = "stream"
		pc.Encoding.VideoBitrate = p.VideoBitrate(spec.Height, 30)
		pc.Encoding.Profile = p.Profile
		if p.KeyframeInterval > 0 {
			pc.Encoding.KeyframeInterval = p.KeyframeInterval
		}
	}
	cfg := session.Config{Room: spec.Room, Pipeline: pc, Duration: spec.Duration, Log: log,
		EmptyTimeout: r.EmptyTimeout, Outputs: session.Outputs{MP4: spec.Output, Encrypt: spec.Encrypt},
		Announce: session.Announce{Off: r.NoAnnounce}}
	if spec.HLSDir != "" {
		cfg.Outputs.HLS = session.HLS{Dir: spec.HLSDir, WindowOnly: !spec.HLSReplay}
	}
	if r.Credentials != nil {
		cfg.Credentials = r.Credentials(spec.Room)
	}
	for _, d := range spec.Destinations {
		cfg.Outputs.Streams = append(cfg.Outputs.Streams, session.Stream{URL: d.URL, InsecureTLS: r.InsecureTLS})
	}
	s, err := session.New(cfg)
	if err != nil {
		return nil, sessionErr(err)
	}
	if err := s.Start(ctx); err != nil {
		return nil, sessionErr(err)
	}
	return &sessionBroadcast{s: s, dests: spec.Destinations}, nil
}

// sessionErr maps the session's error classes to ours.
func sessionErr(err error) error {
	switch {
	case errors.Is(err, session.ErrConfig):
		return fmt.Errorf("%w: %w", ErrSpec, err)
	case errors.Is(err, session.ErrRoom), errors.Is(err, session.ErrNoSpeaker):
		return fmt.Errorf("%w: %w", ErrRoom, err)
	case errors.Is(err, session.ErrStream):
		return fmt.Errorf("%w: %w", ErrStream, err)
	}
	return err
}

type sessionBroadcast struct {
	s     *session.Session
	dests []Destination
}

func (b *sessionBroadcast) Stop() { b.s.Stop() }

func (b *sessionBroadcast) Wait() error { return sessionErr(b.s.Wait()) }

func (b *sessionBroadcast) Status() Status {
	st := b.s.Status()
	out := Status{State: string(st.State), Elapsed: st.Elapsed, Speakers: st.Speakers, SpeakerNames: st.SpeakerNames, FramesOut: st.FramesOut,
		Degraded: st.FramesRepeated + st.FramesSkipped, X264Preset: st.X264Preset, PresetStepDowns: st.PresetStepDowns,
		Network: NetworkStatus{Packets: st.Network.Packets, Lost: st.Network.Lost, Late: st.Network.Late, Repaired: st.Network.Repaired,
			NACKed: st.Network.NACKed, Retransmissions: st.Network.Retransmissions, KeyframeRequests: st.Network.KeyframeRequests}}
	if !st.Started.IsZero() && st.State == session.StateRecording {
		if lag := time.Since(st.Started) - st.Elapsed - lateAllowance; lag > 0 {
			out.Dropped = int64(lag.Seconds() * 30)
		}
	}
	j := 0
	for _, h := range st.Outputs {
		out.BytesWritten += h.Bytes
		if h.Critical || h.Name == "hls" {
			// The recording, and the watch page's HLS (it never drops):
			// not destinations.
			continue
		}
		out.Dropped += h.Dropped
		name := "stream"
		if j < len(b.dests) {
			name = b.dests[j].Name
		}
		j++
		// Destination names never carry the key: use ours, in order.
		out.Destinations = append(out.Destinations, DestinationStatus{Name: name, State: h.State,
			Reconnects: h.Reconnects, Dropped: uint64(h.Dropped), Message: scrub(destMessage(name, h.State, h.Err), b.dests)})
	}
	return out
}

// destMessage words a destination's trouble for the host's page.
func destMessage(name, state string, err error) string {
	why := ""
	if err != nil {
		why = " (" + err.Error() + ")"
	}
	switch state {
	case "reconnecting":
		return "Lost the connection to " + name + why + "; reconnecting. The recording and the other destinations continue."
	case "failed":
		return name + " gave up after repeated failures" + why + ": check that the server is up and the stream key is valid."
	}
	return ""
}
