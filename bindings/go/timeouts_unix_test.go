//go:build unix

// Unix only: the connection is one end of a socketpair(2), which Windows lacks.

package rp

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// Through the API: TryRecv(0) returns at once, a negative TryRecv waits (no limit) until the
// connection is closed from another goroutine.
func TestConnTryRecvFollowsTheTimeoutRule(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "conn")
	defer f.Close()
	nc, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	conn, err := AdoptConn(nc.(*net.UnixConn))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	start := time.Now()
	if _, err := conn.TryRecv(0); !errors.Is(err, ErrTimeout) {
		t.Fatalf("TryRecv(0) = %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Fatalf("TryRecv(0) took %v", took)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		syscall.Shutdown(fds[1], syscall.SHUT_RDWR)
	}()
	start = time.Now()
	if _, err := conn.TryRecv(-1); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryRecv(-1) = %v, want ErrClosed", err)
	}
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Fatalf("TryRecv(-1) returned after %v, before the peer closed", took)
	}
}
