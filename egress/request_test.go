package egress

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/livekit/protocol/rpc"

	"github.com/roomcast/roomcast/layout"
	"github.com/roomcast/roomcast/room"
)

func rcReq(rc *livekit.RoomCompositeEgressRequest) *rpc.StartEgressRequest {
	return &rpc.StartEgressRequest{EgressId: "EG_x", RoomId: "RM_y", Request: &rpc.StartEgressRequest_RoomComposite{RoomComposite: rc}}
}

func file(p string) []*livekit.EncodedFileOutput { return []*livekit.EncodedFileOutput{{Filepath: p}} }

func TestBuildPlanRefusals(t *testing.T) {
	cases := []struct {
		name string
		req  *rpc.StartEgressRequest
		want string // in the error
	}{
		{"template", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", CustomBaseUrl: "https://x", FileOutputs: file("a")}), "custom web templates"},
		{"audio and video only", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", AudioOnly: true, VideoOnly: true, FileOutputs: file("a")}), "nothing to record"},
		{"s3", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: []*livekit.EncodedFileOutput{{Output: &livekit.EncodedFileOutput_S3{S3: &livekit.S3Upload{}}}}}), "cloud upload (S3)"},
		{"ogg", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: []*livekit.EncodedFileOutput{{FileType: livekit.EncodedFileType_OGG}}}), "file type"},
		{"segments upload", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{Output: &livekit.SegmentedFileOutput_S3{S3: &livekit.S3Upload{}}}}}), "cloud upload of segments"},
		{"segments by timestamp", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenameSuffix: livekit.SegmentedFileSuffix_TIMESTAMP}}}), "timestamp"},
		{"segments without playlist", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{DisableManifest: true}}}), "disable_manifest"},
		{"segments escape", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "../up"}}}), "outside"},
		{"segments in the output dir", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "./"}}}), "directory of their own"},
		{"playlist path", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "s", PlaylistName: "../p.m3u8"}}}), "playlist name"},
		{"same playlists", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "s", LivePlaylistName: "index.m3u8"}}}), "same file"},
		{"two segment outputs", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "a"}, {FilenamePrefix: "b"}}}), "more than one segment output"},
		{"track composite without tracks", &rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_TrackComposite{TrackComposite: &livekit.TrackCompositeEgressRequest{RoomName: "r", FileOutputs: file("a")}}}, "without a track"},
		{"no output", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r"}), "no output"},
		{"no room", rcReq(&livekit.RoomCompositeEgressRequest{FileOutputs: file("a")}), "no room"},
		{"layout", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", Layout: "mosaic", FileOutputs: file("a")}), "layout"},
		{"escape", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: file("../../etc/x.mp4")}), "outside"},
		{"absolute", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: file("/etc/x.mp4")}), "outside"},
		{"env in key", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://h/live/${LIVEKIT_API_SECRET}"}}}}), "substitutions"},
		{"file in key", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://h/live/${file:/etc/shadow}"}}}}), "substitutions"},
		{"srt", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_SRT, Urls: []string{"srt://h:1"}}}}), "protocol"},
		{"vp8", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: file("a"), Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{VideoCodec: livekit.VideoCodec_VP8}}}), "video codec"},
		{"odd size", rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", FileOutputs: file("a"), Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{Width: 641, Height: 360}}}), "size"},
		{"web", &rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_Web{Web: &livekit.WebEgressRequest{Url: "https://x"}}}, "web egress"},
		{"track", &rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_Track{Track: &livekit.TrackEgressRequest{RoomName: "r"}}}, "track egress"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := buildPlan(c.req, dir, time.Now())
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrUnsupported naming %q", err, c.want)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "shadow") {
				t.Fatalf("error echoes the stream key: %v", err)
			}
		})
	}
}

func TestBuildPlan(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	p, err := buildPlan(rcReq(&livekit.RoomCompositeEgressRequest{
		RoomName: "weekly/../x", Layout: "speaker-dark", FileOutputs: file("rec/{room_name}-{utc}"),
		Options:       &livekit.RoomCompositeEgressRequest_Preset{Preset: livekit.EncodingOptionsPreset_PORTRAIT_H264_1080P_60},
		StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmps://h/live/key"}}},
	}), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	cc := p.pipeline.Compositor
	if cc.Width != 1080 || cc.Height != 1920 || cc.FPS != 60 || cc.Layout != layout.Speaker || p.pipeline.Encoding.VideoBitrate != 6_000_000 {
		t.Fatalf("pipeline %+v", p.pipeline)
	}
	if want := filepath.Join(dir, "rec", "weekly___x-20261130180000.mp4"); p.file != want {
		t.Fatalf("file %q, want %q", p.file, want)
	}
	if len(p.streams) != 1 || p.roomName != "weekly/../x" {
		t.Fatalf("plan %+v", p)
	}
	// Participant egress: one identity, the single layout, LiveKit's
	// advanced defaults for zero fields.
	p, err = buildPlan(&rpc.StartEgressRequest{EgressId: "EG_1", Request: &rpc.StartEgressRequest_Participant{
		Participant: &livekit.ParticipantEgressRequest{RoomName: "r", Identity: "alice", FileOutputs: file("dir/"),
			Options: &livekit.ParticipantEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{Framerate: 25, KeyFrameInterval: 1.5}}}}}, dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.only) != 1 || p.only[0] != "alice" || p.pipeline.Compositor.Layout != layout.Single || p.pipeline.Compositor.Width != 1920 ||
		p.pipeline.Compositor.FPS != 25 || p.pipeline.Encoding.KeyframeInterval != 1500*time.Millisecond {
		t.Fatalf("participant plan %+v", p)
	}
	if want := filepath.Join(dir, "dir", "r-2026-11-30T180000.mp4"); p.file != want {
		t.Fatalf("file %q, want %q", p.file, want)
	}
	// Stream-only: the stream preset.
	p, err = buildPlan(rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r",
		Output: &livekit.RoomCompositeEgressRequest_Stream{Stream: &livekit.StreamOutput{Urls: []string{"rtmp://h/live/k"}}}}), dir, now)
	if err != nil || p.pipeline.Encoding.Preset != "stream" || p.file != "" {
		t.Fatalf("stream-only plan %+v, %v", p, err)
	}
}

// TestBuildPlanKinds: audio-only / video-only composites, segment outputs,
// a screen-share participant egress and a track composite in roomcast's
// terms.
func TestBuildPlanKinds(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	p, err := buildPlan(rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", AudioOnly: true, FileOutputs: file("a")}), dir, now)
	if err != nil || !p.pipeline.Compositor.NoVideo || p.pipeline.Compositor.NoAudio {
		t.Fatalf("audio-only plan %+v, %v", p, err)
	}
	p, err = buildPlan(rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", VideoOnly: true, FileOutputs: file("a")}), dir, now)
	if err != nil || p.pipeline.Compositor.NoVideo || !p.pipeline.Compositor.NoAudio {
		t.Fatalf("video-only plan %+v, %v", p, err)
	}
	// Segments only: HLS into the prefix's directory, named playlists, the
	// record preset (a recording).
	p, err = buildPlan(rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r",
		Output: &livekit.RoomCompositeEgressRequest_Segments{Segments: &livekit.SegmentedFileOutput{
			FilenamePrefix: "hls/{room_name}", PlaylistName: "all", LivePlaylistName: "live.m3u8", SegmentDuration: 6}}}), dir, now)
	if err != nil {
		t.Fatal(err)
	}
	h := p.hls
	if h.dir != filepath.Join(dir, "hls", "r") || h.playlist != "all.m3u8" || h.livePlaylist != "live.m3u8" || h.segment != 6*time.Second ||
		p.pipeline.Encoding.Preset == "stream" || p.file != "" {
		t.Fatalf("segments plan %+v", p)
	}
	if sh := h.session(2 * time.Second); sh.Dir != h.dir || sh.Playlist != "all.m3u8" || sh.SegmentDuration != 6*time.Second {
		t.Fatalf("session HLS %+v", sh)
	}
	p, err = buildPlan(rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r", SegmentOutputs: []*livekit.SegmentedFileOutput{{}}}), dir, now)
	if err != nil || p.hls.dir != filepath.Join(dir, "r-2026-11-30T180000") || p.hls.playlistName() != "index.m3u8" || p.hls.segment != DefaultSegmentDuration {
		t.Fatalf("default segments plan %+v, %v", p, err)
	}
	// Participant egress: camera and microphone; with screen_share the
	// screen (and its sound) and the microphone, the camera tile hidden.
	pe := &livekit.ParticipantEgressRequest{RoomName: "r", Identity: "alice", FileOutputs: file("a")}
	p, err = buildPlan(&rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_Participant{Participant: pe}}, dir, now)
	cam := &room.Track{Kind: room.KindVideo, Source: room.SourceCamera}
	scr := &room.Track{Kind: room.KindVideo, Source: room.SourceScreenShare}
	mic := &room.Track{Kind: room.KindAudio, Source: room.SourceMicrophone}
	if err != nil || !p.tracks.Picks(cam) || p.tracks.Picks(scr) || !p.tracks.Picks(mic) || len(p.heard) != 0 {
		t.Fatalf("participant plan %+v, %v", p, err)
	}
	pe.ScreenShare = true
	p, err = buildPlan(&rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_Participant{Participant: pe}}, dir, now)
	if err != nil || p.tracks.Picks(cam) || !p.tracks.Picks(scr) || !p.tracks.Picks(mic) || len(p.heard) != 1 || p.heard[0] != "alice" {
		t.Fatalf("screen share plan %+v, %v", p, err)
	}
	// Track composite: the two SIDs, resolved later; audio alone is an
	// audio-only output.
	tc := &livekit.TrackCompositeEgressRequest{RoomName: "r", AudioTrackId: "TR_a", VideoTrackId: "TR_v", FileOutputs: file("a")}
	p, err = buildPlan(&rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_TrackComposite{TrackComposite: tc}}, dir, now)
	if err != nil || p.audioTrack != "TR_a" || p.videoTrack != "TR_v" || !p.tracks.Picks(&room.Track{SID: "TR_v"}) ||
		p.tracks.Picks(&room.Track{SID: "TR_x"}) || p.pipeline.Compositor.Layout != layout.Single || p.pipeline.Compositor.NoVideo {
		t.Fatalf("track composite plan %+v, %v", p, err)
	}
	tc.VideoTrackId = ""
	p, err = buildPlan(&rpc.StartEgressRequest{Request: &rpc.StartEgressRequest_TrackComposite{TrackComposite: tc}}, dir, now)
	if err != nil || !p.pipeline.Compositor.NoVideo || len(p.tracks.SIDs) != 1 {
		t.Fatalf("audio track composite plan %+v, %v", p, err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtmp://a.example:1935/live/sk-123":   "rtmp://a.example:1935/live/{redacted}",
		"rtmps://u:pw@a.example/app/x/sk?t=1": "rtmps://{redacted}@a.example/app/x/{redacted}?{redacted}",
		"rtmp://a.example/sk":                 "rtmp://a.example/{redacted}",
		"not a url sk-123":                    "{redacted}",
		"rtmp://a.example":                    "rtmp://a.example",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewInfoRedactsRequest(t *testing.T) {
	info := newInfo(rcReq(&livekit.RoomCompositeEgressRequest{RoomName: "r",
		StreamOutputs: []*livekit.StreamOutput{{Urls: []string{"rtmp://h/live/SECRETKEY"}}}}), time.Now())
	if strings.Contains(info.String(), "SECRETKEY") {
		t.Fatalf("info holds the key: %s", info)
	}
	if info.RoomName != "r" || info.Status != livekit.EgressStatus_EGRESS_STARTING {
		t.Fatalf("info %s", info)
	}
}

func TestCapacity(t *testing.T) {
	now := time.Unix(1000, 0)
	fixed := capacity{fixed: 1, cost: 0.5, now: func() time.Time { return now }}
	if a := fixed.affinity(nil); a != affinityIdle {
		t.Fatalf("idle: %v", a)
	}
	if a := fixed.affinity([]time.Time{now}); a != affinityBusy {
		t.Fatalf("one running: %v, want busy (fill busy workers first)", a)
	}
	if a := fixed.affinity([]time.Time{now, now}); a != affinityFull {
		t.Fatalf("two running: %v, want full", a)
	}
	// Measured: 1.2 idle cores of 2; an egress started 2 s ago is not yet
	// in the measurement and counts at its estimated cost.
	m := &idleMeter{cores: 2}
	m.samples = []cpuTimes{{at: now.Add(-5 * time.Second), idle: 0, busy: 0}, {at: now, idle: 600, busy: 400}}
	meas := capacity{cost: 0.5, meter: m, recent: 10 * time.Second, now: func() time.Time { return now }}
	if got := m.idle(); got < 1.19 || got > 1.21 {
		t.Fatalf("idle %.2f cores, want 1.2", got)
	}
	if !meas.canAccept(nil) || !meas.canAccept([]time.Time{now.Add(-time.Minute)}) {
		t.Fatal("1.2 idle cores refuse a 0.5-core egress")
	}
	if !meas.canAccept([]time.Time{now.Add(-2 * time.Second)}) {
		t.Fatal("0.7 spare cores refuse a 0.5-core egress")
	}
	if meas.canAccept([]time.Time{now.Add(-2 * time.Second), now.Add(-time.Second)}) {
		t.Fatal("0.2 spare cores accept a 0.5-core egress")
	}
	// Not measured yet: nothing is accepted.
	if (&capacity{cost: 0.5, meter: &idleMeter{cores: 2}, now: time.Now}).canAccept(nil) {
		t.Fatal("a worker that has not measured accepts")
	}
}

func TestParseProcStat(t *testing.T) {
	c, ok := parseProcStat([]byte("cpu  10 2 3 100 5 1 1 0 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n"), time.Unix(0, 0))
	if !ok || c.idle != 105 || c.busy != 17 {
		t.Fatalf("%+v %v", c, ok)
	}
	if _, ok := parseProcStat([]byte("intr 1 2 3\n"), time.Unix(0, 0)); ok {
		t.Fatal("parsed a file without a cpu line")
	}
}

// FuzzFilePath: whatever the template and names, the path stays inside the
// output directory and ends in .mp4, or the request is refused.
func FuzzFilePath(f *testing.F) {
	for _, s := range [][2]string{
		{"{room_name}-{time}.mp4", "weekly"}, {"", "r"}, {"dir/", "r"}, {"../x", "r"}, {"/etc/passwd", "r"},
		{"{room_name}/../../x.mp4", ".."}, {"a/{room_id}", "../../"}, {"x.MP4", "r"}, {"x.ogg", "r"}, {"{egress_id}{utc}", "r/../.."},
	} {
		f.Add(s[0], s[1])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, tmpl, room string) {
		p, err := filePath(dir, tmpl, "EG_1", room, room, time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is not ErrUnsupported", err)
			}
			return
		}
		rel, rerr := filepath.Rel(dir, p)
		if rerr != nil || rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
			t.Fatalf("%q (room %q) → %q escapes %q", tmpl, room, p, dir)
		}
		if !strings.EqualFold(filepath.Ext(p), ".mp4") {
			t.Fatalf("%q → %q is not an .mp4", tmpl, p)
		}
	})
}

// FuzzSegmentPlan: whatever the prefix, room name and playlist names, the
// segments' directory is strictly inside the output directory and the
// playlists are plain .m3u8 names beside the segments.
func FuzzSegmentPlan(f *testing.F) {
	for _, s := range [][3]string{
		{"hls/{room_name}", "weekly", "all"}, {"", "r", ""}, {"./", "r", ""}, {"../up", "r", "p.m3u8"},
		{"{room_name}", "..", "x/../y.m3u8"}, {"/abs", "r", ".m3u8"}, {"a/{room_id}/", "../../", "{room_name}"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, prefix, room, playlist string) {
		h, err := segmentPlan(&livekit.SegmentedFileOutput{FilenamePrefix: prefix, PlaylistName: playlist, LivePlaylistName: "live.m3u8"},
			dir, "EG_1", room, room, time.Unix(0, 0))
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is not ErrUnsupported", err)
			}
			return
		}
		rel, rerr := filepath.Rel(dir, h.dir)
		if rerr != nil || rel == ".." || strings.HasPrefix(rel, "../") || rel == "." {
			t.Fatalf("prefix %q (room %q) → %q is not inside %q", prefix, room, h.dir, dir)
		}
		for _, n := range []string{h.playlistName(), h.livePlaylist} {
			if filepath.Base(n) != n || filepath.Ext(n) != ".m3u8" || strings.HasPrefix(n, ".") {
				t.Fatalf("playlist %q (from %q)", n, playlist)
			}
		}
	})
}
