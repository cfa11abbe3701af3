package bitstream

import "errors"

// Reader errors, from Reader.Err.
var (
	// ErrTruncated: a read went past the end of the data.
	ErrTruncated = errors.New("bitstream: truncated")
	// ErrGolomb: an Exp-Golomb code had more than 31 leading zeros.
	ErrGolomb = errors.New("bitstream: Exp-Golomb code too long")
)

// Reader reads bits most significant first (H.264 RBSPs after
// UnescapeRBSP, VP9 and AV1 headers). Errors are sticky: after a read past
// the end every read returns 0 and Err says why, so a parser reads a whole
// structure and checks Err once.
type Reader struct {
	b   []byte
	pos int // in bits
	err error
}

// NewReader reads b from its first bit.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error, nil when every read so far was in range.
func (r *Reader) Err() error { return r.err }

// Pos is the number of bits read.
func (r *Reader) Pos() int { return r.pos }

// Bit reads one bit.
func (r *Reader) Bit() uint32 {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b)*8 {
		r.err = ErrTruncated
		return 0
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v
}

// Bits reads n bits (n <= 32) as an unsigned number.
func (r *Reader) Bits(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		v = v<<1 | r.Bit()
	}
	return v
}

// Flag reads one bit as a boolean.
func (r *Reader) Flag() bool { return r.Bit() == 1 }

// UE reads an unsigned Exp-Golomb code (H.264 9.1), at most 31 leading
// zeros (values up to 2^32-2).
func (r *Reader) UE() uint32 {
	zeros := 0
	for r.Bit() == 0 {
		if r.err != nil {
			return 0
		}
		if zeros++; zeros > 31 {
			r.err = ErrGolomb
			return 0
		}
	}
	v := r.Bits(zeros)
	if r.err != nil {
		return 0
	}
	return 1<<zeros - 1 + v
}

// SE reads a signed Exp-Golomb code (H.264 9.1.1).
func (r *Reader) SE() int32 {
	v := r.UE()
	if v&1 == 1 {
		return int32(v/2 + 1)
	}
	return -int32(v / 2)
}
