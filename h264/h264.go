// Package h264 holds the H.264 bitstream helpers the pure-Go muxers need
// (ITU-T H.264, ISO/IEC 14496-15): splitting an Annex B byte stream into NAL
// units, converting access units to length-prefixed (AVCC) form, and building
// the AVCDecoderConfigurationRecord (the avcC box body, the FLV sequence
// header) from SPS and PPS. No cgo.
package h264

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// NAL unit types used here (ITU-T H.264 table 7-1).
const (
	NALIDR = 5
	NALSPS = 7
	NALPPS = 8
	NALAUD = 9
)

// Errors.
var (
	ErrNoNALUnits  = errors.New("h264: no NAL units (not an Annex B stream)")
	ErrNoSPSPPS    = errors.New("h264: decoder configuration needs at least one SPS and one PPS")
	ErrNALTooLarge = errors.New("h264: NAL unit too large")
	errShortSPS    = errors.New("h264: SPS truncated")
)

var startCode = []byte{0, 0, 1}

// SplitAnnexB returns the NAL units of an Annex B byte stream (H.264 B.1)
// without their start codes, sharing b's memory. Bytes before the first start
// code and trailing zero bytes (the leading zero of a 4-byte start code,
// trailing_zero_8bits) belong to no NAL unit. 00 00 01 cannot occur inside a
// NAL unit (emulation prevention, 7.4.1), so no parsing is needed. Empty units
// are skipped; a stream without a start code yields nil.
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

// AppendAVCC appends the NAL units of the Annex B access unit au to dst, each
// prefixed by its 4-byte big-endian length (14496-15 5.3.3). Access unit
// delimiters are dropped (containers delimit samples themselves). It reports
// whether the unit holds an IDR slice.
func AppendAVCC(dst, au []byte) (out []byte, idr bool, err error) {
	n := 0
	for _, nal := range SplitAnnexB(au) {
		if nal[0]&0x1f == NALAUD {
			continue
		}
		if uint64(len(nal)) > math.MaxUint32 {
			return dst, false, ErrNALTooLarge
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nal)))
		dst = append(dst, nal...)
		if nal[0]&0x1f == NALIDR {
			idr = true
		}
		n++
	}
	if n == 0 {
		return dst, false, ErrNoNALUnits
	}
	return dst, idr, nil
}

// DecoderConfig builds the AVCDecoderConfigurationRecord (14496-15 5.3.3.1)
// from SPS and PPS given as an Annex B stream, with 4-byte NAL lengths. For
// the High profiles it carries the chroma format and bit depths read from the
// SPS, as 5.3.3.1 requires.
func DecoderConfig(annexB []byte) ([]byte, error) {
	var spss, ppss [][]byte
	for _, nal := range SplitAnnexB(annexB) {
		switch nal[0] & 0x1f {
		case NALSPS:
			spss = append(spss, nal)
		case NALPPS:
			ppss = append(ppss, nal)
		}
	}
	if len(spss) == 0 || len(ppss) == 0 {
		return nil, ErrNoSPSPPS
	}
	if len(spss) > 31 || len(ppss) > 255 {
		return nil, fmt.Errorf("h264: too many parameter sets: %d SPS, %d PPS", len(spss), len(ppss))
	}
	sps := spss[0]
	if len(sps) < 4 {
		return nil, fmt.Errorf("h264: SPS too short (%d bytes)", len(sps))
	}
	rec := []byte{1, sps[1], sps[2], sps[3], 0xfc | 3, 0xe0 | byte(len(spss))}
	for _, s := range spss {
		if len(s) > math.MaxUint16 {
			return nil, ErrNALTooLarge
		}
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(s)))
		rec = append(rec, s...)
	}
	rec = append(rec, byte(len(ppss)))
	for _, p := range ppss {
		if len(p) > math.MaxUint16 {
			return nil, ErrNALTooLarge
		}
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(p)))
		rec = append(rec, p...)
	}
	switch sps[1] {
	case 100, 110, 122, 144:
		chroma, lumaDepth, chromaDepth, err := spsChroma(sps)
		if err != nil {
			return nil, err
		}
		rec = append(rec, 0xfc|byte(chroma), 0xf8|byte(lumaDepth), 0xf8|byte(chromaDepth), 0)
	}
	return rec, nil
}

// spsChroma reads chroma_format_idc and the bit depths (minus 8) from a
// High-profile SPS NAL unit (H.264 7.3.2.1.1).
func spsChroma(sps []byte) (chroma, lumaDepth, chromaDepth uint, err error) {
	r := bitReader{b: unescapeRBSP(sps[4:])} // after header, profile, flags, level
	if _, err = r.ue(); err != nil {         // seq_parameter_set_id
		return
	}
	if chroma, err = r.ue(); err != nil {
		return
	}
	if chroma > 3 {
		return 0, 0, 0, fmt.Errorf("h264: SPS chroma_format_idc %d out of range", chroma)
	}
	if chroma == 3 {
		if _, err = r.bit(); err != nil { // separate_colour_plane_flag
			return
		}
	}
	if lumaDepth, err = r.ue(); err != nil {
		return
	}
	if chromaDepth, err = r.ue(); err != nil {
		return
	}
	if lumaDepth > 6 || chromaDepth > 6 {
		return 0, 0, 0, errors.New("h264: SPS bit depth out of range")
	}
	return chroma, lumaDepth, chromaDepth, nil
}

// unescapeRBSP removes emulation prevention bytes (00 00 03 -> 00 00, 7.4.1).
func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

type bitReader struct {
	b   []byte
	pos int // in bits
}

func (r *bitReader) bit() (uint, error) {
	if r.pos >= 8*len(r.b) {
		return 0, errShortSPS
	}
	v := uint(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v, nil
}

// ue reads an unsigned Exp-Golomb code (9.1), limited to 31 leading zeros.
func (r *bitReader) ue() (uint, error) {
	zeros := 0
	for {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		if zeros++; zeros > 31 {
			return 0, errors.New("h264: Exp-Golomb code too long")
		}
	}
	v := uint(0)
	for range zeros {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		v = v<<1 | b
	}
	return 1<<zeros - 1 + v, nil
}
