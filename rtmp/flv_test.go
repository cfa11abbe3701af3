package rtmp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	amf0 "github.com/yutopp/go-amf0"

	"github.com/roomcast/roomcast/bitstream"
	"github.com/roomcast/roomcast/media"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Parameter sets written by x264 for 640x360 (High and Constrained
// Baseline), kept as Annex B.
var (
	spsHigh     = mustHex("6764001eacd940a02ff970110000030001000003003c0f162d96")
	ppsHigh     = mustHex("68ebe3cb22c0")
	spsBaseline = mustHex("6742c01ed900a02ff970110000030001000003003c0f162e48")
	ppsBaseline = mustHex("68cb83cb20")
)

func annexB(nals ...[]byte) []byte {
	var b []byte
	for i, n := range nals {
		if i%2 == 0 {
			b = append(b, 0, 0, 0, 1)
		} else {
			b = append(b, 0, 0, 1)
		}
		b = append(b, n...)
	}
	return b
}

// annexBCases feeds TestAppendAVCC and the fuzz seeds (bitstream's
// TestSplitAnnexB has the same cases).
var annexBCases = []struct {
	name string
	in   []byte
	nals [][]byte // expected bitstream.SplitAnnexB result
}{
	{"empty", nil, nil},
	{"no start code", []byte{0x65, 1, 2, 3}, nil},
	{"three-byte", []byte{0, 0, 1, 0x65, 0xaa}, [][]byte{{0x65, 0xaa}}},
	{"four-byte", []byte{0, 0, 0, 1, 0x65, 0xaa}, [][]byte{{0x65, 0xaa}}},
	{"leading garbage", []byte{9, 9, 0, 0, 1, 0x41, 7}, [][]byte{{0x41, 7}}},
	{"mixed", []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3},
		[][]byte{{0x09, 0xf0}, {0x67, 1}, {0x68, 2}, {0x65, 3}}},
	{"trailing zeros", []byte{0, 0, 1, 0x65, 5, 0, 0, 0, 0}, [][]byte{{0x65, 5}}},
	{"empty units", []byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0x41, 1}, [][]byte{{0x41, 1}}},
	{"emulation prevention kept", []byte{0, 0, 1, 0x41, 0, 0, 3, 1, 9}, [][]byte{{0x41, 0, 0, 3, 1, 9}}},
	{"x264 high", annexB(spsHigh, ppsHigh), [][]byte{spsHigh, ppsHigh}},
	{"start code at end", []byte{0, 0, 1, 0x41, 1, 0, 0, 1}, [][]byte{{0x41, 1}}},
}

// TestSplitAnnexB and FuzzSplitAnnexB live with the splitter in package
// bitstream (with this table's cases).

// parseAVCC is the inverse of appendAVCC, for tests.
func parseAVCC(b []byte) ([][]byte, error) {
	var nals [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("truncated length")
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("length %d past end", n)
		}
		nals = append(nals, b[4:4+n])
		b = b[4+n:]
	}
	return nals, nil
}

func TestAppendAVCC(t *testing.T) {
	for _, tc := range annexBCases {
		t.Run(tc.name, func(t *testing.T) {
			var want [][]byte
			wantIDR := false
			for _, n := range tc.nals {
				if n[0]&0x1f != nalAUD {
					want = append(want, n)
					wantIDR = wantIDR || n[0]&0x1f == nalIDR
				}
			}
			out, idr, err := appendAVCC([]byte{0xee}, tc.in)
			if len(want) == 0 {
				if err == nil {
					t.Fatalf("no error for input without NAL units")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out[0] != 0xee {
				t.Fatal("dst prefix overwritten")
			}
			got, err := parseAVCC(out[1:])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%x", got) != fmt.Sprintf("%x", want) || idr != wantIDR {
				t.Fatalf("got %x idr=%v, want %x idr=%v", got, idr, want, wantIDR)
			}
		})
	}
}

func TestAVCDecoderConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string // hex, "" for an error
	}{
		{"high", annexB(spsHigh, ppsHigh),
			"0164001effe1001a" + hex.EncodeToString(spsHigh) + "010006" + hex.EncodeToString(ppsHigh) + "fdf8f800"},
		{"baseline", annexB(spsBaseline, ppsBaseline),
			"0142c01effe10019" + hex.EncodeToString(spsBaseline) + "010005" + hex.EncodeToString(ppsBaseline)},
		{"with AUD and SEI", annexB([]byte{9, 0xf0}, spsBaseline, []byte{6, 5, 1, 0x80}, ppsBaseline),
			"0142c01effe10019" + hex.EncodeToString(spsBaseline) + "010005" + hex.EncodeToString(ppsBaseline)},
		{"no PPS", annexB(spsHigh), ""},
		{"no SPS", annexB(ppsHigh), ""},
		{"short SPS", annexB([]byte{0x67, 0x64}, ppsHigh), ""},
		{"truncated high SPS", annexB([]byte{0x67, 100, 0, 30, 0}, ppsHigh), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := avcDecoderConfig(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("no error, record %x", rec)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(rec); got != tc.want {
				t.Fatalf("record\n got %s\nwant %s", got, tc.want)
			}
			checkConfigRecord(t, rec)
		})
	}
}

// checkConfigRecord parses an AVCDecoderConfigurationRecord the way a
// demuxer would and fails on any inconsistency.
func checkConfigRecord(t testing.TB, rec []byte) {
	t.Helper()
	if len(rec) < 7 || rec[0] != 1 || rec[4] != 0xff || rec[5]&0xe0 != 0xe0 {
		t.Fatalf("bad record header %x", rec)
	}
	b := rec[6:]
	for i := 0; i < int(rec[5]&0x1f); i++ {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n || b[2]&0x1f != nalSPS {
			t.Fatalf("bad SPS entry in %x", rec)
		}
		b = b[2+n:]
	}
	npps := int(b[0])
	b = b[1:]
	for i := 0; i < npps; i++ {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n || b[2]&0x1f != nalPPS {
			t.Fatalf("bad PPS entry in %x", rec)
		}
		b = b[2+n:]
	}
	switch rec[1] {
	case 100, 110, 122, 144:
		if len(b) != 4 || b[0]&0xfc != 0xfc || b[3] != 0 {
			t.Fatalf("bad High profile extension %x", b)
		}
	default:
		if len(b) != 0 {
			t.Fatalf("%d trailing bytes", len(b))
		}
	}
}

func TestTags(t *testing.T) {
	au := annexB([]byte{9, 0xf0}, []byte{0x65, 1, 2})
	got, err := videoTag(nil, true, 66, au)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex("1701000042" + "00000003650102"); !bytes.Equal(got, want) {
		t.Errorf("key video tag %x, want %x", got, want)
	}
	got, _ = videoTag(nil, false, -1, annexB([]byte{0x41, 9}))
	if want := mustHex("2701ffffff" + "000000024109"); !bytes.Equal(got, want) {
		t.Errorf("inter video tag %x, want %x", got, want)
	}
	if got := videoSeqHeaderTag([]byte{1, 2}); !bytes.Equal(got, mustHex("17000000000102")) {
		t.Errorf("video sequence header %x", got)
	}
	if got := audioSeqHeaderTag([]byte{0x11, 0x90}); !bytes.Equal(got, mustHex("af001190")) {
		t.Errorf("audio sequence header %x", got)
	}
	if got := audioTag(nil, []byte{0x21, 0x00}); !bytes.Equal(got, mustHex("af012100")) {
		t.Errorf("audio tag %x", got)
	}
}

func TestOnMetaData(t *testing.T) {
	info := media.StreamInfo{Width: 1280, Height: 720, FPS: 30, VideoBitrate: 2_500_000,
		VideoConfig: []byte{1}, SampleRate: 48000, Channels: 2, AudioBitrate: 128000, AudioConfig: []byte{0x11, 0x90}}
	b := onMetaData(info)
	if !bytes.Equal(b, onMetaData(info)) {
		t.Fatal("not reproducible")
	}
	dec := amf0.NewDecoder(bytes.NewReader(b))
	var name string
	if err := dec.Decode(&name); err != nil || name != "onMetaData" {
		t.Fatalf("name %q, %v", name, err)
	}
	var props map[string]any
	if err := dec.Decode(&props); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"width": 1280.0, "height": 720.0, "framerate": 30.0, "videocodecid": 7.0,
		"videodatarate": 2500.0, "audiocodecid": 10.0, "audiosamplerate": 48000.0, "stereo": true, "encoder": "roomcast"} {
		if props[k] != want {
			t.Errorf("%s = %v, want %v", k, props[k], want)
		}
	}
	audioOnly := onMetaData(media.StreamInfo{SampleRate: 48000, Channels: 1, AudioConfig: []byte{0x11, 0x88}})
	if bytes.Contains(audioOnly, []byte("width")) || !bytes.Contains(audioOnly, []byte("audiocodecid")) {
		t.Error("audio-only metadata describes video")
	}
}

// Fuzz targets. Seeds: annexBCases (also committed under testdata/fuzz by
// TestWriteFuzzSeeds) plus what the fuzzer found.

func FuzzAnnexBToAVCC(f *testing.F) {
	for _, tc := range annexBCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, idr, err := appendAVCC(nil, in)
		var want [][]byte
		wantIDR := false
		for _, n := range bitstream.SplitAnnexB(in) {
			if n[0]&0x1f != nalAUD {
				want = append(want, n)
				wantIDR = wantIDR || n[0]&0x1f == nalIDR
			}
		}
		if len(want) == 0 {
			if err == nil {
				t.Fatal("no error without NAL units")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseAVCC(out)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%x", got) != fmt.Sprintf("%x", want) || idr != wantIDR {
			t.Fatalf("AVCC %x idr=%v, want %x idr=%v", got, idr, want, wantIDR)
		}
	})
}

func FuzzAVCDecoderConfig(f *testing.F) {
	for _, tc := range annexBCases {
		f.Add(tc.in)
	}
	f.Add(annexB(spsBaseline, ppsBaseline))
	f.Add(annexB([]byte{0x67, 100, 0, 30, 0x90}, ppsHigh))
	f.Fuzz(func(t *testing.T, in []byte) {
		rec, err := avcDecoderConfig(in)
		if err != nil {
			return
		}
		checkConfigRecord(t, rec)
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz from annexBCases when
// ROOMCAST_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ROOMCAST_WRITE_SEEDS") != "1" {
		t.Skip("set ROOMCAST_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	for _, target := range []string{"FuzzAnnexBToAVCC", "FuzzAVCDecoderConfig"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, tc := range annexBCases {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", tc.in)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
