package rtprecv

import "github.com/roomcast/roomcast/bitstream"

// h264Depacketizer implements RFC 6184 in packetization modes 0 (single NAL
// unit) and 1 (non-interleaved: single NAL, STAP-A, FU-A). It does not trust
// the negotiated packetization-mode (Chromium sends mode 1 while the
// subscriber's fmtp may say 0): every packet is parsed by its own NAL type.
// The interleaved mode's STAP-B, MTAP and FU-B are rejected; WebRTC never
// negotiates it.
//
// It remembers the last SPS and PPS so that every IDR access unit it emits
// starts with them: a decoder joining mid-stream needs them, and a publisher
// may send them only once.
type h264Depacketizer struct {
	sps, pps []byte
	nals     []int // scratch: start offsets of the NAL units in the output
}

// NAL unit types (ITU-T H.264 table 7-1) and RFC 6184 packet types.
const (
	h264NonIDR = bitstream.H264NonIDR
	h264IDR    = bitstream.H264IDR
	h264SEI    = bitstream.H264SEI
	h264SPS    = bitstream.H264SPS
	h264PPS    = bitstream.H264PPS
	h264AUD    = bitstream.H264AUD
	h264STAPA  = 24
	h264FUA    = 28
)

var annexBStart = []byte{0, 0, 0, 1}

// h264NALStartsPicture reports whether a NAL unit (header byte first) can
// open an access unit: parameter sets, SEI and delimiters come before the
// first slice, and a slice opens the picture when first_mb_in_slice is 0,
// whose ue(v) code is the single bit 1.
func h264NALStartsPicture(typ byte, rest []byte) bool {
	switch typ {
	case h264SEI, h264SPS, h264PPS, h264AUD:
		return true
	case h264NonIDR, h264IDR:
		return len(rest) > 0 && rest[0]&0x80 != 0
	}
	return false
}

func (*h264Depacketizer) frameStart(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch typ := p[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		return h264NALStartsPicture(typ, p[1:])
	case typ == h264STAPA:
		if len(p) < 4 {
			return false
		}
		return h264NALStartsPicture(p[3]&0x1f, p[4:])
	case typ == h264FUA:
		return p[1]&0x80 != 0 && h264NALStartsPicture(p[1]&0x1f, p[2:])
	}
	return false
}

func (d *h264Depacketizer) assemble(dst []byte, payloads [][]byte) ([]byte, frameInfo, error) {
	out := dst[:0]
	d.nals = d.nals[:0]
	inFU := false
	emit := func(nal []byte) {
		d.nals = append(d.nals, len(out)+len(annexBStart))
		out = append(out, annexBStart...)
		out = append(out, nal...)
	}
	for _, p := range payloads {
		if len(p) < 1 {
			return nil, frameInfo{}, errBadPayload
		}
		switch typ := p[0] & 0x1f; {
		case typ >= 1 && typ <= 23:
			if inFU || len(p) < 2 {
				return nil, frameInfo{}, errBadPayload
			}
			emit(p)
		case typ == h264STAPA:
			if inFU {
				return nil, frameInfo{}, errBadPayload
			}
			// RFC 6184 5.7.1: 16-bit size, then the NAL unit, repeated.
			rest := p[1:]
			if len(rest) == 0 {
				return nil, frameInfo{}, errBadPayload
			}
			for len(rest) > 0 {
				if len(rest) < 2 {
					return nil, frameInfo{}, errBadPayload
				}
				n := int(rest[0])<<8 | int(rest[1])
				if n < 1 || len(rest) < 2+n {
					return nil, frameInfo{}, errBadPayload
				}
				emit(rest[2 : 2+n])
				rest = rest[2+n:]
			}
		case typ == h264FUA:
			// RFC 6184 5.8: FU indicator, FU header (S, E, R, type), data.
			if len(p) < 3 {
				return nil, frameInfo{}, errBadPayload
			}
			start, end := p[1]&0x80 != 0, p[1]&0x40 != 0
			switch {
			case start && end:
				return nil, frameInfo{}, errBadPayload
			case start:
				if inFU {
					return nil, frameInfo{}, errBadPayload
				}
				emit([]byte{p[0]&0xe0 | p[1]&0x1f})
				inFU = true
			case !inFU:
				return nil, frameInfo{}, errBadPayload
			}
			out = append(out, p[2:]...)
			if end {
				inFU = false
			}
		default:
			return nil, frameInfo{}, errBadPayload
		}
	}
	if inFU || len(d.nals) == 0 {
		return nil, frameInfo{}, errBadPayload
	}

	var info frameInfo
	haveSPS, havePPS := false, false
	for i, off := range d.nals {
		end := len(out)
		if i+1 < len(d.nals) {
			end = d.nals[i+1] - len(annexBStart)
		}
		nal := out[off:end]
		switch nal[0] & 0x1f {
		case h264IDR:
			info.keyframe = true
		case h264SPS:
			haveSPS = true
			d.sps = append(d.sps[:0], nal...)
		case h264PPS:
			havePPS = true
			d.pps = append(d.pps[:0], nal...)
		}
	}
	if !info.keyframe {
		return out, info, nil
	}
	if (!haveSPS || !havePPS) && d.sps != nil && d.pps != nil {
		// Put the remembered parameter sets in front of the IDR.
		pre := make([]byte, 0, len(out)+len(d.sps)+len(d.pps)+8)
		if !haveSPS {
			pre = append(append(pre, annexBStart...), d.sps...)
		}
		if !havePPS {
			pre = append(append(pre, annexBStart...), d.pps...)
		}
		out = append(pre, out...)
	}
	if d.sps != nil {
		if w, h, ok := bitstream.H264SPSSize(d.sps); ok {
			info.width, info.height = w, h
		}
	}
	return out, info, nil
}
