package compositor

import (
	"fmt"
	"slices"
	"time"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
)

// Colours of the parts the compositor draws itself.
var (
	tileColour        = media.RGB(0, 0, 0)          // letterbox bars
	placeholderColour = media.RGB(0x3a, 0x3f, 0x4b) // no picture: muted, stalled, not yet started
	highlightColour   = media.RGB(0x4c, 0xc2, 0xff) // around the active speaker in a grid
)

// highlightWidth is the thickness of the active speaker's frame.
const highlightWidth = 4

type scaleKey struct {
	seq      int64
	src      layout.Rect
	w, h     int
	placeOff bool
}

// renderer owns the canvas and everything drawn on it.
type renderer struct {
	cfg    *Config
	canvas *media.Image
	bg     *media.Image // pre-rendered background
	text   *textCache
	tiles  []layout.Tile
	sig    string // what the current tiles were computed from
	sigBuf []byte // scratch for the signature
	byID   map[string]*Input
	// highlight is the tile framed as the active speaker's, if any.
	highlight string
	// covered: the tiles cover the whole canvas (computed with the tiles).
	// Each drawn tile paints every pixel of its rectangle, so when all of
	// them are drawn the background copy under them is skipped: at 720p it
	// is 1.4 MB written per frame that would be overwritten at once.
	covered bool
}

func newRenderer(cfg *Config) (*renderer, error) {
	r := &renderer{cfg: cfg, canvas: media.NewImage(cfg.Width, cfg.Height), text: newTextCache(), byID: map[string]*Input{}}
	r.bg = media.NewImage(cfg.Width, cfg.Height)
	r.bg.Fill(*cfg.Background)
	if bi := cfg.BackgroundImage; bi != nil {
		if bi.Width == cfg.Width && bi.Height == cfg.Height {
			r.bg.CopyFrom(bi)
		} else if err := cfg.Scaler.Scale(r.bg, bi); err != nil {
			return nil, fmt.Errorf("compositor: background image: %w", err)
		}
	}
	return r, nil
}

// renderVideo draws and emits the frame at t.
func (c *Compositor) renderVideo(t time.Duration) error {
	r := c.renderer
	if c.cfg.OnFrame != nil {
		c.cfg.OnFrame(t)
	}
	inputs := c.stage(t)
	shown := inputs[:0]
	for _, in := range inputs {
		if in.opt.Hidden {
			continue
		}
		in.takeVideo(t)
		shown = append(shown, in)
	}
	inputs = shown
	c.updateLayout(inputs)
	clear(r.byID)
	for _, in := range inputs {
		r.byID[in.id] = in
	}
	if !r.covered || !r.allDrawn() {
		r.canvas.CopyFrom(r.bg)
	}
	for _, tile := range r.tiles {
		in := r.byID[tile.ID]
		if in == nil {
			continue
		}
		if err := c.drawTile(in, tile, t); err != nil {
			return err
		}
		if tile.ID == r.highlight {
			rc := tile.Rect
			w := highlightWidth
			r.canvas.FillRect(rc.X, rc.Y, rc.W, w, highlightColour)
			r.canvas.FillRect(rc.X, rc.Y+rc.H-w, rc.W, w, highlightColour)
			r.canvas.FillRect(rc.X, rc.Y, w, rc.H, highlightColour)
			r.canvas.FillRect(rc.X+rc.W-w, rc.Y, w, rc.H, highlightColour)
		}
	}
	if err := c.sink.WriteVideo(r.canvas, t); err != nil {
		return err
	}
	c.count(func(s *Stats) { s.VideoFrames++ })
	return nil
}

// repeatVideo emits the previous canvas again at t (live overload, see
// Config.RepeatAfter): nothing is composed, the inputs' pictures stay
// queued for the next composed frame. The first degraded frame of a run
// warns once, with figures.
func (c *Compositor) repeatVideo(t, lag time.Duration) error {
	c.overloaded(lag)
	if err := c.sink.WriteVideo(c.renderer.canvas, t); err != nil {
		return err
	}
	c.count(func(s *Stats) { s.VideoFrames++; s.RepeatedVideo++ })
	return nil
}

// skipVideo leaves the frame at t out (live overload beyond MaxLag).
func (c *Compositor) skipVideo(lag time.Duration) {
	c.overloaded(lag)
	c.count(func(s *Stats) { s.SkippedVideo++ })
}

func (c *Compositor) overloaded(lag time.Duration) {
	c.mu.Lock()
	first := c.stats.RepeatedVideo == 0 && c.stats.SkippedVideo == 0
	c.stats.MaxLag = max(c.stats.MaxLag, lag)
	frames := c.stats.VideoFrames
	c.mu.Unlock()
	if first {
		c.log.Warn().Dur("lag", lag).Int64("frames_before", frames).Int("fps", c.cfg.FPS).
			Dur("repeat_after", c.cfg.RepeatAfter).Dur("max_lag", c.cfg.MaxLag).
			Msg("live output cannot keep real time (composing + encoding too slow for the CPU): repeating the previous picture, then skipping frames past max_lag, to stay live")
	}
}

// updateLayout recomputes the tiles when who is on stage, who speaks or the
// layout changed; the new tiles are used for this very frame.
func (c *Compositor) updateLayout(inputs []*Input) {
	c.mu.Lock()
	kind, active := c.kind, c.active
	c.mu.Unlock()
	if !c.cfg.ExternalSpeaker && c.autoSpk.current != "" {
		active = c.autoSpk.current
	}
	// The signature is rebuilt every frame into a reused buffer (no
	// allocation); the sources only when it changed.
	r := c.renderer
	sig := r.sigBuf[:0]
	screen := false
	for _, in := range inputs {
		screen = screen || in.opt.Screen
		sig = append(sig, in.id...)
		if in.opt.Screen {
			sig = append(sig, "/s"...)
		}
		sig = append(sig, '|')
	}
	if c.cfg.AutoScreenshare && screen {
		kind = layout.Screenshare
	}
	sig = append(append(append(sig, kind...), '|'), active...)
	r.sigBuf = sig
	if string(sig) == r.sig {
		return
	}
	r.sig = string(sig)
	srcs := make([]layout.Source, len(inputs))
	for i, in := range inputs {
		srcs[i] = layout.Source{ID: in.id, Screen: in.opt.Screen}
	}
	r.tiles = layout.Compute(layout.Params{Kind: kind, Width: c.cfg.Width, Height: c.cfg.Height, Sources: srcs, Active: active, Gap: c.cfg.Gap})
	r.covered = covers(r.tiles, c.cfg.Width, c.cfg.Height)
	r.highlight = ""
	if kind == layout.Grid && !c.cfg.NoHighlight && len(r.tiles) > 1 {
		r.highlight = active // only drawn if it has a tile
	}
	c.count(func(s *Stats) { s.Layouts++ })
	if c.cfg.OnTiles != nil {
		c.cfg.OnTiles(slices.Clone(r.tiles))
	}
	ids := make([]string, len(r.tiles))
	for i, tl := range r.tiles {
		ids[i] = tl.ID
	}
	c.log.Debug().Str("layout", string(kind)).Str("active", active).Strs("tiles", ids).Msg("layout")
}

// drawTile paints one input into its tile: its latest picture fitted to the
// tile, or the placeholder, then the name label.
func (c *Compositor) drawTile(in *Input, tile layout.Tile, t time.Duration) error {
	r := c.renderer
	rect := tile.Rect
	name := in.Label()
	if in.stalled(t) {
		r.canvas.FillRect(rect.X, rect.Y, rect.W, rect.H, placeholderColour)
		if name != "" {
			r.text.drawCentered(r.canvas, rect, name)
		}
		return nil
	}
	img := in.cur
	src, dst := layout.Place(img.Width, img.Height, rect, c.cfg.Fit)
	if dst != rect {
		r.canvas.FillRect(rect.X, rect.Y, rect.W, rect.H, tileColour)
	}
	if src.W == dst.W && src.H == dst.H {
		media.Blit(r.canvas, dst.X, dst.Y, img, src.X, src.Y, src.W, src.H)
	} else {
		key := scaleKey{seq: in.curSeq, src: src, w: dst.W, h: dst.H}
		if in.scaled == nil || in.scaledOf != key {
			if in.scaled == nil || in.scaled.Width != dst.W || in.scaled.Height != dst.H {
				in.scaled = media.NewImage(dst.W, dst.H)
			}
			if err := c.cfg.Scaler.Scale(in.scaled, img.Sub(src.X, src.Y, src.W, src.H)); err != nil {
				return fmt.Errorf("compositor: scale %s: %w", in.id, err)
			}
			in.scaledOf = key
		}
		media.Blit(r.canvas, dst.X, dst.Y, in.scaled, 0, 0, dst.W, dst.H)
	}
	if name != "" {
		r.text.drawLabel(r.canvas, rect, name)
	}
	return nil
}

// allDrawn reports whether every tile has its input this frame.
func (r *renderer) allDrawn() bool {
	for _, t := range r.tiles {
		if r.byID[t.ID] == nil {
			return false
		}
	}
	return true
}

// covers reports whether the union of the tiles' rectangles is the whole
// w×h canvas. Tiles with odd coordinates (which the even-aligned fills and
// blits could leave a column short) count as not covering. The canvas is
// cut at every tile edge; each cell must lie inside some tile.
func covers(tiles []layout.Tile, w, h int) bool {
	xs, ys := []int{0, w}, []int{0, h}
	for _, t := range tiles {
		rc := t.Rect
		if rc.X%2 != 0 || rc.Y%2 != 0 || rc.W%2 != 0 || rc.H%2 != 0 {
			return false
		}
		xs = append(xs, min(max(rc.X, 0), w), min(max(rc.X+rc.W, 0), w))
		ys = append(ys, min(max(rc.Y, 0), h), min(max(rc.Y+rc.H, 0), h))
	}
	slices.Sort(xs)
	slices.Sort(ys)
	xs, ys = slices.Compact(xs), slices.Compact(ys)
	for i := 0; i+1 < len(xs); i++ {
		for j := 0; j+1 < len(ys); j++ {
			x, y := xs[i], ys[j] // the cell's top-left corner stands for it
			in := false
			for _, t := range tiles {
				if t.Rect.Contains(x, y) {
					in = true
					break
				}
			}
			if !in {
				return false
			}
		}
	}
	return true
}
