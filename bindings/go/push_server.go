package rp

/*
#include "shims.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// WorkerInfo describes one registered worker (a Go copy).
type WorkerInfo struct {
	ID               uint64
	Identity         string
	TaskQueue        string
	Node             string
	Namespaces       []string
	ActivityTypes    []string
	PayloadProtocols []uint32
	// Kernel-reported credentials of a Unix-socket peer; HasPeer is false for TCP workers.
	HasPeer       bool
	PID, UID, GID uint32
	// The client certificate the server verified (mutual TLS on a tls:// endpoint):
	// TLSSubject as "CN=...,O=...", TLSSANs as "DNS:...", "IP:...", "URI:...", "email:...".
	TLSVerified bool
	TLSSubject  string
	TLSSANs     []string
	InFlight    int // pushes sent and not yet answered when the info was taken
}

func workerInfoFrom(w *C.rp_push_worker_info) *WorkerInfo {
	wi := &WorkerInfo{
		ID:        uint64(C.rp_push_worker_info_id(w)),
		Identity:  rpStr(C.rp_push_worker_info_identity(w)),
		TaskQueue: rpStr(C.rp_push_worker_info_task_queue(w)),
		Node:      rpStr(C.rp_push_worker_info_node(w)),
		InFlight:  int(C.rp_push_worker_info_in_flight(w)),
	}
	for i := C.size_t(0); i < C.rp_push_worker_info_namespace_count(w); i++ {
		wi.Namespaces = append(wi.Namespaces, rpStr(C.rp_push_worker_info_namespace(w, i)))
	}
	for i := C.size_t(0); i < C.rp_push_worker_info_activity_type_count(w); i++ {
		wi.ActivityTypes = append(wi.ActivityTypes, rpStr(C.rp_push_worker_info_activity_type(w, i)))
	}
	for i := C.size_t(0); i < C.rp_push_worker_info_payload_protocol_count(w); i++ {
		wi.PayloadProtocols = append(wi.PayloadProtocols, uint32(C.rp_push_worker_info_payload_protocol(w, i)))
	}
	var pid, uid, gid C.uint32_t
	if C.rp_push_worker_info_peer(w, &pid, &uid, &gid) {
		wi.HasPeer, wi.PID, wi.UID, wi.GID = true, uint32(pid), uint32(uid), uint32(gid)
	}
	if C.rp_push_worker_info_tls_verified(w) {
		wi.TLSVerified = true
		wi.TLSSubject = rpStr(C.rp_push_worker_info_tls_subject(w))
		for i := C.size_t(0); i < C.rp_push_worker_info_tls_san_count(w); i++ {
			wi.TLSSANs = append(wi.TLSSANs, rpStr(C.rp_push_worker_info_tls_san(w, i)))
		}
	}
	return wi
}

// ServerOptions say how a push server is set up. The zero value is librp's defaults.
type ServerOptions struct {
	Service        string // service name workers must ask for (default "librp-push")
	AllowOtherUIDs bool   // accept Unix peers of other users
	// SocketAccess lets one group reach a path socket's file (nil: its owner only); group
	// members are other users, so AllowOtherUIDs goes with it.
	SocketAccess *SocketAccess
	// AllowRemoteTCP allows a non-loopback TCP or TLS address: plain TCP then requires
	// AuthToken; TLS requires AuthToken or required client certificates (TLS.ClientCAPEM).
	AllowRemoteTCP bool
	AuthToken      []byte // token every worker's Hello must carry
	// TLS is the certificate of a tls:// endpoint (required there) and what it asks of workers.
	TLS              *ServerTLS
	HandshakeTimeout time.Duration
	// FrameTimeout is the time a registered worker has to finish a frame it started (0 = the
	// default, 30 s; negative = no limit); a worker stalled mid-frame longer is disconnected.
	FrameTimeout  time.Duration
	MaxSendBuffer int // bytes queued per worker before pushes fail with ErrAgain
	// MaxConnections and MaxConnectionsPerUID cap connections in all and from one peer uid
	// (0 = the defaults, 4096 and 2048); more are refused with a *RefusedError (RATE_LIMITED).
	MaxConnections       int
	MaxConnectionsPerUID int

	// OnRegister decides each registration (accept, or reject with a reason). It runs inside
	// Dispatch, which the application must then call. nil accepts every worker.
	OnRegister func(w *WorkerInfo) (accept bool, reason string)
	// OnWorker learns that a worker registered (connected) or left (with a reason). It runs
	// inside Dispatch.
	OnWorker func(w *WorkerInfo, connected bool, reason string)
}

// ServerTLS is what a tls:// push server presents and asks of its workers, as PEM text.
type ServerTLS struct {
	CertChainPEM []byte // certificate chain, leaf first
	KeyPEM       []byte // private key of the leaf (PKCS#8, PKCS#1 or SEC1)
	// ClientCAPEM turns on mutual TLS: workers present a certificate that chains to these CA
	// roots, and WorkerInfo carries its subject and names.
	ClientCAPEM []byte
	// ClientCertOptional (with ClientCAPEM) lets workers without a certificate in too.
	ClientCertOptional bool
}

// SocketAccess says who may reach a path socket's file: Mode its permission bits (0600 or
// with group bits, 0660; never bits for others) and Group its group id (-1 keeps the process's
// group). A socket directory librp creates is then 0710 with that group; an existing one must
// let the group pass. Bind fails with ErrInvalidArgument for a bad mode and with
// ErrPermissionDenied when the file cannot be given to the group.
type SocketAccess struct {
	Mode  uint32
	Group int64
}

// PushServer is a running push server (rp_push_server). Its methods are safe for concurrent use,
// except that Dispatch runs in one goroutine at a time.
type PushServer struct {
	mu       sync.RWMutex // shared: calls on the thread-safe functions; exclusive: free
	ptr      *C.rp_push_server
	endpoint string
	once     sync.Once
	cleanup  runtime.Cleanup
	dispatch sync.Mutex
}

// Bind binds endpoint (a socket path, "@name", "tcp://127.0.0.1:0" or "tls://127.0.0.1:0"
// with opts.TLS) and starts serving. Errors: ErrIO (address in use), ErrPermissionDenied
// (unsafe socket directory, non-loopback TCP not allowed), ErrConfig (remote TCP without a
// token, a tls:// endpoint without a usable certificate and key).
func Bind(endpoint string, opts *ServerOptions) (*PushServer, error) {
	if opts == nil {
		opts = &ServerOptions{}
	}
	var a cArena
	defer a.free()
	var reg, wk C.uintptr_t
	if opts.OnRegister != nil {
		reg = newHandle(opts.OnRegister)
	}
	if opts.OnWorker != nil {
		wk = newHandle(opts.OnWorker)
	}
	var o *C.rp_push_server_options
	var p *C.rp_push_server
	err := onThread(func(c *cSeq) {
		c.do(func() C.rp_status { return C.rp_push_server_options_new(a.str(endpoint), &o) })
		if c.err != nil { // the handles were never given to librp: release them here
			for _, h := range []C.uintptr_t{reg, wk} {
				if h != 0 {
					rpgoFreeHandle(h)
				}
			}
			return
		}
		// librp owns the handles from here on every path (released through rpgoFreeHandle).
		c.do(func() C.rp_status { return C.rp_status(C.rpg_server_options_set_callbacks(o, reg, wk)) })
		if opts.Service != "" {
			c.do(func() C.rp_status { return C.rp_push_server_options_set_service(o, a.str(opts.Service)) })
		}
		if opts.AllowOtherUIDs {
			c.do(func() C.rp_status { return C.rp_push_server_options_set_allow_other_uids(o, true) })
		}
		if sa := opts.SocketAccess; sa != nil {
			c.do(func() C.rp_status {
				return C.rp_push_server_options_set_socket_access(o, C.uint32_t(sa.Mode), C.int64_t(sa.Group))
			})
		}
		if opts.AllowRemoteTCP {
			c.do(func() C.rp_status { return C.rp_push_server_options_set_allow_remote_tcp(o, true) })
		}
		if len(opts.AuthToken) != 0 {
			c.do(func() C.rp_status {
				return C.rp_push_server_options_set_auth_token(o, a.bytes(opts.AuthToken), C.size_t(len(opts.AuthToken)))
			})
		}
		if t := opts.TLS; t != nil {
			c.do(func() C.rp_status {
				return C.rp_push_server_options_set_tls_cert_pem(o, a.bytes(t.CertChainPEM), C.size_t(len(t.CertChainPEM)),
					a.bytes(t.KeyPEM), C.size_t(len(t.KeyPEM)))
			})
			if len(t.ClientCAPEM) != 0 {
				c.do(func() C.rp_status {
					return C.rp_push_server_options_set_tls_client_ca_pem(o, a.bytes(t.ClientCAPEM), C.size_t(len(t.ClientCAPEM)),
						C.bool(!t.ClientCertOptional))
				})
			}
		}
		if ms := optionMs(opts.HandshakeTimeout); ms != 0 {
			c.do(func() C.rp_status { return C.rp_push_server_options_set_handshake_timeout_ms(o, ms) })
		}
		if opts.MaxConnections > 0 || opts.MaxConnectionsPerUID > 0 { // the other keeps librp's default
			total, perUID := C.size_t(4096), C.size_t(2048)
			if opts.MaxConnections > 0 {
				total = C.size_t(opts.MaxConnections)
			}
			if opts.MaxConnectionsPerUID > 0 {
				perUID = C.size_t(opts.MaxConnectionsPerUID)
			}
			c.do(func() C.rp_status { return C.rp_push_server_options_set_max_connections(o, total, perUID) })
		}
		if ms := optionMs(opts.FrameTimeout); ms != 0 {
			c.do(func() C.rp_status { return C.rp_push_server_options_set_frame_timeout_ms(o, ms) })
		}
		if opts.MaxSendBuffer > 0 {
			c.do(func() C.rp_status {
				return C.rp_push_server_options_set_max_send_buffer(o, C.size_t(opts.MaxSendBuffer))
			})
		}
		if c.err != nil {
			C.rp_push_server_options_free(o)
			return
		}
		c.do(func() C.rp_status { return C.rp_push_server_bind(o, &p) }) // consumes o
	})
	if err != nil {
		return nil, err
	}
	s := &PushServer{ptr: p, endpoint: rpStr(C.rp_push_server_endpoint(p))}
	s.cleanup = runtime.AddCleanup(s, func(p *C.rp_push_server) { C.rp_push_server_free(p) }, p)
	return s, nil
}

// Endpoint is the endpoint actually bound (with the real port for "tcp://…:0"), in the form
// Connect accepts.
func (s *PushServer) Endpoint() string { return s.endpoint }

func errServerClosed() error { return &Error{Status: StatusClosed, Msg: "server closed"} }

// PushRequest is one job to push. By default it goes to the least busy worker serving
// PayloadProtocol; ToWorker, ToTaskQueue or ToProtocol choose another target.
type PushRequest struct {
	PayloadProtocol uint32
	Payload         []byte
	Deadline        time.Time // zero = none (PushWait uses the context's deadline)
	Traceparent     string
	Tracestate      string
	ToWorker        uint64
	ToTaskQueue     string
	ToProtocol      uint32
}

// Push starts a push and returns its ticket at once; delivery failures arrive through the
// ticket. Errors: ErrClosed (server shut down).
func (s *PushServer) Push(req *PushRequest) (*PushTicket, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return nil, errServerClosed()
	}
	var a cArena
	defer a.free()
	cfg := C.rpg_request_cfg{
		payload_protocol: C.uint32_t(req.PayloadProtocol),
		deadline_unix_ms: unixMs(req.Deadline),
		traceparent:      a.optStr(req.Traceparent),
		tracestate:       a.optStr(req.Tracestate),
		to_task_queue:    a.optStr(req.ToTaskQueue),
		to_worker:        C.uint64_t(req.ToWorker),
		to_protocol:      C.uint32_t(req.ToProtocol),
	}
	var t *C.rp_push_ticket
	var e C.rpg_err
	st := C.rpg_server_push(s.ptr, &cfg, bytesPtr(req.Payload), C.size_t(len(req.Payload)), &t, &e)
	runtime.KeepAlive(req)
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	tk := &PushTicket{ptr: t, id: uint64(C.rp_push_ticket_correlation_id(t))}
	tk.cleanup = runtime.AddCleanup(tk, func(p *C.rp_push_ticket) { C.rp_push_ticket_free(p) }, t)
	return tk, nil
}

// PushWait pushes and waits for the worker's answer. Without a deadline of its own the push
// gets the context's deadline, so the worker drops it when the caller stops waiting.
// Errors: ErrTimeout, ErrClosed (the worker went away), ErrNotFound (no worker matches),
// ErrAgain (the worker is not keeping up), ctx.Err().
func (s *PushServer) PushWait(ctx context.Context, req *PushRequest) (*PushResult, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	r := *req
	if dl, ok := ctx.Deadline(); ok && r.Deadline.IsZero() {
		r.Deadline = dl
	}
	t, err := s.Push(&r)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.Wait(ctx)
}

// Workers returns a snapshot of the registered workers.
func (s *PushServer) Workers() ([]WorkerInfo, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return nil, errServerClosed()
	}
	var l *C.rp_push_worker_list
	if err := cCall(func() C.rp_status { return C.rp_push_server_workers(s.ptr, &l) }); err != nil {
		return nil, err
	}
	defer C.rp_push_worker_list_free(l)
	n := int(C.rp_push_worker_list_len(l))
	out := make([]WorkerInfo, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, *workerInfoFrom(C.rp_push_worker_list_get(l, C.size_t(i))))
	}
	return out, nil
}

// Dispatch runs OnRegister and OnWorker for pending server events on this goroutine: it waits
// until the first event (or ctx is done), then handles those already waiting, and returns how
// many it handled. ErrInvalidArgument when the options set no callback.
func (s *PushServer) Dispatch(ctx context.Context) (int, error) {
	s.dispatch.Lock()
	defer s.dispatch.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return 0, errServerClosed()
	}
	return waitReady(ctx, func() C.int32_t { return C.rp_push_server_event_fd(s.ptr) }, func(timeoutMs C.int32_t) (int, error) {
		maybeGC()
		var handled C.size_t
		var e C.rpg_err
		st := C.rpg_server_dispatch(s.ptr, timeoutMs, &handled, &e)
		return int(handled), takeErr(st, &e)
	})
}

// EventFd is a descriptor readable while events wait for Dispatch (level-triggered); -1 after
// Close. It belongs to the server: never read or close it.
func (s *PushServer) EventFd() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return -1
	}
	return int(C.rp_push_server_event_fd(s.ptr))
}

// Disconnect disconnects a worker; its outstanding pushes fail with ErrClosed.
func (s *PushServer) Disconnect(workerID uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr == nil {
		return errServerClosed()
	}
	return cCall(func() C.rp_status { return C.rp_push_server_disconnect(s.ptr, C.uint64_t(workerID)) })
}

// Close stops serving (every worker is disconnected, outstanding pushes fail with ErrClosed,
// the socket file is removed) and frees the server. Idempotent; safe from any goroutine.
func (s *PushServer) Close() error {
	s.once.Do(func() {
		s.mu.RLock()
		C.rp_push_server_shutdown(s.ptr) // unblocks waiters so that they release mu
		s.mu.RUnlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		maybeGC()
		s.cleanup.Stop()
		C.rp_push_server_free(s.ptr)
		s.ptr = nil
	})
	return nil
}

// PushResult is a worker's answer: a reply payload, or the worker's failure.
type PushResult struct {
	Payload        []byte
	Failed         bool
	FailureCode    int32
	FailureMessage string
}

// PushTicket is an in-flight push (rp_push_ticket). Closing it does not cancel the push.
type PushTicket struct {
	mu      sync.RWMutex
	ptr     *C.rp_push_ticket
	id      uint64
	once    sync.Once
	cleanup runtime.Cleanup
}

// CorrelationID is the push's correlation id.
func (t *PushTicket) CorrelationID() uint64 { return t.id }

// Done reports whether the push has an outcome.
func (t *PushTicket) Done() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	maybeGC()
	return t.ptr != nil && bool(C.rp_push_ticket_is_done(t.ptr))
}

// Wait waits for the push's outcome and takes it (it can be taken once; later calls return
// ErrInvalidArgument). Errors as for PushServer.PushWait.
func (t *PushTicket) Wait(ctx context.Context) (*PushResult, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.ptr == nil {
		return nil, &Error{Status: StatusClosed, Msg: "ticket closed"}
	}
	p := t.ptr
	return waitInterrupt(ctx, func(timeoutMs C.int32_t) (*PushResult, error) { return waitTicket(p, timeoutMs) },
		func() { C.rp_push_ticket_interrupt(p) },
		func() bool { return bool(C.rp_push_ticket_is_done(p)) }) // done: the push's own deadline passed
}

func waitTicket(p *C.rp_push_ticket, timeoutMs C.int32_t) (*PushResult, error) {
	maybeGC()
	var r *C.rp_push_result
	var e C.rpg_err
	st := C.rpg_ticket_wait(p, timeoutMs, &r, &e)
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	defer C.rp_push_result_free(r)
	return &PushResult{
		Payload:        rpBytes(C.rp_push_result_payload(r)),
		Failed:         bool(C.rp_push_result_is_failure(r)),
		FailureCode:    int32(C.rp_push_result_failure_code(r)),
		FailureMessage: rpStr(C.rp_push_result_failure_message(r)),
	}, nil
}

// Close frees the ticket; the push goes on. Idempotent.
func (t *PushTicket) Close() error {
	t.once.Do(func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		maybeGC()
		t.cleanup.Stop()
		C.rp_push_ticket_free(t.ptr)
		t.ptr = nil
	})
	return nil
}
