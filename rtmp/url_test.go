package rtmp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "s3cr3t-KEY-0042"

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in                     string
		scheme, addr, app, key string
	}{
		{"rtmp://host/live/" + secret, "rtmp", "host:1935", "live", secret},
		{"rtmps://host/live/" + secret, "rtmps", "host:443", "live", secret},
		{"RTMP://host:1936/live/" + secret + "?pwd=x", "rtmp", "host:1936", "live", secret + "?pwd=x"},
		{"rtmp://[::1]:1935/app/inst/" + secret, "rtmp", "[::1]:1935", "app/inst", secret},
		{"rtmp://a.rtmp.youtube.com/live2/" + secret + "/", "rtmp", "a.rtmp.youtube.com:1935", "live2", secret},
	} {
		d, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("%s: %v", Redact(tc.in), err)
			continue
		}
		if d.Scheme != tc.scheme || d.Addr() != tc.addr || d.App != tc.app || d.Key != tc.key {
			t.Errorf("%s: got %+v", Redact(tc.in), *d)
		}
		if strings.Contains(d.String(), secret) || !strings.Contains(d.String(), d.App) {
			t.Errorf("String() = %q", d.String())
		}
		if strings.Contains(d.scrub("/live/"+tc.key+" is now published"), secret) {
			t.Error("scrub left the key")
		}
	}
	for _, bad := range []string{
		"http://host/live/" + secret, "rtmp:///live/" + secret, "rtmp://host/" + secret,
		"rtmp://host/live/", "rtmp://user:" + secret + "@host/live/x", "rtmp://host/live/%zz" + secret, "::" + secret,
	} {
		_, err := ParseURL(bad)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("%q: err %v, want ErrInvalidURL", Redact(bad), err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"rtmp://host/live/" + secret:                  "rtmp://host/live/<key>",
		"rtmps://host:1936/live/" + secret + "?a=b#c": "rtmps://host:1936/live/<key>",
		"rtmp://u:" + secret + "@host/live/k":         "rtmp://<redacted>@host/live/<key>",
		"rtmp://host/" + secret:                       "rtmp://host/<key>",
		"rtmp://host/a/b/" + secret:                   "rtmp://host/a/b/<key>",
		"rtmp://host/live/${PEERTUBE_KEY}":            "rtmp://host/live/${PEERTUBE_KEY}",
		"rtmp://host/live/${file:/run/secrets/key}":   "rtmp://host/live/${file:/run/secrets/key}",
		"rtmp://host/live/${A}" + secret:              "rtmp://host/live/<key>",
		secret:                                        "<unparsable URL>",
		"rtmp://host?x=" + secret:                     "rtmp://host",
		"  rtmp://host/live/" + secret + "  ":         "rtmp://host/live/<key>",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(...) = %q, want %q", got, want)
		}
		if strings.Contains(Redact(in), secret) {
			t.Errorf("Redact leaks: %q", Redact(in))
		}
	}
}

func TestResolveURL(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("  "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KEY": secret, "URL": "rtmps://h:1936/live/" + secret}
	l := KeyLookup{Getenv: func(k string) string { return env[k] }}
	for in, wantKey := range map[string]string{
		"rtmp://h/live/${KEY}":                  secret,
		"rtmp://h/live/${file:" + keyFile + "}": secret,
		"${URL}":                                secret,
		"rtmp://h/live/${KEY}?x=1":              secret + "?x=1",
		"rtmp://h/live/plain":                   "plain",
	} {
		d, err := ResolveURL(in, l)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if d.Key != wantKey {
			t.Errorf("%s: key %q, want %q", in, d.Key, wantKey)
		}
	}
	for _, in := range []string{
		"rtmp://h/live/${MISSING}", "rtmp://h/live/${file:" + filepath.Join(dir, "nope") + "}",
		"rtmp://h/live/${file:" + empty + "}", "rtmp://h/live/${KEY", "rtmp://h/live/${}", "rtmp://h/live/${file:}",
	} {
		_, err := ResolveURL(in, l)
		if !errors.Is(err, ErrKeySource) {
			t.Errorf("%s: err %v, want ErrKeySource", in, err)
		}
	}
	// A resolved but invalid URL must not echo the secret.
	env["BAD"] = "rtmp://h/" + secret
	if _, err := ResolveURL("${BAD}", l); !errors.Is(err, ErrInvalidURL) || strings.Contains(err.Error(), secret) {
		t.Errorf("bad resolved URL: %v", err)
	}
}
