package janusapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/room/janus/janusapi"
	"github.com/roomcast/roomcast/room/janus/janustest"
)

// Both transports against a real janus: session, attach, a synchronous
// plugin request, keepalives keeping a short session alive.
func TestTransports(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.StartWith(t, janustest.Options{SessionTimeout: 3 * time.Second})
	room := s.CreateRoom(janustest.RoomOptions{})
	for _, url := range []string{s.WSURL(), s.HTTPURL()} {
		t.Run(url[:strings.Index(url, ":")], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := janusapi.Dial(ctx, url, janusapi.Options{KeepAlive: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			h, err := c.Attach(ctx, "janus.plugin.videoroom")
			if err != nil {
				t.Fatal(err)
			}
			// Outlive the 3 s session timeout on keepalives alone.
			time.Sleep(4 * time.Second)
			m, err := c.Request(ctx, h, map[string]any{"request": "exists", "room": room}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				Exists bool `json:"exists"`
			}
			if err := json.Unmarshal(m.PluginData.Data, &res); err != nil || !res.Exists {
				t.Fatalf("exists: %s, %v", m.PluginData.Data, err)
			}
			_, err = c.Request(ctx, h, map[string]any{"request": "listparticipants", "room": room + 1}, nil)
			var jerr *janusapi.Error
			if !errors.As(err, &jerr) || !jerr.Plugin || jerr.Code != 426 {
				t.Fatalf("listparticipants of a missing room: %v, want plugin error 426", err)
			}
			select {
			case <-c.Done():
				t.Fatalf("client ended: %v", c.Err())
			default:
			}
			c.Close()
			if !errors.Is(c.Err(), janusapi.ErrClosed) {
				t.Fatalf("Err after Close = %v", c.Err())
			}
		})
	}
}

// A wrong API secret, a forged token or none is a 403 from the core; a
// signed token works; secrets never appear in errors. (With both an API
// secret and token auth configured Janus accepts either, so each has its
// own server.)
func TestAuth(t *testing.T) {
	janustest.SkipIfShort(t)
	const secret, tokSecret = "apisecret-4a1f", "toksecret-9b2e"
	withSecret := janustest.StartWith(t, janustest.Options{APISecret: secret})
	withToken := janustest.StartWith(t, janustest.Options{TokenSecret: tokSecret})
	cases := []struct {
		name string
		url  string
		o    janusapi.Options
		ok   bool
	}{
		{"secret", withSecret.WSURL(), janusapi.Options{APISecret: secret}, true},
		{"wrong secret", withSecret.WSURL(), janusapi.Options{APISecret: "nope-" + secret}, false},
		{"no secret", withSecret.WSURL(), janusapi.Options{}, false},
		{"secret http", withSecret.HTTPURL(), janusapi.Options{APISecret: secret}, true},
		{"wrong secret http", withSecret.HTTPURL(), janusapi.Options{APISecret: "nope-" + secret}, false},
		{"token", withToken.WSURL(), janusapi.Options{Token: withToken.Token(time.Hour)}, true},
		{"forged token", withToken.WSURL(), janusapi.Options{Token: janustest.SignToken("other", time.Now().Add(time.Hour))}, false},
		{"expired token", withToken.WSURL(), janusapi.Options{Token: janustest.SignToken(tokSecret, time.Now().Add(-time.Minute))}, false},
		{"token http", withToken.HTTPURL(), janusapi.Options{Token: withToken.Token(time.Hour)}, true},
		{"no token http", withToken.HTTPURL(), janusapi.Options{}, false},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := janusapi.Dial(ctx, tc.url, tc.o)
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else {
				if _, err := c.Attach(ctx, "janus.plugin.videoroom"); err != nil {
					t.Errorf("%s: attach: %v", tc.name, err)
				}
				c.Close()
			}
		} else {
			var jerr *janusapi.Error
			if !errors.As(err, &jerr) || jerr.Code != janusapi.CodeUnauthorized {
				t.Errorf("%s: %v, want error 403", tc.name, err)
			}
			if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "toksecret")) {
				t.Errorf("%s: secret in error %q", tc.name, err)
			}
		}
		cancel()
	}
}

// A server that is not there is ErrConnect, quickly.
func TestUnreachable(t *testing.T) {
	for _, url := range []string{"ws://127.0.0.1:1", "http://127.0.0.1:1/janus?apisecret=hidden"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := janusapi.Dial(ctx, url, janusapi.Options{APISecret: "s3cr3t"})
		cancel()
		if !errors.Is(err, janusapi.ErrConnect) {
			t.Errorf("%s: %v, want ErrConnect", url, err)
		}
		if err != nil && (strings.Contains(err.Error(), "hidden") || strings.Contains(err.Error(), "s3cr3t")) {
			t.Errorf("%s: secret in error %q", url, err)
		}
	}
}

// A restarted server ends the client (the session is gone).
func TestServerRestartEndsClient(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	for _, url := range []string{s.WSURL(), s.HTTPURL()} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := janusapi.Dial(ctx, url, janusapi.Options{})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		s.Restart()
		select {
		case <-c.Done():
			if !errors.Is(c.Err(), janusapi.ErrConnect) {
				t.Errorf("%s: Err = %v, want ErrConnect", url, c.Err())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: client did not notice the restart", url)
		}
		c.Close()
	}
}
