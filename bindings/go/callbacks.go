package rp

/*
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Panics recovered in callbacks wait here, by id, until the Go caller of the librp function
// that ran the callback takes them and panics again (see takeErr). The id travels through a
// thread-local in shims.c: callbacks always run on the thread of that librp call.
var panics struct {
	sync.Mutex
	next uint64
	m    map[uint64]any
}

func stashPanic(v any) uint64 {
	panics.Lock()
	defer panics.Unlock()
	if panics.m == nil {
		panics.m = make(map[uint64]any)
	}
	panics.next++
	panics.m[panics.next] = v
	return panics.next
}

func takePanic(id uint64) (bool, any) {
	if id == 0 {
		return false, nil
	}
	panics.Lock()
	defer panics.Unlock()
	v, ok := panics.m[id]
	delete(panics.m, id)
	return ok, v
}

// newHandle wraps v in a cgo.Handle passed to C as an integer; librp gives it back to
// rpgoFreeHandle (the user_data_free of every callback) when it no longer needs it.
func newHandle(v any) C.uintptr_t { return C.uintptr_t(cgo.NewHandle(v)) }

//export rpgoFreeHandle
func rpgoFreeHandle(h C.uintptr_t) {
	cgo.Handle(h).Delete()
}

// guard recovers a panic in a callback and records its id for the C trampoline.
func guard(panicID *C.uint64_t) {
	if r := recover(); r != nil {
		*panicID = C.uint64_t(stashPanic(r))
	}
}

//export rpgoPushHandler
func rpgoPushHandler(h C.uintptr_t, client *C.rp_push_worker, push *C.rp_push, panicID *C.uint64_t) (st C.int32_t) {
	st = C.RP_STATUS_PANIC
	defer guard(panicID)
	hb := cgo.Handle(h).Value().(*handlerBox)
	p := pushFrom(push)
	err := hb.fn(p)
	if err == nil {
		return C.RP_STATUS_OK
	}
	// Answer with the error's text ourselves; librp sees the push answered.
	code := int32(HandlerErrorCode)
	var re *Error
	if errors.As(err, &re) && re.Status != StatusOK {
		code = int32(re.Status)
	}
	var ce C.rpg_err
	msg := cString(err.Error())
	defer C.free(unsafe.Pointer(msg))
	C.rpg_client_reply_error(client, C.uint64_t(p.CorrelationID), C.int32_t(code), msg, &ce)
	_ = takeErr(0, &ce) // an answer that can no longer be sent (closed, withdrawn) is not news
	return C.int32_t(code)
}

//export rpgoRegistration
func rpgoRegistration(h C.uintptr_t, info *C.rp_push_worker_info, reason *C.char, reasonCap C.size_t, panicID *C.uint64_t) (v C.int32_t) {
	v = C.RP_REGISTRATION_VERDICT_REJECT
	defer guard(panicID)
	fn := cgo.Handle(h).Value().(func(*WorkerInfo) (bool, string))
	ok, why := fn(workerInfoFrom(info))
	if ok {
		return C.RP_REGISTRATION_VERDICT_ACCEPT
	}
	if reasonCap > 0 && reason != nil {
		buf := unsafe.Slice((*byte)(unsafe.Pointer(reason)), int(reasonCap))
		n := copy(buf[:len(buf)-1], why)
		buf[n] = 0
	}
	return C.RP_REGISTRATION_VERDICT_REJECT
}

//export rpgoWorkerEvent
func rpgoWorkerEvent(h C.uintptr_t, info *C.rp_push_worker_info, connected C.bool, reason *C.char, reasonLen C.size_t, panicID *C.uint64_t) {
	defer guard(panicID)
	fn := cgo.Handle(h).Value().(func(*WorkerInfo, bool, string))
	fn(workerInfoFrom(info), bool(connected), goStr(reason, reasonLen))
}

//export rpgoWorkerConnEvent
func rpgoWorkerConnEvent(h C.uintptr_t, kind C.int32_t, attempt C.uint32_t, delayMs C.uint64_t, status C.int32_t, message *C.char, panicID *C.uint64_t) {
	defer guard(panicID)
	fn := cgo.Handle(h).Value().(func(WorkerEvent))
	fn(WorkerEvent{
		Kind:    WorkerEventKind(kind),
		Attempt: uint32(attempt),
		Delay:   time.Duration(delayMs) * time.Millisecond,
		Status:  Status(status),
		Message: C.GoString(message),
	})
}

//export rpgoDetect
func rpgoDetect(h C.uintptr_t, buf *C.uint8_t, n C.size_t, panicID *C.uint64_t) (v C.int32_t) {
	v = -1 // outside rp_legacy_verdict: rp_mux_poll fails with INVALID_ARGUMENT
	defer guard(panicID)
	fn := cgo.Handle(h).Value().(func([]byte) LegacyVerdict)
	// buf is the caller's own slice (passed to Poll), borrowed for this call.
	return C.int32_t(fn(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))))
}

// onThread runs f, a sequence of librp calls made straight from Go, on one locked OS thread,
// so that the error text and refusal librp leaves on the failing thread are read there. The
// sequence stops at the first failure (later c.do calls do nothing); onThread returns it.
func onThread(f func(c *cSeq)) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var c cSeq
	f(&c)
	return c.err
}

// cCall makes one librp call straight from Go (see onThread) and returns its error.
func cCall(call func() C.rp_status) error {
	return onThread(func(c *cSeq) { c.do(call) })
}

// cSeq is the state of one onThread sequence: its first failure.
type cSeq struct{ err error }

// do runs call unless an earlier call of the sequence failed, and records its failure.
func (c *cSeq) do(call func() C.rp_status) {
	if c.err != nil {
		return
	}
	if st := C.int32_t(call()); st != C.RP_STATUS_OK {
		var e C.rpg_err
		C.rpg_take_error(st, &e)
		c.err = takeErr(st, &e)
	}
}

// cArena holds C allocations for one call's configuration and frees them together.
type cArena []unsafe.Pointer

func (a *cArena) str(s string) *C.char {
	p := cString(s)
	*a = append(*a, unsafe.Pointer(p))
	return p
}

// optStr is str for optional fields: "" stays NULL.
func (a *cArena) optStr(s string) *C.char {
	if s == "" {
		return nil
	}
	return a.str(s)
}

func (a *cArena) bytes(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	p := C.CBytes(b)
	*a = append(*a, p)
	return (*C.uint8_t)(p)
}

func (a *cArena) free() {
	for _, p := range *a {
		C.free(p)
	}
	*a = nil
}

// cString copies s into C memory; strings with a NUL byte are cut there (librp would reject
// them as not UTF-8 text anyway).
func cString(s string) *C.char { return C.CString(s) }

// bytesPtr is the borrowed C view of b (NULL for an empty slice).
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

// waitInterrupt runs a blocking librp wait on a ticket or a served request until it returns
// anything but a TIMEOUT, until ended (may be nil) says the TIMEOUT is the operation's own (its
// deadline passed), or until ctx is done: ctx's end calls interrupt, which makes the C wait
// return StatusInterrupted at once and leaves the push, call or request as it was; the wait then
// returns ctx's error. interrupt must not take a lock the waiting goroutine holds.
func waitInterrupt[T any](ctx context.Context, attempt func(timeoutMs C.int32_t) (T, error), interrupt func(), ended func() bool) (T, error) {
	var zero T
	if ctx.Done() == nil {
		for {
			// An interrupt may be left over from an earlier wait whose context ended as it returned.
			if v, err := attempt(-1); !isStatus(err, StatusInterrupted) {
				return v, err
			}
		}
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		interrupt()
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	for first := true; ; first = false {
		ms, left := untilDeadline(ctx)
		if !left {
			if !first {
				<-ctx.Done()
				return zero, ctx.Err()
			}
			ms = 0 // an expired ctx still takes an outcome already here
		}
		v, err := attempt(ms)
		switch {
		case isStatus(err, StatusInterrupted):
			if ctxErr(ctx) != nil {
				return zero, ctx.Err()
			}
			// Left over from an earlier wait (see above): wait again.
		case isStatus(err, StatusTimeout):
			if ended != nil && ended() {
				return v, err
			}
			if ctxErr(ctx) != nil {
				return zero, ctx.Err()
			}
		default:
			return v, err
		}
	}
}

// untilDeadline is the wait left before ctx's deadline as a librp timeout (-1: no deadline),
// and false once the deadline has passed.
func untilDeadline(ctx context.Context) (C.int32_t, bool) {
	dl, ok := ctx.Deadline()
	if !ok {
		return -1, true
	}
	d := time.Until(dl)
	return timeoutMs(d), d > 0
}

// waitReady runs attempt, a librp call that waits up to its timeout, until it returns anything
// but a TIMEOUT or ctx is done (then ctx's error). fdOf gives the handle's level-triggered
// descriptor, readable while attempt(0) would not wait. The wait is one poll of that
// descriptor and a wake pipe, bounded by ctx's deadline; context.AfterFunc writes the pipe
// when ctx ends, so a cancelled ctx returns at once and the handle stays usable. The caller
// holds the handle's lock for the whole call, which keeps the descriptor open; the pipe is
// closed (or kept for reuse if never written) only once the AfterFunc callback has finished
// or can no longer run.
func waitReady[T any](ctx context.Context, fdOf func() C.int32_t, attempt func(timeoutMs C.int32_t) (T, error)) (T, error) {
	var zero T
	if ctx.Done() == nil { // never ends: librp's own unlimited wait
		return attempt(-1)
	}
	// What is here already (or a failure such as a missing handler) is taken at once, as a
	// wait would.
	if v, err := attempt(0); !isStatus(err, StatusTimeout) {
		return v, err
	}
	fd := fdOf()
	if fd < 0 {
		return zero, &Error{Status: StatusIO, Msg: "no descriptor to wait on (out of descriptors?)"}
	}
	wk, err := takeWake()
	if err != nil {
		return zero, err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		C.rpg_wake_fire(wk.wr)
		close(fired)
	})
	defer func() {
		if stop() {
			putWake(wk) // never written: reusable
		} else {
			<-fired
			C.rpg_wake_close(wk.rd, wk.wr)
		}
	}()
	for {
		ms, left := untilDeadline(ctx)
		if !left {
			<-ctx.Done() // the deadline passed: its timer fires now
			return zero, ctx.Err()
		}
		switch C.rpg_wait_readable(fd, wk.rd, ms) {
		case 1:
			if v, err := attempt(0); !isStatus(err, StatusTimeout) {
				return v, err
			}
		case 2:
			return zero, ctx.Err()
		case 0: // the deadline: the next round returns ctx's error
		default:
			return zero, &Error{Status: StatusIO, Msg: "poll failed while waiting"}
		}
	}
}

// wake is a pipe that ends one waitReady when its context ends.
type wake struct{ rd, wr C.int32_t }

// wakes keeps a few pipes that were never written, so that a wait does not make one each time.
var wakes struct {
	sync.Mutex
	free []wake
}

const maxFreeWakes = 8

func takeWake() (wake, error) {
	wakes.Lock()
	if n := len(wakes.free); n > 0 {
		w := wakes.free[n-1]
		wakes.free = wakes.free[:n-1]
		wakes.Unlock()
		return w, nil
	}
	wakes.Unlock()
	var w wake
	if C.rpg_wake_open(&w.rd, &w.wr) != 0 {
		return w, &Error{Status: StatusIO, Msg: "cannot make the pipe that wakes a cancelled wait"}
	}
	return w, nil
}

func putWake(w wake) {
	wakes.Lock()
	defer wakes.Unlock()
	if len(wakes.free) < maxFreeWakes {
		wakes.free = append(wakes.free, w)
		return
	}
	C.rpg_wake_close(w.rd, w.wr)
}

// waitCancel runs attempt, a librp call that waits up to its timeout, bounded by ctx's
// deadline, and ends the operation with cancel (from context.AfterFunc) when ctx ends first:
// the woken call's CANCELLED or TIMEOUT then becomes ctx's error. ended (may be nil) says a
// TIMEOUT is the operation's own outcome. The caller holds the handle's lock for the whole
// call; cancel has finished (or will never run) when waitCancel returns.
func waitCancel[T any](ctx context.Context, attempt func(timeoutMs C.int32_t) (T, error), cancel func(), ended func() bool) (T, error) {
	var zero T
	if ctx.Done() == nil {
		return attempt(-1)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		cancel()
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired
		}
	}()
	for first := true; ; first = false {
		ms, left := untilDeadline(ctx)
		if !left {
			if !first {
				<-ctx.Done()
				return zero, ctx.Err()
			}
			ms = 0 // an expired ctx still takes an outcome already here
		}
		v, err := attempt(ms)
		if !isStatus(err, StatusTimeout) && !isStatus(err, StatusCancelled) {
			return v, err
		}
		own := ended != nil && ended()
		if ctxErr(ctx) != nil {
			return zero, ctx.Err()
		}
		if own || isStatus(err, StatusCancelled) {
			return v, err
		}
	}
}

//export rpgoSessionRequest
func rpgoSessionRequest(h C.uintptr_t, req *C.rp_session_request, panicID *C.uint64_t) {
	r := newSessionRequest(req)
	defer func() {
		if v := recover(); v != nil {
			// The peer gets an error for a request the panicking dispatcher did not answer;
			// the Go caller of Dispatch panics again with v.
			_ = r.RespondError(1001, fmt.Sprint("the dispatcher panicked: ", v))
			*panicID = C.uint64_t(stashPanic(v))
		}
	}()
	cgo.Handle(h).Value().(*sessionBox).fn(r)
}
