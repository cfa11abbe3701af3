package recorder

import (
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/room"
)

// dimsControl records the sizes a track was asked to be shown at.
type dimsControl struct{ asked [][2]int }

func (c *dimsControl) RequestKeyframe()            {}
func (c *dimsControl) SetVideoDimensions(w, h int) { c.asked = append(c.asked, [2]int{w, h}) }
func (c *dimsControl) Stats() (s room.TrackStats)  { return s }

// A simulcast track shown at 320x180 whose server forwards its 640x360
// layer (it picked the layer before it had seen the small one's size) is
// asked again for 320x180, once a second and at most layerAsksMax times
// per picture size; a track on the right layer, a non-simulcast track and
// a layer too small while no larger one is published are never re-asked.
func TestCheckLayer(t *testing.T) {
	cases := []struct {
		name      string
		simulcast bool
		pubH      int // published height of the largest layer
		picW      int
		picH      int
		cell      layout.Rect
		wantAsks  int
	}{
		// A 2-tile grid cell of 640x360 is 320x360, where a 16:9 camera
		// shows at 320x180.
		{"a layer too large", true, 360, 640, 360, layout.Rect{W: 320, H: 360}, layerAsksMax},
		{"the right layer", true, 360, 320, 180, layout.Rect{W: 320, H: 360}, 0},
		{"not simulcast", false, 360, 640, 360, layout.Rect{W: 320, H: 360}, 0},
		{"a layer too small, a larger one published", true, 720, 320, 180, layout.Rect{W: 1280, H: 720}, layerAsksMax},
		{"the largest layer, smaller than shown", true, 180, 320, 180, layout.Rect{W: 1280, H: 720}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctl := &dimsControl{}
			tr := &room.Track{SID: "TR", Kind: room.KindVideo, Simulcast: tc.simulcast,
				Width: tc.pubH * 16 / 9, Height: tc.pubH, Control: ctl}
			l := &RoomSink{fit: layout.Letterbox, tiles: map[string]layout.Rect{}}
			cell := tc.cell
			l.tiles["p"] = cell
			s := &trackSink{l: l, t: tr, inputID: "p", w: tc.picW, h: tc.picH, log: zerolog.Nop()}
			now := time.Now()
			for i := 0; i < 20; i++ {
				s.checkLayer(now.Add(time.Duration(i) * layerCheckEvery / 2))
			}
			if len(ctl.asked) != tc.wantAsks {
				t.Fatalf("asked %d times (%v), want %d", len(ctl.asked), ctl.asked, tc.wantAsks)
			}
			if tc.wantAsks > 0 {
				w, h := l.shownSize(tr, cell)
				if ctl.asked[0] != [2]int{w, h} {
					t.Errorf("asked for %v, want the shown size %dx%d", ctl.asked[0], w, h)
				}
			}
		})
	}
}
