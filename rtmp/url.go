package rtmp

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Destination is a parsed rtmp:// or rtmps:// publishing URL. Its String
// method is redacted; Key holds the secret.
type Destination struct {
	Scheme string // "rtmp" or "rtmps"
	Host   string // host name or IP, without port
	Port   string // defaults to 1935 (rtmp) or 443 (rtmps)
	// App is the RTMP application: the URL path without its last segment
	// ("live" in rtmp://host/live/KEY).
	App string
	// Key is the publishing name (stream key), the last path segment plus
	// any query string, which some ingests use for authentication.
	Key string
}

// ParseURL parses rtmp(s)://host[:port]/app[/more]/key. It never echoes the
// URL in its errors, since the URL carries the stream key.
func ParseURL(raw string) (*Destination, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error quotes the whole URL: keep only the kind of mistake.
		return nil, fmt.Errorf("%w: %s", ErrInvalidURL, Redact(raw))
	}
	d := &Destination{Scheme: strings.ToLower(u.Scheme), Host: u.Hostname(), Port: u.Port()}
	switch d.Scheme {
	case "rtmp":
		if d.Port == "" {
			d.Port = "1935"
		}
	case "rtmps":
		if d.Port == "" {
			d.Port = "443"
		}
	default:
		return nil, fmt.Errorf("%w: scheme must be rtmp or rtmps: %s", ErrInvalidURL, Redact(raw))
	}
	if d.Host == "" {
		return nil, fmt.Errorf("%w: no host: %s", ErrInvalidURL, Redact(raw))
	}
	if u.User != nil {
		// RTMP has no standard place for URL credentials; refusing them
		// beats silently sending a password nowhere.
		return nil, fmt.Errorf("%w: user:password@ is not supported, put credentials in the key: %s", ErrInvalidURL, Redact(raw))
	}
	path := strings.Trim(u.EscapedPath(), "/")
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return nil, fmt.Errorf("%w: expected /app/key after the host: %s", ErrInvalidURL, Redact(raw))
	}
	if d.App, err = url.PathUnescape(path[:i]); err != nil {
		return nil, fmt.Errorf("%w: bad escape in the application: %s", ErrInvalidURL, Redact(raw))
	}
	if d.Key, err = url.PathUnescape(path[i+1:]); err != nil {
		return nil, fmt.Errorf("%w: bad escape in the key", ErrInvalidURL)
	}
	if u.RawQuery != "" {
		d.Key += "?" + u.RawQuery
	}
	return d, nil
}

// Addr is host:port for dialing.
func (d *Destination) Addr() string { return net.JoinHostPort(d.Host, d.Port) }

// TCURL is the tcUrl sent in connect: the URL up to the application.
func (d *Destination) TCURL() string {
	return d.Scheme + "://" + d.Addr() + "/" + d.App
}

// String is the redacted URL, safe for logs.
func (d *Destination) String() string {
	return d.Scheme + "://" + d.Addr() + "/" + d.App + "/" + redactedKey
}

// scrub removes the key (and its query-less form) from text that came from
// the server, which often echoes the stream path in onStatus descriptions.
func (d *Destination) scrub(s string) string {
	if d == nil || d.Key == "" {
		return s
	}
	s = strings.ReplaceAll(s, d.Key, redactedKey)
	if i := strings.IndexByte(d.Key, '?'); i > 0 {
		s = strings.ReplaceAll(s, d.Key[:i], redactedKey)
	}
	return s
}

const redactedKey = "<key>"

// Redact returns url with its stream key, query string and any user info
// replaced, keeping scheme, host, port and application so that log lines
// still say where a stream goes: rtmp://host:1935/live/<key>. Unparsable
// input yields "<unparsable URL>" rather than risking a leak. Unresolved
// ${...} references are not secrets and stay visible.
func Redact(raw string) string {
	s := strings.TrimSpace(raw)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/?#@") {
		return "<unparsable URL>"
	}
	// Drop user info, then keep host and every path segment but the last.
	host, path, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = "<redacted>@" + host[at+1:]
	}
	if q := strings.IndexAny(host, "?#"); q >= 0 {
		host = host[:q]
	}
	if q := strings.IndexAny(path, "?#"); q >= 0 {
		path = path[:q]
	}
	path = strings.Trim(path, "/")
	out := scheme + "://" + host
	if k := strings.LastIndex(path, "/${"); k > 0 && isReference(path[k+1:]) {
		return out + "/" + path
	}
	if i := strings.LastIndexByte(path, '/'); i > 0 {
		out += "/" + path[:i] + "/"
		last := path[i+1:]
		if isReference(last) {
			return out + last
		}
		return out + redactedKey
	}
	if path != "" {
		// A single segment is ambiguous (app or key): hide it.
		return out + "/" + redactedKey
	}
	return out
}

func isReference(s string) bool {
	return strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && strings.Count(s, "${") == 1
}

// KeyLookup reads stream-key sources for ResolveURL. Getenv and ReadFile
// default to os.Getenv and os.ReadFile.
type KeyLookup struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
}

// ResolveURL expands secret references in a --stream value so that the key
// never has to appear on the command line (where ps and shell history see it):
//
//	rtmp://host/live/${PEERTUBE_KEY}              environment variable
//	rtmps://host:1936/live/${file:/run/secrets/k} file contents, surrounding
//	                                              whitespace trimmed
//	${ROOMCAST_STREAM_URL}                        a whole URL from the environment
//
// References may appear anywhere in the value and are expanded once (an
// expanded value is not scanned again). "${" has no escape: stream keys
// containing it must come from a variable or file. Quote the value with
// single quotes in a shell so that the shell leaves ${...} alone. The result
// is validated with ParseURL. Errors name the variable or file, never the
// value.
func ResolveURL(value string, l KeyLookup) (*Destination, error) {
	getenv, readFile := l.Getenv, l.ReadFile
	if getenv == nil {
		getenv = os.Getenv
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	var b strings.Builder
	rest := value
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%w: unterminated ${ in %s", ErrKeySource, Redact(value))
		}
		ref := rest[i+2 : i+j]
		rest = rest[i+j+1:]
		var v string
		if path, ok := strings.CutPrefix(ref, "file:"); ok {
			if path == "" {
				return nil, fmt.Errorf("%w: ${file:} needs a path", ErrKeySource)
			}
			data, err := readFile(path)
			if err != nil {
				// The OS error names the path and the reason, not contents.
				return nil, fmt.Errorf("%w: %v", ErrKeySource, err)
			}
			v = strings.TrimSpace(string(data))
			if v == "" {
				return nil, fmt.Errorf("%w: key file %s is empty", ErrKeySource, path)
			}
		} else {
			if ref == "" || strings.ContainsAny(ref, " \t/=") {
				return nil, fmt.Errorf("%w: bad reference ${%s}: use ${VAR} or ${file:PATH}", ErrKeySource, ref)
			}
			v = getenv(ref)
			if v == "" {
				return nil, fmt.Errorf("%w: environment variable %s is unset or empty", ErrKeySource, ref)
			}
		}
		b.WriteString(v)
	}
	return ParseURL(b.String())
}
