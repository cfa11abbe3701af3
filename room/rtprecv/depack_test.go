package rtprecv

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Parameter sets written by x264 (ffmpeg -c:v libx264).
var (
	sps320x240Baseline = unhex("6742c00dda0507ec04400000030040000 00f03c50aa8")
	pps320x240Baseline = unhex("68ce0fc8")
	idrSlice           = unhex("6588840021ffff0123456789abcdef00112233445566778899aabbccddeeff")
	pSlice             = unhex("419a2238ffee0102030405060708")
	sei                = unhex("0605ffff00112233")
	// LiveKit's placeholder keyframes (livekit-server pkg/sfu/downtrack.go).
	lkBlankSPS = unhex("6742c01f0fd91f888884000003000400000300c83c60c920")
	lkBlankPPS = unhex("6887cb83cb20")
	lkBlankIDR = unhex("65888 40af2628000a7be")
	lkBlankVP8 = unhex("1002009d012a08000800004708858588858488020200 0c0d6000feffab5080")
)

var sc = []byte{0, 0, 0, 1}

func stapA(nals ...[]byte) []byte {
	out := []byte{nals[0][0]&0x60 | h264STAPA}
	for _, n := range nals {
		out = append(out, byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out
}

// fuA splits nal into n FU-A fragments (RFC 6184 5.8).
func fuA(nal []byte, n int) [][]byte {
	ind := nal[0]&0xe0 | h264FUA
	body := nal[1:]
	var out [][]byte
	step := (len(body) + n - 1) / n
	for i := 0; i < len(body); i += step {
		end := min(i+step, len(body))
		hdr := nal[0] & 0x1f
		if i == 0 {
			hdr |= 0x80
		}
		if end == len(body) {
			hdr |= 0x40
		}
		out = append(out, cat([]byte{ind, hdr}, body[i:end]))
	}
	return out
}

// vp8Desc builds an RFC 7741 descriptor with a 15-bit picture ID.
func vp8Desc(start bool, pid byte, picID uint16) []byte {
	b0 := byte(0x80) | pid
	if start {
		b0 |= 0x10
	}
	return []byte{b0, 0x80, 0x80 | byte(picID>>8), byte(picID)}
}

var vp8Key320 = unhex("1013009d012a4001f000004708858588858488") // frame tag, start code, 320x240
var vp8Inter = unhex("3101000102030405060708")

// vp9 payload descriptor: I (15-bit picture id), P, L (+TL0PICIDX, non-flexible), B, E, V.
func mkVP9Desc(inter, begin, end bool, sid byte, ss []byte) []byte {
	b0 := byte(0x80 | 0x20)
	if inter {
		b0 |= 0x40
	}
	if begin {
		b0 |= 0x08
	}
	if end {
		b0 |= 0x04
	}
	if ss != nil {
		b0 |= 0x02
	}
	out := []byte{b0, 0x80, 0x01, sid << 1, 0x00}
	return append(out, ss...)
}

var vp9Key320 = unhex("824983420013f00ef60038241c184a00008061f630681d7b4000123d")
var vp9Inter = unhex("86000102030405060708")

// depackCase is one frame's payloads and what must come out. The same
// table seeds the fuzz targets.
type depackCase struct {
	name     string
	codec    string
	payloads [][]byte
	want     []byte // nil: an error is expected
	key      bool
	w, h     int
}

var depackCases = []depackCase{
	{
		name: "h264 single NAL units", codec: "h264",
		payloads: [][]byte{sps320x240Baseline, pps320x240Baseline, idrSlice},
		want:     cat(sc, sps320x240Baseline, sc, pps320x240Baseline, sc, idrSlice), key: true, w: 320, h: 240,
	},
	{
		name: "h264 STAP-A and FU-A", codec: "h264",
		payloads: append([][]byte{stapA(sps320x240Baseline, pps320x240Baseline)}, fuA(idrSlice, 3)...),
		want:     cat(sc, sps320x240Baseline, sc, pps320x240Baseline, sc, idrSlice), key: true, w: 320, h: 240,
	},
	{
		name: "h264 STAP-A with SEI and slice", codec: "h264",
		payloads: [][]byte{stapA(sei, pSlice)},
		want:     cat(sc, sei, sc, pSlice),
	},
	{
		name: "h264 LiveKit blank keyframe", codec: "h264",
		payloads: [][]byte{stapA(lkBlankSPS, lkBlankPPS, lkBlankIDR)},
		want:     cat(sc, lkBlankSPS, sc, lkBlankPPS, sc, lkBlankIDR), key: true, w: 2, h: 2,
	},
	{name: "h264 FU-A without start", codec: "h264", payloads: fuA(idrSlice, 3)[1:]},
	{name: "h264 FU-A without end", codec: "h264", payloads: fuA(idrSlice, 3)[:2]},
	{name: "h264 FU-A start and end bits together", codec: "h264", payloads: [][]byte{{0x7c, 0xc5, 1, 2}}},
	{name: "h264 STAP-A truncated", codec: "h264", payloads: [][]byte{{0x78, 0x00, 0x09, 0x67}}},
	{name: "h264 STAP-A empty unit", codec: "h264", payloads: [][]byte{{0x78, 0x00, 0x00}}},
	{name: "h264 STAP-B (interleaved mode)", codec: "h264", payloads: [][]byte{{0x79, 0, 0, 0, 2, 0x41, 0x9a}}},
	{name: "h264 FU-B (interleaved mode)", codec: "h264", payloads: [][]byte{{0x7d, 0x85, 0, 0, 1}}},
	{name: "h264 NAL type 0", codec: "h264", payloads: [][]byte{{0x00, 0x01}}},
	{name: "h264 one-byte NAL", codec: "h264", payloads: [][]byte{{0x41}}},

	{
		name: "vp8 keyframe in two packets", codec: "vp8",
		payloads: [][]byte{cat(vp8Desc(true, 0, 300), vp8Key320[:8]), cat(vp8Desc(false, 0, 300), vp8Key320[8:])},
		want:     vp8Key320, key: true, w: 320, h: 240,
	},
	{
		name: "vp8 inter frame, short descriptor", codec: "vp8",
		payloads: [][]byte{cat([]byte{0x10}, vp8Inter)},
		want:     vp8Inter,
	},
	{
		name: "vp8 LiveKit blank keyframe", codec: "vp8",
		payloads: [][]byte{cat([]byte{0x10}, lkBlankVP8)},
		want:     lkBlankVP8, key: true, w: 8, h: 8,
	},
	{name: "vp8 first packet not a partition start", codec: "vp8", payloads: [][]byte{cat(vp8Desc(false, 0, 1), vp8Inter)}},
	{name: "vp8 first packet partition 1", codec: "vp8", payloads: [][]byte{cat(vp8Desc(true, 1, 1), vp8Inter)}},
	{name: "vp8 truncated descriptor", codec: "vp8", payloads: [][]byte{{0x90, 0x80}}},
	{name: "vp8 keyframe without start code", codec: "vp8", payloads: [][]byte{{0x10, 0x10, 0x13, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}}},

	{
		name: "vp9 keyframe with scalability structure", codec: "vp9",
		payloads: [][]byte{
			cat(mkVP9Desc(false, true, false, 0, []byte{0x10, 0x01, 0x40, 0x00, 0xf0}), vp9Key320[:10]),
			cat(mkVP9Desc(false, false, true, 0, nil), vp9Key320[10:]),
		},
		want: vp9Key320, key: true, w: 320, h: 240,
	},
	{
		name: "vp9 keyframe size from the bitstream", codec: "vp9",
		payloads: [][]byte{cat(mkVP9Desc(false, true, true, 0, nil), vp9Key320)},
		want:     vp9Key320, key: true, w: 320, h: 240,
	},
	{
		name: "vp9 two spatial layers make a superframe", codec: "vp9",
		payloads: [][]byte{
			cat(mkVP9Desc(true, true, true, 0, nil), vp9Inter),
			cat(mkVP9Desc(true, true, false, 1, nil), vp9Inter[:4]),
			cat(mkVP9Desc(true, false, true, 1, nil), vp9Inter[4:]),
		},
		want: cat(vp9Inter, vp9Inter, []byte{0xc1, byte(len(vp9Inter)), byte(len(vp9Inter)), 0xc1}),
	},
	{
		name: "vp9 keyframe picture of two spatial layers shows the top one", codec: "vp9",
		payloads: [][]byte{
			cat(mkVP9Desc(false, true, true, 0, []byte{0x30, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68}), vp9Key320),
			cat(mkVP9Desc(false, true, true, 1, nil), vp9Inter),
		},
		want: cat(vp9Key320, vp9Inter, []byte{0xc1, byte(len(vp9Key320)), byte(len(vp9Inter)), 0xc1}),
		key:  true, w: 640, h: 360,
	},
	{
		name: "vp9 upper layer forwarded alone (k-SVC)", codec: "vp9",
		payloads: [][]byte{cat(mkVP9Desc(true, true, true, 2, nil), vp9Inter)},
		want:     vp9Inter,
	},
	{name: "vp9 first packet without B", codec: "vp9", payloads: [][]byte{cat(mkVP9Desc(true, false, true, 0, nil), vp9Inter)}},
	{name: "vp9 truncated scalability structure", codec: "vp9", payloads: [][]byte{mkVP9Desc(false, true, true, 0, []byte{0x10, 0x01})}},
	{name: "vp9 empty layer frame", codec: "vp9", payloads: [][]byte{mkVP9Desc(true, true, true, 0, nil)}},

	{
		name: "av1 one OBU without length", codec: "av1",
		payloads: [][]byte{{0x18, 0x30, 0x0b, 0x00, 0x00, 0x00}},
		want:     []byte{0x32, 0x04, 0x0b, 0x00, 0x00, 0x00}, key: true,
	},
	{
		// A reduced still-picture sequence header saying 640x360.
		name: "av1 sequence header gives the size", codec: "av1",
		payloads: [][]byte{cat([]byte{0x18, 0x08}, unhex("182627fb38"))},
		want:     cat([]byte{0x0a, 0x05}, unhex("182627fb38")), key: true, w: 640, h: 360,
	},
	{
		name: "av1 OBU fragmented over two packets", codec: "av1",
		payloads: [][]byte{{0x50, 0x30, 0x01, 0x02}, {0x90, 0x03, 0x04}},
		want:     []byte{0x32, 0x04, 0x01, 0x02, 0x03, 0x04},
	},
	{
		name: "av1 length-prefixed OBUs, temporal delimiter dropped", codec: "av1",
		payloads: [][]byte{{0x00, 0x01, 0x10, 0x03, 0x30, 0xaa, 0xbb}},
		want:     []byte{0x32, 0x02, 0xaa, 0xbb},
	},
	{name: "av1 first packet continues an OBU", codec: "av1", payloads: [][]byte{{0x90, 0x32, 0x01}}},
	{name: "av1 last fragment missing", codec: "av1", payloads: [][]byte{{0x50, 0x32, 0x01}}},
	{name: "av1 OBU length past the end", codec: "av1", payloads: [][]byte{{0x00, 0x09, 0x32}}},
	{name: "av1 forbidden bit", codec: "av1", payloads: [][]byte{{0x10, 0xb0, 0x01}}},
	{
		name: "av1 OBU that has its own size field", codec: "av1",
		payloads: [][]byte{{0x10, 0x32, 0x02, 0xaa, 0xbb}},
		want:     []byte{0x32, 0x02, 0xaa, 0xbb},
	},

	{name: "opus packet", codec: "opus", payloads: [][]byte{{0xf8, 0xff, 0xfe}}, want: []byte{0xf8, 0xff, 0xfe}, key: true},
	{name: "opus two payloads", codec: "opus", payloads: [][]byte{{0xf8}, {0xf8}}},
}

func newDepacketizerFor(codec string) depacketizer {
	mime := map[string]string{"h264": "video/H264", "vp8": "video/VP8", "vp9": "video/VP9", "av1": "video/AV1", "opus": "audio/opus"}[codec]
	_, d := newDepacketizer(mime)
	return d
}

func TestDepacketizers(t *testing.T) {
	for _, c := range depackCases {
		t.Run(c.name, func(t *testing.T) {
			d := newDepacketizerFor(c.codec)
			got, info, err := d.assemble(nil, c.payloads)
			if c.want == nil {
				if err == nil {
					t.Fatalf("want an error, got % x", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Fatalf("got  % x\nwant % x", got, c.want)
			}
			if info.keyframe != c.key || info.width != c.w || info.height != c.h {
				t.Fatalf("info %+v, want key=%v %dx%d", info, c.key, c.w, c.h)
			}
			if !d.frameStart(c.payloads[0]) {
				t.Errorf("first payload not seen as a frame start")
			}
		})
	}
}

func TestH264ParameterSetsPrependedToIDR(t *testing.T) {
	d := &h264Depacketizer{}
	if _, _, err := d.assemble(nil, [][]byte{stapA(sps320x240Baseline, pps320x240Baseline), idrSlice}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.assemble(nil, [][]byte{pSlice}); err != nil {
		t.Fatal(err)
	}
	got, info, err := d.assemble(nil, [][]byte{idrSlice})
	if err != nil {
		t.Fatal(err)
	}
	want := cat(sc, sps320x240Baseline, sc, pps320x240Baseline, sc, idrSlice)
	if !bytes.Equal(got, want) || !info.keyframe || info.width != 320 {
		t.Fatalf("got % x (%+v), want % x", got, info, want)
	}
}

// The SPS size parser and its cases are bitstream.H264SPSSize's
// (bitstream/h264sps_test.go); the depacketiser cases above check that the
// size reaches frameInfo.

func TestFrameStart(t *testing.T) {
	h := &h264Depacketizer{}
	for _, c := range []struct {
		d    depacketizer
		p    []byte
		want bool
	}{
		{h, idrSlice, true},
		{h, unhex("4100aa"), false}, // first_mb_in_slice != 0
		{h, fuA(idrSlice, 2)[0], true},
		{h, fuA(idrSlice, 2)[1], false},
		{h, stapA(sps320x240Baseline, pps320x240Baseline), true},
		{vp8Depacketizer{}, cat(vp8Desc(true, 0, 1), vp8Inter), true},
		{vp8Depacketizer{}, cat(vp8Desc(false, 0, 1), vp8Inter), false},
		{vp9Depacketizer{}, cat(mkVP9Desc(true, true, true, 0, nil), vp9Inter), true},
		{vp9Depacketizer{}, cat(mkVP9Desc(true, true, true, 1, nil), vp9Inter), true}, // k-SVC: upper layer alone
		{vp9Depacketizer{}, cat(mkVP9Desc(true, false, true, 0, nil), vp9Inter), false},
	} {
		if got := c.d.frameStart(c.p); got != c.want {
			t.Errorf("%T % x: frameStart %v, want %v", c.d, c.p[:min(6, len(c.p))], got, c.want)
		}
	}
}
