package egress_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"

	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// TestWorkerLive: a roomcast egress worker on livekit-server's Redis bus,
// driven through server-sdk-go's EgressClient, with a Go publisher (red,
// 440 Hz) and a Chromium publisher (blue, 880 Hz) in the room.
func TestWorkerLive(t *testing.T) {
	r := newRig(t)
	const room = "egress-live"
	alice := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice",
		Video: "h264", Color: "red", Audio: true, ToneHz: 440, Speaking: true})
	defer alice.Close()
	br := lktest.StartChromium(t, r.srv, room, lktest.ChromiumOptions{Identity: "carol", Name: "Carol",
		Color: "blue", ToneHz: 880, NoSimulcast: true})
	defer br.Close()
	br.WaitFor("published", 45*time.Second)
	// Two workers on the bus; each request goes to one of them.
	w := r.startWorker(r.workerConfig(2, 0.5))
	w2 := r.startWorker(r.workerConfig(2, 0.5))
	ctx := context.Background()
	// Small pictures: the machine running the tests has 2 cores and -race.
	small := &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{
		Width: 640, Height: 360, Framerate: 25, VideoBitrate: 800}}

	t.Run("unsupported template is failed with a reason", func(t *testing.T) {
		info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
			RoomName: room, CustomBaseUrl: "https://templates.example.org/mine",
			FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "template.mp4"}},
		})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if info.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(info.Error, "custom web templates") {
			t.Fatalf("answer: status %s error %q, want failed naming custom web templates", info.Status, info.Error)
		}
		got := r.info(info.EgressId)
		if got.Status != livekit.EgressStatus_EGRESS_FAILED || got.Error == "" {
			t.Fatalf("ListEgress: %s %q", got.Status, got.Error)
		}
		ended := r.hooks.wait(t, "egress_ended", info.EgressId, 10*time.Second)
		if ended.EgressInfo.Error == "" {
			t.Fatal("egress_ended webhook without the reason")
		}
		if w.Running()+w2.Running() != 0 {
			t.Fatalf("workers run %d egresses after a refusal", w.Running()+w2.Running())
		}
		time.Sleep(500 * time.Millisecond)
		if n := r.hooks.count("egress_started", info.EgressId); n != 0 {
			t.Fatalf("%d egress_started webhooks for a refused request", n)
		}
	})

	t.Run("cloud upload is failed with a reason", func(t *testing.T) {
		info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
			RoomName: room,
			FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "x.mp4",
				Output: &livekit.EncodedFileOutput_S3{S3: &livekit.S3Upload{Bucket: "b", Secret: "s3-secret-value"}}}},
		})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if info.Status != livekit.EgressStatus_EGRESS_FAILED || !strings.Contains(info.Error, "cloud upload") {
			t.Fatalf("answer: status %s error %q", info.Status, info.Error)
		}
	})

	t.Run("room composite to a file, stopped early", func(t *testing.T) {
		info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
			RoomName: room, Layout: "grid", Options: small,
			FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "{room_name}-grid.mp4"}},
		})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		if info.Status != livekit.EgressStatus_EGRESS_STARTING {
			t.Fatalf("answer: %s %q, want starting", info.Status, info.Error)
		}
		seen := map[livekit.EgressStatus]bool{}
		r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 20*time.Second, seen)
		r.hooks.wait(t, "egress_started", info.EgressId, 10*time.Second)
		time.Sleep(5 * time.Second)
		stopped, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId})
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
		if stopped.Status != livekit.EgressStatus_EGRESS_ENDING {
			t.Fatalf("StopEgress answered %s, want ending", stopped.Status)
		}
		done := r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 20*time.Second, seen)
		if !seen[livekit.EgressStatus_EGRESS_ACTIVE] {
			t.Fatalf("statuses seen %v: never active", seen)
		}
		ended := r.hooks.wait(t, "egress_ended", info.EgressId, 10*time.Second)
		if ended.EgressInfo.Status != livekit.EgressStatus_EGRESS_COMPLETE {
			t.Fatalf("egress_ended webhook status %s", ended.EgressInfo.Status)
		}
		if n := r.hooks.count("egress_started", info.EgressId); n != 1 {
			t.Fatalf("%d egress_started webhooks, want 1", n)
		}
		if len(done.FileResults) != 1 {
			t.Fatalf("file results: %v", done.FileResults)
		}
		f := done.FileResults[0]
		if f.Filename != room+"-grid.mp4" || f.Size < 10_000 || f.Duration < int64(2*time.Second) || f.Duration > int64(15*time.Second) {
			t.Fatalf("file result %+v", f)
		}
		if st, err := os.Stat(f.Location); err != nil || st.Size() != f.Size {
			t.Fatalf("file %s: %v (size %v, reported %d)", f.Location, err, st, f.Size)
		}
		checkComposite(t, f.Location, []string{"red", "blue"}, []float64{440, 880}, nil)
		// ListEgress of the room lists it.
		res, err := r.client.ListEgress(ctx, &livekit.ListEgressRequest{RoomName: room})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, it := range res.Items {
			found = found || it.EgressId == info.EgressId
		}
		if !found {
			t.Fatalf("ListEgress of room %s does not list %s", room, info.EgressId)
		}
	})

	t.Run("participant egress", func(t *testing.T) {
		info, err := r.client.StartParticipantEgress(ctx, &livekit.ParticipantEgressRequest{
			RoomName: room, Identity: "alice", Options: &livekit.ParticipantEgressRequest_Advanced{Advanced: small.Advanced},
			FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "alice/{room_name}.mp4"}},
		})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 20*time.Second, nil)
		time.Sleep(4 * time.Second)
		if _, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: info.EgressId}); err != nil {
			t.Fatalf("stop: %v", err)
		}
		done := r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 20*time.Second, nil)
		f := done.FileResults[0]
		if f.Filename != "alice/"+room+".mp4" {
			t.Fatalf("file name %q", f.Filename)
		}
		checkComposite(t, f.Location, []string{"red"}, []float64{440}, []float64{880})
	})

	t.Run("room closes: complete", func(t *testing.T) {
		info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
			RoomName: room, Layout: "speaker",
			Options: &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{
				Width: 640, Height: 360, Framerate: 25, VideoBitrate: 800}},
			FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "closing"}},
		})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 20*time.Second, nil)
		time.Sleep(3 * time.Second)
		r.srv.DeleteRoom(room)
		done := r.waitStatus(info.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 20*time.Second, nil)
		f := done.FileResults[0]
		if f.Filename != "closing.mp4" {
			t.Fatalf("file name %q", f.Filename)
		}
		p := mediatest.MustProbe(t, f.Location, "-show_streams", "-show_format")
		v := p.Stream("video")
		if v == nil || v.Width != 640 || v.Height != 360 {
			t.Fatalf("video stream %+v, want 640x360", v)
		}
		if msg := mediatest.DecodeErrors(f.Location); msg != "" {
			t.Fatalf("decode errors: %s", msg)
		}
	})
	if n := r.hooks.bad; n > 0 {
		t.Fatalf("%d webhook requests did not decode", n)
	}
}

// checkComposite decodes the file: it must decode cleanly, show the given
// colours (left and right halves of a grid, or the whole picture for one)
// and carry the tones present, not those absent.
func checkComposite(t *testing.T, path string, colours []string, present, absent []float64) {
	t.Helper()
	if msg := mediatest.DecodeErrors(path); msg != "" {
		t.Fatalf("%s: decode errors: %s", path, msg)
	}
	const w, h = 64, 36
	// Late in the file: Chromium's camera may take a second or two.
	p := mediatest.MustProbe(t, path, "-show_streams", "-show_format")
	dur := mediatest.Secs(p.Format.Duration)
	at := dur - 1
	img := rgbAt(t, path, at, w, h)
	var got []string
	if len(colours) == 1 {
		got = []string{colourName(img, w, 16, 8, 48, 28)}
	} else {
		// A grid of two: side by side, each tile 16:9 in its half.
		got = []string{colourName(img, w, 6, 12, 26, 24), colourName(img, w, 38, 12, 58, 24)}
	}
	for _, c := range colours {
		ok := false
		for _, g := range got {
			ok = ok || g == c
		}
		if !ok {
			t.Fatalf("%s at %.1fs: tiles %v, want %v", path, at, got, colours)
		}
	}
	x := audioMono(t, path, dur-3, dur-0.5)
	for _, f := range present {
		if a := toneAmp(x, f); a < 0.01 {
			t.Fatalf("%s: tone %v Hz amplitude %.4f, want it present", path, f, a)
		}
	}
	for _, f := range absent {
		if a := toneAmp(x, f); a > 0.003 {
			t.Fatalf("%s: tone %v Hz amplitude %.4f, want it absent", path, f, a)
		}
	}
}
