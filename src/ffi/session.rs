//! `rp_session_*`: multiplexed calls, streams and tunnels in both directions over one
//! connection, for C.

use std::borrow::Cow;
use std::ffi::{c_char, c_void};

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, limit_arg, rp_msg, rp_str, slice_arg, timeout_arg};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::handle::{box_free, box_into_handle, box_opt, box_ref, box_take, castable, opt_out, out_arg};
use super::session_ticket::{rp_session_call_options, rp_session_ticket};
use super::session_request::rp_session_request;
use super::status::rp_status;
use crate::broker::Conn;
use crate::session::{CallOptions, Session, SessionListener, Side};
use crate::transport::{Endpoint, TlsIdentity};
use super::tls::{rp_tls_client_options, rp_tls_server_options};

/// Which end of the connection a session is; it decides the parity of its request ids.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rp_session_side {
    /// The side that connected: its calls use odd request ids.
    Connecting = 0,
    /// The side that accepted the connection: its calls use even request ids.
    Accepting = 1,
}

/// An `rp_session_side` as received from C: the header names the enum, librp reads the
/// integer and checks it (an integer from C is never transmuted into a Rust enum).
pub type rp_session_side_arg = i32;

/// Serves one of the peer's requests.
///
/// Parameters: `user_data` as registered; `request` — the request, **owned by the callback**
/// (unlike other handles passed to callbacks, because the answer may come later from another
/// thread): hand it to exactly one of `rp_session_respond`, `rp_session_respond_error` or
/// `rp_session_request_free`, now or later, from any thread. Its fields (payload, trace
/// context) stay valid until then.
///
/// Called on the thread that calls `rp_session_dispatch`, from within it. It may call any librp
/// function, including `rp_session_call` on the same session (the answer is read by the
/// session's reader, not by this thread), but must not call `rp_session_free` on the session.
/// While it runs, this `rp_session_dispatch` serves no other request; answer slow requests from
/// another thread, or call `rp_session_dispatch` from several threads.
pub type rp_session_request_callback = Option<unsafe extern "C" fn(user_data: *mut c_void, request: *mut rp_session_request)>;

/// One multiplexed session over a connection: calls in both directions, streams and tunnels.
///
/// Methods: `rp_session_new`, `rp_session_connect`, `rp_session_listener_accept`,
/// `rp_session_call`, `rp_session_call_start`,
/// `rp_session_dispatch`, `rp_session_dispatch_fd`, `rp_session_side_of`, `rp_session_pending_calls`,
/// `rp_session_close`, `rp_session_free`.
///
/// Under the hood it owns the connection and two threads: the reader, the only reader of the
/// connection, which routes each incoming frame to its call, stream or request queue, and an
/// answerer that writes librp's own error answers ("no dispatcher", deadline passed); neither
/// ever runs user code. Functions taking `const rp_session *` are thread-safe.
pub struct rp_session {
    _private: [u8; 0],
}

pub(crate) struct SessionHandle {
    pub(crate) session: Session,
    dispatcher: Option<ForeignCallback<rp_session_request_callback>>,
    /// The peer's verified certificate on a TLS connection, for `rp_session_tls_subject`.
    tls_identity: Option<TlsIdentity>,
}

castable!(rp_session => SessionHandle: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------------------------

/// Starts a session over a connection.
///
/// Parameters: `conn` — consumed by this call, even if an error is returned; from now on only
/// the session reads it (from `rp_broker_result_take_conn`, `rp_conn_adopt_fd` after your own
/// `accept`, or a handoff); `side` — `RP_SESSION_SIDE_CONNECTING` for the end that connected,
/// `RP_SESSION_SIDE_ACCEPTING` for the end that accepted (both ends must differ);
/// `dispatcher` — serves the peer's requests (see `rp_session_request_callback`) when the
/// application calls `rp_session_dispatch`; NULL: the session serves no requests, and each one
/// is answered at once with the error code 13 (`RP_STATUS_NOT_FOUND`, "no dispatcher");
/// `user_data_free` (may be NULL) — called once with `user_data` when the session is freed, or
/// at once if `dispatcher` is NULL or this call fails; `out_session` — receives the session.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (unknown `side`), `RP_STATUS_IO`
/// (no thread could be started), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_new(
    conn: *mut super::conn::rp_conn,
    side: rp_session_side_arg,
    dispatcher: rp_session_request_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
    out_session: *mut *mut rp_session,
) -> rp_status {
    let callback = ForeignCallback::new(dispatcher, user_data, user_data_free);
    boundary(|| {
        // SAFETY: NULL or a live connection owned by the caller, consumed here on every path.
        let conn = unsafe { box_take(conn, "conn") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_session = unsafe { out_arg(out_session, "out_session") }?;
        let side = match side {
            s if s == rp_session_side::Connecting as i32 => Side::Connecting,
            s if s == rp_session_side::Accepting as i32 => Side::Accepting,
            other => return Err(Failure::new(rp_status::InvalidArgument, format!("{other} is not an rp_session_side"))),
        };
        let handle = start(conn, side, callback)?;
        out_session.write(handle);
        Ok(())
    })
}

/// Starts a session and boxes it with its dispatcher (dropped at once when it has no function).
fn start(
    conn: Conn,
    side: Side,
    callback: ForeignCallback<rp_session_request_callback>,
) -> Result<*mut rp_session, Failure> {
    let dispatcher = callback.func.is_some().then_some(callback);
    let tls_identity = conn.tls_identity();
    let session = Session::new(conn, side, dispatcher.is_some())?;
    Ok(box_into_handle::<rp_session>(SessionHandle { session, dispatcher, tls_identity }))
}

/// Connects to `endpoint` and starts a session there as the connecting side (odd request
/// ids). The peer is typically an `rp_session_listener`; no Hello is exchanged.
///
/// Parameters: `endpoint` — a socket path, `@abstract` name, or `tcp://host:port`
/// (`tls://host:port` needs `rp_session_connect_tls`); `timeout_ms` — limit for connecting (see the timeout rule); `dispatcher`, `user_data`,
/// `user_data_free` and `out_session` as for `rp_session_new`.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_IO` (nothing listens there), `RP_STATUS_TIMEOUT`,
/// `RP_STATUS_INVALID_ARGUMENT` (a malformed endpoint), `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_connect(
    endpoint: *const c_char,
    timeout_ms: i32,
    dispatcher: rp_session_request_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
    out_session: *mut *mut rp_session,
) -> rp_status {
    let callback = ForeignCallback::new(dispatcher, user_data, user_data_free);
    boundary(|| {
        // SAFETY: NUL-terminated per the API contract.
        let endpoint = Endpoint::parse(unsafe { cstr_arg(endpoint, "endpoint") }?)?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_session = unsafe { out_arg(out_session, "out_session") }?;
        let conn = crate::session::connect(&endpoint, limit_arg(timeout_ms)?)?;
        let handle = start(conn, Side::Connecting, callback)?;
        out_session.write(handle);
        Ok(())
    })
}

/// Like `rp_session_connect`, for a `tls://host:port` endpoint: connects, runs the TLS
/// handshake (both within `timeout_ms`) and starts a session as the connecting side.
///
/// Parameters: `tls` — how the server is verified and the client certificate offered (read
/// and copied; NULL: the system's CA roots, the endpoint's host as the name, no client
/// certificate); the others as for `rp_session_connect`.
///
/// Returns `RP_STATUS_OK`; `RP_STATUS_PERMISSION_DENIED` (the server's certificate was refused:
/// unknown CA, expired or not yet valid, wrong name; the last error message says which);
/// `RP_STATUS_PROTOCOL` (the server does not speak TLS); `RP_STATUS_CONFIG` (unusable TLS
/// options); `RP_STATUS_INVALID_ARGUMENT` (an endpoint that is not `tls://` with TLS options
/// set, or a malformed one); `RP_STATUS_IO`, `RP_STATUS_TIMEOUT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_NULL_ARGUMENT`. A server that requires a client certificate and got none refuses
/// after the handshake: the first call then fails with `RP_STATUS_PERMISSION_DENIED` or
/// `RP_STATUS_CLOSED`.
///
/// Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_connect_tls(
    endpoint: *const c_char,
    timeout_ms: i32,
    tls: *const rp_tls_client_options,
    dispatcher: rp_session_request_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
    out_session: *mut *mut rp_session,
) -> rp_status {
    let callback = ForeignCallback::new(dispatcher, user_data, user_data_free);
    boundary(|| {
        // SAFETY: NUL-terminated per the API contract.
        let endpoint = Endpoint::parse(unsafe { cstr_arg(endpoint, "endpoint") }?)?;
        // SAFETY: NULL or live options per the API contract.
        let tls = unsafe { box_opt(tls) }.cloned().unwrap_or_default();
        // SAFETY: NULL or valid for a write per the API contract.
        let out_session = unsafe { out_arg(out_session, "out_session") }?;
        let conn = crate::session::connect_with(&endpoint, limit_arg(timeout_ms)?, &tls)?;
        let handle = start(conn, Side::Connecting, callback)?;
        out_session.write(handle);
        Ok(())
    })
}

/// The subject of the peer's verified certificate when the session runs over TLS (the
/// server's on the connecting side; the client's under mutual TLS on the accepting side), as
/// `CN=...,O=...`; empty over Unix sockets and TCP, without a client certificate, or if NULL.
/// Borrowed: valid until the session is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_tls_subject(session: *const rp_session) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live session per the API contract.
        unsafe { box_ref::<rp_session>(session, "session") }
            .ok()
            .and_then(|s| s.tls_identity.as_ref())
            .map_or(rp_str::from_str(""), |t| rp_str::from_str(&t.subject))
    })
}

/// Number of subject alternative names in the peer's verified certificate (0 without one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_tls_san_count(session: *const rp_session) -> usize {
    boundary_or(0, || {
        // SAFETY: NULL or a live session per the API contract.
        unsafe { box_ref::<rp_session>(session, "session") }.ok().and_then(|s| s.tls_identity.as_ref()).map_or(0, |t| t.sans.len())
    })
}

/// The `index`-th subject alternative name of the peer's verified certificate, as `DNS:name`,
/// `IP:address`, `URI:uri` or `email:address` (empty if out of range). Borrowed: valid until
/// the session is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_tls_san(session: *const rp_session, index: usize) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live session per the API contract.
        unsafe { box_ref::<rp_session>(session, "session") }
            .ok()
            .and_then(|s| s.tls_identity.as_ref())
            .and_then(|t| t.sans.get(index))
            .map_or(rp_str::from_str(""), |san| rp_str::from_str(san))
    })
}

/// A listening socket whose connections become sessions on the accepting side.
///
/// Methods: `rp_session_listener_bind`, `rp_session_listener_endpoint`,
/// `rp_session_listener_accept`, `rp_session_listener_close`, `rp_session_listener_free`.
/// Functions taking `const rp_session_listener *` are thread-safe.
pub struct rp_session_listener {
    _private: [u8; 0],
}

castable!(rp_session_listener => ListenerHandle: OwnedBox);

pub(crate) struct ListenerHandle {
    listener: SessionListener,
    /// The bound endpoint as text, for `rp_session_listener_endpoint`.
    endpoint: String,
}

/// Binds a listener for sessions.
///
/// Parameters: `endpoint` — a socket path (created 0600 in a directory only this user can
/// write; that directory, and only it, is created 0700 when missing and its parent exists), an
/// `@abstract` name, or a loopback `tcp://host:port` (port 0 picks one; `tls://host:port`
/// needs `rp_session_listener_bind_tls`). Unix peers of another user are refused; on TCP any
/// local process may connect. `out_listener` receives the
/// listener.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_IO` (for example the address is in use),
/// `RP_STATUS_PERMISSION_DENIED` (an unsafe socket directory, or a non-loopback TCP address),
/// `RP_STATUS_CONFIG` (a `tls://` endpoint: no certificate given), `RP_STATUS_INVALID_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_listener`; free it with `rp_session_listener_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_listener_bind(
    endpoint: *const c_char,
    out_listener: *mut *mut rp_session_listener,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated per the API contract.
        let endpoint = Endpoint::parse(unsafe { cstr_arg(endpoint, "endpoint") }?)?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_listener = unsafe { out_arg(out_listener, "out_listener") }?;
        let listener = SessionListener::bind(&endpoint)?;
        let handle = ListenerHandle { endpoint: listener.endpoint().to_string(), listener };
        out_listener.write(box_into_handle(handle));
        Ok(())
    })
}

/// Like `rp_session_listener_bind`, for a `tls://host:port` endpoint (port 0 picks one):
/// connections are TLS, and `rp_session_listener_accept` returns each once its handshake is
/// done (a client whose handshake fails, or does not finish within 10 s, is closed and waited
/// past).
///
/// Parameters: `tls` — the certificate chain and key presented, and optionally client CA roots
/// (mutual TLS; see `rp_tls_server_options_set_client_ca_pem`); read and copied. A loopback
/// address is required unless client certificates are required.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (unusable certificate or key), `RP_STATUS_IO`,
/// `RP_STATUS_PERMISSION_DENIED` (an address other than loopback without required client
/// certificates), `RP_STATUS_INVALID_ARGUMENT` (an endpoint that is not `tls://`),
/// `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_listener`; free it with `rp_session_listener_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_listener_bind_tls(
    endpoint: *const c_char,
    tls: *const rp_tls_server_options,
    out_listener: *mut *mut rp_session_listener,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated per the API contract.
        let endpoint = Endpoint::parse(unsafe { cstr_arg(endpoint, "endpoint") }?)?;
        // SAFETY: NULL or live options per the API contract.
        let tls = unsafe { box_ref::<rp_tls_server_options>(tls, "tls") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_listener = unsafe { out_arg(out_listener, "out_listener") }?;
        let listener = SessionListener::bind_with(&endpoint, Some(tls))?;
        let handle = ListenerHandle { endpoint: listener.endpoint().to_string(), listener };
        out_listener.write(box_into_handle(handle));
        Ok(())
    })
}

/// The endpoint actually bound (for `tcp://127.0.0.1:0`, with the real port), as a string
/// `rp_session_connect` accepts. Borrowed: valid until the listener is freed. Empty if NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_listener_endpoint(listener: *const rp_session_listener) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live listener per the API contract.
        unsafe { box_ref::<rp_session_listener>(listener, "listener") }
            .map_or(rp_str::from_str(""), |l| rp_str::from_str(&l.endpoint))
    })
}

/// Waits up to `timeout_ms` (-1 = no limit, 0 = only one already waiting) for a
/// connection and starts a session on it as the accepting side (even request ids).
///
/// Parameters: `dispatcher`, `user_data`, `user_data_free` and `out_session` as for
/// `rp_session_new` (`user_data_free` also runs at once when no connection came).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TIMEOUT` (no connection in time), `RP_STATUS_CLOSED`
/// (`rp_session_listener_close` was called, also while this call waited), `RP_STATUS_IO`,
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
/// Thread safety: callable from several threads at once; each connection goes to one.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_listener_accept(
    listener: *const rp_session_listener,
    timeout_ms: i32,
    dispatcher: rp_session_request_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
    out_session: *mut *mut rp_session,
) -> rp_status {
    let callback = ForeignCallback::new(dispatcher, user_data, user_data_free);
    boundary(|| {
        // SAFETY: NULL or a live listener per the API contract.
        let l = unsafe { box_ref::<rp_session_listener>(listener, "listener") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_session = unsafe { out_arg(out_session, "out_session") }?;
        let conn = l.listener.accept(timeout_arg(timeout_ms)?)?;
        let handle = start(conn, Side::Accepting, callback)?;
        out_session.write(handle);
        Ok(())
    })
}

/// Stops accepting: every `rp_session_listener_accept` waiting now (on any thread) returns
/// `RP_STATUS_CLOSED` at once, and so do later ones. Sessions accepted before go on; free the
/// listener as usual. Idempotent; callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_listener_close(listener: *const rp_session_listener) {
    boundary_or((), || {
        // SAFETY: NULL or a live listener per the API contract.
        if let Ok(l) = unsafe { box_ref::<rp_session_listener>(listener, "listener") } {
            l.listener.close();
        }
    })
}

/// Frees a listener (a socket file it created is removed); sessions accepted from it go on.
/// NULL is a no-op. Must not be called twice, nor while another thread uses `listener` (close
/// it with `rp_session_listener_close` first to wake a thread waiting in accept).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_listener_free(listener: *mut rp_session_listener) {
    // SAFETY: NULL or a live listener owned by the caller.
    boundary_or((), || unsafe { box_free(listener) })
}

unsafe fn session_ref<'a>(session: *const rp_session) -> Result<&'a SessionHandle, Failure> {
    // SAFETY: NULL or a live session per the API contract.
    unsafe { box_ref::<rp_session>(session, "session") }
}

unsafe fn options_of<'a>(options: *const rp_session_call_options) -> Cow<'a, CallOptions> {
    // SAFETY: NULL or live options per the API contract.
    match unsafe { box_opt::<rp_session_call_options>(options) } {
        Some(options) => Cow::Borrowed(options),
        None => Cow::Owned(CallOptions::default()),
    }
}

/// Calls the peer and waits up to `timeout_ms` (-1 = no limit) for its response.
///
/// Parameters: `payload_protocol` — the consumer protocol of `payload` (carried to the peer,
/// not read by librp); `payload`, `len` — copied (`payload` may be NULL when `len` is 0);
/// `options` — deadline and trace context, or NULL for none. Without a deadline of its own the
/// call gets "now + timeout" as its deadline, so the peer stops when the caller does.
///
/// Returns `RP_STATUS_OK` (`*out_response` holds the answer), `RP_STATUS_TIMEOUT` (the wait or
/// the deadline passed; the peer was sent a CANCEL, or the peer reported the deadline),
/// `RP_STATUS_CLOSED` (the connection ended), `RP_STATUS_NO_MEMORY` (what the peer sent did not
/// fit in memory: the session ended), `RP_STATUS_CANCELLED`, the peer's error as a
/// status (`RP_STATUS_NOT_FOUND` when the peer has no dispatcher, `RP_STATUS_PEER_ERROR` for an
/// application code; `rp_last_error_message` has the peer's message),
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_response`; free it with `rp_msg_free`.
/// Thread safety: callable from any number of threads at once.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call(
    session: *const rp_session,
    payload_protocol: u32,
    payload: *const u8,
    len: usize,
    options: *const rp_session_call_options,
    timeout_ms: i32,
    out_response: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let (s, payload, opts) = unsafe { (session_ref(session)?, slice_arg(payload, len, "payload")?, options_of(options)) };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_response = unsafe { out_arg(out_response, "out_response") }?;
        let response = s.session.call(payload_protocol, payload, &opts, timeout_arg(timeout_ms)?)?;
        out_response.write(box_into_handle(response));
        Ok(())
    })
}

/// Starts a call and returns at once with its ticket; use it for asynchronous calls, streams
/// (the peer answers with chunks, then a response) and tunnels (both sides send chunks).
///
/// Parameters as for `rp_session_call`; the deadline in `options` (if any) is the only limit.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED`, `RP_STATUS_TIMEOUT` (the deadline had already
/// passed), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_ticket`; free it with `rp_session_ticket_free` (which cancels
/// the call if it has no outcome yet). Thread safety: callable from any number of threads.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_start(
    session: *const rp_session,
    payload_protocol: u32,
    payload: *const u8,
    len: usize,
    options: *const rp_session_call_options,
    out_ticket: *mut *mut rp_session_ticket,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let (s, payload, opts) = unsafe { (session_ref(session)?, slice_arg(payload, len, "payload")?, options_of(options)) };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_ticket = unsafe { out_arg(out_ticket, "out_ticket") }?;
        let call = s.session.start_call(payload_protocol, payload, &opts)?;
        out_ticket.write(box_into_handle(call));
        Ok(())
    })
}

/// Runs the dispatcher callback for the peer's requests, on the calling thread.
///
/// Waits up to `timeout_ms` (-1 = no limit) for the first request, then serves those
/// already waiting. `*out_handled` (may be NULL) receives how many were served. Requests whose
/// deadline passed while they waited are answered with `RP_STATUS_TIMEOUT` and not served.
///
/// Returns `RP_STATUS_OK` (at least one served), `RP_STATUS_TIMEOUT` (none came),
/// `RP_STATUS_CLOSED` (the session ended), `RP_STATUS_INVALID_ARGUMENT` (the session has no
/// dispatcher), `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: callable from any number of threads at once; each request goes to one.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_dispatch(
    session: *const rp_session,
    timeout_ms: i32,
    out_handled: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let s = unsafe { session_ref(session) }?;
        let Some(cb) = &s.dispatcher else {
            return Err(Failure::new(rp_status::InvalidArgument, "the session has no dispatcher"));
        };
        let (handled, result) = s.session.dispatch(timeout_arg(timeout_ms)?, |request| match cb.func {
            // SAFETY: the callback contract: it receives ownership of `request`.
            Some(func) => unsafe { func(cb.user_data, box_into_handle::<rp_session_request>(request)) },
            None => drop(request),
        });
        // SAFETY: NULL or valid for a write per the API contract.
        if let Some(out) = unsafe { opt_out(out_handled) } {
            out.write(handled);
        }
        Ok(result?)
    })
}

/// A descriptor readable while a request waits for `rp_session_dispatch` or the session has
/// ended, for poll/epoll loops: when it is readable, call `rp_session_dispatch` with timeout 0.
/// Level-triggered; owned by the session: never read from or close it. -1 if `session` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_dispatch_fd(session: *const rp_session) -> i32 {
    // SAFETY: forwarded API contract.
    boundary_or(-1, || unsafe { session_ref(session) }.map_or(-1, |s| super::bytes::descriptor_out(s.session.request_fd())))
}

/// The side the session was created as (`RP_SESSION_SIDE_CONNECTING` if `session` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_side_of(session: *const rp_session) -> rp_session_side {
    boundary_or(rp_session_side::Connecting, || {
        // SAFETY: forwarded API contract.
        match unsafe { session_ref(session) }.map(|s| s.session.side()) {
            Ok(Side::Accepting) => rp_session_side::Accepting,
            _ => rp_session_side::Connecting,
        }
    })
}

/// Number of this side's calls waiting for a response (0 if `session` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_pending_calls(session: *const rp_session) -> usize {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { session_ref(session) }.map_or(0, |s| s.session.pending_calls()))
}

/// Closes the connection: every waiting call, stream read and `rp_session_dispatch` returns
/// `RP_STATUS_CLOSED` at once, and later calls fail the same way. Idempotent; callable from
/// any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_close(session: *const rp_session) {
    boundary_or((), || {
        // SAFETY: forwarded API contract.
        if let Ok(s) = unsafe { session_ref(session) } {
            s.session.close();
        }
    })
}

/// Closes the session (see `rp_session_close`), waits for its reader thread to end, releases
/// the dispatcher's user data and frees it. Calls and requests still held stay valid and fail
/// with `RP_STATUS_CLOSED`; free them as usual. NULL is a no-op. Must not be called twice, nor
/// while another thread uses `session`, nor from the dispatcher callback.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_free(session: *mut rp_session) {
    // SAFETY: NULL or a live session owned by the caller.
    boundary_or((), || unsafe { box_free(session) })
}

