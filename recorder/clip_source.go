package recorder

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/media"
)

// Clip is a part of a file placed on the output clock: the file's media
// [From, To) plays from output time At.
type Clip struct {
	From, To time.Duration
	At       time.Duration
}

// ClipSource feeds parts of one file into a compositor input that is on
// stage only while a clip plays: a webcam or screen segment of a recorded
// meeting, cut where recording was paused. Clips are in output order and
// back to back on the output clock (the cut parts are gone).
type ClipSource struct {
	Path  string
	Name  string
	Clips []Clip
	// Options for the compositor input; Start and End are set from the clips.
	Options compositor.InputOptions
	// NoAudio ignores the file's sound (webcam files carry none in BBB, but
	// a stray track must not double the meeting audio).
	NoAudio bool

	r    *av.FileReader
	in   *compositor.Input
	log  zerolog.Logger
	done chan struct{}
	err  error
	once sync.Once
}

// OpenClipSource opens and probes the file.
func OpenClipSource(path, name string, clips []Clip, log zerolog.Logger) (*ClipSource, error) {
	r, err := av.OpenFile(path, log)
	if err != nil {
		return nil, err
	}
	return &ClipSource{Path: path, Name: name, Clips: clips, r: r,
		log: log.With().Str("component", "clip").Str("file", path).Logger(), done: make(chan struct{})}, nil
}

// Info is the probed stream information.
func (s *ClipSource) Info() av.FileInfo { return s.r.Info() }

// Span is the output interval the clips cover.
func (s *ClipSource) Span() (start, end time.Duration) { return ClipSpan(s.Clips) }

// ClipSpan is the output interval covered by clips.
func ClipSpan(clips []Clip) (start, end time.Duration) {
	if len(clips) == 0 {
		return 0, 0
	}
	last := clips[len(clips)-1]
	return clips[0].At, last.At + last.To - last.From
}

// Start adds the input to comp and feeds it from a goroutine.
func (s *ClipSource) Start(comp *compositor.Compositor, id string) {
	opt := s.Options
	opt.Start, opt.End = s.Span()
	opt.NoVideo = opt.NoVideo || !s.r.Info().HasVideo
	s.in = comp.AddInput(id, s.Name, opt)
	go s.run()
}

// place maps a media instant to the output clock.
func (s *ClipSource) place(pts time.Duration) (time.Duration, *Clip, bool) {
	for i := range s.Clips {
		c := &s.Clips[i]
		if pts >= c.From && pts < c.To {
			return c.At + pts - c.From, c, true
		}
	}
	return 0, nil, false
}

func (s *ClipSource) run() {
	defer close(s.done)
	defer s.in.EndOfStream()
	var frames, chunks, dropped int
	last := s.Clips[len(s.Clips)-1].To
	for {
		it, err := s.r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.err = err
			s.log.Warn().Err(err).Msg("reading stopped; the tile shows its placeholder for the rest of the segment")
			return
		}
		if it.PTS >= last+time.Second {
			media.PutImage(it.Video)
			break // past the last clip: the rest of the file is not needed
		}
		if it.Video != nil {
			at, _, ok := s.place(it.PTS)
			if !ok {
				media.PutImage(it.Video)
				dropped++
				continue
			}
			frames++
			s.in.PushVideo(it.Video, at)
			continue
		}
		if s.NoAudio || len(it.Audio) == 0 {
			continue
		}
		chunks += s.pushAudio(it.Audio, it.PTS)
	}
	s.log.Debug().Int("frames", frames).Int("audio_chunks", chunks).Int("outside_clips", dropped).Msg("clip done")
	if n := s.r.Corrupt(); n > 0 {
		s.log.Warn().Int("corrupt_packets", n).Msg("input is damaged: undecodable packets were skipped")
	}
}

// pushAudio pushes the parts of a chunk that fall in clips, split at clip
// boundaries to the sample.
func (s *ClipSource) pushAudio(a media.Audio, pts time.Duration) int {
	n := a.Frames()
	pushed := 0
	for i := range s.Clips {
		c := &s.Clips[i]
		end := pts + time.Duration(n)*time.Second/media.SampleRate
		lo, hi := max(pts, c.From), min(end, c.To)
		if hi <= lo {
			continue
		}
		a0 := int((lo - pts) * media.SampleRate / time.Second)
		a1 := min(n, int((hi-pts)*media.SampleRate/time.Second))
		if a1 <= a0 {
			continue
		}
		part := make(media.Audio, (a1-a0)*media.Channels)
		copy(part, a[a0*media.Channels:a1*media.Channels])
		s.in.PushAudio(part, c.At+lo-c.From)
		pushed++
	}
	return pushed
}

// Wait returns the read error, if reading stopped early.
func (s *ClipSource) Wait() error {
	<-s.done
	return s.err
}

// Close releases the file. Call after the compositor has stopped.
func (s *ClipSource) Close() {
	s.once.Do(func() {
		if s.in != nil {
			<-s.done
		}
		s.r.Close()
	})
}
