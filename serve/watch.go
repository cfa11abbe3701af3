package serve

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/roomcast/roomcast/hls/watch"
)

// The watch pages of HLS broadcasts (package hls/watch), mounted at
// /watch/<token>/: no account, no cookie unless a passcode is set. Each
// HLS broadcast writes DATA/hls/<broadcast id>/; with its replay kept the
// directory outlives the broadcast (the same URL becomes the replay) until
// its recording is deleted or retention removes it.

// hlsDir is a broadcast's HLS directory.
func (s *Server) hlsDir(id string) string { return filepath.Join(s.cfg.Data, "hls", id) }

// watchSecrets opens a broadcast's sealed watch token and passcode.
func (s *Server) watchSecrets(row broadcastRow) (tok, pass string) {
	if len(row.WatchEnc) > 0 {
		tok, _ = s.keys.open(row.WatchEnc, "watch:"+row.ID)
	}
	if len(row.PassEnc) > 0 {
		pass, _ = s.keys.open(row.PassEnc, "wpass:"+row.ID)
	}
	return tok, pass
}

// newViewers builds the watch handler; it is mounted by routes.
func (s *Server) newViewers() {
	if err := os.MkdirAll(filepath.Join(s.cfg.Data, "hls"), 0o700); err != nil {
		s.log.Error().Err(err).Msg("creating the HLS directory")
	}
	s.viewers = watch.New(watch.Config{Lookup: s.lookupWatch, Log: s.cfg.Log, Now: s.cfg.Now})
}

// lookupWatch resolves a watch token: running broadcasts from memory (a
// page's segment requests never touch the database), others from SQLite.
func (s *Server) lookupWatch(tok string) (watch.Broadcast, bool) {
	s.mu.Lock()
	var l *live
	for _, r := range s.running {
		if r.watchTok != "" && r.watchTok == tok {
			l = r
			break
		}
	}
	s.mu.Unlock()
	if l != nil {
		return watch.Broadcast{Title: watchTitle(l.row), Dir: l.hlsDir, Passcode: l.passcode,
			Status: watch.StatusFunc(func() []string { return l.b.Status().SpeakerNames })}, true
	}
	row, err := s.st.broadcastByWatch(tokenHash(tok))
	if err != nil || !row.HLS {
		return watch.Broadcast{}, false
	}
	switch row.State {
	case "failed", "cancelled":
		// Never went live: nothing to watch, ever.
		if _, err := os.Stat(s.hlsDir(row.ID)); err != nil {
			return watch.Broadcast{}, false
		}
	}
	_, pass := s.watchSecrets(row)
	return watch.Broadcast{Title: watchTitle(row), Dir: s.hlsDir(row.ID), Passcode: pass}, true
}

func watchTitle(row broadcastRow) string {
	if t := strings.TrimSpace(row.Title); t != "" {
		return t
	}
	return "Live broadcast"
}

// viewersNow sums the viewers of the running broadcasts (for /metrics).
func (s *Server) viewersNow() int {
	s.mu.Lock()
	var toks []string
	for _, l := range s.running {
		if l.watchTok != "" {
			toks = append(toks, l.watchTok)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, t := range toks {
		n += s.viewers.Viewers(t)
	}
	return n
}

// removeHLS deletes a broadcast's HLS directory (its replay).
func (s *Server) removeHLS(broadcastID string) {
	if broadcastID == "" || strings.ContainsAny(broadcastID, `/\.`) {
		return
	}
	if err := os.RemoveAll(s.hlsDir(broadcastID)); err != nil {
		s.log.Warn().Err(err).Str("broadcast", broadcastID).Msg("removing the HLS replay")
	}
}

func (s *Server) mountWatch(m *http.ServeMux) {
	m.Handle("/watch/", http.StripPrefix("/watch", s.viewers))
}
