// Package bbbtest builds BigBlueButton raw recording folders for tests and
// benchmarks, in the layout BBB's archive step leaves under
// /var/bigbluebutton/recording/raw/<meeting>/: events.xml, webcams under
// video/<meeting>/ (WebM VP8 as bbb-webrtc-sfu writes them, or FLV as red5
// did), screen shares under deskshare/, the meeting audio under audio/ (one
// file per recording segment) and each presentation's per-page conversions
// under presentation/<name>/ (pngs/slideN.png, svgs/slideN.svg).
//
// Every picture is a known solid colour (plus white flashes where asked) and
// every sound a known tone, so a test can find them again in a composed
// output. Media is written with the ffmpeg CLI; events.xml and the slides
// are written in Go. Nothing here is copied from BBB: the format follows
// BBB's record-and-playback sources.
package bbbtest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// User is a participant.
type User struct {
	ID, Name    string
	Role        string  // MODERATOR or VIEWER (default VIEWER)
	Join, Leave float64 // seconds on the meeting clock; Leave 0 = stays
}

// Cam is a webcam segment.
type Cam struct {
	User        string
	Start, Stop float64 // Stop 0: no stop event (the meeting ends first)
	Colour      string  // ffmpeg colour, e.g. 0xE03030
	Flashes     []float64
	FLV         bool // an older red5 stream: StartWebcamShareEvent + FLV (H.264)
	Missing     bool // events name the file but it is not in the folder
	// FileLen is the media length in seconds (default Stop-Start, or to End).
	FileLen float64
}

// Share is a screen share.
type Share struct {
	Start, Stop float64
	Colour      string
}

// Page is one page of the presentation.
type Page struct {
	Colour  color.RGBA
	Quad    *color.RGBA // when set, the top-left quarter has this colour (zoom tests)
	SVGOnly bool        // only svgs/slideN.svg, no PNG
}

// SlideEvent is a presentation event.
type SlideEvent struct {
	At   float64
	Kind string // share, goto, zoom
	Page int    // goto: 0-based as in events.xml
	// Zoom in BBB's units: xOffset, yOffset, widthRatio, heightRatio.
	Zoom [4]float64
}

// Turn is a talking turn; the meeting audio carries Tone Hz during it (0:
// silent apart from the talker's beeps).
type Turn struct {
	User        string
	Start, Stop float64
	Tone        float64
}

// Meeting describes a raw folder.
type Meeting struct {
	ID           string
	End          float64 // time of the last event
	Users        []User
	Cams         []Cam
	Screens      []Share
	Presentation string
	Pages        []Page
	Slides       []SlideEvent
	Talks        []Turn
	// Beeps are 1 kHz beeps of 0.1 s in the meeting audio (flash+beep sync).
	Beeps []float64
	// Record toggles recording: on, off, on, off… (meeting seconds).
	Record []float64
	// AudioFormats per recording segment: opus, wav or flac (default opus).
	AudioFormats []string
	// AudioExpr, when set, replaces the generated tone expression (an
	// aevalsrc expression of T, the meeting time in seconds).
	AudioExpr string
	// MissingAudio leaves the audio files out.
	MissingAudio bool
	// Unknown adds events of types no reader knows.
	Unknown bool
	// Truncate cuts events.xml to this fraction of its length (0: whole).
	Truncate float64
	// CamSize and CamFPS of the webcams (default 320x180, 15).
	CamSize string
	CamFPS  int
	// FFmpeg is the ffmpeg binary (default "ffmpeg" on PATH).
	FFmpeg string
}

// Timestamps: BBB's `timestamp` is a server clock in ms; any origin will do.
const (
	tsBase  = 5_000_000
	utcBase = 1_764_500_000_000
)

type xev struct {
	at     float64
	order  int
	module string
	name   string
	fields [][2]string
}

// CamFile is the webcam's file name as bbb-webrtc-sfu or red5 names it.
func (m *Meeting) CamFile(i int) string {
	c := m.Cams[i]
	epoch := utcBase + int64(c.Start*1000)
	if c.FLV {
		return fmt.Sprintf("320x240-%s-%d.flv", c.User, epoch)
	}
	return fmt.Sprintf("medium-%s-%d.webm", c.User, epoch)
}

func (m *Meeting) screenFile(i int) string {
	return fmt.Sprintf("%s-%d.webm", m.ID, utcBase+int64(m.Screens[i].Start*1000))
}

func (m *Meeting) audioFile(i int) string {
	f := "opus"
	if i < len(m.AudioFormats) && m.AudioFormats[i] != "" {
		f = m.AudioFormats[i]
	}
	return fmt.Sprintf("%s-%d.%s", m.ID, utcBase+int64(m.Record[2*i]*1000), f)
}

// recSegments are the [on, off) pairs of Record.
func (m *Meeting) recSegments() [][2]float64 {
	var out [][2]float64
	for i := 0; i < len(m.Record); i += 2 {
		off := m.End
		if i+1 < len(m.Record) {
			off = m.Record[i+1]
		}
		out = append(out, [2]float64{m.Record[i], off})
	}
	return out
}

func (m *Meeting) camStop(c Cam) float64 {
	if c.Stop > 0 {
		return c.Stop
	}
	return m.End
}

// EventsXML renders events.xml.
func (m *Meeting) EventsXML() []byte {
	var evs []xev
	add := func(at float64, module, name string, kv ...string) {
		e := xev{at: at, order: len(evs), module: module, name: name}
		for i := 0; i+1 < len(kv); i += 2 {
			e.fields = append(e.fields, [2]string{kv[i], kv[i+1]})
		}
		evs = append(evs, e)
	}
	add(0, "PARTICIPANT", "MeetingConfigurationEvent", "webcamsOnlyForModerator", "false")
	for _, u := range m.Users {
		role := u.Role
		if role == "" {
			role = "VIEWER"
		}
		add(u.Join, "PARTICIPANT", "ParticipantJoinEvent", "userId", u.ID, "externalUserId", "ext-"+u.ID, "name", u.Name, "role", role)
		add(u.Join+0.05, "VOICE", "ParticipantJoinedEvent", "bridge", "7"+m.ID[:min(4, len(m.ID))], "participant", "v"+u.ID,
			"callername", u.ID+"_1-bbbID-"+u.Name, "muted", "false", "talking", "false")
		if u.Leave > 0 {
			add(u.Leave, "VOICE", "ParticipantLeftEvent", "participant", "v"+u.ID)
			add(u.Leave, "PARTICIPANT", "ParticipantLeftEvent", "userId", u.ID)
		}
	}
	for i, s := range m.recSegments() {
		add(s[0], "PARTICIPANT", "RecordStatusEvent", "status", "true", "userId", "system")
		add(s[0], "VOICE", "StartRecordingEvent", "bridge", "70000", "filename", "/var/freeswitch/meetings/"+m.audioFile(i), "recordingTimestamp", strconv.FormatInt(utcBase+int64(s[0]*1000), 10))
		if 2*i+1 < len(m.Record) {
			add(s[1], "VOICE", "StopRecordingEvent", "bridge", "70000", "filename", "/var/freeswitch/meetings/"+m.audioFile(i), "recordingTimestamp", strconv.FormatInt(utcBase+int64(s[1]*1000), 10))
			add(s[1], "PARTICIPANT", "RecordStatusEvent", "status", "false", "userId", "system")
		}
	}
	for i, c := range m.Cams {
		f := m.CamFile(i)
		if c.FLV {
			stream := strings.TrimSuffix(f, ".flv")
			add(c.Start, "WEBCAM", "StartWebcamShareEvent", "stream", stream)
			if c.Stop > 0 {
				add(c.Stop, "WEBCAM", "StopWebcamShareEvent", "stream", stream)
			}
			continue
		}
		uri := "/var/lib/kurento/recordings/" + m.ID + "/" + f
		add(c.Start, "bbb-webrtc-sfu", "StartWebRTCShareEvent", "filename", uri, "timestampUTC", strconv.FormatInt(utcBase+int64(c.Start*1000), 10))
		if c.Stop > 0 {
			add(c.Stop, "bbb-webrtc-sfu", "StopWebRTCShareEvent", "filename", uri, "timestampUTC", strconv.FormatInt(utcBase+int64(c.Stop*1000), 10))
		}
	}
	for i, s := range m.Screens {
		uri := "/var/lib/kurento/screenshare/" + m.ID + "/" + m.screenFile(i)
		add(s.Start, "bbb-webrtc-sfu", "StartWebRTCDesktopShareEvent", "filename", uri)
		add(s.Stop, "bbb-webrtc-sfu", "StopWebRTCDesktopShareEvent", "filename", uri)
	}
	for _, s := range m.Slides {
		switch s.Kind {
		case "share":
			add(s.At, "PRESENTATION", "SharePresentationEvent", "presentationName", m.Presentation, "originalFilename", "talk.pdf", "share", "true", "podId", "DEFAULT_PRESENTATION_POD")
		case "goto":
			add(s.At, "PRESENTATION", "GotoSlideEvent", "slide", strconv.Itoa(s.Page), "id", fmt.Sprintf("%s/%d", m.Presentation, s.Page+1), "presentationName", m.Presentation, "podId", "DEFAULT_PRESENTATION_POD")
		case "zoom":
			f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
			add(s.At, "PRESENTATION", "ResizeAndMoveSlideEvent", "xOffset", f(s.Zoom[0]), "yOffset", f(s.Zoom[1]), "widthRatio", f(s.Zoom[2]), "heightRatio", f(s.Zoom[3]), "presentationName", m.Presentation, "podId", "DEFAULT_PRESENTATION_POD")
		}
	}
	for _, t := range m.Talks {
		add(t.Start, "VOICE", "ParticipantTalkingEvent", "participant", "v"+t.User, "talking", "true")
		add(t.Stop, "VOICE", "ParticipantTalkingEvent", "participant", "v"+t.User, "talking", "false")
	}
	if m.Unknown {
		add(0.1, "WHITEBOARD", "AddTldrawShapeEvent", "shapeId", "s1", "shapeData", `{"x":1}`)
		add(2.2, "CHAT", "PublicChatEvent", "sender", "Alice", "message", "hello <b>all</b> & welcome")
		add(3.3, "FUTURE", "SomethingNewEvent", "payload", "whatever")
	}
	add(m.End, "PARTICIPANT", "EndAndKickAllEvent")
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, "<recording meeting_id=%q bbb_version=\"3.0.0\">\n", m.ID)
	fmt.Fprintf(&b, "  <metadata isBreakout=\"false\" meetingName=\"Fixture\"/>\n  <meeting id=%q externalId=\"ext\" name=\"Fixture\" breakout=\"false\"/>\n", m.ID)
	for _, e := range evs {
		ms := int64(e.at*1000 + 0.5)
		fmt.Fprintf(&b, "  <event timestamp=\"%d\" module=%q eventname=%q>\n", tsBase+ms, e.module, e.name)
		for _, kv := range e.fields {
			fmt.Fprintf(&b, "    <%s>%s</%s>\n", kv[0], xmlEscape(kv[1]), kv[0])
		}
		fmt.Fprintf(&b, "    <timestampUTC>%d</timestampUTC>\n  </event>\n", utcBase+ms)
	}
	b.WriteString("</recording>\n")
	out := b.Bytes()
	if m.Truncate > 0 && m.Truncate < 1 {
		out = out[:int(float64(len(out))*m.Truncate)]
	}
	return out
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Write builds the raw folder dir/<ID> and returns its path.
func (m *Meeting) Write(dir string) (string, error) {
	if m.FFmpeg == "" {
		m.FFmpeg = "ffmpeg"
	}
	if m.CamSize == "" {
		m.CamSize = "320x180"
	}
	if m.CamFPS == 0 {
		m.CamFPS = 15
	}
	raw := filepath.Join(dir, m.ID)
	for _, d := range []string{"video/" + m.ID, "deskshare", "audio", "presentation"} {
		if err := os.MkdirAll(filepath.Join(raw, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(raw, "events.xml"), m.EventsXML(), 0o644); err != nil {
		return "", err
	}
	// The webcams are independent: encode them side by side.
	errs := make([]error, len(m.Cams))
	var wg sync.WaitGroup
	for i, c := range m.Cams {
		if c.Missing {
			continue
		}
		n := c.FileLen
		if n == 0 {
			n = m.camStop(c) - c.Start
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.camVideo(filepath.Join(raw, "video", m.ID, m.CamFile(i)), c, n)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return "", err
		}
	}
	for i, s := range m.Screens {
		src := fmt.Sprintf("color=c=%s:s=640x360:r=10:d=%.3f", s.Colour, s.Stop-s.Start)
		if err := m.run("-f", "lavfi", "-i", src, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
			filepath.Join(raw, "deskshare", m.screenFile(i))); err != nil {
			return "", err
		}
	}
	if !m.MissingAudio {
		for i, s := range m.recSegments() {
			if err := m.audio(filepath.Join(raw, "audio", m.audioFile(i)), s[0], s[1]); err != nil {
				return "", err
			}
		}
	}
	if m.Presentation != "" {
		if err := m.writePages(filepath.Join(raw, "presentation", m.Presentation)); err != nil {
			return "", err
		}
	}
	return raw, nil
}

func (m *Meeting) run(args ...string) error {
	cmd := exec.Command(m.FFmpeg, append([]string{"-nostdin", "-hide_banner", "-v", "error", "-y"}, args...)...)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, se.String())
	}
	return nil
}

// camVideo: the user's colour, white flashes of 0.1 s at the given meeting
// times (file time = meeting time - Start).
func (m *Meeting) camVideo(path string, c Cam, n float64) error {
	g := fmt.Sprintf("color=c=%s:s=%s:r=%d:d=%.3f", c.Colour, m.CamSize, m.CamFPS, n)
	if len(c.Flashes) > 0 {
		var en []string
		for _, f := range c.Flashes {
			en = append(en, fmt.Sprintf("between(t\\,%.3f\\,%.3f)", f-c.Start, f-c.Start+0.099))
		}
		g += ",drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='" + strings.Join(en, "+") + "'"
	}
	// A long plain camera (benchmarks) is a one-minute clip looped by
	// stream copy: minutes of identical VP8 are not worth encoding.
	if n > 120 && len(c.Flashes) == 0 && !c.FLV {
		clip := path + ".clip.webm"
		cc := c
		if err := m.camVideo(clip, cc, 60); err != nil {
			return err
		}
		defer os.Remove(clip)
		return m.run("-stream_loop", strconv.Itoa(int(n/60)+1), "-i", clip, "-t", fmt.Sprintf("%.3f", n), "-c", "copy", path)
	}
	args := []string{"-f", "lavfi", "-i", g}
	if c.FLV {
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", strconv.Itoa(2*m.CamFPS), "-f", "flv")
	} else {
		args = append(args, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", strconv.Itoa(2*m.CamFPS))
	}
	return m.run(append(args, path)...)
}

// AudioExpression is the aevalsrc expression of the meeting audio as a
// function of T (meeting seconds): each turn's tone, and the beeps.
func (m *Meeting) AudioExpression() string {
	if m.AudioExpr != "" {
		return m.AudioExpr
	}
	var terms []string
	for _, t := range m.Talks {
		if t.Tone > 0 {
			terms = append(terms, fmt.Sprintf("between(T\\,%.3f\\,%.3f)*0.3*sin(2*PI*%g*T)", t.Start, t.Stop, t.Tone))
		}
	}
	for _, b := range m.Beeps {
		terms = append(terms, fmt.Sprintf("between(T\\,%.3f\\,%.3f)*0.5*sin(2*PI*1000*T)", b, b+0.099))
	}
	if len(terms) == 0 {
		return "0"
	}
	return strings.Join(terms, "+")
}

func (m *Meeting) audio(path string, from, to float64) error {
	expr := strings.ReplaceAll(m.AudioExpression(), "T", fmt.Sprintf("(t+%.3f)", from))
	src := fmt.Sprintf("aevalsrc='%s':s=48000:d=%.3f,aformat=sample_fmts=flt", expr, to-from)
	args := []string{"-f", "lavfi", "-i", src, "-ac", "1"}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".opus":
		args = append(args, "-c:a", "libopus", "-b:a", "64k")
	case ".wav":
		args = append(args, "-ar", "16000", "-c:a", "pcm_s16le")
	default:
		args = append(args, "-ar", "16000")
	}
	return m.run(append(args, path)...)
}

// PageSize of the generated slides (BBB converts to 4:3 pages commonly).
const PageW, PageH = 1600, 1200

func (m *Meeting) writePages(dir string) error {
	for _, d := range []string{"pngs", "svgs", "textfiles"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	// The original upload: not read by roomcast, present as in BBB.
	if err := os.WriteFile(filepath.Join(dir, m.Presentation+".pdf"), []byte("%PDF-1.4\n% fixture\n"), 0o644); err != nil {
		return err
	}
	for i, p := range m.Pages {
		n := i + 1
		svg := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">
<rect x="0" y="0" width="%d" height="%d" fill="%s"/>
`, PageW, PageH, PageW, PageH, PageW, PageH, hex(p.Colour))
		if p.Quad != nil {
			svg += fmt.Sprintf(`<rect x="0" y="0" width="%d" height="%d" fill="%s"/>
`, PageW/2, PageH/2, hex(*p.Quad))
		}
		svg += "</svg>\n"
		if err := os.WriteFile(filepath.Join(dir, "svgs", fmt.Sprintf("slide%d.svg", n)), []byte(svg), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "textfiles", fmt.Sprintf("slide-%d.txt", n)), []byte(fmt.Sprintf("Page %d\n", n)), 0o644); err != nil {
			return err
		}
		if p.SVGOnly {
			continue
		}
		img := image.NewRGBA(image.Rect(0, 0, PageW, PageH))
		for y := 0; y < PageH; y++ {
			for x := 0; x < PageW; x++ {
				c := p.Colour
				if p.Quad != nil && x < PageW/2 && y < PageH/2 {
					c = *p.Quad
				}
				img.SetRGBA(x, y, c)
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "pngs", fmt.Sprintf("slide%d.png", n)), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
