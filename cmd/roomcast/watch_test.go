package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/hls/watch"
)

const chromiumPath = "/usr/bin/chromium"

// pageState is what the watch page shows, read from the browser.
type pageState struct {
	Time     float64  `json:"t"`
	Duration float64  `json:"d"`
	Paused   bool     `json:"paused"`
	Player   string   `json:"player"`
	Waiting  int      `json:"waiting"`
	Longest  float64  `json:"longest"` // ms, the longest 'waiting' until 'playing'
	State    string   `json:"state"`
	Status   string   `json:"status"`
	Speakers string   `json:"speakers"`
	Errors   []string `json:"errors"`
}

const readPage = `(() => { const v = document.getElementById('video'), r = window.roomcast || {};
  return { t: v ? v.currentTime : -1, d: v && isFinite(v.duration) ? v.duration : -1, paused: v ? v.paused : true,
    player: r.player || '', waiting: r.stalls || 0, longest: r.longestStall || 0, errors: r.errors || [],
    state: document.body.dataset.state || '', status: (document.getElementById('status') || {}).textContent || '',
    speakers: (document.getElementById('speakers') || {}).textContent || '' }; })()`

// grabPicture draws the current video frame into a 64x36 canvas and returns
// its mean level and the number of distinct coarse colours.
const grabPicture = `(() => { const v = document.getElementById('video'), c = document.createElement('canvas');
  c.width = 64; c.height = 36; const g = c.getContext('2d'); g.drawImage(v, 0, 0, 64, 36);
  const d = g.getImageData(0, 0, 64, 36).data, seen = new Set(); let sum = 0;
  for (let i = 0; i < d.length; i += 4) { sum += d[i] + d[i+1] + d[i+2]; seen.add((d[i]>>5) + ',' + (d[i+1]>>5) + ',' + (d[i+2]>>5)); }
  return { mean: sum / (d.length / 4) / 3, colours: seen.size }; })()`

// TestWatchPageChromium: headless Chromium opens the watch page of a live
// demo broadcast served by watch.Handler: it says "starts soon" before the
// broadcast, then plays it (currentTime advances for 20 s without a stall),
// shows the speakers, says "ended, replay" when it ends and plays the replay
// from the start; every request the browser made went to the test server.
func TestWatchPageChromium(t *testing.T) {
	e2e(t)
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium missing (make peers): %v", err)
	}
	dir := t.TempDir()
	hdir := filepath.Join(dir, "hls")
	tok := watch.NewToken()
	h := watch.New(watch.Config{Lookup: func(s string) (watch.Broadcast, bool) {
		return watch.Broadcast{Title: "Demo webinar", Dir: hdir,
			Status: watch.StatusFunc(func() []string { return []string{"Alice", "Bob"} })}, s == tok
	}})
	if !h.HasHLSJS() {
		t.Log("hls.js not embedded (make hlsjs): the page relies on Chromium's native HLS")
	}
	mux := http.NewServeMux()
	mux.Handle("/watch/", http.StripPrefix("/watch", h))
	srv := httptest.NewServer(mux) // 127.0.0.1, random port
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	pageURL := srv.URL + "/watch/" + tok + "/"

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.UserDataDir(filepath.Join(dir, "chromium")),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	defer cancelT()

	var mu sync.Mutex
	var requests []string
	if err := chromedp.Do(ctx); err != nil { // start the browser and its tab
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			requests = append(requests, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	read := func() pageState {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitFor := func(what string, limit time.Duration, ok func(pageState) bool) pageState {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			s := read()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("page: no %s after %v: %+v", what, limit, s)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	waitFor("'starts soon'", 20*time.Second, func(s pageState) bool {
		return s.State == watch.StateSoon && strings.Contains(s.Status, "starts soon")
	})

	// The broadcast: a live demo writing HLS only.
	cmd := exec.Command(bin, "demo", "--duration", "60s", "--size", "640x360", "--hls", hdir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	s := waitFor("playback", 40*time.Second, func(s pageState) bool { return s.State == watch.StateLive && s.Time > 0.5 })
	t.Logf("playing with %s; speakers line %q", s.Player, s.Speakers)
	if !strings.Contains(s.Speakers, "Alice, Bob") {
		t.Errorf("speakers not shown: %q", s.Speakers)
	}
	// 20 s of watching: the position advances with no long standstill. On
	// a loaded machine the broadcast itself may run a little behind, so
	// the 20 s of media may take up to 35 s. Stalls count from here (the
	// start-up wait is not one).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.roomcast.longestStall = 0`)); err != nil {
		t.Fatal(err)
	}
	start, t0, waiting0 := time.Now(), s.Time, s.Waiting
	prev, stuck, worst := s.Time, 0, 0
	for s.Time-t0 < 20 && time.Since(start) < 35*time.Second {
		time.Sleep(time.Second)
		s = read()
		if s.Time-prev < 0.2 {
			stuck++
			worst = max(worst, stuck)
		} else {
			stuck = 0
		}
		prev = s.Time
	}
	advanced := s.Time - t0
	t.Logf("live: %.1f s of media in %.1f s, %d waiting events (longest %.0f ms), longest standstill %d s, hls.js errors %v",
		advanced, time.Since(start).Seconds(), s.Waiting-waiting0, s.Longest, worst, s.Errors)
	if advanced < 20 || worst >= 3 {
		t.Errorf("live playback stalled: %.1f s played in %.1f s, standstill of %d s", advanced, time.Since(start).Seconds(), worst)
	}
	// The stall criterion is the sampled position (what a viewer sees
	// freeze); 'waiting' events and their waiting→playing span are logged:
	// on a loaded machine 'playing' can fire well after the picture moves.
	// What a person sees: the picture drawn to a canvas has the demo's
	// coloured tiles, not a black or blank frame.
	type picture struct {
		Mean    float64 `json:"mean"`
		Colours int     `json:"colours"`
	}
	var pic picture
	for range 5 { // a frame grabbed mid-refill may be empty: look again
		p, err := chromedp.Run(ctx, chromedp.Evaluate[picture](grabPicture))
		if err != nil {
			t.Fatal(err)
		}
		if pic = p; pic.Mean >= 15 && pic.Colours >= 4 {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("picture: mean level %.1f, %d coarse colours", pic.Mean, pic.Colours)
	if pic.Mean < 15 || pic.Colours < 4 {
		t.Errorf("the video shows no picture: mean level %.1f, %d colours", pic.Mean, pic.Colours)
	}

	// The browser's native HLS, where it has one (the path Safari and iOS
	// take): the same page with ?player=native plays too.
	if native, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.createElement('video').canPlayType('application/vnd.apple.mpegurl')`)); native != "" {
		tctx := ctx
		if err := chromedp.Do(tctx, chromedp.Navigate(pageURL+"?player=native")); err != nil {
			t.Fatal(err)
		}
		var n0, n1 pageState
		deadline := time.Now().Add(20 * time.Second)
		for n0.Time <= 0.5 && time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			n0, _ = chromedp.Run(tctx, chromedp.Evaluate[pageState](readPage))
		}
		time.Sleep(6 * time.Second)
		n1, _ = chromedp.Run(tctx, chromedp.Evaluate[pageState](readPage))
		t.Logf("native HLS (%q): %s, %.1f s played in 6 s", native, n1.Player, n1.Time-n0.Time)
		if n1.Player != "native" || n0.Time <= 0.5 || n1.Time-n0.Time < 4.5 {
			t.Errorf("native HLS did not play: start %+v, 6 s later %+v", n0, n1)
		}
	} else {
		t.Log("this Chromium has no native HLS; only hls.js was tested")
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, tail(stderr.String(), 20))
		}
	case <-time.After(90 * time.Second):
		t.Fatal("demo did not end")
	}
	waitFor("'ended, replay'", 20*time.Second, func(s pageState) bool {
		return s.State == watch.StateEnded && strings.Contains(s.Status, "replay")
	})

	// The replay: a new visit plays the whole broadcast from its start.
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatal(err)
	}
	s = waitFor("replay playback", 30*time.Second, func(s pageState) bool { return s.State == watch.StateEnded && s.Time > 3 })
	if s.Duration < 55 || s.Duration > 65 || s.Time > 15 {
		t.Errorf("replay: at %.1f s of %.1f s (want the 60 s broadcast from its start)", s.Time, s.Duration)
	}
	if strings.Contains(s.Status, "starts soon") {
		t.Errorf("replay page status %q", s.Status)
	}

	mu.Lock()
	defer mu.Unlock()
	var foreign []string
	pages := 0
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "blob" && u.Scheme != "data" && u.Host != host) {
			foreign = append(foreign, r)
		}
		if strings.HasSuffix(u.Path, ".m4s") {
			pages++
		}
	}
	if len(foreign) > 0 {
		t.Errorf("requests to other hosts: %v", foreign)
	}
	if pages < 10 {
		t.Errorf("only %d segment requests in the network log", pages)
	}
	t.Logf("%d requests, all to %s (%d segments)", len(requests), host, pages)
}
