package lktest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// PublisherOptions configures a Go publisher. Zero values take defaults.
type PublisherOptions struct {
	Identity, Name string
	// Video is "h264", "vp8", "vp9" or "" for no video track.
	Video string
	// ScreenShare publishes the video as a screen share instead of a
	// camera.
	ScreenShare bool
	// Color of the video (ffmpeg colour name or 0xRRGGBB), default "red".
	Color string
	// Width, Height and FPS of the video, default 320x240 at 30.
	Width, Height, FPS int
	// Audio publishes an Opus microphone track.
	Audio bool
	// ToneHz is the audio tone, default 440.
	ToneHz int
	// SyntheticAudio replaces the Opus tone with numbered packets: byte 0 is
	// an Opus TOC (20 ms CELT), bytes 1..4 the big-endian capture index k
	// (captured at Epoch + k*20ms). Not decodable; for timing tests.
	SyntheticAudio bool
	// Speaking sets the initial audio level (the RTP audio-level extension
	// the server's active-speaker detection reads): loud when true,
	// silent when false. Default false.
	Speaking bool
	// Epoch is the capture time of the first sample of every track; default
	// the publisher's start. Publishers given the same Epoch capture their
	// k-th samples at the same instant.
	Epoch time.Time
	// CaptureDelay is how long after capture each sample is sent. Sender
	// reports still state the capture clock, as a real sender with encoder
	// latency does.
	CaptureDelay time.Duration
	// VideoDelay is how much later than the sound the pictures are sent on
	// top of CaptureDelay (a video encoder's and pacer's latency), so the
	// tracks' arrival times disagree with their capture times by different
	// amounts, as a browser's do.
	VideoDelay time.Duration
	// VideoRTPBase and AudioRTPBase are the RTP timestamps of sample 0;
	// default random.
	VideoRTPBase, AudioRTPBase uint32
	// Token overrides the join token (default: minted for Identity).
	Token string
	// DropVideo is the fraction of video packets dropped before sending
	// (their sequence numbers are used up, so receivers see loss that no
	// retransmission can repair).
	DropVideo float64
	// VideoSamples and AudioSamples, when set, are sent (looped) instead of
	// the generated colour and tone: access units (H.264 Annex B, VP8/VP9
	// frames, a keyframe every FPS pictures) or 20 ms Opus packets.
	VideoSamples, AudioSamples [][]byte
	// KeepCaptureClock leaves keyframe requests unanswered (the samples'
	// own keyframes, one a second, serve them), so each sample is sent at
	// its capture time: for sync tests, where jumping to a keyframe would
	// move the pictures against the sound.
	KeepCaptureClock bool
	// ScreenColor, when set, also publishes a screen share video track of
	// this colour (same codec and size as the camera) beside the camera.
	ScreenColor string
	// Garbage makes the video track send random RTP payloads (random sizes,
	// marker bits and occasional sequence and timestamp jumps) instead of
	// the generated video, for robustness tests.
	Garbage bool
}

// Publisher is a Go participant publishing generated media in real time.
type Publisher struct {
	Identity string
	Room     *lksdk.Room

	opts   PublisherOptions
	video  *pubTrack
	audio  *pubTrack
	screen *pubTrack

	speaking atomic.Bool
	frozen   atomic.Int64 // UnixNano until which packets are lost
	stop     chan struct{}
	wg       sync.WaitGroup
	once     sync.Once
}

type pubTrack struct {
	kind    string
	track   *lksdk.LocalTrack
	pub     *lksdk.LocalTrackPublication
	samples [][]byte
	dur     time.Duration
	rate    uint32
	base    uint32
	epoch   time.Time
	sent    atomic.Int64
	muted   atomic.Bool
	// lateMax is the longest a sample went out after its due time (ns):
	// on a starved machine the sender itself delivers late.
	lateMax atomic.Int64
	// lateMu guards late: sample index -> how late it was sent, for the
	// samples sent more than lateLogged after their due time.
	lateMu sync.Mutex
	late   map[int]time.Duration

	payloader rtp.Payloader
	seq       rtp.Sequencer
	// keyframeWanted is set by a PLI or FIR from the server; the sender
	// then jumps to the next loop start (a keyframe).
	keyframeWanted atomic.Bool
}

// rtpOf is the RTP time of sample k from sample 0, rounded from its
// capture time: k × a per-sample step rounded down (1/30 s is 2999.99997
// ticks of 90 kHz, truncated to 2999) would run 1/3000 slower than the
// sender reports' clock (rtpAt), 20 ms a minute.
func (p *pubTrack) rtpOf(k int) uint32 {
	return uint32((int64(k)*int64(p.dur)*int64(p.rate) + int64(time.Second)/2) / int64(time.Second))
}

// rtpAt is the RTP timestamp of a sample captured at now.
func (p *pubTrack) rtpAt(now time.Time) uint32 {
	return p.base + uint32(int64(now.Sub(p.epoch))*int64(p.rate)/int64(time.Second))
}

// StartPublisher joins room on s and starts sending. It is closed on test
// cleanup.
func StartPublisher(t testing.TB, s *Server, room string, o PublisherOptions) *Publisher {
	t.Helper()
	if o.Identity == "" {
		o.Identity = "pub-" + randHex(3)
	}
	if o.Name == "" {
		o.Name = o.Identity
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.Width == 0 {
		o.Width, o.Height = 320, 240
	}
	if o.Epoch.IsZero() {
		o.Epoch = time.Now()
	}
	p := &Publisher{Identity: o.Identity, opts: o, stop: make(chan struct{})}
	p.speaking.Store(o.Speaking)
	dir := t.TempDir()

	if o.Video != "" {
		p.video = newVideoTrack(t, dir, o, o.Color, o.VideoSamples)
	}
	if o.ScreenColor != "" {
		if o.Video == "" {
			t.Fatal("lktest: ScreenColor needs Video (the codec)")
		}
		p.screen = newVideoTrack(t, dir, o, o.ScreenColor, nil)
	}
	if o.Audio {
		tr, err := lksdk.NewLocalTrack(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2})
		if err != nil {
			t.Fatal(err)
		}
		samples := o.AudioSamples
		switch {
		case o.SyntheticAudio:
			samples = [][]byte{nil}
		case samples != nil:
		default:
			samples = GenerateAudio(t, dir, AudioSpec{ToneHz: o.ToneHz})
		}
		p.audio = &pubTrack{
			kind: "audio", track: tr, rate: 48000, epoch: o.Epoch, samples: samples,
			dur: 20 * time.Millisecond, base: nonZero(o.AudioRTPBase),
			payloader: &codecs.OpusPayloader{}, seq: rtp.NewRandomSequencer(),
		}
	}

	clock := func(ssrc uint32, now time.Time) (uint32, bool) {
		for _, pt := range []*pubTrack{p.video, p.audio, p.screen} {
			if pt != nil && uint32(pt.track.SSRC()) == ssrc {
				return pt.rtpAt(now), true
			}
		}
		return 0, false
	}
	ics, err := publisherInterceptors(clock)
	if err != nil {
		t.Fatal(err)
	}
	token := o.Token
	if token == "" {
		token = s.Token(room, o.Identity, o.Name)
	}
	r, err := lksdk.ConnectToRoomWithToken(s.URL, token, nil,
		lksdk.WithAutoSubscribe(false),
		lksdk.WithInterceptors(ics),
		lksdk.WithIncludeDefaultInterceptors(false),
	)
	if err != nil {
		t.Fatalf("lktest: publisher %s join: %v", o.Identity, err)
	}
	p.Room = r
	t.Cleanup(p.Close)

	if p.video != nil {
		name, source := "camera", livekit.TrackSource_CAMERA
		if o.ScreenShare {
			name, source = "screen", livekit.TrackSource_SCREEN_SHARE
		}
		pub, err := r.LocalParticipant.PublishTrack(p.video.track, &lksdk.TrackPublicationOptions{
			Name: name, Source: source, VideoWidth: o.Width, VideoHeight: o.Height,
		})
		if err != nil {
			t.Fatalf("lktest: publish video: %v", err)
		}
		p.video.pub = pub
	}
	if p.screen != nil {
		pub, err := r.LocalParticipant.PublishTrack(p.screen.track, &lksdk.TrackPublicationOptions{
			Name: "screen", Source: livekit.TrackSource_SCREEN_SHARE, VideoWidth: o.Width, VideoHeight: o.Height,
		})
		if err != nil {
			t.Fatalf("lktest: publish screen: %v", err)
		}
		p.screen.pub = pub
	}
	if p.audio != nil {
		pub, err := r.LocalParticipant.PublishTrack(p.audio.track, &lksdk.TrackPublicationOptions{
			Name: "microphone", Source: livekit.TrackSource_MICROPHONE,
		})
		if err != nil {
			t.Fatalf("lktest: publish audio: %v", err)
		}
		p.audio.pub = pub
	}
	for _, pt := range []*pubTrack{p.video, p.audio, p.screen} {
		if pt != nil {
			p.wg.Add(1)
			go p.send(pt)
		}
	}
	return p
}

// newVideoTrack prepares a generated (or given) video track.
func newVideoTrack(t testing.TB, dir string, o PublisherOptions, color string, samples [][]byte) *pubTrack {
	mime := map[string]string{"h264": webrtc.MimeTypeH264, "vp8": webrtc.MimeTypeVP8, "vp9": webrtc.MimeTypeVP9}[o.Video]
	if mime == "" {
		t.Fatalf("lktest: unknown video codec %q", o.Video)
	}
	capab := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}
	if o.Video == "h264" {
		capab.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	var vt *pubTrack
	tr, err := lksdk.NewLocalTrack(capab, lksdk.WithRTCPHandler(func(pkt rtcp.Packet) {
		switch pkt.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			vt.keyframeWanted.Store(true)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	vt = &pubTrack{
		kind: "video", track: tr, rate: 90000, epoch: o.Epoch,
		samples: samples,
		dur:     time.Second / time.Duration(o.FPS),
		base:    nonZero(o.VideoRTPBase),
		seq:     rtp.NewRandomSequencer(),
	}
	if vt.samples == nil {
		vt.samples = GenerateVideo(t, dir, VideoSpec{Codec: o.Video, Color: color, Width: o.Width, Height: o.Height, FPS: o.FPS})
	}
	switch o.Video {
	case "h264":
		vt.payloader = &codecs.H264Payloader{}
	case "vp8":
		vt.payloader = &codecs.VP8Payloader{EnablePictureID: true}
	case "vp9":
		vt.payloader = &codecs.VP9Payloader{}
	}
	return vt
}

func nonZero(v uint32) uint32 {
	for v == 0 {
		v = rand.Uint32()
	}
	return v
}

// send writes sample k (looping over the generated ones) at
// Epoch + k*dur + CaptureDelay (+ VideoDelay for video) with RTP
// timestamp base + k*dur*rate.
func (p *Publisher) send(pt *pubTrack) {
	defer p.wg.Done()
	// Start at the first sample not yet due, so late starters do not burst.
	k := 0
	delay := p.opts.CaptureDelay
	if pt.kind == "video" {
		delay += p.opts.VideoDelay
	}
	if d := time.Since(pt.epoch) - delay; d > 0 {
		k = int(d / pt.dur)
		if pt.kind == "video" {
			// Begin at a keyframe: the generated video has one every FPS
			// frames, at the start of each loop.
			gop := p.opts.FPS
			k = (k + gop - 1) / gop * gop
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	shift := 0 // sample index = k + shift: moved forward to serve keyframe requests
	for {
		due := pt.epoch.Add(time.Duration(k)*pt.dur + delay)
		timer.Reset(time.Until(due))
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		late := time.Since(due)
		if int64(late) > pt.lateMax.Load() {
			pt.lateMax.Store(int64(late))
		}
		if late > lateLogged {
			pt.lateMu.Lock()
			if pt.late == nil {
				pt.late = map[int]time.Duration{}
			}
			pt.late[(k+shift)%len(pt.samples)] = late
			pt.lateMu.Unlock()
		}
		if pt.muted.Load() {
			k++
			continue
		}
		if pt.keyframeWanted.Swap(false) && !p.opts.KeepCaptureClock && (k+shift)%p.opts.FPS != 0 {
			shift += len(pt.samples) - (k+shift)%len(pt.samples)
		}
		data := pt.samples[(k+shift)%len(pt.samples)]
		if pt.kind == "audio" && p.opts.SyntheticAudio {
			data = make([]byte, 40)
			data[0] = 0xf8
			binary.BigEndian.PutUint32(data[1:], uint32(k))
		}
		var opts *lksdk.SampleWriteOptions
		if pt.kind == "audio" {
			level := uint8(127)
			if p.speaking.Load() {
				level = 10
			}
			opts = &lksdk.SampleWriteOptions{AudioLevel: &level}
		}
		ts := pt.base + pt.rtpOf(k)
		if pt.kind == "video" && p.opts.Garbage {
			p.sendGarbage(pt, ts, opts)
			pt.sent.Add(1)
			k++
			continue
		}
		// Packetise here rather than with WriteSample: the SDK's packetizer
		// picks its own timestamps, and the sender reports must match them.
		payloads := pt.payloader.Payload(1200, data)
		ok := len(payloads) > 0
		lost := time.Now().UnixNano() < p.frozen.Load()
		for i, pl := range payloads {
			pkt := &rtp.Packet{
				Header: rtp.Header{
					Version:        2,
					Marker:         i == len(payloads)-1,
					SequenceNumber: pt.seq.NextSequenceNumber(),
					Timestamp:      ts,
				},
				Payload: pl,
			}
			if lost || pt.kind == "video" && p.opts.DropVideo > 0 && rand.Float64() < p.opts.DropVideo {
				continue
			}
			if err := pt.track.WriteRTP(pkt, opts); err != nil {
				ok = false
			}
		}
		if ok {
			pt.sent.Add(1)
		}
		k++
	}
}

func (p *Publisher) sendGarbage(pt *pubTrack, ts uint32, opts *lksdk.SampleWriteOptions) {
	n := 1 + rand.IntN(5)
	for i := 0; i < n; i++ {
		payload := make([]byte, 1+rand.IntN(1100))
		for j := range payload {
			payload[j] = byte(rand.Uint32())
		}
		seq := pt.seq.NextSequenceNumber()
		if rand.IntN(50) == 0 {
			seq += uint16(rand.IntN(3000))
		}
		pts := ts
		if rand.IntN(50) == 0 {
			pts = rand.Uint32()
		}
		_ = pt.track.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: rand.IntN(3) == 0, SequenceNumber: seq, Timestamp: pts},
			Payload: payload,
		}, opts)
	}
}

// Freeze loses every packet of every track for d from now, as a network
// that stops delivering: the server is told nothing, sequence numbers run
// on (the receiver sees a gap no retransmission repairs; the NACK
// responder has nothing to resend for packets never written).
func (p *Publisher) Freeze(d time.Duration) { p.frozen.Store(time.Now().Add(d).UnixNano()) }

// SetSpeaking switches the audio level between loud and silent.
func (p *Publisher) SetSpeaking(on bool) { p.speaking.Store(on) }

// Sent returns how many video frames and audio packets were written.
func (p *Publisher) Sent() (video, audio int64) {
	if p.video != nil {
		video = p.video.sent.Load()
	}
	if p.audio != nil {
		audio = p.audio.sent.Load()
	}
	return
}

// MaxVideoLateness is the longest a video sample was sent after its due
// time (a starved test process sends late; the receiver cannot tell that
// from a slow network).
func (p *Publisher) MaxVideoLateness() time.Duration {
	if p.video == nil {
		return 0
	}
	return time.Duration(p.video.lateMax.Load())
}

// lateLogged: samples sent later than this are listed by VideoSentLate.
const lateLogged = 20 * time.Millisecond

// VideoSentLate lists the video samples (by index in the samples) that
// were sent more than min after their due time, with how late.
func (p *Publisher) VideoSentLate(min time.Duration) map[int]time.Duration {
	out := map[int]time.Duration{}
	if p.video == nil {
		return out
	}
	p.video.lateMu.Lock()
	defer p.video.lateMu.Unlock()
	for k, d := range p.video.late {
		if d > min {
			out[k] = d
		}
	}
	return out
}

// TrackSID returns the server's SID of the "video", "audio" or "screen"
// track.
func (p *Publisher) TrackSID(kind string) string {
	pt := p.video
	switch kind {
	case "audio":
		pt = p.audio
	case "screen":
		pt = p.screen
	}
	if pt == nil || pt.pub == nil {
		return ""
	}
	return pt.pub.SID()
}

// Mute mutes or unmutes the "video" or "audio" track (the server is told;
// samples stop flowing while muted).
func (p *Publisher) Mute(kind string, muted bool) error {
	pt := p.video
	if kind == "audio" {
		pt = p.audio
	}
	if pt == nil || pt.pub == nil {
		return fmt.Errorf("lktest: no %s track", kind)
	}
	pt.muted.Store(muted)
	pt.pub.SetMuted(muted)
	return nil
}

// Unpublish removes the "video" or "audio" track.
func (p *Publisher) Unpublish(kind string) error {
	sid := p.TrackSID(kind)
	if sid == "" {
		return fmt.Errorf("lktest: no %s track", kind)
	}
	return p.Room.LocalParticipant.UnpublishTrack(sid)
}

// Close stops sending and leaves the room. Idempotent.
func (p *Publisher) Close() {
	p.once.Do(func() {
		close(p.stop)
		p.wg.Wait()
		if p.Room != nil {
			p.Room.Disconnect()
		}
	})
}
