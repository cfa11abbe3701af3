package rtmp

import (
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
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

// rawWriter writes to a plain TCP socket with the write(2) system call made
// directly (syscall.RawSyscall) instead of through the runtime's syscall
// entry. The socket is non-blocking (the runtime's poller owns it), so the
// call never blocks: when the send buffer is full it returns EAGAIN and the
// poller waits for room (honouring the write deadline), exactly as
// net.Conn.Write does. What this saves is the scheduler's bookkeeping
// around a system call: entering one wakes the runtime's monitor thread
// (sysmon) whenever the process was idle, which for a stream paced at
// ~80 packets a second is a wake-up, a few 20 µs sleeps and a context
// switch back per packet, more CPU than the write itself (measured with
// perf in scripts/bench-rtmp.sh).
type rawWriter struct {
	rc syscall.RawConn
}

// newRawWriter returns nil when c is not a plain TCP connection.
func newRawWriter(c net.Conn) *rawWriter {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &rawWriter{rc: rc}
}

func (w *rawWriter) Write(b []byte) (int, error) { return w.write(b, true) }

// tryWrite writes as much of b as the socket takes now, without waiting
// for room: n < len(b) with a nil error means the send buffer is full.
func (w *rawWriter) tryWrite(b []byte) (int, error) { return w.write(b, false) }

// write writes b with write(2); when the send buffer is full it waits on
// the poller for room (honouring the deadline) if wait, else returns what
// was written.
func (w *rawWriter) write(b []byte, wait bool) (int, error) {
	var n int
	var werr error
	err := w.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			k, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
			switch errno {
			case 0:
				n += int(k)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return !wait // false: wait until writable (or the deadline)
			default:
				werr = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", errno)}
				return true
			}
		}
		return true
	})
	if werr != nil {
		return n, werr
	}
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "tcp", Err: err}
	}
	return n, nil
}
