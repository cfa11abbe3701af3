package rtmp

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestTryWriteRest fills a socket whose reader does not read: a tryWrite
// is then partial, the next one refuses (busy) so nothing overtakes the
// rest, and the next Write sends the rest before its own bytes.
func TestTryWriteRest(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("non-blocking writes are Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	_ = nc.(*net.TCPConn).SetWriteBuffer(4096)
	_ = peer.(*net.TCPConn).SetReadBuffer(4096)

	var written atomic.Uint64
	var ioErr atomic.Pointer[error]
	m := &meteredConn{Conn: nc, raw: newRawWriter(nc), timeout: 5 * time.Second, counter: &written, ioErr: &ioErr}
	if !m.canTryWrite() {
		t.Fatal("a plain TCP socket cannot tryWrite")
	}
	var sent bytes.Buffer
	chunk := make([]byte, 32<<10)
	partial := false
	for i := 0; i < 1000 && !partial; i++ {
		for j := range chunk {
			chunk[j] = byte(i*7 + j)
		}
		busy, done, err := m.tryWrite(chunk)
		if err != nil || busy {
			t.Fatalf("tryWrite %d: busy %v, err %v", i, busy, err)
		}
		sent.Write(chunk) // tryWrite copied what it kept
		partial = !done
	}
	if !partial {
		t.Fatal("32 MB went into a socket nobody reads")
	}
	if m.canTryWrite() {
		t.Error("canTryWrite with a rest pending")
	}
	if busy, _, _ := m.tryWrite([]byte("overtake")); !busy {
		t.Fatal("tryWrite did not refuse while a rest is pending")
	}

	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	tail := []byte("the next write comes after the rest")
	if _, err := m.Write(tail); err != nil {
		t.Fatalf("Write: %v", err)
	}
	sent.Write(tail)
	if !m.canTryWrite() {
		t.Error("the rest is still pending after a Write")
	}
	_ = nc.Close()
	b := <-got
	if !bytes.Equal(b, sent.Bytes()) {
		t.Fatalf("received %d bytes, not the %d written in order", len(b), sent.Len())
	}
	if written.Load() != uint64(sent.Len()) {
		t.Errorf("counted %d bytes, wrote %d", written.Load(), sent.Len())
	}
}
