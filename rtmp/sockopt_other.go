//go:build !linux

package rtmp

import (
	"net"
	"syscall"
	"time"
)

// socketControl sets nothing outside Linux; write deadlines still bound
// stalls there.
func socketControl(time.Duration, int) func(string, string, syscall.RawConn) error {
	return nil
}

// rawWriter is Linux only; elsewhere writes go through net.Conn.
type rawWriter struct{}

func newRawWriter(net.Conn) *rawWriter { return nil }

func (*rawWriter) Write([]byte) (int, error) { panic("unreachable") }

func (*rawWriter) tryWrite([]byte) (int, error) { panic("unreachable") }
