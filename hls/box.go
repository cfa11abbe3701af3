package hls

// The fragmented MP4 boxes of CMAF/HLS (ISO/IEC 14496-12, ISO/IEC 23000-19,
// RFC 8216 3.3): an initialization segment (ftyp + moov with one trak per
// stream and mvex) and media segments (moof + mdat), built as byte slices.
// Pure functions of their inputs so they test without files.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Track IDs in the init segment and every moof.
const (
	videoTrackID = 1
	audioTrackID = 2
)

// videoTimescale counts 90 kHz ticks: it represents every common frame rate
// exactly and is what MPEG-2 TS players expect.
const videoTimescale = 90000

// Sample flags (14496-12 8.8.3.1): sample_depends_on = 2 (an I picture),
// or 1 with sample_is_non_sync_sample set.
const (
	flagsSync    = 0x02000000
	flagsNonSync = 0x01010000
)

// boxes builds nested boxes into one buffer; open returns the offset whose
// size close patches.
type boxes struct{ b []byte }

func (w *boxes) open(typ string) int {
	off := len(w.b)
	w.b = append(w.b, 0, 0, 0, 0)
	w.b = append(w.b, typ...)
	return off
}

func (w *boxes) openFull(typ string, version byte, flags uint32) int {
	off := w.open(typ)
	w.u32(uint32(version)<<24 | flags&0xffffff)
	return off
}

func (w *boxes) close(off int) {
	binary.BigEndian.PutUint32(w.b[off:], uint32(len(w.b)-off))
}

func (w *boxes) u8(v uint8)   { w.b = append(w.b, v) }
func (w *boxes) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *boxes) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *boxes) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *boxes) raw(p []byte) { w.b = append(w.b, p...) }
func (w *boxes) zeros(n int)  { w.b = append(w.b, make([]byte, n)...) }
func (w *boxes) matrix() {
	w.u32(0x00010000)
	w.zeros(12)
	w.u32(0x00010000)
	w.zeros(12)
	w.u32(0x40000000)
}
func (w *boxes) leaf(typ string, body ...byte) { off := w.open(typ); w.raw(body); w.close(off) }

// trackInfo is what the init segment says about one stream.
type trackInfo struct {
	id        uint32
	video     bool
	timescale uint32
	width     int
	height    int
	avcC      []byte // video: AVCDecoderConfigurationRecord
	asc       []byte // audio: AudioSpecificConfig
	channels  int
	rate      int
	bitrate   int
}

var errConfig = errors.New("stream configuration")

// initSegment builds ftyp + moov for the given tracks (14496-12 8.8.1: an
// empty sample table in each trak, mvex/trex announcing the fragments).
func initSegment(tracks []trackInfo) []byte {
	w := &boxes{}
	// ftyp: CMAF brand cmfc among ISO 6 (tfdt, default-base-is-moof).
	f := w.open("ftyp")
	w.raw([]byte("iso6"))
	w.u32(0)
	w.raw([]byte("iso6cmfcmp41"))
	w.close(f)

	moov := w.open("moov")
	mvhd := w.openFull("mvhd", 0, 0)
	w.u32(0)    // creation_time
	w.u32(0)    // modification_time
	w.u32(1000) // timescale
	w.u32(0)    // duration: unknown, fragments follow
	w.u32(0x00010000)
	w.u16(0x0100)
	w.zeros(10)
	w.matrix()
	w.zeros(24)
	w.u32(uint32(len(tracks) + 1)) // next_track_ID
	w.close(mvhd)
	for _, t := range tracks {
		writeTrak(w, t)
	}
	mvex := w.open("mvex")
	for _, t := range tracks {
		trex := w.openFull("trex", 0, 0)
		w.u32(t.id)
		w.u32(1) // default_sample_description_index
		w.u32(0) // default_sample_duration
		w.u32(0) // default_sample_size
		w.u32(0) // default_sample_flags
		w.close(trex)
	}
	w.close(mvex)
	w.close(moov)
	return w.b
}

func writeTrak(w *boxes, t trackInfo) {
	trak := w.open("trak")
	tkhd := w.openFull("tkhd", 0, 3) // enabled, in movie
	w.u32(0)
	w.u32(0)
	w.u32(t.id)
	w.u32(0) // reserved
	w.u32(0) // duration
	w.zeros(8)
	w.u16(0) // layer
	w.u16(0) // alternate_group
	if t.video {
		w.u16(0)
	} else {
		w.u16(0x0100) // volume
	}
	w.u16(0)
	w.matrix()
	w.u32(uint32(t.width) << 16)
	w.u32(uint32(t.height) << 16)
	w.close(tkhd)

	mdia := w.open("mdia")
	mdhd := w.openFull("mdhd", 0, 0)
	w.u32(0)
	w.u32(0)
	w.u32(t.timescale)
	w.u32(0)
	w.u16(0x55c4) // language "und" (ISO 639-2/T packed, 8.4.2.3)
	w.u16(0)
	w.close(mdhd)
	hdlr := w.openFull("hdlr", 0, 0)
	w.u32(0)
	if t.video {
		w.raw([]byte("vide"))
	} else {
		w.raw([]byte("soun"))
	}
	w.zeros(12)
	if t.video {
		w.raw([]byte("VideoHandler\x00"))
	} else {
		w.raw([]byte("SoundHandler\x00"))
	}
	w.close(hdlr)

	minf := w.open("minf")
	if t.video {
		w.leaf("vmhd", 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
	} else {
		w.leaf("smhd", 0, 0, 0, 0, 0, 0, 0, 0)
	}
	dinf := w.open("dinf")
	dref := w.openFull("dref", 0, 0)
	w.u32(1)
	w.leaf("url ", 0, 0, 0, 1) // self-contained
	w.close(dref)
	w.close(dinf)

	stbl := w.open("stbl")
	stsd := w.openFull("stsd", 0, 0)
	w.u32(1)
	if t.video {
		writeAVC1(w, t)
	} else {
		writeMP4A(w, t)
	}
	w.close(stsd)
	w.leaf("stts", 0, 0, 0, 0, 0, 0, 0, 0)
	w.leaf("stsc", 0, 0, 0, 0, 0, 0, 0, 0)
	w.leaf("stsz", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	w.leaf("stco", 0, 0, 0, 0, 0, 0, 0, 0)
	w.close(stbl)
	w.close(minf)
	w.close(mdia)
	w.close(trak)
}

// writeAVC1 writes the visual sample entry (14496-12 12.1.3) with its avcC
// (14496-15 5.4.2).
func writeAVC1(w *boxes, t trackInfo) {
	e := w.open("avc1")
	w.zeros(6)
	w.u16(1) // data_reference_index
	w.zeros(16)
	w.u16(uint16(t.width))
	w.u16(uint16(t.height))
	w.u32(0x00480000) // 72 dpi
	w.u32(0x00480000)
	w.u32(0)
	w.u16(1) // frame_count
	w.zeros(32)
	w.u16(0x0018) // depth
	w.u16(0xffff) // pre_defined = -1
	c := w.open("avcC")
	w.raw(t.avcC)
	w.close(c)
	w.close(e)
}

// writeMP4A writes the audio sample entry (14496-12 12.2.3) with an esds
// (14496-14 5.6) carrying the AudioSpecificConfig.
func writeMP4A(w *boxes, t trackInfo) {
	e := w.open("mp4a")
	w.zeros(6)
	w.u16(1)
	w.zeros(8)
	w.u16(uint16(t.channels))
	w.u16(16) // samplesize
	w.u32(0)
	w.u32(uint32(t.rate) << 16)

	esds := w.openFull("esds", 0, 0)
	// ES_Descriptor (14496-1 7.2.6.5) > DecoderConfigDescriptor >
	// DecoderSpecificInfo, then SLConfigDescriptor. Sizes use the 1-byte
	// form: every descriptor here is shorter than 128 bytes (checked by
	// the caller: an ASC is a few bytes).
	dsi := append([]byte{0x05, byte(len(t.asc))}, t.asc...)
	dcd := []byte{0x04, byte(13 + len(dsi)), 0x40, 0x15, 0, 0, 0}
	dcd = binary.BigEndian.AppendUint32(dcd, uint32(t.bitrate)) // maxBitrate
	dcd = binary.BigEndian.AppendUint32(dcd, uint32(t.bitrate)) // avgBitrate
	dcd = append(dcd, dsi...)
	sl := []byte{0x06, 0x01, 0x02}
	es := []byte{0x03, byte(3 + len(dcd) + len(sl)), 0, byte(t.id), 0}
	es = append(append(es, dcd...), sl...)
	w.raw(es)
	w.close(esds)
	w.close(e)
}

// sample is one access unit of a fragment, times in its track's timescale.
type sample struct {
	dts      int64
	cts      int32 // composition offset, PTS - DTS
	duration uint32
	key      bool
	data     []byte // AVCC for video, raw AAC for audio
}

// fragment is one track's run of samples in a media segment.
type fragment struct {
	trackID uint32
	video   bool
	samples []sample
}

// mediaSegment builds moof + mdat (14496-12 8.8.4): one traf per track with
// tfhd (default-base-is-moof), tfdt (version 1) and a trun whose data offset
// points into the one mdat that follows. seq is the moof sequence number.
func mediaSegment(seq uint32, frags []fragment) []byte {
	w := &boxes{}
	moof := w.open("moof")
	mfhd := w.openFull("mfhd", 0, 0)
	w.u32(seq)
	w.close(mfhd)
	type patch struct{ at, dataBefore int }
	var patches []patch
	data := 0
	for _, f := range frags {
		if len(f.samples) == 0 {
			continue
		}
		traf := w.open("traf")
		tfhd := w.openFull("tfhd", 0, 0x020000) // default-base-is-moof
		w.u32(f.trackID)
		w.close(tfhd)
		tfdt := w.openFull("tfdt", 1, 0)
		w.u64(uint64(f.samples[0].dts))
		w.close(tfdt)
		// data-offset, duration, size; video adds flags and composition
		// offsets (version 1: signed, 8.8.8.1).
		flags := uint32(0x000001 | 0x000100 | 0x000200)
		var version byte
		if f.video {
			flags |= 0x000400 | 0x000800
			version = 1
		}
		trun := w.openFull("trun", version, flags)
		w.u32(uint32(len(f.samples)))
		patches = append(patches, patch{len(w.b), data})
		w.u32(0) // data_offset, patched below
		for _, s := range f.samples {
			w.u32(s.duration)
			w.u32(uint32(len(s.data)))
			if f.video {
				if s.key {
					w.u32(flagsSync)
				} else {
					w.u32(flagsNonSync)
				}
				w.u32(uint32(s.cts))
			}
			data += len(s.data)
		}
		w.close(trun)
		w.close(traf)
	}
	w.close(moof)
	moofSize := len(w.b) - moof
	for _, p := range patches {
		binary.BigEndian.PutUint32(w.b[p.at:], uint32(moofSize+8+p.dataBefore))
	}
	mdat := w.open("mdat")
	for _, f := range frags {
		for _, s := range f.samples {
			w.raw(s.data)
		}
	}
	w.close(mdat)
	return w.b
}

// videoTrack derives the video trackInfo from the encoder's Annex B SPS/PPS.
func videoTrack(width, height int, annexB []byte) (trackInfo, error) {
	rec, err := avcDecoderConfig(annexB)
	if err != nil {
		return trackInfo{}, fmt.Errorf("%w: %w", errConfig, err)
	}
	if width <= 0 || height <= 0 || width > 0xffff || height > 0xffff {
		return trackInfo{}, fmt.Errorf("%w: video size %dx%d", errConfig, width, height)
	}
	return trackInfo{id: videoTrackID, video: true, timescale: videoTimescale, width: width, height: height, avcC: rec}, nil
}

// audioTrack describes an AAC stream.
func audioTrack(rate, channels, bitrate int, asc []byte) (trackInfo, error) {
	if len(asc) < 2 || len(asc) > 64 || rate <= 0 || rate > 0xffff || channels < 1 || channels > 8 {
		return trackInfo{}, fmt.Errorf("%w: AAC %d Hz, %d channels, %d-byte config", errConfig, rate, channels, len(asc))
	}
	return trackInfo{id: audioTrackID, timescale: uint32(rate), rate: rate, channels: channels, asc: asc, bitrate: bitrate}, nil
}
