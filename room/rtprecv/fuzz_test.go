package rtprecv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// The fuzz targets take a frame's payloads (or an RTP stream) as one byte
// string: each element is a 2-byte big-endian length and that many bytes;
// a short tail is taken as it is.

func encodeChunks(ps [][]byte) []byte {
	var out []byte
	for _, p := range ps {
		out = append(out, byte(len(p)>>8), byte(len(p)))
		out = append(out, p...)
	}
	return out
}

func decodeChunks(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := int(b[0])<<8 | int(b[1])
		b = b[2:]
		if n > len(b) {
			n = len(b)
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func fuzzDepacketizer(f *testing.F, codec string) {
	for _, c := range depackCases {
		if c.codec == codec {
			f.Add(encodeChunks(c.payloads))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps := decodeChunks(data)
		d := newDepacketizerFor(codec)
		for _, p := range ps {
			d.frameStart(p)
		}
		out, info, err := d.assemble(nil, ps)
		if err != nil {
			return
		}
		if len(out) == 0 {
			t.Fatal("empty access unit without an error")
		}
		if info.width < 0 || info.height < 0 {
			t.Fatalf("negative size %+v", info)
		}
		if codec == "h264" && !bytes.HasPrefix(out, annexBStart) {
			t.Fatalf("H.264 output does not start with a start code: % x", out[:min(8, len(out))])
		}
		// Depacketising is deterministic and does not depend on dst.
		again, _, err := newDepacketizerFor(codec).assemble(make([]byte, 3, 64), ps)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second run differs: %v", err)
		}
	})
}

func FuzzDepacketizeH264(f *testing.F) { fuzzDepacketizer(f, "h264") }
func FuzzDepacketizeVP8(f *testing.F)  { fuzzDepacketizer(f, "vp8") }
func FuzzDepacketizeVP9(f *testing.F)  { fuzzDepacketizer(f, "vp9") }
func FuzzDepacketizeAV1(f *testing.F)  { fuzzDepacketizer(f, "av1") }

// rtpStreamSeeds turns the depacketiser table into RTP streams: codec byte,
// then marshalled packets, in order and shuffled.
func rtpStreamSeeds() [][]byte {
	codecs := []string{"h264", "vp8", "vp9", "av1", "opus"}
	var seeds [][]byte
	for _, c := range depackCases {
		ci := 0
		for i, n := range codecs {
			if n == c.codec {
				ci = i
			}
		}
		var pkts [][]byte
		for i, p := range c.payloads {
			raw, _ := (&rtp.Packet{Header: rtp.Header{
				Version: 2, SequenceNumber: uint16(65534 + i), Timestamp: 3000,
				Marker: i == len(c.payloads)-1, PayloadType: 96,
			}, Payload: p}).Marshal()
			pkts = append(pkts, raw)
		}
		seeds = append(seeds, append([]byte{byte(ci)}, encodeChunks(pkts)...))
		if len(pkts) > 1 {
			pkts[0], pkts[len(pkts)-1] = pkts[len(pkts)-1], pkts[0]
			seeds = append(seeds, append([]byte{byte(ci)}, encodeChunks(pkts)...))
		}
	}
	return seeds
}

// FuzzRTPStream pushes arbitrary packets through the worker's pipeline
// (unwrap, jitter buffer, framer, clock): it must not panic, must deliver
// PTS in increasing order, and must not keep anything once time has passed.
func FuzzRTPStream(f *testing.F) {
	for _, s := range rtpStreamSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		codecs := []string{"h264", "vp8", "vp9", "av1", "opus"}
		codec := codecs[int(data[0])%len(codecs)]
		d := newDepacketizerFor(codec)
		video := codec != "opus"
		fr := newFramer(codec, d, video)
		j := newJitterBuffer(64, 50*time.Millisecond)
		var u seqUnwrapper
		clock := newTrackClock(Clock{epoch: t0}, 90000, &ParticipantClock{}, time.Second)
		var last time.Duration
		emit := func(r rawFrame) {
			p := clock.pts(r.ts, r.arrival)
			if p <= last && last != 0 {
				t.Fatalf("PTS %v after %v", p, last)
			}
			last = p
			if len(r.data) == 0 {
				t.Fatal("empty frame")
			}
		}
		now := t0
		for i, raw := range decodeChunks(data[1:]) {
			now = now.Add(time.Duration(i%7) * 5 * time.Millisecond)
			var pkt rtp.Packet
			if err := pkt.Unmarshal(raw); err != nil {
				continue
			}
			p := &rtpPacket{seq: u.unwrap(pkt.SequenceNumber), ts: pkt.Timestamp, marker: pkt.Marker, arrival: now}
			if !isPadding(&pkt) {
				p.payload = pkt.Payload
			}
			if j.push(p) {
				fr.loss()
			}
			for {
				q, skipped, ok := j.pop(now)
				if !ok {
					break
				}
				if skipped > 0 {
					fr.loss()
				}
				fr.push(q, emit)
			}
		}
		for {
			q, skipped, ok := j.pop(now.Add(time.Hour))
			if !ok {
				break
			}
			if skipped > 0 {
				fr.loss()
			}
			fr.push(q, emit)
		}
		if j.count != 0 {
			t.Fatalf("jitter buffer stuck with %d packets", j.count)
		}
	})
}

// TestWriteFuzzSeeds writes the seed corpus under testdata/fuzz when
// ROOMCAST_WRITE_FUZZ_SEEDS is set (the files are committed; f.Add adds the
// same seeds anyway).
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ROOMCAST_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set ROOMCAST_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data)))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	targets := map[string]string{"h264": "FuzzDepacketizeH264", "vp8": "FuzzDepacketizeVP8", "vp9": "FuzzDepacketizeVP9", "av1": "FuzzDepacketizeAV1"}
	for _, c := range depackCases {
		if tg, ok := targets[c.codec]; ok {
			write(tg, encodeChunks(c.payloads))
		}
	}
	for _, s := range rtpStreamSeeds() {
		write("FuzzRTPStream", s)
	}
}
