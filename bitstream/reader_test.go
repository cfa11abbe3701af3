package bitstream

import (
	"bytes"
	"errors"
	"testing"
)

func TestReader(t *testing.T) {
	// 1 | 010 | 011 | 00100 | 00101 | 1 -> UE 0, 1, 2, 3, 4, 0
	r := NewReader([]byte{0b1010_0110, 0b0100_0010, 0b1100_0000})
	for i, want := range []uint32{0, 1, 2, 3, 4, 0} {
		if got := r.UE(); got != want || r.Err() != nil {
			t.Fatalf("UE #%d = %d (%v), want %d", i, got, r.Err(), want)
		}
	}
	if r.Pos() != 18 {
		t.Fatalf("Pos %d, want 18", r.Pos())
	}
	// SE: codeNum 1 -> 1, 2 -> -1, 3 -> 2, 4 -> -2 (H.264 table 9-3).
	r = NewReader([]byte{0b0100_1100, 0b1000_0101})
	for i, want := range []int32{1, -1, 2, -2} {
		if got := r.SE(); got != want {
			t.Fatalf("SE #%d = %d, want %d", i, got, want)
		}
	}
	r = NewReader([]byte{0xa5, 0x0f})
	if v := r.Bits(4); v != 0xa {
		t.Fatalf("Bits(4) = %x", v)
	}
	if r.Flag() || !r.Flag() || r.Flag() || r.Bit() != 1 {
		t.Fatal("flags of 0101")
	}
	if v := r.Bits(8); v != 0x0f || r.Err() != nil {
		t.Fatalf("Bits(8) = %x, %v", v, r.Err())
	}
	// Past the end: 0, and the error sticks.
	if r.Bit() != 0 || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("read past the end: %v", r.Err())
	}
	if r.Bits(3) != 0 || r.UE() != 0 || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatal("error did not stick")
	}
	// 32 leading zeros: too long for a 32-bit code.
	r = NewReader([]byte{0, 0, 0, 0, 0x80, 0, 0, 0, 0})
	if r.UE() != 0 || !errors.Is(r.Err(), ErrGolomb) {
		t.Fatalf("32 zeros: %v", r.Err())
	}
	// 31 leading zeros: the largest code, 2^32-2.
	r = NewReader([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe})
	if v := r.UE(); v != 1<<32-2 || r.Err() != nil {
		t.Fatalf("31 zeros: %d %v", v, r.Err())
	}
	// A code whose suffix is cut short.
	r = NewReader([]byte{0b0000_0010})
	if r.UE() != 0 || !errors.Is(r.Err(), ErrTruncated) {
		t.Fatalf("cut suffix: %v", r.Err())
	}
}

var readerSeeds = [][]byte{
	{0b1010_0110, 0b0100_0010, 0b1100_0000},
	{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe},
	{0, 0, 0, 0, 0x80},
	spsHigh,
}

// FuzzReader reads arbitrary data with a program taken from its first
// byte: reads never panic, never go past the data without an error, and
// an error sticks.
func FuzzReader(f *testing.F) {
	for _, s := range readerSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		op, data := data[0], data[1:]
		r := NewReader(data)
		var failed error
		for i := 0; i < 64; i++ {
			switch (int(op) + i) % 4 {
			case 0:
				r.UE()
			case 1:
				r.SE()
			case 2:
				r.Bits(i % 33)
			case 3:
				r.Bit()
			}
			if r.Pos() > 8*len(data) {
				t.Fatalf("position %d past %d bits", r.Pos(), 8*len(data))
			}
			if failed != nil && r.Err() != failed {
				t.Fatalf("error changed from %v to %v", failed, r.Err())
			}
			failed = r.Err()
		}
	})
}

// escapeRBSP inserts emulation prevention bytes, the inverse of
// UnescapeRBSP (H.264 7.4.1: 00 00 followed by 00..03 gets a 03 between).
func escapeRBSP(b []byte) []byte {
	var out []byte
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

func TestUnescapeRBSP(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{nil, []byte{}},
		{[]byte{1, 2, 3}, []byte{1, 2, 3}},
		{[]byte{0, 0, 3, 1}, []byte{0, 0, 1}},
		{[]byte{0, 0, 3, 0, 0, 3}, []byte{0, 0, 0, 0}},
		{[]byte{0, 3, 0, 0, 3, 3}, []byte{0, 3, 0, 0, 3}},
		{[]byte{0, 0, 0, 3}, []byte{0, 0, 0}},
	} {
		if got := UnescapeRBSP(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("UnescapeRBSP(% x) = % x, want % x", c.in, got, c.want)
		}
	}
}

var rbspSeeds = [][]byte{{0, 0, 3, 1}, {0, 0, 0, 0, 0}, {0, 0, 3, 0, 0, 3}, spsHigh}

// FuzzUnescapeRBSP: unescaping never grows the data, and undoes escaping.
func FuzzUnescapeRBSP(f *testing.F) {
	for _, s := range rbspSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if u := UnescapeRBSP(b); len(u) > len(b) {
			t.Fatalf("unescaped %d bytes to %d", len(b), len(u))
		}
		if got := UnescapeRBSP(escapeRBSP(b)); !bytes.Equal(got, b) {
			t.Fatalf("round trip of % x gave % x", b, got)
		}
	})
}
