package rtmp

import (
	"syscall"
	"time"
)

// tcpUserTimeout is TCP_USER_TIMEOUT from linux/tcp.h (not in syscall).
const tcpUserTimeout = 0x12

// socketControl sets TCP_USER_TIMEOUT, so that data the peer stops
// acknowledging (a vanished server, a dead NAT mapping) fails the socket
// after about writeTimeout instead of after the kernel's ~15 minutes of
// retransmissions, and optionally caps the send buffer.
func socketControl(writeTimeout time.Duration, sendBuffer int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if writeTimeout > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(writeTimeout/time.Millisecond))
			}
			if serr == nil && sendBuffer > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, sendBuffer)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}
