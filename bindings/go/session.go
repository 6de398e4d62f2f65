package rp

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"unsafe"
)

// SessionSide says which end of the connection a session is: the connecting end's calls use
// odd request ids, the accepting end's even ones, so the two ends must differ.
type SessionSide int32

const (
	SessionConnecting SessionSide = C.RP_SESSION_SIDE_CONNECTING
	SessionAccepting  SessionSide = C.RP_SESSION_SIDE_ACCEPTING
)

type sessionBox struct{ fn func(*SessionRequest) }

// Session runs calls in both directions over one connection (rp_session). Its methods are safe
// for concurrent use; any number of goroutines may Call at once.
type Session struct {
	mu       sync.RWMutex // shared: the thread-safe `const rp_session *` calls; exclusive: free
	ptr      *C.rp_session
	once     sync.Once
	dispatch sync.Mutex
	cleanup  runtime.Cleanup
}

// NewSession makes a session of conn, which it takes over: conn is closed from now on, even
// when NewSession fails. dispatcher serves the peer's requests when Dispatch runs (on the
// goroutine calling Dispatch); it owns each request and must answer it, now or later, from any
// goroutine. With a nil dispatcher the peer's requests get the "no dispatcher" error.
func NewSession(conn *Conn, side SessionSide, dispatcher func(*SessionRequest)) (*Session, error) {
	conn.mu.Lock()
	p := conn.ptr
	conn.ptr = nil
	conn.cleanup.Stop()
	conn.mu.Unlock()
	if p == nil {
		return nil, errConnClosed()
	}
	var h C.uintptr_t
	if dispatcher != nil {
		h = newHandle(&sessionBox{fn: dispatcher})
	}
	var s *C.rp_session
	var e C.rpg_err
	// librp owns p (and h) from here on every path.
	st := C.rpg_session_new(p, C.int32_t(side), h, &s, &e)
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	out := &Session{ptr: s}
	out.cleanup = runtime.AddCleanup(out, func(p *C.rp_session) { C.rp_session_free(p) }, s)
	return out, nil
}

func errSessionClosed() error { return &Error{Status: StatusClosed, Msg: "session closed"} }

// Call sends a request on the consumer protocol `protocol` and waits for the answer until ctx
// is done (then the call is cancelled and ctx's error returned). The peer's error comes back
// as an *Error with the peer's status and message (ErrPeerError for application codes,
// ErrNotFound when the peer has no dispatcher); ErrClosed when the connection ended.
func (s *Session) Call(ctx context.Context, protocol uint32, payload []byte) ([]byte, error) {
	c, err := s.Start(protocol, payload)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Wait(ctx)
}

// Start sends a request and returns at once with the call in progress: read the peer's
// stream with Next, write to it with Send and CloseWrite (a tunnel), take the answer with
// Wait. Close the call when done with it; closing an unfinished call cancels it.
func (s *Session) Start(protocol uint32, payload []byte) (*SessionTicket, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return nil, errSessionClosed()
	}
	var t *C.rp_session_ticket
	var e C.rpg_err
	st := C.rpg_session_call_start(s.ptr, C.uint32_t(protocol), bytesPtr(payload), C.size_t(len(payload)), &t, &e)
	runtime.KeepAlive(payload)
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	c := &SessionTicket{ptr: t, ID: uint64(C.rp_session_ticket_id(t))}
	c.cleanup = runtime.AddCleanup(c, func(p *C.rp_session_ticket) { C.rp_session_ticket_free(p) }, t)
	return c, nil
}

// SessionTicket is one call in progress (see Session.Start). Its methods are safe for concurrent
// use; it stays usable after its Session is closed (every method then reports ErrClosed).
type SessionTicket struct {
	mu      sync.RWMutex // shared: the thread-safe ticket calls; exclusive: free
	ptr     *C.rp_session_ticket
	once    sync.Once
	cleanup runtime.Cleanup
	// ID is the call's request id (odd from the connecting side, even from the accepting one).
	ID uint64
}

func errCallClosed() error { return &Error{Status: StatusClosed, Msg: "the call was closed"} }

// Wait returns the answer, waiting until ctx is done (then the call is cancelled and ctx's
// error returned). Errors as for Session.Call.
func (c *SessionTicket) Wait(ctx context.Context) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil, errCallClosed()
	}
	p := c.ptr
	return waitCancel(ctx, func(timeoutMs C.int32_t) ([]byte, error) {
		return takeMsgOrErr(func(m **C.rp_msg, e *C.rpg_err) C.int32_t {
			return C.rpg_session_ticket_wait(p, timeoutMs, m, e)
		})
	}, func() { C.rp_session_ticket_cancel(p) }, c.done)
}

func (c *SessionTicket) done() bool { return bool(C.rp_session_ticket_is_done(c.ptr)) }

// Next returns the next chunk the peer streamed on this call, waiting until ctx is done (the
// call goes on). ErrClosed once the stream has ended: the answer is then Wait's.
func (c *SessionTicket) Next(ctx context.Context) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil, errCallClosed()
	}
	p := c.ptr
	return waitInterrupt(ctx, func(timeoutMs C.int32_t) ([]byte, error) {
		return takeMsgOrErr(func(m **C.rp_msg, e *C.rpg_err) C.int32_t {
			return C.rpg_session_ticket_next_chunk(p, timeoutMs, m, e)
		})
	}, func() { C.rp_session_ticket_interrupt(p) }, c.done)
}

// Send streams one chunk to the peer (it reads them with SessionRequest.Next).
func (c *SessionTicket) Send(chunk []byte) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return errCallClosed()
	}
	maybeGC()
	var e C.rpg_err
	st := C.rpg_session_ticket_send_chunk(c.ptr, bytesPtr(chunk), C.size_t(len(chunk)), &e)
	runtime.KeepAlive(chunk)
	return takeErr(st, &e)
}

// CloseWrite tells the peer no more chunks come from this side; the answer is still due.
func (c *SessionTicket) CloseWrite() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return errCallClosed()
	}
	maybeGC()
	var e C.rpg_err
	st := C.rpg_session_ticket_close_write(c.ptr, &e)
	return takeErr(st, &e)
}

// Cancel cancels the call: its waiters return ErrCancelled and the peer is told. It does
// nothing once the call has its answer.
func (c *SessionTicket) Cancel() {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr != nil {
		C.rp_session_ticket_cancel(c.ptr)
	}
}

// Close frees the call, cancelling it if it has no answer yet. Idempotent.
func (c *SessionTicket) Close() error {
	c.once.Do(func() {
		c.Cancel() // wakes this call's waiters so that they release mu
		c.mu.Lock()
		defer c.mu.Unlock()
		maybeGC()
		c.cleanup.Stop()
		C.rp_session_ticket_free(c.ptr)
		c.ptr = nil
	})
	return nil
}

// takeMsg copies an rp_msg into Go memory and frees it.
func takeMsg(m *C.rp_msg) []byte {
	out := C.GoBytes(unsafe.Pointer(C.rp_msg_data(m)), C.int(C.rp_msg_len(m)))
	C.rp_msg_free(m)
	return out
}

// takeMsgOrErr runs one librp call that yields an rp_msg and returns its Go copy or the error.
func takeMsgOrErr(call func(**C.rp_msg, *C.rpg_err) C.int32_t) ([]byte, error) {
	maybeGC()
	var m *C.rp_msg
	var e C.rpg_err
	if st := call(&m, &e); st != C.RP_STATUS_OK {
		return nil, takeErr(st, &e)
	}
	return takeMsg(m), nil
}

// Dispatch runs the dispatcher for the peer's requests on this goroutine: it waits until the
// first request (or ctx is done), then serves those already waiting. It returns how many were
// served. A panic in the dispatcher answers its request with an error and is raised again here.
func (s *Session) Dispatch(ctx context.Context) (int, error) {
	s.dispatch.Lock()
	defer s.dispatch.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return 0, errSessionClosed()
	}
	return waitReady(ctx, func() C.int32_t { return C.rp_session_dispatch_fd(s.ptr) }, func(timeoutMs C.int32_t) (int, error) {
		maybeGC()
		var n C.size_t
		var e C.rpg_err
		st := C.rpg_session_dispatch(s.ptr, timeoutMs, &n, &e)
		return int(n), takeErr(st, &e)
	})
}

// Close closes the session (every waiting call returns ErrClosed) and frees it. Idempotent and
// safe from any goroutine.
func (s *Session) Close() error {
	s.once.Do(func() {
		s.mu.RLock()
		C.rp_session_close(s.ptr) // unblocks waiters so that they release mu
		s.mu.RUnlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		maybeGC()
		s.cleanup.Stop()
		C.rp_session_free(s.ptr)
		s.ptr = nil
	})
	return nil
}

// SessionRequest is one of the peer's requests, owned until Respond or RespondError (exactly
// one, from any goroutine). A request never answered is dropped when collected, and the peer
// gets an error.
type SessionRequest struct {
	mu              sync.RWMutex // shared: chunk calls; exclusive: taking the request to answer it
	ptr             *C.rp_session_request
	ID              uint64
	PayloadProtocol uint32
	Payload         []byte
	cleanup         runtime.Cleanup
}

func newSessionRequest(p *C.rp_session_request) *SessionRequest {
	b := C.rp_session_request_payload(p)
	r := &SessionRequest{
		ptr:             p,
		ID:              uint64(C.rp_session_request_id(p)),
		PayloadProtocol: uint32(C.rp_session_request_payload_protocol(p)),
		Payload:         C.GoBytes(unsafe.Pointer(b.ptr), C.int(b.len)),
	}
	r.cleanup = runtime.AddCleanup(r, func(p *C.rp_session_request) { C.rp_session_request_free(p) }, p)
	return r
}

func (r *SessionRequest) take() *C.rp_session_request {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.ptr
	r.ptr = nil
	if p != nil {
		r.cleanup.Stop()
	}
	return p
}

// Respond answers the request with payload. Errors: ErrCancelled (the caller cancelled),
// ErrTimeout (its deadline passed), ErrClosed; answering twice is ErrInvalidArgument.
func (r *SessionRequest) Respond(payload []byte) error {
	p := r.take()
	if p == nil {
		return &Error{Status: StatusInvalidArgument, Msg: "the request was already answered"}
	}
	var e C.rpg_err
	st := C.rpg_session_respond(p, bytesPtr(payload), C.size_t(len(payload)), &e)
	runtime.KeepAlive(payload)
	return takeErr(st, &e)
}

// RespondError answers the request with an error: code is a Status, or an application code
// above 1000; the caller receives it with message.
func (r *SessionRequest) RespondError(code int32, message string) error {
	p := r.take()
	if p == nil {
		return &Error{Status: StatusInvalidArgument, Msg: "the request was already answered"}
	}
	cmsg := C.CString(message)
	defer C.free(unsafe.Pointer(cmsg))
	var e C.rpg_err
	st := C.rpg_session_respond_error(p, C.int32_t(code), cmsg, &e)
	return takeErr(st, &e)
}

func errAnswered() error {
	return &Error{Status: StatusInvalidArgument, Msg: "the request was already answered"}
}

// Next returns the next chunk the caller sent on this request (a tunnel), waiting until ctx is
// done. ErrClosed once the caller half-closed; ErrCancelled once it cancelled.
func (r *SessionRequest) Next(ctx context.Context) ([]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return nil, errAnswered()
	}
	p := r.ptr
	return waitInterrupt(ctx, func(timeoutMs C.int32_t) ([]byte, error) {
		return takeMsgOrErr(func(m **C.rp_msg, e *C.rpg_err) C.int32_t {
			return C.rpg_session_request_next_chunk(p, timeoutMs, m, e)
		})
	}, func() { C.rp_session_request_interrupt(p) },
		func() bool { return bool(C.rp_session_request_is_cancelled(p)) })
}

// Send streams one chunk to the caller (SessionTicket.Next) before the answer.
func (r *SessionRequest) Send(chunk []byte) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return errAnswered()
	}
	maybeGC()
	var e C.rpg_err
	st := C.rpg_session_request_send_chunk(r.ptr, bytesPtr(chunk), C.size_t(len(chunk)), &e)
	runtime.KeepAlive(chunk)
	return takeErr(st, &e)
}

// CloseWrite tells the caller no more chunks come; the answer is still due.
func (r *SessionRequest) CloseWrite() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.ptr == nil {
		return errAnswered()
	}
	maybeGC()
	var e C.rpg_err
	st := C.rpg_session_request_close_write(r.ptr, &e)
	return takeErr(st, &e)
}
