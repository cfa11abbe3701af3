package main

// compose --from-bbb: a BigBlueButton raw recording folder composed on the
// meeting's own timeline.

import (
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/roomcast/roomcast/bbb"
	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/slides"
)

func bbbFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "from-bbb", Usage: "a BigBlueButton raw recording folder (raw/<meeting-id>, with events.xml)"},
		&cli.BoolFlag{Name: "whole-meeting", Usage: "--from-bbb: keep the whole meeting, not only the parts with recording switched on"},
		&cli.StringFlag{Name: "media-root", Usage: "--from-bbb: look for media files here first (a copied raw folder's media elsewhere)"},
		&cli.BoolFlag{Name: "no-slides", Usage: "--from-bbb: leave the presentation out"},
	}
}

// bbbPlan is what a raw folder becomes: sources with their output spans,
// and the talking turns on the output clock.
type bbbPlan struct {
	total   time.Duration
	clips   []*recorder.ClipSource
	clipIDs []string
	stills  []*recorder.StillSource
	holes   []hole // missing media: a placeholder tile for its span
	talks   []outTalk
	cams    []outCam
}

type hole struct {
	id, name   string
	start, end time.Duration
	screen     bool
}

type outTalk struct {
	user       string
	start, end time.Duration
}

type outCam struct {
	id, user   string
	start, end time.Duration
}

func (p *bbbPlan) close() {
	for _, s := range p.clips {
		s.Close()
	}
}

// mediaPath finds a segment's file: under --media-root, in the raw folder,
// then where the event says it was written.
func mediaPath(raw, root string, seg bbb.Segment) (string, bool) {
	var cands []string
	rel := filepath.FromSlash(seg.File)
	if root != "" {
		cands = append(cands, filepath.Join(root, rel), filepath.Join(root, filepath.Base(rel)))
	}
	cands = append(cands, filepath.Join(raw, rel))
	if seg.Source != "" && filepath.IsAbs(seg.Source) {
		cands = append(cands, seg.Source)
	}
	// Older audio files were archived with other extensions (.wav/.flac/.opus).
	if strings.HasPrefix(seg.File, "audio/") {
		stem := strings.TrimSuffix(rel, filepath.Ext(rel))
		for _, ext := range []string{".opus", ".wav", ".flac", ".ogg"} {
			cands = append(cands, filepath.Join(raw, stem+ext))
		}
	}
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, true
		}
	}
	return filepath.Join(raw, rel), false
}

func toClips(seg bbb.Segment, pieces []bbb.Piece) []recorder.Clip {
	out := make([]recorder.Clip, len(pieces))
	for i, p := range pieces {
		out[i] = recorder.Clip{From: p.Start - seg.Start, To: p.End - seg.Start, At: p.Out}
	}
	return out
}

// planBBB reads the raw folder and opens every media file; nothing is
// written yet, so a bad folder leaves nothing behind.
func planBBB(c *cli.Context, raw string, canvasW, canvasH int, log zerolog.Logger) (*bbbPlan, error) {
	evPath := filepath.Join(raw, "events.xml")
	f, err := os.Open(evPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (is %s a BigBlueButton raw folder?)", bbb.ErrInvalid, err, raw)
	}
	rec, err := bbb.Parse(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", evPath, err)
	}
	tl := bbb.Build(rec)
	blog := log.With().Str("component", "bbb").Str("meeting", tl.MeetingID).Logger()
	for _, w := range tl.Warnings {
		blog.Warn().Msg(w)
	}
	kept := tl.Kept(c.Bool("whole-meeting"))
	p := &bbbPlan{total: bbb.Total(kept)}
	if p.total <= 0 {
		if c.Bool("whole-meeting") {
			return nil, fmt.Errorf("%w: %s has no events spanning any time", bbb.ErrNothingRecorded, evPath)
		}
		return nil, fmt.Errorf("%w: recording was never switched on in this meeting (no RecordStatusEvent span); --whole-meeting composes all of it", bbb.ErrNothingRecorded)
	}
	blog.Info().Int("participants", len(tl.Participants)).Int("webcams", len(tl.Webcams)).Int("screen_shares", len(tl.Screens)).
		Int("audio_files", len(tl.Audio)).Int("talks", len(tl.Talks)).Int("slides", len(tl.Slides)).Int("ignored_events", tl.Ignored).
		Dur("meeting", tl.Duration).Dur("kept", p.total).Msg("events.xml read")
	root := c.String("media-root")
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	open := func(seg bbb.Segment, kind, id, name string, opt compositor.InputOptions, noAudio bool) {
		pieces := bbb.Cut(kept, seg.Interval)
		if len(pieces) == 0 {
			return
		}
		clips := toClips(seg, pieces)
		start, end := recorder.ClipSpan(clips)
		path, found := mediaPath(raw, root, seg)
		if !found {
			blog.Warn().Str("file", path).Str("what", kind).Str("name", name).
				Msg("media file missing: a placeholder takes its place")
		} else if src, err := recorder.OpenClipSource(path, name, clips, log); err != nil {
			blog.Warn().Err(err).Str("file", path).Str("what", kind).Msg("media file unreadable: a placeholder takes its place")
		} else {
			src.Options, src.NoAudio = opt, noAudio
			p.clips = append(p.clips, src)
			p.clipIDs = append(p.clipIDs, id)
			return
		}
		if !opt.Hidden {
			p.holes = append(p.holes, hole{id: id, name: name, start: start, end: end, screen: opt.Screen})
		}
	}
	for i, seg := range tl.Audio {
		open(seg, "audio", fmt.Sprintf("audio-%d", i), "audio", compositor.InputOptions{Hidden: true, NoVideo: true}, false)
	}
	for i, seg := range tl.Webcams {
		id := fmt.Sprintf("cam-%d", i)
		name := seg.Name
		if name == "" {
			name = filepath.Base(seg.File)
		}
		open(seg, "webcam", id, name, compositor.InputOptions{}, true)
		for _, pc := range bbb.Cut(kept, seg.Interval) {
			p.cams = append(p.cams, outCam{id: id, user: seg.UserID, start: pc.Out, end: pc.Out + pc.Duration()})
		}
	}
	for i, seg := range tl.Screens {
		open(seg, "screen share", fmt.Sprintf("screen-%d", i), "Screen share", compositor.InputOptions{Screen: true}, true)
	}
	for _, t := range tl.Talks {
		for _, pc := range bbb.Cut(kept, t.Interval) {
			p.talks = append(p.talks, outTalk{user: t.UserID, start: pc.Out, end: pc.Out + pc.Duration()})
		}
	}
	if !c.Bool("no-slides") {
		if err := p.planSlides(tl, kept, raw, root, canvasW, canvasH, blog); err != nil {
			return nil, err
		}
	}
	if len(p.clips)+len(p.stills)+len(p.holes) == 0 {
		return nil, fmt.Errorf("%w: no webcam, screen share, audio or slide falls in the kept part of the meeting", bbb.ErrNothingRecorded)
	}
	ok = true
	return p, nil
}

// planSlides: the slide shown at each instant, except while a screen is
// shared, cut to the kept spans; one still source per uninterrupted run.
func (p *bbbPlan) planSlides(tl *bbb.Timeline, kept []bbb.Interval, raw, root string, w, h int, log zerolog.Logger) error {
	type key struct {
		pres string
		page int
		zoom bbb.Zoom
	}
	pages := map[key]*media.Image{}
	files := map[string]image.Image{}
	render := func(s bbb.Slide) *media.Image {
		k := key{s.Presentation, s.Page, s.Zoom}
		if m := pages[k]; m != nil {
			return m
		}
		var dirs []string
		if root != "" {
			dirs = append(dirs, filepath.Join(root, "presentation", s.Presentation))
		}
		dirs = append(dirs, filepath.Join(raw, "presentation", s.Presentation))
		var img image.Image
		for _, d := range dirs {
			path, err := slides.Find(d, s.Page)
			if err != nil {
				continue
			}
			if im, ok := files[path]; ok {
				img = im
				break
			}
			im, err := slides.Load(path)
			if err != nil {
				log.Warn().Err(err).Str("file", path).Msg("slide unreadable: a blank page takes its place")
				break
			}
			files[path], img = im, im
			break
		}
		var m *media.Image
		if img == nil {
			log.Warn().Str("presentation", s.Presentation).Int("page", s.Page).Msg("slide missing: a blank page takes its place")
			m = slides.Blank(color.RGBA{0xf4, 0xf4, 0xf4, 0xff}, w*3/4, h*3/4)
		} else {
			m = slides.Render(img, slides.Zoom(s.Zoom), w, h)
		}
		pages[k] = m
		return m
	}
	var stills []recorder.Still
	flush := func() {
		if len(stills) > 0 {
			p.stills = append(p.stills, recorder.NewStillSource("Presentation", stills, compositor.InputOptions{Screen: true}))
			stills = nil
		}
	}
	for _, s := range tl.Slides {
		for _, iv := range subtract(s.Interval, tl.Screens) {
			for _, pc := range bbb.Cut(kept, iv) {
				st := recorder.Still{Image: render(s), From: pc.Out, To: pc.Out + pc.Duration()}
				if n := len(stills); n > 0 && stills[n-1].To != st.From {
					flush()
				}
				stills = append(stills, st)
			}
		}
	}
	flush()
	return nil
}

// subtract removes the screen-share spans from iv.
func subtract(iv bbb.Interval, screens []bbb.Segment) []bbb.Interval {
	out := []bbb.Interval{iv}
	for _, s := range screens {
		var next []bbb.Interval
		for _, o := range out {
			if s.End <= o.Start || s.Start >= o.End {
				next = append(next, o)
				continue
			}
			if s.Start > o.Start {
				next = append(next, bbb.Interval{Start: o.Start, End: s.Start})
			}
			if s.End < o.End {
				next = append(next, bbb.Interval{Start: s.End, End: o.End})
			}
		}
		out = next
	}
	return out
}

// director picks the active speaker for each output instant from the
// talking turns: the most recent talker who has a webcam on stage keeps the
// main tile until someone else talks.
type director struct {
	mu     sync.Mutex
	talks  []outTalk
	cams   []outCam
	comp   *compositor.Compositor
	active string
}

func (d *director) onFrame(t time.Duration) {
	var who string
	var since time.Duration = -1
	for _, tk := range d.talks {
		if tk.start > t {
			break
		}
		if t < tk.end && tk.start > since {
			who, since = tk.user, tk.start
		}
	}
	if who == "" {
		return
	}
	for _, c := range d.cams {
		if c.user == who && t >= c.start && t < c.end {
			d.mu.Lock()
			changed := d.active != c.id
			d.active = c.id
			d.mu.Unlock()
			if changed {
				d.comp.SetActiveSpeaker(c.id)
			}
			return
		}
	}
}

func runComposeBBB(c *cli.Context, log zerolog.Logger) error {
	raw := c.String("from-bbb")
	if len(c.StringSlice("input")) > 0 {
		return fmt.Errorf("%w: --from-bbb and --input do not mix", errUsage)
	}
	if st, err := os.Stat(raw); err != nil || !st.IsDir() {
		return fmt.Errorf("%w: --from-bbb %s is not a folder", bbb.ErrInvalid, raw)
	}
	cfg, err := pipelineConfig(c, log)
	if err != nil {
		return err
	}
	if !c.IsSet("layout") {
		cfg.Compositor.Layout = layout.Speaker
	}
	w, h := cfg.Compositor.Width, cfg.Compositor.Height
	if w == 0 {
		w, h = compositor.DefaultWidth, compositor.DefaultHeight
	}
	plan, err := planBBB(c, raw, w, h, log)
	if err != nil {
		return err
	}
	defer plan.close()
	sort.Slice(plan.talks, func(i, j int) bool { return plan.talks[i].start < plan.talks[j].start })
	dir := &director{talks: plan.talks, cams: plan.cams}
	cfg.Compositor.Offline = true
	cfg.Compositor.AutoScreenshare = true
	cfg.Compositor.ExternalSpeaker = true
	cfg.Compositor.OnFrame = dir.onFrame
	cfg.Compositor.Duration = plan.total
	if d := c.Duration("duration"); d > 0 && d < plan.total {
		cfg.Compositor.Duration = d
	}
	rec, err := recorder.New(cfg)
	if err != nil {
		return err
	}
	dir.comp = rec.Compositor()
	if err := attachMP4(c, rec, c.String("output"), c.Bool("overwrite"), log); err != nil {
		rec.Close()
		return err
	}
	comp := rec.Compositor()
	// Tiles appear in the order inputs are added: cameras by start time.
	for i, s := range plan.clips {
		s.Start(comp, plan.clipIDs[i])
	}
	for _, hl := range plan.holes {
		in := comp.AddInput(hl.id, hl.name, compositor.InputOptions{Start: hl.start, End: hl.end, NoVideo: true, Screen: hl.screen})
		in.EndOfStream()
	}
	for i, s := range plan.stills {
		s.Start(comp, fmt.Sprintf("slides-%d", i), comp.Config().FPS)
	}
	start := time.Now()
	rec.Start()
	interrupted := false
	select {
	case <-rec.Done():
	case <-c.Done():
		interrupted = true
		log.Warn().Msg("signal: stopping early and finalising what was composed")
	}
	err = rec.Close()
	for _, s := range plan.clips {
		if e := s.Wait(); e != nil {
			log.Warn().Err(e).Str("file", s.Path).Msg("a media file ended early: its tile showed a placeholder")
		}
	}
	for _, s := range plan.stills {
		s.Wait()
	}
	if err != nil {
		return err
	}
	if interrupted {
		return fmt.Errorf("%w: %s holds only the first %.1f s", errInterrupted, c.String("output"), rec.Elapsed().Seconds())
	}
	took := time.Since(start)
	log.Info().Str("output", c.String("output")).Dur("duration", rec.Elapsed()).Dur("took", took).
		Float64("speed", rec.Elapsed().Seconds()/max(took.Seconds(), 1e-3)).Msg("composed")
	return nil
}
