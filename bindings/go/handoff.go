package rp

/*
#include "shims.h"
*/
import "C"

import (
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// HandoffStore is a bounded store of one-time handoff tokens (rp_handoff_store): 128 random
// bits each, accepted at most once, for a time to live, compared in constant time. Safe for
// concurrent use.
type HandoffStore struct {
	mu      sync.RWMutex // shared: every C call; exclusive: free
	ptr     *C.rp_handoff_store
	once    sync.Once
	cleanup runtime.Cleanup
}

// NewHandoffStore creates a store holding at most maxPending tokens (0 = 1024), each living
// ttl (0 = 30 s).
func NewHandoffStore(maxPending int, ttl time.Duration) (*HandoffStore, error) {
	var p *C.rp_handoff_store
	if err := cCall(func() C.rp_status {
		return C.rp_handoff_store_new(C.uint32_t(max(maxPending, 0)), C.uint32_t(ttl/time.Millisecond), &p)
	}); err != nil {
		return nil, err
	}
	s := &HandoffStore{ptr: p}
	s.cleanup = runtime.AddCleanup(s, func(p *C.rp_handoff_store) { C.rp_handoff_store_free(p) }, p)
	return s, nil
}

func (s *HandoffStore) do(f func(p *C.rp_handoff_store) C.rp_status) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return &Error{Status: StatusClosed, Msg: "handoff store closed"}
	}
	return cCall(func() C.rp_status { return f(s.ptr) })
}

// Issue issues and stores a fresh random token. ErrAgain when the store is full.
func (s *HandoffStore) Issue() ([HandoffTokenLen]byte, error) {
	var tok [HandoffTokenLen]byte
	err := s.do(func(p *C.rp_handoff_store) C.rp_status {
		return C.rp_handoff_store_issue(p, (*C.uint8_t)(&tok[0]), C.size_t(len(tok)))
	})
	return tok, err
}

// Insert adds a token issued elsewhere (exactly HandoffTokenLen bytes).
func (s *HandoffStore) Insert(token []byte) error {
	return s.do(func(p *C.rp_handoff_store) C.rp_status {
		st := C.rp_handoff_store_insert(p, bytesPtr(token), C.size_t(len(token)))
		runtime.KeepAlive(token)
		return st
	})
}

// withFd runs f with the descriptor of c held open.
func withFd(c syscall.Conn, f func(fd C.int32_t)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { f(C.int32_t(fd)) })
}

// timeoutMs is a wait as librp's timeout rule takes it: negative = no limit (-1), 0 = do not
// wait, otherwise milliseconds rounded up (so a short wait never becomes none).
func timeoutMs(d time.Duration) C.int32_t {
	if d < 0 {
		return -1
	}
	return C.int32_t(min((d+time.Millisecond-1)/time.Millisecond, 1<<31-1))
}

// optionMs is a *_timeout_ms option: 0 keeps librp's default (the shims leave it unset),
// negative = no limit (-1), otherwise milliseconds rounded up.
func optionMs(d time.Duration) C.int32_t {
	if d == 0 {
		return 0
	}
	return timeoutMs(d)
}

// ServeOffer serves one handoff offer on a framed control connection: reads one HandoffOffer,
// checks and consumes its token, and writes the HandoffAck. It reports whether the token was
// accepted and the offer's correlation id. timeout < 0 waits forever.
func (s *HandoffStore) ServeOffer(conn syscall.Conn, timeout time.Duration) (accepted bool, correlationID uint64, err error) {
	var ok C.bool
	var corr C.uint64_t
	ferr := withFd(conn, func(fd C.int32_t) {
		err = s.do(func(p *C.rp_handoff_store) C.rp_status {
			return C.rp_handoff_serve_offer(p, fd, timeoutMs(timeout), &ok, &corr)
		})
	})
	if ferr != nil {
		return false, 0, ferr
	}
	return bool(ok), uint64(corr), err
}

// Accept receives a handed-off connection on the Unix socket conn (the descriptor by
// SCM_RIGHTS with the 16 token bytes, then a HandoffOffer), answers the offer, and on
// acceptance returns the adopted connection (close-on-exec) as a file; net.FileConn turns it
// into a net.Conn. ErrRejected when the token was refused (the ack said so and the received
// descriptor was closed).
func (s *HandoffStore) Accept(conn syscall.Conn, timeout time.Duration) (*os.File, error) {
	var out C.int32_t = -1
	var err error
	ferr := withFd(conn, func(fd C.int32_t) {
		err = s.do(func(p *C.rp_handoff_store) C.rp_status {
			return C.rp_handoff_accept(p, fd, timeoutMs(timeout), &out)
		})
	})
	if ferr != nil {
		return nil, ferr
	}
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(out), "rp-handoff"), nil
}

// Close drops the store. Idempotent.
func (s *HandoffStore) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		maybeGC()
		s.cleanup.Stop()
		C.rp_handoff_store_free(s.ptr)
		s.ptr = nil
	})
	return nil
}
