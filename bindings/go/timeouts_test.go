package rp

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// A Go duration maps onto librp's one timeout rule the same way everywhere: negative = no
// limit (-1), 0 = do not wait, otherwise milliseconds rounded up (a short wait never becomes
// "do not wait"); options keep 0 for librp's default.
func TestDurationsMapOntoTheTimeoutRule(t *testing.T) {
	for _, c := range []struct {
		d         time.Duration
		wait, opt int32
	}{
		{-time.Nanosecond, -1, -1},
		{-time.Hour, -1, -1},
		{0, 0, 0},
		{time.Microsecond, 1, 1},
		{1500 * time.Microsecond, 2, 2},
		{time.Second, 1000, 1000},
		{1000 * time.Hour, 1<<31 - 1, 1<<31 - 1},
	} {
		if got := int32(timeoutMs(c.d)); got != c.wait {
			t.Errorf("timeoutMs(%v) = %d, want %d", c.d, got, c.wait)
		}
		if got := int32(optionMs(c.d)); got != c.opt {
			t.Errorf("optionMs(%v) = %d, want %d", c.d, got, c.opt)
		}
	}
}

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
