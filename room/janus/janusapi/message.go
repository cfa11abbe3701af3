// Package janusapi speaks the Janus WebRTC gateway's client API (sessions,
// plugin handles, transactions, keepalives) over its WebSocket and HTTP
// long-poll transports. It knows nothing of rooms or media: room/janus
// drives the VideoRoom plugin with it, and the test harness's publishers
// use it too. Pure Go, no cgo.
package janusapi

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrConnect: the server could not be reached (refused, DNS, TLS, HTTP
	// status) or the connection dropped.
	ErrConnect = errors.New("janus: cannot connect")
	// ErrClosed: the Client was closed by its owner.
	ErrClosed = errors.New("janus: client closed")
)

// Error is an error answer from Janus itself ("janus":"error") or from a
// plugin (error_code/error in the plugin data).
type Error struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
	// Plugin is true for a plugin's error (its own code space, e.g. the
	// VideoRoom's 426 "no such room").
	Plugin bool `json:"-"`
}

func (e *Error) Error() string {
	if e.Plugin {
		return fmt.Sprintf("janus plugin error %d: %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("janus error %d: %s", e.Code, e.Reason)
}

// Janus core error codes that callers classify (janus/apierror.h).
const (
	CodeUnauthorized       = 403
	CodeUnauthorizedPlugin = 405
	CodeSessionNotFound    = 458
	CodeHandleNotFound     = 459
)

// JSEP is an SDP offer or answer as Janus carries it.
type JSEP struct {
	Type string `json:"type"`
	SDP  string `json:"sdp"`
	// Trickle false tells Janus every candidate is in the SDP (no trickle
	// messages will follow); without it Janus waits for a "completed"
	// trickle before declaring ICE failed.
	Trickle *bool `json:"trickle,omitempty"`
}

// NoTrickle is for JSEP.Trickle.
func NoTrickle() *bool { f := false; return &f }

// PluginData is a plugin's answer or event payload.
type PluginData struct {
	Plugin string          `json:"plugin"`
	Data   json.RawMessage `json:"data"`
}

// Message is anything Janus sends: answers to requests (success, ack,
// error) and events (event, webrtcup, media, slowlink, hangup, detached,
// timeout, trickle).
type Message struct {
	Janus       string      `json:"janus"`
	Transaction string      `json:"transaction,omitempty"`
	SessionID   uint64      `json:"session_id,omitempty"`
	Sender      uint64      `json:"sender,omitempty"`
	Data        *idData     `json:"data,omitempty"`
	Error       *Error      `json:"error,omitempty"`
	PluginData  *PluginData `json:"plugindata,omitempty"`
	JSEP        *JSEP       `json:"jsep,omitempty"`
	// Reason (hangup), Type/Receiving/Mid (media), Uplink/Lost (slowlink).
	Reason    string `json:"reason,omitempty"`
	Type      string `json:"type,omitempty"`
	Receiving *bool  `json:"receiving,omitempty"`
	Mid       string `json:"mid,omitempty"`
}

type idData struct {
	ID uint64 `json:"id"`
}

// pluginError extracts a plugin's error from its data (error_code, error).
func pluginError(pd *PluginData) error {
	if pd == nil || len(pd.Data) == 0 {
		return nil
	}
	var e struct {
		Code   int    `json:"error_code"`
		Reason string `json:"error"`
	}
	if json.Unmarshal(pd.Data, &e) != nil || e.Code == 0 {
		return nil
	}
	return &Error{Code: e.Code, Reason: e.Reason, Plugin: true}
}
