package rtprecv

import (
	"errors"
	"strings"
)

// errBadPayload marks an RTP payload (or a frame's set of payloads) that
// cannot be depacketised: truncated headers, fragments out of order,
// packetisations roomcast does not accept. The frame is dropped and, for
// video, a keyframe requested.
var errBadPayload = errors.New("rtprecv: malformed RTP payload")

// frameInfo is what a depacketiser learns about a frame besides its bytes.
type frameInfo struct {
	keyframe      bool
	width, height int
}

// depacketizer turns the RTP payloads of one frame (all packets sharing an
// RTP timestamp, in sequence order) into one access unit.
type depacketizer interface {
	// frameStart reports whether payload can be the first packet of a frame.
	frameStart(payload []byte) bool
	// assemble returns the access unit; dst is reused when large enough.
	assemble(dst []byte, payloads [][]byte) ([]byte, frameInfo, error)
}

// codecName maps an RTP MIME type to roomcast's codec name and depacketiser.
// Unknown codecs return "", nil.
func newDepacketizer(mimeType string) (string, depacketizer) {
	switch strings.ToLower(mimeType) {
	case "video/h264":
		return "h264", &h264Depacketizer{}
	case "video/vp8":
		return "vp8", vp8Depacketizer{}
	case "video/vp9":
		return "vp9", vp9Depacketizer{}
	case "video/av1":
		return "av1", av1Depacketizer{}
	case "audio/opus":
		return "opus", opusDepacketizer{}
	}
	return "", nil
}

// opusDepacketizer passes Opus packets through: RFC 7587 puts exactly one
// Opus packet in each RTP payload.
type opusDepacketizer struct{}

func (opusDepacketizer) frameStart([]byte) bool { return true }

func (opusDepacketizer) assemble(dst []byte, payloads [][]byte) ([]byte, frameInfo, error) {
	if len(payloads) != 1 || len(payloads[0]) == 0 {
		return nil, frameInfo{}, errBadPayload
	}
	return append(dst[:0], payloads[0]...), frameInfo{keyframe: true}, nil
}
