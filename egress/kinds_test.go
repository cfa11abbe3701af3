package egress_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestRequestKindsLive: the requests beyond a plain composite, through
// server-sdk-go's EgressClient against livekit-server: audio-only and
// video-only room composites (file and RTMP), segment (HLS) outputs, a
// participant's screen share and a track composite. Alice publishes a red
// camera, a green screen share and a 440 Hz microphone; Bob a blue camera
// and 880 Hz. The egresses run side by side on one worker.
func TestRequestKindsLive(t *testing.T) {
	r := newRig(t)
	ng := startNginx(t)
	const room = "egress-kinds"
	alice := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice",
		Video: "h264", Color: "red", ScreenColor: "0x00ff00", Audio: true, ToneHz: 440, Speaking: true,
		Width: 160, Height: 90, FPS: 15})
	defer alice.Close()
	bob := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: "bob", Name: "Bob",
		Video: "h264", Color: "blue", Audio: true, ToneHz: 880, Width: 160, Height: 90, FPS: 15})
	defer bob.Close()
	// A room without a screen share, for a layout to show.
	const room2 = "egress-layout"
	carol := lktest.StartPublisher(t, r.srv, room2, lktest.PublisherOptions{Identity: "carol", Name: "Carol",
		Video: "h264", Color: "red", Audio: true, ToneHz: 440, Speaking: true, Width: 160, Height: 90, FPS: 15})
	defer carol.Close()
	dave := lktest.StartPublisher(t, r.srv, room2, lktest.PublisherOptions{Identity: "dave", Name: "Dave",
		Video: "h264", Color: "blue", Audio: true, ToneHz: 880, Width: 160, Height: 90, FPS: 15})
	defer dave.Close()
	w := r.startWorker(r.workerConfig(8, 0.5))
	ctx := context.Background()
	enc := &livekit.EncodingOptions{Width: 320, Height: 180, Framerate: 15, VideoBitrate: 300, KeyFrameInterval: 1}
	small := &livekit.RoomCompositeEgressRequest_Advanced{Advanced: enc}
	for _, p := range []*lktest.Publisher{alice, bob} {
		waitTracks(t, p, 10*time.Second)
	}

	t.Run("refused", func(t *testing.T) {
		info, err := r.client.StartTrackCompositeEgress(ctx, &livekit.TrackCompositeEgressRequest{
			RoomName: room, VideoTrackId: "TR_nosuchtrack", FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "x.mp4"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(info.Error, "not published") {
			t.Fatalf("unknown track: %s %q, want failed naming the track", info.Status, info.Error)
		}
		info, err = r.client.StartTrackCompositeEgress(ctx, &livekit.TrackCompositeEgressRequest{
			RoomName: room, VideoTrackId: alice.TrackSID("audio"), FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "x.mp4"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(info.Error, "not VIDEO") {
			t.Fatalf("audio track as video: %s %q", info.Status, info.Error)
		}
	})

	t.Run("group", func(t *testing.T) {
		t.Run("audio-only file", func(t *testing.T) {
			t.Parallel()
			done := record(t, r, 4*time.Second, func() (*livekit.EgressInfo, error) {
				return r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
					RoomName: room, AudioOnly: true, Options: small,
					FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "audio-only.mp4"}},
				})
			})
			f := done.FileResults[0]
			dur := checkOnly(t, f.Location, "audio", f.Duration)
			x := audioMono(t, f.Location, dur-3, dur-0.5)
			for _, hz := range []float64{440, 880} {
				if a := toneAmp(x, hz); a < 0.01 {
					t.Fatalf("%v Hz amplitude %.4f: want both speakers heard", hz, a)
				}
			}
		})

		t.Run("video-only file", func(t *testing.T) {
			t.Parallel()
			done := record(t, r, 4*time.Second, func() (*livekit.EgressInfo, error) {
				return r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
					RoomName: room, VideoOnly: true, Options: small,
					FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "video-only.mp4"}},
				})
			})
			f := done.FileResults[0]
			dur := checkOnly(t, f.Location, "video", f.Duration)
			// Alice's screen share takes the large tile, both cameras the
			// column beside it.
			const pw, ph = 64, 36
			img := rgbAt(t, f.Location, dur-1, pw, ph)
			if c := colourName(img, pw, 8, 8, 36, 28); c != "green" {
				t.Fatalf("large tile %s, want the green screen share", c)
			}
			for _, c := range []string{"red", "blue"} {
				if n := countColour(img, c); n < 4 {
					t.Fatalf("%d %s pixels: want that camera's tile in the column", n, c)
				}
			}
		})

		t.Run("audio-only RTMP", func(t *testing.T) {
			t.Parallel()
			const key = "audio-only"
			record(t, r, 4*time.Second, func() (*livekit.EgressInfo, error) {
				return r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
					RoomName: room, AudioOnly: true,
					StreamOutputs: []*livekit.StreamOutput{{Protocol: livekit.StreamProtocol_RTMP, Urls: []string{ng.url(key)}}},
				})
			})
			recs := ng.recordings(key)
			if len(recs) != 1 {
				t.Fatalf("nginx recorded %d files", len(recs))
			}
			dur := checkOnly(t, recs[0], "audio", 0)
			if a := toneAmp(audioMono(t, recs[0], dur-3, dur-0.5), 440); a < 0.01 {
				t.Fatalf("ingest: 440 Hz amplitude %.4f", a)
			}
		})

		t.Run("segments", func(t *testing.T) {
			t.Parallel()
			done := record(t, r, 5*time.Second, func() (*livekit.EgressInfo, error) {
				return r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
					RoomName: room, Options: small,
					SegmentOutputs: []*livekit.SegmentedFileOutput{{FilenamePrefix: "hls/{room_name}",
						PlaylistName: "all.m3u8", LivePlaylistName: "live.m3u8", SegmentDuration: 1}},
				})
			})
			if len(done.SegmentResults) != 1 {
				t.Fatalf("segment results %v", done.SegmentResults)
			}
			s := done.SegmentResults[0]
			if s.PlaylistName != "hls/"+room+"/all.m3u8" || s.LivePlaylistName != "hls/"+room+"/live.m3u8" ||
				s.SegmentCount < 3 || s.Size < 10_000 || s.Duration < int64(3*time.Second) || s.Duration > int64(20*time.Second) ||
				s.StartedAt == 0 || s.EndedAt <= s.StartedAt {
				t.Fatalf("segments result %+v", s)
			}
			for _, pl := range []string{s.PlaylistLocation, s.LivePlaylistLocation} {
				b, err := os.ReadFile(pl)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), "#EXT-X-ENDLIST") {
					t.Fatalf("%s has no EXT-X-ENDLIST after the stop:\n%s", filepath.Base(pl), b)
				}
			}
			segs, _ := filepath.Glob(filepath.Join(filepath.Dir(s.PlaylistLocation), "*.m4s"))
			if int64(len(segs)) != s.SegmentCount {
				t.Fatalf("%d segment files, %d reported", len(segs), s.SegmentCount)
			}
			p := mediatest.MustProbe(t, s.PlaylistLocation, "-show_streams", "-show_format")
			if p.Stream("video") == nil || p.Stream("audio") == nil {
				t.Fatalf("playlist streams %+v", p.Streams)
			}
			if d := mediatest.Secs(p.Format.Duration); d < float64(s.Duration)/1e9-0.5 || d > float64(s.Duration)/1e9+0.5 {
				t.Fatalf("playlist plays %.2f s, reported %v", d, time.Duration(s.Duration))
			}
			if msg := mediatest.DecodeErrors(s.PlaylistLocation); msg != "" {
				t.Fatalf("segments decode errors: %s", msg)
			}
		})

		t.Run("participant screen share", func(t *testing.T) {
			t.Parallel()
			done := record(t, r, 4*time.Second, func() (*livekit.EgressInfo, error) {
				return r.client.StartParticipantEgress(ctx, &livekit.ParticipantEgressRequest{
					RoomName: room, Identity: "alice", ScreenShare: true,
					Options:     &livekit.ParticipantEgressRequest_Advanced{Advanced: enc},
					FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "alice-screen.mp4"}},
				})
			})
			// The screen fills the picture (no camera tile); Alice is heard,
			// Bob is not.
			checkSingle(t, done.FileResults[0].Location, "green", []float64{440}, []float64{880})
		})

		t.Run("update layout", func(t *testing.T) {
			t.Parallel()
			info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
				RoomName: room2, Layout: "grid", VideoOnly: true, Options: small,
				FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "layout.mp4"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
			time.Sleep(3 * time.Second)
			// livekit-server writes the layout into the egress participant's
			// metadata; the worker switches the running composite.
			if _, err := r.client.UpdateLayout(ctx, &livekit.UpdateLayoutRequest{EgressId: info.EgressId, Layout: "single-speaker"}); err != nil {
				t.Fatalf("UpdateLayout: %v", err)
			}
			time.Sleep(3 * time.Second)
			if _, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
				t.Fatal(err)
			}
			done := r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 30*time.Second, nil)
			path := done.FileResults[0].Location
			const pw, ph = 64, 36
			// Before: the grid, both cameras side by side.
			before := rgbAt(t, path, 1.5, pw, ph)
			if nr, nb := countColour(before, "red"), countColour(before, "blue"); nr < pw*ph/8 || nb < pw*ph/8 {
				t.Fatalf("grid before the update: %d red, %d blue pixels; want both tiles", nr, nb)
			}
			// After: one speaker fills the picture.
			dur := mediatest.Secs(mediatest.MustProbe(t, path, "-show_format").Format.Duration)
			after := rgbAt(t, path, dur-0.5, pw, ph)
			nr, nb := countColour(after, "red"), countColour(after, "blue")
			if max(nr, nb) < pw*ph/2 || min(nr, nb) > 2 {
				t.Fatalf("after UpdateLayout single-speaker: %d red, %d blue pixels; want one speaker filling the picture", nr, nb)
			}
		})

		t.Run("track composite", func(t *testing.T) {
			t.Parallel()
			// Alice's camera with Bob's sound.
			done := record(t, r, 4*time.Second, func() (*livekit.EgressInfo, error) {
				return r.client.StartTrackCompositeEgress(ctx, &livekit.TrackCompositeEgressRequest{
					RoomName: room, VideoTrackId: alice.TrackSID("video"), AudioTrackId: bob.TrackSID("audio"),
					Options:     &livekit.TrackCompositeEgressRequest_Advanced{Advanced: enc},
					FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "tracks.mp4"}},
				})
			})
			checkSingle(t, done.FileResults[0].Location, "red", []float64{880}, []float64{440})
		})
	})
	if n := w.Running(); n != 0 {
		t.Fatalf("%d egresses still running", n)
	}
}

// waitTracks waits until the publisher's tracks have SIDs.
func waitTracks(t *testing.T, p *lktest.Publisher, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for p.TrackSID("video") == "" || p.TrackSID("audio") == "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s: tracks not published", p.Identity)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// record starts an egress, lets it run for d once active, stops it and
// returns the completed info.
func record(t *testing.T, r *rig, d time.Duration, start func() (*livekit.EgressInfo, error)) *livekit.EgressInfo {
	t.Helper()
	info, err := start()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if info.Status != livekit.EgressStatus_EGRESS_STARTING {
		t.Fatalf("answer %s %q, want starting", info.Status, info.Error)
	}
	r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
	time.Sleep(d)
	if _, err := r.client.StopEgress(context.Background(), &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	return r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 30*time.Second, nil)
}

// checkOnly asserts the file holds exactly one stream, of kind, decoding
// cleanly, lasting about reported (ns; 0: at least 2 s); it returns the
// duration in seconds.
func checkOnly(t *testing.T, path, kind string, reported int64) float64 {
	t.Helper()
	p := mediatest.MustProbe(t, path, "-show_streams", "-show_format")
	if len(p.Streams) != 1 || p.Streams[0].CodecType != kind {
		var kinds []string
		for _, s := range p.Streams {
			kinds = append(kinds, s.CodecType)
		}
		t.Fatalf("%s: streams %v, want one %s stream", filepath.Base(path), kinds, kind)
	}
	dur := mediatest.Secs(p.Format.Duration)
	if !(dur >= 2.5 && dur < 20) {
		t.Fatalf("%s lasts %.2f s", filepath.Base(path), dur)
	}
	if reported != 0 && (dur < float64(reported)/1e9-1 || dur > float64(reported)/1e9+1) {
		t.Fatalf("%s lasts %.2f s, reported %v", filepath.Base(path), dur, time.Duration(reported))
	}
	if msg := mediatest.DecodeErrors(path); msg != "" {
		t.Fatalf("%s: decode errors: %s", filepath.Base(path), msg)
	}
	return dur
}

// checkSingle asserts a one-tile recording: it decodes cleanly, the last
// second's picture is mostly colour (the generated video's moving white box
// and the name label take the rest) with no pixel of the other test
// colours, and the tones present are heard, the absent ones not.
func checkSingle(t *testing.T, path, colour string, present, absent []float64) {
	t.Helper()
	if msg := mediatest.DecodeErrors(path); msg != "" {
		t.Fatalf("%s: decode errors: %s", filepath.Base(path), msg)
	}
	dur := mediatest.Secs(mediatest.MustProbe(t, path, "-show_format").Format.Duration)
	const pw, ph = 64, 36
	img := rgbAt(t, path, dur-1, pw, ph)
	for _, c := range []string{"red", "green", "blue"} {
		n := countColour(img, c)
		if c == colour && n < pw*ph/2 {
			t.Fatalf("%s: %d of %d pixels %s, want most", filepath.Base(path), n, pw*ph, c)
		}
		if c != colour && n > 2 {
			t.Fatalf("%s: %d %s pixels, want only %s", filepath.Base(path), n, c, colour)
		}
	}
	x := audioMono(t, path, dur-3, dur-0.5)
	for _, f := range present {
		if a := toneAmp(x, f); a < 0.01 {
			t.Fatalf("%s: tone %v Hz amplitude %.4f, want it present", filepath.Base(path), f, a)
		}
	}
	for _, f := range absent {
		if a := toneAmp(x, f); a > 0.003 {
			t.Fatalf("%s: tone %v Hz amplitude %.4f, want it absent", filepath.Base(path), f, a)
		}
	}
}

// countColour counts the pixels of an RGB picture of that colour
// (colourName's classes, pixel by pixel).
func countColour(img []byte, name string) int {
	n := 0
	for i := 0; i+2 < len(img); i += 3 {
		if colourName(img[i:i+3], 1, 0, 0, 1, 1) == name {
			n++
		}
	}
	return n
}
