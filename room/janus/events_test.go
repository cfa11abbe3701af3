package janus

import (
	"maps"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseDescription(t *testing.T) {
	for _, c := range []struct {
		desc, text string
		attrs      map[string]string
		screen     bool
	}{
		{"", "", nil, false},
		{"camera", "camera", nil, false},
		{"Screen", "Screen", nil, true},
		{"camera; roomcast.consent=no", "camera", map[string]string{"roomcast.consent": "no"}, false},
		{"roomcast.consent=no", "", map[string]string{"roomcast.consent": "no"}, false},
		{" screen ;a=1; b = 2 ;", "screen", map[string]string{"a": "1", "b": "2"}, true},
		{"camera; note=see the screen", "camera", map[string]string{"note": "see the screen"}, false},
		{"alice bob = talk; x=", "alice bob = talk", map[string]string{"x": ""}, false},
		{"=nokey; a=b=c", "=nokey", map[string]string{"a": "b=c"}, false},
	} {
		text, attrs := parseDescription(c.desc)
		if text != c.text || !maps.Equal(attrs, c.attrs) {
			t.Errorf("parseDescription(%q) = %q, %v; want %q, %v", c.desc, text, attrs, c.text, c.attrs)
		}
		if got := isScreen(c.desc, "x"); c.desc != "" && got != c.screen {
			t.Errorf("isScreen(%q) = %v, want %v", c.desc, got, c.screen)
		}
	}
	// A key set on several streams takes the last stream's value.
	a := streamAttributes([]streamInfo{
		{Description: "camera; roomcast.consent=yes; team=red"},
		{Description: "microphone; roomcast.consent=no"},
	})
	if want := map[string]string{"roomcast.consent": "no", "team": "red"}; !maps.Equal(a, want) {
		t.Errorf("streamAttributes = %v, want %v", a, want)
	}
}

func FuzzParseDescription(f *testing.F) {
	for _, s := range []string{"", "camera", "camera; roomcast.consent=no", "a=b=c;;=x; y = z ", "screen;\x00=\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		text, attrs := parseDescription(desc)
		for _, field := range strings.Split(text, "; ") {
			if !strings.Contains(desc, field) {
				t.Fatalf("text field %q is not in the description %q", field, desc)
			}
		}
		for k := range attrs {
			if k == "" || strings.ContainsAny(k, " \t;=") {
				t.Fatalf("bad key %q from %q", k, desc)
			}
		}
		if utf8.ValidString(desc) && !utf8.ValidString(text) {
			t.Fatalf("invalid text from valid description %q", desc)
		}
	})
}

func TestLoopbackOnly(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\n"
	for _, c := range []struct {
		cands string
		want  bool
	}{
		{"", false},
		{"a=candidate:1 1 udp 2015363583 127.0.0.1 60899 typ host\r\n", true},
		{"a=candidate:1 1 udp 2015363583 127.0.0.1 60899 typ host\r\na=candidate:2 1 udp 2015363583 ::1 60898 typ host\r\n", true},
		{"a=candidate:1 1 udp 2015363583 127.0.0.1 60899 typ host\r\na=candidate:2 1 udp 2015363583 192.0.2.2 60898 typ host\r\n", false},
		{"a=candidate:1 1 udp 2015363583 abc.local 60899 typ host\r\n", false},
	} {
		if got := loopbackOnly(head + c.cands); got != c.want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", c.cands, got, c.want)
		}
	}
}
