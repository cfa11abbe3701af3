package bitstream

// UnescapeRBSP returns the raw byte sequence payload of a NAL unit (or of a
// part of one): emulation prevention bytes removed, 00 00 03 -> 00 00
// (H.264 7.4.1). The result is a new slice.
func UnescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}
