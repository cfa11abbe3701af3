package compositor

import (
	"math"
	"time"

	"github.com/roomcast/roomcast/media"
)

// mixer sums the inputs' sound and keeps the sum below full scale with a
// limiter, so loud overlapping speakers never wrap around or hard-clip.
type mixer struct {
	block int
	sum   []float32
	tmp   []float32
	gain  float32 // limiter gain, 1 when idle
	// levels is scratch for the per-input RMS of the current block.
	levels map[string]float64
}

const (
	// maxInput bounds one input's samples (4 = +12 dBFS).
	maxInput     = 4
	limitCeiling = 0.95
	// releasePerBlock: the limiter's gain recovers about 6 dB per second.
	releasePerBlock = 1.0145
)

func newMixer(block int) *mixer {
	return &mixer{block: block, sum: make([]float32, block*media.Channels), tmp: make([]float32, block*media.Channels), gain: 1, levels: map[string]float64{}}
}

// mixAudio produces the block starting at sample idx, whose instant is t.
// The caller counts samples: an index derived from t would be one short
// whenever t was rounded down to the nanosecond (two blocks in three at
// 1024 samples), so blocks would overlap or leave a gap by a sample, a
// click that also makes the AAC encoder work twice as hard.
func (c *Compositor) mixAudio(t time.Duration, idx int64) error {
	m := c.mixer
	clear(m.sum)
	levels := m.levels
	clear(levels)
	for _, in := range c.stage(t) {
		clear(m.tmp)
		if !in.takeAudio(idx, m.block, m.tmp) {
			levels[in.id] = 0
			continue
		}
		var energy float64
		for i, v := range m.tmp {
			// A broken input (NaN, absurd values) must not silence or
			// poison everyone else's sound through the limiter.
			if v != v {
				v = 0
			}
			v = max(-maxInput, min(maxInput, v))
			m.sum[i] += v
			energy += float64(v) * float64(v)
		}
		levels[in.id] = math.Sqrt(energy / float64(len(m.tmp)))
	}
	m.limit()
	if !c.cfg.ExternalSpeaker {
		c.autoSpk.update(levels, time.Duration(m.block)*time.Second/media.SampleRate)
	}
	if c.cfg.NoAudio {
		return nil
	}
	if err := c.sink.WriteAudio(m.sum, t); err != nil {
		return err
	}
	c.count(func(s *Stats) { s.AudioBlocks++ })
	return nil
}

// limit applies an instant-attack, slow-release gain so the block's peak
// stays under the ceiling, ramping from the previous gain to avoid steps.
func (m *mixer) limit() {
	var peak float32
	for _, v := range m.sum {
		if v < 0 {
			v = -v
		}
		peak = max(peak, v)
	}
	target := min(m.gain*releasePerBlock, 1)
	if peak*target > limitCeiling {
		target = limitCeiling / peak
	}
	from := m.gain
	if target < from {
		// Attack: apply the lower gain to the whole block so its peak
		// (which may come early) is already covered.
		from = target
	}
	frames := len(m.sum) / media.Channels
	for i := 0; i < frames; i++ {
		g := from + (target-from)*float32(i)/float32(frames)
		for ch := 0; ch < media.Channels; ch++ {
			v := m.sum[i*media.Channels+ch] * g
			m.sum[i*media.Channels+ch] = max(-1, min(1, v))
		}
	}
	m.gain = target
}

// speakerDetector picks the active speaker from the mix's input levels: the
// loudest input above a floor, once it has been loudest for a while, so a
// cough does not move the big tile.
type speakerDetector struct {
	smooth    map[string]float64
	current   string
	candidate string
	since     time.Duration
}

const (
	speakerFloor = 0.01 // about -40 dBFS RMS
	speakerHold  = 600 * time.Millisecond
	speakerDecay = 0.85 // per block smoothing of the level
)

func (d *speakerDetector) update(levels map[string]float64, dt time.Duration) {
	if d.smooth == nil {
		d.smooth = make(map[string]float64)
	}
	for id := range d.smooth {
		if _, ok := levels[id]; !ok {
			delete(d.smooth, id)
		}
	}
	loudest, best := "", speakerFloor
	for id, l := range levels {
		s := d.smooth[id]*speakerDecay + l*(1-speakerDecay)
		d.smooth[id] = s
		if s > best {
			loudest, best = id, s
		}
	}
	if loudest == "" || loudest == d.current {
		d.candidate, d.since = "", 0
		return
	}
	if loudest != d.candidate {
		d.candidate, d.since = loudest, 0
	}
	d.since += dt
	if d.since >= speakerHold || d.current == "" {
		d.current, d.candidate, d.since = loudest, "", 0
	}
}
