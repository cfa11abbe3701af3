package room

import "errors"

// Sentinel errors shared by every connector. Errors returned by Room.Start
// and passed to Handler.RoomClosed wrap exactly one of them; test with
// errors.Is. A connector may define its own, more precise sentinels with
// NewSentinel (livekit.ErrRoomMismatch is an ErrUnauthorized): errors.Is
// then matches both.
//
// ErrConfig is the user's command line or configuration (exit 2 in the
// CLI); ErrUnauthorized, ErrNotFound and ErrUnreachable are failures to join
// (exit 5); ErrRoomClosed ends a recording normally, ErrDisconnected is a
// room failure (exit 5); ErrClosed is roomcast's own Close.
var (
	// ErrConfig: the Config or URL is incomplete or contradictory, or no
	// connector handles the URL's scheme.
	ErrConfig = errors.New("invalid room configuration")
	// ErrUnauthorized: the server rejected roomcast's credentials (token,
	// API key or secret, room PIN) or they grant another room.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound: the room does not exist (and the server does not create
	// rooms on join).
	ErrNotFound = errors.New("room not found")
	// ErrUnreachable: the server could not be reached, or the media
	// connection did not come up within the connect timeout.
	ErrUnreachable = errors.New("cannot connect")
	// ErrRoomClosed: the server closed the room (deleted by an admin,
	// meeting ended) or removed roomcast.
	ErrRoomClosed = errors.New("room closed")
	// ErrDisconnected: the connection was lost and reconnecting gave up.
	ErrDisconnected = errors.New("disconnected")
	// ErrClosed: the Room was closed by its owner (Start after Close, or
	// Close during Start).
	ErrClosed = errors.New("closed")
	// ErrNotPermitted: the credentials do not allow what was asked (a token
	// without the grant to send data or update its own attributes, for
	// Announcer.Announce); the session goes on without it.
	ErrNotPermitted = errors.New("not permitted")
)

// NewSentinel returns a new sentinel error with its own text that also
// matches kind (one of the sentinels above) under errors.Is. Connectors use it to
// keep their precise errors ("livekit: token is for another room") while
// the command only needs to know the kind.
func NewSentinel(kind error, text string) error { return &kindError{text: text, kind: kind} }

type kindError struct {
	text string
	kind error
}

func (e *kindError) Error() string { return e.text }
func (e *kindError) Unwrap() error { return e.kind }
