package compositor

import (
	"math"

	"github.com/roomcast/roomcast/media"
)

// Pitch periods a splice looks for: 1 ms (1 kHz) to 15 ms (67 Hz), the
// range of voices and of most tones.
const (
	spliceMinPeriod = media.SampleRate / 1000
	spliceMaxPeriod = media.SampleRate * 15 / 1000
	// spliceMinCorr: how alike two successive periods must be for the
	// sound to count as periodic.
	spliceMinCorr = 0.9
	// spliceSilence: below this mean power per sample (-80 dBFS) a chunk
	// is silence, which any change of length leaves as it is.
	spliceSilence = 1e-8
)

// period finds the pitch period of a's start: the lag P at which a's
// first P sample frames best match the next P (normalised correlation of
// the channels' mean), if they match well enough (spliceMinCorr) and a
// holds two periods. 0: not periodic (noise, silence, too short).
func period(a media.Audio) int {
	n := a.Frames()
	maxP := min(spliceMaxPeriod, n/2)
	if maxP < spliceMinPeriod {
		return 0
	}
	x := make([]float64, 2*maxP)
	var energy float64
	for i := range x {
		var s float64
		for ch := range media.Channels {
			s += float64(a[i*media.Channels+ch])
		}
		x[i] = s / media.Channels
		energy += x[i] * x[i]
	}
	if energy/float64(len(x)) < spliceSilence {
		return 0
	}
	best, bestCorr := 0, spliceMinCorr
	for p := spliceMinPeriod; p <= maxP; p++ {
		var xy, xx, yy float64
		for i := range p {
			xy += x[i] * x[p+i]
			xx += x[i] * x[i]
			yy += x[p+i] * x[p+i]
		}
		if xx == 0 || yy == 0 {
			continue
		}
		// The smallest lag wins a tie: a tone matches at every multiple
		// of its period, and the period itself is the smallest splice.
		if c := xy / math.Sqrt(xx*yy); c > bestCorr+1e-3 {
			best, bestCorr = p, c
		}
	}
	return best
}

// splice changes a's length by one pitch period p without changing its
// pitch: it leaves out (shorter) or repeats (longer) the period at a's
// start, cross-fading between the two alike periods so no seam shows. The
// first and last samples stay, so a spliced chunk joins its neighbours as
// the original did. a must hold two periods.
func splice(a media.Audio, p int, longer bool) media.Audio {
	n := a.Frames()
	const C = media.Channels
	w := func(i int) float32 { return float32(i+1) / float32(p+1) }
	if !longer {
		// first period fading into the second, then from the third on.
		out := make(media.Audio, (n-p)*C)
		for i := range p {
			for ch := range C {
				out[i*C+ch] = a[i*C+ch]*(1-w(i)) + a[(p+i)*C+ch]*w(i)
			}
		}
		copy(out[p*C:], a[2*p*C:])
		return out
	}
	// the first period, the second fading into the first again, then from
	// the second on.
	out := make(media.Audio, (n+p)*C)
	copy(out, a[:p*C])
	for i := range p {
		for ch := range C {
			out[(p+i)*C+ch] = a[(p+i)*C+ch]*(1-w(i)) + a[i*C+ch]*w(i)
		}
	}
	copy(out[2*p*C:], a[p*C:])
	return out
}
