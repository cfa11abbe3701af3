package av

import (
	"fmt"

	"github.com/roomcast/roomcast/media"
)

// maxScalers bounds the cache of swscale contexts; a grid of 16 tiles with
// sources changing size now and then stays well below it.
const maxScalers = 64

type scaleKey struct{ sw, sh, dw, dh int }

// Scaler scales yuv420p pictures with swscale (bilinear), keeping one
// context per (source size, destination size). Not safe for concurrent use:
// give each goroutine its own. Close frees the contexts.
type Scaler struct {
	ctxs map[scaleKey]*swsCtx
	opt  options
}

// NewScaler returns an empty Scaler.
func NewScaler(opts ...Option) *Scaler {
	return &Scaler{ctxs: make(map[scaleKey]*swsCtx), opt: applyOptions(opts)}
}

// Scale resizes the whole of src into the whole of dst, which may be views
// made with media.Image.Sub (the pixels are read and written in place, no
// intermediate copies). Equal sizes are a plain copy.
func (s *Scaler) Scale(dst, src *media.Image) error {
	if src.Width < 2 || src.Height < 2 || dst.Width < 2 || dst.Height < 2 {
		return fmt.Errorf("av: scale %dx%d to %dx%d: picture too small", src.Width, src.Height, dst.Width, dst.Height)
	}
	if src.Width == dst.Width && src.Height == dst.Height {
		media.Blit(dst, 0, 0, src, 0, 0, src.Width, src.Height)
		return nil
	}
	if s.ctxs == nil {
		s.ctxs = make(map[scaleKey]*swsCtx)
	}
	k := scaleKey{src.Width, src.Height, dst.Width, dst.Height}
	c := s.ctxs[k]
	if c == nil {
		if len(s.ctxs) >= maxScalers {
			s.Close()
			s.ctxs = make(map[scaleKey]*swsCtx)
		}
		var err error
		c, err = newSwsCtx(swsKey{srcFmt: pixFmtYUV420P, srcW: src.Width, srcH: src.Height, dstW: dst.Width, dstH: dst.Height}, s.opt)
		if err != nil {
			return err
		}
		s.ctxs[k] = c
	}
	return c.scaleImage(dst, src)
}

// Close frees the cached contexts; the Scaler may be used again afterwards.
func (s *Scaler) Close() error {
	for k, c := range s.ctxs {
		c.free()
		delete(s.ctxs, k)
	}
	return nil
}
