package hls

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/media"
)

var testInfo = media.StreamInfo{Width: 64, Height: 64, FPS: 30, VideoConfig: testConfig,
	SampleRate: 48000, Channels: 2, AudioBitrate: 128000, AudioConfig: []byte{0x11, 0x90}}

// feed writes secs seconds of 30 fps video (a keyframe every keyint, two
// frames of B-frame delay: DTS = PTS - 66.7 ms) and 1024-sample AAC packets,
// interleaved by DTS like the recorder.
func feed(t *testing.T, w *Writer, from, secs float64, keyint time.Duration) {
	t.Helper()
	frame := time.Second / 30
	aac := time.Duration(1024 * int64(time.Second) / 48000)
	vi := int(math.Round(from * 30))
	endFrame := int(math.Round((from + secs) * 30))
	end := time.Duration(endFrame) * frame
	ai := 0 // the first packet is AAC priming, before zero
	if vi > 0 {
		ai = int(math.Ceil(float64(time.Duration(vi)*frame)/float64(aac))) + 1
	}
	for {
		vpts := time.Duration(vi) * frame
		vdts := vpts - 2*frame
		apts := time.Duration(ai)*aac - aac // priming: starts before zero
		if vi >= endFrame && apts >= end {
			return
		}
		var p media.Packet
		if apts <= vdts || vi >= endFrame {
			p = media.Packet{Kind: media.KindAudio, Data: []byte{byte(ai), 0x21}, PTS: apts, DTS: apts, Duration: aac, Key: true}
			ai++
		} else {
			key := vi%int(keyint*30/time.Second) == 0
			nal := byte(0x41)
			if key {
				nal = 0x65
			}
			p = media.Packet{Kind: media.KindVideo, Data: []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, nal, byte(vi), byte(vi >> 8)},
				PTS: vpts, DTS: vdts, Duration: frame, Key: key}
			vi++
		}
		if err := w.WritePacket(p); err != nil {
			t.Fatalf("packet %+v: %v", p, err)
		}
	}
}

type parsedPlaylist struct {
	target, seq int
	vod, ended  bool
	initURI     string
	names       []string
	durs        []float64
	pdt         int
	independent bool
	version     int
}

func readPlaylist(t *testing.T, dir string) parsedPlaylist {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, PlaylistName))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePlaylist(b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return p
}

func parsePlaylist(b []byte) (parsedPlaylist, error) {
	var p parsedPlaylist
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	var dur float64 = -1
	for sc.Scan() {
		l := sc.Text()
		if first {
			if l != "#EXTM3U" {
				return p, errors.New("no #EXTM3U")
			}
			first = false
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "#EXT-X-VERSION":
			p.version, _ = strconv.Atoi(v)
		case "#EXT-X-TARGETDURATION":
			p.target, _ = strconv.Atoi(v)
		case "#EXT-X-MEDIA-SEQUENCE":
			p.seq, _ = strconv.Atoi(v)
		case "#EXT-X-PLAYLIST-TYPE":
			p.vod = v == "VOD"
		case "#EXT-X-ENDLIST":
			p.ended = true
		case "#EXT-X-INDEPENDENT-SEGMENTS":
			p.independent = true
		case "#EXT-X-MAP":
			p.initURI = strings.Trim(strings.TrimPrefix(v, "URI="), `"`)
		case "#EXT-X-PROGRAM-DATE-TIME":
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				return p, err
			}
			p.pdt++
		case "#EXTINF":
			d, err := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if err != nil {
				return p, err
			}
			dur = d
		default:
			if strings.HasPrefix(l, "#") || l == "" {
				continue
			}
			if dur < 0 {
				return p, errors.New("segment without EXTINF: " + l)
			}
			p.names = append(p.names, l)
			p.durs = append(p.durs, dur)
			dur = -1
		}
	}
	if first || p.version != 7 || p.initURI == "" || p.target == 0 {
		return p, errors.New("incomplete playlist")
	}
	return p, nil
}

func readSegment(t *testing.T, dir, name string) []parsedRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	runs, err := parseSegment(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return runs
}

func TestWriterLiveAndVOD(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hls")
	w, err := Create(dir, testInfo, Options{Window: 3})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, w, 0, 9, 2*time.Second)
	live := readPlaylist(t, dir)
	if live.ended || live.vod || len(live.names) != 3 || live.seq != 1 || live.target != 2 || !live.independent || live.pdt != 3 {
		t.Fatalf("live playlist after 9 s: %+v", live)
	}
	feed(t, w, 9, 1, 2*time.Second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err2 := w.Close(); err2 != nil {
		t.Fatal("second Close:", err2)
	}
	vod := readPlaylist(t, dir)
	if !vod.ended || !vod.vod || vod.seq != 0 || len(vod.names) != 5 {
		t.Fatalf("final playlist: %+v", vod)
	}
	var total float64
	var nextV, nextA int64 = -1, -1
	for i, name := range vod.names {
		total += vod.durs[i]
		if vod.durs[i] < 1.99 || vod.durs[i] > 2.01 {
			t.Errorf("%s lasts %.3f s", name, vod.durs[i])
		}
		runs := readSegment(t, dir, name)
		if len(runs) != 2 || runs[0].trackID != videoTrackID || runs[1].trackID != audioTrackID {
			t.Fatalf("%s: runs %+v", name, runs)
		}
		v, a := runs[0], runs[1]
		if !v.samples[0].key {
			t.Errorf("%s does not start with a keyframe", name)
		}
		for j, s := range v.samples[1:] {
			if s.key {
				t.Errorf("%s: keyframe inside the segment at sample %d", name, j+1)
			}
		}
		if len(v.samples) != 60 {
			t.Errorf("%s: %d video samples", name, len(v.samples))
		}
		// The tracks tile: each segment starts where the previous ended.
		if nextV >= 0 && (int64(v.tfdt) != nextV || int64(a.tfdt) != nextA) {
			t.Errorf("%s: tfdt %d/%d, previous ended at %d/%d", name, v.tfdt, a.tfdt, nextV, nextA)
		}
		last := v.samples[len(v.samples)-1]
		nextV = last.dts + int64(last.duration)
		la := a.samples[len(a.samples)-1]
		nextA = la.dts + int64(la.duration)
		// The first keyframe's composition offset is the B-frame delay.
		if v.samples[0].cts != 6000 {
			t.Errorf("%s: keyframe cts %d", name, v.samples[0].cts)
		}
		if i == 0 && (v.tfdt != 0 || a.tfdt != 48000*2/30-1024) {
			t.Errorf("first segment tfdt video %d audio %d (want the earliest DTS at zero)", v.tfdt, a.tfdt)
		}
	}
	if total < 9.99 || total > 10.01 {
		t.Errorf("VOD lasts %.3f s", total)
	}
	if st := w.Status(); !st.Ended || st.Segments != 5 || st.Deleted != 0 {
		t.Errorf("status %+v", st)
	}
	// Only published names remain: no temporary files.
	for _, n := range dirNames(t, dir) {
		if !SegmentName(n) {
			t.Errorf("stray file %s", n)
		}
	}
}

func dirNames(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestWriterWindowOnlyDeletes(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testInfo, Options{Window: 3, WindowOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	present := func() int {
		n := 0
		for _, name := range dirNames(t, dir) {
			if strings.HasSuffix(name, ".m4s") {
				n++
			}
		}
		return n
	}
	feed(t, w, 0, 30, 2*time.Second)
	pl := readPlaylist(t, dir)
	// 14 segments written (the 15th is open). Segment k left the window
	// when segment k+3 was written and may go once a further 2 s + 6 s of
	// media passed: 4 more segments. So the window plus 4 stay.
	if len(pl.names) != 3 || pl.seq != 11 {
		t.Fatalf("playlist %+v", pl)
	}
	if n := present(); n != 3+4 {
		t.Errorf("%d segments on disk, want the window (3) plus the 4 in their grace period", n)
	}
	for _, name := range pl.names {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("listed segment missing: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pl = readPlaylist(t, dir)
	if !pl.ended || pl.vod || len(pl.names) != 3 {
		t.Errorf("final window-only playlist %+v", pl)
	}
	if n := present(); n != 3 {
		t.Errorf("%d segments left after Close, want the 3 listed", n)
	}
	if st := w.Status(); st.Deleted != 12 {
		t.Errorf("status %+v", st)
	}
}

func TestWriterLongKeyint(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testInfo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	feed(t, w, 0, 12, 3*time.Second) // keyframes 3 s apart: 3 s segments
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pl := readPlaylist(t, dir)
	if len(pl.names) != 4 || pl.target != 3 {
		t.Errorf("playlist %+v", pl)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testInfo, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Video before the first keyframe is dropped, not an error.
	if err := w.WritePacket(media.Packet{Kind: media.KindVideo, Data: []byte{0, 0, 1, 0x41, 1}}); err != nil {
		t.Fatal(err)
	}
	if w.Status().Dropped != 1 {
		t.Error("drop not counted")
	}
	bad := []media.Packet{
		{Kind: 7, Data: []byte{1}},
		{Kind: media.KindVideo, Data: []byte{1, 2, 3}, Key: true}, // not Annex B
		{Kind: media.KindAudio, Data: nil},
		{Kind: media.KindAudio, Data: []byte{1}, PTS: 0, DTS: time.Second},
	}
	for _, p := range bad {
		if err := w.WritePacket(p); !errors.Is(err, ErrPacket) {
			t.Errorf("%+v: %v, want ErrPacket", p, err)
		}
	}
	_ = w.WritePacket(media.Packet{Kind: media.KindAudio, Data: []byte{1}, PTS: time.Second, DTS: time.Second})
	if err := w.WritePacket(media.Packet{Kind: media.KindAudio, Data: []byte{1}, PTS: time.Second, DTS: time.Second}); !errors.Is(err, ErrPacket) {
		t.Errorf("repeated DTS: %v", err)
	}
	w.Close()
	if err := w.WritePacket(media.Packet{Kind: media.KindAudio, Data: []byte{1}, PTS: 2 * time.Second, DTS: 2 * time.Second}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}

	// The directory now holds a broadcast: refused without Overwrite.
	if _, err := Create(dir, testInfo, Options{}); !errors.Is(err, ErrCreate) {
		t.Errorf("existing broadcast: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
	w2, err := Create(dir, testInfo, Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	names := dirNames(t, dir)
	if len(names) != 2 || !strings.HasSuffix(names[0], "-init.mp4") && !strings.HasSuffix(names[1], "-init.mp4") {
		t.Errorf("after overwrite: %v (want the new init and the user's notes.txt)", names)
	}
	w2.Close()
	if _, err := Create(filepath.Join(dir, "notes.txt"), testInfo, Options{}); !errors.Is(err, ErrCreate) {
		t.Errorf("a file as directory: %v", err)
	}
	if _, err := Create(filepath.Join(dir, "a", "b"), testInfo, Options{}); !errors.Is(err, ErrCreate) {
		t.Errorf("missing parent: %v", err)
	}
	if _, err := Create(t.TempDir(), media.StreamInfo{}, Options{}); !errors.Is(err, ErrCreate) {
		t.Errorf("no streams: %v", err)
	}
}

// TestWriterNamedPlaylists: Playlist renames the media playlist; with
// LivePlaylist it lists every segment while live and the live playlist the
// window; both end with EXT-X-ENDLIST. Bad names are refused.
func TestWriterNamedPlaylists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hls")
	w, err := Create(dir, testInfo, Options{Window: 3, Playlist: "all.m3u8", LivePlaylist: "live.m3u8"})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) parsedPlaylist {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		p, err := parsePlaylist(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return p
	}
	feed(t, w, 0, 9, 2*time.Second)
	if all, live := read("all.m3u8"), read("live.m3u8"); len(all.names) != 4 || all.ended || len(live.names) != 3 || live.ended || live.seq != 1 {
		t.Fatalf("while live: all %+v, live %+v", all, live)
	}
	if _, err := os.Stat(filepath.Join(dir, PlaylistName)); err == nil {
		t.Fatal("index.m3u8 written beside a named playlist")
	}
	feed(t, w, 9, 1, 2*time.Second)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if all, live := read("all.m3u8"), read("live.m3u8"); len(all.names) != 5 || !all.ended || !all.vod || len(live.names) != 3 || !live.ended {
		t.Fatalf("final: all %+v, live %+v", all, live)
	}
	// The same directory again without Overwrite: refused (it holds a broadcast).
	if _, err := Create(dir, testInfo, Options{Playlist: "all.m3u8"}); !errors.Is(err, ErrCreate) {
		t.Fatalf("second broadcast in the directory: %v", err)
	}
	for _, bad := range []Options{{Playlist: "../x.m3u8"}, {Playlist: "x.txt"}, {Playlist: ".x.m3u8"}, {Playlist: "a.m3u8", LivePlaylist: "a.m3u8"}} {
		if _, err := Create(filepath.Join(t.TempDir(), "h"), testInfo, bad); !errors.Is(err, ErrCreate) {
			t.Errorf("options %+v: %v, want ErrCreate", bad, err)
		}
	}
}
