package rp

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// HandlerErrorCode is the failure code sent for a push whose handler returned an error that is
// not an *Error (application codes are above 1000).
const HandlerErrorCode = 1001

// WorkerOptions say what a worker registers as and how it connects. On a liminal endpoint
// (liminal+tcp://host:port) PayloadProtocols and Service must stay empty (Connect fails with
// ErrInvalidArgument otherwise), and ActivityDescriptors apply.
type WorkerOptions struct {
	Identity         string   // who the worker is (1–256 bytes; 1–992 on a liminal endpoint); required
	TaskQueue        string   // the queue of work it takes (may be empty; a liminal server routes by it)
	Namespaces       []string // namespaces it serves
	ActivityTypes    []string // activity types it handles
	Node             string   // host name to report (optional)
	PayloadProtocols []uint32 // consumer payload protocols it serves (not on a liminal endpoint)
	Service          string   // service name in the Hello (default "librp-push"; not on a liminal endpoint)
	ConnectTimeout   time.Duration
	AuthToken        []byte // for servers that require one (TCP; sent in the Connect on a liminal endpoint)
	// TLS says how a tls:// server is verified and which client certificate is offered.
	TLS *WorkerTLS
	// ActivityDescriptors describe activities with their JSON schemas in the registration
	// (liminal endpoints only: Connect fails with ErrInvalidArgument on another endpoint).
	ActivityDescriptors []ActivityDescriptor
	// Reconnect, when set, makes the worker reconnect after its connection is lost (see
	// ReconnectPolicy); nil: a lost connection ends the worker with ErrClosed.
	Reconnect *ReconnectPolicy
	// OnEvent, when set, receives each transition of the connection (connected, lost,
	// reconnecting, gave up). It runs on the goroutine in Recv, TryRecv, Pushes or Dispatch,
	// inside that call, before it returns; it may call the worker's methods (not Close). To
	// watch events from elsewhere, send them to a buffered channel without blocking. A panic in
	// it is raised again from that call.
	OnEvent func(WorkerEvent)
}

// ReconnectPolicy says when a worker reconnects after losing its connection: attempt n waits a
// delay drawn from min(MaxDelay, MinDelay * 2^(n-1)), then dials the same endpoint and
// registers again. Any failure counts as an attempt (nothing listening, a refused Hello, a
// rejected registration); after MaxAttempts failed attempts in a row (0 = never) the worker
// gives up and Recv returns ErrClosed with the last failure. Meanwhile Recv keeps waiting and
// returns pushes of the new connection, and Fd stays the same descriptor.
//
// With reconnecting on, Push.CorrelationID is the worker's own id, never reused: a reply to a
// push of a lost connection returns ErrClosed and sends nothing (its server already failed it).
type ReconnectPolicy struct {
	MinDelay    time.Duration // delay before the first attempt, and the least delay (at least 1 ms)
	MaxDelay    time.Duration // the longest delay (at least MinDelay)
	MaxAttempts uint32        // give up after this many failed attempts in a row; 0 = never
	EqualJitter bool          // delays of half the backoff plus a random share of the other half (default: uniform from MinDelay up to the backoff)
}

// WorkerEventKind says what happened to a worker's connection.
type WorkerEventKind int32

// The transitions of a worker's connection.
const (
	WorkerConnected    WorkerEventKind = C.RP_PUSH_WORKER_EVENT_CONNECTED    // connected and registered (Attempt 0: the first time)
	WorkerLost         WorkerEventKind = C.RP_PUSH_WORKER_EVENT_LOST         // the connection was lost (Message: why)
	WorkerReconnecting WorkerEventKind = C.RP_PUSH_WORKER_EVENT_RECONNECTING // Attempt starts after Delay (Status, Message: the previous attempt's failure)
	WorkerGaveUp       WorkerEventKind = C.RP_PUSH_WORKER_EVENT_GAVE_UP      // stopped after Attempt failed attempts; the worker is closed
)

// String names the kind ("connected", "lost", "reconnecting", "gave up").
func (k WorkerEventKind) String() string {
	switch k {
	case WorkerConnected:
		return "connected"
	case WorkerLost:
		return "lost"
	case WorkerReconnecting:
		return "reconnecting"
	case WorkerGaveUp:
		return "gave up"
	}
	return fmt.Sprintf("WorkerEventKind(%d)", int32(k))
}

// WorkerEvent is one transition of a worker's connection.
type WorkerEvent struct {
	Kind    WorkerEventKind
	Attempt uint32        // the reconnect attempt (0 for the first connection and a loss)
	Delay   time.Duration // the wait before the attempt (WorkerReconnecting)
	Status  Status        // the failure behind it (0 when none)
	Message string        // why ("" when there is no reason)
}

// WorkerTLS is how a worker verifies a tls:// server and what it presents, as PEM text.
// Certificate problems fail Connect with ErrPermissionDenied (unknown CA, expired or not yet
// valid, wrong name, a client certificate required), a server that does not speak TLS with
// ErrProtocol; the message says which.
type WorkerTLS struct {
	CAPEM        []byte // CA roots the server's certificate must chain to (nil: the system's roots)
	ServerName   string // name the certificate must be valid for ("": the endpoint's host)
	CertChainPEM []byte // client certificate chain for mutual TLS, leaf first (optional)
	KeyPEM       []byte // its private key
}

// ActivityDescriptor describes an activity a worker handles, with the JSON schemas of its input
// and output, in the registration a worker sends to a liminal server.
type ActivityDescriptor struct {
	Name             string // the activity
	InputSchemaJSON  string // JSON schema of its input
	OutputSchemaJSON string // JSON schema of its output
}

// Push is one push received by a worker. Its fields are Go copies.
type Push struct {
	CorrelationID   uint64 // pass it to Reply
	PayloadProtocol uint32
	Payload         []byte
	Deadline        time.Time // zero = none
	Traceparent     string
	Tracestate      string
}

func pushFrom(p *C.rp_push) *Push {
	return &Push{
		CorrelationID:   uint64(C.rp_push_correlation_id(p)),
		PayloadProtocol: uint32(C.rp_push_payload_protocol(p)),
		Payload:         rpBytes(C.rp_push_payload(p)),
		Deadline:        fromUnixMs(C.rp_push_deadline_unix_ms(p)),
		Traceparent:     rpStr(C.rp_push_traceparent(p)),
		Tracestate:      rpStr(C.rp_push_tracestate(p)),
	}
}

// Worker is a worker's connection to a push server (rp_push_worker). Its methods are safe
// for concurrent use: one goroutine may wait in Recv while others reply or close.
type Worker struct {
	// mu guards ptr: shared for calls on the thread-safe `const rp_push_worker *` functions,
	// exclusive for rp_push_worker_set_handler and rp_push_worker_free.
	mu       sync.RWMutex
	ptr      *C.rp_push_worker
	id       uint64
	once     sync.Once
	cleanup  runtime.Cleanup
	dispatch sync.Mutex // one Dispatch at a time
}

// Connect connects to the push server at endpoint (a socket path, "@name" or
// "tcp://host:port"), says Hello and registers. It returns when registered, on failure, or when
// ctx is done (a connection that completes later is then closed).
//
// On a liminal server's endpoint, "liminal+tcp://host:port", the worker speaks the liminal
// worker wire (Connect and WorkerRegister instead of the Hello and the registration request)
// and then works the same; its pushes carry no payload protocol, deadline or trace context, its
// ID is 0, and ReplyError sends a refusal record (see rp_push_worker_reply_error in rp.h).
//
// Errors: *RefusedError (the server refused the Hello, or the Connect on a liminal endpoint:
// the reason carries liminal's reason code), ErrRejected (registration declined; the message
// holds the reason), ErrInvalidArgument (an option the endpoint has no room for, or over a
// limit), ErrTimeout, ErrIO (nothing listens), protocol errors.
func Connect(ctx context.Context, endpoint string, opts WorkerOptions) (*Worker, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	timeout := opts.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok {
		if r := time.Until(dl); timeout == 0 || r < timeout {
			timeout = max(r, time.Millisecond)
		}
	}
	type result struct {
		w   *Worker
		err error
	}
	connect := func() result {
		var a cArena
		defer a.free()
		var o *C.rp_push_worker_options
		var p *C.rp_push_worker
		err := onThread(func(c *cSeq) {
			c.do(func() C.rp_status {
				return C.rp_push_worker_options_new(a.str(endpoint), a.str(opts.Identity), a.str(opts.TaskQueue), &o)
			})
			if c.err != nil {
				return
			}
			for _, ns := range opts.Namespaces {
				c.do(func() C.rp_status { return C.rp_push_worker_options_add_namespace(o, a.str(ns)) })
			}
			for _, at := range opts.ActivityTypes {
				c.do(func() C.rp_status { return C.rp_push_worker_options_add_activity_type(o, a.str(at)) })
			}
			for _, pr := range opts.PayloadProtocols {
				c.do(func() C.rp_status { return C.rp_push_worker_options_add_payload_protocol(o, C.uint32_t(pr)) })
			}
			for _, d := range opts.ActivityDescriptors {
				c.do(func() C.rp_status {
					return C.rp_push_worker_options_add_activity_descriptor(o, a.str(d.Name), a.str(d.InputSchemaJSON), a.str(d.OutputSchemaJSON))
				})
			}
			if opts.Node != "" {
				c.do(func() C.rp_status { return C.rp_push_worker_options_set_node(o, a.str(opts.Node)) })
			}
			if opts.Service != "" {
				c.do(func() C.rp_status { return C.rp_push_worker_options_set_service(o, a.str(opts.Service)) })
			}
			if ms := optionMs(timeout); ms != 0 {
				c.do(func() C.rp_status { return C.rp_push_worker_options_set_connect_timeout_ms(o, ms) })
			}
			if len(opts.AuthToken) != 0 {
				c.do(func() C.rp_status {
					return C.rp_push_worker_options_set_auth_token(o, a.bytes(opts.AuthToken), C.size_t(len(opts.AuthToken)))
				})
			}
			if r := opts.Reconnect; r != nil {
				c.do(func() C.rp_status {
					return C.rp_push_worker_options_set_reconnect(o, delayMs(r.MinDelay), delayMs(r.MaxDelay), C.uint32_t(r.MaxAttempts))
				})
				if r.EqualJitter {
					c.do(func() C.rp_status {
						return C.rp_push_worker_options_set_reconnect_jitter(o, C.RP_RECONNECT_JITTER_EQUAL)
					})
				}
			}
			if opts.OnEvent != nil && c.err == nil {
				// librp owns the handle from here on every path (released through rpgoFreeHandle).
				h := newHandle(opts.OnEvent)
				c.do(func() C.rp_status { return C.rp_status(C.rpg_worker_options_set_event_callback(o, h)) })
			}
			if t := opts.TLS; t != nil {
				if len(t.CAPEM) != 0 {
					c.do(func() C.rp_status {
						return C.rp_push_worker_options_set_tls_ca_pem(o, a.bytes(t.CAPEM), C.size_t(len(t.CAPEM)))
					})
				}
				if t.ServerName != "" {
					c.do(func() C.rp_status { return C.rp_push_worker_options_set_tls_server_name(o, a.str(t.ServerName)) })
				}
				if len(t.CertChainPEM) != 0 || len(t.KeyPEM) != 0 {
					c.do(func() C.rp_status {
						return C.rp_push_worker_options_set_tls_client_cert_pem(o, a.bytes(t.CertChainPEM), C.size_t(len(t.CertChainPEM)),
							a.bytes(t.KeyPEM), C.size_t(len(t.KeyPEM)))
					})
				}
			}
			if c.err != nil {
				C.rp_push_worker_options_free(o)
				return
			}
			c.do(func() C.rp_status { return C.rp_push_worker_connect(o, &p) }) // consumes o
		})
		if err != nil {
			return result{nil, err}
		}
		return result{newWorker(p), nil}
	}
	if ctx.Done() == nil {
		r := connect()
		return r.w, r.err
	}
	ch := make(chan result, 1)
	go func() { ch <- connect() }()
	select {
	case r := <-ch:
		return r.w, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.w != nil {
				r.w.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// delayMs is d in whole milliseconds for librp's delay arguments (0 for a negative d; at most
// the largest uint32).
func delayMs(d time.Duration) C.uint32_t {
	ms := d.Milliseconds()
	if ms < 0 {
		return 0
	}
	return C.uint32_t(min(ms, int64(^uint32(0))))
}

func newWorker(p *C.rp_push_worker) *Worker {
	w := &Worker{ptr: p, id: uint64(C.rp_push_worker_id(p))}
	w.cleanup = runtime.AddCleanup(w, func(p *C.rp_push_worker) { C.rp_push_worker_free(p) }, p)
	return w
}

// ID is the id the server gave this worker (0 on a liminal endpoint, which has none). A worker
// that reconnected has the id of its latest registration.
func (w *Worker) ID() uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.ptr == nil {
		return w.id
	}
	return uint64(C.rp_push_worker_id(w.ptr))
}

// Fd is a descriptor that is readable while a push waits or the connection has ended
// (level-triggered), for callers with their own poll loop; -1 after Close. It belongs to the
// worker: never read, write or close it.
func (w *Worker) Fd() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	maybeGC()
	if w.ptr == nil {
		return -1
	}
	return int(C.rp_push_worker_fd(w.ptr))
}

// Recv waits for the next push. It returns ErrClosed when the server went away or the worker
// was closed, and ctx.Err() when ctx is done first.
func (w *Worker) Recv(ctx context.Context) (*Push, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.ptr == nil {
		return nil, errWorkerClosed()
	}
	return waitReady(ctx, w.fdLocked, w.recvLocked)
}

// TryRecv waits at most timeout (0 = only take a push already here) for a push; ErrTimeout
// when none came. For a poll loop on Fd.
func (w *Worker) TryRecv(timeout time.Duration) (*Push, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.ptr == nil {
		return nil, errWorkerClosed()
	}
	return w.recvLocked(timeoutMs(timeout))
}

func (w *Worker) fdLocked() C.int32_t { return C.rp_push_worker_fd(w.ptr) }

func errWorkerClosed() error { return &Error{Status: StatusClosed, Msg: "worker closed"} }

// recvLocked is one rp_push_worker_recv; the caller holds mu and has checked ptr.
func (w *Worker) recvLocked(timeoutMs C.int32_t) (*Push, error) {
	maybeGC()
	var p *C.rp_push
	var e C.rpg_err
	st := C.rpg_client_recv(w.ptr, timeoutMs, &p, &e)
	if st == C.RP_STATUS_OK {
		defer C.rp_push_free(p) // also when an event callback's panic is raised again below
	}
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	return pushFrom(p), nil
}

// Reply answers the push with correlationID with payload (copied). Errors: ErrNotFound (no
// such push, already answered, or withdrawn after its deadline), ErrClosed, ErrTimeout.
func (w *Worker) Reply(correlationID uint64, payload []byte) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	maybeGC()
	if w.ptr == nil {
		return &Error{Status: StatusClosed, Msg: "worker closed"}
	}
	var e C.rpg_err
	st := C.rpg_client_reply(w.ptr, C.uint64_t(correlationID), bytesPtr(payload), C.size_t(len(payload)), &e)
	runtime.KeepAlive(payload)
	return takeErr(st, &e)
}

// ReplyError answers the push with a failure: code is a Status or an application code above
// 1000, message says why. On a liminal endpoint it sends a refusal record whose code follows
// code (StatusAgain: "busy"; argument and wire errors: "invalid"; TIMEOUT, CLOSED, IO and the
// like: "unavailable"; anything else: "internal") and whose words are message (at most 1,024
// bytes there; ErrInvalidArgument otherwise).
func (w *Worker) ReplyError(correlationID uint64, code int32, message string) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	maybeGC()
	if w.ptr == nil {
		return &Error{Status: StatusClosed, Msg: "worker closed"}
	}
	msg := cString(message)
	defer C.free(unsafe.Pointer(msg))
	var e C.rpg_err
	st := C.rpg_client_reply_error(w.ptr, C.uint64_t(correlationID), C.int32_t(code), msg, &e)
	return takeErr(st, &e)
}

// Pushes yields pushes until the worker is closed, the server goes away or ctx is done; the
// final error (if any other than ErrClosed) is yielded with a nil push. Breaking out of the
// loop leaves the worker open.
func (w *Worker) Pushes(ctx context.Context) iter.Seq2[*Push, error] {
	return func(yield func(*Push, error) bool) {
		for {
			p, err := w.Recv(ctx)
			if err != nil {
				if !isStatus(err, StatusClosed) {
					yield(nil, err)
				}
				return
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

type handlerBox struct{ fn func(*Push) error }

// Handle sets the function Dispatch runs for each push, replacing any previous one (nil
// removes it). The function runs on the goroutine that calls Dispatch. If it returns nil it
// must have replied (now with Reply, or later from any goroutine); if it returns an error the
// push is answered with a failure carrying the error's text (code: the *Error's status, or
// HandlerErrorCode). A panic in it fails the push and is raised again from Dispatch.
func (w *Worker) Handle(fn func(*Push) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	maybeGC()
	if w.ptr == nil {
		return &Error{Status: StatusClosed, Msg: "worker closed"}
	}
	var h C.uintptr_t
	if fn != nil {
		h = newHandle(&handlerBox{fn: fn})
	}
	var e C.rpg_err
	// librp owns h from here on every path (released through rpgoFreeHandle).
	st := C.rpg_client_set_handler(w.ptr, h, &e)
	return takeErr(st, &e)
}

// Dispatch receives pushes and runs the handler for each, on this goroutine: it waits until
// the first push (or ctx is done), then handles those already waiting, at most maxPushes in
// all (0 = no limit). It returns how many were handled.
func (w *Worker) Dispatch(ctx context.Context, maxPushes int) (int, error) {
	w.dispatch.Lock()
	defer w.dispatch.Unlock()
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.ptr == nil {
		return 0, errWorkerClosed()
	}
	return waitReady(ctx, w.fdLocked, func(timeoutMs C.int32_t) (int, error) {
		maybeGC()
		var handled C.size_t
		var e C.rpg_err
		st := C.rpg_client_dispatch(w.ptr, timeoutMs, C.size_t(max(maxPushes, 0)), &handled, &e)
		return int(handled), takeErr(st, &e)
	})
}

// Close closes the connection (goroutines blocked in Recv or Dispatch return ErrClosed) and
// frees the worker. It is idempotent and safe to call from any goroutine.
func (w *Worker) Close() error {
	w.once.Do(func() {
		w.mu.RLock()
		C.rp_push_worker_close(w.ptr) // unblocks waiters so that they release mu
		w.mu.RUnlock()
		w.mu.Lock()
		defer w.mu.Unlock()
		maybeGC()
		w.cleanup.Stop()
		C.rp_push_worker_free(w.ptr)
		w.ptr = nil
	})
	return nil
}
