package bitstream

import "bytes"

// H.264 NAL unit types (ITU-T H.264 table 7-1) roomcast looks at.
const (
	H264NonIDR = 1
	H264IDR    = 5
	H264SEI    = 6
	H264SPS    = 7
	H264PPS    = 8
	H264AUD    = 9
)

// H264Type is the nal_unit_type of a NAL unit (0 for an empty one).
func H264Type(nal []byte) byte {
	if len(nal) == 0 {
		return 0
	}
	return nal[0] & 0x1f
}

// startCode is the 3-byte Annex B start code; a 4-byte one is a zero byte
// and this.
var startCode = []byte{0, 0, 1}

// SplitAnnexB returns the NAL units of an H.264 Annex B byte stream (ITU-T
// H.264 B.1) without their start codes, sharing b's memory. Bytes before
// the first start code and trailing zero bytes (the leading zero of a
// 4-byte start code, trailing_zero_8bits) are not part of any NAL unit.
// Inside a NAL unit 00 00 01 cannot occur (emulation prevention, 7.4.1), so
// the search needs no parsing. Empty units are skipped; a stream with no
// start code yields nil.
func SplitAnnexB(b []byte) [][]byte {
	i := bytes.Index(b, startCode)
	if i < 0 {
		return nil
	}
	var nals [][]byte
	b = b[i+3:]
	for len(b) > 0 {
		next := bytes.Index(b, startCode)
		nal := b
		if next >= 0 {
			nal = b[:next]
			b = b[next+3:]
		} else {
			b = nil
		}
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		if len(nal) > 0 {
			nals = append(nals, nal)
		}
	}
	return nals
}

// AppendAnnexB appends nal to dst with a 4-byte start code.
func AppendAnnexB(dst, nal []byte) []byte {
	return append(append(dst, 0, 0, 0, 1), nal...)
}
