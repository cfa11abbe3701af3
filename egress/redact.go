package egress

import (
	"net/url"
	"strings"
)

// redactURL hides what may be secret in a stream URL: the stream key (the
// last path segment), a password and the query. LiveKit egress requests
// carry the keys inside the URLs, so every log line and error goes through
// this. rtmp://host/live/{key} → rtmp://host/live/{redacted}.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "{redacted}"
	}
	out := u.Scheme + "://"
	if u.User != nil {
		out += "{redacted}@"
	}
	out += u.Host
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		out += "/" + p[:i] + "/{redacted}"
	} else if p != "" {
		out += "/{redacted}"
	}
	if u.RawQuery != "" {
		out += "?{redacted}"
	}
	return out
}
