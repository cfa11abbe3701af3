package serve

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	sessionCookie = "roomcast_session"
	sessionTTL    = 12 * time.Hour
)

// loginLimiter counts failed logins per client address and per account.
type loginLimiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	now    func() time.Time
	fails  map[string][]time.Time
}

func newLoginLimiter(limit int, window time.Duration, now func() time.Time) *loginLimiter {
	return &loginLimiter{limit: limit, window: window, now: now, fails: map[string][]time.Time{}}
}

func (l *loginLimiter) recent(key string) []time.Time {
	cut := l.now().Add(-l.window)
	v := l.fails[key]
	i := 0
	for i < len(v) && v[i].Before(cut) {
		i++
	}
	v = v[i:]
	if len(v) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = v
	}
	return v
}

// blocked reports whether a login from ip for name must wait.
func (l *loginLimiter) blocked(ip, name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent("ip:"+ip)) >= l.limit || len(l.recent("user:"+name)) >= l.limit
}

func (l *loginLimiter) fail(ip, name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.fails["ip:"+ip] = append(l.recent("ip:"+ip), now)
	l.fails["user:"+name] = append(l.recent("user:"+name), now)
}

func clientIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

var (
	errBadLogin = errors.New("wrong account name or password")
	errLimited  = errors.New("too many failed logins: wait a minute and try again")
)

// login checks a password and opens a session; it returns the session
// token (for the cookie).
func (s *Server) login(r *http.Request, name, password string) (string, error) {
	ip := clientIP(r)
	if s.limiter.blocked(ip, name) {
		s.log.Warn().Str("ip", ip).Str("user", name).Msg("login refused: rate limit")
		return "", errLimited
	}
	u, err := s.st.userBy("name=?", name)
	if err != nil {
		// Same work as a real check, so timing does not tell which
		// accounts exist.
		_ = bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		s.limiter.fail(ip, name)
		s.log.Info().Str("ip", ip).Str("user", name).Msg("login failed")
		return "", errBadLogin
	}
	if bcrypt.CompareHashAndPassword([]byte(u.Hash), []byte(password)) != nil {
		s.limiter.fail(ip, name)
		s.log.Info().Str("ip", ip).Str("user", name).Msg("login failed")
		return "", errBadLogin
	}
	tok := randomToken(32)
	if _, err := s.st.db.Exec(`INSERT INTO sessions(token_hash,user_id,csrf,expires) VALUES(?,?,?,?)`,
		tokenHash(tok), u.ID, randomToken(24), ms(s.now().Add(sessionTTL))); err != nil {
		return "", err
	}
	s.log.Info().Str("ip", ip).Str("user", name).Msg("logged in")
	_ = s.audit.Append(name, "login", "", ip)
	return tok, nil
}

func (s *Server) setSessionCookie(w http.ResponseWriter, tok string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/", HttpOnly: true,
		Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
}

// auth is who is calling: an account through a session cookie (csrf set)
// or a bearer token (csrf empty: no cookie, no CSRF risk).
type auth struct {
	user   user
	csrf   string
	bearer bool
	token  string // session token hash, for logout
}

type ctxKey struct{}

func authOf(r *http.Request) (auth, bool) {
	a, ok := r.Context().Value(ctxKey{}).(auth)
	return a, ok
}

// authenticate reads the bearer token or the session cookie.
func (s *Server) authenticate(r *http.Request) (auth, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return auth{}, false
		}
		var uid int64
		if err := s.st.db.QueryRow(`SELECT user_id FROM api_tokens WHERE token_hash=?`, tokenHash(strings.TrimSpace(tok))).Scan(&uid); err != nil {
			return auth{}, false
		}
		u, err := s.st.userBy("id=?", uid)
		return auth{user: u, bearer: true}, err == nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return auth{}, false
	}
	var uid, exp int64
	var csrf string
	h := tokenHash(c.Value)
	err = s.st.db.QueryRow(`SELECT user_id,csrf,expires FROM sessions WHERE token_hash=?`, h).Scan(&uid, &csrf, &exp)
	if errors.Is(err, sql.ErrNoRows) || err != nil || s.now().UnixMilli() > exp {
		return auth{}, false
	}
	u, err := s.st.userBy("id=?", uid)
	return auth{user: u, csrf: csrf, token: h}, err == nil
}

// csrfOK checks an unsafe request made with a session cookie: the token
// must come in the X-CSRF-Token header or the csrf form field.
func csrfOK(r *http.Request, a auth) bool {
	if a.bearer {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(a.csrf)) == 1
}

// requireAPI wraps an API handler: 401 without credentials, 403 on a CSRF
// failure.
func (s *Server) requireAPI(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="roomcast"`)
			writeJSONError(w, http.StatusUnauthorized, "authentication required: a session or an Authorization: Bearer token")
			return
		}
		if !csrfOK(r, a) {
			writeJSONError(w, http.StatusForbidden, "missing or wrong CSRF token")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, a)))
	}
}

// requirePage wraps a page: the login page without a session, 403 on a
// CSRF failure.
func (s *Server) requirePage(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.authenticate(r)
		if !ok || a.bearer {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "Your session has ended: log in again.", http.StatusUnauthorized)
			return
		}
		if !csrfOK(r, a) {
			http.Error(w, "This form has expired (CSRF check failed): reload the page and try again.", http.StatusForbidden)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, a)))
	}
}

// dummyHash is a hash to compare against for unknown accounts.
func (s *Server) dummyHash() []byte {
	s.dummyOnce.Do(func() { s.dummy, _ = bcrypt.GenerateFromPassword([]byte(randomToken(8)), s.cfg.BcryptCost) })
	return s.dummy
}
