// Package sdklog routes the LiveKit server SDK's process-wide logger (which
// pion's logs also go through) into a zerolog.Logger, redacting anything
// shaped like a token. The SDK keeps that logger in a package variable read
// whenever a connection is made, so it is set exactly once per process, by
// whoever comes first: roomcast's Room on Start, or lktest before starting
// publishers.
package sdklog

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/rs/zerolog"
)

// Tokens travel in URLs (access_token=...) and in the SDK's own log fields;
// anything shaped like a JWT or a token query parameter is blanked.
var (
	jwtRE   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	tokenRE = regexp.MustCompile(`(?i)(access_token|token|secret)=[^&\s"']+`)
)

// Redactor removes known secrets and token-shaped strings from text.
type Redactor struct {
	// Secrets are replaced wherever they appear (those under 8 characters
	// are ignored: they would blank ordinary words).
	Secrets []string
}

// String returns s with secrets blanked.
func (r Redactor) String(s string) string {
	for _, sec := range r.Secrets {
		if len(sec) >= 8 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	s = jwtRE.ReplaceAllString(s, "[REDACTED]")
	return tokenRE.ReplaceAllString(s, "$1=[REDACTED]")
}

// zerologSink adapts zerolog to logr so the LiveKit SDK (which logs through
// livekit/protocol's logger) and pion (through the SDK's global logger) end
// up in roomcast's log, redacted. SDK "info" is chatty per-connection detail:
// it becomes debug; SDK errors become warnings (roomcast reports the errors
// that matter itself).
type zerologSink struct {
	log    zerolog.Logger
	red    Redactor
	name   string
	values []any
}

// New returns a LiveKit protocol logger writing to l through red.
func New(l zerolog.Logger, red Redactor) protologger.Logger {
	return protologger.LogRLogger(logr.New(&zerologSink{log: l, red: red}))
}

func (s *zerologSink) Init(logr.RuntimeInfo) {}

func (s *zerologSink) Enabled(level int) bool {
	if level > 0 {
		return s.log.GetLevel() <= zerolog.TraceLevel
	}
	return s.log.GetLevel() <= zerolog.DebugLevel
}

func (s *zerologSink) fields(e *zerolog.Event, kv []any) *zerolog.Event {
	if s.name != "" {
		e = e.Str("sdk", s.name)
	}
	all := append(append([]any{}, s.values...), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		k := fmt.Sprint(all[i])
		e = e.Str(k, s.red.String(fmt.Sprintf("%v", all[i+1])))
	}
	return e
}

func (s *zerologSink) Info(level int, msg string, kv ...any) {
	ev := s.log.Debug()
	if level > 0 {
		ev = s.log.Trace()
	}
	s.fields(ev, kv).Msg(s.red.String(msg))
}

func (s *zerologSink) Error(err error, msg string, kv ...any) {
	ev := s.log.Warn()
	if err != nil {
		ev = ev.Str("error", s.red.String(err.Error()))
	}
	s.fields(ev, kv).Msg(s.red.String(msg))
}

func (s *zerologSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.values = append(append([]any{}, s.values...), kv...)
	return &c
}

func (s *zerologSink) WithName(name string) logr.LogSink {
	c := *s
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

// The SDK keeps one process-wide logger for pion and its transports; left
// alone it prints to stderr. The first Room (or lktest publisher) to start
// routes it through its own zerolog, redacted; later ones reuse it.
var sdkLoggerOnce sync.Once

// Install routes the SDK's process-wide log to l (component=livekit-sdk),
// redacted, unless it was installed before.
func Install(l zerolog.Logger) {
	sdkLoggerOnce.Do(func() {
		lksdk.SetLogger(New(l.With().Str("component", "livekit-sdk").Logger(), Redactor{}))
	})
}
