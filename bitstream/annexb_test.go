package bitstream

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Parameter sets written by x264 for 640x360 (High), kept as Annex B.
var (
	spsHigh = mustHex("6764001eacd940a02ff970110000030001000003003c0f162d96")
	ppsHigh = mustHex("68ebe3cb22c0")
)

// annexB joins NAL units with alternating 4- and 3-byte start codes.
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

// annexBCases feeds TestSplitAnnexB and the fuzz seeds (rtmp's AVCC tests
// keep the same table).
var annexBCases = []struct {
	name string
	in   []byte
	nals [][]byte // expected SplitAnnexB result
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

func TestSplitAnnexB(t *testing.T) {
	for _, tc := range annexBCases {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitAnnexB(tc.in)
			if len(got) != len(tc.nals) {
				t.Fatalf("got %d NAL units %x, want %d", len(got), got, len(tc.nals))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.nals[i]) {
					t.Errorf("NAL %d = %x, want %x", i, got[i], tc.nals[i])
				}
			}
		})
	}
}

func TestAppendAnnexBAndType(t *testing.T) {
	b := AppendAnnexB(AppendAnnexB([]byte{0xee}, spsHigh), ppsHigh)
	want := append(append(append([]byte{0xee, 0, 0, 0, 1}, spsHigh...), 0, 0, 0, 1), ppsHigh...)
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x, want %x", b, want)
	}
	nals := SplitAnnexB(b[1:])
	if len(nals) != 2 || H264Type(nals[0]) != H264SPS || H264Type(nals[1]) != H264PPS {
		t.Fatalf("round trip %x", nals)
	}
	if H264Type(nil) != 0 {
		t.Fatal("type of an empty unit")
	}
}

// Fuzz targets. Seeds: annexBCases (also committed under testdata/fuzz by
// TestWriteFuzzSeeds) plus what the fuzzer found.

func FuzzSplitAnnexB(f *testing.F) {
	for _, tc := range annexBCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		nals := SplitAnnexB(in)
		total := 0
		for _, n := range nals {
			if len(n) == 0 || n[len(n)-1] == 0 || bytes.Contains(n, startCode) {
				t.Fatalf("bad NAL unit %x from %x", n, in)
			}
			total += len(n)
		}
		if total > len(in) {
			t.Fatal("NAL units longer than the input")
		}
		// Re-joining with start codes must give the same units back.
		again := SplitAnnexB(annexB(nals...))
		if fmt.Sprintf("%x", again) != fmt.Sprintf("%x", nals) {
			t.Fatalf("round trip %x != %x", again, nals)
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz when ROOMCAST_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ROOMCAST_WRITE_SEEDS") != "1" {
		t.Skip("set ROOMCAST_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range annexBCases {
		write("FuzzSplitAnnexB", fmt.Sprintf("seed-%02d", i), tc.in)
	}
	for i, s := range spsSeeds() {
		write("FuzzH264SPSChroma", fmt.Sprintf("seed-%02d", i), s)
	}
	for i, s := range rbspSeeds {
		write("FuzzUnescapeRBSP", fmt.Sprintf("seed-%02d", i), s)
	}
	for i, s := range readerSeeds {
		write("FuzzReader", fmt.Sprintf("seed-%02d", i), s)
	}
}
