package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium (Debian's, flags from the shared notes)
// with a w-pixel wide viewport.
func browser(t *testing.T, w int) context.Context {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err != nil {
		t.Fatalf("%s missing: run make peers", chromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-component-update", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(w, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 8*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	var vp []chromedp.EmulateViewportOption
	if w < 600 {
		vp = append(vp, chromedp.EmulateMobile)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(w), 900, vp...)); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// rect is an element's box in CSS pixels of the viewport.
type rect struct{ X, Y, W, H float64 }

func boxOf(t *testing.T, ctx context.Context, css string) rect {
	t.Helper()
	r, err := chromedp.Run(ctx, chromedp.Evaluate[rect](fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "center"}); const r = e.getBoundingClientRect(); return {X: r.x, Y: r.y, W: r.width, H: r.height}; })()`, css)))
	if err != nil {
		t.Fatalf("box of %s: %v", css, err)
	}
	return r
}

// shot takes a screenshot and saves it next to the test's temp files.
func shot(t *testing.T, ctx context.Context, name string) image.Image {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("ROOMCAST_SCREENSHOTS"); d != "" {
		_ = os.WriteFile(filepath.Join(d, name+".png"), b, 0o644)
	}
	return img
}

// colourIn counts pixels of r close to (R,G,B).
func colourIn(img image.Image, r rect, R, G, B int) int {
	n := 0
	for y := int(r.Y); y < int(r.Y+r.H); y++ {
		for x := int(r.X); x < int(r.X+r.W); x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if abs(int(cr>>8)-R) < 40 && abs(int(cg>>8)-G) < 40 && abs(int(cb>>8)-B) < 40 {
				n++
			}
		}
	}
	return n
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// pageHTML records the page's source for the secret scan and returns it.
func (e *env) pageHTML(ctx context.Context) string {
	e.t.Helper()
	h, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		e.t.Fatal(err)
	}
	e.seen.Write([]byte(h))
	if !strings.Contains(h, "</main>") {
		e.t.Errorf("page cut short (a template error?)")
	}
	return h
}

func (e *env) noHorizontalScroll(ctx context.Context, page string) {
	e.t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !ok {
		e.t.Errorf("%s scrolls sideways (%v)", page, err)
	}
}

func TestBrowserFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: headless Chromium")
	}
	for _, w := range []int{1280, 390} {
		t.Run(fmt.Sprintf("%dpx", w), func(t *testing.T) { browserFlow(t, w) })
	}
}

func browserFlow(t *testing.T, width int) {
	e := newEnv(t, nil)
	ctx := browser(t, width)
	base := e.http.URL
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Log in.
	must("open", chromedp.Do(ctx, chromedp.Navigate(base+"/")))
	must("login form", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("name"))))
	lb := boxOf(t, ctx, "#login")
	img := shot(t, ctx, fmt.Sprintf("login-%d", width))
	if n := colourIn(img, lb, 0x25, 0x57, 0xd6); n < 100 {
		t.Errorf("login screenshot: the blue Log in button shows %d pixels", n)
	}
	e.pageHTML(ctx)
	e.noHorizontalScroll(ctx, "login")
	must("type", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("name"), "admin"), chromedp.SendKeys(chromedp.ID("password"), adminPassword)))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("login")))
	must("log in", err)
	must("home", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("start-button"))))
	e.pageHTML(ctx)
	e.noHorizontalScroll(ctx, "home")

	// Start a demo broadcast from the form.
	must("fill", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("room"), "demo:?speakers=2"), chromedp.SetValue(chromedp.ID("size"), "640x360")))
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("start-button")))
	must("start", err)
	// The status updates by itself (SSE): elapsed grows, speakers and fps show.
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const e = document.querySelector("#live .elapsed"); return e && parseInt(e.textContent) >= 1; })()`,
		chromedp.WithPollingTimeout(90*time.Second)))
	must("status shows elapsed >= 1 s", err)
	first, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#live .elapsed")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`parseInt(document.querySelector("#live .elapsed").textContent) > %d`, atoiPrefix(first)+1),
		chromedp.WithPollingTimeout(90*time.Second)))
	must("elapsed keeps growing", err)
	speakers, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#live .speakers").textContent`))
	if strings.TrimSpace(speakers) != "2" {
		h, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Errorf("speakers shown: %q (%v)\n%s", speakers, err, h)
	}
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`parseFloat(document.querySelector("#live .fps").textContent) > 0`, chromedp.WithPollingTimeout(60*time.Second)))
	must("output fps shown", err)
	sb := boxOf(t, ctx, "#live button.stop")
	img = shot(t, ctx, fmt.Sprintf("live-%d", width))
	if n := colourIn(img, sb, 0xc6, 0x28, 0x28); n < 100 {
		t.Errorf("live screenshot: the red Stop button shows %d pixels", n)
	}
	e.pageHTML(ctx)
	e.noHorizontalScroll(ctx, "home (live)")

	// Stop it; the list moves it to the past broadcasts.
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#live button.stop")))
	must("stop", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`!document.querySelector("#live article") && !!document.querySelector('#past .state.done')`,
		chromedp.WithPollingTimeout(180*time.Second)))
	must("broadcast done", err)

	// The recording, with its poster, downloads to the same bytes. It is
	// listed as soon as the broadcast ends, downloadable once finalised.
	api := e.api()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		recs := api.recordings()
		if len(recs) == 1 && recs[0].State == "ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording not ready: %+v", recs)
		}
		time.Sleep(300 * time.Millisecond)
	}
	_, err = chromedp.RunResponse(ctx, chromedp.Navigate(base+"/recordings"))
	must("recordings", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const i = document.querySelector(".rec img.poster"); return i && i.complete && i.naturalWidth > 0; })()`,
		chromedp.WithPollingTimeout(20*time.Second)))
	must("poster loaded", err)
	pb := boxOf(t, ctx, ".rec img.poster")
	img = shot(t, ctx, fmt.Sprintf("recordings-%d", width))
	red, green := colourIn(img, pb, 220, 40, 40), colourIn(img, pb, 40, 170, 60)
	if red < 200 || green < 200 {
		t.Errorf("poster in the screenshot: %d red and %d green pixels (the demo's two speakers)", red, green)
	}
	e.pageHTML(ctx)
	e.noHorizontalScroll(ctx, "recordings")
	recs := api.recordings()
	if len(recs) != 1 || recs[0].State != "ready" {
		t.Fatalf("recordings: %+v", recs)
	}
	want := fileBytes(t, filepath.Join(e.dir, "recordings", recs[0].ID+".mp4"))
	sum := sha256.Sum256(want)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const a = document.querySelector(".rec a.download");
		const r = await fetch(a.href);
		if (r.status !== 200) return "status " + r.status;
		const b = await r.arrayBuffer();
		const h = await crypto.subtle.digest("SHA-256", b);
		return b.byteLength + ":" + Array.from(new Uint8Array(h)).map(x => x.toString(16).padStart(2, "0")).join("");
	})()`, chromedp.EvalAwaitPromise))
	must("download", err)
	if wantS := fmt.Sprintf("%d:%s", len(want), hex.EncodeToString(sum[:])); got != wantS {
		t.Errorf("downloaded %s, file on disk %s", got, wantS)
	}

	// The other pages render.
	for _, p := range []struct{ path, sel string }{{"/destinations", "#dest-form"}, {"/account", "main h1"}} {
		_, err = chromedp.RunResponse(ctx, chromedp.Navigate(base+p.path))
		must(p.path, err)
		must(p.path, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(p.sel))))
		img = shot(t, ctx, strings.Trim(p.path, "/")+fmt.Sprint("-", width))
		if n := colourIn(img, rect{0, 0, float64(img.Bounds().Dx()), 40}, 0x20, 0x22, 0x28); n < 1000 {
			t.Errorf("%s screenshot: the dark header shows %d pixels", p.path, n)
		}
		e.pageHTML(ctx)
		e.noHorizontalScroll(ctx, p.path)
	}
}

func atoiPrefix(s string) int {
	n := 0
	for _, c := range strings.TrimSpace(s) {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}
