package session

import (
	"context"
	"fmt"
	"time"

	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/rtmp"
)

// AddStream starts one more RTMP(S) destination while the session records
// (LiveKit's UpdateStream): it must accept the publish within the
// outputs' StreamStartTimeout (an ErrStream otherwise, the broadcast
// untouched), then gets the broadcast from the next keyframe. The URL is
// taken as it is: no ${…} substitution (it may come from an API caller).
func (s *Session) AddStream(ctx context.Context, st Stream) error {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	s.mu.Lock()
	rec, state := s.rec, s.state
	_, dup := s.streamNames[st.URL]
	s.mu.Unlock()
	if state != StateRecording || rec == nil {
		return fmt.Errorf("%w: a stream can be added only while recording (state %s)", ErrConfig, state)
	}
	if dup {
		return fmt.Errorf("%w: that stream URL is already a destination", ErrConfig)
	}
	d, err := rtmp.ParseURL(st.URL)
	if err != nil {
		return classify(ErrConfig, err)
	}
	p := &rtmp.Publisher{
		Dest: d, Info: rec.Info(), InsecureSkipVerify: st.InsecureTLS, Logger: s.log,
		Backoff: rtmp.Backoff{GiveUpAfter: st.GiveUpAfter}, RequestKeyframe: rec.RequestKeyframe,
	}
	f := rtmp.NewFanout(p)
	t := s.cfg.Outputs.StreamStartTimeout
	if t <= 0 {
		t = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, t)
	defer cancel()
	if _, err := f.Start(sctx); err != nil {
		f.Close()
		return classify(ErrStream, err)
	}
	name := uniqueName(rec, "rtmp "+d.String())
	rec.AddOutputWith(name, streamOutput{p}, recorder.OutputOptions{Policy: recorder.PolicyStream})
	rec.RequestKeyframe()
	s.mu.Lock()
	s.streamNames[st.URL] = name
	s.mu.Unlock()
	s.log.Info().Str("output", name).Msg("stream added")
	return nil
}

// RemoveStream stops sending to a destination (its queue is written out
// first); the recording and the other streams go on. An URL that is not
// a destination is an ErrConfig.
func (s *Session) RemoveStream(url string) error {
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	s.mu.Lock()
	rec := s.rec
	name, ok := s.streamNames[url]
	s.mu.Unlock()
	if !ok || rec == nil {
		return fmt.Errorf("%w: that stream URL is not a destination", ErrConfig)
	}
	rec.RemoveOutput(name)
	s.mu.Lock()
	delete(s.streamNames, url)
	s.mu.Unlock()
	s.log.Info().Str("output", name).Msg("stream removed")
	return nil
}
