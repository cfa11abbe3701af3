// Package bitstream holds the codec bitstream helpers every protocol shares:
// H.264 Annex B splitting (ITU-T H.264 B.1), RBSP unescaping (7.4.1), an
// MSB-first bit reader with Exp-Golomb codes (9.1) that the H.264 SPS, VP9
// uncompressed-header and AV1 sequence-header parsers use, and SPS parsing
// (picture size, chroma format and bit depths).
//
// It is pure Go without dependencies: av (encoder output), rtmp (FLV/AVCC)
// and room/rtprecv (RTP depacketisers) all use it. Every parser here takes
// untrusted bytes and is fuzzed (testdata/fuzz).
package bitstream
