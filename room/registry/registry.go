// Package registry maps a room URL's scheme to the connector that joins it.
// It is the only place outside the connectors that imports them: the
// command and the session core open rooms with Open and see only room.Room.
//
// Schemes:
//
//	ws, wss, http, https        LiveKit (wss://host/room-name)
//	livekit+ws, livekit+wss, …  LiveKit, explicit
//	janus+ws, janus+wss, janus+http, janus+https   Janus VideoRoom (janus+ws://host:8188/<room-id>)
//
// Connectors in progress add their rows to the table below (issue 7):
//
//	bbb+https, bbb+http                            BigBlueButton
//	demo                                           the synthetic room (demo:…), no network
package registry

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/bbb"
	"github.com/roomcast/roomcast/room/janus"
	"github.com/roomcast/roomcast/room/livekit"
	"github.com/roomcast/roomcast/room/livekit/sdklog"
)

// Constructor builds a connector's Room from the neutral configuration.
// Nothing connects before Room.Start. Errors wrap a room sentinel
// (room.ErrConfig for a URL or credentials the connector cannot use).
type Constructor func(cfg room.Config) (room.Room, error)

// connectors is fixed at build time: no Register function, so two sessions
// in one process can never disagree about a scheme.
var connectors = map[string]Constructor{
	"ws":            livekit.Open,
	"wss":           livekit.Open,
	"http":          livekit.Open,
	"https":         livekit.Open,
	"livekit+ws":    livekit.Open,
	"livekit+wss":   livekit.Open,
	"livekit+http":  livekit.Open,
	"livekit+https": livekit.Open,
	"janus+ws":      janus.Open,
	"janus+wss":     janus.Open,
	"janus+http":    janus.Open,
	"janus+https":   janus.Open,
	// BigBlueButton 3: its LiveKit room, found through the BBB API.
	"bbb+http":  bbb.Open,
	"bbb+https": bbb.Open,
	// Hooks (other connectors of issue 7 fill these in):
	// "demo": demo.Open,
}

// SetProcessLogger sends connectors' process-wide log lines that belong to
// no room (pion's ICE/DTLS lines through the LiveKit SDK's global logger)
// to l. main calls it once; rooms log through their own Config.Logger.
func SetProcessLogger(l zerolog.Logger) { sdklog.SetProcessLogger(l) }

// Scheme returns the scheme of a room URL, lower case ("" when it has
// none: a bare room name).
func Scheme(roomURL string) string {
	i := strings.Index(roomURL, ":")
	if i <= 0 {
		return ""
	}
	s := strings.ToLower(roomURL[:i])
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return ""
		}
	}
	return s
}

// Lookup returns the connector for a scheme.
func Lookup(scheme string) (Constructor, bool) {
	c, ok := connectors[strings.ToLower(scheme)]
	return c, ok
}

// Schemes lists the known schemes, sorted (for help and error texts).
func Schemes() []string {
	out := make([]string, 0, len(connectors))
	for s := range connectors {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Open builds the Room for cfg.URL with the connector of its scheme. An
// unknown scheme or a URL without one wraps room.ErrConfig.
func Open(cfg room.Config) (room.Room, error) {
	scheme := Scheme(cfg.URL)
	if scheme == "" {
		return nil, fmt.Errorf("%w: room URL %q has no scheme (wss://host/room, janus+ws://host:8188/1234, …)",
			room.ErrConfig, redact(cfg.URL))
	}
	open, ok := Lookup(scheme)
	if !ok {
		return nil, fmt.Errorf("%w: no connector for %q URLs (known: %s)", room.ErrConfig, scheme, strings.Join(Schemes(), ", "))
	}
	return open(cfg)
}

// redact drops a URL's user info and query, where credentials could hide.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
