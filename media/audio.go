package media

// SampleRate is the one rate roomcast mixes at; every input is resampled to it.
const SampleRate = 48000

// Channels is the channel count of the mix (interleaved stereo).
const Channels = 2

// Audio is a run of interleaved stereo float32 samples at SampleRate, nominally
// in [-1, 1].
type Audio []float32

// Frames is the number of sample frames (one sample per channel).
func (a Audio) Frames() int { return len(a) / Channels }
