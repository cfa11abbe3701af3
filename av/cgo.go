package av

/*
#cgo pkg-config: libavcodec libavformat libavutil libswscale libswresample
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <string.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
#include <stdint.h>

// The plane pointers arrive as separate arguments (not as a Go array of Go
// pointers, which cgo forbids) and are gathered on the C stack here.
static int rc_scale(struct SwsContext *c,
		const uint8_t *sy, const uint8_t *su, const uint8_t *sv, int ssy, int ssc, int sh,
		uint8_t *dy, uint8_t *du, uint8_t *dv, int dsy, int dsc) {
	const uint8_t *const src[4] = {sy, su, sv, NULL};
	const int sstr[4] = {ssy, ssc, ssc, 0};
	uint8_t *const dst[4] = {dy, du, dv, NULL};
	const int dstr[4] = {dsy, dsc, dsc, 0};
	return sws_scale(c, src, sstr, 0, sh, dst, dstr);
}

static int rc_scale_frame(struct SwsContext *c, const AVFrame *f,
		uint8_t *dy, uint8_t *du, uint8_t *dv, int dsy, int dsc) {
	uint8_t *const dst[4] = {dy, du, dv, NULL};
	const int dstr[4] = {dsy, dsc, dsc, 0};
	return sws_scale(c, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, dstr);
}

// rc_set_src_range tells swscale whether the source is full ("JPEG") range;
// the destination is always limited range, as media.Image promises.
static void rc_set_src_range(struct SwsContext *c, int full) {
	int *inv, *tab, srcRange, dstRange, brightness, contrast, saturation;
	if (sws_getColorspaceDetails(c, &inv, &srcRange, &tab, &dstRange, &brightness, &contrast, &saturation) < 0)
		return;
	sws_setColorspaceDetails(c, sws_getCoefficients(SWS_CS_ITU601), full,
		sws_getCoefficients(SWS_CS_ITU601), 0, brightness, contrast, saturation);
}

// rc_send_data copies data into a padded packet (decoders read up to
// AV_INPUT_BUFFER_PADDING_SIZE bytes past the end, which a Go slice does not
// have) and sends it to the decoder.
static int rc_send_data(AVCodecContext *cc, AVPacket *pkt, const uint8_t *data, int size, int64_t pts) {
	int ret = av_new_packet(pkt, size);
	if (ret < 0)
		return ret;
	memcpy(pkt->data, data, size);
	pkt->pts = pts;
	pkt->dts = AV_NOPTS_VALUE;
	ret = avcodec_send_packet(cc, pkt);
	av_packet_unref(pkt);
	return ret;
}

static int rc_frame_corrupt(const AVFrame *f) {
	return (f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/roomcast/roomcast/media"
)

// cframe exposes the C struct behind an astiav frame for the plane copies
// astiav only offers through extra intermediate buffers.
func cframe(f *astiav.Frame) *C.AVFrame { return (*C.AVFrame)(f.UnsafePointer()) }

// plane returns plane i of f as a byte slice over C memory covering rows
// rows. It must not outlive the frame's current buffer.
func plane(f *C.AVFrame, i, rows int) ([]byte, int) {
	stride := int(f.linesize[i])
	if f.data[i] == nil || stride <= 0 || rows <= 0 {
		return nil, stride
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(f.data[i])), stride*rows), stride
}

// cpacket is a bare AVPacket used to feed decoders from Go slices.
type cpacket struct{ p *C.AVPacket }

func newCPacket() cpacket { return cpacket{C.av_packet_alloc()} }

func (p *cpacket) free() {
	if p.p != nil {
		C.av_packet_free(&p.p)
	}
}

// sendData sends a copy of data (non-empty) with timestamp pts to the
// decoder cc.
func sendData(cc *astiav.CodecContext, p cpacket, data []byte, pts int64) error {
	if p.p == nil {
		return errors.New("av: no packet")
	}
	r := C.rc_send_data((*C.AVCodecContext)(cc.UnsafePointer()), p.p,
		(*C.uint8_t)(unsafe.Pointer(&data[0])), C.int(len(data)), C.int64_t(pts))
	if r < 0 {
		return astiav.Error(r)
	}
	return nil
}

// frameBestEffortTS is the decoder's best guess of the frame's timestamp.
func frameBestEffortTS(f *astiav.Frame) int64 { return int64(cframe(f).best_effort_timestamp) }

// frameCorrupt reports whether the decoder flagged the frame as damaged.
func frameCorrupt(f *astiav.Frame) bool { return C.rc_frame_corrupt(cframe(f)) != 0 }

// frameFullRange reports whether a YUV frame uses full (JPEG) range.
func frameFullRange(f *astiav.Frame) bool {
	cf := cframe(f)
	return cf.color_range == C.AVCOL_RANGE_JPEG || astiav.PixelFormat(cf.format) == astiav.PixelFormatYuvj420P
}

// swsKey identifies one swscale conversion.
type swsKey struct {
	srcFmt     astiav.PixelFormat
	srcW, srcH int
	dstW, dstH int
	srcFull    bool
}

// swsCtx wraps one SwsContext. It converts into yuv420p limited range.
type swsCtx struct {
	c     *C.struct_SwsContext
	unreg func()
}

func newSwsCtx(k swsKey, o options) (*swsCtx, error) {
	// Bilinear, with swscale's filter widened to the ratio when shrinking so
	// a 1080p camera in a small tile does not alias. When nothing shrinks
	// the filter is two taps either way and the fast variant gives the same
	// picture at a fraction of the cost.
	flags := C.int(C.SWS_BILINEAR)
	if k.dstW >= k.srcW && k.dstH >= k.srcH {
		flags = C.SWS_FAST_BILINEAR
	}
	c := C.sws_getContext(C.int(k.srcW), C.int(k.srcH), C.enum_AVPixelFormat(k.srcFmt),
		C.int(k.dstW), C.int(k.dstH), C.AV_PIX_FMT_YUV420P, flags, nil, nil, nil)
	if c == nil {
		return nil, fmt.Errorf("av: cannot convert %s %dx%d to yuv420p %dx%d",
			k.srcFmt, k.srcW, k.srcH, k.dstW, k.dstH)
	}
	unreg := o.register(unsafe.Pointer(c))
	if k.srcFull {
		C.rc_set_src_range(c, 1)
	}
	return &swsCtx{c: c, unreg: unreg}, nil
}

func (s *swsCtx) free() {
	if s != nil && s.c != nil {
		C.sws_freeContext(s.c)
		s.c = nil
		s.unreg()
	}
}

// scaleImage scales src (yuv420p, possibly a view) into dst.
func (s *swsCtx) scaleImage(dst, src *media.Image) error {
	r := C.rc_scale(s.c,
		(*C.uint8_t)(unsafe.Pointer(&src.Y[0])), (*C.uint8_t)(unsafe.Pointer(&src.U[0])),
		(*C.uint8_t)(unsafe.Pointer(&src.V[0])), C.int(src.StrideY), C.int(src.StrideC), C.int(src.Height),
		(*C.uint8_t)(unsafe.Pointer(&dst.Y[0])), (*C.uint8_t)(unsafe.Pointer(&dst.U[0])),
		(*C.uint8_t)(unsafe.Pointer(&dst.V[0])), C.int(dst.StrideY), C.int(dst.StrideC))
	if r < 0 {
		return fmt.Errorf("av: sws_scale: %w", astiav.Error(r))
	}
	return nil
}

// scaleFrame converts a decoded frame (C memory) into dst (Go memory).
func (s *swsCtx) scaleFrame(dst *media.Image, f *astiav.Frame) error {
	r := C.rc_scale_frame(s.c, cframe(f),
		(*C.uint8_t)(unsafe.Pointer(&dst.Y[0])), (*C.uint8_t)(unsafe.Pointer(&dst.U[0])),
		(*C.uint8_t)(unsafe.Pointer(&dst.V[0])), C.int(dst.StrideY), C.int(dst.StrideC))
	if r < 0 {
		return fmt.Errorf("av: sws_scale: %w", astiav.Error(r))
	}
	return nil
}

// frameToImage converts a decoded video frame into a new Go-owned yuv420p
// picture at the frame's size rounded up to even. Plain limited-range
// yuv420p with even sizes is copied plane by plane; anything else goes
// through swscale (cached in *conv).
func frameToImage(f *astiav.Frame, conv **swsCtx, convKey *swsKey, o options) (*media.Image, error) {
	cf := cframe(f)
	w, h := int(cf.width), int(cf.height)
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("av: frame has no picture (%dx%d)", w, h)
	}
	img := media.GetImage(w, h) // recycled by the compositor
	pf := astiav.PixelFormat(cf.format)
	full := frameFullRange(f)
	if pf == astiav.PixelFormatYuv420P && !full && w%2 == 0 && h%2 == 0 &&
		cf.linesize[0] > 0 && cf.linesize[1] > 0 && cf.linesize[2] > 0 {
		copyPlane(img.Y, img.StrideY, cf, 0, w, h)
		copyPlane(img.U, img.StrideC, cf, 1, w/2, h/2)
		copyPlane(img.V, img.StrideC, cf, 2, w/2, h/2)
		return img, nil
	}
	k := swsKey{srcFmt: pf, srcW: w, srcH: h, dstW: img.Width, dstH: img.Height, srcFull: full}
	if *conv == nil || *convKey != k {
		(*conv).free()
		*conv = nil
		c, err := newSwsCtx(k, o)
		if err != nil {
			return nil, err
		}
		*conv, *convKey = c, k
	}
	if err := (*conv).scaleFrame(img, f); err != nil {
		return nil, err
	}
	return img, nil
}

// copyPlane copies w×h bytes of plane i of f into dst (stride ds).
func copyPlane(dst []byte, ds int, f *C.AVFrame, i, w, h int) {
	src, ss := plane(f, i, h)
	for r := 0; r < h; r++ {
		copy(dst[r*ds:r*ds+w], src[r*ss:r*ss+w])
	}
}

// imageToFrame copies img into the (writable, same-size yuv420p) frame f.
func imageToFrame(f *astiav.Frame, img *media.Image) {
	cf := cframe(f)
	w, h := img.Width, img.Height
	y, sy := plane(cf, 0, h)
	u, su := plane(cf, 1, h/2)
	v, sv := plane(cf, 2, h/2)
	for r := 0; r < h; r++ {
		copy(y[r*sy:r*sy+w], img.Y[r*img.StrideY:r*img.StrideY+w])
	}
	cw := w / 2
	for r := 0; r < h/2; r++ {
		copy(u[r*su:r*su+cw], img.U[r*img.StrideC:r*img.StrideC+cw])
		copy(v[r*sv:r*sv+cw], img.V[r*img.StrideC:r*img.StrideC+cw])
	}
}

// floatPlane returns n float32 samples of plane i of f over C memory.
func floatPlane(f *astiav.Frame, i, n int) []float32 {
	cf := cframe(f)
	if cf.data[i] == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(cf.data[i])), n)
}

// tsToDuration converts ts in time base tb to a time.Duration.
func tsToDuration(ts int64, tb astiav.Rational) time.Duration {
	return time.Duration(astiav.RescaleQ(ts, tb, astiav.NewRational(1, int(time.Second))))
}

// durationToTS converts d to time base tb, rounding to nearest.
func durationToTS(d time.Duration, tb astiav.Rational) int64 {
	return astiav.RescaleQ(int64(d), astiav.NewRational(1, int(time.Second)), tb)
}

const pixFmtYUV420P = astiav.PixelFormatYuv420P

// initialPadding is the encoder's priming in samples (AVCodecContext.initial_padding).
func initialPadding(cc *astiav.CodecContext) int {
	return int((*C.AVCodecContext)(cc.UnsafePointer()).initial_padding)
}

// setPktTimebase sets AVCodecContext.pkt_timebase, which decoders need to
// move timestamps past the samples they drop (Opus pre-skip, AAC priming)
// and which astiav does not expose.
func setPktTimebase(cc *astiav.CodecContext, tb astiav.Rational) {
	c := (*C.AVCodecContext)(cc.UnsafePointer())
	c.pkt_timebase.num = C.int(tb.Num())
	c.pkt_timebase.den = C.int(tb.Den())
}

// flushBuffers resets a decoder after a drain so it accepts packets again.
func flushBuffers(cc *astiav.CodecContext) {
	C.avcodec_flush_buffers((*C.AVCodecContext)(cc.UnsafePointer()))
}
