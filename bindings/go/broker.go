package rp

/*
#include <stdlib.h>
#include "shims.h"
*/
import "C"

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Route is how [ConnectBroker] reached the backend (rp_broker_route).
type Route int32

// The routes.
const (
	RouteHelloSkip  Route = C.RP_BROKER_ROUTE_HELLO_SKIP // straight to the cached endpoint
	RouteNegotiated Route = C.RP_BROKER_ROUTE_NEGOTIATED // Hello, then a new connection to the backend
	RouteHandedOff  Route = C.RP_BROKER_ROUTE_HANDED_OFF // Hello, then the broker handed the connection over
)

func (r Route) String() string {
	switch r {
	case RouteHelloSkip:
		return "hello-skip"
	case RouteNegotiated:
		return "negotiated"
	case RouteHandedOff:
		return "handed off"
	}
	return "unknown route"
}

// BrokerOptions say how to reach a service's backend through a broker.
type BrokerOptions struct {
	Endpoint      string // the broker: a socket path or "@name"; required
	Service       string // the service (1–64 characters of [a-z0-9-]); required
	WantedVersion string // the backend version wanted (semver); required
	// OwnVersion is the caller's own version (default WantedVersion); hello-skip is tried
	// only when it equals WantedVersion.
	OwnVersion string
	// CachedEndpoint is BrokerResult.Endpoint from an earlier connect, for hello-skip.
	CachedEndpoint string
	ClientVersion  string        // informational version sent in the Hello (≤ 128 bytes)
	KeepAlive      time.Duration // proposed keepalive interval (0 = the broker chooses)
	// AdoptHandoff opts in to adopting a handed-off connection, waiting up to HandoffWait
	// (0 = librp's 2 s, negative = no limit) for the broker's relay; any failure falls back to
	// the backend endpoint.
	AdoptHandoff bool
	HandoffWait  time.Duration
	// Timeout limits each connect and the Hello round trip (0 = librp's 5 s, negative = no
	// limit); a shorter context deadline wins.
	Timeout time.Duration
	// HonorDisableEnv makes ConnectBroker fail with ErrDisabled when RUNNING_PROCESS_DISABLE
	// is 1 (use your direct path), and with ErrConfig for another non-empty value.
	HonorDisableEnv bool
	// TLS says how tls:// endpoints (the broker, CachedEndpoint, or the backend the broker
	// names) are verified and which client certificate is offered there (nil: the system's
	// CA roots, no client certificate). A TLS connection is never handed off.
	TLS *ClientTLS
}

// ClientTLS is how a client verifies a tls:// endpoint and what it presents, as PEM text; the
// same fields as WorkerTLS. Certificate problems fail with ErrPermissionDenied, an endpoint
// that does not speak TLS with ErrProtocol.
type ClientTLS = WorkerTLS

// BrokerResult is what a broker connect learned (Go copies).
type BrokerResult struct {
	Route Route
	// Endpoint is the backend endpoint to cache: pass it as BrokerOptions.CachedEndpoint next
	// time to skip the Hello.
	Endpoint           string
	DaemonVersion      string        // Negotiated.daemon_version ("" after hello-skip)
	ServerCapabilities uint64        // 0 after hello-skip
	KeepAlive          time.Duration // granted keepalive interval (0 after hello-skip)
	ConnectionID       uint64        // 0 after hello-skip
}

// DisabledByEnv reads RUNNING_PROCESS_DISABLE: true for "1", false when unset or empty,
// ErrConfig for any other value.
func DisabledByEnv() (bool, error) {
	var b C.bool
	if err := cCall(func() C.rp_status { return C.rp_broker_disabled_by_env(&b) }); err != nil {
		return false, err
	}
	return bool(b), nil
}

func durMs(d time.Duration) time.Duration { return (d + time.Millisecond - 1) / time.Millisecond }

// runCtx runs a blocking C call on another goroutine when ctx can be cancelled, and returns
// ctx.Err() once ctx is done first; a value produced later is handed to discard.
func runCtx[T any](ctx context.Context, call func() (T, error), discard func(T)) (T, error) {
	if ctx.Done() == nil {
		return call()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := call()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				discard(r.v)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}

// ctxLimit is limit cut to the context's remaining time (limit 0 = none of its own).
func ctxLimit(ctx context.Context, limit time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if r := time.Until(dl); limit == 0 || r < limit {
			limit = max(r, time.Millisecond)
		}
	}
	return limit
}

// ConnectBroker connects to a service's backend through the broker: by hello-skip to
// opts.CachedEndpoint when the versions match and it answers, otherwise by a Hello (then the
// handed-off connection, or a new connection to the negotiated backend). It returns when
// connected, on failure, or when ctx is done (a connection made later is then closed).
//
// Errors: *RefusedError (the broker refused: code, reason, retry hint, details), ErrDisabled
// and ErrConfig (HonorDisableEnv), ErrTimeout, ErrIO (nothing listens), ErrProtocol,
// ErrInvalidArgument (a field the broker would refuse); over tls:// ErrPermissionDenied (a
// certificate refused) and ErrProtocol (no TLS there).
func ConnectBroker(ctx context.Context, opts BrokerOptions) (*Conn, *BrokerResult, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, nil, err
	}
	own := opts.OwnVersion
	if own == "" {
		own = opts.WantedVersion
	}
	timeout := ctxLimit(ctx, opts.Timeout)
	type out struct {
		c *Conn
		r *BrokerResult
	}
	o, err := runCtx(ctx, func() (out, error) {
		var a cArena
		defer a.free()
		var o *C.rp_broker_options
		var r *C.rp_broker_result
		var c *C.rp_conn
		err := onThread(func(s *cSeq) {
			s.do(func() C.rp_status {
				return C.rp_broker_options_new(a.str(opts.Endpoint), a.str(opts.Service), a.str(opts.WantedVersion), a.str(own), &o)
			})
			if s.err != nil {
				return
			}
			if opts.CachedEndpoint != "" {
				s.do(func() C.rp_status { return C.rp_broker_options_set_cached_endpoint(o, a.str(opts.CachedEndpoint)) })
			}
			if opts.ClientVersion != "" {
				s.do(func() C.rp_status { return C.rp_broker_options_set_client_version(o, a.str(opts.ClientVersion)) })
			}
			if secs := opts.KeepAlive / time.Second; secs != 0 {
				s.do(func() C.rp_status { return C.rp_broker_options_set_keepalive_secs(o, C.uint64_t(secs)) })
			}
			if opts.AdoptHandoff {
				wait := optionMs(opts.HandoffWait)
				if wait == 0 {
					wait = 2000 // librp's default handoff wait
				}
				s.do(func() C.rp_status { return C.rp_broker_options_set_adopt_handoff(o, true, wait) })
			}
			if ms := optionMs(timeout); ms != 0 {
				s.do(func() C.rp_status { return C.rp_broker_options_set_timeout_ms(o, ms) })
			}
			if opts.HonorDisableEnv {
				s.do(func() C.rp_status { return C.rp_broker_options_set_honor_disable_env(o, true) })
			}
			if t := opts.TLS; t != nil && s.err == nil {
				var tls *C.rp_tls_client_options
				s.do(func() C.rp_status { return C.rp_tls_client_options_new(&tls) })
				if len(t.CAPEM) != 0 {
					s.do(func() C.rp_status {
						return C.rp_tls_client_options_set_ca_pem(tls, a.bytes(t.CAPEM), C.size_t(len(t.CAPEM)))
					})
				}
				if t.ServerName != "" {
					s.do(func() C.rp_status { return C.rp_tls_client_options_set_server_name(tls, a.str(t.ServerName)) })
				}
				if len(t.CertChainPEM) != 0 || len(t.KeyPEM) != 0 {
					s.do(func() C.rp_status {
						return C.rp_tls_client_options_set_client_cert_pem(tls, a.bytes(t.CertChainPEM), C.size_t(len(t.CertChainPEM)),
							a.bytes(t.KeyPEM), C.size_t(len(t.KeyPEM)))
					})
				}
				s.do(func() C.rp_status { return C.rp_broker_options_set_tls(o, tls) })
				C.rp_tls_client_options_free(tls)
			}
			if s.err != nil {
				C.rp_broker_options_free(o)
				return
			}
			s.do(func() C.rp_status { return C.rp_broker_connect(o, &r) }) // consumes o
			if s.err != nil {
				return
			}
			s.do(func() C.rp_status { return C.rp_broker_result_take_conn(r, &c) })
			if s.err != nil {
				C.rp_broker_result_free(r)
			}
		})
		if err != nil {
			return out{}, err
		}
		defer C.rp_broker_result_free(r)
		res := &BrokerResult{
			Route:              Route(C.rp_broker_result_route(r)),
			Endpoint:           rpStr(C.rp_broker_result_endpoint(r)),
			DaemonVersion:      rpStr(C.rp_broker_result_daemon_version(r)),
			ServerCapabilities: uint64(C.rp_broker_result_server_capabilities(r)),
			KeepAlive:          time.Duration(C.rp_broker_result_keepalive_secs(r)) * time.Second,
			ConnectionID:       uint64(C.rp_broker_result_connection_id(r)),
		}
		return out{newConn(c), res}, nil
	}, func(o out) { o.c.Close() })
	return o.c, o.r, err
}

// Conn is a framed v1 connection to a backend (rp_conn). Its methods are safe for concurrent
// use: one goroutine may wait in Recv while others Send or Close.
type Conn struct {
	mu      sync.RWMutex // shared: the thread-safe `const rp_conn *` calls; exclusive: free
	ptr     *C.rp_conn
	once    sync.Once
	cleanup runtime.Cleanup
}

func newConn(p *C.rp_conn) *Conn {
	c := &Conn{ptr: p}
	c.cleanup = runtime.AddCleanup(c, func(p *C.rp_conn) { C.rp_conn_free(p) }, p)
	return c
}

// AdoptConn makes a Conn of a connected Unix stream socket, for example the file
// [HandoffStore.Accept] returned. The Conn works on its own duplicate of the descriptor: the
// caller still owns conn and closes it as usual.
func AdoptConn(conn syscall.Conn) (*Conn, error) {
	dup := -1
	var derr error
	if err := withFd(conn, func(fd C.int32_t) {
		dup, derr = dupDescriptor(int32(fd))
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	var p *C.rp_conn
	// consumes dup on every path
	if err := cCall(func() C.rp_status { return C.rp_conn_adopt_fd(C.int32_t(dup), &p) }); err != nil {
		return nil, err
	}
	return newConn(p), nil
}

func errConnClosed() error { return &Error{Status: StatusClosed, Msg: "connection closed"} }

// Send sends one frame (f is read during the call only). EnvelopeVersion 0 is sent as 1.
// Errors: ErrClosed, ErrTimeout (the peer did not read for 30 s), ErrTooLarge, ErrIO.
func (c *Conn) Send(f *Frame) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	maybeGC()
	if c.ptr == nil {
		return errConnClosed()
	}
	h := f.header()
	var e C.rpg_err
	st := C.rpg_conn_send(c.ptr, &h, bytesPtr(f.Payload), strPtr(f.Traceparent), strPtr(f.Tracestate), &e)
	runtime.KeepAlive(f)
	return takeErr(st, &e)
}

// Recv waits for the next frame (a Go copy). It returns ErrClosed when the peer closed or
// the Conn was closed, and ctx.Err() when ctx is done first.
func (c *Conn) Recv(ctx context.Context) (*Frame, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil, errConnClosed()
	}
	return waitReady(ctx, func() C.int32_t { return C.rp_conn_fd(c.ptr) }, c.recvLocked)
}

// TryRecv waits at most timeout (0 = only a frame already here) for a frame; ErrTimeout when
// none came. For a poll loop on Fd: each time Fd is readable, call TryRecv(0).
func (c *Conn) TryRecv(timeout time.Duration) (*Frame, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.ptr == nil {
		return nil, errConnClosed()
	}
	return c.recvLocked(timeoutMs(timeout))
}

// recvLocked is one rp_conn_recv; the caller holds mu and has checked ptr.
func (c *Conn) recvLocked(timeoutMs C.int32_t) (*Frame, error) {
	maybeGC()
	var p *C.rp_frame
	var v C.rp_frame_view
	var e C.rpg_err
	st := C.rpg_conn_recv(c.ptr, timeoutMs, &p, &v, &e)
	if err := takeErr(st, &e); err != nil {
		return nil, err
	}
	defer C.rp_frame_free(p)
	return &Frame{
		EnvelopeVersion: uint32(v.envelope_version),
		Kind:            FrameKind(v.kind),
		PayloadProtocol: uint32(v.payload_protocol),
		PayloadEncoding: int32(v.payload_encoding),
		RequestID:       uint64(v.request_id),
		Deadline:        fromUnixMs(v.deadline_unix_ms),
		Payload:         rpBytes(v.payload),
		Traceparent:     rpStr(v.traceparent),
		Tracestate:      rpStr(v.tracestate),
	}, nil
}

// Fd is a descriptor for a poll loop (-1 after Close), readable (level-triggered) exactly while
// TryRecv(0) would return a frame or the end, also for frames already buffered: one TryRecv(0)
// per wake-up is enough. It is not the socket: watch it for readability only; it belongs to
// the Conn: never read, write or close it.
func (c *Conn) Fd() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	maybeGC()
	if c.ptr == nil {
		return -1
	}
	return int(C.rp_conn_fd(c.ptr))
}

// PeerCredentials are the peer's kernel-reported pid, uid and gid (Unix sockets; ErrNotFound
// for TCP).
func (c *Conn) PeerCredentials() (pid, uid, gid uint32, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	maybeGC()
	if c.ptr == nil {
		return 0, 0, 0, errConnClosed()
	}
	var p, u, g C.uint32_t
	if err := cCall(func() C.rp_status { return C.rp_conn_peer_credentials(c.ptr, &p, &u, &g) }); err != nil {
		return 0, 0, 0, err
	}
	return uint32(p), uint32(u), uint32(g), nil
}

// Close closes the connection (a goroutine blocked in Recv returns ErrClosed) and frees it.
// It is idempotent and safe to call from any goroutine.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.mu.RLock()
		C.rp_conn_close(c.ptr) // wakes a waiting Recv so that it releases mu
		c.mu.RUnlock()
		c.mu.Lock()
		defer c.mu.Unlock()
		maybeGC()
		c.cleanup.Stop()
		C.rp_conn_free(c.ptr)
		c.ptr = nil
	})
	return nil
}

// AdminVerb is an admin request's verb (payload protocol 0xAD01).
type AdminVerb int32

// Some admin verbs.
const (
	AdminStatus   AdminVerb = 1
	AdminHealthz  AdminVerb = 4
	AdminReadyz   AdminVerb = 5
	AdminMetrics  AdminVerb = 9 // OpenMetrics text; the numbers of BrokerServer.Stats
	AdminShutdown AdminVerb = 21
)

// AdminReplyKind is the content type of an admin reply.
type AdminReplyKind int32

// Admin reply kinds.
const (
	AdminText        AdminReplyKind = 0
	AdminJSON        AdminReplyKind = 1
	AdminOpenMetrics AdminReplyKind = 2
)

// AdminReply is an admin reply (Go copies).
type AdminReply struct {
	Kind     AdminReplyKind
	ExitCode uint32 // 0 = success
	Body     []byte
}

// adminDefaultTimeout bounds AdminRequest when ctx has no deadline.
const adminDefaultTimeout = 5 * time.Second

// AdminRequest sends one admin request on a new connection to endpoint (a broker, say) and
// waits for the reply, until ctx is done (at most 5 s without a deadline). service may be "".
// Errors: ErrTimeout, ErrClosed, ErrIO, ErrProtocol, ErrMalformed.
func AdminRequest(ctx context.Context, endpoint string, verb AdminVerb, service string) (*AdminReply, error) {
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	timeout := ctxLimit(ctx, adminDefaultTimeout)
	return runCtx(ctx, func() (*AdminReply, error) {
		ep := cString(endpoint)
		defer C.free(unsafe.Pointer(ep))
		var svc *C.char
		if service != "" {
			svc = cString(service)
			defer C.free(unsafe.Pointer(svc))
		}
		var r *C.rp_admin_reply
		if err := cCall(func() C.rp_status {
			return C.rp_admin_request(ep, C.int32_t(verb), svc, timeoutMs(timeout), &r)
		}); err != nil {
			return nil, err
		}
		defer C.rp_admin_reply_free(r)
		body := C.rp_admin_reply_body(r)
		return &AdminReply{
			Kind:     AdminReplyKind(C.rp_admin_reply_kind(r)),
			ExitCode: uint32(C.rp_admin_reply_exit_code(r)),
			Body:     C.GoBytes(unsafe.Pointer(body.ptr), C.int(body.len)),
		}, nil
	}, func(*AdminReply) {})
}

// BrokerService is one row of a broker's service table.
type BrokerService struct {
	Name          string // 1–64 characters of [a-z0-9-]
	Backend       string // the backend_pipe sent in Negotiated
	DaemonVersion string // the daemon_version sent in Negotiated
	// Allow, once non-empty, is the only wanted versions accepted (others are refused with
	// CodeVersionBlocked and a 30 s retry hint, as the reference broker does); Block lists
	// versions refused with CodeVersionBlocked and no hint.
	Allow, Block []string
	// MinVersion refuses lower wanted versions with CodeVersionBlocked and a 30 s retry hint.
	MinVersion string
	// HandoffEndpoint offers handoff: capable clients' connections are passed to the backend
	// listening there; issued tokens also go to HandoffStore when it is not nil.
	HandoffEndpoint string
	HandoffStore    *HandoffStore
}

// BrokerServerOptions say how a broker server is set up. The zero value of each limit is
// librp's default.
type BrokerServerOptions struct {
	Services []BrokerService
	// AllowOtherUIDs accepts peers of other users (default: refused with CodePeerRejected).
	AllowOtherUIDs bool
	// SocketAccess lets one group reach a path socket's file (nil: its owner only); see
	// SocketAccess. Group members are other users, so AllowOtherUIDs goes with it.
	SocketAccess *SocketAccess
	// RateLimit is the most Hellos per peer uid in RateWindow (default 256 per 1 s; RateWindow
	// 0 = 1 s); more are refused with CodeRateLimited and a retry hint.
	RateLimit         int
	RateWindow        time.Duration
	HelloTimeout      time.Duration // how long a connection has to send its first frame (0 = default, negative = no limit)
	HandoffAckTimeout time.Duration // how long to wait for a backend's HandoffAck (0 = default, negative = no limit)
}

// BrokerServer is a running librp broker (rp_broker_server). Its methods are safe for
// concurrent use.
type BrokerServer struct {
	mu       sync.RWMutex // shared: thread-safe calls; exclusive: free
	ptr      *C.rp_broker_server
	endpoint string
	once     sync.Once
	cleanup  runtime.Cleanup
}

// BindBroker binds endpoint (a socket path or "@name"; a path socket is made 0600 in a 0700
// directory) and starts serving on a librp thread. Errors: ErrInvalidArgument (a bad service
// table), ErrPermissionDenied (unsafe socket directory), ErrIO (a live server already there),
// ErrNotFound.
func BindBroker(endpoint string, opts *BrokerServerOptions) (*BrokerServer, error) {
	if opts == nil {
		opts = &BrokerServerOptions{}
	}
	var a cArena
	defer a.free()
	var stores []*HandoffStore // read-locked until bind returns (the options take a reference)
	defer func() {
		for _, s := range stores {
			s.mu.RUnlock()
		}
	}()
	for _, sv := range opts.Services {
		if sv.HandoffStore != nil && !slices.Contains(stores, sv.HandoffStore) {
			sv.HandoffStore.mu.RLock()
			stores = append(stores, sv.HandoffStore)
			if sv.HandoffStore.ptr == nil {
				return nil, &Error{Status: StatusClosed, Msg: "handoff store closed"}
			}
		}
	}
	window := opts.RateWindow
	if opts.RateLimit > 0 && window == 0 {
		window = time.Second
	}
	maybeGC()
	var o *C.rp_broker_server_options
	var p *C.rp_broker_server
	err := onThread(func(c *cSeq) {
		c.do(func() C.rp_status { return C.rp_broker_server_options_new(a.str(endpoint), &o) })
		if c.err != nil {
			return
		}
		if opts.AllowOtherUIDs {
			c.do(func() C.rp_status { return C.rp_broker_server_options_set_allow_other_uids(o, true) })
		}
		if sa := opts.SocketAccess; sa != nil {
			c.do(func() C.rp_status {
				return C.rp_broker_server_options_set_socket_access(o, C.uint32_t(sa.Mode), C.int64_t(sa.Group))
			})
		}
		for _, sv := range opts.Services {
			name := a.str(sv.Name)
			c.do(func() C.rp_status {
				return C.rp_broker_server_options_add_service(o, name, a.str(sv.Backend), a.str(sv.DaemonVersion))
			})
			for _, v := range sv.Allow {
				c.do(func() C.rp_status { return C.rp_broker_server_options_allow_version(o, name, a.str(v)) })
			}
			for _, v := range sv.Block {
				c.do(func() C.rp_status { return C.rp_broker_server_options_block_version(o, name, a.str(v)) })
			}
			if sv.MinVersion != "" {
				c.do(func() C.rp_status { return C.rp_broker_server_options_set_min_version(o, name, a.str(sv.MinVersion)) })
			}
			if sv.HandoffEndpoint != "" {
				var store *C.rp_handoff_store
				if sv.HandoffStore != nil {
					store = sv.HandoffStore.ptr
				}
				c.do(func() C.rp_status {
					return C.rp_broker_server_options_set_handoff(o, name, a.str(sv.HandoffEndpoint), store)
				})
			}
		}
		if opts.RateLimit > 0 {
			c.do(func() C.rp_status {
				return C.rp_broker_server_options_set_rate_limit(o, C.uint32_t(opts.RateLimit), C.uint32_t(durMs(window)))
			})
		}
		if ms := optionMs(opts.HelloTimeout); ms != 0 {
			c.do(func() C.rp_status { return C.rp_broker_server_options_set_hello_timeout_ms(o, ms) })
		}
		if ms := optionMs(opts.HandoffAckTimeout); ms != 0 {
			c.do(func() C.rp_status { return C.rp_broker_server_options_set_handoff_ack_timeout_ms(o, ms) })
		}
		if c.err != nil {
			C.rp_broker_server_options_free(o)
			return
		}
		c.do(func() C.rp_status { return C.rp_broker_server_bind(o, &p) }) // consumes o
	})
	if err != nil {
		return nil, err
	}
	s := &BrokerServer{ptr: p, endpoint: rpStr(C.rp_broker_server_endpoint(p))}
	s.cleanup = runtime.AddCleanup(s, func(p *C.rp_broker_server) { C.rp_broker_server_free(p) }, p)
	return s, nil
}

// Endpoint is the endpoint actually bound.
func (s *BrokerServer) Endpoint() string { return s.endpoint }

// BeginShutdown makes the broker refuse every Hello from now on with CodeShuttingDown; it
// keeps running until Close. A no-op after Close.
func (s *BrokerServer) BeginShutdown() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	maybeGC()
	if s.ptr != nil {
		C.rp_broker_server_begin_shutdown(s.ptr)
	}
}

// Close stops the broker (closing its connections, removing the socket file, waiting for its
// thread) and frees it. Idempotent.
func (s *BrokerServer) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		maybeGC()
		s.cleanup.Stop()
		C.rp_broker_server_free(s.ptr)
		s.ptr = nil
	})
	return nil
}
