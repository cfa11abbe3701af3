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

// The SDK keeps one process-wide logger (server-sdk-go v2.18.1, lksdk.SetLogger).
// Each room's own lines (engine, signalling, participants, transports) go to
// the logger given with lksdk.WithLogger at join, which roomcast sets per
// Room. What still goes through the global one: pion's own lines (ICE, DTLS,
// SCTP, SRTP; the SDK builds pion's LoggerFactory from the global logger when
// it creates a peer connection), a failed subscription-permission update,
// and region/failover lookups for LiveKit Cloud URLs. The global logger is
// therefore set once to a router: a line whose fields name a registered
// local identity ("participant", which the permission line carries) goes to
// that room's logger; pion's lines carry no room identity at all and go to
// the process logger (SetProcessLogger), or nowhere. They are never given to
// some session's logger, which is what would mix two sessions' logs.
var router = &routerSink{sinks: map[string]*zerologSink{}}

var installOnce sync.Once

func install() {
	installOnce.Do(func() { lksdk.SetLogger(protologger.LogRLogger(logr.New(router))) })
}

// Register routes the SDK's global lines that name identity (roomcast's
// identity in a room) to l (component=livekit-sdk, redacted by red) until
// the returned function is called.
func Register(identity string, l zerolog.Logger, red Redactor) (unregister func()) {
	install()
	if identity == "" {
		return func() {}
	}
	sink := &zerologSink{log: l.With().Str("component", "livekit-sdk").Logger(), red: red}
	router.mu.Lock()
	router.sinks[identity] = sink
	router.mu.Unlock()
	return func() {
		router.mu.Lock()
		if router.sinks[identity] == sink {
			delete(router.sinks, identity)
		}
		router.mu.Unlock()
	}
}

// SetProcessLogger sends the SDK's global lines that belong to no
// registered room (pion's) to l, redacted; a Nop logger drops them.
func SetProcessLogger(l zerolog.Logger) {
	install()
	sink := &zerologSink{log: l.With().Str("component", "livekit-sdk").Logger()}
	router.mu.Lock()
	router.process = sink
	router.mu.Unlock()
}

// Install sets the process logger unless one was set before (lktest's
// publishers, which share the test binary with the rooms under test).
func Install(l zerolog.Logger) {
	install()
	router.mu.Lock()
	set := router.process != nil
	router.mu.Unlock()
	if !set {
		SetProcessLogger(l)
	}
}

// identityKeys are the SDK's field names that carry a local identity.
var identityKeys = map[string]bool{"participant": true, "localParticipant": true, "identity": true}

// routerSink is the SDK's global logr sink: it picks a room's sink per line.
type routerSink struct {
	mu      sync.Mutex
	sinks   map[string]*zerologSink
	process *zerologSink
	// values and name accumulated by WithValues/WithName (pion's scope).
	values []any
	name   string
}

func (r *routerSink) pick(kv []any) *zerologSink {
	all := append(append([]any{}, r.values...), kv...)
	root := router
	root.mu.Lock()
	defer root.mu.Unlock()
	for i := 0; i+1 < len(all); i += 2 {
		if k, ok := all[i].(string); ok && identityKeys[k] {
			if s := root.sinks[fmt.Sprint(all[i+1])]; s != nil {
				return s
			}
		}
	}
	return root.process
}

func (r *routerSink) with(s *zerologSink) *zerologSink {
	c := *s
	c.values = append(append([]any{}, s.values...), r.values...)
	if r.name != "" {
		c.name = r.name
	}
	return &c
}

func (r *routerSink) Init(logr.RuntimeInfo) {}

func (r *routerSink) Enabled(level int) bool {
	// Decided per line, once the destination is known.
	return true
}

func (r *routerSink) Info(level int, msg string, kv ...any) {
	if s := r.pick(kv); s != nil && s.Enabled(level) {
		r.with(s).Info(level, msg, kv...)
	}
}

func (r *routerSink) Error(err error, msg string, kv ...any) {
	if s := r.pick(kv); s != nil {
		r.with(s).Error(err, msg, kv...)
	}
}

func (r *routerSink) WithValues(kv ...any) logr.LogSink {
	return &routerSink{values: append(append([]any{}, r.values...), kv...), name: r.name}
}

func (r *routerSink) WithName(name string) logr.LogSink {
	if r.name != "" {
		name = r.name + "." + name
	}
	return &routerSink{values: r.values, name: name}
}
