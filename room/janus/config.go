package janus

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/pseudo"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/janus/janusapi"
)

// Precise sentinels (each also matches the room sentinel it names under
// errors.Is).
var (
	// ErrNoSuchRoom: the VideoRoom does not exist (Janus plugin error 426).
	ErrNoSuchRoom = room.NewSentinel(room.ErrNotFound, "janus: no such room")
	// ErrWrongPIN: the room's PIN was wrong or missing (plugin error 433).
	ErrWrongPIN = room.NewSentinel(room.ErrUnauthorized, "janus: wrong or missing room PIN")
	// ErrAuth: Janus refused the API secret or token (core error 403/405).
	ErrAuth = room.NewSentinel(room.ErrUnauthorized, "janus: API secret or token refused")
)

// Config says where to join and how. Zero values take the documented
// defaults (applied by New).
type Config struct {
	// Server is the Janus API endpoint: ws://host:8188 (or a proxied path),
	// wss://…, or http(s)://host:8088/janus. Required.
	Server string
	// Room is the VideoRoom ID: a number, or a string on servers with
	// string_ids. Required.
	Room string
	// PIN is the room's PIN when it has one. Never logged.
	PIN string
	// APISecret (api_secret) and Token (token_auth) authenticate every
	// request when the server asks for them. Never logged.
	APISecret, Token string
	// Name is roomcast's display name in the room (visible to clients
	// that list participants). It defaults to "roomcast".
	Name string
	// ConnectTimeout bounds Start. It defaults to 10 s.
	ConnectTimeout time.Duration
	// KeepAlive is the keepalive interval, under the server's session
	// timeout (60 s by default). It defaults to 25 s.
	KeepAlive time.Duration
	// MediaTimeout ends a track that received no packet for this long (a
	// publisher that vanished without Janus noticing); the participant
	// stays until Janus reports it gone. It defaults to 10 s.
	MediaTimeout time.Duration
	// ReconnectFor is how long roomcast keeps trying to get back into the
	// room after losing the server (restart, network) before giving up
	// with ErrDisconnected. It defaults to 60 s.
	ReconnectFor time.Duration
	// InsecureTLS accepts any certificate for wss/https (test servers).
	InsecureTLS bool
	// LoopbackOnly restricts roomcast's own ICE candidates to IPv4 host
	// candidates (loopback included), for a Janus on the same machine. It
	// is set automatically when Server's host is a loopback address.
	LoopbackOnly bool
	// ICEFilter, when set, keeps only the local addresses it accepts as
	// roomcast's ICE host candidates. When nil, every address of the
	// machine is gathered, except when Janus's offer has loopback
	// candidates only (a Janus kept to this machine): then roomcast
	// gathers on loopback only, the one place such a Janus can be reached.
	// roomcast uses no STUN or TURN server.
	ICEFilter func(net.IP) bool
	// Handler receives the events. Required.
	Handler room.Handler
	// Logger is used with the field component=janus. The zero Logger
	// discards.
	Logger zerolog.Logger
	// Pseudonyms names participants in info-level logs (feed IDs and
	// display names only at debug level). It defaults to a fresh
	// per-session Namer.
	Pseudonyms *pseudo.Namer

	tlsConfig *tls.Config
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "roomcast"
	}
	if c.Pseudonyms == nil {
		c.Pseudonyms = pseudo.New()
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 25 * time.Second
	}
	if c.MediaTimeout <= 0 {
		c.MediaTimeout = 10 * time.Second
	}
	if c.ReconnectFor <= 0 {
		c.ReconnectFor = 60 * time.Second
	}
}

func (c *Config) validate() error {
	if c.Handler == nil {
		return fmt.Errorf("%w: janus: no Handler", room.ErrConfig)
	}
	u, err := url.Parse(c.Server)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: janus: server %q is not a URL", room.ErrConfig, janusapi.Redact(c.Server))
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("%w: janus: server URL scheme %q (want ws, wss, http or https)", room.ErrConfig, u.Scheme)
	}
	if c.Room == "" {
		return fmt.Errorf("%w: janus: no room ID", room.ErrConfig)
	}
	return nil
}

func (c *Config) apiOptions(onEvent func(*janusapi.Message), log zerolog.Logger) janusapi.Options {
	return janusapi.Options{
		APISecret: c.APISecret, Token: c.Token, KeepAlive: c.KeepAlive,
		InsecureTLS: c.InsecureTLS, OnEvent: onEvent, Logger: log,
	}
}

// roomID is the room as Janus wants it in requests: a number unless the ID
// is not one (string_ids servers).
func (c *Config) roomID() any {
	if n, err := strconv.ParseUint(c.Room, 10, 64); err == nil {
		return n
	}
	return c.Room
}

// Schemes are the URL schemes Open handles.
var Schemes = []string{"janus+ws", "janus+wss", "janus+http", "janus+https"}

// ParseURL splits a room URL, janus+ws://host:8188[/path]/<room>[?pin=…],
// into the Janus API endpoint (ws://host:8188[/path]; for janus+http(s) an
// empty path means Janus's default /janus) and the room ID (the last path
// segment). The PIN may come from the query (pin=); it is returned apart
// and never logged.
func ParseURL(roomURL string) (server, roomID, pin string, err error) {
	u, perr := url.Parse(roomURL)
	if perr != nil || u.Host == "" || !strings.HasPrefix(u.Scheme, "janus+") {
		return "", "", "", fmt.Errorf("%w: janus: room URL %q is not janus+ws|wss|http|https://host[:port][/path]/<room>", room.ErrConfig, janusapi.Redact(roomURL))
	}
	scheme := strings.TrimPrefix(u.Scheme, "janus+")
	switch scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", "", "", fmt.Errorf("%w: janus: room URL scheme %q (want janus+ws, janus+wss, janus+http or janus+https)", room.ErrConfig, u.Scheme)
	}
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndex(p, "/")
	roomID = p[i+1:]
	if roomID == "" {
		return "", "", "", fmt.Errorf("%w: janus: room URL %q names no room (janus+ws://host:8188/<room-id>)", room.ErrConfig, janusapi.Redact(roomURL))
	}
	if dec, derr := url.PathUnescape(roomID); derr == nil {
		roomID = dec
	}
	pin = u.Query().Get("pin")
	base := p[:max(i, 0)]
	if base == "" && (scheme == "http" || scheme == "https") {
		base = "janus"
	}
	s := url.URL{Scheme: scheme, Host: u.Host, Path: "/" + base}
	server = strings.TrimSuffix(s.String(), "/")
	return server, roomID, pin, nil
}

// Open is the connector's room.Config constructor (room/registry maps the
// janus+ws, janus+wss, janus+http and janus+https schemes to it).
// Credentials: PIN (or pin= in the URL), APISecret, Token.
func Open(cfg room.Config) (room.Room, error) {
	server, id, pin, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials.PIN != "" {
		pin = cfg.Credentials.PIN
	}
	return New(Config{
		Server: server, Room: id, PIN: pin,
		APISecret: cfg.Credentials.APISecret, Token: cfg.Credentials.Token,
		Name: cfg.Name, ConnectTimeout: cfg.ConnectTimeout,
		Handler: cfg.Handler, Logger: cfg.Logger, Pseudonyms: cfg.Pseudonyms,
	})
}
