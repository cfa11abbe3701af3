package janus_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/janus"
	"github.com/roomcast/roomcast/room/janus/janustest"
)

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPionLogsInRoomLogger: two Rooms in one process, each with its own
// logger naming its session, receive from two Janus rooms. pion's own lines
// (ICE, DTLS, the peer connection) reach each Room's logger, carrying that
// session's identity, and never the other Room's.
func TestPionLogsInRoomLogger(t *testing.T) {
	janustest.SkipIfShort(t)
	s := janustest.Start(t)
	var bufs [2]*lockedBuf
	var hs [2]*recHandler
	var pubs [2]*janustest.Publisher
	for i := range bufs {
		roomID := s.CreateRoom(janustest.RoomOptions{})
		pubs[i] = janustest.StartPublisher(t, s, roomID, janustest.PublisherOptions{Display: fmt.Sprintf("pub%d", i), Audio: true})
		bufs[i] = &lockedBuf{}
		hs[i] = &recHandler{}
		r, err := janus.New(janus.Config{
			Server: s.WSURL(), Room: fmt.Sprint(roomID), Handler: hs[i],
			Logger: zerolog.New(bufs[i]).Level(zerolog.TraceLevel).With().Str("session", fmt.Sprintf("s%d", i)).Logger(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		if err := r.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range hs {
		waitFor(t, 15*time.Second, "audio frames", func() bool {
			_, as := hs[i].track(id(pubs[i]), room.KindAudio)
			if as == nil {
				return false
			}
			f, _ := as.snapshot()
			return len(f) > 10
		})
	}
	for i, b := range bufs {
		scopes := map[string]int{}
		sc := bufio.NewScanner(strings.NewReader(b.String()))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("session %d: a log line is not JSON: %q", i, sc.Text())
			}
			if line["session"] != fmt.Sprintf("s%d", i) {
				t.Errorf("session %d's log holds a line of session %v: %s", i, line["session"], sc.Text())
			}
			if scope, ok := line["pion"].(string); ok {
				scopes[scope]++
			}
		}
		t.Logf("session %d: pion lines by scope %v", i, scopes)
		for _, want := range []string{"ice", "dtls"} {
			found := false
			for scope := range scopes {
				if strings.Contains(scope, want) {
					found = true
				}
			}
			if !found {
				t.Errorf("session %d: no pion %s line in its log (scopes %v)", i, want, scopes)
			}
		}
	}
}
