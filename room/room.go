package room

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/pseudo"
)

// Room is one connector's participant in one room. Create it with the
// connector's constructor (or room/registry.Open), join with Start, leave
// with Close. Events go to the Handler given at construction.
type Room interface {
	// Start joins the room and returns once connected (participants already
	// in the room are reported to the Handler right after), or with an
	// error wrapping ErrConfig, ErrUnauthorized, ErrNotFound or
	// ErrUnreachable within the connect timeout. It may be called once; a
	// Start after Close returns ErrClosed.
	Start(ctx context.Context) error
	// Close leaves the room, stops every track (closing its sink) and waits
	// for all the connector's goroutines. It is idempotent, may be called
	// while Start is joining (Start then returns ErrClosed), and must not be
	// called from a Handler or TrackSink method.
	Close() error
	// Now is the current time on the room media clock, the clock of every
	// Frame.PTS and SessionEvent.At: zero when the Room was created, running
	// at the speed of the local monotonic clock.
	Now() time.Duration
	// Done is closed when the room has ended: Close was called, Start
	// failed, or the server ended it (then Err says why and
	// Handler.RoomClosed was called).
	Done() <-chan struct{}
	// Err is nil while the room runs and after Close; otherwise why the
	// room ended (wrapping ErrRoomClosed or ErrDisconnected).
	Err() error
	// Identity is roomcast's own identity in the room (known after Start).
	Identity() string
}

// Config is what every connector needs to join. Fields a connector does not
// use are ignored. Zero durations take the connector's documented defaults.
type Config struct {
	// URL names the room; its scheme picks the connector (see
	// room/registry), e.g. wss://livekit.example.org/weekly-webinar or
	// janus+ws://127.0.0.1:8188/1234. Secrets must not be put in it (it is
	// logged, with anything token-shaped blanked).
	URL string
	// Credentials authenticate roomcast; never logged.
	Credentials Credentials
	// Identity and Name are roomcast's own identity and display name, where
	// the server asks for them. They default per connector ("roomcast-…",
	// "roomcast").
	Identity, Name string
	// ConnectTimeout bounds Start. It defaults to 10 s.
	ConnectTimeout time.Duration
	// Handler receives the events. Required.
	Handler Handler
	// Logger is used with the field component=<connector>. The zero Logger
	// discards.
	Logger zerolog.Logger
	// Pseudonyms names participants in info-level logs (identities and
	// names only at debug level). It defaults to a fresh per-session Namer;
	// share one with the Handler so both log the same ids.
	Pseudonyms *pseudo.Namer
}

// Credentials are the secrets a connector may need. None is ever logged or
// put in an error text.
type Credentials struct {
	// Token is an access token: a LiveKit JWT, a Janus token (token_auth).
	Token string
	// APIKey and APISecret: LiveKit mints roomcast's own token from them;
	// Janus sends APISecret as its api_secret.
	APIKey, APISecret string
	// PIN is the room's PIN (Janus VideoRoom "pin").
	PIN string
	// Secret is a server-side shared secret, for servers that sign or
	// authorise requests with one (BigBlueButton's checksum secret).
	Secret string
}

// Secrets lists the non-empty secrets, for log redaction.
func (c Credentials) Secrets() []string {
	var out []string
	for _, s := range []string{c.Token, c.APIKey, c.APISecret, c.PIN, c.Secret} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Announcer is implemented by connectors whose server has a channel through
// which roomcast can tell everyone in the room that it records (LiveKit's
// chat and participant attributes). The session announces the start and
// the stop of a recording (unless told not to); connectors without such a
// channel (Janus VideoRoom) do not implement it.
type Announcer interface {
	// Announce sends a.Text into the room's chat (nothing for "") and sets
	// roomcast's own recording indicator to a.Recording where the server
	// has one. It returns once sent (or with ctx's error, or an error
	// wrapping ErrNotPermitted when the credentials do not allow it). Call
	// it after Start and before Close.
	Announce(ctx context.Context, a Announcement) error
}

// Announcement is a message for everyone in the room.
type Announcement struct {
	// Text is the chat message ("": none).
	Text string
	// Recording is the state of roomcast's recording indicator.
	Recording bool
}
