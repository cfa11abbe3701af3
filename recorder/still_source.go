package recorder

import (
	"time"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/media"
)

// Still is a picture shown on the output clock during [From, To).
type Still struct {
	Image    *media.Image
	From, To time.Duration
}

// StillSource shows a sequence of still pictures (a presentation's slides)
// as one compositor input, on stage from the first still's From to the last
// one's To. Stills are in order and back to back.
type StillSource struct {
	Name    string
	Stills  []Still
	Options compositor.InputOptions

	in   *compositor.Input
	done chan struct{}
	// refresh is how often a still is pushed again so the compositor never
	// sees the input as stalled (its stall timeout is 2 s by default). It
	// must stay well under the offline look-ahead (1 s) minus the readiness
	// margin (0.5 s), or the compositor waits for data the throttle holds.
	refresh time.Duration
}

// NewStillSource builds a source for stills (at least one).
func NewStillSource(name string, stills []Still, opt compositor.InputOptions) *StillSource {
	return &StillSource{Name: name, Stills: stills, Options: opt, done: make(chan struct{}), refresh: 200 * time.Millisecond}
}

// Start adds the input to comp and feeds it from a goroutine.
func (s *StillSource) Start(comp *compositor.Compositor, id string, fps int) {
	opt := s.Options
	opt.Start, opt.End = s.Stills[0].From, s.Stills[len(s.Stills)-1].To
	s.in = comp.AddInput(id, s.Name, opt)
	go s.run(fps)
}

func (s *StillSource) run(fps int) {
	defer close(s.done)
	defer s.in.EndOfStream()
	frame := time.Second / time.Duration(max(fps, 1))
	for _, st := range s.Stills {
		for t := st.From; t < st.To; t += s.refresh {
			// The compositor owns and recycles what it is given: a copy each time.
			if !s.push(st.Image, t) {
				return
			}
		}
		// The last instant of the still, so the input's data reaches To.
		if last := st.To - frame; last > st.From {
			if !s.push(st.Image, last) {
				return
			}
		}
	}
}

func (s *StillSource) push(img *media.Image, t time.Duration) bool {
	c := media.GetImage(img.Width, img.Height)
	c.CopyFrom(img)
	return s.in.PushVideo(c, t)
}

// Wait waits for the feeding goroutine (after the compositor stopped).
func (s *StillSource) Wait() {
	if s.in != nil {
		<-s.done
	}
}
