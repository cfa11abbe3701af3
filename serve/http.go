package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// errorCode maps an error to an HTTP status.
func errorCode(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrAdmission):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrSpec):
		return http.StatusBadRequest
	case errors.Is(err, errBusy):
		return http.StatusConflict
	}
	return http.StatusUnprocessableEntity
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "running": s.runningCount()})
	})
	m.HandleFunc("GET /metrics", s.metrics)
	m.HandleFunc("GET /download/{id}", s.download)

	m.HandleFunc("POST /api/v1/broadcasts", s.requireAPI(s.apiStart))
	m.HandleFunc("GET /api/v1/broadcasts", s.requireAPI(s.apiList))
	m.HandleFunc("GET /api/v1/broadcasts/{id}", s.requireAPI(s.apiGet))
	m.HandleFunc("POST /api/v1/broadcasts/{id}/stop", s.requireAPI(s.apiStop))
	m.HandleFunc("GET /api/v1/recordings", s.requireAPI(s.apiRecordings))
	m.HandleFunc("DELETE /api/v1/recordings/{id}", s.requireAPI(s.apiDeleteRecording))
	m.HandleFunc("GET /api/v1/destinations", s.requireAPI(s.apiDestinations))
	m.HandleFunc("POST /api/v1/destinations", s.requireAPI(s.apiAddDestination))
	m.HandleFunc("GET /api/v1/events", s.requireAPI(s.events))

	s.mountWatch(m)
	s.pageRoutes(m)
	s.mux = m
}

func (s *Server) runningCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

func (s *Server) apiStart(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	var req BroadcastRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return
	}
	v, err := s.StartBroadcast(a.user, req)
	if err != nil {
		body := map[string]any{"error": err.Error()}
		if v.ID != "" {
			body["broadcast"] = v
		}
		writeJSON(w, errorCode(err), body)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) apiList(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	v, err := s.listBroadcasts(a.user)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"broadcasts": v})
}

func (s *Server) apiGet(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	v, row, err := s.broadcastView(r.PathValue("id"))
	if err == nil && row.UserID != a.user.ID && !a.user.Admin {
		err = errForbidden
	}
	if err != nil {
		writeJSONError(w, errorCode(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiStop(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	id := r.PathValue("id")
	if err := s.Stop(a.user, id); err != nil {
		writeJSONError(w, errorCode(err), err.Error())
		return
	}
	v, _, _ := s.broadcastView(id)
	writeJSON(w, http.StatusAccepted, v)
}

func (s *Server) apiRecordings(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	v, err := s.listRecordings(a.user)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": v})
}

func (s *Server) apiDeleteRecording(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	if err := s.DeleteRecording(a.user, r.PathValue("id")); err != nil {
		writeJSONError(w, errorCode(err), err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// DestinationView never carries the key.
type DestinationView struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	URL  string `json:"url"`
}

func (s *Server) apiDestinations(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	ds, err := s.st.destinations(a.user.ID)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []DestinationView{}
	for _, d := range ds {
		out = append(out, DestinationView{d.ID, d.Name, d.URL})
	}
	writeJSON(w, http.StatusOK, map[string]any{"destinations": out})
}

func (s *Server) apiAddDestination(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	var req struct{ Name, URL, Key string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "bad JSON body")
		return
	}
	v, err := s.AddDestination(a.user, req.Name, req.URL, req.Key)
	if err != nil {
		writeJSONError(w, errorCode(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

// AddDestination saves a destination; the key is sealed and never shown
// again.
func (s *Server) AddDestination(u user, name, rawURL, key string) (DestinationView, error) {
	name, rawURL, key = strings.TrimSpace(name), strings.TrimSpace(rawURL), strings.TrimSpace(key)
	if name == "" || strings.Contains(name, "://") || len(name) > 64 {
		return DestinationView{}, fmt.Errorf("%w: a destination needs a short name (not a URL)", ErrSpec)
	}
	if err := checkRTMPURL(rawURL); err != nil {
		return DestinationView{}, err
	}
	if key == "" || strings.ContainsAny(key, "/ \t\n") {
		return DestinationView{}, fmt.Errorf("%w: the stream key is empty or has spaces or slashes", ErrSpec)
	}
	tx, err := s.st.db.Begin()
	if err != nil {
		return DestinationView{}, err
	}
	defer tx.Rollback()
	res, err := tx.Exec(`INSERT INTO destinations(user_id,name,url,key_enc,created) VALUES(?,?,?,?,?)`, u.ID, name, rawURL, []byte{}, ms(s.now()))
	if err != nil {
		return DestinationView{}, fmt.Errorf("%w: a destination named %q exists already", ErrSpec, name)
	}
	id, _ := res.LastInsertId()
	if _, err := tx.Exec(`UPDATE destinations SET key_enc=? WHERE id=?`, s.keys.sealString(key, fmt.Sprintf("dest:%d", id)), id); err != nil {
		return DestinationView{}, err
	}
	if err := tx.Commit(); err != nil {
		return DestinationView{}, err
	}
	_ = s.audit.Append(u.Name, "destination.add", name, redactURL(rawURL+"/x"))
	return DestinationView{id, name, rawURL}, nil
}

// download serves a recording through a signed, expiring link, with range
// requests (http.ServeContent).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	if err := s.keys.checkLink(id, q.Get("exp"), q.Get("sig"), s.now()); err != nil {
		http.Error(w, "This download link is invalid or has expired: ask for a new one on the recordings page.", http.StatusForbidden)
		return
	}
	rec, err := s.st.recording(id)
	if err != nil {
		http.Error(w, "No such recording (deleted?).", http.StatusNotFound)
		return
	}
	if rec.State == "recording" {
		http.Error(w, "This recording is still being written.", http.StatusConflict)
		return
	}
	f, err := os.Open(rec.Path)
	if err != nil {
		http.Error(w, "The recording's file is missing.", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "cannot read the recording", http.StatusInternalServerError)
		return
	}
	actor := "link"
	if a, ok := s.authenticate(r); ok {
		actor = a.user.Name
	}
	// Log a download once, not once per range request.
	if r.Header.Get("Range") == "" || strings.HasPrefix(r.Header.Get("Range"), "bytes=0-") {
		_ = s.audit.Append(actor, "recording.download", id, clientIP(r))
	}
	name := "roomcast-" + rec.Created.Format("2006-01-02-1504") + "-" + id + ".mp4"
	w.Header().Set("Cache-Control", "private, no-store")
	if encrypted(rec.Path) {
		s.downloadEncrypted(w, r, rec, name, f, st)
		return
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// poster serves a recording's poster frame to its owner.
func (s *Server) poster(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	rec, err := s.st.recording(r.PathValue("id"))
	if err != nil || (rec.UserID != a.user.ID && !a.user.Admin) || rec.Poster == "" {
		http.NotFound(w, r)
		return
	}
	if filepath.Dir(rec.Poster) != s.recDir {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	http.ServeFile(w, r, rec.Poster)
}

// events streams the caller's broadcasts as Server-Sent Events, one
// snapshot a second.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	a, _ := authOf(r)
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		v, err := s.listBroadcasts(a.user)
		if err != nil {
			return
		}
		b, _ := json.Marshal(map[string]any{"broadcasts": v})
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// metrics is the Prometheus text exposition.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	lives := make([]*live, 0, len(s.running))
	for _, l := range s.running {
		lives = append(lives, l)
	}
	s.mu.Unlock()
	degraded, stepDowns := s.counters.degraded.Load(), s.counters.stepDowns.Load()
	frames, dropped, reconnects, bytes := s.counters.framesOut.Load(), s.counters.dropped.Load(), s.counters.reconnects.Load(), s.counters.bytes.Load()
	net := s.counters.net.load()
	for _, l := range lives {
		st := l.b.Status()
		net.Add(st.Network)
		frames += st.FramesOut
		dropped += st.Dropped
		degraded += st.Degraded
		stepDowns += st.PresetStepDowns
		bytes += st.BytesWritten
		for _, d := range st.Destinations {
			reconnects += d.Reconnects
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	p := func(name, typ, help string, v any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	p("roomcast_broadcasts_running", "gauge", "Broadcasts running now.", len(lives))
	p("roomcast_frames_out_total", "counter", "Video frames encoded.", frames)
	p("roomcast_frames_dropped_total", "counter", "Output frames lost (late beyond real time or dropped by a destination queue).", dropped)
	p("roomcast_frames_degraded_total", "counter", "Output frames repeated or skipped because encoding could not keep real time (the broadcast stayed live).", degraded)
	p("roomcast_preset_step_downs_total", "counter", "Steps down of a broadcast's x264 preset because encoding stayed slower than real time despite repeated or skipped frames.", stepDowns)
	p("roomcast_rtp_packets_received_total", "counter", "RTP packets received from the rooms.", net.Packets)
	p("roomcast_rtp_packets_lost_total", "counter", "RTP packets given up on (never received, or later than the jitter buffer waits).", net.Lost)
	p("roomcast_rtp_packets_late_total", "counter", "RTP packets that arrived after their turn.", net.Late)
	p("roomcast_rtp_packets_repaired_total", "counter", "RTP packets that filled a hole in time (reordered, or retransmitted after a NACK).", net.Repaired)
	p("roomcast_rtp_nacked_total", "counter", "RTP sequence numbers asked for again (RTCP NACK).", net.NACKed)
	p("roomcast_rtp_retransmissions_total", "counter", "Retransmitted RTP packets received (RTX).", net.Retransmissions)
	p("roomcast_keyframe_requests_total", "counter", "Keyframe requests (RTCP PLI) sent to publishers.", net.KeyframeRequests)
	p("roomcast_destination_reconnects_total", "counter", "RTMP destination reconnections.", reconnects)
	p("roomcast_bytes_written_total", "counter", "Bytes written to recordings and destinations.", bytes)
	p("roomcast_admission_refusals_total", "counter", "Broadcasts refused because the CPU could not keep them real time.", s.counters.refusals.Load())
	p("roomcast_watch_viewers", "gauge", "Viewers of the running broadcasts' watch pages now (approximate: open pages that polled in the last 30 s).", s.viewersNow())
	p("roomcast_cpu_cores_used", "gauge", "CPU cores this process used over the last seconds.", fmt.Sprintf("%.3f", s.cpu.rate()))
}
