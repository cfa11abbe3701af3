package rtmp

import "encoding/binary"

// RTMP message type IDs (RTMP 1.0 spec 7.1) of the media we send.
const (
	typeAudio    = 8
	typeVideo    = 9
	typeDataAMF0 = 18
)

// appendMessage appends one RTMP message to dst, split into chunks of at
// most chunkSize bytes on chunk stream csid (2..63, a one-byte basic
// header). Every message starts with a type 0 chunk (RTMP 1.0 spec
// 5.3.1.2.1: absolute timestamp, length, type, message stream ID), so the
// result never depends on what was sent before on that chunk stream; the
// rest of the message follows in type 3 chunks. A timestamp of 0xFFFFFF or
// more goes in the Extended Timestamp field, which type 3 chunks repeat, as
// FFmpeg and librtmp write and read it.
//
// Media messages are encoded here rather than by go-rtmp's streamer so that
// a packet (or a batch of them) reaches the socket in one write from the
// caller's goroutine: go-rtmp hands every chunk to its own goroutine and
// flushes after each.
func appendMessage(dst []byte, csid int, typeID byte, ts, streamID uint32, body []byte, chunkSize int) []byte {
	ext := ts >= 0xFFFFFF
	dst = append(dst, byte(csid&0x3f)) // fmt 0
	if ext {
		dst = append(dst, 0xff, 0xff, 0xff)
	} else {
		dst = append(dst, byte(ts>>16), byte(ts>>8), byte(ts))
	}
	n := len(body)
	dst = append(dst, byte(n>>16), byte(n>>8), byte(n), typeID)
	dst = binary.LittleEndian.AppendUint32(dst, streamID) // the one little-endian field
	if ext {
		dst = binary.BigEndian.AppendUint32(dst, ts)
	}
	for {
		k := min(len(body), chunkSize)
		dst = append(dst, body[:k]...)
		body = body[k:]
		if len(body) == 0 {
			return dst
		}
		dst = append(dst, 0xc0|byte(csid&0x3f)) // fmt 3: continuation
		if ext {
			dst = binary.BigEndian.AppendUint32(dst, ts)
		}
	}
}
