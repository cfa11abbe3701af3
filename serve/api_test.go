package serve

import (
	"bytes"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
)

func TestAuthFailures(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	anon := e.client()
	if code := anon.json("GET", "/api/v1/broadcasts", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	bad := e.client()
	bad.bearer = "rct_not-a-token"
	if code := bad.json("GET", "/api/v1/recordings", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	// Pages redirect to the login form.
	resp, _ := anon.do("GET", "/recordings", nil, nil)
	if resp.Request.URL.Path != "/login" {
		t.Errorf("anonymous /recordings ended at %s, want /login", resp.Request.URL.Path)
	}

	// Another account may not see or stop the admin's broadcast: 403.
	admin := e.api()
	b := admin.startDemo("demo:?speakers=1", "320x180", 0)
	if err := e.srv.CreateUser("guest", "guest-password-1", false); err != nil {
		t.Fatal(err)
	}
	tok, err := e.srv.CreateToken("guest", "t")
	if err != nil {
		t.Fatal(err)
	}
	e.secret = append(e.secret, tok)
	guest := e.client()
	guest.bearer = tok
	if code := guest.json("GET", "/api/v1/broadcasts/"+b.ID, nil, nil); code != http.StatusForbidden {
		t.Errorf("guest reading admin's broadcast: %d, want 403", code)
	}
	if code := guest.json("POST", "/api/v1/broadcasts/"+b.ID+"/stop", nil, nil); code != http.StatusForbidden {
		t.Errorf("guest stopping admin's broadcast: %d, want 403", code)
	}
	var list struct{ Broadcasts []BroadcastView }
	guest.json("GET", "/api/v1/broadcasts", nil, &list)
	if len(list.Broadcasts) != 0 {
		t.Errorf("guest sees %d broadcasts of another account", len(list.Broadcasts))
	}
	if code := admin.json("POST", "/api/v1/broadcasts/"+b.ID+"/stop", nil, nil); code != http.StatusAccepted {
		t.Errorf("admin stop: %d", code)
	}
	admin.waitState(b.ID, "done", 3*time.Minute)
}

func TestCSRF(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.client()
	c.login("admin", adminPassword)
	good := c.csrf
	// A cookie-authenticated API call without the token is refused.
	c.csrf = ""
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:", "size": "320x180"}, nil); code != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d, want 403", code)
	}
	c.csrf = "forged"
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:", "size": "320x180"}, nil); code != http.StatusForbidden {
		t.Errorf("POST with a wrong CSRF token: %d, want 403", code)
	}
	// A form post without the token (what a forged cross-site form sends).
	resp, _ := c.do("POST", "/destinations", strings.NewReader(url.Values{"name": {"x"}, "url": {"rtmp://127.0.0.1/live"}, "key": {streamKey}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("form without CSRF: %d, want 403", resp.StatusCode)
	}
	c.csrf = good
	var v BroadcastView
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:?speakers=1", "size": "320x180", "duration": "1s"}, &v); code != http.StatusCreated {
		t.Fatalf("POST with the CSRF token: %d", code)
	}
	c.waitState(v.ID, "done", 3*time.Minute)
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	c := e.client()
	form := func(pw string) int {
		resp, _ := c.do("POST", "/login", strings.NewReader(url.Values{"name": {"admin"}, "password": {pw}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		return resp.StatusCode
	}
	for i := 0; i < 5; i++ {
		if code := form("wrong"); code != http.StatusUnauthorized {
			t.Fatalf("bad login %d: %d, want 401", i, code)
		}
	}
	if code := form(adminPassword); code != http.StatusTooManyRequests {
		t.Errorf("right password after 5 failures: %d, want 429", code)
	}
	e.clock.Advance(2 * time.Minute)
	if code := form(adminPassword); code != http.StatusOK {
		t.Errorf("after the window: %d, want 200", code)
	}
}

// recordDemo runs a short demo broadcast to its end and returns its recording.
func recordDemo(t *testing.T, c *client, dur time.Duration) RecordingView {
	t.Helper()
	b := c.startDemo("demo:?speakers=2", "320x180", dur)
	c.waitState(b.ID, "done", dur+3*time.Minute)
	return c.waitRecording(b.ID)
}

func TestSignedLinksAndRanges(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	r := recordDemo(t, c, 2*time.Second)
	if r.State != "ready" || r.DownloadURL == "" || r.Size == 0 || r.Duration < 1.5 {
		t.Fatalf("recording %+v", r)
	}
	path := filepath.Join(e.dir, "recordings", r.ID+".mp4")
	want := fileBytes(t, path)
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("recording mode %v, want 0600", st.Mode().Perm())
	}
	dst, _ := os.Stat(filepath.Join(e.dir, "recordings"))
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("recordings dir mode %v, want 0700", dst.Mode().Perm())
	}
	anon := e.client() // a signed link needs no account
	resp, got := anon.do("GET", r.DownloadURL, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("download: %d, %d bytes, want 200 and the %d bytes of the file", resp.StatusCode, len(got), len(want))
	}
	// Range: 206 with exactly those bytes.
	resp, got = anon.do("GET", r.DownloadURL, nil, map[string]string{"Range": "bytes=100-1123"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[100:1124]) {
		t.Errorf("range: %d, %d bytes", resp.StatusCode, len(got))
	}
	if cr := resp.Header.Get("Content-Range"); cr != fmt.Sprintf("bytes 100-1123/%d", len(want)) {
		t.Errorf("Content-Range %q", cr)
	}
	resp, got = anon.do("GET", r.DownloadURL, nil, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(want)-10)})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, want[len(want)-10:]) {
		t.Errorf("suffix range: %d, %d bytes", resp.StatusCode, len(got))
	}
	// Tampering: another id, another expiry, a changed signature.
	u, _ := url.Parse(r.DownloadURL)
	q := u.Query()
	tamper := func(what string, f func(u *url.URL, q url.Values)) {
		u2 := *u
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = append([]string(nil), v...)
		}
		f(&u2, q2)
		u2.RawQuery = q2.Encode()
		if resp, _ := anon.do("GET", u2.String(), nil, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", what, resp.StatusCode)
		}
	}
	tamper("longer expiry", func(u *url.URL, q url.Values) { q.Set("exp", fmt.Sprint(time.Now().Add(365*24*time.Hour).Unix())) })
	tamper("flipped signature", func(u *url.URL, q url.Values) {
		s := []byte(q.Get("sig"))
		s[3] ^= 1
		q.Set("sig", string(s))
	})
	tamper("no signature", func(u *url.URL, q url.Values) { q.Del("sig") })
	tamper("other recording", func(u *url.URL, q url.Values) { u.Path = "/download/r_other" })
	// Expiry: 7 days by default.
	e.clock.Advance(7*24*time.Hour - time.Minute)
	if resp, _ := anon.do("GET", r.DownloadURL, nil, map[string]string{"Range": "bytes=0-9"}); resp.StatusCode != http.StatusPartialContent {
		t.Errorf("link just before expiry: %d", resp.StatusCode)
	}
	e.clock.Advance(2 * time.Minute)
	if resp, _ := anon.do("GET", r.DownloadURL, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired link: %d, want 403", resp.StatusCode)
	}
	// Delete through the API.
	if code := c.json("DELETE", "/api/v1/recordings/"+r.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("delete: %d", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file still there after delete: %v", err)
	}
}

func TestRecordingBeingWrittenNotDownloadable(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	b := c.startDemo("demo:?speakers=1", "320x180", 0)
	recs := c.recordings()
	if len(recs) != 1 || recs[0].State != "recording" || recs[0].DownloadURL != "" {
		t.Fatalf("while recording: %+v", recs)
	}
	// Even a correctly signed link is refused while it is written.
	link := "/download/" + recs[0].ID + "?" + e.srv.keys.signLink(recs[0].ID, time.Now().Add(time.Hour))
	if resp, _ := c.do("GET", link, nil, nil); resp.StatusCode != http.StatusConflict {
		t.Errorf("download while recording: %d, want 409", resp.StatusCode)
	}
	if code := c.json("DELETE", "/api/v1/recordings/"+recs[0].ID, nil, nil); code != http.StatusConflict {
		t.Errorf("delete while recording: %d, want 409", code)
	}
	c.json("POST", "/api/v1/broadcasts/"+b.ID+"/stop", nil, nil)
	c.waitState(b.ID, "done", 3*time.Minute)
}

func TestRetention(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	old := recordDemo(t, c, time.Second)
	e.clock.Advance(20 * 24 * time.Hour)
	young := recordDemo(t, c, time.Second)
	e.clock.Advance(11 * 24 * time.Hour) // old is 31 days old, young 11
	if n := e.srv.RunRetention(); n != 1 {
		t.Fatalf("retention deleted %d recordings, want 1", n)
	}
	recs := c.recordings()
	if len(recs) != 1 || recs[0].ID != young.ID {
		t.Fatalf("after retention: %+v", recs)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "recordings", old.ID+".mp4")); !os.IsNotExist(err) {
		t.Errorf("old file still there: %v", err)
	}
	if !strings.Contains(e.logs.String(), `"recording":"`+old.ID+`"`) || !strings.Contains(e.logs.String(), "deleted by retention") {
		t.Errorf("the deletion was not logged")
	}
	audit := string(fileBytes(t, filepath.Join(e.dir, "audit.jsonl")))
	if !strings.Contains(audit, `"actor":"retention","action":"recording.delete","target":"`+old.ID+`"`) {
		t.Errorf("the deletion is not in the audit log")
	}
}

func TestWebhooks(t *testing.T) {
	skipShort(t)
	const secret = "whsec-test-123456"
	type got struct {
		Event string
		Data  map[string]any
	}
	var mu sync.Mutex
	var events []got
	var attempts, badSigs int
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // first delivery fails: retried
			return
		}
		want := SignWebhook(secret, r.Header.Get("X-Roomcast-Timestamp"), body)
		if !hmac.Equal([]byte(want), []byte(r.Header.Get("X-Roomcast-Signature"))) {
			badSigs++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var g got
		_ = json.Unmarshal(body, &g)
		events = append(events, g)
	}))
	defer recv.Close()
	e := newEnv(t, func(c *Config) {
		c.Webhooks = []Webhook{{URL: recv.URL, Secret: secret}}
		c.WebhookBackoff = 50 * time.Millisecond
	})
	e.secret = append(e.secret, secret)
	c := e.api()
	r := recordDemo(t, c, time.Second)
	// A start the runner refuses fires "failed".
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "wss://127.0.0.1:1/room"}, nil); code == http.StatusCreated {
		t.Errorf("an unsupported room started")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		names := map[string]bool{}
		for _, g := range events {
			names[g.Event] = true
		}
		mu.Unlock()
		if names[EventStarted] && names[EventStopped] && names[EventRecordingReady] && names[EventFailed] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events received: %v", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// (The row is written after the receiver answered: give it a moment.)
	var failed, ok int
	for i := 0; i < 50; i++ {
		e.srv.st.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status=503`).Scan(&failed)
		e.srv.st.db.QueryRow(`SELECT count(*) FROM deliveries WHERE status=200`).Scan(&ok)
		if ok >= 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if failed != 1 || ok < 4 {
		t.Errorf("deliveries logged: %d failed, %d ok", failed, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if badSigs > 0 {
		t.Errorf("%d deliveries with a bad signature", badSigs)
	}
	for _, g := range events {
		if g.Event == EventRecordingReady && g.Data["id"] != r.ID {
			t.Errorf("recording.ready for %v, want %s", g.Data["id"], r.ID)
		}
	}
	// Every attempt is logged, the failed first one included.
}

func TestAuditChain(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	r := recordDemo(t, c, time.Second)
	c.do("GET", r.DownloadURL, nil, nil)
	c.json("DELETE", "/api/v1/recordings/"+r.ID, nil, nil)
	e.stop()
	p := filepath.Join(e.dir, "audit.jsonl")
	res, err := VerifyAuditFile(p, e.dir)
	if err != nil {
		t.Fatalf("intact log: %v", err)
	}
	if res.Seq < 5 {
		t.Errorf("%d entries, want start, stop/download/delete...", res.Seq)
	}
	orig := fileBytes(t, p)
	lines := strings.SplitAfter(string(orig), "\n")
	for _, want := range []string{`"action":"broadcast.start"`, `"action":"recording.download"`, `"action":"recording.delete"`} {
		if !strings.Contains(string(orig), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
	check := func(what, content string) {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyAuditFile(p, e.dir); err == nil {
			t.Errorf("%s: verification passed", what)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	check("edited line", strings.Replace(string(orig), `"action":"recording.delete"`, `"action":"recording.keep__"`, 1))
	check("edited actor", strings.Replace(string(orig), `"actor":"admin"`, `"actor":"guest"`, 1))
	check("removed line", strings.Join(append(append([]string{}, lines[:2]...), lines[3:]...), ""))
	check("removed last line", strings.Join(lines[:len(lines)-2], ""))
	_ = os.WriteFile(p, orig, 0o600)
}

func TestShutdownFinalisesAndRestartShowsInterrupted(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	b := c.startDemo("demo:?speakers=2", "320x180", 0)
	c.waitElapsed(b.ID, 2.5)
	e.stop() // what SIGTERM does
	e.start()
	c = e.api()
	recs := c.recordings()
	if len(recs) != 1 || recs[0].State != "interrupted" || recs[0].DownloadURL == "" {
		t.Fatalf("after restart: %+v", recs)
	}
	var v BroadcastView
	c.json("GET", "/api/v1/broadcasts/"+b.ID, nil, &v)
	if v.State != "interrupted" {
		t.Errorf("broadcast state %q, want interrupted", v.State)
	}
	playable(t, filepath.Join(e.dir, "recordings", recs[0].ID+".mp4"), 1.5)
}

// playable decodes a file to the end and checks its length.
func playable(t *testing.T, path string, minSeconds float64) {
	t.Helper()
	rd, err := av.OpenFile(path, zerolog.Nop())
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer rd.Close()
	frames := 0
	var last time.Duration
	for {
		it, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if it.Video != nil {
			frames++
			last = it.PTS
		}
	}
	if last.Seconds() < minSeconds || rd.Corrupt() > 0 {
		t.Errorf("%s: %d pictures up to %v, %d corrupt; want at least %.1f s clean", path, frames, last, rd.Corrupt(), minSeconds)
	}
}

func TestDestinationsNeverShowTheKey(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	var d DestinationView
	if code := c.json("POST", "/api/v1/destinations", map[string]string{"name": "nowhere", "url": "rtmp://127.0.0.1:1/live", "key": streamKey}, &d); code != http.StatusCreated {
		t.Fatalf("add destination: %d", code)
	}
	c.json("GET", "/api/v1/destinations", nil, nil)
	// The key is sealed in the database, not stored in clear.
	var enc []byte
	e.srv.st.db.QueryRow(`SELECT key_enc FROM destinations WHERE id=?`, d.ID).Scan(&enc)
	if len(enc) == 0 || bytes.Contains(enc, []byte(streamKey)) {
		t.Errorf("key stored as %q", enc)
	}
	db := fileBytes(t, filepath.Join(e.dir, "roomcast.db"))
	if bytes.Contains(db, []byte(streamKey)) {
		t.Errorf("the stream key is in the database file in clear")
	}
	// A refused destination is a clear error naming it, without the key.
	// (The session core starts the outputs after joining: the refusal comes
	// either at once, 422, or as the broadcast's failure.)
	var out map[string]any
	code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:?speakers=1", "size": "320x180", "destinations": []string{"nowhere"}}, &out)
	msg, _ := out["error"].(string)
	if code == http.StatusCreated {
		v := c.waitState(out["id"].(string), "failed", 60*time.Second)
		msg = v.Error
	} else if code != http.StatusUnprocessableEntity {
		t.Errorf("unreachable destination: %d", code)
	}
	if !strings.Contains(msg, "stream destination refused") || !strings.Contains(msg, "nowhere") && !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("unreachable destination: message %q", msg)
	}
	t.Logf("refused destination: %s", msg)
	// Nothing recorded, nothing left behind.
	if recs := c.recordings(); len(recs) != 0 {
		t.Errorf("a refused broadcast left recordings: %+v", recs)
	}
	// The page never shows it either.
	pc := e.client()
	pc.login("admin", adminPassword)
	pc.do("GET", "/destinations", nil, nil)
	pc.do("GET", "/", nil, nil)
}

func TestScheduledBroadcast(t *testing.T) {
	skipShort(t)
	e := newEnv(t, nil)
	c := e.api()
	var v BroadcastView
	at := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	if code := c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:?speakers=1", "size": "320x180", "start_at": at, "duration": "2s"}, &v); code != http.StatusCreated || v.State != "scheduled" {
		t.Fatalf("schedule: %d %+v", code, v)
	}
	c.waitState(v.ID, "done", 3*time.Minute)
	if r := c.waitRecording(v.ID); r.State != "ready" || r.Duration < 1.5 {
		t.Errorf("scheduled broadcast's recording: %+v", r)
	}
	// A scheduled one can be cancelled before it starts.
	at = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	c.json("POST", "/api/v1/broadcasts", map[string]any{"room": "demo:", "start_at": at}, &v)
	c.json("POST", "/api/v1/broadcasts/"+v.ID+"/stop", nil, nil)
	c.json("GET", "/api/v1/broadcasts/"+v.ID, nil, &v)
	if v.State != "cancelled" {
		t.Errorf("cancelled broadcast: %q", v.State)
	}
}
