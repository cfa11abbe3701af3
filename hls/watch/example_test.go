package watch_test

import (
	"net/http"

	"github.com/roomcast/roomcast/hls/watch"
)

// A server with many broadcasts mounts one Handler and resolves tokens
// from its own store; the page lives at /watch/<token>/.
func Example() {
	type row struct{ title, dir, passcode string }
	store := map[string]row{"Zq3...token": {"Weekly webinar", "/var/lib/roomcast/b/42/hls", ""}}
	h := watch.New(watch.Config{Lookup: func(tok string) (watch.Broadcast, bool) {
		r, ok := store[tok]
		return watch.Broadcast{Title: r.title, Dir: r.dir, Passcode: r.passcode}, ok
	}})
	mux := http.NewServeMux()
	mux.Handle("/watch/", http.StripPrefix("/watch", h))
	_ = h.Viewers("Zq3...token") // for the host's status and metrics
	_ = mux
}
