//go:build !linux

package rtmp

import (
	"syscall"
	"time"
)

// socketControl sets nothing outside Linux; write deadlines still bound
// stalls there.
func socketControl(time.Duration, int) func(string, string, syscall.RawConn) error {
	return nil
}
