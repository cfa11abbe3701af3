package serve

import (
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// posterColour is the poster's colour at a fraction of its size.
func posterColour(t *testing.T, img image.Image, fx, fy float64) (int, int, int) {
	t.Helper()
	b := img.Bounds()
	r, g, bl, _ := img.At(b.Min.X+int(fx*float64(b.Dx())), b.Min.Y+int(fy*float64(b.Dy()))).RGBA()
	return int(r >> 8), int(g >> 8), int(bl >> 8)
}

func near(r, g, b, R, G, B int) bool { return abs(r-R) < 45 && abs(g-G) < 45 && abs(b-B) < 45 }

// Three demo broadcasts at once, each with its own speakers and file; a
// fourth is refused by admission control.
func TestConcurrentBroadcastsAndAdmission(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three 720p broadcasts")
	}
	e := newEnv(t, nil)
	c := e.api()
	rooms := []string{"demo:?speakers=1", "demo:?speakers=2", "demo:?speakers=3"}
	var ids []string
	for _, r := range rooms {
		ids = append(ids, c.startDemo(r, "640x360", 0).ID)
	}
	// Let the CPU meter see them settled, then model a machine that holds
	// these three and about half of another: the fourth must be refused
	// from the measured cost of the three (whatever this machine's speed).
	time.Sleep(7 * time.Second)
	// On a loaded machine media time lags wall time: wait until each has
	// produced 1.5 s.
	for _, id := range ids {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			var v BroadcastView
			c.json("GET", "/api/v1/broadcasts/"+id, nil, &v)
			if v.Elapsed >= 1.5 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broadcast %s: only %.2f s of media after 3 minutes", id, v.Elapsed)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	used := e.srv.cpu.rate()
	e.srv.startMu.Lock()
	e.srv.cfg.CPUCapacity = used * 1.15
	e.srv.startMu.Unlock()
	t.Logf("three broadcasts use %.2f cores; capacity set to %.2f", used, used*1.15)
	var refused map[string]any
	code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:", "size": "640x360"}, &refused)
	if code != http.StatusServiceUnavailable {
		t.Errorf("fourth broadcast: %d %v, want 503", code, refused)
	} else if msg, _ := refused["error"].(string); !strings.Contains(msg, "real time") {
		t.Errorf("refusal message %q does not say why", msg)
	} else {
		t.Logf("fourth refused: %s", msg)
	}
	_, metrics := c.do("GET", "/metrics", nil, nil)
	if !strings.Contains(string(metrics), "roomcast_admission_refusals_total 1\n") || !strings.Contains(string(metrics), "roomcast_broadcasts_running 3\n") {
		t.Errorf("metrics:\n%s", metrics)
	}
	for _, id := range ids {
		c.json("POST", "/api/v1/broadcasts/"+id+"/stop", nil, nil)
	}
	for _, id := range ids {
		c.waitState(id, "done", 3*time.Minute)
		c.waitRecording(id)
	}
	recs := c.recordings()
	if len(recs) != 3 {
		t.Fatalf("%d recordings, want 3", len(recs))
	}
	byBroadcast := map[string]RecordingView{}
	for _, r := range recs {
		byBroadcast[r.BroadcastID] = r
	}
	// Each file shows its own room only: the tiles' colours and count.
	want := [][]struct {
		fx, fy  float64
		r, g, b int
	}{
		{{0.5, 0.55, 220, 40, 40}},                                                    // one speaker: red fills the middle
		{{0.25, 0.55, 220, 40, 40}, {0.75, 0.55, 40, 170, 60}},                        // red | green
		{{0.25, 0.3, 220, 40, 40}, {0.75, 0.3, 40, 170, 60}, {0.5, 0.8, 40, 80, 220}}, // red green / blue
	}
	for i, id := range ids {
		r, ok := byBroadcast[id]
		if !ok || r.State != "ready" {
			t.Fatalf("broadcast %d: recording %+v", i, r)
		}
		if r.Speakers != fmt.Sprint(i+1) {
			t.Errorf("broadcast %d lists speakers %q", i, r.Speakers)
		}
		f, err := os.Open(strings.TrimSuffix(e.recPath(r.ID), ".mp4") + ".jpg")
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want[i] {
			if cr, cg, cb := posterColour(t, img, w.fx, w.fy); !near(cr, cg, cb, w.r, w.g, w.b) {
				t.Errorf("broadcast %d: colour at (%.2f,%.2f) is %d,%d,%d, want %d,%d,%d", i, w.fx, w.fy, cr, cg, cb, w.r, w.g, w.b)
			}
		}
		if i == 0 {
			// No green or blue speaker leaked into the one-speaker room.
			for _, fx := range []float64{0.1, 0.3, 0.7, 0.9} {
				if cr, cg, cb := posterColour(t, img, fx, 0.55); near(cr, cg, cb, 40, 170, 60) || near(cr, cg, cb, 40, 80, 220) {
					t.Errorf("one-speaker room shows another room's colour at x=%.1f", fx)
				}
			}
		}
		playable(t, e.recPath(r.ID), 1)
	}
}

func (e *env) recPath(id string) string { return e.dir + "/recordings/" + id + ".mp4" }
