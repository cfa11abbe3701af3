package egress

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Affinities a worker bids with (psrpc picks the highest; a negative one
// makes no bid at all). Like LiveKit's own workers, a worker that already
// runs egresses and has room bids highest, so that busy workers fill up and
// idle ones stay free for the next big request.
const (
	affinityBusy = 1.0
	affinityIdle = 0.5
	affinityFull = -1.0
)

// capacity decides whether this worker can take one more egress: from
// the machine's measured idle CPU (the default), or from a fixed number of
// cores given to the worker (Config.CPUCapacity).
type capacity struct {
	fixed  float64 // cores given to the worker; 0: measure
	cost   float64 // estimated cores per egress
	meter  *idleMeter
	recent time.Duration // how long a new egress's cost is not yet measured
	now    func() time.Time
}

// canAccept reports whether an egress of the given cost fits next to the
// running ones (each with its start time).
func (c *capacity) canAccept(running []time.Time) bool {
	if c.fixed > 0 {
		return c.fixed-float64(len(running))*c.cost >= c.cost-1e-9
	}
	// Measured: the machine's idle cores, minus what the egresses started
	// too recently to show in the measurement will use.
	spare := c.meter.idle()
	now := c.now()
	for _, at := range running {
		if now.Sub(at) < c.recent {
			spare -= c.cost
		}
	}
	return spare >= c.cost
}

// affinity is the bid for a request.
func (c *capacity) affinity(running []time.Time) float32 {
	switch {
	case !c.canAccept(running):
		return affinityFull
	case len(running) > 0:
		return affinityBusy
	default:
		return affinityIdle
	}
}

// idleMeter measures the machine's idle CPU (cores) from /proc/stat over
// a sliding window of samples taken every second.
type idleMeter struct {
	mu      sync.Mutex
	samples []cpuTimes
	read    func() (cpuTimes, bool)
	cores   float64
}

type cpuTimes struct {
	at         time.Time
	idle, busy uint64 // jiffies
}

const idleWindow = 5 // samples

func newIdleMeter() *idleMeter {
	return &idleMeter{read: procStat, cores: float64(runtime.NumCPU())}
}

func (m *idleMeter) sample() {
	s, ok := m.read()
	if !ok {
		return
	}
	m.mu.Lock()
	m.samples = append(m.samples, s)
	if len(m.samples) > idleWindow+1 {
		m.samples = m.samples[1:]
	}
	m.mu.Unlock()
}

// idle is the idle cores over the window; before two samples it is 0 (a
// worker that has not measured yet takes nothing).
func (m *idleMeter) idle() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	total := float64((b.idle - a.idle) + (b.busy - a.busy))
	if total <= 0 {
		return 0
	}
	return m.cores * float64(b.idle-a.idle) / total
}

// procStat reads the aggregate "cpu" line of /proc/stat: idle = idle +
// iowait, busy = everything else but guest time (already in user).
func procStat() (cpuTimes, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	return parseProcStat(b, time.Now())
}

func parseProcStat(b []byte, at time.Time) (cpuTimes, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) < 5 || string(f[0]) != "cpu" {
			continue
		}
		var v [8]uint64
		for i := 1; i < len(f) && i <= 8; i++ {
			n, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				return cpuTimes{}, false
			}
			v[i-1] = n
		}
		// user nice system idle iowait irq softirq steal
		idle := v[3] + v[4]
		busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
		return cpuTimes{at: at, idle: idle, busy: busy}, true
	}
	return cpuTimes{}, false
}
