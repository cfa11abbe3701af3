package janus

import (
	"fmt"

	"github.com/pion/logging"
	"github.com/rs/zerolog"
)

// pionLogs routes one Room's pion lines (ICE, DTLS, SRTP, interceptors)
// into that Room's logger: pion's default factory writes to the process's
// stderr, which would mix the lines of several broadcasts in one process.
// pion's info is per-connection detail (debug here); its errors become
// warnings (roomcast reports the failures that matter itself).
type pionLogs struct{ log zerolog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With().Str("pion", scope).Logger()}
}

type pionLogger struct{ log zerolog.Logger }

func (l pionLogger) Trace(msg string) { l.log.Trace().Msg(msg) }
func (l pionLogger) Tracef(format string, args ...any) {
	l.log.Trace().Msg(fmt.Sprintf(format, args...))
}
func (l pionLogger) Debug(msg string) { l.log.Trace().Msg(msg) }
func (l pionLogger) Debugf(format string, args ...any) {
	l.log.Trace().Msg(fmt.Sprintf(format, args...))
}
func (l pionLogger) Info(msg string) { l.log.Debug().Msg(msg) }
func (l pionLogger) Infof(format string, args ...any) {
	l.log.Debug().Msg(fmt.Sprintf(format, args...))
}
func (l pionLogger) Warn(msg string) { l.log.Debug().Msg(msg) }
func (l pionLogger) Warnf(format string, args ...any) {
	l.log.Debug().Msg(fmt.Sprintf(format, args...))
}
func (l pionLogger) Error(msg string) { l.log.Warn().Msg(msg) }
func (l pionLogger) Errorf(format string, args ...any) {
	l.log.Warn().Msg(fmt.Sprintf(format, args...))
}
