package rtmp

// FLV packaging of H.264 and AAC, as pure functions.
//
// RTMP audio and video messages carry the body of an FLV tag (Adobe "Video
// File Format Specification" v10.1, annex E.4.2 AUDIODATA and E.4.3
// VIDEODATA): a one-byte codec header, a packet type, for AVC a 24-bit signed
// composition time offset, then either a decoder configuration (the
// "sequence header") or coded data. H.264 data is AVCC: each NAL unit
// prefixed by its 4-byte big-endian length (ISO/IEC 14496-15 5.3.3), not the
// Annex B start codes that encoders emit.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/roomcast/roomcast/bitstream"
	"github.com/roomcast/roomcast/media"
)

// NAL unit types used here (ITU-T H.264 table 7-1).
const (
	nalIDR = bitstream.H264IDR
	nalSPS = bitstream.H264SPS
	nalPPS = bitstream.H264PPS
	nalAUD = bitstream.H264AUD
)

// FLV tag body constants (E.4.2.1, E.4.3.1).
const (
	flvCodecAVC       = 7
	flvFrameKey       = 1 << 4
	flvFrameInter     = 2 << 4
	flvAVCSeqHeader   = 0
	flvAVCNALU        = 1
	flvAACSeqHeader   = 0
	flvAACRaw         = 1
	flvSoundAACHeader = 10<<4 | 3<<2 | 1<<1 | 1 // AAC; rate, size and type are fixed for AAC
)

var (
	errNoNALUnits  = errors.New("no NAL units (not an H.264 Annex B stream)")
	errNoSPSPPS    = errors.New("decoder configuration needs at least one SPS and one PPS")
	errNALTooLarge = errors.New("NAL unit too large")
)

// appendAVCC appends the NAL units of the Annex B access unit au to dst as
// AVCC (4-byte lengths). Access unit delimiters are dropped: FLV frames are
// delimited by tags. It reports whether the unit holds an IDR slice.
func appendAVCC(dst, au []byte) (out []byte, idr bool, err error) {
	nals := bitstream.SplitAnnexB(au)
	n := 0
	for _, nal := range nals {
		if nal[0]&0x1f == nalAUD {
			continue
		}
		if uint64(len(nal)) > math.MaxUint32 {
			return dst, false, errNALTooLarge
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(nal)))
		dst = append(dst, nal...)
		if nal[0]&0x1f == nalIDR {
			idr = true
		}
		n++
	}
	if n == 0 {
		return dst, false, errNoNALUnits
	}
	return dst, idr, nil
}

// inBandParameterSets returns the SPS and PPS NAL units of an access unit
// as an Annex B stream, or nil when it carries none.
func inBandParameterSets(au []byte) []byte {
	var out []byte
	hasSPS, hasPPS := false, false
	for _, nal := range bitstream.SplitAnnexB(au) {
		switch nal[0] & 0x1f {
		case nalSPS:
			hasSPS = true
		case nalPPS:
			hasPPS = true
		default:
			continue
		}
		out = append(append(out, 0, 0, 0, 1), nal...)
	}
	if !hasSPS || !hasPPS {
		return nil
	}
	return out
}

// avcDecoderConfig builds the AVCDecoderConfigurationRecord (ISO/IEC
// 14496-15 5.3.3.1) from SPS and PPS given as an Annex B stream, with
// 4-byte NAL lengths. For the High profiles the record carries the
// chroma format and bit depths read from the SPS, as 5.3.3.1 requires.
func avcDecoderConfig(annexB []byte) ([]byte, error) {
	var spss, ppss [][]byte
	for _, nal := range bitstream.SplitAnnexB(annexB) {
		switch nal[0] & 0x1f {
		case nalSPS:
			spss = append(spss, nal)
		case nalPPS:
			ppss = append(ppss, nal)
		}
	}
	if len(spss) == 0 || len(ppss) == 0 {
		return nil, errNoSPSPPS
	}
	if len(spss) > 31 || len(ppss) > 255 {
		return nil, fmt.Errorf("too many parameter sets: %d SPS, %d PPS", len(spss), len(ppss))
	}
	sps := spss[0]
	if len(sps) < 4 {
		return nil, fmt.Errorf("SPS too short (%d bytes)", len(sps))
	}
	rec := []byte{1, sps[1], sps[2], sps[3], 0xfc | 3, 0xe0 | byte(len(spss))}
	for _, s := range spss {
		if len(s) > math.MaxUint16 {
			return nil, errNALTooLarge
		}
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(s)))
		rec = append(rec, s...)
	}
	rec = append(rec, byte(len(ppss)))
	for _, p := range ppss {
		if len(p) > math.MaxUint16 {
			return nil, errNALTooLarge
		}
		rec = binary.BigEndian.AppendUint16(rec, uint16(len(p)))
		rec = append(rec, p...)
	}
	switch sps[1] {
	case 100, 110, 122, 144:
		chroma, lumaDepth, chromaDepth, err := bitstream.H264SPSChroma(sps)
		if err != nil {
			return nil, err
		}
		rec = append(rec, 0xfc|byte(chroma), 0xf8|byte(lumaDepth), 0xf8|byte(chromaDepth), 0)
	}
	return rec, nil
}

// videoSeqHeaderTag is the FLV video body announcing the decoder
// configuration (AVCPacketType 0, composition time 0).
func videoSeqHeaderTag(config []byte) []byte {
	return append([]byte{flvFrameKey | flvCodecAVC, flvAVCSeqHeader, 0, 0, 0}, config...)
}

// videoTag appends the FLV video body for one access unit given in Annex B:
// frame type, AVCPacketType 1, the composition time offset (PTS-DTS in ms,
// E.4.3.1 "CompositionTime", signed 24-bit) and the AVCC data.
func videoTag(dst []byte, key bool, cts int32, annexB []byte) ([]byte, error) {
	ft := byte(flvFrameInter)
	if key {
		ft = flvFrameKey
	}
	cts = max(min(cts, 1<<23-1), -1<<23)
	dst = append(dst, ft|flvCodecAVC, flvAVCNALU, byte(cts>>16), byte(cts>>8), byte(cts))
	dst, _, err := appendAVCC(dst, annexB)
	return dst, err
}

// audioSeqHeaderTag is the FLV audio body carrying the AudioSpecificConfig
// (ISO/IEC 14496-3 1.6.2.1).
func audioSeqHeaderTag(asc []byte) []byte {
	return append([]byte{flvSoundAACHeader, flvAACSeqHeader}, asc...)
}

// audioTag appends the FLV audio body for one raw AAC access unit.
func audioTag(dst, au []byte) []byte {
	dst = append(dst, flvSoundAACHeader, flvAACRaw)
	return append(dst, au...)
}

// onMetaData returns the AMF0 body of the @setDataFrame data message: the
// string "onMetaData" followed by an ECMA array of stream properties (FLV
// spec E.5). Keys are written in a fixed order so the bytes are
// reproducible.
func onMetaData(info media.StreamInfo) []byte {
	var b []byte
	b = amfString(b, "onMetaData")
	type kv struct {
		k string
		v any
	}
	props := []kv{{"duration", 0.0}, {"fileSize", 0.0}}
	if len(info.VideoConfig) > 0 {
		props = append(props,
			kv{"width", float64(info.Width)},
			kv{"height", float64(info.Height)},
			kv{"videocodecid", float64(flvCodecAVC)},
			kv{"videodatarate", float64(info.VideoBitrate) / 1000},
			kv{"framerate", float64(info.FPS)},
		)
	}
	if len(info.AudioConfig) > 0 {
		props = append(props,
			kv{"audiocodecid", 10.0},
			kv{"audiodatarate", float64(info.AudioBitrate) / 1000},
			kv{"audiosamplerate", float64(info.SampleRate)},
			kv{"audiosamplesize", 16.0},
			kv{"stereo", info.Channels == 2},
		)
	}
	props = append(props, kv{"encoder", "roomcast"})
	b = append(b, 0x08) // ECMA array
	b = binary.BigEndian.AppendUint32(b, uint32(len(props)))
	for _, p := range props {
		b = binary.BigEndian.AppendUint16(b, uint16(len(p.k)))
		b = append(b, p.k...)
		switch v := p.v.(type) {
		case float64:
			b = append(b, 0x00)
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		case bool:
			b = append(b, 0x01, 0)
			if v {
				b[len(b)-1] = 1
			}
		case string:
			b = amfString(b, v)
		}
	}
	return append(b, 0, 0, 9) // object end marker
}

func amfString(b []byte, s string) []byte {
	b = append(b, 0x02)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}
