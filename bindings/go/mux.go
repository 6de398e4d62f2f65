package rp

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// LegacyVerdict is what a legacy detector says about the buffered bytes.
type LegacyVerdict int32

// Legacy detector verdicts.
const (
	NotLegacy LegacyVerdict = C.RP_LEGACY_VERDICT_NOT_LEGACY // classify the bytes as v1
	Legacy    LegacyVerdict = C.RP_LEGACY_VERDICT_LEGACY     // the daemon's own wire
	NeedMore  LegacyVerdict = C.RP_LEGACY_VERDICT_NEED_MORE  // cannot tell yet
)

// MuxEventKind is what Poll found at the front of the buffer.
type MuxEventKind int32

// Mux event kinds.
const (
	MuxNeedMoreBytes MuxEventKind = C.RP_MUX_EVENT_KIND_NEED_MORE_BYTES
	MuxLegacy        MuxEventKind = C.RP_MUX_EVENT_KIND_LEGACY
	MuxProbeAnswered MuxEventKind = C.RP_MUX_EVENT_KIND_PROBE_ANSWERED
	MuxPayload       MuxEventKind = C.RP_MUX_EVENT_KIND_PAYLOAD
)

// MuxEvent is the verdict of one Poll.
type MuxEvent struct {
	Kind MuxEventKind
	// Consumed is how many bytes to advance past once the event is handled (0 for need-more
	// and legacy: the mux does not know the extent of legacy messages).
	Consumed int
	// Frame is the consumer frame for MuxPayload; Frame.Payload is a sub-slice of the polled
	// buffer, valid while that buffer is unchanged.
	Frame Frame
	// Reply is the frame to write back for MuxProbeAnswered (a Go copy).
	Reply []byte
}

// Mux is the multiplexer of one backend endpoint (rp_mux): it classifies the bytes a daemon
// buffered on a connection as need-more, legacy, an identity probe (answered), or a consumer
// frame, without reading, writing or consuming anything. Safe for concurrent use: Poll may
// run on many goroutines at once.
type Mux struct {
	mu      sync.RWMutex // shared: Poll; exclusive: free
	ptr     *C.rp_mux
	once    sync.Once
	cleanup runtime.Cleanup
}

// NewMux creates a mux answering probes with identity (copied) and serving the consumer
// payload protocols served (consumer range, private-use range or SESSION).
//
// detect is the daemon's legacy detector, or nil for a daemon without a legacy wire (then
// every first byte other than the v1 framing version is legacy). It runs inside Poll on the
// polling goroutine, concurrently when several goroutines poll; it gets the polled bytes
// (never empty) and must not keep the slice. A panic in it makes that Poll panic.
func NewMux(identity *DaemonIdentity, served []uint32, detect func(buf []byte) LegacyVerdict) (*Mux, error) {
	identity.mu.Lock()
	defer identity.mu.Unlock()
	if identity.ptr == nil {
		return nil, &Error{Status: StatusClosed, Msg: "identity closed"}
	}
	var h C.uintptr_t
	if detect != nil {
		h = newHandle(detect) // librp owns it on every path
	}
	var sp *C.uint32_t
	if len(served) > 0 {
		sp = (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(served)))
	}
	var p *C.rp_mux
	var e C.rpg_err
	st := C.rpg_mux_new(identity.ptr, sp, C.size_t(len(served)), h, &p, &e)
	runtime.KeepAlive(served)
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	m := &Mux{ptr: p}
	m.cleanup = runtime.AddCleanup(m, func(p *C.rp_mux) { C.rp_mux_free(p) }, p)
	return m, nil
}

// Poll classifies the front of buf, the bytes buffered on one connection. It handles at most
// one frame: advance by ev.Consumed and poll again.
//
// Connection-fatal errors (close the connection): ErrUnservedProtocol, ErrFirstPartyFrame,
// ErrMalformedProbe, ErrTooLarge, ErrMalformed. ErrInvalidArgument when the detector returned
// a value that is not a LegacyVerdict.
//
// buf is only borrowed by librp for the call; ev.Frame.Payload points into it.
func (m *Mux) Poll(buf []byte) (MuxEvent, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	maybeGC()
	if m.ptr == nil {
		return MuxEvent{}, &Error{Status: StatusClosed, Msg: "mux closed"}
	}
	var r C.rpg_mux_result
	var e C.rpg_err
	st := C.rpg_mux_poll(m.ptr, bytesPtr(buf), C.size_t(len(buf)), &r, &e)
	runtime.KeepAlive(buf)
	if r.reply != nil {
		defer C.free(unsafe.Pointer(r.reply))
	}
	if err := takeErr(st, &e); err != nil {
		return MuxEvent{}, err
	}
	ev := MuxEvent{Kind: MuxEventKind(r.kind), Consumed: int(r.consumed)}
	if ev.Kind == MuxPayload {
		ev.Frame = frameFrom(&r.frame, buf)
	}
	if r.reply != nil {
		ev.Reply = C.GoBytes(unsafe.Pointer(r.reply), C.int(r.reply_len))
	}
	return ev, nil
}

// Close frees the mux (and releases the detector). Do not call it while a Poll runs on another
// goroutine that you still expect to succeed: it waits for running Polls, and later ones
// return ErrClosed. Idempotent.
func (m *Mux) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		maybeGC()
		m.cleanup.Stop()
		C.rp_mux_free(m.ptr)
		m.ptr = nil
	})
	return nil
}
