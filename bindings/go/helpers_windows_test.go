//go:build windows

package rp

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"unsafe"
)

var pipeSeq atomic.Uint64

// sockPath returns a fresh local endpoint: on Windows a named pipe, `\\.\pipe\rpgo-PID-N-name`
// (librp takes the bare name too; the pipe goes away with its last handle).
func sockPath(t testing.TB, name string) string {
	t.Helper()
	return fmt.Sprintf(`\\.\pipe\rpgo-%d-%d-%s`, os.Getpid(), pipeSeq.Add(1), name)
}

var procCreateNamedPipeW = syscall.NewLazyDLL("kernel32.dll").NewProc("CreateNamedPipeW")

const (
	pipeAccessDuplex          = 0x3
	fileFlagOverlapped        = 0x40000000
	fileFlagFirstPipeInstance = 0x00080000
	pipeRejectRemoteClients   = 0x8
)

// handleConn hands a raw handle to AdoptConn (which duplicates it) without Go's poller, which
// would tie the pipe to Go's completion port.
type handleConn syscall.Handle

func (h handleConn) SyscallConn() (syscall.RawConn, error) { return handleRaw(h), nil }

type handleRaw syscall.Handle

func (h handleRaw) Control(f func(fd uintptr)) error { f(uintptr(h)); return nil }
func (handleRaw) Read(func(fd uintptr) bool) error   { return errors.New("not supported") }
func (handleRaw) Write(func(fd uintptr) bool) error  { return errors.New("not supported") }

// connPair returns the two ends of a connection, for AdoptConn: on Windows a named pipe's
// server end and a client opened on it, both overlapped (as librp's own pipes are). The
// handles are closed when the test ends.
func connPair(t *testing.T) (syscall.Conn, syscall.Conn) {
	t.Helper()
	name, err := syscall.UTF16PtrFromString(sockPath(t, "pair"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, cerr := procCreateNamedPipeW.Call(uintptr(unsafe.Pointer(name)),
		pipeAccessDuplex|fileFlagOverlapped|fileFlagFirstPipeInstance, pipeRejectRemoteClients,
		1, 64*1024, 64*1024, 0, 0)
	server := syscall.Handle(r)
	if server == syscall.InvalidHandle {
		t.Fatalf("CreateNamedPipeW: %v", cerr)
	}
	t.Cleanup(func() { syscall.CloseHandle(server) })
	client, err := syscall.CreateFile(name, syscall.GENERIC_READ|syscall.GENERIC_WRITE, 0, nil,
		syscall.OPEN_EXISTING, fileFlagOverlapped, 0)
	if err != nil {
		t.Fatalf("CreateFile(pipe): %v", err)
	}
	t.Cleanup(func() { syscall.CloseHandle(client) })
	return handleConn(client), handleConn(server)
}

// openFds would count this process's open descriptors: Windows has no /proc/self/fd (under
// Wine the path reaches Wine's own Linux descriptors), and the handle count moves with the Go
// runtime's threads, so there is nothing to compare: it reads 0.
func openFds(t *testing.T) int {
	t.Helper()
	return 0
}
