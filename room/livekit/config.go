package livekit

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/livekit/protocol/auth"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/pseudo"
	"github.com/roomcast/roomcast/room"
)

// Config says where to join and how. Zero values take the documented
// defaults (applied by New).
type Config struct {
	// Pseudonyms names participants in info-level logs (see room.Config).
	// It defaults to a fresh Namer.
	Pseudonyms *pseudo.Namer
	// URL is the LiveKit server, ws(s):// or http(s)://. Required.
	URL string
	// Room is the room name. Required with APIKey/APISecret; with Token it
	// may be empty (the token's room is used) or must match the token.
	Room string
	// Token is an access token to join with. Takes precedence over
	// APIKey/APISecret. Never logged.
	Token string
	// APIKey and APISecret mint a token for roomcast itself: hidden,
	// recorder, subscribing (and sending only its announcements), valid
	// for TokenTTL. The secret is never
	// logged.
	APIKey, APISecret string
	// Identity is roomcast's participant identity. It defaults to
	// "roomcast-" and 8 random hex digits. With Token, the token's identity
	// wins.
	Identity string
	// Name is roomcast's display name. It defaults to "roomcast".
	Name string
	// TokenTTL is the lifetime of a minted token. It defaults to 30 minutes;
	// the server refreshes tokens of connected participants, so it only has
	// to outlast the join (and a rejoin after a server restart).
	TokenTTL time.Duration
	// ConnectTimeout bounds Start. It defaults to 10 s.
	ConnectTimeout time.Duration
	// VideoLatency is how long the jitter buffer waits for a missing video
	// packet (a NACK retransmission) before giving up. It defaults to 150 ms.
	VideoLatency time.Duration
	// AudioLatency is the same for audio (reordering only: Opus conceals
	// losses). It defaults to 40 ms.
	AudioLatency time.Duration
	// QueuePackets is the per-track queue between the RTP read loop and the
	// worker; packets beyond it are dropped and counted. It defaults to 1024.
	QueuePackets int
	// KeyframeInterval is the minimum time between two keyframe requests
	// (PLI) for one track. It defaults to 500 ms.
	KeyframeInterval time.Duration
	// MaxClockSkew is how far a publisher's wall clock may be from ours for
	// its sender-report times to be used as they are (which keeps
	// participants in sync with each other); beyond it the publisher's clock
	// is aligned to packet arrival instead. It defaults to 1 s.
	MaxClockSkew time.Duration
	// Handler receives the events. Required.
	Handler room.Handler
	// Logger is used with the field component=livekit. The zero Logger
	// discards.
	Logger zerolog.Logger
}

func (c *Config) setDefaults() {
	if c.Identity == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		c.Identity = "roomcast-" + hex.EncodeToString(b)
	}
	if c.Name == "" {
		c.Name = "roomcast"
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 30 * time.Minute
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.VideoLatency <= 0 {
		c.VideoLatency = 150 * time.Millisecond
	}
	if c.AudioLatency <= 0 {
		c.AudioLatency = 40 * time.Millisecond
	}
	if c.QueuePackets <= 0 {
		c.QueuePackets = 1024
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = 500 * time.Millisecond
	}
	if c.MaxClockSkew <= 0 {
		c.MaxClockSkew = time.Second
	}
}

func (c *Config) validate() error {
	if c.Handler == nil {
		return fmt.Errorf("%w: no Handler", ErrConfig)
	}
	if c.URL == "" {
		return fmt.Errorf("%w: no server URL", ErrConfig)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: server URL %q is not a URL", ErrConfig, redactor{}.String(c.URL))
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("%w: server URL scheme %q (want ws, wss, http or https)", ErrConfig, u.Scheme)
	}
	if c.Token == "" {
		if c.APIKey == "" || c.APISecret == "" {
			return fmt.Errorf("%w: need a token, or an API key and secret", ErrConfig)
		}
		if c.Room == "" {
			return fmt.Errorf("%w: no room name", ErrConfig)
		}
		return nil
	}
	room, err := tokenRoom(c.Token)
	if err != nil {
		return fmt.Errorf("%w: access token: %v", ErrUnauthorized, err)
	}
	if c.Room != "" && room != "" && room != c.Room {
		return fmt.Errorf("%w: token grants room %q, asked for %q", ErrRoomMismatch, room, c.Room)
	}
	return nil
}

// tokenRoom reads the room grant of a LiveKit JWT without verifying it (the
// server does that); it is only used to catch a token for another room
// before connecting.
func tokenRoom(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("not a JWT: %v", err)
	}
	var claims struct {
		Video *struct {
			Room string `json:"room"`
		} `json:"video"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", fmt.Errorf("not a JWT: %v", err)
	}
	if claims.Video == nil {
		return "", nil
	}
	return claims.Video.Room, nil
}

// mintToken signs roomcast's own token: it joins hidden, as a recorder
// (the room's recording flag turns on, clients show "recording"), may
// subscribe, and may send data (the start and stop announcements, see
// Announce); it publishes no media.
func mintToken(c *Config) (string, error) {
	at := auth.NewAccessToken(c.APIKey, c.APISecret)
	g := &auth.VideoGrant{RoomJoin: true, Room: c.Room, Hidden: true, Recorder: true}
	g.SetCanSubscribe(true)
	g.SetCanPublish(false)
	g.SetCanPublishData(true)
	at.SetVideoGrant(g).SetIdentity(c.Identity).SetName(c.Name).SetValidFor(c.TokenTTL)
	tok, err := at.ToJWT()
	if err != nil {
		return "", fmt.Errorf("%w: minting token: %v", ErrConfig, err)
	}
	return tok, nil
}

// Open is the connector's room.Config constructor (room/registry maps
// ws, wss, http, https, livekit+ws, livekit+wss, livekit+http and
// livekit+https to it). cfg.URL is the server URL with the room name as its
// last path segment (wss://livekit.example.org/weekly-webinar); a
// "livekit+" prefix of the scheme is dropped. Credentials: Token, or
// APIKey and APISecret. The rest takes Config's defaults.
func Open(cfg room.Config) (room.Room, error) {
	server, name, err := SplitURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	r, err := New(Config{
		URL: server, Room: name,
		Token: cfg.Credentials.Token, APIKey: cfg.Credentials.APIKey, APISecret: cfg.Credentials.APISecret,
		Identity: cfg.Identity, Name: cfg.Name, ConnectTimeout: cfg.ConnectTimeout,
		Handler: cfg.Handler, Logger: cfg.Logger, Pseudonyms: cfg.Pseudonyms,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// SplitURL splits a room URL into the server URL and the room name (its
// last path segment); the query is dropped and a "livekit+" scheme prefix
// removed.
func SplitURL(roomURL string) (server, name string, err error) {
	u, perr := url.Parse(strings.TrimPrefix(roomURL, "livekit+"))
	if perr != nil || u.Host == "" {
		return "", "", fmt.Errorf("%w: room URL %q is not a URL", ErrConfig, redactor{}.String(roomURL))
	}
	p := strings.Trim(u.Path, "/")
	i := strings.LastIndex(p, "/")
	name = p[i+1:]
	u.Path = "/" + p[:max(i, 0)]
	u.RawQuery = ""
	server = strings.TrimSuffix(u.String(), "/")
	if name == "" {
		return "", "", fmt.Errorf("%w: room URL %q names no room (wss://host/room)", ErrConfig, redactor{}.String(roomURL))
	}
	return server, name, nil
}
