package rtmp_test

// Integration tests against real ingest servers started on 127.0.0.1:
// nginx with Debian's RTMP module, node-media-server 2.7.4 driven the way
// PeerTube drives it and node-media-server 4 for RTMPS. What the servers
// received is read back with ffprobe. They install through
// scripts/peers.d/20-rtmp.sh; a missing one fails the test (only -short
// skips them).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/internal/testnet"
	"github.com/roomcast/roomcast/media"
	"github.com/roomcast/roomcast/rtmp"
	"github.com/roomcast/roomcast/rtmp/internal/rtmptest"
)

var (
	clipOnce sync.Once
	clip     *rtmptest.Media
	clipErr  error
	clipDir  string
)

func TestMain(m *testing.M) {
	rtmptest.EnsureFFmpeg()
	code := m.Run()
	if clipDir != "" {
		os.RemoveAll(clipDir)
	}
	if leaks := leakedGoroutines(); leaks != "" {
		fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaks)
		code = 1
	}
	os.Exit(code)
}

// testClip is 20 s of 640x360@30 H.264 (High, 2 B-frames, a keyframe
// every 2 s, 1 Mb/s) with a 440 Hz AAC tone, made once per test binary.
func testClip(t *testing.T) *rtmptest.Media {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test (needs ffmpeg and RTMP servers)")
	}
	clipOnce.Do(func() {
		clipDir, clipErr = os.MkdirTemp("", "rtmp-clip-")
		if clipErr != nil {
			return
		}
		clip, clipErr = rtmptest.Generate(clipDir, rtmptest.MediaSpec{
			Width: 640, Height: 360, FPS: 30, Duration: 20 * time.Second, GOP: 60, BFrames: 2, VideoBitrate: 1_000_000,
		})
	})
	if clipErr != nil {
		t.Fatalf("test media: %v", clipErr)
	}
	return clip
}

// maxWriteLatency bounds a WritePacket call. Blocking on the network
// would take seconds (timeouts); this leaves room for -race and a busy
// machine.
const maxWriteLatency = 100 * time.Millisecond

// upTo returns the packets whose decode time is below d.
func upTo(m *rtmptest.Media, d time.Duration) []media.Packet {
	t0 := rtmptest.DecodeTime(m.Packets[0])
	var out []media.Packet
	for _, p := range m.Packets {
		if rtmptest.DecodeTime(p)-t0 < d {
			out = append(out, p)
		}
	}
	return out
}

// logBuf collects a Publisher's log lines; every test checks that no
// stream key reached them.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(t *testing.T, secrets ...string) (zerolog.Logger, *logBuf) {
	lb := &logBuf{}
	t.Cleanup(func() {
		out := lb.String()
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("a stream key reached the logs:\n%s", out)
			}
		}
		if t.Failed() {
			t.Logf("publisher log:\n%s", out)
		}
	})
	return zerolog.New(lb).With().Timestamp().Logger(), lb
}

func newPublisher(t *testing.T, url, key string, m *rtmptest.Media) (*rtmp.Publisher, *logBuf) {
	log, lb := newLogger(t, key)
	p := &rtmp.Publisher{URL: url, Info: m.Info, Logger: log}
	t.Cleanup(func() { p.Close() })
	return p, lb
}

// play feeds packets in real time and returns the longest WritePacket call:
// the encoder loop must never wait for the network.
func play(t *testing.T, w interface{ WritePacket(media.Packet) }, pkts []media.Packet) (played, slowest time.Duration) {
	played = rtmptest.Play(context.Background(), pkts, 1, func(p media.Packet) {
		t0 := time.Now()
		w.WritePacket(p)
		slowest = max(slowest, time.Since(t0))
	})
	return played, slowest
}

func checkRecording(t *testing.T, path string, want rtmptest.Want) rtmptest.Summary {
	t.Helper()
	pr, err := rtmptest.ProbeFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	s := rtmptest.Summarize(pr)
	for _, problem := range s.Check(want) {
		t.Errorf("%s: %s", filepath.Base(path), problem)
	}
	if msg := rtmptest.DecodeErrors(path); msg != "" {
		t.Errorf("%s does not decode cleanly: %s", filepath.Base(path), msg)
	}
	t.Logf("%s: %+v", filepath.Base(path), s)
	return s
}

func wantFor(m *rtmptest.Media, d time.Duration) rtmptest.Want {
	return rtmptest.Want{Width: m.Info.Width, Height: m.Info.Height, FPS: float64(m.Info.FPS), MaxGOP: 2 * time.Second, Duration: d}
}

func TestNginxPublish(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{ChunkSize: 4000})
	key := "nginx-" + fmt.Sprint(time.Now().UnixNano())
	p, lb := newPublisher(t, srv.URL(key), key, m)
	kf := 0
	p.RequestKeyframe = func() { kf++ }
	t0 := time.Now()
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v\n%s", err, srv.ErrorLog())
	}
	t.Logf("started in %v", time.Since(t0))
	played, slowest := play(t, p, upTo(m, 6*time.Second))
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := p.Stats()
	t.Logf("stats: %+v, slowest WritePacket %v", st, slowest)
	if st.ServerChunkSize != 4000 {
		t.Errorf("server chunk size %d, want nginx's 4000", st.ServerChunkSize)
	}
	if st.DroppedVideo+st.DroppedAudio != 0 || st.Connects != 1 || st.Outages != 0 {
		t.Errorf("unexpected stats %+v", st)
	}
	if slowest > maxWriteLatency {
		t.Errorf("WritePacket took %v", slowest)
	}
	// The clip starts with a keyframe and repeats the same SPS/PPS in band.
	if kf != 0 || strings.Contains(lb.String(), "parameter sets changed") {
		t.Errorf("keyframe requests %d; log:\n%s", kf, lb.String())
	}
	recs := srv.Recordings(key)
	if len(recs) != 1 {
		for _, r := range recs {
			fi, _ := os.Stat(r)
			t.Logf("%s %d bytes", r, fi.Size())
		}
		t.Fatalf("recordings %v\n%s", recs, srv.ErrorLog())
	}
	checkRecording(t, recs[0], wantFor(m, played))
}

// TestNginxPublishInlineWrites: on an idle connection WritePacket writes
// the packet itself, and the stream arrives whole and in order with a
// small send buffer too (partial writes are forced in TestTryWriteRest).
func TestNginxPublishInlineWrites(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{})
	key := "inline-" + fmt.Sprint(time.Now().UnixNano())
	p, _ := newPublisher(t, srv.URL(key), key, m)
	p.SendBuffer = 8 << 10 // the kernel doubles it; keyframes are larger
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v\n%s", err, srv.ErrorLog())
	}
	pkts := upTo(m, 6*time.Second)
	played, slowest := play(t, p, pkts)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := p.Stats()
	sent, partial := rtmp.InlineCounts(p)
	t.Logf("stats: %+v, slowest WritePacket %v, %d of %d packets sent inline, %d partially", st, slowest, sent, len(pkts), partial)
	if st.DroppedVideo+st.DroppedAudio != 0 || st.Connects != 1 || st.Outages != 0 {
		t.Errorf("unexpected stats %+v", st)
	}
	if slowest > maxWriteLatency {
		t.Errorf("WritePacket took %v", slowest)
	}
	// Paced in real time to a local server, the connection is idle when
	// most packets arrive; under load some go through the queue.
	if sent < uint64(len(pkts))/2 {
		t.Errorf("only %d of %d packets were sent inline", sent, len(pkts))
	}
	recs := srv.Recordings(key)
	if len(recs) != 1 {
		t.Fatalf("recordings %v\n%s", recs, srv.ErrorLog())
	}
	checkRecording(t, recs[0], wantFor(m, played))
}

func TestNginxRejections(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	// nginx asks this hook before accepting a publish, as on_publish
	// authentication setups do.
	good := "good-key-" + fmt.Sprint(time.Now().UnixNano())
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("name") != good {
			http.Error(w, "unknown key", http.StatusForbidden)
		}
	}))
	t.Cleanup(hook.Close)
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{OnPublish: hook.URL + "/auth"})

	t.Run("bad key", func(t *testing.T) {
		bad := "bad-key-0123"
		p, _ := newPublisher(t, srv.URL(bad), bad, m)
		t0 := time.Now()
		err := p.Start(context.Background())
		t.Logf("after %v: %v", time.Since(t0), err)
		if !errors.Is(err, rtmp.ErrRejected) || time.Since(t0) > 5*time.Second {
			t.Fatalf("Start = %v after %v, want ErrRejected within 5 s", err, time.Since(t0))
		}
		if strings.Contains(err.Error(), bad) {
			t.Errorf("error shows the key: %v", err)
		}
		if p.Stats().State != rtmp.StateFailed {
			t.Errorf("state %v", p.Stats().State)
		}
	})

	t.Run("duplicate key", func(t *testing.T) {
		first, _ := newPublisher(t, srv.URL(good), good, m)
		if err := first.Start(context.Background()); err != nil {
			t.Fatalf("first publisher: %v\n%s", err, srv.ErrorLog())
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go rtmptest.Play(ctx, upTo(m, 8*time.Second), 1, first.WritePacket)
		second, _ := newPublisher(t, srv.URL(good), good, m)
		t0 := time.Now()
		err := second.Start(context.Background())
		t.Logf("after %v: %v", time.Since(t0), err)
		if !errors.Is(err, rtmp.ErrAlreadyPublishing) || time.Since(t0) > 5*time.Second {
			t.Fatalf("Start = %v after %v, want ErrAlreadyPublishing within 5 s", err, time.Since(t0))
		}
		if st := first.Stats(); st.State != rtmp.StatePublishing {
			t.Errorf("the first publisher was disturbed: %+v", st)
		}
	})
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	closed := testnet.Port(t)
	hole := rtmptest.StartBlackhole(t)
	for _, tc := range []struct {
		name  string
		url   string
		want  error
		limit time.Duration
	}{
		{"closed port", fmt.Sprintf("rtmp://127.0.0.1:%d/live/k", closed), rtmp.ErrUnreachable, time.Second},
		{"blackhole rtmp", fmt.Sprintf("rtmp://127.0.0.1:%d/live/k", hole.Port), rtmp.ErrTimeout, 2500 * time.Millisecond},
		{"blackhole rtmps", fmt.Sprintf("rtmps://127.0.0.1:%d/live/k", hole.Port), rtmp.ErrTimeout, 2500 * time.Millisecond},
		{"bad URL", "rtmp://127.0.0.1/nokey", rtmp.ErrInvalidURL, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, _ := newLogger(t)
			p := &rtmp.Publisher{URL: tc.url, Info: m.Info, Logger: log, HandshakeTimeout: 2 * time.Second}
			defer p.Close()
			t0 := time.Now()
			err := p.Start(context.Background())
			took := time.Since(t0)
			t.Logf("after %v: %v", took, err)
			if !errors.Is(err, tc.want) || took > tc.limit {
				t.Fatalf("Start = %v after %v, want %v within %v", err, took, tc.want, tc.limit)
			}
		})
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{})
	key := "restart-" + fmt.Sprint(time.Now().UnixNano())
	p, lb := newPublisher(t, srv.URL(key), key, m)
	var keyReqs sync.WaitGroup
	keyReqs.Add(1)
	var once sync.Once
	p.RequestKeyframe = func() { once.Do(keyReqs.Done) }
	p.Backoff = rtmp.Backoff{Initial: 500 * time.Millisecond, Max: 2 * time.Second, GiveUpAfter: time.Minute}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var slowest time.Duration
	played := make(chan struct{})
	go func() {
		defer close(played)
		_, slowest = play(t, p, upTo(m, 12*time.Second))
	}()
	time.Sleep(3 * time.Second)
	srv.Kill()
	time.Sleep(1500 * time.Millisecond)
	srv.Restart()
	<-played
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := p.Stats()
	t.Logf("stats %+v, slowest WritePacket %v", st, slowest)
	if st.Outages != 1 || st.Connects != 2 || st.OutageTime <= 0 {
		t.Errorf("outages %d connects %d outage time %v, want one outage and a reconnect", st.Outages, st.Connects, st.OutageTime)
	}
	if slowest > maxWriteLatency {
		t.Errorf("WritePacket blocked for %v during the outage", slowest)
	}
	keyReqs.Wait() // RequestKeyframe was called after reconnecting
	if !strings.Contains(lb.String(), "reconnected") {
		t.Error("no reconnection logged")
	}
	recs := srv.Recordings(key)
	if len(recs) != 2 {
		t.Fatalf("want two recordings (before and after the restart), got %v", recs)
	}
	// The second publish starts with a keyframe, has headers (else it
	// would not decode) and runs to the end of the clip.
	s := checkRecording(t, recs[1], rtmptest.Want{Width: 640, Height: 360, FPS: 30, MaxGOP: 2 * time.Second})
	// 12 s played, killed at 3 s, back after 1.5 s, redial after up to
	// 2 s of backoff and 2 s until the next keyframe: at least 3 s left.
	if s.Duration < 3*time.Second {
		t.Errorf("second publish only %v long", s.Duration)
	}
	if s.FirstTS > 100*time.Millisecond {
		t.Errorf("second publish starts at %v, want timestamps from 0", s.FirstTS)
	}
}

func TestHalfOpenConnection(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	// nginx notices a silent publisher after 6 s; until then it still
	// holds the key, which is what a reconnecting client runs into.
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{DropIdlePublisher: 6 * time.Second})
	proxy := rtmptest.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", srv.Port))
	key := "halfopen-" + fmt.Sprint(time.Now().UnixNano())
	p, lb := newPublisher(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", proxy.Port, key), key, m)
	p.WriteTimeout = 2 * time.Second
	p.SendBuffer = 32 << 10
	p.Backoff = rtmp.Backoff{Initial: 500 * time.Millisecond, Max: time.Second, GiveUpAfter: 30 * time.Second}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	go func() {
		time.Sleep(2 * time.Second)
		proxy.Freeze()
	}()
	_, slowest := play(t, p, upTo(m, 18*time.Second))
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := p.Stats()
	t.Logf("stats %+v, slowest WritePacket %v", st, slowest)
	if st.Outages != 1 || st.Connects != 2 {
		t.Fatalf("the stall was not detected or not recovered: %+v", st)
	}
	logs := lb.String()
	if !strings.Contains(logs, "stalled") {
		t.Errorf("outage cause is not a stalled write:\n%s", logs)
	}
	if !strings.Contains(logs, "still holds the previous publish") {
		t.Errorf("no reconnect attempt met the old, half-open publish:\n%s", logs)
	}
	if slowest > maxWriteLatency {
		t.Errorf("WritePacket blocked for %v", slowest)
	}
	recs := srv.Recordings(key)
	if len(recs) < 2 {
		t.Fatalf("recordings %v", recs)
	}
	s := checkRecording(t, recs[len(recs)-1], rtmptest.Want{Width: 640, Height: 360, FPS: 30, MaxGOP: 2 * time.Second})
	if s.Duration < 2*time.Second {
		t.Errorf("only %v recorded after the recovery", s.Duration)
	}
}

func TestFanoutOneDestinationDown(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	a := rtmptest.StartNginx(t, rtmptest.NginxOptions{})
	b := rtmptest.StartNginx(t, rtmptest.NginxOptions{})
	key := "fan-" + fmt.Sprint(time.Now().UnixNano())
	log, _ := newLogger(t, key)
	pa := &rtmp.Publisher{URL: a.URL(key), Info: m.Info, Logger: log}
	pb := &rtmp.Publisher{URL: b.URL(key), Info: m.Info, Logger: log,
		Backoff: rtmp.Backoff{Initial: 200 * time.Millisecond, Max: 500 * time.Millisecond}}
	closedURL := fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", testnet.Port(t), key)
	pc := &rtmp.Publisher{URL: closedURL, Info: m.Info, Logger: log}
	f := rtmp.NewFanout(pa, pb, pc)
	defer f.Close()
	n, err := f.Start(context.Background())
	if n != 2 || !errors.Is(err, rtmp.ErrUnreachable) {
		t.Fatalf("Start = %d, %v; want 2 started and the closed port reported", n, err)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error shows the key: %v", err)
	}
	go func() {
		time.Sleep(time.Second)
		b.Kill() // and it stays down
	}()
	played, slowest := play(t, f, upTo(m, 6*time.Second))
	if err := f.Close(); err != nil && !errors.Is(err, rtmp.ErrUnreachable) {
		t.Logf("Close: %v", err)
	}
	for _, st := range f.Stats() {
		t.Logf("%s: %+v", st.Destination, st)
	}
	if slowest > maxWriteLatency {
		t.Errorf("WritePacket blocked for %v", slowest)
	}
	if st := pa.Stats(); st.Outages != 0 || st.DroppedVideo+st.DroppedAudio != 0 {
		t.Errorf("the healthy destination was disturbed: %+v", st)
	}
	if st := pb.Stats(); st.Outages != 1 || st.State == rtmp.StatePublishing {
		t.Errorf("the failed destination: %+v", st)
	}
	recs := a.Recordings(key)
	if len(recs) != 1 {
		t.Fatalf("recordings %v", recs)
	}
	checkRecording(t, recs[0], wantFor(m, played))
}

func TestPeerTubeStyleNMS2(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	key := "3c5a2c1e-9d0b-4c6e-8a8e-2b1f0d6e7a91" // PeerTube stream keys are UUIDs
	srv := rtmptest.StartNMS2(t, filepath.Join("testdata", "nms2-peertube.js"), key)

	t.Run("accepted", func(t *testing.T) {
		p, _ := newPublisher(t, srv.URL(key), key, m)
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v\n%s", err, srv.Output())
		}
		played, _ := play(t, p, upTo(m, 6*time.Second))
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		st := p.Stats()
		t.Logf("stats %+v", st)
		if st.ServerChunkSize != 60000 {
			t.Errorf("server chunk size %d, want PeerTube's 60000", st.ServerChunkSize)
		}
		srv.WaitPulls(t, 1, 10*time.Second)
		pulled := srv.Pulled()
		if len(pulled) != 1 {
			t.Fatalf("pulled %v\n%s", pulled, srv.Output())
		}
		// The pull joins a moment after publish; node-media-server's GOP
		// cache hands it the stream from the first keyframe.
		checkRecording(t, pulled[0], wantFor(m, played))
	})

	t.Run("unknown key", func(t *testing.T) {
		bad := "00000000-0000-4000-8000-000000000000"
		p, _ := newPublisher(t, srv.URL(bad), bad, m)
		go rtmptest.Play(t.Context(), upTo(m, 5*time.Second), 1, p.WritePacket)
		t0 := time.Now()
		err := p.Start(context.Background())
		t.Logf("after %v: %v", time.Since(t0), err)
		if !errors.Is(err, rtmp.ErrRejected) || time.Since(t0) > 5*time.Second {
			t.Fatalf("Start = %v after %v, want ErrRejected within 5 s", err, time.Since(t0))
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		first, _ := newPublisher(t, srv.URL(key), key, m)
		if err := first.Start(context.Background()); err != nil {
			t.Fatalf("first: %v", err)
		}
		go rtmptest.Play(t.Context(), upTo(m, 8*time.Second), 1, first.WritePacket)
		second, _ := newPublisher(t, srv.URL(key), key, m)
		t0 := time.Now()
		err := second.Start(context.Background())
		t.Logf("after %v: %v", time.Since(t0), err)
		if !errors.Is(err, rtmp.ErrRejected) || time.Since(t0) > 5*time.Second {
			t.Fatalf("Start = %v after %v, want a rejection within 5 s", err, time.Since(t0))
		}
		if st := first.Stats(); st.State != rtmp.StatePublishing {
			t.Errorf("first publisher disturbed: %+v", st)
		}
	})
}

func TestRTMPSNMS4(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	srv := rtmptest.StartNMS4(t)

	t.Run("self-signed without opt-out", func(t *testing.T) {
		p, _ := newPublisher(t, srv.URL("tlsfail", true), "tlsfail", m)
		t0 := time.Now()
		err := p.Start(context.Background())
		t.Logf("after %v: %v", time.Since(t0), err)
		if !errors.Is(err, rtmp.ErrTLS) || !strings.Contains(err.Error(), "unknown authority") {
			t.Fatalf("Start = %v, want ErrTLS naming the unknown authority", err)
		}
	})

	t.Run("insecure opt-out", func(t *testing.T) {
		p, _ := newPublisher(t, srv.URL("insecure", true), "insecure", m)
		p.InsecureSkipVerify = true
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v\n%s", err, srv.Output())
		}
	})

	t.Run("verified with the CA", func(t *testing.T) {
		key := "tls-" + fmt.Sprint(time.Now().UnixNano())
		p, _ := newPublisher(t, srv.URL(key, true), key, m)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(srv.CertPEM)
		p.TLSConfig = &tls.Config{RootCAs: pool}
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("Start: %v\n%s", err, srv.Output())
		}
		played, _ := play(t, p, upTo(m, 6*time.Second))
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		t.Logf("stats %+v", p.Stats())
		var recs []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if recs = srv.Recordings(key); len(recs) == 1 {
				break
			}
		}
		if len(recs) != 1 {
			t.Fatalf("recordings %v\n%s", recs, srv.Output())
		}
		time.Sleep(500 * time.Millisecond) // let node finish writing
		checkRecording(t, recs[0], wantFor(m, played))
	})
}

func TestCheckIngest(t *testing.T) {
	t.Parallel()
	m := testClip(t)
	srv := rtmptest.StartNginx(t, rtmptest.NginxOptions{ChunkSize: 8192})
	key := "check-" + fmt.Sprint(time.Now().UnixNano())
	log, _ := newLogger(t, key)
	p := &rtmp.Publisher{URL: srv.URL(key), Info: m.Info, Logger: log}
	rep, err := rtmp.CheckIngest(context.Background(), p, &rtmptest.Source{Pkts: m.Packets}, 4*time.Second)
	t.Logf("report %+v", rep)
	if err != nil || !rep.Accepted {
		t.Fatalf("CheckIngest: %v", err)
	}
	if rep.ServerChunkSize != 8192 || rep.ClientChunkSize != 4096 {
		t.Errorf("chunk sizes server %d client %d", rep.ServerChunkSize, rep.ClientChunkSize)
	}
	// The clip is 1 Mb/s video + 128 kb/s audio.
	if rep.Bitrate < 0.7e6 || rep.Bitrate > 1.6e6 {
		t.Errorf("achieved bitrate %.0f b/s", rep.Bitrate)
	}
	if rep.Sent < 3900*time.Millisecond || rep.Elapsed < rep.Sent {
		t.Errorf("sent %v in %v", rep.Sent, rep.Elapsed)
	}
	if strings.Contains(rep.Destination, key) {
		t.Error("report shows the key")
	}

	bad := testnet.Port(t)
	p2 := &rtmp.Publisher{URL: fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", bad, key), Info: m.Info, Logger: log}
	rep, err = rtmp.CheckIngest(context.Background(), p2, &rtmptest.Source{Pkts: m.Packets}, 4*time.Second)
	if rep.Accepted || !errors.Is(err, rtmp.ErrUnreachable) {
		t.Errorf("unreachable ingest: %+v, %v", rep, err)
	}
}
