package media

import "sync"

// Pictures are recycled: a 640x360 picture is 345 kB, and a compositor
// takes dozens a second from each input. Allocating them fresh costs page
// faults and GC work that showed up as a third of the non-codec CPU time.
var pools sync.Map // [2]int{w, h} -> *sync.Pool

// GetImage returns a w×h picture (even sizes) from the pool, or a new one.
// Its content is undefined: the caller overwrites every pixel.
func GetImage(w, h int) *Image {
	w, h = (w+1)&^1, (h+1)&^1
	if p, ok := pools.Load([2]int{w, h}); ok {
		if m, ok := p.(*sync.Pool).Get().(*Image); ok {
			return m
		}
	}
	return NewImage(w, h)
}

// PutImage hands a picture back for reuse; the caller must not touch it
// afterwards. Sub-image views and nil are ignored.
func PutImage(m *Image) {
	if m == nil || m.StrideY != m.Width || len(m.Y) != m.Width*m.Height {
		return
	}
	p, _ := pools.LoadOrStore([2]int{m.Width, m.Height}, new(sync.Pool))
	p.(*sync.Pool).Put(m)
}
