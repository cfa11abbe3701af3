package serve

import (
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"
)

//go:embed web/*.html web/*.css web/*.js
var webFS embed.FS

// pageData is what every page template gets.
type pageData struct {
	Title, Page   string
	User          *user
	CSRF          string
	Error, Notice string
	Data          any
}

func (s *Server) pageRoutes(m *http.ServeMux) {
	pages := map[string]*template.Template{}
	for _, p := range []string{"login", "setup", "home", "recordings", "destinations", "account"} {
		pages[p] = template.Must(template.ParseFS(webFS, "web/base.html", "web/"+p+".html"))
	}
	s.pages = pages
	static, _ := fs.Sub(webFS, "web")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))

	m.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusOK, "login", "Log in", auth{}, "", nil)
	})
	m.HandleFunc("POST /login", s.pageLogin)
	m.HandleFunc("POST /logout", s.requirePage(s.pageLogout))
	m.HandleFunc("GET /setup", s.pageSetup)
	m.HandleFunc("POST /setup", s.pageSetup)
	m.HandleFunc("GET /{$}", s.requirePage(s.pageHome))
	m.HandleFunc("POST /broadcasts", s.requirePage(s.pageStart))
	m.HandleFunc("POST /broadcasts/{id}/stop", s.requirePage(s.pageStop))
	m.HandleFunc("GET /recordings", s.requirePage(s.pageRecordings))
	m.HandleFunc("GET /recordings/{id}/poster.jpg", s.requirePage(s.poster))
	m.HandleFunc("POST /recordings/{id}/delete", s.requirePage(s.pageDeleteRecording))
	m.HandleFunc("GET /destinations", s.requirePage(s.pageDestinations))
	m.HandleFunc("POST /destinations", s.requirePage(s.pageAddDestination))
	m.HandleFunc("POST /destinations/{id}/delete", s.requirePage(s.pageDeleteDestination))
	m.HandleFunc("GET /account", s.requirePage(s.pageAccount))
	m.HandleFunc("POST /account/tokens", s.requirePage(s.pageAccount))
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page, title string, a auth, errMsg string, data any) {
	d := pageData{Title: title, Page: page, CSRF: a.csrf, Error: errMsg, Data: data, Notice: r.URL.Query().Get("notice")}
	if a.user.ID != 0 {
		u := a.user
		d.User = &u
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	if err := s.pages[page].ExecuteTemplate(w, "base", d); err != nil {
		s.log.Error().Err(err).Str("page", page).Msg("rendering a page")
	}
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) {
	tok, err := s.login(r, r.PostFormValue("name"), r.PostFormValue("password"))
	if err != nil {
		code := http.StatusUnauthorized
		if errors.Is(err, errLimited) {
			code = http.StatusTooManyRequests
		}
		msg := err.Error()
		if !errors.Is(err, errBadLogin) && !errors.Is(err, errLimited) {
			msg = "Login failed: try again."
		}
		s.render(w, r, code, "login", "Log in", auth{}, msg, nil)
		return
	}
	s.setSessionCookie(w, tok, int(sessionTTL.Seconds()))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) pageLogout(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	_, _ = s.st.db.Exec(`DELETE FROM sessions WHERE token_hash=?`, a.token)
	s.setSessionCookie(w, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) pageSetup(w http.ResponseWriter, r *http.Request) {
	tok := r.FormValue("token")
	var exp int64
	err := s.st.db.QueryRow(`SELECT expires FROM setup_tokens WHERE token_hash=?`, tokenHash(tok)).Scan(&exp)
	if err != nil || s.now().UnixMilli() > exp {
		http.Error(w, "This setup link is invalid, used or expired. Restart roomcast serve without accounts, or set ROOMCAST_ADMIN_PASSWORD.", http.StatusForbidden)
		return
	}
	if r.Method == http.MethodGet {
		s.render(w, r, http.StatusOK, "setup", "Set up", auth{}, "", map[string]string{"Token": tok})
		return
	}
	name, pw := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	if name == "" || len(pw) < 10 {
		s.render(w, r, http.StatusBadRequest, "setup", "Set up", auth{}, "Choose an account name and a password of at least 10 characters.", map[string]string{"Token": tok})
		return
	}
	if err := s.CreateUser(name, pw, true); err != nil {
		s.render(w, r, http.StatusBadRequest, "setup", "Set up", auth{}, "Could not create the account: "+err.Error(), map[string]string{"Token": tok})
		return
	}
	_, _ = s.st.db.Exec(`DELETE FROM setup_tokens`)
	http.Redirect(w, r, "/login?notice=Account+created:+log+in.", http.StatusSeeOther)
}

func (s *Server) homeData(a auth, room string) (map[string]any, error) {
	all, err := s.listBroadcasts(a.user)
	if err != nil {
		return nil, err
	}
	var liveB, past []BroadcastView
	for _, b := range all {
		switch b.State {
		case "live", "starting", "stopping":
			liveB = append(liveB, b)
		default:
			past = append(past, b)
		}
	}
	dests, _ := s.st.destinations(a.user.ID)
	views := []DestinationView{}
	for _, d := range dests {
		views = append(views, DestinationView{d.ID, d.Name, d.URL})
	}
	return map[string]any{"Live": liveB, "Past": past, "Destinations": views, "Room": room}, nil
}

func (s *Server) pageHome(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	d, err := s.homeData(a, "demo:")
	if err != nil {
		http.Error(w, "cannot list broadcasts", http.StatusInternalServerError)
		return
	}
	s.render(w, r, http.StatusOK, "home", "Broadcasts", a, "", d)
}

func (s *Server) pageStart(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	rec := r.PostFormValue("record") != ""
	req := BroadcastRequest{Room: r.PostFormValue("room"), Layout: r.PostFormValue("layout"), Size: r.PostFormValue("size"),
		Record: &rec, Destinations: r.PostForm["destination"], Duration: strings.TrimSpace(r.PostFormValue("duration")),
		HLS: r.PostFormValue("hls") != "", Title: r.PostFormValue("title"), WatchPasscode: r.PostFormValue("watch_passcode"),
		Labels: r.PostFormValue("labels")}
	req.StartAt = r.PostFormValue("start_at")
	if req.StartAt == "" && r.PostFormValue("when") != "" {
		// No JavaScript: the browser's local time is taken as UTC.
		if t, err := time.Parse("2006-01-02T15:04", r.PostFormValue("when")); err == nil {
			req.StartAt = t.UTC().Format(time.RFC3339)
		}
	}
	_, err := s.StartBroadcast(a.user, req)
	if err != nil {
		d, _ := s.homeData(a, req.Room)
		s.render(w, r, errorCode(err), "home", "Broadcasts", a, friendlyPageError(err), d)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// friendlyPageError words an error for the page.
func friendlyPageError(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, ErrAdmission):
		return "The server is busy: " + strings.TrimPrefix(msg, ErrAdmission.Error()+": ")
	case errors.Is(err, ErrSpec):
		return strings.Replace(msg, ErrSpec.Error()+": ", "Please check the form: ", 1)
	}
	return msg
}

func (s *Server) pageStop(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	if err := s.Stop(a.user, r.PathValue("id")); err != nil {
		http.Error(w, "Cannot stop this broadcast: "+err.Error(), errorCode(err))
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (s *Server) pageRecordings(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	recs, err := s.listRecordings(a.user)
	if err != nil {
		http.Error(w, "cannot list recordings", http.StatusInternalServerError)
		return
	}
	s.render(w, r, http.StatusOK, "recordings", "Recordings", a, "", map[string]any{"Recordings": recs})
}

func (s *Server) pageDeleteRecording(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	if err := s.DeleteRecording(a.user, r.PathValue("id")); err != nil {
		http.Error(w, "Cannot delete: "+err.Error(), errorCode(err))
		return
	}
	http.Redirect(w, r, "/recordings?notice=Recording+deleted.", http.StatusSeeOther)
}

func (s *Server) destData(a auth) map[string]any {
	dests, _ := s.st.destinations(a.user.ID)
	views := []DestinationView{}
	for _, d := range dests {
		views = append(views, DestinationView{d.ID, d.Name, d.URL})
	}
	return map[string]any{"Destinations": views}
}

func (s *Server) pageDestinations(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	s.render(w, r, http.StatusOK, "destinations", "Destinations", a, "", s.destData(a))
}

func (s *Server) pageAddDestination(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	if _, err := s.AddDestination(a.user, r.PostFormValue("name"), r.PostFormValue("url"), r.PostFormValue("key")); err != nil {
		s.render(w, r, errorCode(err), "destinations", "Destinations", a, friendlyPageError(err), s.destData(a))
		return
	}
	http.Redirect(w, r, "/destinations?notice=Destination+saved.+Its+key+is+stored+encrypted+and+will+not+be+shown+again.", http.StatusSeeOther)
}

func (s *Server) pageDeleteDestination(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	_ = s.st.deleteDestination(a.user.ID, id)
	_ = s.audit.Append(a.user.Name, "destination.delete", r.PathValue("id"), "")
	http.Redirect(w, r, "/destinations", http.StatusSeeOther)
}

func (s *Server) pageAccount(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	data := map[string]string{}
	if r.Method == http.MethodPost {
		tok, err := s.CreateToken(a.user.Name, r.PostFormValue("label"))
		if err != nil {
			s.render(w, r, http.StatusInternalServerError, "account", "Account", a, "Could not create a token.", data)
			return
		}
		data["NewToken"] = tok
	}
	s.render(w, r, http.StatusOK, "account", "Account", a, "", data)
}
