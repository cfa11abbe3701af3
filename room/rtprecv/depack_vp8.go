package rtprecv

// vp8Depacketizer implements RFC 7741 (RTP payload format for VP8).
type vp8Depacketizer struct{}

// vp8Descriptor parses the payload descriptor (RFC 7741 section 4.2) and
// returns the descriptor length, the S bit and the partition index.
func vp8Descriptor(p []byte) (n int, start bool, pid byte, ok bool) {
	if len(p) < 1 {
		return 0, false, 0, false
	}
	x := p[0]&0x80 != 0
	start = p[0]&0x10 != 0
	pid = p[0] & 0x07
	n = 1
	if x {
		if len(p) < 2 {
			return 0, false, 0, false
		}
		ext := p[1]
		n = 2
		if ext&0x80 != 0 { // I: PictureID, 7 or 15 bits (M bit)
			if len(p) < n+1 {
				return 0, false, 0, false
			}
			if p[n]&0x80 != 0 {
				n += 2
			} else {
				n++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			n++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			n++
		}
	}
	if len(p) < n {
		return 0, false, 0, false
	}
	return n, start, pid, true
}

func (vp8Depacketizer) frameStart(p []byte) bool {
	n, s, pid, ok := vp8Descriptor(p)
	return ok && s && pid == 0 && len(p) > n
}

func (vp8Depacketizer) assemble(dst []byte, payloads [][]byte) ([]byte, frameInfo, error) {
	out := dst[:0]
	for i, p := range payloads {
		n, s, pid, ok := vp8Descriptor(p)
		if !ok {
			return nil, frameInfo{}, errBadPayload
		}
		if i == 0 && (!s || pid != 0) {
			return nil, frameInfo{}, errBadPayload
		}
		out = append(out, p[n:]...)
	}
	if len(out) < 3 {
		return nil, frameInfo{}, errBadPayload
	}
	var info frameInfo
	// RFC 6386 section 9.1: frame tag bit 0 is 0 for key frames, which are
	// followed by the start code 9d 01 2a and 14-bit width and height.
	if out[0]&0x01 == 0 {
		if len(out) < 10 || out[3] != 0x9d || out[4] != 0x01 || out[5] != 0x2a {
			return nil, frameInfo{}, errBadPayload
		}
		info.keyframe = true
		info.width = int(out[6]) | int(out[7]&0x3f)<<8
		info.height = int(out[8]) | int(out[9]&0x3f)<<8
	}
	return out, info, nil
}
