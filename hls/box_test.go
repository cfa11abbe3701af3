package hls

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// A small ISO BMFF reader, independent of the writer, to read back what it
// wrote.

type box struct {
	typ  string
	body []byte
	kids []box
}

// containers are the box types whose body is a list of boxes.
var containers = map[string]bool{"moov": true, "trak": true, "mdia": true, "minf": true, "dinf": true,
	"stbl": true, "mvex": true, "moof": true, "traf": true}

func parseBoxes(b []byte) ([]box, error) {
	var out []box
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("%d trailing bytes", len(b))
		}
		size := int(binary.BigEndian.Uint32(b))
		if size < 8 || size > len(b) {
			return nil, fmt.Errorf("box %q: size %d of %d", b[4:8], size, len(b))
		}
		bx := box{typ: string(b[4:8]), body: b[8:size]}
		if containers[bx.typ] {
			kids, err := parseBoxes(bx.body)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", bx.typ, err)
			}
			bx.kids = kids
		}
		out = append(out, bx)
		b = b[size:]
	}
	return out, nil
}

func find(bs []box, path ...string) []box {
	var out []box
	for _, b := range bs {
		if b.typ != path[0] {
			continue
		}
		if len(path) == 1 {
			out = append(out, b)
		} else {
			out = append(out, find(b.kids, path[1:]...)...)
		}
	}
	return out
}

// parsedRun is a trun read back, with the sample data it points at.
type parsedRun struct {
	trackID uint32
	tfdt    uint64
	samples []sample
}

// parseSegment reads a moof+mdat back into runs.
func parseSegment(seg []byte) ([]parsedRun, error) {
	top, err := parseBoxes(seg)
	if err != nil {
		return nil, err
	}
	if len(top) != 2 || top[0].typ != "moof" || top[1].typ != "mdat" {
		return nil, fmt.Errorf("want moof+mdat, got %v", top)
	}
	var runs []parsedRun
	for _, traf := range find(top, "moof", "traf") {
		var r parsedRun
		tfhd := find(traf.kids, "tfhd")
		tfdt := find(traf.kids, "tfdt")
		trun := find(traf.kids, "trun")
		if len(tfhd) != 1 || len(tfdt) != 1 || len(trun) != 1 {
			return nil, fmt.Errorf("traf needs one tfhd, tfdt, trun")
		}
		if binary.BigEndian.Uint32(tfhd[0].body)&0xffffff != 0x020000 {
			return nil, fmt.Errorf("tfhd flags %x", tfhd[0].body[:4])
		}
		r.trackID = binary.BigEndian.Uint32(tfhd[0].body[4:])
		if tfdt[0].body[0] != 1 {
			return nil, fmt.Errorf("tfdt version %d", tfdt[0].body[0])
		}
		r.tfdt = binary.BigEndian.Uint64(tfdt[0].body[4:])
		t := trun[0].body
		flags := binary.BigEndian.Uint32(t) & 0xffffff
		n := int(binary.BigEndian.Uint32(t[4:]))
		off := int(int32(binary.BigEndian.Uint32(t[8:])))
		p := t[12:]
		dts := int64(r.tfdt)
		for range n {
			var s sample
			s.dts = dts
			s.duration = binary.BigEndian.Uint32(p)
			size := int(binary.BigEndian.Uint32(p[4:]))
			p = p[8:]
			s.key = true
			if flags&0x400 != 0 {
				s.key = binary.BigEndian.Uint32(p)&0x00010000 == 0
				p = p[4:]
			}
			if flags&0x800 != 0 {
				s.cts = int32(binary.BigEndian.Uint32(p))
				p = p[4:]
			}
			if off < 0 || off+size > len(seg) {
				return nil, fmt.Errorf("sample outside the segment")
			}
			s.data = seg[off : off+size]
			off += size
			dts += int64(s.duration)
			r.samples = append(r.samples, s)
		}
		if len(p) != 0 {
			return nil, fmt.Errorf("%d bytes left in trun", len(p))
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// Baseline SPS/PPS of a 64x64 stream (profile 66: no chroma fields).
var testConfig = []byte{0, 0, 0, 1, 0x67, 66, 0xc0, 0x0a, 0xda, 0x11, 0x00, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80}

func TestInitSegment(t *testing.T) {
	v, err := videoTrack(1280, 720, testConfig)
	if err != nil {
		t.Fatal(err)
	}
	a, err := audioTrack(48000, 2, 128000, []byte{0x11, 0x90})
	if err != nil {
		t.Fatal(err)
	}
	top, err := parseBoxes(initSegment([]trackInfo{v, a}))
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != 2 || top[0].typ != "ftyp" || top[1].typ != "moov" {
		t.Fatalf("top level %v", top)
	}
	if !bytes.Contains(top[0].body, []byte("cmfc")) {
		t.Errorf("ftyp without the CMAF brand: %q", top[0].body)
	}
	if n := len(find(top, "moov", "trak")); n != 2 {
		t.Fatalf("%d traks", n)
	}
	if n := len(find(top, "moov", "mvex", "trex")); n != 2 {
		t.Fatalf("%d trex", n)
	}
	stsd := find(top, "moov", "trak", "mdia", "minf", "stbl", "stsd")
	if len(stsd) != 2 {
		t.Fatal("stsd missing")
	}
	avc1, err := parseBoxes(stsd[0].body[8+8+78:]) // stsd header, entry header, visual sample entry
	if err != nil || len(avc1) != 1 || avc1[0].typ != "avcC" {
		t.Fatalf("avc1 children %v %v", avc1, err)
	}
	if rec := avc1[0].body; rec[0] != 1 || rec[1] != 66 || rec[4] != 0xff {
		t.Errorf("avcC %x", rec)
	}
	if binary.BigEndian.Uint32(stsd[0].body[4:]) != 1 || string(stsd[0].body[12:16]) != "avc1" {
		t.Errorf("video sample entry %q", stsd[0].body[8:16])
	}
	if string(stsd[1].body[12:16]) != "mp4a" || !bytes.Contains(stsd[1].body, []byte{0x05, 2, 0x11, 0x90}) {
		t.Errorf("audio sample entry without the ASC: %x", stsd[1].body)
	}
	for _, h := range find(top, "moov", "trak", "mdia", "mdhd") {
		if ts := binary.BigEndian.Uint32(h.body[12:]); ts != videoTimescale && ts != 48000 {
			t.Errorf("timescale %d", ts)
		}
	}
}

func TestTrackErrors(t *testing.T) {
	if _, err := videoTrack(1280, 720, []byte{0, 0, 1, 0x68, 1}); err == nil {
		t.Error("video config without SPS accepted")
	}
	if _, err := videoTrack(0, 720, testConfig); err == nil {
		t.Error("zero width accepted")
	}
	if _, err := audioTrack(48000, 2, 0, []byte{1}); err == nil {
		t.Error("one-byte ASC accepted")
	}
}

// segmentCases feed the round-trip test and the fuzz seeds.
var segmentCases = []struct {
	name  string
	video []sample
	audio []sample
}{
	{"video+audio", []sample{
		{dts: 0, cts: 6000, duration: 3000, key: true, data: []byte{0, 0, 0, 2, 0x65, 1}},
		{dts: 3000, cts: -3000 + 6000, duration: 3000, data: []byte{0, 0, 0, 1, 0x41}},
		{dts: 6000, cts: 0, duration: 3000, data: []byte{0, 0, 0, 1, 0x01}},
	}, []sample{
		{dts: 0, duration: 1024, key: true, data: []byte{1, 2, 3}},
		{dts: 1024, duration: 1024, key: true, data: []byte{4, 5}},
	}},
	{"audio only", nil, []sample{{dts: 96000, duration: 1024, key: true, data: []byte{9}}}},
	{"negative offset", []sample{{dts: 180000, cts: -1500, duration: 3000, key: true, data: []byte{7, 7, 7}}}, nil},
}

func roundTrip(t *testing.T, seq uint32, video, audio []sample) {
	t.Helper()
	var frags []fragment
	if len(video) > 0 {
		frags = append(frags, fragment{trackID: videoTrackID, video: true, samples: video})
	}
	if len(audio) > 0 {
		frags = append(frags, fragment{trackID: audioTrackID, samples: audio})
	}
	seg := mediaSegment(seq, frags)
	runs, err := parseSegment(seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(frags) {
		t.Fatalf("%d runs for %d tracks", len(runs), len(frags))
	}
	for i, f := range frags {
		r := runs[i]
		if r.trackID != f.trackID || r.tfdt != uint64(f.samples[0].dts) || len(r.samples) != len(f.samples) {
			t.Fatalf("track %d: read back id %d tfdt %d n %d", f.trackID, r.trackID, r.tfdt, len(r.samples))
		}
		for j, s := range f.samples {
			g := r.samples[j]
			want := s
			if !f.video {
				want.key, want.cts = true, 0
			}
			if g.duration != want.duration || !bytes.Equal(g.data, want.data) || (f.video && (g.key != want.key || g.cts != want.cts)) {
				t.Errorf("track %d sample %d: got %+v want %+v", f.trackID, j, g, want)
			}
			if j > 0 && g.dts != f.samples[j].dts && f.samples[j].dts == f.samples[j-1].dts+int64(f.samples[j-1].duration) {
				t.Errorf("track %d sample %d: dts %d want %d", f.trackID, j, g.dts, f.samples[j].dts)
			}
		}
	}
	top, _ := parseBoxes(seg)
	if got := binary.BigEndian.Uint32(find(top, "moof", "mfhd")[0].body[4:]); got != seq {
		t.Errorf("sequence %d want %d", got, seq)
	}
}

func TestMediaSegmentRoundTrip(t *testing.T) {
	for _, tc := range segmentCases {
		t.Run(tc.name, func(t *testing.T) { roundTrip(t, 7, tc.video, tc.audio) })
	}
}

// FuzzMediaSegment builds segments from arbitrary sample tables and reads
// them back: every size, duration, offset and flag must survive.
func FuzzMediaSegment(f *testing.F) {
	enc := func(ss []sample) []byte {
		var b []byte
		for _, s := range ss {
			b = append(b, byte(len(s.data)), byte(s.duration>>8), byte(s.duration), byte(s.cts>>8), byte(s.cts))
			if s.key {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
			b = append(b, s.data...)
		}
		return b
	}
	for _, tc := range segmentCases {
		f.Add(uint32(1), uint64(0), enc(tc.video), enc(tc.audio))
	}
	dec := func(b []byte, dts int64) []sample {
		var out []sample
		for len(b) >= 6 {
			n := int(b[0])
			s := sample{dts: dts, duration: uint32(b[1])<<8 | uint32(b[2]), cts: int32(int16(uint16(b[3])<<8 | uint16(b[4]))), key: b[5] == 1}
			b = b[6:]
			n = min(n, len(b))
			s.data = b[:n]
			b = b[n:]
			dts += int64(s.duration)
			out = append(out, s)
		}
		return out
	}
	f.Fuzz(func(t *testing.T, seq uint32, base uint64, video, audio []byte) {
		base &= 1<<40 - 1
		roundTrip(t, seq, dec(video, int64(base)), dec(audio, int64(base/2)))
	})
}
