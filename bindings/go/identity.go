package rp

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// DaemonIdentity is a daemon's identity, answered to broker identity probes by a [Mux]
// (rp_daemon_identity). A mux copies it when created. Methods are safe for concurrent use.
type DaemonIdentity struct {
	mu      sync.Mutex // the C contract: the caller serialises calls on one identity
	ptr     *C.rp_daemon_identity
	once    sync.Once
	cleanup runtime.Cleanup
}

func newDaemonIdentity(p *C.rp_daemon_identity) *DaemonIdentity {
	id := &DaemonIdentity{ptr: p}
	id.cleanup = runtime.AddCleanup(id, func(p *C.rp_daemon_identity) { C.rp_daemon_identity_free(p) }, p)
	return id
}

// CurrentDaemonIdentity builds the identity of this process serving the endpoint
// namespace:path, as a strict prober checks it (pid, executable path and BLAKE3 hash, boot id,
// start time). With legacySHA256 the legacy slot holds the executable's SHA-256. It reads and
// hashes the whole executable: call it once at start-up.
func CurrentDaemonIdentity(namespace, path string, legacySHA256 bool) (*DaemonIdentity, error) {
	var a cArena
	defer a.free()
	var flags C.uint32_t
	if legacySHA256 {
		flags = C.RP_DAEMON_IDENTITY_LEGACY_SHA256
	}
	var p *C.rp_daemon_identity
	if err := cCall(func() C.rp_status {
		return C.rp_daemon_identity_new_current(a.str(namespace), a.str(path), flags, &p)
	}); err != nil {
		return nil, err
	}
	return newDaemonIdentity(p), nil
}

// NewDaemonIdentity returns an empty identity to fill with the Set methods.
func NewDaemonIdentity() (*DaemonIdentity, error) {
	var p *C.rp_daemon_identity
	if err := cCall(func() C.rp_status { return C.rp_daemon_identity_new(&p) }); err != nil {
		return nil, err
	}
	return newDaemonIdentity(p), nil
}

func (id *DaemonIdentity) do(f func(p *C.rp_daemon_identity) C.rp_status) error {
	id.mu.Lock()
	defer id.mu.Unlock()
	maybeGC()
	if id.ptr == nil {
		return &Error{Status: StatusClosed, Msg: "identity closed"}
	}
	return cCall(func() C.rp_status { return f(id.ptr) })
}

// SetPID sets the process id.
func (id *DaemonIdentity) SetPID(pid uint32) error {
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		return C.rp_daemon_identity_set_pid(p, C.uint32_t(pid))
	})
}

// SetExePath sets the canonical absolute path of the executable.
func (id *DaemonIdentity) SetExePath(path string) error {
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		s := cString(path)
		defer C.free(unsafe.Pointer(s))
		return C.rp_daemon_identity_set_exe_path(p, s)
	})
}

// SetEndpoint sets the endpoint the daemon serves.
func (id *DaemonIdentity) SetEndpoint(namespace, path string) error {
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		var a cArena
		defer a.free()
		return C.rp_daemon_identity_set_endpoint(p, a.str(namespace), a.str(path))
	})
}

// SetBootID sets the boot id.
func (id *DaemonIdentity) SetBootID(bootID string) error {
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		s := cString(bootID)
		defer C.free(unsafe.Pointer(s))
		return C.rp_daemon_identity_set_boot_id(p, s)
	})
}

// SetStartedAt sets when the process started.
func (id *DaemonIdentity) SetStartedAt(t time.Time) error {
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		return C.rp_daemon_identity_set_started_at_unix_ms(p, unixMs(t))
	})
}

// SetIdleTimeout sets the idle timeout the daemon reports; a negative value removes it.
func (id *DaemonIdentity) SetIdleTimeout(d time.Duration) error {
	secs := int64(-1)
	if d >= 0 {
		secs = int64(d / time.Second)
	}
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		if secs < 0 {
			return C.rp_daemon_identity_clear_idle_timeout(p)
		}
		return C.rp_daemon_identity_set_idle_timeout_secs(p, C.uint32_t(secs))
	})
}

// SetExeHash sets the executable hash and its algorithm ("blake3" for strict probers).
func (id *DaemonIdentity) SetExeHash(algorithm string, hash []byte) error {
	return id.do(func(p *C.rp_daemon_identity) C.rp_status {
		s := cString(algorithm)
		defer C.free(unsafe.Pointer(s))
		st := C.rp_daemon_identity_set_exe_hash(p, s, bytesPtr(hash), C.size_t(len(hash)))
		runtime.KeepAlive(hash)
		return st
	})
}

// Encode returns the identity part of a probe reply (what follows the 32-byte nonce echo).
func (id *DaemonIdentity) Encode() ([]byte, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	maybeGC()
	if id.ptr == nil {
		return nil, &Error{Status: StatusClosed, Msg: "identity closed"}
	}
	return growEncode(nil, 256, func(buf *C.uint8_t, cp C.size_t, outLen *C.size_t, e *C.rpg_err) C.int32_t {
		return C.rpg_identity_encode(id.ptr, buf, cp, outLen, e)
	})
}

// Close frees the identity. Idempotent.
func (id *DaemonIdentity) Close() error {
	id.once.Do(func() {
		id.mu.Lock()
		defer id.mu.Unlock()
		maybeGC()
		id.cleanup.Stop()
		C.rp_daemon_identity_free(id.ptr)
		id.ptr = nil
	})
	return nil
}
