package watch

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	openTok   = "open-token-0123456789"
	secretTok = "secret-token-0123456789"
)

type fixture struct {
	srv   *httptest.Server
	h     *Handler
	dir   string
	mu    sync.Mutex
	now   time.Time
	names []string
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{dir: t.TempDir(), now: time.Unix(1_700_000_000, 0)}
	f.h = New(Config{
		Now: func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		Lookup: func(tok string) (Broadcast, bool) {
			st := StatusFunc(func() []string { f.mu.Lock(); defer f.mu.Unlock(); return f.names })
			switch tok {
			case openTok:
				return Broadcast{Title: "Weekly <webinar>", Dir: f.dir, Status: st}, true
			case secretTok:
				return Broadcast{Title: "Board", Dir: f.dir, Passcode: "s3cret"}, true
			}
			return Broadcast{}, false
		},
	})
	mux := http.NewServeMux()
	mux.Handle("/watch/", http.StripPrefix("/watch", f.h))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	r, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	return r, string(b)
}

func state(t *testing.T, c *http.Client, u string) stateJSON {
	t.Helper()
	r, body := get(t, c, u)
	if r.StatusCode != 200 {
		t.Fatalf("%s: %d %s", u, r.StatusCode, body)
	}
	var s stateJSON
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPageStatesAndFiles(t *testing.T) {
	f := newFixture(t)
	base := f.srv.URL + "/watch/" + openTok + "/"
	r, body := get(t, nil, base)
	if r.StatusCode != 200 || !strings.Contains(body, "Weekly &lt;webinar&gt;") || !strings.Contains(body, "watch.js") {
		t.Fatalf("page: %d\n%s", r.StatusCode, body)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if r.Header.Get("Referrer-Policy") != "no-referrer" || len(r.Cookies()) != 0 {
		t.Errorf("referrer policy %q, cookies %v", r.Header.Get("Referrer-Policy"), r.Cookies())
	}
	// Every URL in the page is relative (same host).
	for _, attr := range []string{`src="`, `href="`} {
		for _, part := range strings.Split(body, attr)[1:] {
			if u := part[:strings.IndexByte(part, '"')]; strings.Contains(u, "//") {
				t.Errorf("absolute URL in the page: %s", u)
			}
		}
	}
	if s := state(t, nil, base+"state"); s.State != StateSoon {
		t.Errorf("before the playlist: %+v", s)
	}
	if r, _ := get(t, nil, base+"hls/index.m3u8"); r.StatusCode != 404 || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("missing playlist: %d %q", r.StatusCode, r.Header.Get("Cache-Control"))
	}

	os.WriteFile(filepath.Join(f.dir, "0badcafe-init.mp4"), []byte("init"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "0badcafe-00000.m4s"), []byte("segment"), 0o644)
	os.WriteFile(filepath.Join(f.dir, ".tmp-0badcafe-00001.m4s"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "secret.txt"), []byte("no"), 0o644)
	os.WriteFile(filepath.Join(f.dir, "index.m3u8"), []byte("#EXTM3U\n#EXTINF:2,\n0badcafe-00000.m4s\n"), 0o644)
	f.names = []string{"Alice", "Bob"}
	if s := state(t, nil, base+"state"); s.State != StateLive || strings.Join(s.Speakers, ",") != "Alice,Bob" {
		t.Errorf("live: %+v", s)
	}
	for _, tc := range []struct{ file, ctype, cache string }{
		{"index.m3u8", "application/vnd.apple.mpegurl", "public, max-age=1"},
		{"0badcafe-init.mp4", "video/mp4", "public, max-age=31536000, immutable"},
		{"0badcafe-00000.m4s", "video/iso.segment", "public, max-age=31536000, immutable"},
	} {
		r, _ := get(t, nil, base+"hls/"+tc.file)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != tc.ctype || r.Header.Get("Cache-Control") != tc.cache {
			t.Errorf("%s: %d %q %q", tc.file, r.StatusCode, r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"))
		}
	}
	for _, bad := range []string{".tmp-0badcafe-00001.m4s", "secret.txt", "..%2fsecret.txt", "0badcafe-00009.m4s"} {
		if r, _ := get(t, nil, base+"hls/"+bad); r.StatusCode != 404 {
			t.Errorf("%s served: %d", bad, r.StatusCode)
		}
	}
	os.WriteFile(filepath.Join(f.dir, "index.m3u8"), []byte("#EXTM3U\n#EXTINF:2,\n0badcafe-00000.m4s\n#EXT-X-ENDLIST\n"), 0o644)
	if s := state(t, nil, base+"state"); s.State != StateEnded || len(s.Speakers) != 0 {
		t.Errorf("ended: %+v", s)
	}
	if r, _ := get(t, nil, base+"hls/index.m3u8"); r.Header.Get("Cache-Control") != "public, max-age=60" {
		t.Errorf("ended playlist cache %q", r.Header.Get("Cache-Control"))
	}
	for _, u := range []string{"/watch/unknown-token-123456/", "/watch/x/", "/watch/" + openTok + "/nothing"} {
		if r, _ := get(t, nil, f.srv.URL+u); r.StatusCode != 404 {
			t.Errorf("%s: %d", u, r.StatusCode)
		}
	}
	for _, a := range []string{"watch.js", "watch.css", "icon.svg"} {
		if r, _ := get(t, nil, f.srv.URL+"/watch/_/"+a); r.StatusCode != 200 {
			t.Errorf("asset %s: %d", a, r.StatusCode)
		}
	}
}

func TestViewers(t *testing.T) {
	f := newFixture(t)
	base := f.srv.URL + "/watch/" + openTok + "/state?v="
	for _, v := range []string{"aaaaaaaaaaaa", "bbbbbbbbbbbb", "aaaaaaaaaaaa", "short", "cccccccccccc"} {
		state(t, nil, base+v)
	}
	if n := f.h.Viewers(openTok); n != 3 {
		t.Errorf("%d viewers, want 3 (one repeated, one invalid ID)", n)
	}
	f.advance(20 * time.Second)
	if s := state(t, nil, base+"bbbbbbbbbbbb"); s.Viewers != 3 {
		t.Errorf("after 20 s: %d", s.Viewers)
	}
	f.advance(15 * time.Second) // a and c polled 35 s ago, b 15 s ago
	if n := f.h.Viewers(openTok); n != 1 {
		t.Errorf("after 35 s: %d viewers, want 1", n)
	}
	if n := f.h.Viewers(secretTok); n != 0 {
		t.Errorf("other broadcast: %d", n)
	}
}

func TestPasscode(t *testing.T) {
	f := newFixture(t)
	os.WriteFile(filepath.Join(f.dir, "index.m3u8"), []byte("#EXTM3U\n"), 0o644)
	base := f.srv.URL + "/watch/" + secretTok + "/"
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	_, body := get(t, c, base)
	if !strings.Contains(body, `name="passcode"`) || strings.Contains(body, "watch.js") {
		t.Fatalf("no passcode form:\n%s", body)
	}
	for _, u := range []string{base + "state", base + "hls/index.m3u8"} {
		if r, _ := get(t, c, u); r.StatusCode != 403 {
			t.Errorf("%s without passcode: %d", u, r.StatusCode)
		}
	}
	r, err := c.PostForm(base, url.Values{"passcode": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if !strings.Contains(r.Request.URL.RawQuery, "wrong") || len(jar.Cookies(r.Request.URL)) != 0 {
		t.Errorf("wrong passcode: %s, cookies %v", r.Request.URL, jar.Cookies(r.Request.URL))
	}
	r, err = c.PostForm(base, url.Values{"passcode": {"s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), "watch.js") {
		t.Errorf("after the passcode no player:\n%s", b)
	}
	if r, _ := get(t, c, base+"hls/index.m3u8"); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "private, max-age=1" {
		t.Errorf("playlist with cookie: %d %q", r.StatusCode, r.Header.Get("Cache-Control"))
	}
	// A forged cookie does not pass.
	req, _ := http.NewRequest("GET", base+"state", nil)
	req.AddCookie(&http.Cookie{Name: f.h.cookieName(secretTok), Value: "00"})
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 403 {
		t.Errorf("forged cookie: %v %v", r.StatusCode, err)
	}
	// Ten wrong tries a minute, then 429.
	nc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	codes := map[int]int{}
	for range 12 {
		r, err := nc.PostForm(base, url.Values{"passcode": {"guess"}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		codes[r.StatusCode]++
	}
	if codes[http.StatusTooManyRequests] != 3 { // 1 earlier + 9 more allowed
		t.Errorf("responses to 12 guesses: %v", codes)
	}
	f.advance(61 * time.Second)
	if r, _ := nc.PostForm(base, url.Values{"passcode": {"s3cret"}}); r.StatusCode != http.StatusSeeOther {
		t.Errorf("after a minute: %d", r.StatusCode)
	}
}
