package sdklog

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	protologger "github.com/livekit/protocol/logger"
	"github.com/rs/zerolog"
)

func TestRedactor(t *testing.T) {
	r := Redactor{Secrets: []string{"0123456789abcdef-secret", "short"}}
	for _, c := range []struct{ in, want string }{
		{"secret 0123456789abcdef-secret here", "secret [REDACTED] here"},
		{"GET /rtc?access_token=abc.def.ghi&x=1", "GET /rtc?access_token=[REDACTED]&x=1"},
		{"token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig_nature-1 end", "token [REDACTED] end"},
		{"a short word stays", "a short word stays"},
	} {
		if got := r.String(c.in); got != c.want {
			t.Errorf("%q -> %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLoggerRedacts(t *testing.T) {
	var buf bytes.Buffer
	l := New(zerolog.New(&buf).Level(zerolog.TraceLevel), Redactor{Secrets: []string{"topsecret-123456"}})
	l.Infow("joining with eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.abcdef", "url", "ws://h/rtc?access_token=xyz", "key", "topsecret-123456")
	l.Errorw("failed", errors.New("bad topsecret-123456"), "n", 3)
	l.WithValues("room", "r").WithName("engine").Debugw("debug", "k", "v")
	out := buf.String()
	for _, leak := range []string{"topsecret-123456", "eyJ", "xyz"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q leaked:\n%s", leak, out)
		}
	}
	for _, want := range []string{`"level":"debug"`, `"level":"warn"`, `"level":"trace"`, `"sdk":"engine"`, `"room":"r"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in:\n%s", want, out)
		}
	}
}

// The SDK's process-wide logger routes each line to the room it names, and
// lines that name none (pion's) to the process logger, never to a room.
func TestRouterByIdentity(t *testing.T) {
	var a, b, p bytes.Buffer
	unA := Register("rc-A", zerolog.New(&a).Level(zerolog.DebugLevel), Redactor{})
	defer unA()
	unB := Register("rc-B", zerolog.New(&b).Level(zerolog.DebugLevel), Redactor{})
	SetProcessLogger(zerolog.New(&p).Level(zerolog.TraceLevel))
	defer SetProcessLogger(zerolog.Nop())
	l := protologger.LogRLogger(logr.New(router))
	l.Errorw("could not send subscription permission", errors.New("x"), "participant", "rc-A", "participantID", "PA")
	l.WithValues("participant", "rc-B").Infow("published track")
	l.WithComponent("pion.ice").Debugw("pingAllCandidates", "candidates", 2)
	if s := a.String(); !strings.Contains(s, "subscription permission") || strings.Contains(s, "published") || strings.Contains(s, "pingAll") {
		t.Errorf("room A got: %q", s)
	}
	if s := b.String(); !strings.Contains(s, "published track") || strings.Contains(s, "permission") || strings.Contains(s, "pingAll") {
		t.Errorf("room B got: %q", s)
	}
	if s := p.String(); !strings.Contains(s, "pingAllCandidates") || strings.Contains(s, "rc-") {
		t.Errorf("process logger got: %q", s)
	}
	unB()
	b.Reset()
	l.Infow("late line", "participant", "rc-B")
	if b.Len() != 0 || !strings.Contains(p.String(), "late line") {
		t.Errorf("after unregister: room %q, process %q", b.String(), p.String())
	}
}
