package mediatest

import (
	"math"
	"os/exec"
	"testing"
)

// TestProbeFixture probes the committed AV1 clip: one 160x90 AV1 stream of
// 10 frames, keyframe first, times increasing.
func TestProbeFixture(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("needs ffprobe")
	}
	path := Fixture("blue-160x90.av1.ivf")
	p := MustProbe(t, path, "-show_streams", "-show_format", "-count_frames")
	v := p.Stream("video")
	if v == nil || v.CodecName != "av1" || v.Width != 160 || v.Height != 90 || v.NbReadFrames != "10" || p.Stream("audio") != nil {
		t.Fatalf("streams %+v", p.Streams)
	}
	pk := Packets(t, path, "v")
	if len(pk) != 10 || !pk[0].Key {
		t.Fatalf("packets %+v", pk)
	}
	for i := 1; i < len(pk); i++ {
		if !(pk[i].PTS > pk[i-1].PTS) {
			t.Fatalf("packet %d at %v after %v", i, pk[i].PTS, pk[i-1].PTS)
		}
	}
	if _, err := ProbeFile(Fixture("missing.ivf"), "-show_streams"); err == nil {
		t.Fatal("no error for a missing file")
	}
}

func TestSecsAndTail(t *testing.T) {
	if Secs("1.500") != 1.5 || !math.IsNaN(Secs("N/A")) || !math.IsNaN(Secs("")) {
		t.Fatal("Secs")
	}
	if got := Tail("a\nb\nc\n", 2); got != "b\nc" {
		t.Fatalf("Tail = %q", got)
	}
}
