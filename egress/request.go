package egress

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"

	"github.com/roomcast/roomcast/compositor"
	"github.com/roomcast/roomcast/hls"
	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/recorder"
	"github.com/roomcast/roomcast/room"
	"github.com/roomcast/roomcast/session"
)

// ErrUnsupported: the request asks for something roomcast does not do
// (a custom web template, a cloud upload, a codec it does not encode...).
// Such a request is answered at once with a failed EgressInfo naming the
// reason; it is never accepted and then dropped.
var ErrUnsupported = errors.New("egress: request not supported by roomcast")

// ErrBadRequest: the request names something that is not there (a track
// not published in the room). It is answered like ErrUnsupported.
var ErrBadRequest = errors.New("egress: bad request")

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, a...))
}

// plan is what one request asks of a session.
type plan struct {
	roomName string
	// kind names the request's type (for messages); roomComposite is
	// true for a room composite, the one request with a layout.
	kind          string
	roomComposite bool
	// only, when set, records just these participants (participant and
	// track composite egress).
	only     []string
	pipeline recorder.Config
	// file is the MP4's path (absolute, inside the worker's output
	// directory); "" for none.
	file string
	// streams are RTMP(S) URLs (they may hold stream keys: never logged).
	streams []string
	// hls is the segment output (HLS into a directory inside the output
	// directory); a zero dir for none.
	hls hlsPlan
	// tracks picks the tracks recorded (participant and track composite
	// egress); heard are identities heard without a camera tile.
	tracks room.TrackSelector
	heard  []string
	// trackIDs are a track composite's track SIDs (audio, video; either
	// ""): the worker resolves them to their publishers (resolveTracks).
	audioTrack, videoTrack string
}

// hlsPlan is a SegmentedFileOutput in roomcast's terms.
type hlsPlan struct {
	dir                    string // absolute
	playlist, livePlaylist string
	segment                time.Duration
}

// encoding is a LiveKit preset or advanced options in roomcast's terms.
type encoding struct {
	width, height, fps int
	videoBitrate       int // bits/s
	audioBitrate       int // bits/s
	keyint             time.Duration
	profile            string
}

// defaultEncoding is LiveKit's default preset, H264_720P_30 (3000 kb/s).
var defaultEncoding = encoding{width: 1280, height: 720, fps: 30, videoBitrate: 3_000_000, audioBitrate: 128_000}

func presetEncoding(p livekit.EncodingOptionsPreset) (encoding, error) {
	e := defaultEncoding
	switch p {
	case livekit.EncodingOptionsPreset_H264_720P_30:
	case livekit.EncodingOptionsPreset_H264_720P_60:
		e.fps, e.videoBitrate = 60, 4_500_000
	case livekit.EncodingOptionsPreset_H264_1080P_30:
		e.width, e.height, e.videoBitrate = 1920, 1080, 4_500_000
	case livekit.EncodingOptionsPreset_H264_1080P_60:
		e.width, e.height, e.fps, e.videoBitrate = 1920, 1080, 60, 6_000_000
	case livekit.EncodingOptionsPreset_PORTRAIT_H264_720P_30:
		e.width, e.height = 720, 1280
	case livekit.EncodingOptionsPreset_PORTRAIT_H264_720P_60:
		e.width, e.height, e.fps, e.videoBitrate = 720, 1280, 60, 4_500_000
	case livekit.EncodingOptionsPreset_PORTRAIT_H264_1080P_30:
		e.width, e.height, e.videoBitrate = 1080, 1920, 4_500_000
	case livekit.EncodingOptionsPreset_PORTRAIT_H264_1080P_60:
		e.width, e.height, e.fps, e.videoBitrate = 1080, 1920, 60, 6_000_000
	default:
		return e, unsupported("encoding preset %v", p)
	}
	return e, nil
}

// advancedEncoding maps EncodingOptions; zero fields keep LiveKit's
// documented defaults (1920x1080, 30 fps, 4500 kb/s, 128 kb/s).
func advancedEncoding(o *livekit.EncodingOptions) (encoding, error) {
	e := encoding{width: 1920, height: 1080, fps: 30, videoBitrate: 4_500_000, audioBitrate: 128_000}
	if o.Width != 0 || o.Height != 0 {
		e.width, e.height = int(o.Width), int(o.Height)
	}
	if e.width < 16 || e.height < 16 || e.width > 7680 || e.height > 4320 || e.width%2 != 0 || e.height%2 != 0 {
		return e, unsupported("size %dx%d (want even sizes from 16x16 to 7680x4320)", o.Width, o.Height)
	}
	if o.Framerate != 0 {
		e.fps = int(o.Framerate)
	}
	if e.fps < 1 || e.fps > 120 {
		return e, unsupported("frame rate %d (want 1 to 120)", o.Framerate)
	}
	if o.VideoBitrate != 0 {
		e.videoBitrate = int(o.VideoBitrate) * 1000
	}
	if e.videoBitrate < 50_000 {
		return e, unsupported("video bitrate %d kb/s (want at least 50)", o.VideoBitrate)
	}
	if o.AudioBitrate != 0 {
		e.audioBitrate = int(o.AudioBitrate) * 1000
	}
	if e.audioBitrate < 16_000 || e.audioBitrate > 512_000 {
		return e, unsupported("audio bitrate %d kb/s (want 16 to 512)", o.AudioBitrate)
	}
	if o.KeyFrameInterval < 0 || o.KeyFrameInterval > 60 {
		return e, unsupported("key frame interval %gs (want up to 60 s)", o.KeyFrameInterval)
	}
	e.keyint = time.Duration(o.KeyFrameInterval * float64(time.Second))
	switch o.AudioCodec {
	case livekit.AudioCodec_DEFAULT_AC, livekit.AudioCodec_AAC:
	default:
		return e, unsupported("audio codec %v (roomcast encodes AAC)", o.AudioCodec)
	}
	switch o.VideoCodec {
	case livekit.VideoCodec_DEFAULT_VC:
	case livekit.VideoCodec_H264_BASELINE:
		e.profile = "baseline"
	case livekit.VideoCodec_H264_MAIN:
		e.profile = "main"
	case livekit.VideoCodec_H264_HIGH:
		e.profile = "high"
	default:
		return e, unsupported("video codec %v (roomcast encodes H.264)", o.VideoCodec)
	}
	return e, nil
}

// layoutKind maps LiveKit's template layouts (and their -light/-dark
// variants) to roomcast's layouts.
func layoutKind(l string) (layout.Kind, error) {
	base := strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(l), "-light"), "-dark")
	switch base {
	case "", "grid":
		return layout.Grid, nil
	case "speaker":
		return layout.Speaker, nil
	case "single-speaker":
		return layout.Single, nil
	}
	return "", unsupported("layout %q (want grid, speaker or single-speaker)", l)
}

// outputs collects a request's outputs. Cloud uploads, images, segments
// and non-MP4 files are refused.
type outputs struct {
	files    []*livekit.EncodedFileOutput
	streams  []*livekit.StreamOutput
	segments []*livekit.SegmentedFileOutput
	images   []*livekit.ImageOutput
}

// buildPlan maps a StartEgressRequest to a session plan. Every refusal
// wraps ErrUnsupported and says why.
func buildPlan(req *rpc.StartEgressRequest, outputDir string, now time.Time) (*plan, error) {
	var (
		p    plan
		enc  = defaultEncoding
		kind = layout.Grid
		outs outputs
		err  error
		// noVideo, noAudio: an audio-only or video-only output.
		noVideo, noAudio bool
	)
	options := func(preset livekit.EncodingOptionsPreset, adv *livekit.EncodingOptions) error {
		if adv != nil {
			enc, err = advancedEncoding(adv)
		} else {
			enc, err = presetEncoding(preset)
		}
		return err
	}
	switch r := req.Request.(type) {
	case *rpc.StartEgressRequest_RoomComposite:
		rc := r.RoomComposite
		p.roomName, p.kind, p.roomComposite = rc.RoomName, "room composite", true
		if rc.CustomBaseUrl != "" {
			return nil, unsupported("custom web templates (custom_base_url): roomcast composites the room itself, without a browser")
		}
		if rc.AudioOnly && rc.VideoOnly {
			return nil, unsupported("audio_only and video_only together (nothing to record)")
		}
		// Audio-only: no camera is subscribed or decoded, no picture
		// drawn or encoded; video-only: no microphone, no audio encoder.
		noVideo, noAudio = rc.AudioOnly, rc.VideoOnly
		if rc.AudioMixing != livekit.AudioMixing_DEFAULT_MIXING {
			return nil, unsupported("audio mixing %v", rc.AudioMixing)
		}
		if len(rc.Webhooks) > 0 {
			return nil, unsupported("per-request webhooks (the server's webhooks report egress events)")
		}
		if kind, err = layoutKind(rc.Layout); err != nil {
			return nil, err
		}
		if err := options(rc.GetPreset(), rc.GetAdvanced()); err != nil {
			return nil, err
		}
		outs = outputs{files: rc.FileOutputs, streams: rc.StreamOutputs, segments: rc.SegmentOutputs, images: rc.ImageOutputs}
		switch o := rc.Output.(type) {
		case *livekit.RoomCompositeEgressRequest_File:
			outs.files = append(outs.files, o.File)
		case *livekit.RoomCompositeEgressRequest_Stream:
			outs.streams = append(outs.streams, o.Stream)
		case *livekit.RoomCompositeEgressRequest_Segments:
			outs.segments = append(outs.segments, o.Segments)
		}
	case *rpc.StartEgressRequest_Participant:
		pe := r.Participant
		p.roomName, p.only, p.kind = pe.RoomName, []string{pe.Identity}, "participant"
		if pe.Identity == "" {
			return nil, unsupported("participant egress without an identity")
		}
		// LiveKit's participant egress: the camera and microphone, or with
		// screen_share the screen (and its sound) with the microphone, the
		// presenter's camera tile left out so the screen fills the picture.
		p.tracks.Sources = []room.Source{room.SourceCamera, room.SourceMicrophone}
		if pe.ScreenShare {
			p.tracks.Sources = []room.Source{room.SourceScreenShare, room.SourceScreenShareAudio, room.SourceMicrophone}
			p.heard = []string{pe.Identity}
		}
		if len(pe.Webhooks) > 0 {
			return nil, unsupported("per-request webhooks (the server's webhooks report egress events)")
		}
		kind = layout.Single
		if err := options(pe.GetPreset(), pe.GetAdvanced()); err != nil {
			return nil, err
		}
		outs = outputs{files: pe.FileOutputs, streams: pe.StreamOutputs, segments: pe.SegmentOutputs, images: pe.ImageOutputs}
	case *rpc.StartEgressRequest_Web:
		return nil, unsupported("web egress (recording a web page needs a browser)")
	case *rpc.StartEgressRequest_TrackComposite:
		tc := r.TrackComposite
		p.roomName, p.kind = tc.RoomName, "track composite"
		if tc.AudioTrackId == "" && tc.VideoTrackId == "" {
			return nil, unsupported("track composite without a track (audio_track_id and/or video_track_id)")
		}
		if len(tc.Webhooks) > 0 {
			return nil, unsupported("per-request webhooks (the server's webhooks report egress events)")
		}
		// One tile (the video track) and one sound (the audio track); a
		// missing one makes an audio-only or video-only output. The
		// worker finds the tracks' publishers before accepting.
		p.audioTrack, p.videoTrack = tc.AudioTrackId, tc.VideoTrackId
		p.tracks.SIDs = slices.DeleteFunc([]string{tc.AudioTrackId, tc.VideoTrackId}, func(s string) bool { return s == "" })
		noVideo, noAudio = tc.VideoTrackId == "", tc.AudioTrackId == ""
		kind = layout.Single
		if err := options(tc.GetPreset(), tc.GetAdvanced()); err != nil {
			return nil, err
		}
		outs = outputs{files: tc.FileOutputs, streams: tc.StreamOutputs, segments: tc.SegmentOutputs, images: tc.ImageOutputs}
		switch o := tc.Output.(type) {
		case *livekit.TrackCompositeEgressRequest_File:
			outs.files = append(outs.files, o.File)
		case *livekit.TrackCompositeEgressRequest_Stream:
			outs.streams = append(outs.streams, o.Stream)
		case *livekit.TrackCompositeEgressRequest_Segments:
			outs.segments = append(outs.segments, o.Segments)
		}
	case *rpc.StartEgressRequest_Track:
		return nil, unsupported("track egress (a single track without re-encoding)")
	default:
		return nil, unsupported("request type %T", req.Request)
	}
	if p.roomName == "" {
		return nil, unsupported("no room name")
	}
	if len(outs.segments) > 1 {
		return nil, unsupported("more than one segment output")
	}
	for _, sg := range outs.segments {
		if p.hls, err = segmentPlan(sg, outputDir, req.EgressId, p.roomName, req.RoomId, now); err != nil {
			return nil, err
		}
	}
	if len(outs.images) > 0 {
		return nil, unsupported("image outputs")
	}
	if len(outs.files) > 1 {
		return nil, unsupported("more than one file output")
	}
	for _, f := range outs.files {
		if f.Output != nil {
			return nil, unsupported("cloud upload (%s): roomcast writes files to the worker's --output-dir", uploadName(f.Output))
		}
		switch f.FileType {
		case livekit.EncodedFileType_DEFAULT_FILETYPE, livekit.EncodedFileType_MP4:
		default:
			return nil, unsupported("file type %v (roomcast writes MP4)", f.FileType)
		}
		if p.file, err = filePath(outputDir, f.Filepath, req.EgressId, p.roomName, req.RoomId, now); err != nil {
			return nil, err
		}
	}
	for _, s := range outs.streams {
		switch s.Protocol {
		case livekit.StreamProtocol_DEFAULT_PROTOCOL, livekit.StreamProtocol_RTMP:
		default:
			return nil, unsupported("stream protocol %v (roomcast streams RTMP and RTMPS)", s.Protocol)
		}
		for _, u := range s.Urls {
			if err := checkStreamURL(u); err != nil {
				return nil, err
			}
			p.streams = append(p.streams, u)
		}
	}
	if p.file == "" && len(p.streams) == 0 && p.hls.dir == "" {
		return nil, unsupported("no output (a file, segment or stream output is needed)")
	}
	p.pipeline = recorder.Config{
		Compositor: compositor.Config{Width: enc.width, Height: enc.height, FPS: enc.fps, Layout: kind,
			NoVideo: noVideo, NoAudio: noAudio},
		Encoding: recorder.Encoding{
			VideoBitrate: enc.videoBitrate, AudioBitrate: enc.audioBitrate, KeyframeInterval: enc.keyint,
			Profile: enc.profile,
		},
	}
	if p.file == "" && p.hls.dir == "" {
		// Stream-only: constant rate and no B-frames suit the ingests.
		p.pipeline.Encoding.Preset = "stream"
	}
	return &p, nil
}

func uploadName(o any) string {
	switch o.(type) {
	case *livekit.EncodedFileOutput_S3:
		return "S3"
	case *livekit.EncodedFileOutput_Gcp:
		return "GCP"
	case *livekit.EncodedFileOutput_Azure:
		return "Azure"
	case *livekit.EncodedFileOutput_AliOSS:
		return "AliOSS"
	}
	return fmt.Sprintf("%T", o)
}

// checkStreamURL accepts rtmp:// and rtmps:// URLs (the key is never
// echoed in the error).
func checkStreamURL(u string) error {
	// roomcast's own CLI expands ${ENV} and ${file:…} in stream URLs; a
	// request from the API must never read the worker's environment or
	// files (its API secret would leave in a stream key).
	if strings.Contains(u, "${") {
		return unsupported("stream URL %s: ${…} substitutions are not allowed in requests", redactURL(u))
	}
	if strings.HasPrefix(u, "rtmp://") || strings.HasPrefix(u, "rtmps://") {
		return nil
	}
	return unsupported("stream URL %s (want rtmp:// or rtmps://)", redactURL(u))
}

// filePath expands LiveKit's filename template ({room_name}, {room_id},
// {egress_id}, {time}, {utc}) under the output directory. An empty path or
// a directory (ending in "/") gets "{room_name}-{time}.mp4"; a path without
// an extension gets ".mp4". The result must stay inside outputDir.
func filePath(outputDir, tmpl, egressID, roomName, roomID string, now time.Time) (string, error) {
	if tmpl == "" || strings.HasSuffix(tmpl, "/") {
		tmpl += "{room_name}-{time}.mp4"
	}
	name := expand(tmpl, egressID, roomName, roomID, now)
	if filepath.Ext(name) == "" {
		name += ".mp4"
	} else if !strings.EqualFold(filepath.Ext(name), ".mp4") {
		return "", unsupported("file name %q (roomcast writes .mp4 files)", filepath.Base(name))
	}
	return inside(outputDir, name, tmpl)
}

// expand fills LiveKit's filename template.
func expand(tmpl, egressID, roomName, roomID string, now time.Time) string {
	return strings.NewReplacer(
		"{room_name}", safeName(roomName), "{room_id}", safeName(roomID), "{egress_id}", safeName(egressID),
		"{time}", now.Format("2006-01-02T150405"), "{utc}", now.UTC().Format("20060102150405"),
	).Replace(tmpl)
}

// inside resolves name under outputDir, refusing paths that leave it.
func inside(outputDir, name, tmpl string) (string, error) {
	base, err := filepath.Abs(outputDir)
	if err != nil {
		return "", err
	}
	var full string
	if filepath.IsAbs(name) {
		full = filepath.Clean(name)
	} else {
		full = filepath.Join(base, name)
	}
	if rel, err := filepath.Rel(base, full); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", unsupported("file path %q is outside the worker's output directory", tmpl)
	}
	return full, nil
}

// playlistName is the playlist's file name (hls's default when unnamed).
func (h hlsPlan) playlistName() string {
	if h.playlist == "" {
		return hls.PlaylistName
	}
	return h.playlist
}

// session is the session's HLS output (zero without segments).
func (h hlsPlan) session(keyint time.Duration) session.HLS {
	if h.dir == "" {
		return session.HLS{}
	}
	return session.HLS{Dir: h.dir, SegmentDuration: h.segment, KeyframeInterval: keyint,
		Playlist: h.playlist, LivePlaylist: h.livePlaylist}
}

// DefaultSegmentDuration is LiveKit's segment_duration default.
const DefaultSegmentDuration = 4 * time.Second

// segmentPlan maps a SegmentedFileOutput: HLS (CMAF segments) into the
// directory filename_prefix names (a template, inside the output directory;
// default "{room_name}-{time}"), with the playlists named by playlist_name
// (default index.m3u8) and live_playlist_name (the live window). Segment
// file names are roomcast's own (<run>-00000.m4s). Uploads, MPEG-TS-only
// naming by timestamp and manifest-less output are refused.
func segmentPlan(sg *livekit.SegmentedFileOutput, outputDir, egressID, roomName, roomID string, now time.Time) (hlsPlan, error) {
	var h hlsPlan
	if sg.Output != nil {
		return h, unsupported("cloud upload of segments: roomcast writes segments to the worker's --output-dir")
	}
	if sg.Protocol != livekit.SegmentedFileProtocol_DEFAULT_SEGMENTED_FILE_PROTOCOL && sg.Protocol != livekit.SegmentedFileProtocol_HLS_PROTOCOL {
		return h, unsupported("segment protocol %v (roomcast writes HLS)", sg.Protocol)
	}
	if sg.FilenameSuffix == livekit.SegmentedFileSuffix_TIMESTAMP {
		return h, unsupported("segment names by timestamp (roomcast numbers its segments)")
	}
	if sg.DisableManifest {
		return h, unsupported("segments without a playlist (disable_manifest)")
	}
	tmpl := strings.TrimSuffix(sg.FilenamePrefix, "/")
	if tmpl == "" {
		tmpl = "{room_name}-{time}"
	}
	dir, err := inside(outputDir, expand(tmpl, egressID, roomName, roomID, now), sg.FilenamePrefix)
	if err != nil {
		return h, err
	}
	base, _ := filepath.Abs(outputDir)
	if dir == base {
		return h, unsupported("segments need a directory of their own (filename_prefix %q names the output directory)", sg.FilenamePrefix)
	}
	h.dir = dir
	for _, n := range []*string{&sg.PlaylistName, &sg.LivePlaylistName} {
		name := expand(*n, egressID, roomName, roomID, now)
		if name != "" && filepath.Ext(name) == "" {
			name += ".m3u8"
		}
		if name != "" && (filepath.Base(name) != name || name[0] == '.' || filepath.Ext(name) != ".m3u8") {
			return h, unsupported("playlist name %q (want a file name ending in .m3u8, beside the segments)", *n)
		}
		if n == &sg.PlaylistName {
			h.playlist = name
		} else {
			h.livePlaylist = name
		}
	}
	if h.playlistName() == h.livePlaylist {
		return h, unsupported("playlist_name and live_playlist_name are the same file")
	}
	h.segment = DefaultSegmentDuration
	if sg.SegmentDuration != 0 {
		h.segment = time.Duration(sg.SegmentDuration) * time.Second
	}
	if h.segment > 60*time.Second {
		return h, unsupported("segment duration %d s (want up to 60)", sg.SegmentDuration)
	}
	return h, nil
}

// safeName keeps a room name or id from adding path elements.
func safeName(s string) string {
	return strings.NewReplacer("/", "_", "\\", "_", "..", "_").Replace(s)
}
