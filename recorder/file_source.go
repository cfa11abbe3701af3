package recorder

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/compositor"
)

// FileSource feeds one per-speaker recording into a compositor input, shifted
// by Offset on the output timeline (offline composition).
type FileSource struct {
	Path   string
	Name   string
	Offset time.Duration

	r  *av.FileReader
	in *compositor.Input
	// shift moves the whole input (pictures and sound) onto the output's
	// frame grid when its rate allows (compositor.GridShift), so its A/V
	// relation survives the grid exactly.
	shift time.Duration
	log   zerolog.Logger
	done  chan struct{}
	err   error
	once  sync.Once
	// frames and chunks count what was decoded (read after Wait).
	frames, chunks int
}

// OpenFileSource opens and probes the file so bad input is reported before
// any output is created.
func OpenFileSource(path, name string, offset time.Duration, log zerolog.Logger) (*FileSource, error) {
	return OpenFileSourceWith(path, name, offset, av.FileOptions{}, log)
}

// OpenFileSourceWith is OpenFileSource with decoding options.
func OpenFileSourceWith(path, name string, offset time.Duration, o av.FileOptions, log zerolog.Logger) (*FileSource, error) {
	r, err := av.OpenFileWith(path, o, log)
	if err != nil {
		return nil, err
	}
	return &FileSource{Path: path, Name: name, Offset: offset, r: r, log: log.With().Str("component", "file").Str("file", path).Logger(), done: make(chan struct{})}, nil
}

// Info is the probed stream information.
func (s *FileSource) Info() av.FileInfo { return s.r.Info() }

// Start adds the speaker to comp and feeds it from a goroutine.
func (s *FileSource) Start(comp *compositor.Compositor, id string) {
	info := s.r.Info()
	if info.HasVideo {
		s.shift = comp.GridShift(s.Offset, info.FrameRateNum, info.FrameRateDen)
	}
	s.in = comp.AddInput(id, s.Name, compositor.InputOptions{Start: max(0, s.Offset+s.shift), NoVideo: !info.HasVideo, NoAudio: !info.HasAudio})
	go s.run()
}

func (s *FileSource) run() {
	defer close(s.done)
	defer s.in.EndOfStream()
	var frames, blocks int
	var end time.Duration
	for {
		it, err := s.r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.err = err
			s.log.Error().Err(err).Msg("reading stopped")
			return
		}
		pts := s.Offset + s.shift + it.PTS
		end = max(end, it.PTS)
		if it.Video != nil {
			frames++
			s.in.PushVideo(it.Video, pts)
		} else if len(it.Audio) > 0 {
			blocks++
			s.in.PushAudio(it.Audio, pts)
		}
	}
	s.frames, s.chunks = frames, blocks
	s.log.Debug().Int("frames", frames).Int("audio_chunks", blocks).Int("corrupt_packets", s.r.Corrupt()).Msg("file done")
	// A damaged or cut file is composed as far as it goes; say so.
	if n := s.r.Corrupt(); n > 0 {
		s.log.Warn().Int("corrupt_packets", n).Msg("input is damaged: undecodable packets were skipped")
	}
	if d := s.r.Info().Duration; d > 0 && end < d-time.Second {
		s.log.Warn().Float64("media_s", end.Seconds()).Float64("declared_s", d.Seconds()).
			Msg("input ends before its declared duration: truncated?")
	}
}

// Decoded is how many pictures and sound chunks the file gave (after Wait).
func (s *FileSource) Decoded() (frames, chunks int) { return s.frames, s.chunks }

// Wait returns the read error, if reading stopped early.
func (s *FileSource) Wait() error {
	<-s.done
	return s.err
}

// Close releases the file. Call after the compositor has stopped.
func (s *FileSource) Close() {
	s.once.Do(func() {
		if s.in != nil {
			<-s.done
		}
		s.r.Close()
	})
}
