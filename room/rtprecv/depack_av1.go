package rtprecv

import "github.com/roomcast/roomcast/bitstream"

// av1Depacketizer implements the AOM "RTP Payload Format for AV1" (v1.0.0):
// an aggregation header, then OBU elements, each but the last (when W > 0)
// prefixed with its LEB128 length; an OBU may be fragmented across packets
// (Z: this packet continues the previous one's last OBU, Y: the last OBU
// continues in the next packet). The output is a temporal unit in the
// low-overhead bitstream format: every OBU with obu_has_size_field set.
// Temporal delimiters and tile list OBUs are dropped, as the format says
// receivers should.
type av1Depacketizer struct{}

const (
	av1OBUSequenceHeader    = 1
	av1OBUTemporalDelimiter = 2
	av1OBUTileList          = 8
)

func readLEB128(p []byte) (v uint64, n int, ok bool) {
	for n < len(p) && n < 8 {
		b := p[n]
		v |= uint64(b&0x7f) << (7 * n)
		n++
		if b&0x80 == 0 {
			return v, n, true
		}
	}
	return 0, 0, false
}

func appendLEB128(dst []byte, v uint64) []byte {
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

func (av1Depacketizer) frameStart(p []byte) bool {
	return len(p) > 1 && p[0]&0x80 == 0 // Z = 0: does not continue an OBU
}

func (av1Depacketizer) assemble(dst []byte, payloads [][]byte) ([]byte, frameInfo, error) {
	out := dst[:0]
	var info frameInfo
	var frag []byte // OBU being reassembled across packets
	inFrag := false
	for i, p := range payloads {
		if len(p) < 2 {
			return nil, frameInfo{}, errBadPayload
		}
		z, y, w, n := p[0]&0x80 != 0, p[0]&0x40 != 0, int(p[0]>>4)&0x03, p[0]&0x08 != 0
		if i == 0 {
			if z {
				return nil, frameInfo{}, errBadPayload
			}
			info.keyframe = n
		}
		if z != inFrag {
			return nil, frameInfo{}, errBadPayload
		}
		rest := p[1:]
		for k := 1; len(rest) > 0; k++ {
			var elem []byte
			if w != 0 && k == w {
				elem, rest = rest, nil
			} else {
				size, m, ok := readLEB128(rest)
				if !ok || uint64(len(rest)-m) < size {
					return nil, frameInfo{}, errBadPayload
				}
				elem, rest = rest[m:m+int(size)], rest[m+int(size):]
			}
			if w != 0 && k > w {
				return nil, frameInfo{}, errBadPayload
			}
			last := len(rest) == 0
			if k == 1 && z {
				frag = append(frag, elem...)
			} else {
				frag = append(frag[:0], elem...)
			}
			if last && y {
				inFrag = true
				break
			}
			inFrag = false
			var err error
			if out, err = appendOBU(out, frag, &info); err != nil {
				return nil, frameInfo{}, err
			}
		}
		if len(rest) == 0 && !y {
			inFrag = false
		}
	}
	if inFrag || len(out) == 0 {
		return nil, frameInfo{}, errBadPayload
	}
	return out, info, nil
}

// appendOBU writes one whole OBU with its size field set; a sequence header
// gives the frame size.
func appendOBU(out, obu []byte, info *frameInfo) ([]byte, error) {
	if len(obu) < 1 || obu[0]&0x80 != 0 { // forbidden bit
		return nil, errBadPayload
	}
	hdr := 1
	if obu[0]&0x04 != 0 { // extension header
		hdr = 2
	}
	if len(obu) < hdr {
		return nil, errBadPayload
	}
	payload := obu[hdr:]
	if obu[0]&0x02 != 0 { // has_size_field already: trust it, drop trailing bytes
		size, m, ok := readLEB128(payload)
		if !ok || uint64(len(payload)-m) < size {
			return nil, errBadPayload
		}
		payload = payload[m : m+int(size)]
	}
	switch obu[0] >> 3 & 0x0f {
	case av1OBUTemporalDelimiter, av1OBUTileList:
		return out, nil
	case av1OBUSequenceHeader:
		if w, h, ok := av1MaxFrameSize(payload); ok {
			info.width, info.height = w, h
		}
	}
	out = append(out, obu[0]|0x02)
	if hdr == 2 {
		out = append(out, obu[1])
	}
	out = appendLEB128(out, uint64(len(payload)))
	return append(out, payload...), nil
}

// av1MaxFrameSize reads max_frame_width/height from a sequence header OBU
// payload (AV1 spec 5.5.1), skipping the timing and operating-point fields
// in front of them.
func av1MaxFrameSize(p []byte) (int, int, bool) {
	r := bitstream.NewReader(p)
	r.Bits(3)         // seq_profile
	r.Bit()           // still_picture
	if r.Bit() == 1 { // reduced_still_picture_header
		r.Bits(5) // seq_level_idx[0]
	} else {
		decoderModel, bufferDelayBits := false, 0
		if r.Bit() == 1 { // timing_info_present_flag
			r.Bits(32)        // num_units_in_display_tick
			r.Bits(32)        // time_scale
			if r.Bit() == 1 { // equal_picture_interval: uvlc()
				lz := 0
				for r.Bit() == 0 && r.Err() == nil {
					if lz++; lz >= 32 {
						return 0, 0, false
					}
				}
				r.Bits(lz)
			}
			if r.Bit() == 1 { // decoder_model_info_present_flag
				decoderModel = true
				bufferDelayBits = int(r.Bits(5)) + 1
				r.Bits(32) // num_units_in_decoding_tick
				r.Bits(5)  // buffer_removal_time_length_minus_1
				r.Bits(5)  // frame_presentation_time_length_minus_1
			}
		}
		initialDisplayDelay := r.Bit() == 1
		ops := int(r.Bits(5)) + 1
		for i := 0; i < ops && r.Err() == nil; i++ {
			r.Bits(12)         // operating_point_idc
			if r.Bits(5) > 7 { // seq_level_idx
				r.Bit() // seq_tier
			}
			if decoderModel && r.Bit() == 1 {
				r.Bits(bufferDelayBits) // decoder_buffer_delay
				r.Bits(bufferDelayBits) // encoder_buffer_delay
				r.Bit()                 // low_delay_mode_flag
			}
			if initialDisplayDelay && r.Bit() == 1 {
				r.Bits(4)
			}
		}
	}
	wb, hb := int(r.Bits(4))+1, int(r.Bits(4))+1
	w, h := int(r.Bits(wb))+1, int(r.Bits(hb))+1
	if r.Err() != nil {
		return 0, 0, false
	}
	return w, h, true
}
