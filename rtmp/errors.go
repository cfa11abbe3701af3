package rtmp

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Everything but ErrClosed is caused by the
// destination or by the user's settings, never by a roomcast bug, so callers
// can map them onto "check your stream settings" exit codes with errors.Is.
var (
	// ErrInvalidURL: the destination is not rtmp(s)://host[:port]/app/key.
	ErrInvalidURL = errors.New("rtmp: invalid destination URL")
	// ErrKeySource: a ${VAR} or ${file:PATH} in a destination could not be
	// resolved (unset variable, unreadable or empty file).
	ErrKeySource = errors.New("rtmp: cannot resolve stream key")
	// ErrUnreachable: the host name does not resolve or nothing listens on
	// the port (connection refused, no route).
	ErrUnreachable = errors.New("rtmp: ingest unreachable")
	// ErrTimeout: a step (dial, TLS, RTMP handshake, connect, createStream,
	// publish, a write) got no answer in time. The message names the step.
	ErrTimeout = errors.New("rtmp: timed out")
	// ErrTLS: the TLS handshake failed, most often because the certificate
	// does not verify (self-signed servers need InsecureSkipVerify or a CA).
	ErrTLS = errors.New("rtmp: TLS failure")
	// ErrRefused: the server refused the RTMP connection itself (connect or
	// createStream answered _error, or the socket closed during them): a
	// wrong application name, a wrong port, or a server that is not RTMP.
	ErrRefused = errors.New("rtmp: connection refused by the server")
	// ErrRejected: the server refused to take the stream. ErrBadKey and
	// ErrAlreadyPublishing wrap it when the server says which; a server that
	// just closes the socket in answer to publish, or right after accepting
	// it (PeerTube, node-media-server), yields ErrRejected alone.
	ErrRejected = errors.New("rtmp: publish rejected by the server")
	// ErrBadKey: the server said the stream key (publishing name) is wrong
	// or not authorised.
	ErrBadKey = fmt.Errorf("%w: bad stream key", ErrRejected)
	// ErrAlreadyPublishing: another publisher holds this key. After a
	// network failure this can be our own previous, half-open connection;
	// the Publisher then retries with backoff until the server drops it.
	ErrAlreadyPublishing = fmt.Errorf("%w: stream key already publishing", ErrRejected)
	// ErrDisconnected: an established connection failed (reset, closed by
	// the server, write stalled past WriteTimeout).
	ErrDisconnected = errors.New("rtmp: connection lost")
	// ErrGaveUp: reconnecting failed for longer than Backoff.GiveUpAfter;
	// the error also wraps the last attempt's cause.
	ErrGaveUp = errors.New("rtmp: gave up reconnecting")
	// ErrClosed: the Publisher or Fanout was used after Close.
	ErrClosed = errors.New("rtmp: closed")
)

// stepError wraps a sentinel with the step it happened in and a scrubbed
// cause, so that errors.Is sees both the sentinel and the cause.
type stepError struct {
	kind  error  // one of the sentinels above
	step  string // "dial", "TLS handshake", "publish"...
	dest  string // redacted destination
	cause error  // may be nil
	msg   string // extra explanation, already free of secrets
}

func (e *stepError) Error() string {
	s := e.kind.Error()
	if e.dest != "" {
		s += " (" + e.dest + ")"
	}
	if e.step != "" {
		s += ": " + e.step
	}
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *stepError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}
