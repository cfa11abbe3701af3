package session

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"filippo.io/age"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/hls"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/mp4"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/rtmp"
)

// Outputs are where a session's broadcast goes. They are created when the
// recording starts (after WaitFirstSpeaker): a failed join or a speaker who
// never comes leaves no empty file and holds no ingest open.
type Outputs struct {
	// MP4 is the recording's path (made absolute); empty for none. It is
	// the critical output: its failure stops the session.
	MP4 string
	// Overwrite allows replacing an existing file at MP4.
	Overwrite bool
	// Encrypt, when not empty, encrypts the MP4 as it is written to these
	// age recipients (mp4.Options.Encrypt). It defaults to none.
	Encrypt []age.Recipient
	// Streams are RTMP(S) destinations; each fails alone and reconnects.
	Streams []Stream
	// StreamStartTimeout bounds starting the streams (every destination
	// must accept the publish). It defaults to 30 s.
	StreamStartTimeout time.Duration
	// HLS is the self-hosted viewing output; a zero Dir for none.
	HLS HLS

	// names maps each stream URL to its output's name (filled by attach
	// when set: the session's, for RemoveStream).
	names map[string]string
}

// HLS writes HTTP Live Streaming (package hls) into a directory that
// hls/watch serves. It is critical only when there is no MP4 (then it is
// the recording); Overwrite applies to it as to the MP4.
type HLS struct {
	// Dir receives index.m3u8 and the segments; created if missing.
	Dir string
	// Window is the live playlist's length in segments (hls default 6).
	Window int
	// WindowOnly deletes segments that left the window (no replay).
	WindowOnly bool
	// SegmentDuration defaults to hls.DefaultSegmentDuration (2 s).
	SegmentDuration time.Duration
	// Playlist and LivePlaylist name the playlists (hls.Options); they
	// default to index.m3u8 and none.
	Playlist, LivePlaylist string
	// KeyframeInterval is the encoder's, to refuse segments shorter than
	// it (0: not checked).
	KeyframeInterval time.Duration
}

// check refuses settings that cannot work, before anything is joined.
func (h HLS) check() error {
	if h.Dir == "" {
		return nil
	}
	if h.SegmentDuration > 0 && h.KeyframeInterval > 0 && h.SegmentDuration < h.KeyframeInterval {
		return fmt.Errorf("%w: HLS segments of %v are shorter than the keyframe interval %v (segments start at keyframes)",
			ErrConfig, h.SegmentDuration, h.KeyframeInterval)
	}
	if h.Window < 0 || h.SegmentDuration < 0 {
		return fmt.Errorf("%w: negative HLS window or segment duration", ErrConfig)
	}
	return nil
}

// Stream is one RTMP(S) destination.
type Stream struct {
	// URL is rtmp(s)://host/app/key; the key may come from the environment
	// or a file: rtmp://host/live/${ENV_VAR}, ${file:/path/to/key}.
	URL string
	// InsecureTLS accepts any rtmps certificate (self-signed test servers).
	InsecureTLS bool
	// GiveUpAfter stops reconnecting after an outage this long. It defaults
	// to rtmp's (10 minutes).
	GiveUpAfter time.Duration
}

// resolve parses every destination (keys from the environment or
// files) without connecting: a bad URL is an ErrConfig before the session
// joins anything.
func (o Outputs) resolve() ([]*rtmp.Destination, error) {
	if err := o.HLS.check(); err != nil {
		return nil, err
	}
	var out []*rtmp.Destination
	for _, s := range o.Streams {
		d, err := rtmp.ResolveURL(s.URL, rtmp.KeyLookup{})
		if err != nil {
			return nil, classify(ErrConfig, fmt.Errorf("--stream: %v", err))
		}
		out = append(out, d)
	}
	return out, nil
}

// Attach resolves and creates the outputs and attaches them to rec (for
// callers that run a Recorder without a Session: the demo and compose
// commands). Errors wrap ErrConfig, ErrOutput or ErrStream.
func (o Outputs) Attach(ctx context.Context, rec *recorder.Recorder, log zerolog.Logger) (mp4Path string, err error) {
	dests, err := o.resolve()
	if err != nil {
		return "", err
	}
	return o.attach(ctx, rec, dests, log)
}

// attach creates the outputs and attaches them to rec: the recording first,
// then the streams, which must all start (a rejected key is an ErrStream
// before the event, not a surprise during it).
func (o Outputs) attach(ctx context.Context, rec *recorder.Recorder, dests []*rtmp.Destination, log zerolog.Logger) (mp4Path string, err error) {
	if o.MP4 != "" {
		path := o.MP4
		if abs, aerr := filepath.Abs(path); aerr == nil {
			path = abs
		}
		// A crashed earlier run's torn file at this path is recovered and
		// moved aside first (even with Overwrite: a torn file is a
		// recording nobody finished, never one meant to be replaced).
		if _, aerr := mp4.SetAsideTorn(path, log); aerr != nil {
			return "", classify(ErrOutput, aerr)
		}
		w, cerr := mp4.Create(path, rec.Info(), mp4.Options{Log: log, Overwrite: o.Overwrite, Encrypt: o.Encrypt})
		if cerr != nil {
			return "", classify(ErrOutput, cerr)
		}
		rec.AddOutputWith("mp4", w, recorder.OutputOptions{Critical: true, Policy: recorder.PolicyRecord})
		mp4Path = path
	}
	if o.HLS.Dir != "" {
		dir := o.HLS.Dir
		if abs, aerr := filepath.Abs(dir); aerr == nil {
			dir = abs
		}
		w, cerr := hls.Create(dir, rec.Info(), hls.Options{SegmentDuration: o.HLS.SegmentDuration,
			Window: o.HLS.Window, WindowOnly: o.HLS.WindowOnly, Overwrite: o.Overwrite, Log: log,
			Playlist: o.HLS.Playlist, LivePlaylist: o.HLS.LivePlaylist})
		if cerr != nil {
			return mp4Path, classify(ErrOutput, cerr)
		}
		// Never drops (a gap would break the replay); the writer is fast
		// (a file every 2 s), so its queue stays short.
		rec.AddOutputWith("hls", w, recorder.OutputOptions{Critical: o.MP4 == "", Policy: recorder.PolicyRecord})
	}
	if len(dests) == 0 {
		return mp4Path, nil
	}
	var pubs []*rtmp.Publisher
	for i, d := range dests {
		pubs = append(pubs, &rtmp.Publisher{
			Dest: d, Info: rec.Info(), InsecureSkipVerify: o.Streams[i].InsecureTLS, Logger: log,
			Backoff: rtmp.Backoff{GiveUpAfter: o.Streams[i].GiveUpAfter}, RequestKeyframe: rec.RequestKeyframe,
		})
	}
	f := rtmp.NewFanout(pubs...)
	t := o.StreamStartTimeout
	if t <= 0 {
		t = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	if _, serr := f.Start(sctx); serr != nil {
		f.Close()
		return mp4Path, classify(ErrStream, serr)
	}
	for i, p := range pubs {
		name := uniqueName(rec, "rtmp "+p.Dest.String())
		rec.AddOutputWith(name, streamOutput{p}, recorder.OutputOptions{Policy: recorder.PolicyStream})
		if o.names != nil {
			o.names[o.Streams[i].URL] = name
		}
	}
	return mp4Path, nil
}

// uniqueName is base, or base with " #N" when an output of that name is
// attached already (two keys on one ingest read the same once redacted).
func uniqueName(rec *recorder.Recorder, base string) string {
	used := map[string]bool{}
	for _, h := range rec.Health() {
		used[h.Name] = true
	}
	name := base
	for n := 2; used[name]; n++ {
		name = fmt.Sprintf("%s #%d", base, n)
	}
	return name
}

// streamOutput adapts a Publisher to recorder.Output: writes never block
// (the Publisher has its own queue); once the Publisher has given up the
// recorder drops it.
type streamOutput struct{ p *rtmp.Publisher }

func (s streamOutput) WritePacket(pkt media.Packet) error {
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

func (s streamOutput) Close() error { return s.p.Close() }

// Report is the publisher's own view: state, reconnections, its drops.
func (s streamOutput) Report() recorder.Report {
	st := s.p.Stats()
	return recorder.Report{
		State: st.State.String(), Reconnects: max(st.Connects-1, 0),
		Dropped: int64(st.DroppedVideo + st.DroppedAudio), Bytes: int64(st.Bytes), LastError: st.LastError,
	}
}
