package bbb_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/bbb"
	"github.com/roomcast/roomcast/bbb/bbbtest"
)

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func standard(t testing.TB) *bbb.Timeline {
	t.Helper()
	rec, err := bbb.Parse(bytes.NewReader(bbbtest.Standard("m1").EventsXML()))
	if err != nil {
		t.Fatal(err)
	}
	return bbb.Build(rec)
}

func TestTimeline(t *testing.T) {
	m := bbbtest.Standard("m1")
	tl := standard(t)
	if tl.MeetingID != "m1" || tl.Duration != sec(m.End) {
		t.Errorf("meeting %q lasting %v, want m1 lasting %v", tl.MeetingID, tl.Duration, sec(m.End))
	}
	if len(tl.Participants) != 3 || tl.Name("w_bob2") != "Bob Okafor" {
		t.Errorf("participants %+v", tl.Participants)
	}
	if len(tl.Webcams) != len(m.Cams) {
		t.Fatalf("%d webcams, want %d", len(tl.Webcams), len(m.Cams))
	}
	for i, c := range m.Cams {
		w := tl.Webcams[i]
		if w.Start != sec(c.Start) || w.End != sec(c.Stop) || w.UserID != c.User || w.Kind != bbb.KindWebM ||
			w.File != "video/m1/"+m.CamFile(i) || w.Name == w.UserID {
			t.Errorf("webcam %d: %+v, want %s %v–%v named", i, w, c.User, c.Start, c.Stop)
		}
	}
	if len(tl.Screens) != 1 || tl.Screens[0].Start != sec(16) || tl.Screens[0].End != sec(19) || !strings.HasPrefix(tl.Screens[0].File, "deskshare/") {
		t.Errorf("screens %+v", tl.Screens)
	}
	if len(tl.Audio) != 2 || tl.Audio[0].Interval != (bbb.Interval{Start: sec(1), End: sec(11)}) ||
		!strings.HasSuffix(tl.Audio[1].File, ".wav") || !strings.HasPrefix(tl.Audio[1].File, "audio/") {
		t.Errorf("audio %+v", tl.Audio)
	}
	if len(tl.Talks) != len(m.Talks) {
		t.Fatalf("talks %+v", tl.Talks)
	}
	for i, tk := range m.Talks {
		if tl.Talks[i].UserID != tk.User || tl.Talks[i].Start != sec(tk.Start) || tl.Talks[i].End != sec(tk.Stop) {
			t.Errorf("talk %d: %+v, want %+v", i, tl.Talks[i], tk)
		}
	}
	want := []struct {
		from, to float64
		page     int
		zoom     bbb.Zoom
	}{
		{0.2, 5, 1, bbb.FullPage}, {5, 8, 2, bbb.FullPage}, {8, 15, 2, bbb.Zoom{X: 0, Y: 0, W: 0.5, H: 0.5}},
		{15, 21, 3, bbb.FullPage}, {21, 24, 1, bbb.FullPage},
	}
	if len(tl.Slides) != len(want) {
		t.Fatalf("slides %+v", tl.Slides)
	}
	for i, w := range want {
		s := tl.Slides[i]
		if s.Start != sec(w.from) || s.End != sec(w.to) || s.Page != w.page || s.Zoom != w.zoom || s.Presentation != m.Presentation {
			t.Errorf("slide %d: %+v, want page %d %v–%v zoom %+v", i, s, w.page, w.from, w.to, w.zoom)
		}
	}
	if len(tl.Recorded) != 2 || tl.Recorded[0] != (bbb.Interval{Start: sec(1), End: sec(11)}) || tl.Recorded[1] != (bbb.Interval{Start: sec(14), End: sec(23)}) {
		t.Errorf("recorded %+v", tl.Recorded)
	}
	if tl.Ignored < 3 {
		t.Errorf("ignored %d events, want at least the 3 unknown ones", tl.Ignored)
	}
	if len(tl.Warnings) != 0 {
		t.Errorf("warnings on a clean meeting: %q", tl.Warnings)
	}
}

func TestCut(t *testing.T) {
	kept := []bbb.Interval{{Start: sec(1), End: sec(11)}, {Start: sec(14), End: sec(23)}}
	for _, c := range []struct {
		iv   bbb.Interval
		want []bbb.Piece
	}{
		{bbb.Interval{Start: sec(0.5), End: sec(23.5)}, []bbb.Piece{
			{Interval: bbb.Interval{Start: sec(1), End: sec(11)}, Out: 0},
			{Interval: bbb.Interval{Start: sec(14), End: sec(23)}, Out: sec(10)}}},
		{bbb.Interval{Start: sec(4), End: sec(9)}, []bbb.Piece{{Interval: bbb.Interval{Start: sec(4), End: sec(9)}, Out: sec(3)}}},
		{bbb.Interval{Start: sec(11.5), End: sec(13)}, nil},
		{bbb.Interval{Start: sec(16), End: sec(19)}, []bbb.Piece{{Interval: bbb.Interval{Start: sec(16), End: sec(19)}, Out: sec(12)}}},
	} {
		got := bbb.Cut(kept, c.iv)
		if len(got) != len(c.want) {
			t.Errorf("Cut(%v) = %v, want %v", c.iv, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("Cut(%v) = %v, want %v", c.iv, got, c.want)
			}
		}
	}
	if o, ok := bbb.ToOutput(kept, sec(15)); !ok || o != sec(11) {
		t.Errorf("ToOutput(15 s) = %v %v", o, ok)
	}
	if _, ok := bbb.ToOutput(kept, sec(12)); ok {
		t.Error("a paused instant maps to the output")
	}
	if bbb.Total(kept) != sec(19) {
		t.Errorf("total %v", bbb.Total(kept))
	}
}

func TestUserFromFile(t *testing.T) {
	for in, want := range map[string]string{
		"medium-w_abc123-1764500000000.webm":                  "w_abc123",
		"/var/lib/kurento/recordings/m/medium-w_x-17645.webm": "w_x",
		"320x240-w_old-1764500000000":                         "w_old",
		"screen.webm":                                         "",
	} {
		if got := bbb.UserFromFile(in); got != want {
			t.Errorf("UserFromFile(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMessyEvents: oddities of real files give warnings, not failures.
func TestMessyEvents(t *testing.T) {
	const x = `<?xml version="1.0"?>
<recording meeting_id="m2">
 <event timestamp="1000" module="bbb-webrtc-sfu" eventname="StopWebRTCShareEvent"><filename>/x/medium-w_a-1.webm</filename></event>
 <event timestamp="1500" module="PARTICIPANT" eventname="RecordStatusEvent"><status>true</status></event>
 <event timestamp="2000" module="bbb-webrtc-sfu" eventname="StartWebRTCShareEvent"><filename>/x/medium-w_ghost-2.webm</filename></event>
 <event timestamp="bogus" module="X" eventname="Y"></event>
 <event timestamp="2500" module="PRESENTATION" eventname="GotoSlideEvent"><slide>-4</slide></event>
 <event timestamp="2600" module="PRESENTATION" eventname="ResizeAndMoveSlideEvent"><xOffset>NaN</xOffset></event>
 <event timestamp="3000" module="WEBCAM" eventname="StartWebcamShareEvent"><stream>320x240-w_b-3</stream></event>
 <event timestamp="9000" module="FUTURE" eventname="NewThing"><deep><er>1</er></deep></event>
</recording>`
	rec, err := bbb.Parse(strings.NewReader(x))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Skipped != 1 {
		t.Errorf("skipped %d events, want the one without a timestamp", rec.Skipped)
	}
	tl := bbb.Build(rec)
	if len(tl.Webcams) != 2 || !tl.Webcams[0].Open || tl.Webcams[1].Kind != bbb.KindFLV || tl.Webcams[1].File != "video/m2/320x240-w_b-3.flv" {
		t.Errorf("webcams %+v", tl.Webcams)
	}
	// Recording switched on and never off: kept to the last event.
	if len(tl.Recorded) != 1 || tl.Recorded[0] != (bbb.Interval{Start: 500 * time.Millisecond, End: 8 * time.Second}) {
		t.Errorf("recorded %+v", tl.Recorded)
	}
	joined := strings.Join(tl.Warnings, "\n")
	for _, w := range []string{"without a start", "no stop event", "never joined", "GotoSlideEvent", "ResizeAndMoveSlideEvent"} {
		if !strings.Contains(joined, w) {
			t.Errorf("no warning about %q in:\n%s", w, joined)
		}
	}
	// No RecordStatusEvent at all: a recording from before the record button.
	rec, err = bbb.Parse(strings.NewReader(`<recording meeting_id="m3"><event timestamp="10" module="A" eventname="B"/><event timestamp="4010" module="A" eventname="B"/></recording>`))
	if err != nil {
		t.Fatal(err)
	}
	if tl := bbb.Build(rec); len(tl.Recorded) != 1 || tl.Recorded[0].Duration() != 4*time.Second {
		t.Errorf("recorded %+v, want the whole 4 s", tl.Recorded)
	}
}

// TestTruncated: events.xml cut anywhere is ErrInvalid, never a panic or a
// silently shorter meeting.
func TestTruncated(t *testing.T) {
	full := bbbtest.Standard("m1").EventsXML()
	for n := 0; n < len(full)-len("</recording>\n"); n += 37 {
		_, err := bbb.Parse(bytes.NewReader(full[:n]))
		if !errors.Is(err, bbb.ErrInvalid) {
			t.Fatalf("cut at %d of %d bytes: %v, want ErrInvalid", n, len(full), err)
		}
	}
	for _, s := range []string{"", "not xml", "<html><body/></html>", "<recording>"} {
		if _, err := bbb.Parse(strings.NewReader(s)); !errors.Is(err, bbb.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", s, err)
		}
	}
}

// FuzzParse: any input parses or fails with ErrInvalid; a timeline built
// from what parses is consistent. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(bbbtest.Standard("m1").EventsXML())
	f.Add([]byte(`<recording meeting_id="x"><event timestamp="1" module="PARTICIPANT" eventname="RecordStatusEvent"><status>true</status></event></recording>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := bbb.Parse(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, bbb.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		tl := bbb.Build(rec)
		for _, iv := range tl.Recorded {
			if iv.End < iv.Start || iv.Start < 0 || iv.End > tl.Duration {
				t.Fatalf("recorded span %+v outside 0–%v", iv, tl.Duration)
			}
		}
		for _, s := range append(append(tl.Webcams, tl.Screens...), tl.Audio...) {
			if s.End < s.Start {
				t.Fatalf("segment %+v ends before it starts", s)
			}
			for _, part := range strings.Split(s.File, "/") {
				if part == ".." || part == "" || part == "." {
					t.Fatalf("segment file %q escapes the raw folder", s.File)
				}
			}
		}
		for _, s := range tl.Slides {
			if strings.ContainsAny(s.Presentation, "/\\") || s.Presentation == ".." {
				t.Fatalf("presentation %q escapes the raw folder", s.Presentation)
			}
			if s.Page < 1 || s.Zoom.W <= 0 || s.Zoom.H <= 0 || s.Zoom.X+s.Zoom.W > 1.0000001 || s.Zoom.Y+s.Zoom.H > 1.0000001 {
				t.Fatalf("slide %+v", s)
			}
		}
		for _, p := range bbb.Cut(tl.Kept(false), bbb.Interval{Start: 0, End: tl.Duration}) {
			if p.Out < 0 || p.Out > tl.Duration {
				t.Fatalf("piece %+v", p)
			}
		}
	})
}
