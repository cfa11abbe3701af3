package recorder_test

// Live recording against real peers on loopback: a livekit-server 1.13.5
// started by room/livekit/lktest, Go publishers sending known colours and
// tones (lktest's, plus rawTrack below for what the kit does not send: screen
// shares, flash+beep media, network freezes and garbage), and roomcast's own
// pipeline in-process (livekit.Room → recorder.RoomSink → compositor → x264/AAC →
// MP4). Every assertion is on the MP4 decoded by the ffmpeg/ffprobe on PATH.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	lkproto "github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/av"
	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/mp4"
	"github.com/roomcast/roomcast/recorder"
	roomapi "github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/room/livekit"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// ---------------------------------------------------------------------------
// Colours and tones.

// col is a test colour: what ffmpeg is asked to paint and what the decoded
// output should show (BT.601 limited range, as media.RGB computes it).
type col struct {
	name string
	hex  string
	yuv  media.YUV
}

func mkcol(name string, r, g, b uint8) col {
	return col{name, fmt.Sprintf("0x%02x%02x%02x", r, g, b), media.RGB(r, g, b)}
}

var (
	cRed     = mkcol("red", 0xd0, 0x28, 0x28)
	cBlue    = mkcol("blue", 0x28, 0x38, 0xd0)
	cGreen   = mkcol("green", 0x28, 0xc0, 0x38)
	cYellow  = mkcol("yellow", 0xe0, 0xd0, 0x28)
	cMagenta = mkcol("magenta", 0xd0, 0x28, 0xd0)
	// Drawn by the compositor itself.
	cPlaceholder = mkcol("placeholder", 0x3a, 0x3f, 0x4b)
	cBackground  = mkcol("background", 0x20, 0x22, 0x28)
	cBlack       = mkcol("black", 0, 0, 0)

	allColours = []col{cRed, cBlue, cGreen, cYellow, cMagenta, cPlaceholder, cBackground, cBlack}
)

// colourTol: how far a flat colour may move through VP8/H.264, scaling and
// x264 and back (per 8-bit component).
const colourTol = 16

// classify names the test colour nearest to c, or "?#rrggbb".
func classify(c media.YUV) string {
	best, bd := "", 1<<30
	for _, k := range allColours {
		d := max(absInt(int(c.Y)-int(k.yuv.Y)), absInt(int(c.U)-int(k.yuv.U)), absInt(int(c.V)-int(k.yuv.V)))
		if d < bd {
			best, bd = k.name, d
		}
	}
	if bd > colourTol {
		r, g, b := c.ToRGB()
		return fmt.Sprintf("?#%02x%02x%02x", r, g, b)
	}
	return best
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// ---------------------------------------------------------------------------
// The recorder under test.

// syncBuf collects roomcast's log lines (printed when a test fails) in a
// file, not in the test's memory: a buffer doubling under a long churn
// would add megabytes to the resident memory TestLiveChurn measures.
type syncBuf struct {
	mu sync.Mutex
	f  *os.File
}

func newSyncBuf(t *testing.T) *syncBuf {
	f, err := os.Create(filepath.Join(t.TempDir(), "roomcast.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Runs after the session's own cleanups (registered later), which
	// write the log's last lines.
	t.Cleanup(func() { f.Close() })
	return &syncBuf{f: f}
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.f.Name())
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(b)
}

// session is roomcast recording one room, wired as `roomcast record` wires
// it: livekit.Room → recorder.RoomSink → recorder.Recorder → MP4.
type session struct {
	t    *testing.T
	cc   compositor.Config
	rec  *recorder.Recorder
	live *recorder.RoomSink
	room *livekit.Room
	out  string
	logs *syncBuf
	// start is the wall clock of output time 0.
	start time.Time
	once  sync.Once
	err   error
	// layouts: every layout the compositor announced (OnTiles), with the
	// wall clock it did.
	layoutMu sync.Mutex
	layouts  []layoutAt
}

type layoutAt struct {
	at    time.Time
	tiles []layout.Tile
}

// layoutAtTime is the layout shown at output time d and how far d is from
// the nearest layout change.
func (s *session) layoutAtTime(d time.Duration) ([]layout.Tile, time.Duration) {
	s.layoutMu.Lock()
	defer s.layoutMu.Unlock()
	var cur []layout.Tile
	near := time.Hour
	for _, l := range s.layouts {
		at := l.at.Sub(s.start)
		near = min(near, max(at-d, d-at))
		if at <= d {
			cur = l.tiles
		}
	}
	return cur, near
}

// startSession joins roomName on srv (API key and secret: roomcast mints its
// own hidden token) and starts recording. cc.Duration, when set, ends the
// output by itself; the canvas defaults to 640x360 at 30 fps, which keeps
// the race-instrumented compositor well inside real time on two cores.
func startSession(t *testing.T, srv *lktest.Server, roomName string, cc compositor.Config) *session {
	t.Helper()
	if cc.Width == 0 {
		cc.Width, cc.Height = 640, 360
	}
	if cc.FPS == 0 {
		cc.FPS = 30
	}
	cc.ExternalSpeaker, cc.AutoScreenshare = true, true
	// These tests measure exact live timelines on a race-instrumented
	// build on a shared machine: overload degradation (repeated or skipped
	// frames, tested by compositor.TestLiveOverloadKeepsTimeline and
	// cmd/roomcast TestLiveOverload) stays off unless a test asks for it.
	if cc.RepeatAfter == 0 {
		cc.RepeatAfter = -1
	}
	if cc.MaxLag == 0 {
		cc.MaxLag = -1
	}
	s := &session{t: t, logs: newSyncBuf(t), out: filepath.Join(t.TempDir(), "live.mp4")}
	lvl := zerolog.InfoLevel
	if os.Getenv("ROOMCAST_TEST_LOG") != "" {
		lvl = zerolog.DebugLevel
	}
	if os.Getenv("ROOMCAST_TEST_LOG") == "trace" {
		lvl = zerolog.TraceLevel
	}
	log := zerolog.New(s.logs).Level(lvl).With().Timestamp().Logger()
	// As the command does: FFmpeg's own complaints go to the log.
	av.RouteFFmpegLogs(log, zerolog.ErrorLevel)
	var live *recorder.RoomSink
	cc.OnTiles = func(ts []layout.Tile) {
		live.OnTiles(ts)
		s.layoutMu.Lock()
		s.layouts = append(s.layouts, layoutAt{time.Now(), slices.Clone(ts)})
		s.layoutMu.Unlock()
	}
	rec, err := recorder.New(recorder.Config{Compositor: cc, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	s.rec = rec
	s.cc = rec.Compositor().Config()
	live = recorder.NewRoomSink(rec.Compositor(), log)
	s.live = live
	w, err := mp4.Create(s.out, rec.Info(), mp4.Options{Log: log})
	if err != nil {
		rec.Close()
		t.Fatal(err)
	}
	rec.AddOutput("mp4", w, true)
	room, err := livekit.New(livekit.Config{
		URL: srv.URL, Room: roomName, APIKey: srv.APIKey, APISecret: srv.APISecret,
		Handler: live, Logger: log,
	})
	if err != nil {
		rec.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := room.Start(ctx); err != nil {
		rec.Close()
		t.Fatalf("join: %v", err)
	}
	s.room = room
	t.Cleanup(func() {
		s.stop()
		if d := os.Getenv("ROOMCAST_TEST_KEEP"); d != "" {
			// Keep the recording for a look (ROOMCAST_TEST_KEEP=dir).
			if b, err := os.ReadFile(s.out); err == nil {
				_ = os.WriteFile(filepath.Join(d, t.Name()+".mp4"), b, 0o644)
			}
			_ = os.WriteFile(filepath.Join(d, t.Name()+".log"), []byte(s.logs.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("roomcast log (tail):\n%s", tailLines(s.logs.String(), 60))
		}
	})
	live.SetOffset(room.Now())
	rec.Start()
	s.start = time.Now()
	return s
}

// at is the output time now.
func (s *session) at() time.Duration { return time.Since(s.start) }

// sleepUntil waits until output time d.
func (s *session) sleepUntil(d time.Duration) { time.Sleep(time.Until(s.start.Add(d))) }

// stop ends the recording (the MP4 is finalised) and leaves the room.
func (s *session) stop() error {
	s.once.Do(func() {
		s.err = s.rec.Close()
		_ = s.room.Close()
	})
	return s.err
}

// finish waits for the configured Duration to be produced, then stops.
func (s *session) finish() {
	s.t.Helper()
	select {
	case <-s.rec.Done():
	case <-time.After(s.cc.Duration + 20*time.Second):
		s.t.Errorf("the output did not reach its %v duration in time (at %v)", s.cc.Duration, s.rec.Elapsed())
	}
	if err := s.stop(); err != nil {
		s.t.Fatalf("recording: %v", err)
	}
}

func tailLines(s string, n int) string { return mediatest.Tail(s, n) }

// ---------------------------------------------------------------------------
// rawTrack: a track roomcast's peers publish on an lksdk room, for what
// lktest's publisher does not do (media from any lavfi graph, screen shares,
// freezes, garbage).

// rawSpec describes one raw track.
type rawSpec struct {
	Name    string
	Source  lkproto.TrackSource
	Codec   string   // "h264", "vp8" or "opus"
	Samples [][]byte // access units or Opus packets, looped
	FPS     int      // video rate (audio is 20 ms packets)
	Width   int
	Height  int
	// Garbage: "" sends Samples as they are; "random" sends random payloads
	// (random lengths, valid RTP headers); "broken" sends Samples with one
	// byte in 40 flipped past their headers, every packetisation valid.
	Garbage string
	// Epoch is the capture time of sample 0 (default now).
	Epoch time.Time
	// AnswerPLI makes a video track answer a keyframe request (PLI, FIR) as
	// a browser's encoder does: the next picture sent is a keyframe. The
	// samples jump ahead to their next keyframe, so the content leaves
	// the capture clock (not for sync tests).
	AnswerPLI bool
}

type rawTrack struct {
	spec    rawSpec
	room    *lksdk.Room
	lt      *lksdk.LocalTrack
	pub     *lksdk.LocalTrackPublication
	dur     time.Duration
	rate    uint32
	pay     rtp.Payloader
	seq     rtp.Sequencer
	base    uint32
	frozen  atomic.Bool
	keyReq  atomic.Bool
	sent    atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	closeMu sync.Once
}

// joinRaw connects a bare participant (answering NACKs) that publishes with
// publishRaw; its tracks send their own sender reports.
func joinRaw(t *testing.T, srv *lktest.Server, roomName, identity, name string) *lksdk.Room {
	t.Helper()
	resp, err := nack.NewResponderInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	r, err := lksdk.ConnectToRoomWithToken(srv.URL, srv.Token(roomName, identity, name), nil,
		lksdk.WithAutoSubscribe(false),
		lksdk.WithInterceptors([]interceptor.Factory{resp}),
		lksdk.WithIncludeDefaultInterceptors(false))
	if err != nil {
		t.Fatalf("%s join: %v", identity, err)
	}
	t.Cleanup(r.Disconnect)
	return r
}

// publishRaw publishes spec on room and sends it in real time until Close.
func publishRaw(t *testing.T, room *lksdk.Room, spec rawSpec) *rawTrack {
	t.Helper()
	rt := &rawTrack{spec: spec, room: room, stop: make(chan struct{}), done: make(chan struct{}),
		seq: rtp.NewRandomSequencer(), base: mrand.Uint32()}
	if rt.spec.Epoch.IsZero() {
		rt.spec.Epoch = time.Now()
	}
	var capab webrtc.RTPCodecCapability
	switch spec.Codec {
	case "h264":
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
		rt.pay, rt.rate = &codecs.H264Payloader{}, 90000
	case "vp8":
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		rt.pay, rt.rate = &codecs.VP8Payloader{EnablePictureID: true}, 90000
	case "opus":
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		rt.pay, rt.rate = &codecs.OpusPayloader{}, 48000
	default:
		t.Fatalf("publishRaw: codec %q", spec.Codec)
	}
	rt.dur = 20 * time.Millisecond
	if spec.Codec != "opus" {
		rt.dur = time.Second / time.Duration(spec.FPS)
	}
	lt, err := lksdk.NewLocalTrack(capab, lksdk.WithRTCPHandler(func(p rtcp.Packet) {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			rt.keyReq.Store(true)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	rt.lt = lt
	pub, err := room.LocalParticipant.PublishTrack(lt, &lksdk.TrackPublicationOptions{
		Name: spec.Name, Source: spec.Source, VideoWidth: spec.Width, VideoHeight: spec.Height,
	})
	if err != nil {
		t.Fatalf("publish %s: %v", spec.Name, err)
	}
	rt.pub = pub
	t.Cleanup(rt.Close)
	go rt.run()
	return rt
}

// Freeze drops every packet for d, as a network that stops delivering: the
// server is told nothing, RTCP keeps flowing, sequence numbers jump.
func (rt *rawTrack) Freeze(d time.Duration) {
	rt.frozen.Store(true)
	time.AfterFunc(d, func() { rt.frozen.Store(false) })
}

// Unpublish stops sending and removes the track from the room.
func (rt *rawTrack) Unpublish() error {
	rt.Close()
	return rt.room.LocalParticipant.UnpublishTrack(rt.pub.SID())
}

// Close stops sending. Idempotent.
func (rt *rawTrack) Close() {
	rt.closeMu.Do(func() {
		close(rt.stop)
		<-rt.done
	})
}

func (rt *rawTrack) run() {
	defer close(rt.done)
	// RTP time of sample k, rounded from its capture time (a per-sample
	// step rounded down, 2999 ticks for 1/30 s, would drift from the
	// sender reports by 20 ms a minute).
	rtpOf := func(k int) uint32 {
		return uint32((int64(k)*int64(rt.dur)*int64(rt.rate) + int64(time.Second)/2) / int64(time.Second))
	}
	k := 0
	if d := time.Since(rt.spec.Epoch); d > 0 {
		k = int(d / rt.dur)
		if rt.spec.Codec != "opus" {
			k = (k + rt.spec.FPS - 1) / rt.spec.FPS * rt.spec.FPS // a keyframe
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	rnd := mrand.New(mrand.NewPCG(mrand.Uint64(), 1))
	var packets, octets uint32
	var lastSR time.Time
	skip := 0 // samples jumped over to answer keyframe requests
	for ; ; k++ {
		timer.Reset(time.Until(rt.spec.Epoch.Add(time.Duration(k) * rt.dur)))
		select {
		case <-rt.stop:
			return
		case <-timer.C:
		}
		if rt.spec.AnswerPLI && rt.keyReq.Swap(false) {
			if r := (k + skip) % rt.spec.FPS; r != 0 {
				skip += rt.spec.FPS - r
			}
		}
		data := rt.spec.Samples[(k+skip)%len(rt.spec.Samples)]
		switch rt.spec.Garbage {
		case "random":
			data = make([]byte, 20+rnd.IntN(3000))
			_, _ = rand.Read(data)
		case "broken":
			data = slices.Clone(data)
			for i := 12; i < len(data); i++ {
				if rnd.IntN(40) == 0 {
					data[i] ^= byte(1 + rnd.IntN(255))
				}
			}
		}
		var opts *lksdk.SampleWriteOptions
		if rt.spec.Codec == "opus" {
			level := uint8(30)
			opts = &lksdk.SampleWriteOptions{AudioLevel: &level}
		}
		payloads := rt.pay.Payload(1200, data)
		for i, pl := range payloads {
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == len(payloads)-1,
				SequenceNumber: rt.seq.NextSequenceNumber(), Timestamp: rt.base + rtpOf(k)}, Payload: pl}
			if rt.frozen.Load() {
				continue // lost on the way
			}
			if rt.lt.WriteRTP(pkt, opts) == nil {
				packets++
				octets += uint32(len(pl))
			}
		}
		rt.sent.Add(1)
		// Sender reports on the capture clock (RFC 3550 §6.4.1: the NTP
		// and RTP timestamps name the same instant), so a sender that is
		// late on a loaded machine still states when it captured. pion's
		// report interceptor would pair the send time with the RTP time.
		if !rt.frozen.Load() && time.Since(lastSR) >= 250*time.Millisecond {
			if pc := rt.room.LocalParticipant.GetPublisherPeerConnection(); pc != nil {
				_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{
					SSRC: uint32(rt.lt.SSRC()), NTPTime: ntpTime(rt.spec.Epoch.Add(time.Duration(k) * rt.dur)),
					RTPTime: rt.base + rtpOf(k), PacketCount: packets, OctetCount: octets,
				}})
				lastSR = time.Now()
			}
		}
	}
}

// ntpTime is t as a 64-bit NTP timestamp (RFC 5905: seconds since 1900 and
// a binary fraction).
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	return uint64(t.Unix()+unixToNTP)<<32 | uint64(t.Nanosecond())<<32/1e9
}

// genVP8 encodes a lavfi video graph as VP8 (a keyframe every second, no
// alt-ref frames: one IVF frame per picture) and returns the frames.
func genVP8(t *testing.T, dir, graph string, fps int) [][]byte {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("v%d.ivf", mrand.IntN(1e9)))
	encodeVP8(t, path, graph, fps, "500k")
	return lktest.ReadIVF(t, path)
}

func encodeVP8(t *testing.T, path, graph string, fps int, bitrate string) {
	t.Helper()
	ffmpegRun(t, "-f", "lavfi", "-i", graph, "-pix_fmt", "yuv420p", "-c:v", "libvpx", "-deadline", "realtime",
		"-cpu-used", "8", "-g", strconv.Itoa(fps), "-auto-alt-ref", "0", "-lag-in-frames", "0", "-b:v", bitrate, "-f", "ivf", path)
}

// genH264 encodes a lavfi video graph as constrained baseline H.264 (a
// keyframe every second, SPS/PPS repeated) and returns the access units in
// Annex B.
func genH264(t *testing.T, dir, graph string, fps int) [][]byte {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("v%d.h264", mrand.IntN(1e9)))
	encodeH264(t, path, graph, fps)
	return lktest.ReadH264(t, path)
}

func encodeH264(t *testing.T, path, graph string, fps int) {
	t.Helper()
	ffmpegRun(t, "-f", "lavfi", "-i", graph, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline",
		"-preset", "ultrafast", "-tune", "zerolatency", "-g", strconv.Itoa(fps), "-bf", "0",
		"-x264-params", "aud=1:repeat-headers=1", "-f", "h264", path)
}

// movingBox is lktest.MovingBox in a test colour.
func movingBox(c col, w, h, fps int) string { return lktest.MovingBox(c.hex, w, h, fps) }

func encodeOpus(t *testing.T, path, graph string) {
	t.Helper()
	ffmpegRun(t, "-f", "lavfi", "-i", graph, "-ac", "1", "-c:a", "libopus", "-b:a", "64k",
		"-frame_duration", "20", "-page_duration", "20000", "-f", "ogg", path)
}

// ---------------------------------------------------------------------------
// Reading the output back.

func ffmpegRun(t testing.TB, args ...string) []byte {
	t.Helper()
	return mediatest.FFmpeg(t, append([]string{"-y"}, args...)...)
}

// frameTimes lists the presentation times of the video frames, sorted.
func frameTimes(t *testing.T, path string) []float64 {
	t.Helper()
	var ts []float64
	for _, f := range mediatest.Frames(t, path, "v", 0) {
		if math.IsNaN(f.PTS) {
			t.Fatalf("ffprobe: %s: a video frame without a time", path)
		}
		ts = append(ts, f.PTS)
	}
	return ts
}

// firstAudioTime is the presentation time of the first decoded audio frame.
func firstAudioTime(t *testing.T, path string) float64 {
	t.Helper()
	f := mediatest.Frames(t, path, "a", 3)
	if len(f) == 0 {
		t.Fatalf("%s: no audio frames", path)
	}
	return f[0].PTS
}

// checkFrameCount: exactly dur×fps pictures, one every 1/fps.
func checkFrameCount(t *testing.T, path string, dur time.Duration, fps int) []float64 {
	t.Helper()
	ts := frameTimes(t, path)
	want := int(math.Round(dur.Seconds() * float64(fps)))
	if len(ts) != want {
		t.Errorf("%s: %d video frames, want %d (%v × %d fps)", path, len(ts), want, dur, fps)
	}
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; math.Abs(d-1/float64(fps)) > 1e-3 {
			t.Errorf("%s: frame %d: PTS step %.4f s, want %.4f s", path, i, d, 1/float64(fps))
			break
		}
	}
	return ts
}

// grab decodes the pictures shown at the given output times (frame index
// round(t×fps), 0 = the first picture).
func grab(t *testing.T, path string, w, h, fps int, times ...float64) []*media.Image {
	t.Helper()
	var sel []string
	for _, s := range times {
		sel = append(sel, fmt.Sprintf("eq(n\\,%d)", int(math.Round(s*float64(fps)))))
	}
	out := ffmpegRun(t, "-i", path, "-an", "-vf", "select='"+strings.Join(sel, "+")+"'", "-fps_mode", "passthrough",
		"-pix_fmt", "yuv420p", "-f", "rawvideo", "-")
	size := w*h + w*h/2
	if len(out) != size*len(times) {
		t.Fatalf("%s: wanted %d pictures of %dx%d, decoded %d bytes", path, len(times), w, h, len(out))
	}
	imgs := make([]*media.Image, len(times))
	for i := range times {
		m := media.NewImage(w, h)
		b := out[i*size:]
		copy(m.Y, b[:w*h])
		copy(m.U, b[w*h:w*h+w*h/4])
		copy(m.V, b[w*h+w*h/4:size])
		imgs[i] = m
	}
	return imgs
}

// audioMono decodes the first channel of the sound at 48 kHz (float WAV:
// the trimmed FFmpeg build has no raw f32le muxer).
func audioMono(t *testing.T, path string) []float32 {
	t.Helper()
	b := ffmpegRun(t, "-i", path, "-vn", "-af", "pan=mono|c0=c0", "-ar", "48000", "-c:a", "pcm_f32le", "-f", "wav", "-")
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		t.Fatalf("%s: decoded sound is not a WAV stream", path)
	}
	for i := 12; i+8 <= len(b); {
		id, size := string(b[i:i+4]), int(binary.LittleEndian.Uint32(b[i+4:i+8]))
		if id == "data" {
			// A piped WAV header's sizes are placeholders: data runs to the end.
			d := b[i+8:]
			x := make([]float32, len(d)/4)
			for k := range x {
				x[k] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*k:]))
			}
			return x
		}
		i += 8 + size + size%2
	}
	t.Fatalf("%s: WAV without data", path)
	return nil
}

// toneAmp is the amplitude of frequency f in x (Goertzel, 48 kHz).
func toneAmp(x []float32, f float64) float64 {
	if len(x) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*f/48000)
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = float64(v)+coeff*s1-s2, s1
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(p, 0)) / float64(len(x))
}

// window is the sound between output seconds a and b (x starts at 0).
func window(x []float32, a, b float64) []float32 {
	i, j := max(0, int(a*48000)), min(len(x), int(b*48000))
	if i >= j {
		return nil
	}
	return x[i:j]
}

// Tone thresholds: lktest's tones are ffmpeg's sine at amplitude 1/8.
const (
	tonePresent = 0.03
	toneAbsent  = 0.006
)

// chunkedAmp is the median of f's amplitude over 250 ms chunks of x:
// robust to phase jumps (lktest loops 2 s of Opus with a padding packet, so
// its tones skip 20 ms every loop, which cancels a long Goertzel window).
func chunkedAmp(x []float32, f float64) float64 {
	const n = 12000
	var amps []float64
	for i := 0; i+n <= len(x); i += n {
		amps = append(amps, toneAmp(x[i:i+n], f))
	}
	if len(amps) == 0 {
		return toneAmp(x, f)
	}
	sort.Float64s(amps)
	return amps[len(amps)/2]
}

// checkTones asserts which tones are in the mix between a and b seconds.
func checkTones(t *testing.T, x []float32, a, b float64, present, absent []float64) {
	t.Helper()
	w := window(x, a, b)
	for _, f := range present {
		if amp := chunkedAmp(w, f); amp < tonePresent {
			t.Errorf("%.1f–%.1f s: %g Hz amplitude %.4f, want ≥ %.3f (speaker not in the mix)", a, b, f, amp, tonePresent)
		}
	}
	for _, f := range absent {
		if amp := chunkedAmp(w, f); amp > toneAbsent {
			t.Errorf("%.1f–%.1f s: %g Hz amplitude %.4f, want ≤ %.3f (speaker should not be in the mix)", a, b, f, amp, toneAbsent)
		}
	}
}

// meanAt averages the 9×9 block around (x, y).
func meanAt(m *media.Image, x, y int) media.YUV {
	var sy, su, sv, n int
	for yy := y - 4; yy <= y+4; yy++ {
		for xx := x - 4; xx <= x+4; xx++ {
			c := m.At(xx, yy)
			sy, su, sv, n = sy+int(c.Y), su+int(c.U), sv+int(c.V), n+1
		}
	}
	return media.YUV{Y: uint8(sy / n), U: uint8(su / n), V: uint8(sv / n)}
}

// tileColour names what a tile shows: sampled 70% down its middle, clear of
// the name label (bottom left), a placeholder's name (centre) and lktest's
// moving white box (top).
func tileColour(img *media.Image, r layout.Rect) string {
	return classify(meanAt(img, r.X+r.W/2, r.Y+r.H*7/10))
}

// gridColours is what each tile of an n-tile grid shows, sorted.
func gridColours(img *media.Image, n int) []string {
	tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: img.Width, Height: img.Height, Sources: srcs(n)})
	var out []string
	for _, tl := range tiles {
		out = append(out, tileColour(img, tl.Rect))
	}
	sort.Strings(out)
	return out
}

func srcs(n int) []layout.Source {
	s := make([]layout.Source, n)
	for i := range s {
		s[i] = layout.Source{ID: strconv.Itoa(i)}
	}
	return s
}

func names(cs ...col) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.name)
	}
	sort.Strings(out)
	return out
}

// coverage is the share of the canvas (sampled every 8 pixels) in each
// colour class.
func coverage(img *media.Image) map[string]float64 {
	m := map[string]float64{}
	n := 0
	for y := 4; y < img.Height; y += 8 {
		for x := 4; x < img.Width; x += 8 {
			m[classify(img.At(x, y))]++
			n++
		}
	}
	for k := range m {
		m[k] /= float64(n)
	}
	return m
}

// checkGrid asserts the picture is an n-tile grid showing exactly want (in
// any order), and that nothing else has a tile: no placeholder (the hidden
// recorder would be one) unless wanted.
func checkGrid(t *testing.T, img *media.Image, when string, want ...col) {
	t.Helper()
	got := gridColours(img, len(want))
	if !slices.Equal(got, names(want...)) {
		t.Errorf("%s: %d-tile grid shows %v, want %v", when, len(want), got, names(want...))
	}
	cov := coverage(img)
	if !slices.Contains(want, cPlaceholder) && cov["placeholder"] > 0.01 {
		t.Errorf("%s: %.1f%% of the canvas is placeholder grey: an extra tile (the recorder itself?)", when, 100*cov["placeholder"])
	}
	for _, c := range want {
		// A grid tile of n holds at least 1/(2n) of the canvas in its colour
		// (4:3 pictures letterboxed in 16:9 cells, labels).
		if share := cov[c.name]; share < 1/(2.5*float64(len(want))) {
			t.Errorf("%s: %s covers %.1f%% of the canvas, too little for a tile of %d", when, c.name, 100*share, len(want))
		}
	}
}

// hasCentredName is mediatest.HasCentredName.
func hasCentredName(img *media.Image, r layout.Rect) bool { return mediatest.HasCentredName(img, r) }

// gridTileOf finds the tile of an n-grid that shows c.
func gridTileOf(img *media.Image, n int, c col) (layout.Rect, bool) {
	for _, tl := range layout.Compute(layout.Params{Kind: layout.Grid, Width: img.Width, Height: img.Height, Sources: srcs(n)}) {
		if tileColour(img, tl.Rect) == c.name {
			return tl.Rect, true
		}
	}
	return layout.Rect{}, false
}

// ---------------------------------------------------------------------------
// Tests.

// TestLiveGridFollowsTheRoom records a room whose cast changes: two
// publishers at the start (H.264 and VP8), a third joins, one mutes and
// unmutes its camera, one shares its screen and stops, one unpublishes its
// camera, one leaves. Each phase of the MP4 shows exactly the publishers
// present (colours in their tiles, a muted or unpublished camera as a grey
// placeholder with the name, the screen share as the big tile),
// neither the recorder nor another hidden participant (publishing yellow)
// has a tile, each speaker's tone is in the mix
// while present, and the media arrived over 127.0.0.1.
func TestLiveGridFollowsTheRoom(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "grid"
	const (
		fA, fB, fC = 400.0, 620.0, 940.0
	)
	alice := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: cRed.hex, Audio: true, ToneHz: int(fA), Speaking: true})
	bob := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "bob", Name: "Bob", Video: "vp8", Color: cBlue.hex, Audio: true, ToneHz: int(fB)})
	// Another hidden recorder (an egress, a second roomcast) publishing
	// yellow: it must get no tile either.
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "ghost", Name: "Ghost", Video: "vp8", Color: cYellow.hex,
		Token: srv.Token(room, "ghost", "Ghost", lktest.Hidden())})
	screen := genVP8(t, t.TempDir(), "color=c="+cMagenta.hex+":s=640x360:r=15:d=2", 15)

	s := startSession(t, srv, room, compositor.Config{})
	type phase struct {
		name     string
		at, took time.Duration // output time the change was done; how long it took
	}
	var ph []phase
	// Each change comes 3 s after the previous one was done: joining and
	// leaving take from 0.1 to a few seconds under -race on two cores.
	step := func(name string, do func()) {
		if len(ph) > 0 {
			s.sleepUntil(ph[len(ph)-1].at + 3*time.Second)
		}
		t0 := s.at()
		do()
		ph = append(ph, phase{name, s.at(), s.at() - t0})
	}
	step("start", func() {})
	var carol *lktest.Publisher
	step("carol joined", func() {
		carol = lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "carol", Name: "Carol", Video: "h264", Color: cGreen.hex, Audio: true, ToneHz: int(fC)})
	})
	step("bob muted his camera", func() {
		if err := bob.Mute("video", true); err != nil {
			t.Fatal(err)
		}
	})
	step("bob unmuted his camera", func() {
		if err := bob.Mute("video", false); err != nil {
			t.Fatal(err)
		}
	})
	var scr *rawTrack
	step("carol shares her screen", func() {
		scr = publishRaw(t, carol.Room, rawSpec{Name: "screen", Source: lkproto.TrackSource_SCREEN_SHARE, Codec: "vp8",
			Samples: screen, FPS: 15, Width: 640, Height: 360})
	})
	step("carol stopped sharing", func() {
		if err := scr.Unpublish(); err != nil {
			t.Fatal(err)
		}
	})
	step("bob unpublished his camera", func() {
		if err := bob.Unpublish("video"); err != nil {
			t.Fatal(err)
		}
	})
	pair, err := s.room.SelectedCandidatePair()
	if err != nil {
		t.Error(err)
	} else {
		// The server only offers 127.0.0.1, so media flows to and from it
		// there. roomcast's own candidate may carry another address of this
		// machine (server-sdk-go does not expose pion's loopback setting),
		// routed locally all the same.
		t.Logf("selected ICE pair: roomcast %s ↔ server %s", pair.Local, pair.Remote)
		if pair.RemoteIP != "127.0.0.1" {
			t.Errorf("selected ICE pair %s ↔ %s: the server side is not 127.0.0.1", pair.Local, pair.Remote)
		}
	}
	step("alice left", alice.Close)
	s.sleepUntil(ph[len(ph)-1].at + 3*time.Second)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	total := s.rec.Elapsed()
	for _, p := range ph {
		t.Logf("%6.2f s  %-24s (took %v)", p.at.Seconds(), p.name, p.took.Round(time.Millisecond))
	}

	W, H, fps := s.cc.Width, s.cc.Height, s.cc.FPS
	// Sample each phase 2 s after its change (joins need a keyframe; the
	// server forwards mutes and departures within a few hundred ms).
	at := func(i int) float64 { return ph[i].at.Seconds() + 2 }
	// What each phase shows (nil: the screen share layout, checked apart)
	// and which tones it holds.
	want := []struct {
		tiles   []col
		present []float64
		absent  []float64
	}{
		{[]col{cRed, cBlue}, []float64{fA, fB}, []float64{fC}},
		{[]col{cRed, cBlue, cGreen}, []float64{fA, fB, fC}, nil},
		{[]col{cRed, cPlaceholder, cGreen}, []float64{fA, fB, fC}, nil}, // a muted camera keeps its microphone
		{[]col{cRed, cBlue, cGreen}, []float64{fA, fB, fC}, nil},
		{nil, []float64{fA, fB, fC}, nil},
		{[]col{cRed, cBlue, cGreen}, []float64{fA, fB, fC}, nil},
		{[]col{cRed, cPlaceholder, cGreen}, []float64{fA, fB, fC}, nil},
		{[]col{cPlaceholder, cGreen}, []float64{fB, fC}, []float64{fA}},
	}
	if len(want) != len(ph) {
		t.Fatalf("%d phases, %d expectations", len(ph), len(want))
	}
	times := make([]float64, len(ph))
	for i := range ph {
		times[i] = at(i)
	}
	times[0] = 2.5
	imgs := grab(t, s.out, W, H, fps, times...)
	x := audioMono(t, s.out)
	for i, w := range want {
		when := fmt.Sprintf("t=%.1fs (%s)", times[i], ph[i].name)
		if w.tiles != nil {
			checkGrid(t, imgs[i], when, w.tiles...)
			if slices.Contains(w.tiles, cPlaceholder) {
				if r, ok := gridTileOf(imgs[i], len(w.tiles), cPlaceholder); ok && !hasCentredName(imgs[i], r) {
					t.Errorf("%s: the placeholder tile %+v carries no name", when, r)
				}
			}
		} else {
			// Screen share: the screen is the big tile; the cameras a column.
			tiles := layout.Compute(layout.Params{Kind: layout.Screenshare, Width: W, Height: H, Sources: []layout.Source{
				{ID: "a"}, {ID: "b"}, {ID: "c"}, {ID: "s", Screen: true}}})
			var cams []string
			for _, tl := range tiles {
				c := tileColour(imgs[i], tl.Rect)
				if tl.Main {
					if c != cMagenta.name {
						t.Errorf("%s: main tile %+v shows %s, want the screen (magenta)", when, tl.Rect, c)
					}
					continue
				}
				cams = append(cams, c)
			}
			sort.Strings(cams)
			if want := names(cRed, cBlue, cGreen); !slices.Equal(cams, want) {
				t.Errorf("%s: camera column shows %v, want %v", when, cams, want)
			}
		}
		a, b := ph[i].at.Seconds()+1.2, total.Seconds()-0.2
		if i == 0 {
			a = 0.8
		}
		if i+1 < len(ph) {
			b = ph[i+1].at.Seconds() - 0.1
		}
		checkTones(t, x, a, b, w.present, w.absent)
	}
}

// boxX is mediatest.BoxX.
func boxX(img *media.Image, r layout.Rect) float64 { return mediatest.BoxX(img, r) }

// TestLiveFreeze: one publisher's network stops delivering for 5 s (every
// packet lost, the server told nothing). The recording keeps its pace
// (duration × fps pictures, one every 1/fps), the frozen tile holds its last
// picture, then shows the placeholder after the stall timeout, and comes back
// when packets flow again; the other speaker moves and sounds throughout.
func TestLiveFreeze(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "freeze"
	const fA, fB = 400.0, 620.0
	dir := t.TempDir()
	epoch := time.Now()
	aliceRoom := joinRaw(t, srv, room, "alice", "Alice")
	publishRaw(t, aliceRoom, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: "h264", FPS: 30, Width: 320, Height: 240, Epoch: epoch,
		Samples: genH264(t, dir, movingBox(cRed, 320, 240, 30), 30)})
	publishRaw(t, aliceRoom, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Epoch: epoch,
		Samples: lktest.GenerateAudio(t, dir, lktest.AudioSpec{ToneHz: int(fA)})})
	bobRoom := joinRaw(t, srv, room, "bob", "Bob")
	bv := publishRaw(t, bobRoom, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: "vp8", FPS: 30, Width: 320, Height: 240, Epoch: epoch,
		Samples: genVP8(t, dir, movingBox(cBlue, 320, 240, 30), 30)})
	ba := publishRaw(t, bobRoom, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Epoch: epoch,
		Samples: lktest.GenerateAudio(t, dir, lktest.AudioSpec{ToneHz: int(fB)})})

	const total = 12 * time.Second
	s := startSession(t, srv, room, compositor.Config{Duration: total})
	s.sleepUntil(2500 * time.Millisecond)
	f0 := s.at()
	bv.Freeze(5 * time.Second)
	ba.Freeze(5 * time.Second)
	t.Logf("bob frozen from %.2f s to %.2f s", f0.Seconds(), (f0 + 5*time.Second).Seconds())
	s.finish()

	W, H, fps := s.cc.Width, s.cc.Height, s.cc.FPS
	checkFrameCount(t, s.out, total, fps)
	fz := f0.Seconds()
	times := []float64{2.0, fz + 0.8, fz + 1.3, fz + 3.5, fz + 4.5, fz + 7.5}
	imgs := grab(t, s.out, W, H, fps, times...)
	tiles := layout.Compute(layout.Params{Kind: layout.Grid, Width: W, Height: H, Sources: srcs(2)})
	// Which tile is whose: alice's is red before the freeze.
	ai, bi := 0, 1
	if tileColour(imgs[0], tiles[1].Rect) == cRed.name {
		ai, bi = 1, 0
	}
	ar, br := tiles[ai].Rect, tiles[bi].Rect
	want := []struct {
		alice, bob col
		what       string
	}{
		{cRed, cBlue, "before the freeze"},
		{cRed, cBlue, "frozen, within the stall timeout: bob's last picture held"},
		{cRed, cBlue, "frozen, within the stall timeout: bob's last picture held"},
		{cRed, cPlaceholder, "frozen past the stall timeout: placeholder"},
		{cRed, cPlaceholder, "frozen past the stall timeout: placeholder"},
		{cRed, cBlue, "2.5 s after the network came back"},
	}
	for i, w := range want {
		when := fmt.Sprintf("t=%.2fs (%s)", times[i], w.what)
		if c := tileColour(imgs[i], ar); c != w.alice.name {
			t.Errorf("%s: alice's tile shows %s, want %s", when, c, w.alice.name)
		}
		if c := tileColour(imgs[i], br); c != w.bob.name {
			t.Errorf("%s: bob's tile shows %s, want %s", when, c, w.bob.name)
		}
	}
	if !hasCentredName(imgs[3], br) {
		t.Errorf("t=%.2fs: bob's placeholder carries no name", times[3])
	}
	// Held means held: bob's box did not move between the two frozen samples;
	// alice's did (her pictures kept coming).
	if b1, b2 := boxX(imgs[1], br), boxX(imgs[2], br); b1 < 0 || math.Abs(b1-b2) > 1 {
		t.Errorf("bob's held picture changed during the freeze: box at %.1f then %.1f", b1, b2)
	}
	if a1, a2 := boxX(imgs[1], ar), boxX(imgs[2], ar); a1 < 0 || a2 < 0 || math.Abs(a1-a2) < 3 {
		t.Errorf("alice's picture did not move during bob's freeze: box at %.1f then %.1f", a1, a2)
	}

	x := audioMono(t, s.out)
	checkTones(t, x, 0.5, fz-0.1, []float64{fA, fB}, nil)
	checkTones(t, x, fz+0.5, fz+4.9, []float64{fA}, []float64{fB})
	checkTones(t, x, fz+6, total.Seconds()-0.2, []float64{fA, fB}, nil)
	for _, tr := range s.room.Tracks() {
		t.Logf("%s %s: %+v", tr.ParticipantID, tr.Kind, tr.Stats())
	}
}

// TestLiveAVSync: two publishers capture a flash and a beep at the same
// wall-clock instants (same epoch, different RTP bases and join times). In
// the recording each flash and its beep are within 60 ms of each other, and
// the two publishers' flashes land on the same picture (±1 frame).
func TestLiveAVSync(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "sync"
	video, audio := lktest.FlashBeep(t, t.TempDir())
	epoch := time.Now().Add(500 * time.Millisecond)
	for _, id := range []string{"ann", "ben"} {
		r := joinRaw(t, srv, room, id, strings.ToUpper(id[:1])+id[1:])
		publishRaw(t, r, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: "vp8", FPS: 30, Width: 320, Height: 240, Samples: video, Epoch: epoch})
		publishRaw(t, r, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Samples: audio, Epoch: epoch})
	}
	const total = 9 * time.Second
	s := startSession(t, srv, room, compositor.Config{Duration: total})
	s.finish()

	ts := frameTimes(t, s.out)
	v0 := ts[0]
	for i := range ts {
		ts[i] -= v0
	}
	// Two tiles side by side: the left and right halves of a 32x18 picture,
	// rows 5–12 (the middle, clear of labels).
	left := mediatest.FlashOnsets(mediatest.LumaMeans(t, s.out, 2, 5, 14, 12), ts)
	right := mediatest.FlashOnsets(mediatest.LumaMeans(t, s.out, 18, 5, 30, 12), ts)
	beeps := mediatest.BeepOnsets(audioMono(t, s.out), firstAudioTime(t, s.out)-v0)
	t.Logf("flashes left %.3f, right %.3f; beeps %.3f", left, right, beeps)
	if len(left) < 3 || len(right) < 3 || len(beeps) < 3 {
		t.Fatalf("found %d+%d flashes and %d beeps, want at least 3 each in %v", len(left), len(right), len(beeps), total)
	}
	for _, fl := range left {
		j := slices.IndexFunc(right, func(r float64) bool { return math.Abs(r-fl) < 0.5 })
		if j < 0 {
			t.Errorf("flash at %.3f s on the left has no twin on the right", fl)
			continue
		}
		if d := right[j] - fl; math.Abs(d) > 1.5/30 {
			t.Errorf("the two publishers' flashes are %+.0f ms apart (at %.3f and %.3f s), want the same picture ±1", d*1000, fl, right[j])
		}
		k := slices.IndexFunc(beeps, func(b float64) bool { return math.Abs(b-fl) < 0.5 })
		if k < 0 {
			t.Errorf("flash at %.3f s has no beep", fl)
			continue
		}
		d := fl - beeps[k]
		t.Logf("flash %.3f s, beep %.3f s: A/V offset %+.1f ms", fl, beeps[k], d*1000)
		if math.Abs(d) > 0.060 {
			t.Errorf("flash at %.3f s, beep at %.3f s: A/V offset %+.0f ms, want within ±60 ms", fl, beeps[k], d*1000)
		}
	}
}

// TestLiveGarbage: two publishers send garbage (random RTP payloads on an
// H.264 camera and an Opus microphone; a VP8 camera and an Opus microphone
// with corrupted bitstreams) next to two good ones. The recording keeps its
// pace to the end, the good speakers' colours and tones are in it, and the
// garbage did reach the depacketisers and decoders.
func TestLiveGarbage(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "garbage"
	const fA, fB = 400.0, 620.0
	dir := t.TempDir()
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: cRed.hex, Audio: true, ToneHz: int(fA)})
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "bob", Name: "Bob", Video: "vp8", Color: cBlue.hex, Audio: true, ToneHz: int(fB)})
	green := lktest.GenerateVideo(t, dir, lktest.VideoSpec{Codec: "vp8", Color: cGreen.hex})
	tone := lktest.GenerateAudio(t, dir, lktest.AudioSpec{ToneHz: 940})
	mallory := joinRaw(t, srv, room, "mallory", "Mallory")
	publishRaw(t, mallory, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: "h264", FPS: 30, Width: 320, Height: 240, Samples: green, Garbage: "random"})
	publishRaw(t, mallory, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Samples: tone, Garbage: "random"})
	trudy := joinRaw(t, srv, room, "trudy", "Trudy")
	publishRaw(t, trudy, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: "vp8", FPS: 30, Width: 320, Height: 240, Samples: green, Garbage: "broken"})
	publishRaw(t, trudy, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Samples: tone, Garbage: "broken"})

	const total = 10 * time.Second
	s := startSession(t, srv, room, compositor.Config{Duration: total})
	s.sleepUntil(total - time.Second)
	stats := map[string]roomapi.TrackStats{}
	for _, tr := range s.room.Tracks() {
		stats[tr.ParticipantID+" "+tr.Kind.String()] = tr.Stats()
	}
	s.finish()
	for k, st := range stats {
		t.Logf("%-14s %+v", k, st)
	}
	for _, k := range []string{"mallory video", "mallory audio", "trudy video", "trudy audio"} {
		// The server forwards what parses (it reads H.264 NAL headers and
		// drops some random payloads); enough gets through to test ours.
		if st, ok := stats[k]; !ok || st.Packets < 30 {
			t.Errorf("%s: %d packets reached roomcast; the garbage was not delivered", k, st.Packets)
		}
	}

	W, H, fps := s.cc.Width, s.cc.Height, s.cc.FPS
	checkFrameCount(t, s.out, total, fps)
	times := []float64{3, 6, 9}
	for i, img := range grab(t, s.out, W, H, fps, times...) {
		got := gridColours(img, 4)
		for _, c := range []col{cRed, cBlue} {
			if !slices.Contains(got, c.name) {
				t.Errorf("t=%.0fs: the 4-tile grid shows %v: %s missing", times[i], got, c.name)
			}
		}
	}
	x := audioMono(t, s.out)
	checkTones(t, x, 1, total.Seconds()-0.2, []float64{fA, fB}, nil)
	if n := strings.Count(s.logs.String(), `"decode error"`); n == 0 {
		t.Errorf("no decode error logged: the broken bitstreams did not reach the decoders")
	}
}

// ---------------------------------------------------------------------------
// The live benchmark (scripts/bench-live.sh, part of make bench).

// procSample is one reading of /proc/<pid>: CPU seconds so far and memory.
type procSample struct {
	at          time.Time
	cpu         float64 // utime+stime, seconds
	hwmKB, rsKB int64   // VmHWM (peak RSS) and VmRSS
}

// readProc reads /proc/<pid>/stat (utime and stime, in USER_HZ = 100 ticks
// per second on Linux) and /proc/<pid>/status (VmHWM, VmRSS).
func readProc(pid int) (procSample, bool) {
	s := procSample{at: time.Now()}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, false
	}
	// Fields after the command name (which may hold spaces), from field 3.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return s, false
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	s.cpu = (ut + st) / 100
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			s.hwmKB = n
		case "VmRSS":
			s.rsKB = n
		}
	}
	return s, true
}

// rusageOf returns the CPU seconds and peak RSS (MB) of an exited process.
func rusageOf(ps *os.ProcessState) (cpu, rssMB float64) {
	cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		rssMB = float64(ru.Maxrss) / 1024 // kB on Linux
	}
	return cpu, rssMB
}

// roomcastBinary is $ROOMCAST_BIN, or roomcast built into a temp dir.
func roomcastBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("ROOMCAST_BIN"); b != "" {
		return b
	}
	b := filepath.Join(t.TempDir(), "roomcast")
	if out, err := exec.Command("go", "build", "-o", b, "../cmd/roomcast").CombinedOutput(); err != nil {
		t.Fatalf("building roomcast: %v\n%s", err, out)
	}
	return b
}

// TestBenchLive is the live benchmark, run by scripts/bench-live.sh (set
// ROOMCAST_BENCH_LIVE=1): four publishers send 640x360@30 moving patterns
// (two H.264, two VP8, each with its Opus tone; keyframes every second and
// on request, as browsers answer PLIs) into a livekit-server on
// 127.0.0.1; the roomcast binary records the room for BENCH_LIVE_SECONDS
// (default 60) at 1280x720@30, libx264 veryfast, --preset stream 3 Mb/s.
// Then `roomcast compose` of the very same bitstreams (remuxed to MKV) with
// the same encoding. It reports the recorder's CPU (from /proc/<pid>/stat
// while it runs and from rusage at exit) in cores and as a ratio to
// compose, its peak RSS (VmHWM), and the time from joining to each track's
// first decoded picture (roomcast's log).
func TestBenchLive(t *testing.T) {
	if os.Getenv("ROOMCAST_BENCH_LIVE") == "" {
		t.Skip("benchmark: run scripts/bench-live.sh (ROOMCAST_BENCH_LIVE=1)")
	}
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("BENCH_LIVE_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	bin := roomcastBinary(t)
	srv := lktest.StartServer(t)
	dir := t.TempDir()
	const room = "bench"

	// The speakers' media: a bit longer than the recording, so no loop
	// point falls inside it (publishers loop their samples).
	length := secs + 5
	type speaker struct {
		id, codec, graph string
		tone             int
	}
	speakers := []speaker{
		{"alice", "h264", "testsrc2=s=640x360:r=30", 330},
		{"bob", "vp8", "testsrc=s=640x360:r=30,lutrgb=r=val*0.6", 440},
		{"carol", "h264", "testsrc2=s=640x360:r=30,hflip,lutrgb=b=val*0.5", 550},
		{"dave", "vp8", "testsrc=s=640x360:r=30,hflip,lutrgb=g=val*0.7", 660},
	}
	t0 := time.Now()
	var inputs []string
	type media2 struct{ video, audio [][]byte }
	gen := make([]media2, 0, 4)
	for _, sp := range speakers {
		graph := fmt.Sprintf("%s,trim=duration=%d", sp.graph, length)
		apath := filepath.Join(dir, sp.id+".ogg")
		encodeOpus(t, apath, fmt.Sprintf("sine=f=%d:sample_rate=48000:d=%d,volume=0.3", sp.tone, length))
		var vpath string
		var video [][]byte
		if sp.codec == "h264" {
			vpath = filepath.Join(dir, sp.id+".h264")
			encodeH264(t, vpath, graph, 30)
			video = lktest.ReadH264(t, vpath)
		} else {
			vpath = filepath.Join(dir, sp.id+".ivf")
			encodeVP8(t, vpath, graph, 30, "800k")
			video = lktest.ReadIVF(t, vpath)
		}
		// compose reads the same bitstreams from MKV.
		mkv := filepath.Join(dir, sp.id+".mkv")
		ffmpegRun(t, "-r", "30", "-i", vpath, "-i", apath, "-map", "0:v", "-map", "1:a", "-c", "copy", mkv)
		inputs = append(inputs, "file="+mkv+",name="+strings.ToUpper(sp.id[:1])+sp.id[1:])
		gen = append(gen, media2{video, lktest.ReadOgg(t, apath)})
	}
	t.Logf("generated %d × %d s of media in %v", 4, length, time.Since(t0).Round(time.Millisecond))

	epoch := time.Now().Add(200 * time.Millisecond)
	for i, sp := range speakers {
		r := joinRaw(t, srv, room, sp.id, strings.ToUpper(sp.id[:1])+sp.id[1:])
		publishRaw(t, r, rawSpec{Name: "camera", Source: lkproto.TrackSource_CAMERA, Codec: sp.codec, FPS: 30, Width: 640, Height: 360,
			Samples: gen[i].video, Epoch: epoch, AnswerPLI: true})
		publishRaw(t, r, rawSpec{Name: "microphone", Source: lkproto.TrackSource_MICROPHONE, Codec: "opus", Samples: gen[i].audio, Epoch: epoch})
	}
	time.Sleep(time.Second)

	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(srv.APISecret), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "record.mp4")
	enc := []string{"--preset", "stream", "--video-bitrate", "3M", "--x264-preset", "veryfast"}
	rargs := append([]string{"--log-format", "json", "record", "--room", srv.URL + "/" + room,
		"--api-key", srv.APIKey, "--api-secret-file", secret, "--duration", fmt.Sprintf("%ds", secs), "-o", out}, enc...)
	cmd := exec.Command(bin, rargs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	// Log lines, stamped on arrival (the log's own timestamps have whole
	// seconds).
	var (
		mu        sync.Mutex
		joinedAt  time.Time
		recAt     time.Time
		firsts    []string // "participant: since_start ms, arrival after joined"
		logTail   []string
		firstLast time.Time
	)
	linesDone := make(chan struct{})
	go func() {
		defer close(linesDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l, now := sc.Text(), time.Now()
			mu.Lock()
			logTail = append(logTail, l)
			if len(logTail) > 40 {
				logTail = logTail[1:]
			}
			switch {
			case joinedAt.IsZero() && strings.Contains(l, `"message":"joined"`):
				joinedAt = now
			case recAt.IsZero() && strings.Contains(l, `"message":"recording"`):
				recAt = now
			case strings.Contains(l, `"message":"first video decoded"`):
				v, _ := jsonFieldOf(l, "since_start")
				who, _ := jsonFieldOf(l, "participant")
				firsts = append(firsts, fmt.Sprintf("%v %v ms after recording start, %v after joined", who, v, now.Sub(joinedAt).Round(time.Millisecond)))
				firstLast = now
			}
			mu.Unlock()
		}
	}()
	var samples []procSample
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tick := time.NewTicker(250 * time.Millisecond)
sampling:
	for {
		select {
		case <-exited:
			break sampling
		case <-tick.C:
			if s, ok := readProc(cmd.Process.Pid); ok {
				samples = append(samples, s)
			}
		case <-time.After(time.Duration(secs+60) * time.Second):
			t.Fatal("roomcast record did not finish in time")
		}
	}
	tick.Stop()
	wall := time.Since(start)
	<-linesDone
	mu.Lock()
	defer mu.Unlock()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("roomcast record: exit %d\n%s", code, strings.Join(logTail, "\n"))
	}
	cpu, maxrss := rusageOf(cmd.ProcessState)
	var hwm int64
	for _, s := range samples {
		hwm = max(hwm, s.hwmKB)
	}
	// Steady state: from 5 s after recording started to the last sample
	// before the end (start-up and finalising excluded).
	var steady float64
	if !recAt.IsZero() && len(samples) > 2 {
		a := slices.IndexFunc(samples, func(s procSample) bool { return s.at.After(recAt.Add(5 * time.Second)) })
		b := len(samples) - 2
		if a >= 0 && b > a {
			steady = (samples[b].cpu - samples[a].cpu) / samples[b].at.Sub(samples[a].at).Seconds()
		}
	}
	frames := len(frameTimes(t, out))

	// compose: the same bitstreams, the same encoding, as fast as it goes.
	cout := filepath.Join(dir, "compose.mp4")
	cargs := append([]string{"--log-level", "warn", "compose", "-y", "-o", cout, "--duration", fmt.Sprintf("%ds", secs)}, enc...)
	for _, in := range inputs {
		cargs = append(cargs, "--input", in)
	}
	cc := exec.Command(bin, cargs...)
	cstart := time.Now()
	if b, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("roomcast compose: %v\n%s", err, b)
	}
	cwall := time.Since(cstart)
	ccpu, crss := rusageOf(cc.ProcessState)
	cframes := len(frameTimes(t, cout))

	res := []string{
		fmt.Sprintf("4 publishers 640x360@30 (2 H.264, 2 VP8, Opus) -> 1280x720@30 libx264 veryfast --preset stream 3 Mb/s, %d s", secs),
		fmt.Sprintf("record:  %.2f CPU-s over %.2f s wall = %.3f cores (rusage); steady state %.3f cores (/proc/%d/stat); %d frames",
			cpu, wall.Seconds(), cpu/wall.Seconds(), steady, cmd.Process.Pid, frames),
		fmt.Sprintf("record:  peak RSS %.1f MB (VmHWM), %.1f MB (rusage maxrss)", float64(hwm)/1024, maxrss),
		fmt.Sprintf("compose: %.2f CPU-s over %.2f s wall (%.2fx real time), peak RSS %.1f MB; %d frames", ccpu, cwall.Seconds(), float64(secs)/cwall.Seconds(), crss, cframes),
		fmt.Sprintf("CPU ratio record/compose: %.2f", cpu/ccpu),
		fmt.Sprintf("join: room joined %v after start; last first picture %v after joined", joinedAt.Sub(start).Round(time.Millisecond), firstLast.Sub(joinedAt).Round(time.Millisecond)),
	}
	for _, f := range firsts {
		res = append(res, "first picture: "+f)
	}
	verdict := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "OVER"
	}
	res = append(res,
		fmt.Sprintf("targets: CPU %.3f cores ≤ 0.6: %s; RSS %.1f MB ≤ 150: %s; first picture %v ≤ 2 s: %s",
			cpu/wall.Seconds(), verdict(cpu/wall.Seconds() <= 0.6), float64(hwm)/1024, verdict(float64(hwm)/1024 <= 150),
			firstLast.Sub(joinedAt).Round(time.Millisecond), verdict(!firstLast.IsZero() && firstLast.Sub(joinedAt) <= 2*time.Second)))
	for _, l := range res {
		t.Log("BENCH " + l)
	}
	// With GODEBUG=gctrace=1 in the environment, the Go heap's share of
	// the RSS shows here.
	for _, l := range logTail {
		if strings.HasPrefix(l, "gc ") {
			t.Log("BENCH roomcast " + l)
		}
	}
	if frames != secs*30 {
		t.Errorf("the recording has %d frames, want %d", frames, secs*30)
	}
	if len(firsts) != 4 {
		t.Errorf("%d tracks logged a first picture, want 4", len(firsts))
	}
}

// jsonFieldOf reads one field of a JSON log line.
func jsonFieldOf(line, key string) (any, bool) {
	var m map[string]any
	if json.Unmarshal([]byte(line), &m) != nil {
		return nil, false
	}
	v, ok := m[key]
	return v, ok
}

// TestLiveServerRestart: the LiveKit server dies and comes back on the same
// address mid-session (every room and participant lost). The recording
// goes on at its pace throughout; roomcast and the publishers rejoin, and
// the same two tiles come back (no duplicate, no recorder tile) with their
// colours and tones.
func TestLiveServerRestart(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "restart"
	const fA, fB = 400.0, 620.0
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: cRed.hex, Audio: true, ToneHz: int(fA)})
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "bob", Name: "Bob", Video: "vp8", Color: cBlue.hex, Audio: true, ToneHz: int(fB)})
	s := startSession(t, srv, room, compositor.Config{})
	s.sleepUntil(3 * time.Second)
	down := s.at()
	srv.Restart()
	up := s.at()
	// Back when roomcast has four tracks again that deliver frames.
	deadline := time.Now().Add(30 * time.Second)
	var back time.Duration
	for back == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the tracks did not come back within 30 s of the restart: %d tracks", len(s.room.Tracks()))
		}
		time.Sleep(100 * time.Millisecond)
		n := 0
		for _, tr := range s.room.Tracks() {
			if tr.Stats().Frames > 30 {
				n++
			}
		}
		if n == 4 {
			back = s.at()
		}
	}
	s.sleepUntil(back + 3*time.Second)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	total := s.rec.Elapsed()
	t.Logf("server down at %.2f s, up at %.2f s, four tracks delivering again at %.2f s, stopped at %.2f s",
		down.Seconds(), up.Seconds(), back.Seconds(), total.Seconds())
	W, H, fps := s.cc.Width, s.cc.Height, s.cc.FPS
	ts := frameTimes(t, s.out)
	if want := int(math.Round(total.Seconds() * float64(fps))); absInt(len(ts)-want) > 1 {
		t.Errorf("%d frames for %v of output, want %d: the output did not keep its pace", len(ts), total, want)
	}
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; math.Abs(d-1/float64(fps)) > 1e-3 {
			t.Errorf("frame %d: PTS step %.4f s: a gap in the output", i, d)
			break
		}
	}
	end := back.Seconds() + 2.5
	imgs := grab(t, s.out, W, H, fps, 2, end)
	checkGrid(t, imgs[0], "t=2s (before the restart)", cRed, cBlue)
	checkGrid(t, imgs[1], fmt.Sprintf("t=%.1fs (after the restart)", end), cRed, cBlue)
	x := audioMono(t, s.out)
	checkTones(t, x, back.Seconds()+0.5, total.Seconds()-0.2, []float64{fA, fB}, nil)
}

// TestLiveChromium: a browser speaker (livekit-client in headless Chromium,
// VP8 with simulcast, fake camera and microphone from files) next to a Go
// publisher: both colours in their tiles, both tones in the mix; when the
// browser mutes its camera its tile turns into the placeholder with the name.
func TestLiveChromium(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "browser"
	const fA, fC = 400.0, 940.0
	lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264", Color: cRed.hex, Audio: true, ToneHz: int(fA)})
	s := startSession(t, srv, room, compositor.Config{})
	br := lktest.StartChromium(t, srv, room, lktest.ChromiumOptions{Identity: "carol", Name: "Carol", Color: cYellow.hex, ToneHz: int(fC)})
	br.WaitFor("published", 30*time.Second)
	pub := s.at()
	s.sleepUntil(pub + 5*time.Second)
	br.Command("mute video")
	muted := s.at()
	s.sleepUntil(muted + 3*time.Second)
	simulcast := false
	for _, tr := range s.room.Tracks() {
		t.Logf("%s %s %s simulcast=%v: %+v", tr.ParticipantID, tr.Kind, tr.Codec, tr.Simulcast, tr.Stats())
		simulcast = simulcast || (tr.ParticipantID == "carol" && tr.Kind == roomapi.KindVideo && tr.Simulcast)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	// With simulcast, the layer that fits the picture as shown (her 16:9
	// camera letterboxed into a 320x360 cell of the 2-tile grid: 320x180),
	// not the largest: the last size carol's pictures had.
	// Info-level lines name carol by her opaque per-session id.
	var sizes []string
	carol := `"participant":"` + s.live.Pseudonyms.ID("carol") + `"`
	for _, l := range strings.Split(s.logs.String(), "\n") {
		if strings.Contains(l, `"message":"picture size"`) && strings.Contains(l, carol) {
			w, _ := jsonFieldOf(l, "width")
			h, _ := jsonFieldOf(l, "height")
			sizes = append(sizes, fmt.Sprintf("%vx%v", w, h))
		}
	}
	t.Logf("carol's picture sizes: %v", sizes)
	if !simulcast {
		t.Errorf("the browser's camera is not simulcast")
	} else if len(sizes) == 0 || sizes[len(sizes)-1] != "320x180" {
		t.Errorf("carol's pictures went %v; want the 320x180 layer at the end (shown at 320x180)", sizes)
	}
	t.Logf("chromium published at %.2f s, muted its camera at %.2f s", pub.Seconds(), muted.Seconds())
	W, H, fps := s.cc.Width, s.cc.Height, s.cc.FPS
	times := []float64{pub.Seconds() + 4, muted.Seconds() + 2.5}
	imgs := grab(t, s.out, W, H, fps, times...)
	checkGrid(t, imgs[0], fmt.Sprintf("t=%.1fs (browser publishing)", times[0]), cRed, cYellow)
	checkGrid(t, imgs[1], fmt.Sprintf("t=%.1fs (browser camera muted)", times[1]), cRed, cPlaceholder)
	if r, ok := gridTileOf(imgs[1], 2, cPlaceholder); ok && !hasCentredName(imgs[1], r) {
		t.Errorf("the browser's placeholder tile %+v carries no name", r)
	}
	x := audioMono(t, s.out)
	checkTones(t, x, pub.Seconds()+1.5, muted.Seconds()+2.8, []float64{fA, fC}, nil)
}

// TestLiveSimulcastGrows: a browser speaker (VP8 simulcast, silent
// microphone) sits in the filmstrip of the speaker layout beside a Go
// publisher who speaks; she gets the small layer. When the speaker leaves,
// her tile grows to the whole canvas: within 2 s of the leave her pictures
// come from the larger layer, and in between her tile never shows the
// placeholder or a held picture (her moving box moves in every sample).
func TestLiveSimulcastGrows(t *testing.T) {
	lktest.SkipIfShort(t)
	srv := lktest.StartServer(t)
	const room = "grows"
	alice := lktest.StartPublisher(t, srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice", Video: "h264",
		Color: cRed.hex, Audio: true, ToneHz: 400, Speaking: true})
	s := startSession(t, srv, room, compositor.Config{Layout: layout.Speaker})
	silent := filepath.Join(t.TempDir(), "silent.wav")
	ffmpegRun(t, "-f", "lavfi", "-i", "aevalsrc=0:s=48000:d=4,aformat=sample_fmts=flt", "-ac", "1", "-c:a", "pcm_s16le", silent)
	// Her camera: a white box moving 80 px/s over yellow, looping every 2 s.
	camera := filepath.Join(t.TempDir(), "camera.y4m")
	ffmpegRun(t, "-f", "lavfi", "-i", lktest.MovingBox(cYellow.hex, 640, 360, 30), "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", camera)
	br := lktest.StartChromium(t, srv, room, lktest.ChromiumOptions{Identity: "carol", Name: "Carol", Y4M: camera, WAV: silent})
	br.WaitFor("published", 30*time.Second)
	pub := s.at()
	s.sleepUntil(pub + 6*time.Second)

	carol := `"participant":"` + s.live.Pseudonyms.ID("carol") + `"`
	sizes := func(logs string) []string {
		var out []string
		for _, l := range strings.Split(logs, "\n") {
			if strings.Contains(l, `"message":"picture size"`) && strings.Contains(l, carol) {
				w, _ := jsonFieldOf(l, "width")
				h, _ := jsonFieldOf(l, "height")
				out = append(out, fmt.Sprintf("%vx%v", w, h))
			}
		}
		return out
	}
	before := s.logs.String()
	small := sizes(before)
	t.Logf("carol's picture sizes in the filmstrip: %v", small)
	if len(small) == 0 || small[len(small)-1] != "320x180" {
		t.Errorf("in the filmstrip carol's pictures went %v; want the 320x180 layer", small)
	}
	alice.Close()
	left, leftAt := time.Now(), s.at()
	var grownAfter time.Duration
	for grownAfter == 0 && time.Since(left) < 8*time.Second {
		time.Sleep(50 * time.Millisecond)
		if g := sizes(strings.TrimPrefix(s.logs.String(), before)); slices.Contains(g, "640x360") {
			grownAfter = time.Since(left)
		}
	}
	s.sleepUntil(leftAt + 4*time.Second)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("alice left at %.2f s; carol's 640x360 layer arrived %v later", leftAt.Seconds(), grownAfter.Round(10*time.Millisecond))
	switch {
	case grownAfter == 0:
		t.Errorf("carol's pictures never came from the 640x360 layer after her tile grew (sizes %v)", sizes(s.logs.String()))
	case grownAfter > 2*time.Second:
		t.Errorf("carol's 640x360 layer came %v after her tile grew, want within 2 s", grownAfter.Round(10*time.Millisecond))
	}
	// From 1 s after the leave (the layout has changed by then) her tile is
	// the whole canvas: yellow, never the placeholder, her box moving from
	// sample to sample (a held picture would leave it in place).
	W, H, fps := s.cc.Width, s.cc.Height, s.cc.FPS
	var times []float64
	for k := 0; k <= 25; k++ {
		times = append(times, leftAt.Seconds()+1+0.1*float64(k))
	}
	imgs := grab(t, s.out, W, H, fps, times...)
	full := layout.Rect{W: W, H: H}
	prev := -1.0
	for i, img := range imgs {
		if c := tileColour(img, full); c != cYellow.name {
			t.Errorf("t=%.2fs: carol's grown tile shows %s, want yellow", times[i], c)
			continue
		}
		x := mediatest.BoxX(img, full)
		if x < 0 {
			t.Errorf("t=%.2fs: no moving box in carol's tile", times[i])
		} else if prev >= 0 && math.Abs(x-prev) < 1 {
			t.Errorf("t=%.2fs: carol's box did not move in 0.1 s (at %.1f): a held picture", times[i], x)
		}
		prev = x
	}
}
