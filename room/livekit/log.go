package livekit

import (
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room/livekit/sdklog"
)

// redactor blanks the token, the API secret and anything token-shaped from
// log lines and error texts.
type redactor = sdklog.Redactor

// registerSDKLogger routes the SDK's process-wide lines that name identity
// to l (see sdklog); the room's own lines go through lksdk.WithLogger.
func registerSDKLogger(identity string, l zerolog.Logger, red redactor) func() {
	return sdklog.Register(identity, l, red)
}

var newSDKLogger = sdklog.New
