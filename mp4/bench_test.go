package mp4

import (
	"github.com/rs/zerolog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/roomcast/roomcast/media"
)

// BenchmarkFinalise measures Close's remux of a fragmented recording of
// MP4_BENCH_MB megabytes (default 256): the fixture looped, its video
// padded with filler NAL units (H.264 §7.3.2.7) to about 4 Mbit/s, the
// size of a real meeting recording. Reports seconds per GB.
func BenchmarkFinalise(b *testing.B) {
	mb := 256
	if s := os.Getenv("MP4_BENCH_MB"); s != "" {
		mb, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	orig := filepath.Join(dir, "orig.mp4")
	w, err := Create(orig, fix.info, Options{})
	if err != nil {
		b.Fatal(err)
	}
	const frameBytes = 4_000_000 / 8 / fixtureFPS
	span := fix.packets[len(fix.packets)-1].DTS - fix.packets[0].DTS + time.Second/fixtureFPS
	for loop := time.Duration(0); w.Bytes() < int64(mb)<<20; loop++ {
		for _, p := range fix.packets {
			p.PTS += loop * span
			p.DTS += loop * span
			if p.Kind == media.KindVideo && len(p.Data) < frameBytes {
				fill := make([]byte, frameBytes-len(p.Data))
				copy(fill, []byte{0, 0, 0, 1, 12})
				for i := 5; i < len(fill)-1; i++ {
					fill[i] = 0xff
				}
				fill[len(fill)-1] = 0x80
				p.Data = append(append([]byte{}, p.Data...), fill...)
			}
			if err := w.WritePacket(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	w.Abort()
	size := w.Bytes()
	b.Logf("recording: %d MB, %v of media", size>>20, w.Duration().Round(time.Second))
	path := filepath.Join(dir, "rec.mp4")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		_ = os.Remove(path)
		if err := os.Link(orig, path); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := finalise(path, zerolog.Nop()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/(float64(size)/1e9), "s/GB")
}
