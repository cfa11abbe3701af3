package serve

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var watchPathRe = regexp.MustCompile(`^/watch/[A-Za-z0-9_-]{20,}/$`)

// TestWatchPasscodeAPI: an HLS broadcast gets a watch URL at once (even
// scheduled); its passcode never comes back; the page asks for it, the
// playlist is refused without it, the right one opens the page ("starts
// soon"); a cancelled broadcast that never went live has no page; bad
// label styles and a passcode without a watch page are refused. No
// encoder runs: quick, also under -short.
func TestWatchPasscodeAPI(t *testing.T) {
	const pass = "open-sesame-4711"
	e := newEnv(t, nil)
	e.secret = append(e.secret, pass)
	c := e.api()
	at := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var v BroadcastView
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:", "start_at": at, "hls": true,
		"watch_passcode": pass, "title": "Weekly webinar", "record": false}, &v); code != http.StatusCreated {
		t.Fatalf("start: %d %+v", code, v)
	}
	u, err := url.Parse(v.WatchURL)
	if err != nil || !watchPathRe.MatchString(u.Path) || !v.HLS || !v.Passcode || !v.HLSReplay {
		t.Fatalf("scheduled HLS broadcast: watch_url %q hls %v passcode %v replay %v", v.WatchURL, v.HLS, v.Passcode, v.HLSReplay)
	}
	var again BroadcastView
	c.json("GET", "/api/v1/broadcasts/"+v.ID, nil, &again)
	if again.WatchURL != v.WatchURL {
		t.Errorf("watch URL changed: %q then %q", v.WatchURL, again.WatchURL)
	}
	viewer := e.client() // no account, no token
	resp, body := viewer.do("GET", u.Path, nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `name="passcode"`) || !strings.Contains(string(body), "Weekly webinar") {
		t.Errorf("watch page without the passcode: %d, no passcode form or title:\n%s", resp.StatusCode, body)
	}
	if resp, _ := viewer.do("GET", u.Path+"hls/index.m3u8", nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("playlist without the passcode: %d, want 403", resp.StatusCode)
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	resp, _ = viewer.do("POST", u.Path, strings.NewReader("passcode=wrong"), form)
	if !strings.Contains(resp.Request.URL.RawQuery, "wrong") {
		t.Errorf("wrong passcode ended at %s", resp.Request.URL)
	}
	resp, _ = viewer.do("POST", u.Path, strings.NewReader(url.Values{"passcode": {pass}}.Encode()), form)
	if resp.StatusCode != 200 {
		t.Errorf("right passcode: %d", resp.StatusCode)
	}
	var st struct {
		State string
		Title string
	}
	resp, body = viewer.do("GET", u.Path+"state?v=viewer-0001", nil, nil)
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 || st.State != "soon" || st.Title != "Weekly webinar" {
		t.Errorf("state with the passcode: %d %s (%v)", resp.StatusCode, body, err)
	}
	c.json("GET", "/api/v1/broadcasts/"+v.ID, nil, &again)
	if again.Viewers != 1 {
		t.Errorf("viewers after one page polled: %d, want 1", again.Viewers)
	}
	if resp, _ := viewer.do("GET", "/watch/AAAAAAAAAAAAAAAAAAAAAA/", nil, nil); resp.StatusCode != 404 {
		t.Errorf("unknown watch token: %d, want 404", resp.StatusCode)
	}
	if code := c.json("POST", "/api/v1/broadcasts/"+v.ID+"/stop", nil, nil); code != http.StatusAccepted {
		t.Fatalf("cancel: %d", code)
	}
	if resp, _ := viewer.do("GET", u.Path, nil, nil); resp.StatusCode != 404 {
		t.Errorf("watch page of a cancelled broadcast: %d, want 404", resp.StatusCode)
	}
	for _, bad := range []map[string]any{
		{"room": "demo:", "labels": "nicknames"},
		{"room": "demo:", "watch_passcode": "x"},
		{"room": "demo:", "record": false},
	} {
		var out map[string]any
		if code := c.json("POST", "/api/v1/broadcasts", bad, &out); code != http.StatusBadRequest {
			t.Errorf("%v: %d %v, want 400", bad, code, out)
		}
	}
}

// TestWatchInServeChromium: the host starts a demo: broadcast with a watch
// page from the host page; the live status names the speakers and links
// the watch page; headless Chromium opens it and plays (currentTime
// advances); the host's status (SSE), the API and /metrics count one
// viewer. After the stop, the same URL is the replay (EXT-X-ENDLIST), and
// the broadcast and its recording list the speakers by name.
func TestWatchInServeChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: headless Chromium and a live encode")
	}
	e := newEnv(t, nil)
	ctx := browser(t, 1280)
	base := e.http.URL
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("open", chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	must("login form", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("name"))))
	must("type", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("name"), "admin"), chromedp.SendKeys(chromedp.ID("password"), adminPassword)))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("login")))
	must("log in", err)
	must("home", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("start-button"))))
	must("fill", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("room"), "demo:?speakers=2"), chromedp.SetValue(chromedp.ID("size"), "640x360"),
		chromedp.SetValue(chromedp.ID("title"), "Serve watch test"), chromedp.Click(chromedp.ID("hls"))))
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("start-button")))
	must("start", err)

	// The live card (SSE) names the two demo speakers and links the page.
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const n = document.querySelector("#live .speaker-names"); return !!n && n.textContent === "Ada Lovelace, Grace Hopper" && !!document.querySelector("#live a.watch"); })()`,
		chromedp.WithPollingTimeout(90*time.Second)))
	if err != nil {
		h, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("#live")))
		t.Fatalf("live card without speaker names or watch link: %v\n%s", err, h)
	}
	e.pageHTML(ctx)
	watchURL, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#live a.watch").href`))
	must("watch link", err)
	u, err := url.Parse(watchURL)
	if err != nil || !watchPathRe.MatchString(u.Path) || !strings.HasPrefix(watchURL, base) {
		t.Fatalf("watch link %q", watchURL)
	}
	api := e.api()
	var bs struct{ Broadcasts []BroadcastView }
	api.json("GET", "/api/v1/broadcasts", nil, &bs)
	if len(bs.Broadcasts) != 1 || !bs.Broadcasts[0].HLS || !strings.HasSuffix(watchURL, bs.Broadcasts[0].WatchURL) {
		t.Fatalf("API: %+v, page links %s", bs.Broadcasts, watchURL)
	}
	id := bs.Broadcasts[0].ID

	// The viewer: plays, the picture moves on.
	_, err = chromedp.RunResponse(ctx, chromedp.Navigate(watchURL))
	must("watch page", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const v = document.getElementById("video"); return !!v && v.currentTime > 1; })()`,
		chromedp.WithPollingTimeout(90*time.Second)))
	if err != nil {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({state: document.body.dataset.state, status: document.getElementById("status").textContent, r: window.roomcast})`))
		t.Fatalf("the video does not play: %v (%s)", err, s)
	}
	t0, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("video").currentTime`))
	must("currentTime", err)
	time.Sleep(3 * time.Second)
	t1, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("video").currentTime`))
	must("currentTime", err)
	if t1-t0 < 1.5 {
		t.Errorf("currentTime went from %.2f to %.2f in 3 s", t0, t1)
	}
	names, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("speakers").textContent`))
	if err != nil || !strings.Contains(names, "Ada Lovelace, Grace Hopper") {
		t.Errorf("watch page speakers: %q (%v)", names, err)
	}

	// One viewer: in the API, /metrics and on the host's page (SSE).
	var v BroadcastView
	api.json("GET", "/api/v1/broadcasts/"+id, nil, &v)
	if v.Viewers != 1 {
		t.Errorf("API viewers: %d, want 1", v.Viewers)
	}
	_, m := api.do("GET", "/metrics", nil, nil)
	if !strings.Contains(string(m), "\nroomcast_watch_viewers 1\n") {
		t.Errorf("metrics without roomcast_watch_viewers 1:\n%s", m)
	}
	_, err = chromedp.RunResponse(ctx, chromedp.Navigate(base+"/"))
	must("home again", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const n = document.querySelector("#live .viewers"); return !!n && n.textContent === "1" && !!document.body.dataset.updated; })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	must("host page shows 1 viewer", err)

	// Stop: the same URL is the replay; speakers are listed by name.
	if code := api.json("POST", "/api/v1/broadcasts/"+id+"/stop", nil, nil); code != http.StatusAccepted {
		t.Fatalf("stop: %d", code)
	}
	done := api.waitState(id, "done", 3*time.Minute)
	if want := []string{"Ada Lovelace", "Grace Hopper"}; !reflect.DeepEqual(done.SpeakerNames, want) {
		t.Errorf("done broadcast speaker_names %q, want %q", done.SpeakerNames, want)
	}
	rec := api.waitRecording(id)
	if want := []string{"Ada Lovelace", "Grace Hopper"}; !reflect.DeepEqual(rec.SpeakerNames, want) || rec.Speakers != "2" {
		t.Errorf("recording speakers %q names %q", rec.Speakers, rec.SpeakerNames)
	}
	viewer := e.client()
	resp, pl := viewer.do("GET", u.Path+"hls/index.m3u8", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Errorf("replay playlist: %d\n%s", resp.StatusCode, pl)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "hls", id, "index.m3u8")); err != nil {
		t.Errorf("HLS directory: %v", err)
	}
	// Deleting the recording deletes the replay with it.
	if code := api.json("DELETE", "/api/v1/recordings/"+rec.ID, nil, nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "hls", id)); !os.IsNotExist(err) {
		t.Errorf("HLS replay left after deleting the recording: %v", err)
	}
}
