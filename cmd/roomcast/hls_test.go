package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// hlsPlaylist is what the tests read from index.m3u8.
type hlsPlaylist struct {
	initURI string
	names   []string
	durs    []float64
	ended   bool
	vod     bool
	seq     int
}

// parseHLS checks the playlist's shape (RFC 8216 4.3) and returns it; an
// error means a reader saw a broken playlist.
func parseHLS(b []byte) (hlsPlaylist, error) {
	var p hlsPlaylist
	if !bytes.HasPrefix(b, []byte("#EXTM3U\n")) || !bytes.HasSuffix(b, []byte("\n")) {
		return p, fmt.Errorf("playlist not complete: %q", b)
	}
	dur := -1.0
	target := 0
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "#EXT-X-TARGETDURATION":
			target, _ = strconv.Atoi(v)
		case "#EXT-X-MEDIA-SEQUENCE":
			p.seq, _ = strconv.Atoi(v)
		case "#EXT-X-MAP":
			p.initURI = strings.Trim(strings.TrimPrefix(v, "URI="), `"`)
		case "#EXT-X-ENDLIST":
			p.ended = true
		case "#EXT-X-PLAYLIST-TYPE":
			p.vod = v == "VOD"
		case "#EXTINF":
			d, err := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if err != nil {
				return p, err
			}
			dur = d
		default:
			if strings.HasPrefix(l, "#") {
				continue
			}
			if dur < 0 {
				return p, fmt.Errorf("segment %q without EXTINF", l)
			}
			if math.Round(dur) > float64(target) {
				return p, fmt.Errorf("segment %s lasts %.3f s, target %d", l, dur, target)
			}
			p.names, p.durs, dur = append(p.names, l), append(p.durs, dur), -1
		}
	}
	if p.initURI == "" || target == 0 {
		return p, fmt.Errorf("no EXT-X-MAP or target duration: %q", b)
	}
	return p, nil
}

// completeBoxes checks that b is a whole sequence of ISO BMFF boxes of the
// given top-level types (a half-written file fails).
func completeBoxes(b []byte, types ...string) error {
	var got []string
	for len(b) > 0 {
		if len(b) < 8 {
			return fmt.Errorf("%d trailing bytes", len(b))
		}
		n := int(binary.BigEndian.Uint32(b))
		if n < 8 || n > len(b) {
			return fmt.Errorf("box %q of %d bytes, %d left", b[4:8], n, len(b))
		}
		got = append(got, string(b[4:8]))
		b = b[n:]
	}
	if strings.Join(got, ",") != strings.Join(types, ",") {
		return fmt.Errorf("boxes %v, want %v", got, types)
	}
	return nil
}

func readHLS(t *testing.T, dir string) hlsPlaylist {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := parseHLS(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// decodeSegment decodes init+segment with ffmpeg and returns the key flags
// of its video frames in presentation order.
func decodeSegment(t *testing.T, init, seg []byte) ([]frameInfo, error) {
	f, err := os.CreateTemp(t.TempDir(), "seg-*.mp4")
	if err != nil {
		return nil, err
	}
	f.Write(init)
	f.Write(seg)
	f.Close()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", f.Name(), "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		return nil, fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	return probeFrames(t, f.Name(), "v", 0), nil
}

// TestHLSLive runs a live demo with --hls next to the MP4 while a reader
// polls the directory as hard as a crowd of players would: every playlist it
// reads is whole and names only whole segments, each of which decodes and
// starts with a keyframe; ffmpeg follows the live playlist to its end without
// an error; the final playlist is the VOD of the whole broadcast, as long as
// the MP4 within a segment.
func TestHLSLive(t *testing.T) {
	e2e(t)
	dir := t.TempDir()
	out, hdir := filepath.Join(dir, "live.mp4"), filepath.Join(dir, "hls")
	cmd := exec.Command(bin, "demo", "--duration", "14s", "-o", out, "--hls", hdir, "--hls-window", "3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	// The hard reader: no pause between reads.
	var mu sync.Mutex
	var problems []string
	seen := map[string][]byte{}
	reads := 0
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var init []byte
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(filepath.Join(hdir, "index.m3u8"))
			if err != nil {
				time.Sleep(time.Millisecond) // not there yet
				continue
			}
			p, err := parseHLS(b)
			mu.Lock()
			reads++
			if err != nil {
				problems = append(problems, err.Error())
			}
			mu.Unlock()
			if init == nil {
				if init, err = os.ReadFile(filepath.Join(hdir, p.initURI)); err != nil {
					mu.Lock()
					problems = append(problems, "init: "+err.Error())
					mu.Unlock()
				}
			}
			for _, n := range p.names {
				seg, err := os.ReadFile(filepath.Join(hdir, n))
				if err == nil {
					err = completeBoxes(seg, "moof", "mdat")
				}
				mu.Lock()
				if err != nil {
					problems = append(problems, n+": "+err.Error())
				} else if old, ok := seen[n]; ok && !bytes.Equal(old, seg) {
					problems = append(problems, n+" changed after it was listed")
				} else {
					seen[n] = seg
				}
				mu.Unlock()
			}
		}
	}()

	// Mid-run: ffmpeg follows the live playlist (from its live edge) until
	// the ENDLIST appears.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(hdir, "index.m3u8"))
		if p, err := parseHLS(b); err == nil && len(p.names) >= 2 {
			if p.ended {
				t.Fatal("the broadcast ended before the live test started")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live playlist after 30 s\n%s", tail(stderr.String(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	liveOut, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", filepath.Join(hdir, "index.m3u8"),
		"-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(liveOut)) > 0 {
		t.Errorf("ffmpeg on the live playlist: %v\n%s", err, liveOut)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, tail(stderr.String(), 20))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("demo did not end")
	}
	close(stop)
	<-readerDone
	if len(problems) > 0 {
		t.Errorf("%d of %d reads saw a broken file, first: %s", len(problems), reads, problems[0])
	}
	if len(seen) < 5 || reads < 100 {
		t.Errorf("the reader read only %d playlists and %d segments", reads, len(seen))
	}
	t.Logf("reader: %d playlist reads, %d distinct segments", reads, len(seen))

	vod := readHLS(t, hdir)
	if !vod.ended || !vod.vod || vod.seq != 0 {
		t.Fatalf("final playlist is not a VOD: %+v", vod)
	}
	// Every segment a reader saw is the one in the replay, decodes alone
	// (after the init segment) and starts with its only keyframe.
	init, err := os.ReadFile(filepath.Join(hdir, vod.initURI))
	if err != nil {
		t.Fatal(err)
	}
	if err := completeBoxes(init, "ftyp", "moov"); err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for i, n := range vod.names {
		total += vod.durs[i]
		seg, err := os.ReadFile(filepath.Join(hdir, n))
		if err != nil {
			t.Fatal(err)
		}
		if old, ok := seen[n]; ok && !bytes.Equal(old, seg) {
			t.Errorf("%s differs from what the live reader saw", n)
		}
		frames, err := decodeSegment(t, init, seg)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		keys := 0
		for _, f := range frames {
			if f.Key {
				keys++
			}
		}
		if len(frames) == 0 || !frames[0].Key || keys != 1 {
			t.Errorf("%s: %d frames, first key %v, %d keyframes (want one, first)", n, len(frames), len(frames) > 0 && frames[0].Key, keys)
		}
		if i < len(vod.names)-1 && math.Abs(vod.durs[i]-2) > 0.01 {
			t.Errorf("%s lasts %.3f s, want 2", n, vod.durs[i])
		}
	}
	vodOut, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", filepath.Join(hdir, "index.m3u8"), "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(vodOut)) > 0 {
		t.Errorf("ffmpeg on the VOD playlist: %v\n%s", err, vodOut)
	}
	hlsDur := atof(ffprobe(t, filepath.Join(hdir, "index.m3u8")).Format.Duration)
	mp4Dur := atof(ffprobe(t, out).Format.Duration)
	if math.Abs(hlsDur-mp4Dur) > 2 || math.Abs(total-mp4Dur) > 2 {
		t.Errorf("VOD lasts %.3f s (playlist %.3f), the MP4 %.3f s: more than a segment apart", hlsDur, total, mp4Dur)
	}
	t.Logf("VOD %.3f s in %d segments, MP4 %.3f s", hlsDur, len(vod.names), mp4Dur)
}

// TestHLSWindowOnly: with --hls-window-only the segments that left the
// window are deleted and the final playlist is the last window, which plays.
func TestHLSWindowOnly(t *testing.T) {
	e2e(t)
	hdir := filepath.Join(t.TempDir(), "hls")
	mustCLI(t, "demo", "--fast", "--duration", "20s", "--hls", hdir, "--hls-window", "3", "--hls-window-only")
	p := readHLS(t, hdir)
	if !p.ended || p.vod || len(p.names) != 3 || p.seq != 7 {
		t.Errorf("final playlist %+v, want the last 3 of 10 segments with ENDLIST", p)
	}
	ents, _ := os.ReadDir(hdir)
	var segs []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".m4s") {
			segs = append(segs, e.Name())
		}
	}
	if strings.Join(segs, ",") != strings.Join(p.names, ",") {
		t.Errorf("segments on disk %v, listed %v", segs, p.names)
	}
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", filepath.Join(hdir, "index.m3u8"), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg: %v\n%s", err, out)
	}
	// The directory now holds a broadcast: refused without --overwrite
	// (exit 4), replaced with it.
	r := runCLI(t, "demo", "--fast", "--duration", "2s", "--hls", hdir)
	if r.code != 4 || !strings.Contains(r.stderr, "already holds a broadcast") {
		t.Errorf("second run into the same directory: exit %d\n%s", r.code, tail(r.stderr, 5))
	}
	mustCLI(t, "demo", "--fast", "--duration", "4s", "--hls", hdir, "-y")
	if p := readHLS(t, hdir); len(p.names) != 2 || !p.vod {
		t.Errorf("after overwrite: %+v", p)
	}
}
