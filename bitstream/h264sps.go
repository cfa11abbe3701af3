package bitstream

import (
	"errors"
	"fmt"
)

// ErrSPS: a sequence parameter set is not one, or holds values out of
// range.
var ErrSPS = errors.New("bitstream: bad H.264 SPS")

// H264SPSChroma reads chroma_format_idc and the bit depths (minus 8) from a
// High-profile SPS NAL unit, header byte first (H.264 7.3.2.1.1), without
// parsing the rest: what an AVCDecoderConfigurationRecord needs (ISO/IEC
// 14496-15 5.3.3.1).
func H264SPSChroma(sps []byte) (chroma, lumaDepthMinus8, chromaDepthMinus8 uint32, err error) {
	if len(sps) < 4 {
		return 0, 0, 0, fmt.Errorf("%w: %d bytes", ErrSPS, len(sps))
	}
	r := NewReader(UnescapeRBSP(sps[4:])) // after header, profile, flags, level
	r.UE()                                // seq_parameter_set_id
	chroma = r.UE()
	if r.Err() == nil && chroma > 3 {
		return 0, 0, 0, fmt.Errorf("%w: chroma_format_idc %d out of range", ErrSPS, chroma)
	}
	if chroma == 3 {
		r.Bit() // separate_colour_plane_flag
	}
	lumaDepthMinus8, chromaDepthMinus8 = r.UE(), r.UE()
	if err := r.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %w", ErrSPS, err)
	}
	if lumaDepthMinus8 > 6 || chromaDepthMinus8 > 6 {
		return 0, 0, 0, fmt.Errorf("%w: bit depth out of range", ErrSPS)
	}
	return chroma, lumaDepthMinus8, chromaDepthMinus8, nil
}

// H264SPSSize returns the cropped picture size a sequence parameter set
// (NAL header byte first) describes, following H.264 7.3.2.1.1.
func H264SPSSize(nal []byte) (width, height int, ok bool) {
	if len(nal) < 4 || H264Type(nal) != H264SPS {
		return 0, 0, false
	}
	r := NewReader(UnescapeRBSP(nal[1:]))
	profile := r.Bits(8)
	r.Bits(16) // constraint flags, level_idc
	r.UE()     // seq_parameter_set_id
	chroma := uint32(1)
	separateColour := false
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		chroma = r.UE()
		if chroma > 3 {
			return 0, 0, false
		}
		if chroma == 3 {
			separateColour = r.Flag()
		}
		r.UE()        // bit_depth_luma_minus8
		r.UE()        // bit_depth_chroma_minus8
		r.Bit()       // qpprime_y_zero_transform_bypass_flag
		if r.Flag() { // seq_scaling_matrix_present_flag
			lists := 8
			if chroma == 3 {
				lists = 12
			}
			for i := 0; i < lists && r.Err() == nil; i++ {
				if !r.Flag() {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				last, next := int32(8), int32(8)
				for j := 0; j < size && r.Err() == nil; j++ {
					if next != 0 {
						next = (last + r.SE() + 256) % 256
					}
					if next != 0 {
						last = next
					}
				}
			}
		}
	}
	r.UE()          // log2_max_frame_num_minus4
	switch r.UE() { // pic_order_cnt_type
	case 0:
		r.UE() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.Bit() // delta_pic_order_always_zero_flag
		r.SE()  // offset_for_non_ref_pic
		r.SE()  // offset_for_top_to_bottom_field
		n := r.UE()
		if n > 255 {
			return 0, 0, false
		}
		for i := uint32(0); i < n && r.Err() == nil; i++ {
			r.SE()
		}
	}
	r.UE()  // max_num_ref_frames
	r.Bit() // gaps_in_frame_num_value_allowed_flag
	wMbs := r.UE() + 1
	hMapUnits := r.UE() + 1
	frameMbsOnly := r.Bit()
	if frameMbsOnly == 0 {
		r.Bit() // mb_adaptive_frame_field_flag
	}
	r.Bit() // direct_8x8_inference_flag
	var cl, cr, ct, cb uint32
	if r.Flag() { // frame_cropping_flag
		cl, cr, ct, cb = r.UE(), r.UE(), r.UE(), r.UE()
	}
	if r.Err() != nil || wMbs > 1024 || hMapUnits > 1024 {
		return 0, 0, false
	}
	// Table 6-1 and equations 7-19..7-22.
	subW, subH := uint32(2), uint32(2)
	switch chroma {
	case 2:
		subW, subH = 2, 1
	case 3:
		subW, subH = 1, 1
	}
	cropX, cropY := subW, subH*(2-frameMbsOnly)
	if chroma == 0 || separateColour {
		cropX, cropY = 1, 2-frameMbsOnly
	}
	w := int(wMbs*16) - int(cropX*(cl+cr))
	h := int(hMapUnits*16*(2-frameMbsOnly)) - int(cropY*(ct+cb))
	if w <= 0 || h <= 0 {
		return 0, 0, false
	}
	return w, h, true
}
