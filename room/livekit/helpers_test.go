package livekit

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

// testLogger writes to the test log at debug level when ROOMCAST_TEST_LOG is
// set, and discards otherwise.
func testLogger(t testing.TB) zerolog.Logger {
	if os.Getenv("ROOMCAST_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	zerolog.TimeFieldFormat = "15:04:05.000"
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.TraceLevel).With().Timestamp().Logger()
}

// recSink records frames (data kept only when keep is set).
type recSink struct {
	keep     bool
	mu       sync.Mutex
	frames   []room.Frame
	arrivals []time.Time
	closed   bool
}

func (s *recSink) WriteFrame(f room.Frame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.keep {
		f.Data = f.Data[:min(len(f.Data), 16):min(len(f.Data), 16)]
	}
	s.frames = append(s.frames, f)
	s.arrivals = append(s.arrivals, time.Now())
}

func (s *recSink) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *recSink) snapshot() ([]room.Frame, []time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames), slices.Clone(s.arrivals), s.closed
}

func (s *recSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.frames)
}

// recHandler records every Handler call.
type recHandler struct {
	mu       sync.Mutex
	log      []string
	joined   []room.Participant
	updated  []room.Participant
	left     []string
	tracks   []*room.Track
	sinks    map[string]*recSink
	mutes    map[string][]bool
	speakers [][]string
	sessions []room.SessionEvent
	closed   error
	keepData bool
	changed  chan struct{}
}

func newRecHandler() *recHandler {
	return &recHandler{sinks: map[string]*recSink{}, mutes: map[string][]bool{}, changed: make(chan struct{}, 1)}
}

func (h *recHandler) poke() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *recHandler) ParticipantJoined(p room.Participant) {
	h.mu.Lock()
	h.joined = append(h.joined, p)
	h.log = append(h.log, "join "+p.ID)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) ParticipantUpdated(p room.Participant) {
	h.mu.Lock()
	h.updated = append(h.updated, p)
	h.log = append(h.log, "update "+p.ID)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) ParticipantLeft(id string) {
	h.mu.Lock()
	h.left = append(h.left, id)
	h.log = append(h.log, "leave "+id)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) TrackAdded(t *room.Track) room.TrackSink {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &recSink{keep: h.keepData}
	h.tracks = append(h.tracks, t)
	h.sinks[t.SID] = s
	h.log = append(h.log, "track "+t.ParticipantID+" "+t.Kind.String())
	h.poke()
	return s
}

func (h *recHandler) TrackMuted(sid string, muted bool) {
	h.mu.Lock()
	h.mutes[sid] = append(h.mutes[sid], muted)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) ActiveSpeakers(ids []string) {
	h.mu.Lock()
	h.speakers = append(h.speakers, ids)
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) Session(e room.SessionEvent) {
	h.mu.Lock()
	h.sessions = append(h.sessions, e)
	h.log = append(h.log, "session "+e.Kind.String())
	h.mu.Unlock()
	h.poke()
}

func (h *recHandler) RoomClosed(reason error) {
	h.mu.Lock()
	h.closed = reason
	h.mu.Unlock()
	h.poke()
}

// track finds the track of participant id and kind.
func (h *recHandler) track(id string, k room.Kind) (*room.Track, *recSink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.tracks) - 1; i >= 0; i-- {
		t := h.tracks[i]
		if t.ParticipantID == id && t.Kind == k {
			return t, h.sinks[t.SID]
		}
	}
	return nil, nil
}

// waitFor polls cond until it holds or timeout passes.
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

// decodeVideo writes frames to a file (H.264 Annex B, or IVF for VP8, VP9
// and AV1), decodes it with the ffmpeg CLI to RGB at the first keyframe's
// size, and returns how many pictures decoded and the colour of the centre
// pixel of the last one.
func decodeVideo(t *testing.T, codec string, frames []room.Frame) (n int, center [3]byte) {
	t.Helper()
	var w, h int
	for _, f := range frames {
		if f.Keyframe && f.Width > 0 {
			w, h = f.Width, f.Height
			break
		}
	}
	if w == 0 {
		t.Fatalf("%s: no keyframe with a size", codec)
	}
	path := filepath.Join(t.TempDir(), "video")
	var buf bytes.Buffer
	if codec == "h264" {
		for _, f := range frames {
			buf.Write(f.Data)
		}
	} else {
		fourcc := map[string]string{"vp8": "VP80", "vp9": "VP90", "av1": "AV01"}[codec]
		hdr := make([]byte, 32)
		copy(hdr, "DKIF")
		binary.LittleEndian.PutUint16(hdr[6:], 32)
		copy(hdr[8:], fourcc)
		binary.LittleEndian.PutUint16(hdr[12:], uint16(w))
		binary.LittleEndian.PutUint16(hdr[14:], uint16(h))
		// Frame numbers as timestamps: PTS are checked elsewhere, and
		// frames a few µs apart would trip ffmpeg's output timing.
		binary.LittleEndian.PutUint32(hdr[16:], 30) // time base 1/30
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
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	format := map[string]string{"h264": "h264", "vp8": "ivf", "vp9": "ivf", "av1": "ivf"}[codec]
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", format, "-i", path,
		"-vf", fmt.Sprintf("scale=%d:%d", w, h), "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg decoding %s: %v\n%s", codec, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffmpeg complained decoding %s:\n%s", codec, stderr.String())
	}
	size := w * h * 3
	n = out.Len() / size
	if n == 0 {
		t.Fatalf("%s: nothing decoded", codec)
	}
	last := out.Bytes()[(n-1)*size : n*size]
	off := (h/2*w + w/2) * 3
	copy(center[:], last[off:off+3])
	return n, center
}

// near reports whether two colours are within tol on every channel.
func near(a, b [3]byte, tol int) bool {
	for i := range a {
		if d := int(a[i]) - int(b[i]); d > tol || d < -tol {
			return false
		}
	}
	return true
}
