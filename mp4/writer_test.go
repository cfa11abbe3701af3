package mp4

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

func writeAll(t *testing.T, w *Writer, pkts []media.Packet) {
	t.Helper()
	for i, p := range pkts {
		if err := w.WritePacket(p); err != nil {
			t.Fatalf("packet %d (%v dts %v): %v", i, p.Kind, p.DTS, err)
		}
	}
}

func TestCloseFinalises(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.mp4")
	w, err := Create(path, fix.info, Options{Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	// The header alone is a valid (empty) fragmented MP4.
	if got := boxTypes(topBoxes(t, path)); !slices.Equal(got, []string{"ftyp", "moov"}) {
		t.Fatalf("boxes after Create = %v, want [ftyp moov]", got)
	}
	writeAll(t, w, fix.packets)
	if d := w.Duration(); math.Abs((d - fix.duration).Seconds()) > 0.1 {
		t.Errorf("Duration() = %v, want about %v", d, fix.duration)
	}
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close (last fragment + finalise of %d bytes) took %v", w.Bytes(), time.Since(start))
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.WritePacket(fix.packets[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("WritePacket after Close = %v, want ErrClosed", err)
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != w.Bytes() {
		t.Errorf("Bytes() = %d, file has %d", w.Bytes(), st.Size())
	}
	types := boxTypes(topBoxes(t, path))
	moov, mdat := slices.Index(types, "moov"), slices.Index(types, "mdat")
	if moov < 0 || mdat < 0 || moov > mdat || slices.Contains(types, "moof") {
		t.Errorf("top-level boxes %v: want a regular MP4 with moov before mdat", types)
	}
	p := ffprobe(t, path, false)
	vi, vc, vn := p.stream(t, "video")
	_, ac, an := p.stream(t, "audio")
	_ = vi
	if vc != "h264" || ac != "aac" {
		t.Errorf("codecs %s/%s, want h264/aac", vc, ac)
	}
	if vn != fix.video || an != fix.audio {
		t.Errorf("packets video %d audio %d, want %d and %d", vn, an, fix.video, fix.audio)
	}
	if d := seconds(p.Format.Duration); math.Abs(d-fix.duration.Seconds()) > 0.1 {
		t.Errorf("duration %.3f s, input %.3f s", d, fix.duration.Seconds())
	}
	decodeAll(t, path)
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestFragmentDurations checks, for several settings, that fragments are cut
// no further apart than FragmentDuration (+ one frame), and that Abort, which
// leaves the file as a crash would, loses no more than that.
func TestFragmentDurations(t *testing.T) {
	frame := time.Second / fixtureFPS
	for _, fd := range []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second} {
		t.Run(fd.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rec.mp4")
			w, err := Create(path, fix.info, Options{FragmentDuration: fd, Log: testLog(t)})
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, fix.packets)
			w.Abort()
			w.Abort()
			if err := w.Close(); err != nil {
				t.Fatalf("Close after Abort: %v", err)
			}

			boxes := topBoxes(t, path)
			var moofs []int64
			for _, b := range boxes {
				if b.typ == "moof" {
					moofs = append(moofs, b.off)
				}
			}
			p := ffprobe(t, path, true)
			vi, _, vn := p.stream(t, "video")
			// Group video packets by the fragment holding them.
			first := map[int]float64{}
			last := map[int]float64{}
			for _, k := range p.Packets {
				if k.StreamIndex != vi {
					continue
				}
				pos, _ := strconv.ParseInt(k.Pos, 10, 64)
				i, found := slices.BinarySearch(moofs, pos)
				if !found {
					i--
				}
				dts := seconds(k.DTSTime)
				if _, ok := first[i]; !ok {
					first[i] = dts
				}
				last[i] = max(last[i], dts+seconds(k.DurationTime))
			}
			var longest float64
			for i := range first {
				longest = max(longest, last[i]-first[i])
			}
			t.Logf("%d fragments, longest %.3f s of video, %d of %d video packets survive", len(moofs), longest, vn, fix.video)
			if limit := (fd + frame).Seconds() + 0.001; longest > limit {
				t.Errorf("a fragment spans %.3f s > %.3f s", longest, limit)
			}
			if want := int(time.Duration(fixtureSeconds) * time.Second / (fd + frame)); len(moofs) < want-1 {
				t.Errorf("%d fragments, want at least %d", len(moofs), want-1)
			}
			lost := fix.duration.Seconds() - p.mediaEnd(vi)
			if lost > (fd + frame).Seconds() {
				t.Errorf("abort lost %.3f s of video, more than a fragment", lost)
			}
			decodeAll(t, path)
		})
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(dir, "old.mp4")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		info       media.StreamInfo
		opts       Options
	}{
		{"missing directory", filepath.Join(dir, "nope", "rec.mp4"), fix.info, Options{}},
		{"under a regular file", filepath.Join(regular, "rec.mp4"), fix.info, Options{}},
		{"under a regular file, deeper", filepath.Join(regular, "a", "rec.mp4"), fix.info, Options{}},
		{"path is a directory", dir, fix.info, Options{}},
		{"path is a directory, overwrite", dir, fix.info, Options{Overwrite: true}},
		{"proc", "/proc/rec.mp4", fix.info, Options{}},
		{"exists", existing, fix.info, Options{}},
		{"empty path", "", fix.info, Options{}},
		{"no streams", filepath.Join(dir, "a.mp4"), media.StreamInfo{}, Options{}},
		{"video without config", filepath.Join(dir, "b.mp4"), media.StreamInfo{Width: 2, Height: 2}, Options{}},
		{"fragment too long", filepath.Join(dir, "c.mp4"), fix.info, Options{FragmentDuration: 3 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadDir(dir)
			w, err := Create(tc.path, tc.info, tc.opts)
			if !errors.Is(err, ErrCreate) {
				if w != nil {
					w.Abort()
				}
				t.Fatalf("err = %v, want ErrCreate", err)
			}
			t.Log(err)
			after, _ := os.ReadDir(dir)
			if len(after) != len(before) {
				t.Errorf("directory changed: %d entries, was %d", len(after), len(before))
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Error("existing file was touched")
	}

	// Overwrite replaces an existing file.
	w, err := Create(existing, fix.info, Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, fix.packets[:50])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	decodeAll(t, existing)
}

func TestPacketErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.mp4")
	w, err := Create(path, fix.info, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	n := len(fix.packets) / 2
	writeAll(t, w, fix.packets[:n])
	var lastVideo media.Packet
	for _, p := range fix.packets[:n] {
		if p.Kind == media.KindVideo {
			lastVideo = p
		}
	}
	for name, p := range map[string]media.Packet{
		"repeated DTS":   lastVideo,
		"unknown kind":   {Kind: 7, Data: []byte{1}},
		"empty":          {Kind: media.KindAudio, DTS: time.Hour, PTS: time.Hour},
		"PTS before DTS": {Kind: media.KindAudio, Data: []byte{1}, DTS: time.Hour, PTS: time.Minute},
	} {
		if err := w.WritePacket(p); !errors.Is(err, ErrPacket) {
			t.Errorf("%s: err = %v, want ErrPacket", name, err)
		}
	}
	// The writer is still usable.
	writeAll(t, w, fix.packets[n:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := ffprobe(t, path, false)
	if _, _, vn := p.stream(t, "video"); vn != fix.video {
		t.Errorf("%d video packets, want %d", vn, fix.video)
	}
	decodeAll(t, path)
}

// TestVideoGaps: pictures left out before keyframes (frames skipped under
// live overload, pictures dropped at an x264 preset switch) leave gaps that
// often end at a fragment boundary; every picture after a gap keeps its
// time in the finished file and in the fragmented one (a crash), and both
// decode cleanly.
func TestVideoGaps(t *testing.T) {
	var keys []int
	var video []int // indexes in fix.packets
	for i, p := range fix.packets {
		if p.Kind == media.KindVideo {
			if p.Key {
				keys = append(keys, len(video))
			}
			video = append(video, i)
		}
	}
	if len(keys) < 3 {
		t.Fatalf("the fixture has %d keyframes, want 3 or more", len(keys))
	}
	// Leave out the 1.5 s of pictures before the second and the third
	// keyframe: longer than a fragment.
	drop := map[int]bool{}
	for _, k := range keys[1:3] {
		for v := max(k-fixtureFPS*3/2, keys[0]+1); v < k; v++ {
			drop[video[v]] = true
		}
	}
	var pkts []media.Packet
	var want []float64
	for i, p := range fix.packets {
		if drop[i] {
			continue
		}
		pkts = append(pkts, p)
		if p.Kind == media.KindVideo {
			want = append(want, p.PTS.Seconds())
		}
	}
	slices.Sort(want)
	for _, abort := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "gaps.mp4")
		w, err := Create(path, fix.info, Options{Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, w, pkts)
		if abort {
			w.Abort()
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		p := ffprobe(t, path, true)
		vi, _, _ := p.stream(t, "video")
		var got []float64
		for _, k := range p.Packets {
			if k.StreamIndex == vi {
				got = append(got, seconds(k.PTSTime))
			}
		}
		slices.Sort(got)
		if abort { // a crash loses the last fragment at most
			if len(got) < len(want)/2 {
				t.Fatalf("aborted: %d of %d pictures", len(got), len(want))
			}
			want = want[:len(got)]
		}
		if len(got) != len(want) {
			t.Fatalf("abort=%v: %d pictures, want %d", abort, len(got), len(want))
		}
		// The finished file starts at the first picture; the fragmented
		// one at the timeline shift (package doc): compare offsets.
		for i := range got {
			if d := (got[i] - got[0]) - (want[i] - want[0]); math.Abs(d) > 0.001 {
				t.Fatalf("abort=%v: picture %d at %.3f s, want %.3f s (after the first)", abort, i, got[i]-got[0], want[i]-want[0])
			}
		}
		decodeAll(t, path)
	}
}
