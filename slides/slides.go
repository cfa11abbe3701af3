// Package slides turns a presentation page, as BigBlueButton's conversion
// left it (a PNG, or only an SVG), into a picture for the compositor,
// cropped to the zoom rectangle the presenter chose. It is pure Go: PNG and
// JPEG through the standard library, SVG rasterised with oksvg/rasterx.
package slides

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	_ "image/jpeg" // some conversions are JPEG
	_ "image/png"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/srwiley/oksvg"
	"github.com/srwiley/rasterx"
	xdraw "golang.org/x/image/draw"

	"github.com/roomcast/roomcast/media"
)

// ErrNoPage: none of the known per-page files exists.
var ErrNoPage = errors.New("slides: page not found")

// maxRaster bounds the long side of a rasterised SVG page (pixels).
const maxRaster = 1920

// Find returns the file that holds page n (1-based) of the presentation in
// dir (raw/<meeting>/presentation/<presentationName>). BBB's conversion
// writes pngs/slideN.png (when PNGs are enabled) and svgs/slideN.svg; older
// servers and BBB's own processed folders use slide-N.png; the thumbnails
// are a last resort.
func Find(dir string, n int) (string, error) {
	for _, c := range []string{
		fmt.Sprintf("pngs/slide%d.png", n),
		fmt.Sprintf("pngs/slide-%d.png", n),
		fmt.Sprintf("slide-%d.png", n),
		fmt.Sprintf("svgs/slide%d.svg", n),
		fmt.Sprintf("svgs/slide-%d.svg", n),
		fmt.Sprintf("thumbnails/thumb-%d.png", n),
	} {
		p := filepath.Join(dir, filepath.FromSlash(c))
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: page %d in %s", ErrNoPage, n, dir)
}

// Load decodes a page file: PNG/JPEG, or SVG rasterised so that its long
// side is maxRaster pixels.
func Load(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".svg") {
		return rasterSVG(f)
	}
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("slides: %s: %w", path, err)
	}
	return img, nil
}

func rasterSVG(r io.Reader) (img image.Image, err error) {
	// oksvg panics on some malformed paths; a bad page must not take the
	// composition down.
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("slides: svg: %v", p)
		}
	}()
	icon, err := oksvg.ReadIconStream(r, oksvg.WarnErrorMode)
	if err != nil {
		return nil, fmt.Errorf("slides: svg: %w", err)
	}
	vw, vh := icon.ViewBox.W, icon.ViewBox.H
	if !(vw > 0 && vh > 0) || vw > 1e6 || vh > 1e6 {
		return nil, fmt.Errorf("slides: svg: unusable viewBox %gx%g", vw, vh)
	}
	scale := maxRaster / max(vw, vh)
	w, h := max(2, int(vw*scale+0.5)), max(2, int(vh*scale+0.5))
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	// Pages are opaque: white under anything transparent, as BBB shows them.
	draw.Draw(rgba, rgba.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	icon.SetTarget(0, 0, float64(w), float64(h))
	scanner := rasterx.NewScannerGV(w, h, rgba, rgba.Bounds())
	icon.Draw(rasterx.NewDasher(w, h, scanner), 1)
	return rgba, nil
}

// Zoom is the visible part of the page as fractions (0,0,1,1: all of it).
type Zoom struct{ X, Y, W, H float64 }

// Render crops img to z and scales the crop to fit in maxW×maxH (keeping
// its shape), as a YUV picture with even sizes.
func Render(img image.Image, z Zoom, maxW, maxH int) *media.Image {
	b := img.Bounds()
	if !(z.W > 0 && z.H > 0) {
		z = Zoom{0, 0, 1, 1}
	}
	crop := image.Rect(
		b.Min.X+int(z.X*float64(b.Dx())), b.Min.Y+int(z.Y*float64(b.Dy())),
		b.Min.X+int((z.X+z.W)*float64(b.Dx())+0.5), b.Min.Y+int((z.Y+z.H)*float64(b.Dy())+0.5),
	).Intersect(b)
	if crop.Dx() < 2 || crop.Dy() < 2 {
		crop = b
	}
	w, h := maxW, maxW*crop.Dy()/max(crop.Dx(), 1)
	if h > maxH {
		w, h = maxH*crop.Dx()/max(crop.Dy(), 1), maxH
	}
	w, h = max(2, w&^1), max(2, h&^1)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	xdraw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, crop, draw.Over, nil)
	return FromRGBA(dst)
}

// Blank is a plain page (a page whose files are missing).
func Blank(c color.RGBA, w, h int) *media.Image {
	m := media.NewImage(max(2, w&^1), max(2, h&^1))
	m.Fill(media.RGB(c.R, c.G, c.B))
	return m
}

// FromRGBA converts to YUV 4:2:0 (BT.601, as media.RGB), averaging chroma
// over each 2×2 block.
func FromRGBA(src *image.RGBA) *media.Image {
	w, h := src.Bounds().Dx()&^1, src.Bounds().Dy()&^1
	m := media.NewImage(w, h)
	for y := 0; y < h; y += 2 {
		for x := 0; x < w; x += 2 {
			var us, vs int
			for dy := 0; dy < 2; dy++ {
				for dx := 0; dx < 2; dx++ {
					o := src.PixOffset(src.Bounds().Min.X+x+dx, src.Bounds().Min.Y+y+dy)
					c := media.RGB(src.Pix[o], src.Pix[o+1], src.Pix[o+2])
					m.Y[(y+dy)*m.StrideY+x+dx] = c.Y
					us += int(c.U)
					vs += int(c.V)
				}
			}
			m.U[(y/2)*m.StrideC+x/2] = uint8((us + 2) / 4)
			m.V[(y/2)*m.StrideC+x/2] = uint8((vs + 2) / 4)
		}
	}
	return m
}
