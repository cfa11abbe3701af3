package rtmp

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	gortmp "github.com/yutopp/go-rtmp"
	"github.com/yutopp/go-rtmp/message"
)

// TestAppendMessageRoundTrip: messages encoded by appendMessage, one after
// another on one chunk stream, are read back by go-rtmp's chunk reader (an
// independent implementation of RTMP 1.0 spec 5.3) with their type,
// timestamp, stream ID and payload intact, for bodies shorter than, equal
// to and several times the chunk size. (go-rtmp reads no Extended
// Timestamp in type 3 chunks; TestAppendMessageExtended checks those.)
func TestAppendMessageRoundTrip(t *testing.T) {
	const chunkSize = 128
	type msg struct {
		typeID byte
		ts     uint32
		body   []byte
	}
	body := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	msgs := []msg{
		{typeVideo, 0, body(5, 1)},
		{typeAudio, 0, body(chunkSize, 2)},
		{typeVideo, 33, body(3*chunkSize+17, 3)},
		{typeAudio, 21, body(chunkSize+1, 4)}, // timestamp goes back: fine with type 0 headers
		{typeVideo, 0xFFFFFE, body(2*chunkSize, 5)},
		{typeAudio, 0x12345678, body(chunkSize, 7)}, // extended, one chunk
	}
	var wire []byte
	for _, m := range msgs {
		wire = appendMessage(wire, csMedia, m.typeID, m.ts, 1, m.body, chunkSize)
	}
	cs := gortmp.NewChunkStreamer(bufio.NewReader(bytes.NewReader(wire)), io.Discard, nil)
	defer cs.Close()
	if err := cs.PeerState().SetChunkSize(chunkSize); err != nil {
		t.Fatal(err)
	}
	for i, want := range msgs {
		var cm gortmp.ChunkMessage
		csid, ts, err := cs.Read(&cm)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if csid != csMedia || ts != want.ts || cm.StreamID != 1 {
			t.Errorf("message %d: chunk stream %d, timestamp %#x, stream %d; want %d, %#x, 1", i, csid, ts, cm.StreamID, csMedia, want.ts)
		}
		var got []byte
		switch m := cm.Message.(type) {
		case *message.VideoMessage:
			if want.typeID != typeVideo {
				t.Errorf("message %d: video, want type %d", i, want.typeID)
			}
			got, _ = io.ReadAll(m.Payload)
		case *message.AudioMessage:
			if want.typeID != typeAudio {
				t.Errorf("message %d: audio, want type %d", i, want.typeID)
			}
			got, _ = io.ReadAll(m.Payload)
		default:
			t.Fatalf("message %d: %T", i, cm.Message)
		}
		if !bytes.Equal(got, want.body) {
			t.Errorf("message %d: payload of %d bytes differs from the %d sent", i, len(got), len(want.body))
		}
	}
}

// TestAppendMessageExtended: a timestamp past 24 bits is 0xFFFFFF in the
// type 0 header followed by the full value, which every type 3 chunk of the
// message repeats (as FFmpeg and librtmp write and nginx-rtmp reads it).
func TestAppendMessageExtended(t *testing.T) {
	body := bytes.Repeat([]byte{0xaa}, 10)
	got := appendMessage(nil, csMedia, typeVideo, 0x01020304, 1, body, 4)
	want := []byte{
		0x04, 0xff, 0xff, 0xff, 0, 0, 10, typeVideo, 1, 0, 0, 0, 1, 2, 3, 4, 0xaa, 0xaa, 0xaa, 0xaa,
		0xc4, 1, 2, 3, 4, 0xaa, 0xaa, 0xaa, 0xaa,
		0xc4, 1, 2, 3, 4, 0xaa, 0xaa,
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got  % x\nwant % x", got, want)
	}
}

// BenchmarkAppendMessage: a 12.5 kB video frame (3 Mb/s at 30 fps) in
// 4096-byte chunks.
func BenchmarkAppendMessage(b *testing.B) {
	body := make([]byte, 12500)
	var buf []byte
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		buf = appendMessage(buf[:0], csMedia, typeVideo, 1234, 1, body, 4096)
	}
}
