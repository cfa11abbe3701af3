package rtprecv

import "github.com/roomcast/roomcast/bitstream"

// vp9Depacketizer implements RFC 9628 (RTP payload format for VP9), in
// flexible and non-flexible mode. A picture may hold several spatial layer
// frames (SVC); they are joined into one superframe with an index (VP9
// bitstream spec, Annex B) so that a decoder gets the whole picture at once.
type vp9Depacketizer struct{}

type vp9Desc struct {
	n          int // descriptor length
	interPred  bool
	start, end bool // B and E: first and last packet of a layer frame
	hasLayer   bool
	sid        byte
	interLayer bool // D: depends on the lower spatial layer of the picture
	// Sizes of the spatial layers, from the scalability structure.
	layers int
	widths [8]int
	height [8]int
}

// parseVP9Descriptor parses the payload descriptor (RFC 9628 section 4.2).
func parseVP9Descriptor(p []byte) (d vp9Desc, ok bool) {
	if len(p) < 1 {
		return d, false
	}
	b := p[0]
	i, pf, l, f, v := b&0x80 != 0, b&0x40 != 0, b&0x20 != 0, b&0x10 != 0, b&0x02 != 0
	d.interPred, d.start, d.end = pf, b&0x08 != 0, b&0x04 != 0
	n := 1
	need := func(k int) bool { return len(p) >= n+k }
	if i {
		if !need(1) {
			return d, false
		}
		if p[n]&0x80 != 0 {
			n += 2
		} else {
			n++
		}
	}
	if l {
		if !need(1) {
			return d, false
		}
		d.hasLayer = true
		d.sid = p[n] >> 1 & 0x07
		d.interLayer = p[n]&0x01 != 0
		n++
		if !f {
			n++ // TL0PICIDX
		}
	}
	if f && pf {
		// Up to three P_DIFF bytes; N (bit 0) says another follows.
		for k := 0; ; k++ {
			if k == 3 || !need(1) {
				return d, false
			}
			more := p[n]&0x01 != 0
			n++
			if !more {
				break
			}
		}
	}
	if v {
		if !need(1) {
			return d, false
		}
		ss := p[n]
		n++
		ns := int(ss>>5) + 1
		if ss&0x10 != 0 { // Y: resolutions
			if !need(4 * ns) {
				return d, false
			}
			d.layers = ns
			for i := 0; i < ns; i++ {
				d.widths[i] = int(p[n])<<8 | int(p[n+1])
				d.height[i] = int(p[n+2])<<8 | int(p[n+3])
				n += 4
			}
		}
		if ss&0x08 != 0 { // G: picture group description
			if !need(1) {
				return d, false
			}
			ng := int(p[n])
			n++
			for g := 0; g < ng; g++ {
				if !need(1) {
					return d, false
				}
				r := int(p[n]>>2) & 0x03
				n += 1 + r
			}
		}
	}
	if len(p) < n {
		return d, false
	}
	d.n = n
	return d, true
}

// frameStart: the first packet of a layer frame. With spatial layers the
// server may forward only the upper layer of a picture (k-SVC: upper layers
// of inter pictures do not use the lower ones), so it need not be layer 0.
func (vp9Depacketizer) frameStart(p []byte) bool {
	d, ok := parseVP9Descriptor(p)
	return ok && d.start && len(p) > d.n
}

func (vp9Depacketizer) assemble(dst []byte, payloads [][]byte) ([]byte, frameInfo, error) {
	out := dst[:0]
	var sizes [8]int
	frames := 0
	inFrame := false
	frameStart := 0
	var info frameInfo
	var ss vp9Desc // the descriptor carrying the scalability structure
	topSID := byte(0)
	for i, p := range payloads {
		d, ok := parseVP9Descriptor(p)
		if !ok {
			return nil, frameInfo{}, errBadPayload
		}
		if i == 0 {
			if !d.start {
				return nil, frameInfo{}, errBadPayload
			}
			// A picture a decoder can start from: its first layer frame is
			// neither predicted from earlier pictures nor from a lower
			// layer that is not there.
			info.keyframe = !d.interPred && (!d.hasLayer || d.sid == 0 || !d.interLayer)
		}
		if d.layers > 0 {
			ss = d
		}
		topSID = max(topSID, d.sid)
		if d.start {
			if inFrame || frames == len(sizes) {
				return nil, frameInfo{}, errBadPayload
			}
			inFrame = true
			frameStart = len(out)
		} else if !inFrame {
			return nil, frameInfo{}, errBadPayload
		}
		out = append(out, p[d.n:]...)
		if d.end {
			if len(out) == frameStart {
				return nil, frameInfo{}, errBadPayload
			}
			sizes[frames] = len(out) - frameStart
			frames++
			inFrame = false
		}
	}
	// A missing E bit on the last packet: the marker bit or the next
	// timestamp ended the picture, so take the frame as complete.
	if inFrame {
		if len(out) == frameStart {
			return nil, frameInfo{}, errBadPayload
		}
		sizes[frames] = len(out) - frameStart
		frames++
	}
	if frames == 0 {
		return nil, frameInfo{}, errBadPayload
	}
	if info.keyframe {
		// The picture shows its top layer.
		if int(topSID) < ss.layers {
			info.width, info.height = ss.widths[topSID], ss.height[topSID]
		} else {
			info.width, info.height = vp9KeyframeSize(out)
		}
	}
	if frames > 1 {
		// Superframe index: marker 0b110 | size bytes-1 (2 bits) | frames-1
		// (3 bits), the sizes little-endian, the marker again.
		mag := 1
		for _, s := range sizes[:frames] {
			for s>>(8*mag) != 0 {
				mag++
			}
		}
		if mag > 4 {
			return nil, frameInfo{}, errBadPayload
		}
		marker := byte(0xc0 | (mag-1)<<3 | (frames - 1))
		out = append(out, marker)
		for _, s := range sizes[:frames] {
			for k := 0; k < mag; k++ {
				out = append(out, byte(s>>(8*k)))
			}
		}
		out = append(out, marker)
	}
	return out, info, nil
}

// vp9KeyframeSize reads frame_width/height from a key frame's uncompressed
// header (VP9 bitstream spec 6.2); 0, 0 when it cannot.
func vp9KeyframeSize(f []byte) (int, int) {
	r := bitstream.NewReader(f)
	if r.Bits(2) != 2 { // frame_marker
		return 0, 0
	}
	profile := r.Bit() | r.Bit()<<1
	if profile == 3 {
		r.Bit()
	}
	if r.Bit() == 1 || r.Bit() != 0 { // show_existing_frame, frame_type (0 = key)
		return 0, 0
	}
	r.Bits(2) // show_frame, error_resilient_mode
	if r.Bits(24) != 0x498342 {
		return 0, 0
	}
	if profile >= 2 {
		r.Bit() // ten_or_twelve_bit
	}
	if r.Bits(3) != 7 { // color_space != CS_RGB
		r.Bit() // color_range
		if profile == 1 || profile == 3 {
			r.Bits(3)
		}
	} else if profile == 1 || profile == 3 {
		r.Bit()
	}
	w, h := int(r.Bits(16))+1, int(r.Bits(16))+1
	if r.Err() != nil {
		return 0, 0
	}
	return w, h
}
