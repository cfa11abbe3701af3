// Package watch serves the viewers of roomcast's HLS broadcasts: a watch page
// per broadcast at an unguessable token URL (optionally behind a passcode),
// the playlist and segments with cache headers a reverse proxy or CDN can
// honour, and an approximate count of concurrent viewers.
//
// The page makes no request to any other host (Content-Security-Policy
// default-src 'self'): no fonts, no CDN, no analytics. It plays with hls.js
// (embedded, see assets/vendor) where Media Source Extensions exist, else with
// the browser's native HLS (Safari, iOS).
//
// Routes, relative to where the Handler is mounted (mount it with
// http.StripPrefix, e.g. at /watch/):
//
//	GET  /{token}/              the page ("starts soon", live, "ended, replay below")
//	POST /{token}/              passcode form: sets the only cookie the page uses
//	GET  /{token}/state?v=ID    JSON state, title, speakers, viewers; counts viewer ID
//	GET  /{token}/hls/{file}    index.m3u8, init and media segments
//	GET  /_/{asset}             the page's script, style, icon and hls.js
//
// Viewer counting keeps no personal data: each open page draws a random ID
// and reports it with its state polls; the count is the number of distinct
// IDs seen in the last ViewerWindow. No IP address, no cookie.
package watch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/hls"
)

// Broadcast is what the handler needs to know about one broadcast.
type Broadcast struct {
	// Title is shown on the page.
	Title string
	// Dir is the HLS directory (an hls.Writer's). A missing directory or
	// playlist means the broadcast has not started.
	Dir string
	// Passcode, when not empty, must be entered once per browser.
	Passcode string
	// Status gives the live details; nil shows none.
	Status Status
}

// Status is the small interface a running broadcast offers the page.
type Status interface {
	// Speakers returns the names of the people on screen now.
	Speakers() []string
}

// StatusFunc adapts a function to Status.
type StatusFunc func() []string

// Speakers calls f.
func (f StatusFunc) Speakers() []string { return f() }

// Lookup returns the broadcast a token names.
type Lookup func(token string) (Broadcast, bool)

// Config configures a Handler.
type Config struct {
	// Lookup finds broadcasts by token. Required.
	Lookup Lookup
	// ViewerWindow: a viewer counts while its page polled within this
	// long. It defaults to 30 s (the page polls every 5 s).
	ViewerWindow time.Duration
	// Log receives the handler's events (component=watch).
	Log zerolog.Logger
	// Now is the clock. It defaults to time.Now.
	Now func() time.Time
}

// Handler serves watch pages. Safe for concurrent use.
type Handler struct {
	cfg    Config
	log    zerolog.Logger
	key    [32]byte // signs passcode cookies; new per process
	page   *template.Template
	assets fs.FS
	hlsjs  bool

	mu       sync.Mutex
	viewers  map[string]map[string]time.Time // token -> viewer ID -> last poll
	failures map[string][]time.Time          // token -> recent wrong passcodes
	states   map[string]cachedState          // dir -> playlist state
}

type cachedState struct {
	mod   time.Time
	size  int64
	state string
}

// States of a broadcast, as the page and State report them.
const (
	StateSoon  = "soon"
	StateLive  = "live"
	StateEnded = "ended"
)

//go:embed assets
var embedded embed.FS

// New returns a Handler.
func New(cfg Config) *Handler {
	if cfg.ViewerWindow == 0 {
		cfg.ViewerWindow = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{
		cfg:      cfg,
		log:      cfg.Log.With().Str("component", "watch").Logger(),
		page:     template.Must(template.New("page").Parse(pageHTML)),
		viewers:  map[string]map[string]time.Time{},
		failures: map[string][]time.Time{},
		states:   map[string]cachedState{},
	}
	_, _ = rand.Read(h.key[:])
	h.assets, _ = fs.Sub(embedded, "assets")
	if st, err := fs.Stat(h.assets, "vendor/hls.min.js"); err == nil && st.Size() > 1000 {
		h.hlsjs = true
	}
	return h
}

// HasHLSJS reports whether hls.js is embedded (make hlsjs); without it the
// page relies on the browser's native HLS.
func (h *Handler) HasHLSJS() bool { return h.hlsjs }

// NewToken returns a fresh unguessable token (128 random bits, URL-safe).
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; "+
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("Referrer-Policy", "no-referrer") // the token is the secret
	hd.Set("X-Content-Type-Options", "nosniff")
	h.route(w, r)
}

// redirect sends a relative Location as is: http.Redirect would make it
// absolute from the path after http.StripPrefix, losing the mount point.
func redirect(w http.ResponseWriter, loc string, code int) {
	w.Header().Set("Location", loc)
	w.WriteHeader(code)
}

// route dispatches by hand: the token is a path segment next to the fixed
// asset prefix, which ServeMux patterns cannot express without conflict.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	first, rest, slash := strings.Cut(p, "/")
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case first == "_" && get:
		h.serveAsset(w, r, rest)
		return
	case !slash && get && first != "":
		redirect(w, first+"/", http.StatusMovedPermanently)
		return
	}
	r.SetPathValue("token", first)
	switch {
	case rest == "" && get:
		h.servePage(w, r)
	case rest == "" && r.Method == http.MethodPost:
		h.servePasscode(w, r)
	case rest == "state" && get:
		h.serveState(w, r)
	case strings.HasPrefix(rest, "hls/") && get && !strings.Contains(rest[4:], "/"):
		r.SetPathValue("file", rest[4:])
		h.serveHLS(w, r)
	default:
		http.NotFound(w, r)
	}
}

// broadcast resolves the request's token; it answers 404 itself.
func (h *Handler) broadcast(w http.ResponseWriter, r *http.Request) (string, Broadcast, bool) {
	tok := r.PathValue("token")
	if !tokenRE.MatchString(tok) {
		http.NotFound(w, r)
		return "", Broadcast{}, false
	}
	b, ok := h.cfg.Lookup(tok)
	if !ok {
		http.NotFound(w, r)
		return "", Broadcast{}, false
	}
	return tok, b, true
}

func (h *Handler) cookieName(tok string) string {
	s := sha256.Sum256([]byte(tok))
	return "roomcast_" + hex.EncodeToString(s[:6])
}

func (h *Handler) cookieValue(tok, passcode string) string {
	m := hmac.New(sha256.New, h.key[:])
	m.Write([]byte(tok))
	m.Write([]byte{0})
	m.Write([]byte(passcode))
	return hex.EncodeToString(m.Sum(nil))
}

// allowed reports whether the request may see the broadcast.
func (h *Handler) allowed(r *http.Request, tok string, b Broadcast) bool {
	if b.Passcode == "" {
		return true
	}
	c, err := r.Cookie(h.cookieName(tok))
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(c.Value), []byte(h.cookieValue(tok, b.Passcode)))
}

type pageData struct {
	Title    string
	Passcode bool // show the passcode form
	Wrong    bool
	HLSJS    bool
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	tok, b, ok := h.broadcast(w, r)
	if !ok {
		return
	}
	d := pageData{Title: b.Title, HLSJS: h.hlsjs}
	if d.Title == "" {
		d.Title = "Broadcast"
	}
	if !h.allowed(r, tok, b) {
		d.Passcode = true
		d.Wrong = r.URL.Query().Has("wrong")
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := h.page.Execute(w, d); err != nil {
		h.log.Debug().Err(err).Msg("writing the page")
	}
}

// servePasscode checks the form's passcode; at most 10 wrong tries per
// broadcast a minute.
func (h *Handler) servePasscode(w http.ResponseWriter, r *http.Request) {
	tok, b, ok := h.broadcast(w, r)
	if !ok {
		return
	}
	if b.Passcode == "" {
		redirect(w, "./", http.StatusSeeOther)
		return
	}
	now := h.cfg.Now()
	h.mu.Lock()
	recent := h.failures[tok][:0]
	for _, t := range h.failures[tok] {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	h.failures[tok] = recent
	limited := len(recent) >= 10
	h.mu.Unlock()
	if limited {
		http.Error(w, "Too many wrong passcodes; try again in a minute.", http.StatusTooManyRequests)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	given := r.PostFormValue("passcode")
	if subtle.ConstantTimeCompare([]byte(given), []byte(b.Passcode)) != 1 {
		h.mu.Lock()
		h.failures[tok] = append(h.failures[tok], now)
		h.mu.Unlock()
		redirect(w, "./?wrong", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(tok), Value: h.cookieValue(tok, b.Passcode), Path: "/",
		MaxAge: 24 * 3600, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	redirect(w, "./", http.StatusSeeOther)
}

// stateJSON is the page's poll answer.
type stateJSON struct {
	State    string   `json:"state"`
	Title    string   `json:"title"`
	Speakers []string `json:"speakers"`
	Viewers  int      `json:"viewers"`
}

var viewerRE = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// maxViewers bounds the IDs kept per broadcast (IDs are client-chosen).
const maxViewers = 100_000

func (h *Handler) serveState(w http.ResponseWriter, r *http.Request) {
	tok, b, ok := h.broadcast(w, r)
	if !ok {
		return
	}
	if !h.allowed(r, tok, b) {
		http.Error(w, "passcode required", http.StatusForbidden)
		return
	}
	if v := r.URL.Query().Get("v"); viewerRE.MatchString(v) {
		h.seen(tok, v)
	}
	s := stateJSON{State: h.State(b.Dir), Title: b.Title, Speakers: []string{}, Viewers: h.Viewers(tok)}
	if b.Status != nil && s.State == StateLive {
		if names := b.Status.Speakers(); names != nil {
			s.Speakers = names
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(s)
}

func (h *Handler) seen(tok, viewer string) {
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.viewers[tok]
	if m == nil {
		m = map[string]time.Time{}
		h.viewers[tok] = m
	}
	if _, ok := m[viewer]; !ok && len(m) >= maxViewers {
		h.pruneLocked(tok, now)
		if len(m) >= maxViewers {
			return
		}
	}
	m[viewer] = now
}

func (h *Handler) pruneLocked(tok string, now time.Time) {
	for id, t := range h.viewers[tok] {
		if now.Sub(t) > h.cfg.ViewerWindow {
			delete(h.viewers[tok], id)
		}
	}
	if len(h.viewers[tok]) == 0 {
		delete(h.viewers, tok)
	}
}

// Viewers is the approximate number of pages open on the broadcast now:
// distinct viewer IDs that polled within ViewerWindow.
func (h *Handler) Viewers(token string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pruneLocked(token, h.cfg.Now())
	return len(h.viewers[token])
}

// State reads a broadcast's state from its HLS directory: no playlist yet
// (soon), a live playlist, or one with EXT-X-ENDLIST (ended).
func (h *Handler) State(dir string) string {
	p := filepath.Join(dir, hls.PlaylistName)
	st, err := os.Stat(p)
	if err != nil {
		return StateSoon
	}
	h.mu.Lock()
	c, ok := h.states[dir]
	h.mu.Unlock()
	if ok && c.mod.Equal(st.ModTime()) && c.size == st.Size() {
		return c.state
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return StateSoon
	}
	state := StateLive
	if strings.Contains(string(b), "#EXT-X-ENDLIST") {
		state = StateEnded
	}
	h.mu.Lock()
	h.states[dir] = cachedState{mod: st.ModTime(), size: st.Size(), state: state}
	h.mu.Unlock()
	return state
}

// serveHLS serves the playlist and segments. Segment names never repeat
// (hls writes a random run prefix), so segments are immutable; the live
// playlist changes every segment and is cacheable for a second.
func (h *Handler) serveHLS(w http.ResponseWriter, r *http.Request) {
	tok, b, ok := h.broadcast(w, r)
	if !ok {
		return
	}
	name := r.PathValue("file")
	if !hls.SegmentName(name) {
		http.NotFound(w, r)
		return
	}
	if !h.allowed(r, tok, b) {
		http.Error(w, "passcode required", http.StatusForbidden)
		return
	}
	f, err := os.Open(filepath.Join(b.Dir, name))
	if err != nil {
		// A playlist not yet written, a segment deleted outside the window.
		w.Header().Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	scope := "public"
	if b.Passcode != "" {
		scope = "private"
	}
	hd := w.Header()
	switch path.Ext(name) {
	case ".m3u8":
		hd.Set("Content-Type", "application/vnd.apple.mpegurl")
		if h.State(b.Dir) == StateEnded {
			hd.Set("Cache-Control", scope+", max-age=60")
		} else {
			hd.Set("Cache-Control", scope+", max-age=1")
		}
	case ".m4s":
		hd.Set("Content-Type", "video/iso.segment")
		hd.Set("Cache-Control", scope+", max-age=31536000, immutable")
	default:
		hd.Set("Content-Type", "video/mp4")
		hd.Set("Cache-Control", scope+", max-age=31536000, immutable")
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
}

var assetTypes = map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}

func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	ct, ok := assetTypes[path.Ext(name)]
	if !ok || strings.Contains(name, "..") {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(h.assets, name)
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}
