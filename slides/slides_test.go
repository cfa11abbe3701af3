package slides

import (
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/media"
)

const quadSVG = `<svg xmlns="http://www.w3.org/2000/svg" width="1600" height="1200" viewBox="0 0 1600 1200">
<rect x="0" y="0" width="1600" height="1200" fill="#8040a0"/>
<rect x="0" y="0" width="800" height="600" fill="#f08020"/>
</svg>`

func near(a, b media.YUV) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.Y, b.Y) <= 4 && d(a.U, b.U) <= 4 && d(a.V, b.V) <= 4
}

// TestSVGPageAndZoom: an SVG-only page is rasterised with its shapes where
// they belong, and a zoom to its top-left quarter shows only that quarter.
func TestSVGPageAndZoom(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "svgs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "svgs", "slide2.svg"), []byte(quadSVG), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Find(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1920 || b.Dy() != 1440 {
		t.Errorf("rasterised at %v, want 1920x1440 (long side %d, 4:3 kept)", b, maxRaster)
	}
	purple, orange := media.RGB(0x80, 0x40, 0xa0), media.RGB(0xf0, 0x80, 0x20)
	whole := Render(img, Zoom{0, 0, 1, 1}, 640, 360)
	if whole.Width != 480 || whole.Height != 360 {
		t.Errorf("whole page %dx%d, want 480x360", whole.Width, whole.Height)
	}
	if !near(whole.At(100, 80), orange) || !near(whole.At(400, 300), purple) {
		t.Errorf("whole page: top-left %v, bottom-right %v", whole.At(100, 80), whole.At(400, 300))
	}
	zoomed := Render(img, Zoom{0, 0, 0.5, 0.5}, 640, 360)
	for _, pt := range [][2]int{{10, 10}, {470, 350}, {240, 180}} {
		if !near(zoomed.At(pt[0], pt[1]), orange) {
			t.Errorf("zoomed at %v: %v, want the orange quarter", pt, zoomed.At(pt[0], pt[1]))
		}
	}
	if _, err := Find(dir, 3); !errors.Is(err, ErrNoPage) {
		t.Errorf("missing page: %v", err)
	}
}

// TestFindPrefersPNG: a page with both conversions uses the PNG.
func TestFindPrefersPNG(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"pngs", "svgs"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "svgs", "slide1.svg"), []byte(quadSVG), 0o644)
	m := image.NewRGBA(image.Rect(0, 0, 8, 6))
	for i := range m.Pix {
		m.Pix[i] = 0xff
	}
	m.SetRGBA(0, 0, color.RGBA{1, 2, 3, 255})
	f, _ := os.Create(filepath.Join(dir, "pngs", "slide1.png"))
	png.Encode(f, m)
	f.Close()
	p, err := Find(dir, 1)
	if err != nil || !strings.HasSuffix(p, ".png") {
		t.Errorf("Find = %q, %v; want the PNG", p, err)
	}
}

// TestBadSVG: broken files are errors, not panics.
func TestBadSVG(t *testing.T) {
	dir := t.TempDir()
	for i, s := range []string{"", "<svg", `<svg viewBox="0 0 0 0"></svg>`, `<svg viewBox="0 0 10 10"><path d="M 1 1 L Z Q"/></svg>`} {
		p := filepath.Join(dir, "b.svg")
		os.WriteFile(p, []byte(s), 0o644)
		img, err := Load(p)
		if err == nil && img == nil {
			t.Errorf("case %d: no image and no error", i)
		}
	}
}
