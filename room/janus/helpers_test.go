package janus_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/room"
)

// testLogger writes to the test log when ROOMCAST_TEST_LOG is set.
func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("ROOMCAST_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

type recSink struct {
	mu     sync.Mutex
	frames []room.Frame
	closed bool
}

func (s *recSink) WriteFrame(f room.Frame) {
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
}

func (s *recSink) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *recSink) snapshot() ([]room.Frame, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames), s.closed
}

// recHandler records every Handler call.
type recHandler struct {
	mu       sync.Mutex
	joined   []room.Participant
	updated  []room.Participant
	left     []string
	tracks   []*room.Track
	sinks    []*recSink
	speakers [][]string
	sessions []room.SessionEvent
	closed   error
}

func (h *recHandler) ParticipantJoined(p room.Participant) {
	h.mu.Lock()
	h.joined = append(h.joined, p)
	h.mu.Unlock()
}
func (h *recHandler) ParticipantUpdated(p room.Participant) {
	h.mu.Lock()
	h.updated = append(h.updated, p)
	h.mu.Unlock()
}
func (h *recHandler) ParticipantLeft(id string) {
	h.mu.Lock()
	h.left = append(h.left, id)
	h.mu.Unlock()
}
func (h *recHandler) TrackAdded(t *room.Track) room.TrackSink {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &recSink{}
	h.tracks = append(h.tracks, t)
	h.sinks = append(h.sinks, s)
	return s
}
func (h *recHandler) TrackMuted(string, bool) {}
func (h *recHandler) ActiveSpeakers(ids []string) {
	h.mu.Lock()
	h.speakers = append(h.speakers, ids)
	h.mu.Unlock()
}
func (h *recHandler) Session(e room.SessionEvent) {
	h.mu.Lock()
	h.sessions = append(h.sessions, e)
	h.mu.Unlock()
}
func (h *recHandler) RoomClosed(err error) {
	h.mu.Lock()
	h.closed = err
	h.mu.Unlock()
}

// track returns the newest track of participant id and kind, and its sink.
func (h *recHandler) track(id string, k room.Kind) (*room.Track, *recSink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.tracks) - 1; i >= 0; i-- {
		if h.tracks[i].ParticipantID == id && h.tracks[i].Kind == k {
			return h.tracks[i], h.sinks[i]
		}
	}
	return nil, nil
}

func (h *recHandler) hasJoined(id string) (room.Participant, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.joined {
		if p.ID == id {
			return p, true
		}
	}
	return room.Participant{}, false
}

func (h *recHandler) hasLeft(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.left, id)
}

func (h *recHandler) hasSession(k room.SessionEventKind) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.sessions {
		if e.Kind == k {
			return true
		}
	}
	return false
}

func (h *recHandler) lastSpeakers() ([]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.speakers) == 0 {
		return nil, false
	}
	return h.speakers[len(h.speakers)-1], true
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// decodeCenter decodes frames with the ffmpeg CLI (Annex B for H.264, IVF
// for VP8) and returns how many pictures decoded and the centre pixel of
// the last one.
func decodeCenter(t *testing.T, codec string, frames []room.Frame) (int, [3]byte) {
	t.Helper()
	var w, h int
	for _, f := range frames {
		if f.Keyframe && f.Width > 0 {
			w, h = f.Width, f.Height
			break
		}
	}
	if w == 0 {
		t.Fatalf("%s: no keyframe with a size among %d frames", codec, len(frames))
	}
	var buf bytes.Buffer
	format := "h264"
	if codec == "h264" {
		for _, f := range frames {
			buf.Write(f.Data)
		}
	} else {
		format = "ivf"
		hdr := make([]byte, 32)
		copy(hdr, "DKIF")
		binary.LittleEndian.PutUint16(hdr[6:], 32)
		copy(hdr[8:], map[string]string{"vp8": "VP80", "vp9": "VP90"}[codec])
		binary.LittleEndian.PutUint16(hdr[12:], uint16(w))
		binary.LittleEndian.PutUint16(hdr[14:], uint16(h))
		binary.LittleEndian.PutUint32(hdr[16:], 30)
		binary.LittleEndian.PutUint32(hdr[20:], 1)
		binary.LittleEndian.PutUint32(hdr[24:], uint32(len(frames)))
		buf.Write(hdr)
		for i, f := range frames {
			fh := make([]byte, 12)
			binary.LittleEndian.PutUint32(fh, uint32(len(f.Data)))
			binary.LittleEndian.PutUint64(fh[4:], uint64(i))
			buf.Write(fh)
			buf.Write(f.Data)
		}
	}
	path := filepath.Join(t.TempDir(), "video")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", format, "-i", path,
		"-vf", fmt.Sprintf("scale=%d:%d", w, h), "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", codec, err, stderr.String())
	}
	size := w * h * 3
	n := out.Len() / size
	if n == 0 {
		t.Fatalf("%s: nothing decoded", codec)
	}
	var c [3]byte
	last := out.Bytes()[(n-1)*size : n*size]
	off := (h/2*w + w/2) * 3
	copy(c[:], last[off:off+3])
	return n, c
}

func near(a, b [3]byte, tol int) bool {
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > tol || d < -tol {
			return false
		}
	}
	return true
}
