package api

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

const secret = "8cd8ef52e8e101574e400365b55e11a6"

// fakeBBB answers like a BBB server: it checks the checksum of each call the
// way the server does (the query string as received, without its checksum
// parameter, after the call name, before the secret) with the algorithms it
// accepts, and serves recorded answers.
func fakeBBB(t *testing.T, accept []string, meetings map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := strings.TrimPrefix(r.URL.Path, "/bigbluebutton/api/")
		q := r.URL.RawQuery
		i := strings.LastIndex(q, "checksum=")
		if i < 0 {
			serve(t, w, "checksumError.xml")
			return
		}
		sum, rest := q[i+len("checksum="):], strings.TrimSuffix(q[:i], "&")
		ok := false
		for _, a := range accept {
			var h []byte
			switch a {
			case "sha1":
				s := sha1.Sum([]byte(call + rest + secret))
				h = s[:]
			case "sha256":
				s := sha256.Sum256([]byte(call + rest + secret))
				h = s[:]
			}
			ok = ok || hex.EncodeToString(h) == sum
		}
		if !ok {
			serve(t, w, "checksumError.xml")
			return
		}
		if call != "getMeetingInfo" {
			http.NotFound(w, r)
			return
		}
		f, found := meetings[r.URL.Query().Get("meetingID")]
		if !found {
			f = "getMeetingInfo-notFound.xml"
		}
		serve(t, w, f)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func serve(t *testing.T, w http.ResponseWriter, name string) {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Error(err)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Write(b)
}

func TestGetMeetingInfo(t *testing.T) {
	srv := fakeBBB(t, []string{"sha1", "sha256"}, map[string]string{"weekly webinar & co": "getMeetingInfo-running.xml"})
	for _, algo := range []string{"", "sha1", "sha256"} {
		c := &Client{Base: srv.URL + "/bigbluebutton/api/", Secret: secret, Checksum: algo}
		mi, err := c.GetMeetingInfo(context.Background(), "weekly webinar & co")
		if err != nil {
			t.Fatalf("%q: %v", algo, err)
		}
		if mi.InternalMeetingID != "9f2b8e1d4c7a6b5e3f2a1d0c9b8a7f6e5d4c3b2a-1764500000000" || !mi.Running ||
			len(mi.Attendees) != 2 || mi.Attendees[1].FullName != "Bob Okafor" || mi.Attendees[0].UserID != "w_k2x9qv4lfmza" {
			t.Errorf("%q: %+v", algo, mi)
		}
	}
}

func TestGetMeetingInfoErrors(t *testing.T) {
	srv := fakeBBB(t, []string{"sha1"}, map[string]string{"m": "getMeetingInfo-running.xml"})
	base := srv.URL + "/bigbluebutton/api"
	cases := []struct {
		name string
		c    Client
		id   string
		want error
	}{
		{"unknown meeting", Client{Base: base, Secret: secret, Checksum: "sha1"}, "nope", ErrNotFound},
		{"wrong secret", Client{Base: base, Secret: "not-the-secret", Checksum: "sha1"}, "m", ErrChecksum},
		{"hash the server refuses", Client{Base: base, Secret: secret, Checksum: "sha256"}, "m", ErrChecksum},
		{"unknown hash", Client{Base: base, Secret: secret, Checksum: "md5"}, "m", ErrConfig},
		{"no secret", Client{Base: base}, "m", ErrConfig},
		{"not a BBB server", Client{Base: srv.URL + "/elsewhere", Secret: secret, Checksum: "sha1"}, "m", ErrChecksum},
		{"nobody there", Client{Base: "http://127.0.0.1:1/bigbluebutton/api", Secret: secret}, "m", ErrUnreachable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.c.GetMeetingInfo(context.Background(), c.id)
			if !errors.Is(err, c.want) {
				t.Fatalf("%v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the secret is in the error: %v", err)
			}
		})
	}
	// An HTML page (a proxy's error) is not a BBB answer.
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		w.Write([]byte("<html><body>Bad gateway</body></html>"))
	}))
	defer html.Close()
	_, err := (&Client{Base: html.URL, Secret: secret}).GetMeetingInfo(context.Background(), "m")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("HTML answer: %v", err)
	}
}

// TestChecksum pins the signing rule on a fixed vector computed here with
// the standard library: sha1("getMeetingInfo" + "meetingID=abc" + secret).
func TestChecksum(t *testing.T) {
	want := sha1.Sum([]byte("getMeetingInfo" + "meetingID=abc" + secret))
	got, err := Checksum("sha1", "getMeetingInfo", "meetingID=abc", secret)
	if err != nil || got != hex.EncodeToString(want[:]) {
		t.Errorf("Checksum = %s, %v", got, err)
	}
	u, _ := (&Client{Base: "https://bbb.example.org/bigbluebutton/api", Secret: secret, Checksum: "sha1"}).URL("getMeetingInfo", map[string][]string{"meetingID": {"abc"}})
	if u != "https://bbb.example.org/bigbluebutton/api/getMeetingInfo?meetingID=abc&checksum="+got {
		t.Errorf("URL = %s", u)
	}
}
