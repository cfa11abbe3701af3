package livekit

import (
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room/livekit/sdklog"
)

// redactor blanks the token, the API secret and anything token-shaped from
// log lines and error texts.
type redactor = sdklog.Redactor

func installSDKLogger(l zerolog.Logger) { sdklog.Install(l) }

var newSDKLogger = sdklog.New
