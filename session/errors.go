package session

import (
	"errors"

	"github.com/roomcast/roomcast/room"
)

// Error classes. A session's errors match one of them with errors.Is while
// keeping their own text and their cause's sentinels (room.ErrUnauthorized,
// rtmp.ErrBadKey, mp4.ErrDiskFull…), so a page can say "room unreachable" or
// "stream key rejected" and the CLI can pick its exit code.
var (
	// ErrConfig: the configuration cannot work (bad URL, size, preset…).
	ErrConfig = errors.New("session: invalid configuration")
	// ErrRoom: joining failed or the room was lost (wraps room's
	// ErrUnauthorized, ErrNotFound, ErrUnreachable, ErrDisconnected).
	ErrRoom = errors.New("session: room failure")
	// ErrNoSpeaker: Config.WaitFirstSpeaker passed without a speaker.
	ErrNoSpeaker = errors.New("session: no speaker came")
	// ErrStream: a stream destination could not start (wraps rtmp's
	// ErrBadKey, ErrRejected, ErrUnreachable, ErrTLS…).
	ErrStream = errors.New("session: stream destination failed")
	// ErrOutput: the recording could not be written or finalised (wraps
	// recorder.ErrOutput, mp4's ErrCreate, ErrDiskFull, ErrWrite…).
	ErrOutput = errors.New("session: recording failed")
)

// classed is an error with a class: its text is the cause's.
type classed struct {
	class error
	err   error
}

func (e *classed) Error() string   { return e.err.Error() }
func (e *classed) Unwrap() []error { return []error{e.err, e.class} }
func classify(class, err error) error {
	if err == nil {
		return nil
	}
	var c *classed
	if errors.As(err, &c) {
		return err
	}
	return &classed{class: class, err: err}
}

// roomErr classes a room failure: a configuration the connector refused is
// ErrConfig, the rest ErrRoom.
func roomErr(err error) error {
	if errors.Is(err, room.ErrConfig) {
		return classify(ErrConfig, err)
	}
	return classify(ErrRoom, err)
}
