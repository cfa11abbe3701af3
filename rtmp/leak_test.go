package rtmp_test

import (
	"runtime"
	"strings"
	"time"
)

// leakedGoroutines returns the stacks of goroutines still running in this
// package or go-rtmp after the tests, waiting a moment for them to end.
func leakedGoroutines() string {
	var leaked []string
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		leaked = leaked[:0]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "roomcast/rtmp.") || strings.Contains(g, "yutopp/go-rtmp") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
	}
	return strings.Join(leaked, "\n\n")
}
