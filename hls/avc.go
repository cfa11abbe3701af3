package hls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/roomcast/roomcast/bitstream"
)

// NAL unit types used here (ITU-T H.264 table 7-1).
const (
	nalSPS = 7
	nalPPS = 8
	nalAUD = 9
)

var errNoNALUnits = errors.New("no NAL units (not an H.264 Annex B stream)")

// appendAVCC appends the NAL units of the Annex B access unit au to dst, each
// prefixed by its 4-byte length (ISO/IEC 14496-15 5.3.3: an MP4 sample).
// Access unit delimiters are dropped (samples are delimited by the trun).
func appendAVCC(dst, au []byte) ([]byte, error) {
	n := 0
	for _, nal := range bitstream.SplitAnnexB(au) {
		if bitstream.H264Type(nal) == nalAUD {
			continue
		}
		if uint64(len(nal)) > math.MaxUint32 {
			return dst, errors.New("NAL unit too large")
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nal)))
		dst = append(dst, nal...)
		n++
	}
	if n == 0 {
		return dst, errNoNALUnits
	}
	return dst, nil
}

// avcDecoderConfig builds the AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1, the avcC box body) from SPS and PPS given as an Annex B stream,
// with 4-byte NAL lengths; for the High profiles with the chroma format and
// bit depths read from the SPS, as 5.3.3.1 requires.
func avcDecoderConfig(annexB []byte) ([]byte, error) {
	var spss, ppss [][]byte
	for _, nal := range bitstream.SplitAnnexB(annexB) {
		switch bitstream.H264Type(nal) {
		case nalSPS:
			spss = append(spss, nal)
		case nalPPS:
			ppss = append(ppss, nal)
		}
	}
	switch {
	case len(spss) == 0 || len(ppss) == 0:
		return nil, errors.New("decoder configuration needs an SPS and a PPS")
	case len(spss) > 31 || len(ppss) > 255:
		return nil, fmt.Errorf("too many parameter sets: %d SPS, %d PPS", len(spss), len(ppss))
	case len(spss[0]) < 4:
		return nil, fmt.Errorf("SPS too short (%d bytes)", len(spss[0]))
	}
	sps := spss[0]
	rec := []byte{1, sps[1], sps[2], sps[3], 0xfc | 3, 0xe0 | byte(len(spss))}
	for _, s := range spss {
		if len(s) > math.MaxUint16 {
			return nil, errors.New("SPS too large")
		}
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(s)))
		rec = append(rec, s...)
	}
	rec = append(rec, byte(len(ppss)))
	for _, p := range ppss {
		if len(p) > math.MaxUint16 {
			return nil, errors.New("PPS too large")
		}
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(p)))
		rec = append(rec, p...)
	}
	switch sps[1] {
	case 100, 110, 122, 144:
		chroma, luma, chromaDepth, err := bitstream.H264SPSChroma(sps)
		if err != nil {
			return nil, err
		}
		rec = append(rec, 0xfc|byte(chroma), 0xf8|byte(luma), 0xf8|byte(chromaDepth), 0)
	}
	return rec, nil
}
