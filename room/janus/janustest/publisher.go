package janustest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/roomcast/roomcast/room/janus/janusapi"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// PublisherOptions configure a Go publisher. Zero values take defaults.
type PublisherOptions struct {
	// Display is the publisher's display name (default "pub-<hex>").
	Display string
	// Video is "vp8", "h264" or "" for no video.
	Video string
	// ScreenShare describes the video stream as "screen" (roomcast shows
	// it as a screen share); otherwise it is described as "camera".
	ScreenShare bool
	// Color of the video (ffmpeg colour), default "red"; Width, Height and
	// FPS default to 320x240 at 30.
	Color              string
	Width, Height, FPS int
	// Audio publishes an Opus tone of ToneHz (default 440).
	Audio  bool
	ToneHz int
	// Speaking sets the initial audio level extension: loud (10) when true,
	// silent (127) when false.
	Speaking bool
	// VideoSamples and AudioSamples, when set, are sent (looped) instead of
	// the generated colour and tone: access units (H.264 Annex B or VP8
	// frames, a keyframe every FPS pictures) or 20 ms Opus packets.
	VideoSamples, AudioSamples [][]byte
	// Epoch is the capture time of sample 0 of every track: sample k is
	// sent at Epoch + k × its duration. Publishers given the same Epoch
	// capture their k-th samples at the same instant. Default: when the
	// publisher starts sending.
	Epoch time.Time
	// KeepCaptureClock leaves keyframe requests unanswered (the samples'
	// own keyframes, one a second, serve them), so pictures keep their
	// capture times against the sound: for sync tests.
	KeepCaptureClock bool
	// Attributes are published as "key=value" fields of every stream's
	// description ("camera; roomcast.consent=no"), roomcast's convention
	// for participant attributes in Janus (see room/janus). SetAttributes
	// changes them mid-session.
	Attributes map[string]string
	// PIN is the room's PIN.
	PIN string
	// URL is the Janus server to use, default the server's WebSocket URL.
	URL string
}

// Publisher is a pion peer publishing generated media into a VideoRoom.
type Publisher struct {
	// ID is the publisher's Janus ID (the subscriber's "feed").
	ID      uint64
	Display string

	t      testing.TB
	opts   PublisherOptions
	client *janusapi.Client
	handle uint64
	pc     *webrtc.PeerConnection
	video  *pubTrack
	audio  *pubTrack

	mids     []string // published streams' mids (video first)
	speaking atomic.Bool
	frozen   atomic.Int64 // UnixNano until which packets are lost
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
	once     sync.Once
}

type pubTrack struct {
	kind      string
	track     *webrtc.TrackLocalStaticRTP
	sender    *webrtc.RTPSender
	samples   [][]byte
	dur       time.Duration
	rate      uint32
	payloader rtp.Payloader
	seq       rtp.Sequencer
	levelID   uint8
	sent      atomic.Int64
	keyWanted atomic.Bool
}

// NewAPI returns a pion API offering Opus and the video codec ("vp8",
// "h264" or "" for none), whose ICE agent gathers host candidates on
// 127.0.0.1 only (no STUN, so nothing is looked up outside), with the
// audio-level header extension Janus's talking events read and pion's
// default interceptors (NACK, RTCP reports).
func NewAPI(video string) (*webrtc.API, error) {
	// Only the codec the publisher sends: Janus picks the first of the
	// room's codecs the offer has, and the first H.264 variant.
	me := &webrtc.MediaEngine{}
	for _, c := range []struct {
		typ webrtc.RTPCodecType
		p   webrtc.RTPCodecParameters
	}{
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{PayloadType: 125, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}},
	} {
		if c.typ == webrtc.RTPCodecTypeVideo && c.p.MimeType != map[string]string{"vp8": webrtc.MimeTypeVP8, "h264": webrtc.MimeTypeH264}[video] {
			continue
		}
		if err := me.RegisterCodec(c.p, c.typ); err != nil {
			return nil, err
		}
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.String() == ICEAddress })
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

var videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}

// StartPublisher joins room as a publisher and starts sending. It leaves on
// test cleanup.
func StartPublisher(t testing.TB, s *Server, room uint64, o PublisherOptions) *Publisher {
	t.Helper()
	if o.Display == "" {
		o.Display = "pub-" + randHex(3)
	}
	if o.FPS == 0 {
		o.FPS = 30
	}
	if o.Width == 0 {
		o.Width, o.Height = 320, 240
	}
	if o.URL == "" {
		o.URL = s.WSURL()
	}
	p := &Publisher{t: t, opts: o, Display: o.Display, stop: make(chan struct{})}
	p.speaking.Store(o.Speaking)
	dir := t.TempDir()
	t.Cleanup(p.Close)

	api, err := NewAPI(o.Video)
	if err != nil {
		t.Fatal(err)
	}
	if p.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if o.Video != "" {
		mime := map[string]string{"h264": webrtc.MimeTypeH264, "vp8": webrtc.MimeTypeVP8}[o.Video]
		if mime == "" {
			t.Fatalf("janustest: unknown video codec %q", o.Video)
		}
		capab := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}
		if o.Video == "h264" {
			capab.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(capab, "video", "roomcast-test")
		if err != nil {
			t.Fatal(err)
		}
		p.video = &pubTrack{
			kind: "video", track: tr, rate: 90000, dur: time.Second / time.Duration(o.FPS),
			samples: o.VideoSamples,
			seq:     rtp.NewRandomSequencer(),
		}
		if p.video.samples == nil {
			p.video.samples = lktest.GenerateVideo(t, dir, lktest.VideoSpec{Codec: o.Video, Color: o.Color, Width: o.Width, Height: o.Height, FPS: o.FPS})
		}
		if o.Video == "h264" {
			p.video.payloader = &codecs.H264Payloader{}
		} else {
			p.video.payloader = &codecs.VP8Payloader{EnablePictureID: true}
		}
	}
	if o.Audio {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "roomcast-test")
		if err != nil {
			t.Fatal(err)
		}
		p.audio = &pubTrack{
			kind: "audio", track: tr, rate: 48000, dur: 20 * time.Millisecond, samples: o.AudioSamples,
			payloader: &codecs.OpusPayloader{}, seq: rtp.NewRandomSequencer(),
		}
		if p.audio.samples == nil {
			p.audio.samples = lktest.GenerateAudio(t, dir, lktest.AudioSpec{ToneHz: o.ToneHz})
		}
	}
	for _, pt := range []*pubTrack{p.audio, p.video} {
		if pt == nil {
			continue
		}
		tx, err := p.pc.AddTransceiverFromTrack(pt.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		pt.sender = tx.Sender()
		go p.readRTCP(pt)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts := s.Credentials()
	if p.client, err = janusapi.Dial(ctx, o.URL, opts); err != nil {
		t.Fatalf("janustest: publisher %s: %v", o.Display, err)
	}
	if p.handle, err = p.client.AttachOpaque(ctx, "janus.plugin.videoroom", "janustest-pion-"+o.Display); err != nil {
		t.Fatalf("janustest: publisher %s: %v", o.Display, err)
	}
	join := map[string]any{"request": "join", "ptype": "publisher", "room": room, "display": o.Display}
	if o.PIN != "" {
		join["pin"] = o.PIN
	}
	m, err := p.client.Request(ctx, p.handle, join, nil)
	if err != nil {
		t.Fatalf("janustest: publisher %s join: %v", o.Display, err)
	}
	var joined struct {
		ID uint64 `json:"id"`
	}
	_ = json.Unmarshal(m.PluginData.Data, &joined)
	p.ID = joined.ID

	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	// Mids are assigned by SetLocalDescription.
	for _, pt := range []*pubTrack{p.video, p.audio} {
		for _, tx := range p.pc.GetTransceivers() {
			if pt != nil && tx.Sender() == pt.sender {
				p.mids = append(p.mids, tx.Mid())
			}
		}
	}
	pub := map[string]any{"request": "publish", "display": o.Display}
	if d := p.descriptions(o.Attributes); len(d) > 0 {
		pub["descriptions"] = d
	}
	local := p.pc.LocalDescription()
	m, err = p.client.Request(ctx, p.handle, pub, &janusapi.JSEP{Type: "offer", SDP: local.SDP, Trickle: janusapi.NoTrickle()})
	if err != nil {
		t.Fatalf("janustest: publisher %s publish: %v", o.Display, err)
	}
	if m.JSEP == nil {
		t.Fatalf("janustest: publisher %s: no answer to the offer", o.Display)
	}
	if os.Getenv("ROOMCAST_TEST_LOG") != "" {
		t.Logf("janustest: publisher %s offer:\n%s\nanswer:\n%s", o.Display, local.SDP, m.JSEP.SDP)
	}
	if err := CheckLoopbackSDP(m.JSEP.SDP); err != nil {
		t.Errorf("janustest: publisher %s: janus's answer: %v", o.Display, err)
	}
	connected := make(chan struct{})
	var connOnce sync.Once
	p.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			connOnce.Do(func() { close(connected) })
		}
	})
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.JSEP.SDP}); err != nil {
		t.Fatalf("janustest: publisher %s: answer: %v", o.Display, err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatalf("janustest: publisher %s: no WebRTC connection within 15 s", o.Display)
	}
	if pair, err := selectedPair(p.pc); err != nil {
		t.Errorf("janustest: publisher %s: %v", o.Display, err)
	} else if pair.Local.Address != ICEAddress || pair.Remote.Address != ICEAddress {
		t.Errorf("janustest: publisher %s: selected ICE pair %s <-> %s, want both on %s", o.Display, pair.Local, pair.Remote, ICEAddress)
	}
	epoch := o.Epoch
	if epoch.IsZero() {
		epoch = time.Now()
	}
	for _, pt := range []*pubTrack{p.video, p.audio} {
		if pt == nil {
			continue
		}
		for _, ext := range pt.sender.GetParameters().HeaderExtensions {
			if ext.URI == sdp.AudioLevelURI {
				pt.levelID = uint8(ext.ID)
			}
		}
		p.wg.Add(1)
		go p.send(pt, epoch)
	}
	return p
}

// descriptions are the streams' descriptions for the publish and
// configure requests: "camera" or "screen" for video, "microphone" for
// audio, followed by the attributes as "; key=value" fields (sorted).
func (p *Publisher) descriptions(attrs map[string]string) []map[string]any {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []map[string]any
	for i, mid := range p.mids {
		desc := "microphone"
		if i == 0 && p.video != nil {
			desc = "camera"
			if p.opts.ScreenShare {
				desc = "screen"
			}
		}
		for _, k := range keys {
			desc += "; " + k + "=" + attrs[k]
		}
		out = append(out, map[string]any{"mid": mid, "description": desc})
	}
	return out
}

// SetAttributes replaces the publisher's attributes with an SDP-less
// "configure" carrying new stream descriptions: Janus then tells every
// participant the publisher's details again. It returns when Janus has
// answered.
func (p *Publisher) SetAttributes(attrs map[string]string) error {
	if err := p.request(map[string]any{"request": "configure", "descriptions": p.descriptions(attrs)}); err != nil {
		return fmt.Errorf("janustest: configure descriptions: %w", err)
	}
	return nil
}

// CheckLoopbackSDP reports an error unless every ICE candidate and every
// connection address of a Janus SDP is 127.0.0.1 (and there is at least
// one candidate).
func CheckLoopbackSDP(s string) error {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(s); err != nil {
		return err
	}
	n := 0
	check := func(c *sdp.ConnectionInformation) error {
		if c != nil && c.Address != nil && c.Address.Address != ICEAddress {
			return fmt.Errorf("connection address %s, want %s", c.Address.Address, ICEAddress)
		}
		return nil
	}
	if err := check(sd.ConnectionInformation); err != nil {
		return err
	}
	for _, m := range sd.MediaDescriptions {
		if err := check(m.ConnectionInformation); err != nil {
			return err
		}
		for _, a := range m.Attributes {
			if a.Key != "candidate" {
				continue
			}
			f := strings.Fields(a.Value)
			if len(f) < 8 || f[4] != ICEAddress {
				return fmt.Errorf("candidate %q is not on %s", a.Value, ICEAddress)
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no ICE candidate")
	}
	return nil
}

// selectedPair is a PeerConnection's selected ICE pair.
func selectedPair(pc *webrtc.PeerConnection) (*webrtc.ICECandidatePair, error) {
	for _, tx := range pc.GetTransceivers() {
		var tr *webrtc.DTLSTransport
		if tx.Sender() != nil {
			tr = tx.Sender().Transport()
		} else if tx.Receiver() != nil {
			tr = tx.Receiver().Transport()
		}
		if tr == nil {
			continue
		}
		if pair, err := tr.ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
			return pair, nil
		}
	}
	return nil, fmt.Errorf("no selected ICE candidate pair")
}

func (p *Publisher) readRTCP(pt *pubTrack) {
	for {
		pkts, _, err := pt.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				pt.keyWanted.Store(true)
			}
		}
	}
}

// send writes sample k (looping) at epoch + k*dur with RTP timestamp
// base + k*dur (a random base per track); a keyframe request jumps to the
// next loop start (the generated video's keyframe) unless KeepCaptureClock.
func (p *Publisher) send(pt *pubTrack, epoch time.Time) {
	defer p.wg.Done()
	base := rand.Uint32()
	perSample := uint32(int64(pt.dur) * int64(pt.rate) / int64(time.Second))
	// Start at the first sample not yet due (a keyframe for video), so a
	// publisher joining after its epoch does not burst.
	k0 := 0
	if d := time.Since(epoch); d > 0 {
		k0 = int(d / pt.dur)
		if pt.kind == "video" {
			k0 = (k0 + p.opts.FPS - 1) / p.opts.FPS * p.opts.FPS
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	shift := 0
	for k := k0; ; k++ {
		timer.Reset(time.Until(epoch.Add(time.Duration(k) * pt.dur)))
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		if pt.keyWanted.Swap(false) && pt.kind == "video" && !p.opts.KeepCaptureClock && (k+shift)%len(pt.samples)%p.opts.FPS != 0 {
			shift += len(pt.samples) - (k+shift)%len(pt.samples)
		}
		data := pt.samples[(k+shift)%len(pt.samples)]
		payloads := pt.payloader.Payload(1200, data)
		lost := time.Now().UnixNano() < p.frozen.Load()
		for i, pl := range payloads {
			pkt := &rtp.Packet{
				Header: rtp.Header{
					Version:        2,
					Marker:         i == len(payloads)-1,
					SequenceNumber: pt.seq.NextSequenceNumber(),
					Timestamp:      base + uint32(k)*perSample,
				},
				Payload: pl,
			}
			if pt.kind == "audio" && pt.levelID != 0 {
				level := byte(127)
				if p.speaking.Load() {
					level = 0x80 | 10 // voice activity, -10 dBov
				}
				_ = pkt.Header.SetExtension(pt.levelID, []byte{level})
			}
			if !lost {
				_ = pt.track.WriteRTP(pkt)
			}
		}
		pt.sent.Add(1)
	}
}

// Freeze loses every packet of every track for d from now, as a network
// that stops delivering: Janus is told nothing, sequence numbers run on.
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

func (p *Publisher) request(body map[string]any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.client.Request(ctx, p.handle, body, nil)
	return err
}

// Unpublish stops publishing (the publisher stays in the room).
func (p *Publisher) Unpublish() error {
	p.halt()
	if err := p.request(map[string]any{"request": "unpublish"}); err != nil {
		return fmt.Errorf("janustest: unpublish: %w", err)
	}
	return nil
}

// Leave leaves the room cleanly.
func (p *Publisher) Leave() error {
	p.halt()
	if err := p.request(map[string]any{"request": "leave"}); err != nil {
		return fmt.Errorf("janustest: leave: %w", err)
	}
	return nil
}

// Vanish stops all media without a word to Janus (no unpublish, no
// hang-up), as a publisher whose media path died: Janus keeps listing it
// as a publisher and subscribers simply stop receiving packets.
func (p *Publisher) Vanish() { p.halt() }

func (p *Publisher) halt() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// Close stops sending and leaves. Idempotent.
func (p *Publisher) Close() {
	p.once.Do(func() {
		p.halt()
		if p.client != nil {
			p.client.Close()
		}
		if p.pc != nil {
			_ = p.pc.Close()
		}
	})
}
