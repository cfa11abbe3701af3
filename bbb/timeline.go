package bbb

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Interval is a span of the meeting clock (time since the first event).
type Interval struct{ Start, End time.Duration }

// Duration is End-Start.
func (iv Interval) Duration() time.Duration { return iv.End - iv.Start }

// Participant is a user seen in PARTICIPANT ParticipantJoinEvent.
type Participant struct {
	UserID string
	Name   string
	Role   string
	// Present are the join→leave spans (a user may rejoin).
	Present []Interval
}

// Media kinds of a webcam or screen file.
const (
	KindWebM = "webm" // bbb-webrtc-sfu (Kurento, mediasoup)
	KindFLV  = "flv"  // red5 (BBB ≤ 2.2 Flash webcams)
)

// Segment is one webcam or screen-share stream: a file that covers
// [Start, End) of the meeting clock, its first picture at Start.
type Segment struct {
	Interval
	// File is relative to the raw folder (video/<meeting>/x.webm,
	// deskshare/x.webm, audio/x.opus).
	File string
	// UserID and Name of the webcam's owner (from the file name
	// medium-<userId>-<epochMs>.webm and the participant list).
	UserID, Name string
	// Source is the path the event names (on the BBB server: Kurento's,
	// FreeSWITCH's), tried when the raw folder lacks the file.
	Source string
	// Kind is KindWebM or KindFLV for video.
	Kind string
	// Open is true when no stop event was found (the segment runs to the
	// meeting's last event).
	Open bool
}

// Talk is a talking turn of one participant (VOICE ParticipantTalkingEvent).
type Talk struct {
	Interval
	UserID, Name string
}

// Zoom is the visible part of a slide as fractions of the page (0,0,1,1 is
// the whole page), from ResizeAndMoveSlideEvent.
type Zoom struct{ X, Y, W, H float64 }

// FullPage is the unzoomed page.
var FullPage = Zoom{0, 0, 1, 1}

// Slide says which page of which presentation is shown during Interval.
type Slide struct {
	Interval
	// Presentation is the presentationName (the folder under presentation/).
	Presentation string
	// Page is 1-based (BBB's events count from 0; its files from 1).
	Page int
	Zoom Zoom
}

// Timeline is what happened in a meeting, on the meeting clock.
type Timeline struct {
	MeetingID string
	// Duration is the time from the first to the last event.
	Duration time.Duration
	// FirstTimestamp is the first event's raw timestamp (ms).
	FirstTimestamp int64

	Participants []*Participant // in join order
	Webcams      []Segment      // by start
	Screens      []Segment      // by start
	Audio        []Segment      // meeting audio files, one per recording segment, by start
	Talks        []Talk         // by start
	Slides       []Slide        // contiguous while a presentation is shared, by start
	// Recorded are the spans with recording switched on (RecordStatusEvent);
	// the whole meeting for recordings made before the record button
	// existed (no RecordStatusEvent at all).
	Recorded []Interval
	// Warnings are oddities a person may want to know about (unmatched stop
	// events, unknown users); none of them stops a composition.
	Warnings []string
	// Ignored counts events of types the timeline does not use.
	Ignored int
}

// Name returns the display name of a user id, or the id itself.
func (t *Timeline) Name(userID string) string {
	for _, p := range t.Participants {
		if p.UserID == userID && p.Name != "" {
			return p.Name
		}
	}
	return userID
}

// UserFromFile extracts the user id from a webcam file or stream name:
// bbb-webrtc-sfu writes medium-<userId>-<epochMs>.webm, red5 streams are
// <w>x<h>-<userId>-<epochMs>. BBB's own processing takes the second
// dash-separated field; user ids (w_abc123) contain no dash.
func UserFromFile(name string) string {
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	parts := strings.Split(base, "-")
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}

func (t *Timeline) warnf(format string, a ...any) {
	if len(t.Warnings) < 200 {
		t.Warnings = append(t.Warnings, fmt.Sprintf(format, a...))
	}
}

// Build turns the events into a timeline.
func Build(rec *Recording) *Timeline {
	// The meeting id names a folder: never let it climb out of the raw folder.
	t := &Timeline{MeetingID: baseName(rec.MeetingID)}
	if len(rec.Events) == 0 {
		t.warnf("events.xml has no events")
		return t
	}
	first := rec.Events[0].Timestamp
	last := rec.Events[len(rec.Events)-1].Timestamp
	t.FirstTimestamp = first
	t.Duration = ms(last - first)
	b := &builder{t: t, first: first, end: t.Duration,
		users: map[string]*Participant{}, cams: map[string]int{}, screens: map[string]int{},
		audio: map[string]int{}, voice: map[string]string{}, talking: map[string]time.Duration{},
		pages: map[string]int{}}
	for i := range rec.Events {
		b.event(&rec.Events[i])
	}
	b.finish()
	return t
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

type builder struct {
	t     *Timeline
	first int64
	end   time.Duration

	users   map[string]*Participant
	cams    map[string]int // open webcam by file → index in Webcams
	screens map[string]int
	audio   map[string]int
	voice   map[string]string        // voice participant id → user id
	talking map[string]time.Duration // user id → talk start

	recOn    bool
	recStart time.Duration
	sawRec   bool

	pres     string         // shared presentation, "" before any
	pages    map[string]int // presentation → current page (1-based)
	zoom     Zoom
	slideOn  bool
	slideCur Slide
}

func (b *builder) event(e *Event) {
	at := ms(e.Timestamp - b.first)
	switch e.Name {
	case "ParticipantJoinEvent": // PARTICIPANT
		id := e.Field("userId")
		if id == "" {
			return
		}
		p := b.users[id]
		if p == nil {
			p = &Participant{UserID: id}
			b.users[id] = p
			b.t.Participants = append(b.t.Participants, p)
		}
		if n := e.Field("name"); n != "" {
			p.Name = n
		}
		p.Role = e.Field("role")
		p.Present = append(p.Present, Interval{at, -1})
	case "ParticipantLeftEvent":
		if e.Module == "VOICE" {
			b.talkEnd(b.voice[e.Field("participant")], at)
			return
		}
		if p := b.users[e.Field("userId")]; p != nil && len(p.Present) > 0 && p.Present[len(p.Present)-1].End < 0 {
			p.Present[len(p.Present)-1].End = at
		}
	case "ParticipantJoinedEvent": // VOICE: map the voice participant to a user
		b.voice[e.Field("participant")] = b.voiceUser(e)
	case "ParticipantTalkingEvent":
		uid := b.voice[e.Field("participant")]
		if uid == "" {
			uid = e.Field("participant")
		}
		if isTrue(e.Field("talking")) {
			if _, on := b.talking[uid]; !on {
				b.talking[uid] = at
			}
		} else {
			b.talkEnd(uid, at)
		}
	case "ParticipantMutedEvent":
		if isTrue(e.Field("muted")) {
			b.talkEnd(b.voice[e.Field("participant")], at)
		}
	case "StartWebRTCShareEvent", "StartWebcamShareEvent":
		file, kind := b.camFile(e)
		if file == "" {
			b.t.warnf("%s at %v without a file name: ignored", e.Name, at)
			return
		}
		if _, open := b.cams[file]; open {
			return // a repeated start of the same stream
		}
		uid := UserFromFile(file)
		b.cams[file] = len(b.t.Webcams)
		b.t.Webcams = append(b.t.Webcams, Segment{Interval: Interval{at, -1}, File: file, UserID: uid, Kind: kind, Source: e.Field("filename")})
	case "StopWebRTCShareEvent", "StopWebcamShareEvent":
		file, _ := b.camFile(e)
		i, open := b.cams[file]
		if !open {
			b.t.warnf("%s at %v for %q without a start: ignored", e.Name, at, file)
			return
		}
		b.t.Webcams[i].End = at
		delete(b.cams, file)
	case "StartWebRTCDesktopShareEvent", "DeskshareStartedEvent":
		file := b.screenFile(e)
		if file == "" {
			return
		}
		if _, open := b.screens[file]; open {
			return
		}
		b.screens[file] = len(b.t.Screens)
		b.t.Screens = append(b.t.Screens, Segment{Interval: Interval{at, -1}, File: file, Kind: KindWebM, Source: e.Field("filename") + e.Field("file")})
	case "StopWebRTCDesktopShareEvent", "DeskshareStoppedEvent":
		file := b.screenFile(e)
		i, open := b.screens[file]
		if !open {
			b.t.warnf("%s at %v for %q without a start: ignored", e.Name, at, file)
			return
		}
		b.t.Screens[i].End = at
		delete(b.screens, file)
	case "StartRecordingEvent", "StopRecordingEvent": // VOICE: the meeting audio files
		f := e.Field("filename")
		if f == "" {
			return
		}
		file := "audio/" + baseName(f)
		if e.Name == "StartRecordingEvent" {
			if _, open := b.audio[file]; !open {
				b.audio[file] = len(b.t.Audio)
				b.t.Audio = append(b.t.Audio, Segment{Interval: Interval{at, -1}, File: file, Source: f})
			}
			return
		}
		if i, open := b.audio[file]; open {
			b.t.Audio[i].End = at
			delete(b.audio, file)
		} else {
			b.t.warnf("StopRecordingEvent at %v for %q without a start: ignored", at, file)
		}
	case "RecordStatusEvent":
		b.sawRec = true
		on := isTrue(e.Field("status"))
		if on && !b.recOn {
			b.recOn, b.recStart = true, at
		} else if !on && b.recOn {
			b.recOn = false
			if at > b.recStart {
				b.t.Recorded = append(b.t.Recorded, Interval{b.recStart, at})
			}
		}
	case "SharePresentationEvent":
		name := baseName(e.Field("presentationName"))
		if name == "" {
			return
		}
		if f := e.Field("share"); f != "" && !isTrue(f) {
			if name == b.pres {
				b.slideEnd(at)
				b.pres = ""
			}
			return
		}
		b.pres = name
		if b.pages[name] == 0 {
			b.pages[name] = 1
		}
		b.zoom = FullPage
		b.slideAt(at)
	case "GotoSlideEvent":
		n, err := strconv.Atoi(strings.TrimSpace(e.Field("slide")))
		if err != nil || n < 0 || n > 100000 {
			b.t.warnf("GotoSlideEvent at %v with slide %q: ignored", at, e.Field("slide"))
			return
		}
		name := baseName(e.Field("presentationName"))
		if name == "" {
			name = b.pres
		}
		if name == "" {
			return
		}
		b.pages[name] = n + 1
		if name == b.pres {
			b.zoom = FullPage // a page change shows the new page whole until a zoom event says otherwise
			b.slideAt(at)
		}
	case "ResizeAndMoveSlideEvent":
		z, ok := parseZoom(e)
		if !ok {
			b.t.warnf("ResizeAndMoveSlideEvent at %v with unusable numbers: ignored", at)
			return
		}
		b.zoom = z
		if b.pres != "" {
			b.slideAt(at)
		}
	default:
		b.t.Ignored++
	}
}

// voiceUser finds the user behind a VOICE participant. BBB's HTML5 client
// dials in with a caller id name "<userId>_<n>-bbbID-<name>"; newer servers
// also write a userId field; very old ones only the caller's name.
func (b *builder) voiceUser(e *Event) string {
	if id := e.Field("userId"); id != "" {
		return id
	}
	cn := e.Field("callername")
	if pre, _, ok := strings.Cut(cn, "-bbbID-"); ok {
		if b.users[pre] != nil {
			return pre
		}
		if i := strings.LastIndexByte(pre, '_'); i > 0 && b.users[pre[:i]] != nil {
			return pre[:i]
		}
		return pre
	}
	for _, p := range b.t.Participants {
		if p.Name == cn && cn != "" {
			return p.UserID
		}
	}
	return e.Field("participant")
}

func (b *builder) talkEnd(uid string, at time.Duration) {
	if uid == "" {
		return
	}
	if s, on := b.talking[uid]; on {
		delete(b.talking, uid)
		if at > s {
			b.t.Talks = append(b.t.Talks, Talk{Interval: Interval{s, at}, UserID: uid})
		}
	}
}

func (b *builder) camFile(e *Event) (string, string) {
	if e.Name == "StartWebcamShareEvent" || e.Name == "StopWebcamShareEvent" {
		s := baseName(e.Field("stream"))
		if s == "" {
			return "", ""
		}
		return "video/" + b.t.MeetingID + "/" + s + ".flv", KindFLV
	}
	f := baseName(e.Field("filename"))
	if f == "" {
		return "", ""
	}
	kind := KindWebM
	if strings.HasSuffix(strings.ToLower(f), ".flv") {
		kind = KindFLV
	}
	return "video/" + b.t.MeetingID + "/" + f, kind
}

func (b *builder) screenFile(e *Event) string {
	f := e.Field("filename")
	if f == "" {
		f = e.Field("file")
	}
	if f = baseName(f); f == "" {
		return ""
	}
	return "deskshare/" + f
}

// baseName is the last element of a path or URI, "" for nothing usable.
func baseName(s string) string {
	s = strings.TrimSpace(strings.ReplaceAll(s, "\\", "/"))
	if s == "" {
		return ""
	}
	b := path.Base(s)
	if b == "." || b == "/" || b == ".." {
		return ""
	}
	return b
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

// parseZoom converts BBB's pan/zoom numbers to a page fraction: widthRatio
// and heightRatio are the visible percentage of the page, xOffset/yOffset
// the negated offset in half-percent units (BBB's presentation player
// multiplies them by 2).
func parseZoom(e *Event) (Zoom, bool) {
	var v [4]float64
	for i, k := range []string{"xOffset", "yOffset", "widthRatio", "heightRatio"} {
		f, err := strconv.ParseFloat(strings.TrimSpace(e.Field(k)), 64)
		if err != nil || f != f || f > 1e6 || f < -1e6 {
			return Zoom{}, false
		}
		v[i] = f
	}
	z := Zoom{X: -v[0] * 2 / 100, Y: -v[1] * 2 / 100, W: v[2] / 100, H: v[3] / 100}
	if z.W <= 0 || z.H <= 0 {
		return Zoom{}, false
	}
	// Keep the rectangle on the page.
	z.W, z.H = min(z.W, 1), min(z.H, 1)
	z.X = max(0, min(z.X, 1-z.W))
	z.Y = max(0, min(z.Y, 1-z.H))
	return z, true
}

func (b *builder) slideAt(at time.Duration) {
	next := Slide{Interval: Interval{at, -1}, Presentation: b.pres, Page: b.pages[b.pres], Zoom: b.zoom}
	if b.slideOn {
		cur := b.slideCur
		if cur.Presentation == next.Presentation && cur.Page == next.Page && cur.Zoom == next.Zoom {
			return
		}
		b.slideEnd(at)
	}
	b.slideOn, b.slideCur = true, next
}

func (b *builder) slideEnd(at time.Duration) {
	if !b.slideOn {
		return
	}
	b.slideOn = false
	s := b.slideCur
	s.End = at
	if s.End > s.Start {
		b.t.Slides = append(b.t.Slides, s)
	}
}

func (b *builder) finish() {
	t, end := b.t, b.end
	for _, p := range t.Participants {
		for i := range p.Present {
			if p.Present[i].End < 0 {
				p.Present[i].End = end
			}
		}
	}
	closeOpen := func(segs []Segment, what string) {
		for i := range segs {
			if segs[i].End < 0 {
				segs[i].End, segs[i].Open = end, true
				t.warnf("%s %s has no stop event: shown to the end of the meeting", what, segs[i].File)
			}
		}
	}
	closeOpen(t.Webcams, "webcam")
	closeOpen(t.Screens, "screen share")
	closeOpen(t.Audio, "audio")
	for uid := range b.talking {
		b.talkEnd(uid, end)
	}
	b.slideEnd(end)
	if b.recOn && end > b.recStart {
		t.Recorded = append(t.Recorded, Interval{b.recStart, end})
	}
	if !b.sawRec {
		// Recordings made before BBB had a record button: all of it.
		t.Recorded = []Interval{{0, end}}
	}
	for i := range t.Webcams {
		s := &t.Webcams[i]
		s.Name = t.Name(s.UserID)
	}
	for i := range t.Talks {
		t.Talks[i].Name = t.Name(t.Talks[i].UserID)
	}
	sort.SliceStable(t.Talks, func(i, j int) bool { return t.Talks[i].Start < t.Talks[j].Start })
	for _, s := range t.Webcams {
		if s.UserID != "" && t.Name(s.UserID) == s.UserID {
			t.warnf("webcam %s: user %q never joined by name; labelled with the id", s.File, s.UserID)
		}
	}
}

// Kept returns the meeting spans that go into the output: the recorded
// spans, or the whole meeting.
func (t *Timeline) Kept(whole bool) []Interval {
	if whole {
		if t.Duration <= 0 {
			return nil
		}
		return []Interval{{0, t.Duration}}
	}
	return t.Recorded
}

// Total is the summed length of spans.
func Total(spans []Interval) time.Duration {
	var d time.Duration
	for _, s := range spans {
		d += s.Duration()
	}
	return d
}

// Piece is part of a meeting span placed on the output clock.
type Piece struct {
	Interval               // meeting clock
	Out      time.Duration // where Start lands on the output clock
}

// Cut places iv on the output clock made of the kept spans (in order,
// back to back): the parts of iv outside every kept span are dropped.
func Cut(kept []Interval, iv Interval) []Piece {
	var out []Piece
	var base time.Duration
	for _, k := range kept {
		s, e := max(iv.Start, k.Start), min(iv.End, k.End)
		if e > s {
			out = append(out, Piece{Interval{s, e}, base + s - k.Start})
		}
		base += k.Duration()
	}
	return out
}

// ToOutput maps a meeting instant to the output clock; false when it is not
// in a kept span.
func ToOutput(kept []Interval, at time.Duration) (time.Duration, bool) {
	var base time.Duration
	for _, k := range kept {
		if at >= k.Start && at < k.End {
			return base + at - k.Start, true
		}
		base += k.Duration()
	}
	return 0, false
}
