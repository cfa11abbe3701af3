// Package hls writes roomcast's broadcast as HTTP Live Streaming (RFC 8216):
// CMAF/fragmented-MP4 segments of about two seconds, each starting at one of
// the keyframes the encoder forces, and a media playlist that is a sliding
// window while live and becomes the complete VOD playlist when the broadcast
// ends, so the same URL is first the live stream and then the replay.
//
// Files in the directory (names carry a random run prefix, so a broadcast
// written again into the same directory never reuses a segment name and
// segments can be cached as immutable):
//
//	index.m3u8          the media playlist (live window, then VOD)
//	<run>-init.mp4      the initialization segment (ftyp + moov)
//	<run>-00000.m4s     media segments (moof + mdat)
//
// Every file is written under a temporary dot-name and renamed into place,
// the playlist after the segment it announces, so a reader never sees a
// half-written segment or playlist, nor a playlist naming a missing segment.
//
// Retention: while live the playlist lists the last Options.Window segments.
// By default every segment stays on disk and the final playlist lists them
// all (the replay). With Options.WindowOnly, segments that left the window
// are deleted once clients can no longer need them (RFC 8216 6.2.2: the
// segment's duration plus the playlist's after it left), and the final
// playlist is the last window with EXT-X-ENDLIST.
//
// The boxes are written in pure Go (box.go); the package needs no cgo.
package hls

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/media"
)

// Errors, wrapped with details (errors.Is works).
var (
	// ErrCreate: the directory cannot be used (missing parent, not a
	// directory, unwritable, already holds a broadcast without Overwrite,
	// invalid StreamInfo).
	ErrCreate = errors.New("hls: cannot create output")
	// ErrDiskFull: the file system ran out of space. What was written
	// before stays playable.
	ErrDiskFull = errors.New("hls: disk full")
	// ErrWrite: any other I/O error. What was written before stays
	// playable.
	ErrWrite = errors.New("hls: write failed")
	// ErrPacket: this packet was rejected (unknown stream, DTS not
	// increasing, PTS before DTS, not H.264); the writer stays usable.
	ErrPacket = errors.New("hls: invalid packet")
	// ErrClosed: WritePacket after Close.
	ErrClosed = errors.New("hls: writer closed")
)

// PlaylistName is the media playlist's file name in the directory.
const PlaylistName = "index.m3u8"

// Defaults.
const (
	DefaultSegmentDuration = 2 * time.Second
	DefaultWindow          = 6
)

// Options tune a Writer. The zero value is usable.
type Options struct {
	// SegmentDuration is the shortest segment: a segment is cut at the
	// first video keyframe at least this long after its start. It defaults
	// to DefaultSegmentDuration (2 s), the encoder's default keyframe
	// interval, so every keyframe starts a segment.
	SegmentDuration time.Duration
	// Window is how many segments the live playlist lists. It defaults to
	// DefaultWindow (6, 12 s at 2 s segments).
	Window int
	// WindowOnly deletes segments that left the live window (no replay).
	// It defaults to false: every segment is kept and the final playlist is
	// the whole broadcast.
	WindowOnly bool
	// Playlist is the media playlist's file name in the directory. It
	// defaults to PlaylistName (index.m3u8).
	Playlist string
	// LivePlaylist, when set, is a second media playlist that always lists
	// only the live window (EXT-X-ENDLIST at the end); Playlist then lists
	// every segment written so far while live (the LiveKit egress pair
	// playlist_name / live_playlist_name). It defaults to none.
	LivePlaylist string
	// Overwrite allows a directory that already holds a broadcast; its
	// playlist and segments are removed first. It defaults to false.
	Overwrite bool
	// Log receives the writer's events (component=hls). It defaults to the
	// disabled logger.
	Log zerolog.Logger
	// Now is the wall clock for EXT-X-PROGRAM-DATE-TIME. It defaults to
	// time.Now.
	Now func() time.Time
}

// Status is a snapshot of the writer for status pages and metrics.
type Status struct {
	Segments int           // written so far
	Duration time.Duration // media time in written segments
	Bytes    int64         // bytes of segments written
	Deleted  int           // segments deleted outside the window
	Dropped  int           // video packets before the first keyframe
	Ended    bool          // the final playlist is written
}

// Writer is an HLS output. It implements recorder.Output: WritePacket and
// Close may be called from different goroutines; Status never blocks long.
type Writer struct {
	dir  string
	opts Options
	log  zerolog.Logger
	run  string

	hasVideo, hasAudio bool
	audioRate          int

	mu        sync.Mutex
	cur       *openSegment
	segs      []segment
	maxDur    time.Duration
	target    int
	shift     time.Duration
	shifted   bool
	wallStart time.Time
	lastDTS   [2]time.Duration
	seenKind  [2]bool
	deletions []deletion
	status    Status
	err       error // sticky I/O error
	done      bool
	doneErr   error
}

// openSegment collects the packets of the segment being built.
type openSegment struct {
	video, audio []media.Packet // Data already AVCC for video, copied for audio
	started      bool           // video: holds its first keyframe
	startDTS     time.Duration
}

type deletion struct {
	name string
	at   time.Duration // media time after which nobody needs it
}

// ours matches the files a Writer creates (and Overwrite removes).
var ours = regexp.MustCompile(`^(index\.m3u8|[0-9a-f]{8}-(init\.mp4|[0-9]+\.m4s)|\.tmp-.*)$`)

// SegmentName reports whether name is one of the files a Writer publishes
// (playlist, init or media segment): what a server may serve from the
// directory.
func SegmentName(name string) bool {
	return ours.MatchString(name) && name[0] != '.'
}

// Create prepares dir (created if missing; its parent must exist) and
// writes the initialization segment.
func Create(dir string, info media.StreamInfo, opts Options) (*Writer, error) {
	if opts.SegmentDuration == 0 {
		opts.SegmentDuration = DefaultSegmentDuration
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Playlist == "" {
		opts.Playlist = PlaylistName
	}
	for _, n := range []string{opts.Playlist, opts.LivePlaylist} {
		if n != "" && (filepath.Base(n) != n || n[0] == '.' || filepath.Ext(n) != ".m3u8" || ours.MatchString(n) && n != PlaylistName) {
			return nil, fmt.Errorf("%w: playlist name %q (want a file name ending in .m3u8)", ErrCreate, n)
		}
	}
	if opts.Playlist == opts.LivePlaylist {
		return nil, fmt.Errorf("%w: the live playlist needs a name of its own", ErrCreate)
	}
	if opts.SegmentDuration < 100*time.Millisecond || opts.SegmentDuration > 60*time.Second {
		return nil, fmt.Errorf("%w: segment duration %v outside [100ms, 60s]", ErrCreate, opts.SegmentDuration)
	}
	if opts.Window < 2 {
		return nil, fmt.Errorf("%w: window of %d segments (want at least 2)", ErrCreate, opts.Window)
	}
	var tracks []trackInfo
	w := &Writer{dir: dir, opts: opts}
	if info.Width > 0 || len(info.VideoConfig) > 0 {
		t, err := videoTrack(info.Width, info.Height, info.VideoConfig)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCreate, err)
		}
		tracks = append(tracks, t)
		w.hasVideo = true
	}
	if info.SampleRate > 0 {
		t, err := audioTrack(info.SampleRate, info.Channels, info.AudioBitrate, info.AudioConfig)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCreate, err)
		}
		tracks = append(tracks, t)
		w.hasAudio, w.audioRate = true, info.SampleRate
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w: stream info has neither video nor audio", ErrCreate)
	}
	if err := prepareDir(dir, opts.Overwrite, opts.Playlist, opts.LivePlaylist); err != nil {
		return nil, err
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	w.run = hex.EncodeToString(rb[:])
	w.log = opts.Log.With().Str("component", "hls").Str("dir", dir).Logger()
	w.target = targetFor(opts.SegmentDuration, 0)
	if _, err := w.publish(w.initName(), initSegment(tracks)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCreate, err)
	}
	w.log.Info().Bool("video", w.hasVideo).Bool("audio", w.hasAudio).Dur("segment", opts.SegmentDuration).
		Int("window", opts.Window).Bool("window_only", opts.WindowOnly).Msg("hls started")
	return w, nil
}

// prepareDir makes dir usable: created when missing, refused when it holds a
// broadcast (unless overwrite, then that broadcast's files are removed).
func prepareDir(dir string, overwrite bool, playlists ...string) error {
	if dir == "" {
		return fmt.Errorf("%w: empty directory name", ErrCreate)
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("%w: %w", ErrCreate, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("%w: %w", ErrCreate, err)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrCreate, dir)
	}
	if err := syscall.Access(dir, 0x2|0x1); err != nil { // W_OK|X_OK
		return fmt.Errorf("%w: directory %s is not writable: %w", ErrCreate, dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCreate, err)
	}
	var old []string
	for _, e := range ents {
		if ours.MatchString(e.Name()) || e.Name() != "" && slices.Contains(playlists, e.Name()) {
			old = append(old, e.Name())
		}
	}
	if len(old) == 0 {
		return nil
	}
	if !overwrite {
		return fmt.Errorf("%w: %s already holds a broadcast (%s)", ErrCreate, dir, old[0])
	}
	// The playlist first: a server then shows "starts soon", never a
	// playlist naming deleted segments.
	for _, name := range append(append([]string{PlaylistName}, playlists...), old...) {
		if name == "" {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: removing the old %s: %w", ErrCreate, name, err)
		}
	}
	return nil
}

func (w *Writer) initName() string { return w.run + "-init.mp4" }

// Dir is the directory the writer fills.
func (w *Writer) Dir() string { return w.dir }

// Status returns a snapshot.
func (w *Writer) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// WritePacket adds one encoded packet. Packets of each stream come in
// decoding order; the two streams interleaved roughly by DTS (as the
// recorder emits them). Video before the first keyframe is dropped (and
// counted). After an I/O error every call returns it; ErrPacket rejects only
// this packet.
func (w *Writer) WritePacket(p media.Packet) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	switch {
	case p.Kind == media.KindVideo && !w.hasVideo, p.Kind == media.KindAudio && !w.hasAudio,
		p.Kind != media.KindVideo && p.Kind != media.KindAudio:
		return fmt.Errorf("%w: no stream of kind %d", ErrPacket, p.Kind)
	case p.PTS < p.DTS:
		return fmt.Errorf("%w: PTS %v before DTS %v", ErrPacket, p.PTS, p.DTS)
	case len(p.Data) == 0:
		return fmt.Errorf("%w: empty packet", ErrPacket)
	case w.seenKind[p.Kind] && p.DTS <= w.lastDTS[p.Kind]:
		return fmt.Errorf("%w: DTS %v does not increase", ErrPacket, p.DTS)
	}
	if p.Kind == media.KindVideo {
		avcc, err := appendAVCC(nil, p.Data)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPacket, err)
		}
		p.Data = avcc
	} else {
		p.Data = append([]byte(nil), p.Data...)
	}
	w.seenKind[p.Kind], w.lastDTS[p.Kind] = true, p.DTS
	if w.wallStart.IsZero() {
		w.wallStart = w.opts.Now().Add(-p.DTS)
	}
	if w.cur == nil {
		w.cur = &openSegment{}
	}
	cur := w.cur
	switch {
	case p.Kind == media.KindAudio:
		if !w.hasVideo && !cur.started {
			cur.started, cur.startDTS = true, p.DTS
		} else if !w.hasVideo && p.DTS-cur.startDTS >= w.opts.SegmentDuration {
			if err := w.cut(p.DTS); err != nil {
				return err
			}
			w.cur.started, w.cur.startDTS = true, p.DTS
		}
		w.cur.audio = append(w.cur.audio, p)
	case !cur.started:
		if !p.Key {
			w.status.Dropped++
			return nil
		}
		cur.started, cur.startDTS = true, p.DTS
		cur.video = append(cur.video, p)
	case p.Key && p.DTS-cur.startDTS >= w.opts.SegmentDuration-cutTolerance:
		if err := w.cut(p.DTS); err != nil {
			return err
		}
		w.cur.started, w.cur.startDTS = true, p.DTS
		w.cur.video = append(w.cur.video, p)
	default:
		cur.video = append(cur.video, p)
	}
	return nil
}

// cutTolerance lets a keyframe a little early still cut (timestamps
// rounded to the encoder's time base).
const cutTolerance = 50 * time.Millisecond

// cut finishes the open segment at end (the next segment's first DTS) and
// opens the next one; audio at or after end moves to it.
func (w *Writer) cut(end time.Duration) error {
	cur := w.cur
	next := &openSegment{}
	keep := cur.audio[:0:0]
	for _, a := range cur.audio {
		if a.DTS >= end {
			next.audio = append(next.audio, a)
		} else {
			keep = append(keep, a)
		}
	}
	cur.audio = keep
	w.cur = next
	return w.finish(cur, end, true)
}

// finish writes one segment and the playlist that announces it.
func (w *Writer) finish(s *openSegment, end time.Duration, hasEnd bool) error {
	if len(s.video) == 0 && len(s.audio) == 0 {
		return nil
	}
	if !w.shifted {
		// fMP4 decode times are unsigned: shift the whole broadcast so the
		// earliest DTS (B-frame delay, AAC priming) is zero.
		minDTS := time.Duration(0)
		if len(s.video) > 0 {
			minDTS = min(minDTS, s.video[0].DTS)
		}
		if len(s.audio) > 0 {
			minDTS = min(minDTS, s.audio[0].DTS)
		}
		w.shift, w.shifted = -minDTS, true
	}
	var frags []fragment
	var start, dur time.Duration
	if len(s.video) > 0 {
		f := fragment{trackID: videoTrackID, video: true, samples: make([]sample, len(s.video))}
		for i, p := range s.video {
			dts := w.ticks(p.DTS, videoTimescale)
			f.samples[i] = sample{dts: dts, cts: int32(w.ticks(p.PTS, videoTimescale) - dts), key: p.Key, data: p.Data}
		}
		last := s.video[len(s.video)-1]
		lastEnd := last.DTS + frameDuration(s.video, last)
		if hasEnd {
			lastEnd = end
		}
		setDurations(f.samples, w.ticks(lastEnd, videoTimescale))
		frags = append(frags, f)
		start, dur = s.video[0].DTS, lastEnd-s.video[0].DTS
	}
	if len(s.audio) > 0 {
		rate := int64(w.audioRate)
		f := fragment{trackID: audioTrackID, samples: make([]sample, len(s.audio))}
		for i, p := range s.audio {
			f.samples[i] = sample{dts: w.ticks(p.DTS, rate), key: true, data: p.Data}
		}
		last := s.audio[len(s.audio)-1]
		d := last.Duration
		if d <= 0 {
			d = time.Duration(1024 * int64(time.Second) / rate)
		}
		setDurations(f.samples, w.ticks(last.DTS+d, rate))
		frags = append(frags, f)
		if len(s.video) == 0 {
			start, dur = s.audio[0].DTS, last.DTS+d-s.audio[0].DTS
			if hasEnd {
				dur = end - s.audio[0].DTS
			}
		}
	}
	seq := len(w.segs)
	if len(w.segs) > 0 {
		seq = w.segs[len(w.segs)-1].seq + 1
	}
	seg := segment{seq: seq, name: fmt.Sprintf("%s-%05d.m4s", w.run, seq), start: start, dur: dur,
		wall: w.wallStart.Add(start)}
	data := mediaSegment(uint32(seq+1), frags)
	if _, err := w.publish(seg.name, data); err != nil {
		return w.fail(err)
	}
	seg.bytes = len(data)
	w.segs = append(w.segs, seg)
	w.maxDur = max(w.maxDur, dur)
	if t := targetFor(w.opts.SegmentDuration, w.maxDur); t > w.target {
		w.log.Warn().Dur("segment", dur).Int("target", t).Msg("segment longer than the target duration (keyframes further apart than the segment duration?)")
		w.target = t
	}
	w.status.Segments++
	w.status.Bytes += int64(len(data))
	w.status.Duration += dur
	if err := w.writePlaylist(false); err != nil {
		return w.fail(err)
	}
	w.expire(start + dur)
	return nil
}

// frameDuration guesses the duration of the last frame of a run: the
// packet's own, else the previous frame's.
func frameDuration(run []media.Packet, last media.Packet) time.Duration {
	if last.Duration > 0 {
		return last.Duration
	}
	if n := len(run); n >= 2 {
		return run[n-1].DTS - run[n-2].DTS
	}
	return time.Second / 30
}

// setDurations derives each sample's duration from the next one's DTS and
// the last one's from end, so consecutive segments tile without gaps.
func setDurations(s []sample, end int64) {
	for i := range s {
		next := end
		if i+1 < len(s) {
			next = s[i+1].dts
		}
		s[i].duration = uint32(max(next-s[i].dts, 0))
	}
}

// ticks converts a media time (after the broadcast's shift) to a
// timescale, rounding to nearest.
func (w *Writer) ticks(d time.Duration, timescale int64) int64 {
	d += w.shift
	if d < 0 {
		d = 0
	}
	sec, frac := int64(d/time.Second), int64(d%time.Second)
	return sec*timescale + (frac*timescale+int64(time.Second)/2)/int64(time.Second)
}

// writePlaylist publishes the playlist: the live window, or at the end the
// whole broadcast (or the last window with WindowOnly).
func (w *Writer) writePlaylist(final bool) error {
	segs, window := w.segs, w.segs
	vod := final && !w.opts.WindowOnly
	if len(window) > w.opts.Window {
		window = window[len(window)-w.opts.Window:]
	}
	if !vod && (w.opts.LivePlaylist == "" || w.opts.WindowOnly) {
		segs = window
	}
	pl := playlist{target: w.target, initURI: w.initName(), segs: segs, ended: final, vod: vod, pdt: true}
	if _, err := w.publish(w.opts.Playlist, pl.render()); err != nil {
		return err
	}
	if w.opts.LivePlaylist == "" {
		return nil
	}
	live := playlist{target: w.target, initURI: w.initName(), segs: window, ended: final, pdt: true}
	_, err := w.publish(w.opts.LivePlaylist, live.render())
	return err
}

// expire schedules the deletion of the segment that just left the window
// and deletes those whose grace has passed (media time now).
func (w *Writer) expire(now time.Duration) {
	if !w.opts.WindowOnly {
		return
	}
	if n := len(w.segs) - w.opts.Window - 1; n >= 0 {
		// RFC 8216 6.2.2: available for its duration plus the longest
		// playlist that contained it after it left.
		var window time.Duration
		for _, s := range w.segs[n+1:] {
			window += s.dur
		}
		left := w.segs[n]
		w.deletions = append(w.deletions, deletion{name: left.name, at: now + left.dur + window})
	}
	for len(w.deletions) > 0 && w.deletions[0].at <= now {
		w.remove(w.deletions[0].name)
		w.deletions = w.deletions[1:]
	}
}

func (w *Writer) remove(name string) {
	if err := os.Remove(filepath.Join(w.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Warn().Err(err).Str("segment", name).Msg("cannot delete an expired segment")
		return
	}
	w.status.Deleted++
}

// publish writes data to dir/name atomically: a temporary dot-file, then a
// rename over the name.
func (w *Writer) publish(name string, data []byte) (int, error) {
	tmp := filepath.Join(w.dir, ".tmp-"+name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, ioError(err)
	}
	n, err := f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(w.dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return n, ioError(err)
	}
	return n, nil
}

func ioError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	}
	return fmt.Errorf("%w: %w", ErrWrite, err)
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
		w.log.Error().Err(err).Int("segments", len(w.segs)).Msg("hls stopped; what was written stays playable")
	}
	return w.err
}

// Close writes the open segment and the final playlist (VOD with every
// segment, or the last window with WindowOnly), both ending in
// EXT-X-ENDLIST. Idempotent: later calls return the same result.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return w.doneErr
	}
	w.done = true
	if w.err == nil && w.cur != nil {
		cur := w.cur
		w.cur = nil
		_ = w.finish(cur, 0, false)
	}
	if w.err == nil {
		if err := w.writePlaylist(true); err != nil {
			w.fail(err)
		} else {
			w.status.Ended = true
		}
	}
	for _, d := range w.deletions {
		w.remove(d.name)
	}
	w.deletions = nil
	w.doneErr = w.err
	w.log.Info().Int("segments", w.status.Segments).Dur("duration", w.status.Duration).
		Int("deleted", w.status.Deleted).Int("dropped", w.status.Dropped).Msg("hls finished")
	return w.doneErr
}
