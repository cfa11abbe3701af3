package egress_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/roomcast/roomcast/egress"
	"github.com/roomcast/roomcast/internal/mediatest"
	"github.com/roomcast/roomcast/room/livekit/lktest"
)

// tiny is the cheapest encoding: these tests are about dispatch.
func tiny() *livekit.RoomCompositeEgressRequest_Advanced {
	return &livekit.RoomCompositeEgressRequest_Advanced{Advanced: &livekit.EncodingOptions{
		Width: 320, Height: 180, Framerate: 10, VideoBitrate: 200}}
}

// TestDispatch: 4 room composites requested at once across 2 workers (room
// for 2 each) are spread by affinity, none lost; a fifth is refused by the
// server (no worker bids) rather than overloading one.
func TestDispatch(t *testing.T) {
	r := newRig(t)
	const room = "egress-dispatch"
	pub := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice",
		Video: "h264", Color: "red", Audio: true, ToneHz: 440, Width: 160, Height: 120, FPS: 10})
	defer pub.Close()
	time.Sleep(time.Second) // the room exists (StartEgress needs it)
	a := r.startWorker(r.workerConfig(1, 0.5))
	b := r.startWorker(r.workerConfig(1, 0.5))
	ctx := context.Background()

	ids := make([]string, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
				RoomName: room, Options: tiny(),
				FileOutputs: []*livekit.EncodedFileOutput{{Filepath: fmt.Sprintf("d%d.mp4", i)}},
			})
			errs[i] = err
			if err == nil {
				ids[i] = info.EgressId
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if a.Running() != 2 || b.Running() != 2 {
		t.Fatalf("spread: worker A runs %d, B runs %d; want 2 and 2", a.Running(), b.Running())
	}
	for _, id := range ids {
		r.waitStatus(id, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
	}
	start := time.Now()
	_, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
		RoomName: room, Options: tiny(), FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "fifth.mp4"}},
	})
	if err == nil {
		t.Fatal("a fifth composite was accepted with both workers full")
	}
	t.Logf("fifth refused after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if a.Running() != 2 || b.Running() != 2 {
		t.Fatalf("after the refusal: A runs %d, B runs %d", a.Running(), b.Running())
	}
	// Nothing was stored for it: the server lists the four only.
	res, err := r.client.ListEgress(ctx, &livekit.ListEgressRequest{RoomName: room})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Items) != 4 {
		t.Fatalf("ListEgress lists %d egresses, want the 4 accepted", len(res.Items))
	}
	for _, id := range ids {
		if _, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: id}); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
	}
	for _, id := range ids {
		info := r.waitStatus(id, livekit.EgressStatus_EGRESS_COMPLETE, 30*time.Second, nil)
		if len(info.FileResults) != 1 || info.FileResults[0].Size == 0 {
			t.Fatalf("%s: file results %v", id, info.FileResults)
		}
	}
}

// childEnv names the worker settings of a worker run in a child process
// (TestMain) so that the test can kill it with -9.
const childEnv = "ROOMCAST_EGRESS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs one worker until SIGTERM (or SIGKILL).
func runChild() int {
	capacity, _ := strconv.ParseFloat(os.Getenv("CHILD_CAPACITY"), 64)
	rc := redis.NewClient(&redis.Options{Addr: os.Getenv("CHILD_REDIS")})
	w, err := egress.New(egress.Config{
		Redis: rc, WSURL: os.Getenv("CHILD_WS"), APIKey: os.Getenv("CHILD_KEY"), APISecret: os.Getenv("CHILD_SECRET"),
		OutputDir: os.Getenv("CHILD_DIR"), CPUCapacity: capacity, CPUCost: 0.5, NodeID: "child",
		Log: zerolog.New(os.Stderr).With().Timestamp().Logger(),
	})
	if err == nil {
		err = w.Start(context.Background())
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	w.Close()
	return 0
}

// TestKill9: a worker killed with -9 mid-recording leaves a file that plays
// up to the kill, the egress ends failed (reported by the surviving
// worker), and the other worker's egress continues.
func TestKill9(t *testing.T) {
	r := newRig(t)
	const room = "egress-kill"
	pub := lktest.StartPublisher(t, r.srv, room, lktest.PublisherOptions{Identity: "alice", Name: "Alice",
		Video: "h264", Color: "red", Audio: true, ToneHz: 440, Width: 160, Height: 120, FPS: 10})
	defer pub.Close()
	time.Sleep(time.Second)
	ctx := context.Background()

	// The child worker first, alone: it takes the first egress.
	childDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "CHILD_REDIS="+r.redis.Addr, "CHILD_WS="+r.srv.URL,
		"CHILD_KEY="+r.srv.APIKey, "CHILD_SECRET="+r.srv.APISecret, "CHILD_DIR="+childDir, "CHILD_CAPACITY=0.5")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var childLog syncBuffer
	cmd.Stderr = &childLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("child worker log:\n%s", mediatest.Tail(childLog.String(), 40))
		}
	})
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf[:5]) != "ready" {
		t.Fatalf("child worker did not start: %v %q\n%s", err, buf, childLog.String())
	}
	first, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
		RoomName: room, Options: tiny(), FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "killed.mp4"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Then the in-process worker: the child is full, so it takes the second.
	w := r.startWorker(r.workerConfig(1, 0.5))
	second, err := r.client.StartRoomCompositeEgress(ctx, &livekit.RoomCompositeEgressRequest{
		RoomName: room, Options: tiny(), FileOutputs: []*livekit.EncodedFileOutput{{Filepath: "survivor.mp4"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Running() != 1 {
		t.Fatalf("the in-process worker runs %d egresses, want the second one", w.Running())
	}
	r.waitStatus(first.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
	r.waitStatus(second.EgressId, livekit.EgressStatus_EGRESS_ACTIVE, 30*time.Second, nil)
	time.Sleep(4 * time.Second)
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	killedAt := time.Now()
	failed := r.waitStatus(first.EgressId, livekit.EgressStatus_EGRESS_FAILED, 15*time.Second, nil)
	t.Logf("reported failed %v after the kill: %s", time.Since(killedAt).Round(time.Millisecond), failed.Error)
	if failed.Error == "" || failed.EndedAt == 0 {
		t.Fatalf("failed info without error or end: %+v", failed)
	}
	// The killed worker's file plays up to the kill (fragmented MP4).
	path := childDir + "/killed.mp4"
	p := mediatest.MustProbe(t, path, "-show_streams", "-show_format")
	if d := mediatest.Secs(p.Format.Duration); !(d >= 2) {
		t.Fatalf("killed worker's file plays %.2fs, want the seconds before the kill", d)
	}
	if msg := mediatest.DecodeErrors(path); msg != "" {
		t.Fatalf("killed worker's file: decode errors: %s", msg)
	}
	// The other worker's egress goes on.
	if got := r.info(second.EgressId); got.Status != livekit.EgressStatus_EGRESS_ACTIVE {
		t.Fatalf("survivor's egress is %s after the kill", got.Status)
	}
	time.Sleep(2 * time.Second)
	if _, err := r.client.StopEgress(ctx, &livekit.StopEgressRequest{EgressId: second.EgressId}); err != nil {
		t.Fatal(err)
	}
	done := r.waitStatus(second.EgressId, livekit.EgressStatus_EGRESS_COMPLETE, 30*time.Second, nil)
	if f := done.FileResults[0]; f.Duration < int64(4*time.Second) {
		t.Fatalf("survivor recorded %v only", time.Duration(f.Duration))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
