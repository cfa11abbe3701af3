package serve

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// cpuMeter measures this process's CPU use (cores) from /proc/self/stat,
// over a sliding window of samples.
type cpuMeter struct {
	mu      sync.Mutex
	samples []cpuSample
	read    func() (time.Duration, bool)
}

type cpuSample struct {
	at  time.Time
	cpu time.Duration
}

const cpuWindow = 5 // samples (seconds)

func newCPUMeter() *cpuMeter { return &cpuMeter{read: procSelfCPU} }

// procSelfCPU returns utime+stime of this process.
func procSelfCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	// f[0] is field 3 (state); utime is field 14, stime 15.
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, true
}

func (m *cpuMeter) sample() {
	c, ok := m.read()
	if !ok {
		return
	}
	m.mu.Lock()
	m.samples = append(m.samples, cpuSample{time.Now(), c})
	if len(m.samples) > cpuWindow+1 {
		m.samples = m.samples[1:]
	}
	m.mu.Unlock()
}

// rate is the cores used over the window (0 before two samples).
func (m *cpuMeter) rate() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	dt := b.at.Sub(a.at)
	if dt <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(dt)
}
