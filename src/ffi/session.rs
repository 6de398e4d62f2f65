//! `rp_session_*`: multiplexed calls, streams and tunnels in both directions over one
//! connection, for C.

use std::borrow::Cow;
use std::ffi::{c_char, c_void};

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, limit_arg, rp_bytes, rp_msg, rp_str, slice_arg, timeout_arg};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::handle::{box_free, box_into_handle, box_ref, write_out, Castable, OwnedBox};
use super::status::rp_status;
use crate::broker::Conn;
use crate::session::{Call, CallOptions, Request, Session, SessionListener, Side};
use crate::transport::Endpoint;

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
}

impl Castable for rp_session {
    type Ownership = OwnedBox;
    type RustType = SessionHandle;
}

/// Deadline and trace context of a call. Methods: `rp_session_call_options_new`,
/// `_set_deadline_unix_ms`, `_set_traceparent`, `_set_tracestate`, `_free`. Exclusive handle
/// (Send); calls copy it, so one options value may serve many calls.
pub struct rp_session_call_options {
    _private: [u8; 0],
}

impl Castable for rp_session_call_options {
    type Ownership = OwnedBox;
    type RustType = CallOptions;
}

/// One call this side made, started by `rp_session_call_start`: wait for its response, read the chunks the peer
/// streams, write chunks of a tunnel, half-close, cancel.
///
/// Methods: `rp_session_ticket_id`, `_is_done`, `_wait`, `_next_chunk`, `_send_chunk`,
/// `_close_write`, `_cancel`, `_free`. Thread-safe through `const`: one thread may wait while
/// another cancels.
pub struct rp_session_ticket {
    _private: [u8; 0],
}

impl Castable for rp_session_ticket {
    type Ownership = OwnedBox;
    type RustType = Call;
}

/// One of the peer's requests, given to the dispatcher callback.
///
/// Methods: `rp_session_request_id`, `_protocol`, `_payload`, `_deadline_unix_ms`,
/// `_traceparent`, `_tracestate`, `_is_cancelled`, `_next_chunk`, `_send_chunk`,
/// `_close_write`, and to end it `rp_session_respond`, `rp_session_respond_error`,
/// `rp_session_request_free`. Thread-safe through `const` until it is ended.
pub struct rp_session_request {
    _private: [u8; 0],
}

impl Castable for rp_session_request {
    type Ownership = OwnedBox;
    type RustType = Request;
}

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
    conn: *mut super::broker::rp_conn,
    side: rp_session_side_arg,
    dispatcher: rp_session_request_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
    out_session: *mut *mut rp_session,
) -> rp_status {
    let callback = ForeignCallback::new(dispatcher, user_data, user_data_free);
    boundary(|| {
        if conn.is_null() {
            return Err(Failure::null("conn"));
        }
        // SAFETY: a live connection owned by the caller, consumed here on every path.
        let conn = *unsafe { Box::from_raw(conn.cast::<Conn>()) };
        if out_session.is_null() {
            return Err(Failure::null("out_session"));
        }
        let side = match side {
            s if s == rp_session_side::Connecting as i32 => Side::Connecting,
            s if s == rp_session_side::Accepting as i32 => Side::Accepting,
            other => return Err(Failure::new(rp_status::InvalidArgument, format!("{other} is not an rp_session_side"))),
        };
        let handle = start(conn, side, callback)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_session, handle) };
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
    let session = Session::new(conn, side, dispatcher.is_some())?;
    Ok(box_into_handle::<rp_session>(SessionHandle { session, dispatcher }))
}

/// Connects to `endpoint` and starts a session there as the connecting side (odd request
/// ids). The peer is typically an `rp_session_listener`; no Hello is exchanged.
///
/// Parameters: `endpoint` — a socket path, `@abstract` name, or `tcp://host:port`;
/// `timeout_ms` — limit for connecting (see the timeout rule); `dispatcher`, `user_data`,
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
        if out_session.is_null() {
            return Err(Failure::null("out_session"));
        }
        let conn = crate::session::connect(&endpoint, limit_arg(timeout_ms)?)?;
        let handle = start(conn, Side::Connecting, callback)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_session, handle) };
        Ok(())
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

impl Castable for rp_session_listener {
    type Ownership = OwnedBox;
    type RustType = ListenerHandle;
}

pub(crate) struct ListenerHandle {
    listener: SessionListener,
    /// The bound endpoint as text, for `rp_session_listener_endpoint`.
    endpoint: String,
}

/// Binds a listener for sessions.
///
/// Parameters: `endpoint` — a socket path (created 0600 in a directory only this user can
/// write; that directory, and only it, is created 0700 when missing and its parent exists), an
/// `@abstract` name, or a loopback `tcp://host:port` (port 0 picks one). Unix peers of another
/// user are refused; on TCP any local process may connect. `out_listener` receives the
/// listener.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_IO` (for example the address is in use),
/// `RP_STATUS_PERMISSION_DENIED` (an unsafe socket directory, or a non-loopback TCP address),
/// `RP_STATUS_INVALID_ARGUMENT`, `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
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
        if out_listener.is_null() {
            return Err(Failure::null("out_listener"));
        }
        let listener = SessionListener::bind(&endpoint)?;
        let handle = ListenerHandle { endpoint: listener.endpoint().to_string(), listener };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_listener, box_into_handle::<rp_session_listener>(handle)) };
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
        if out_session.is_null() {
            return Err(Failure::null("out_session"));
        }
        let conn = l.listener.accept(timeout_arg(timeout_ms)?)?;
        let handle = start(conn, Side::Accepting, callback)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_session, handle) };
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

/// The failure of a call: a peer's error with a known `rp_status` code below 1000 becomes that
/// status (its message kept), anything else maps as usual.
fn call_failure(e: crate::Error) -> Failure {
    if let crate::Error::Peer { code, message } = &e {
        let status = rp_status::from(*code);
        if *code > 0 && *code < crate::session::code::FIRST_APPLICATION_CODE && status as i32 == *code {
            return Failure::new(status, format!("the peer answered: {message}"));
        }
    }
    Failure::from(e)
}

unsafe fn session_ref<'a>(session: *const rp_session) -> Result<&'a SessionHandle, Failure> {
    // SAFETY: NULL or a live session per the API contract.
    unsafe { box_ref::<rp_session>(session, "session") }
}

unsafe fn options_of<'a>(options: *const rp_session_call_options) -> Cow<'a, CallOptions> {
    // SAFETY: NULL or live options per the API contract.
    if options.is_null() {
        return Cow::Owned(CallOptions::default());
    }
    // SAFETY: live options per the API contract (checked non-NULL).
    unsafe { box_ref::<rp_session_call_options>(options, "options") }.map_or_else(|_| Cow::Owned(CallOptions::default()), Cow::Borrowed)
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
        if out_response.is_null() {
            return Err(Failure::null("out_response"));
        }
        let response = s.session.call(payload_protocol, payload, &opts, timeout_arg(timeout_ms)?).map_err(call_failure)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_response, box_into_handle::<rp_msg>(response)) };
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
/// Ownership: the caller owns `*out_call`; free it with `rp_session_ticket_free` (which cancels
/// the call if it has no outcome yet). Thread safety: callable from any number of threads.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_start(
    session: *const rp_session,
    payload_protocol: u32,
    payload: *const u8,
    len: usize,
    options: *const rp_session_call_options,
    out_call: *mut *mut rp_session_ticket,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let (s, payload, opts) = unsafe { (session_ref(session)?, slice_arg(payload, len, "payload")?, options_of(options)) };
        if out_call.is_null() {
            return Err(Failure::null("out_call"));
        }
        let call = s.session.start_call(payload_protocol, payload, &opts)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_call, box_into_handle::<rp_session_ticket>(call)) };
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
        let first_wait = timeout_arg(timeout_ms)?;
        let mut handled = 0usize;
        let result = loop {
            let wait = if handled == 0 { first_wait } else { Some(std::time::Duration::ZERO) };
            match s.session.next_request(wait) {
                Ok(request) => {
                    match cb.func {
                        // SAFETY: the callback contract: it receives ownership of `request`.
                        Some(func) => unsafe { func(cb.user_data, box_into_handle::<rp_session_request>(request)) },
                        None => drop(request),
                    }
                    handled += 1;
                }
                Err(e) if handled > 0 && e.kind() == crate::ErrorKind::Timeout => break Ok(()),
                Err(e) => break Err(Failure::from(e)),
            }
        };
        if !out_handled.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { write_out(out_handled, handled) };
        }
        result
    })
}

/// A descriptor readable while a request waits for `rp_session_dispatch` or the session has
/// ended, for poll/epoll loops: when it is readable, call `rp_session_dispatch` with timeout 0.
/// Level-triggered; owned by the session: never read from or close it. -1 if `session` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_dispatch_fd(session: *const rp_session) -> i32 {
    // SAFETY: forwarded API contract.
    boundary_or(-1, || unsafe { session_ref(session) }.map_or(-1, |s| s.session.request_fd()))
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

// ---------------------------------------------------------------------------------------------
// Call options
// ---------------------------------------------------------------------------------------------

/// Creates call options with no deadline and no trace context.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns
/// `*out_options`; free it with `rp_session_call_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_options_new(out_options: *mut *mut rp_session_call_options) -> rp_status {
    boundary(|| {
        if out_options.is_null() {
            return Err(Failure::null("out_options"));
        }
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_options, box_into_handle::<rp_session_call_options>(CallOptions::default())) };
        Ok(())
    })
}

unsafe fn edit_options(
    options: *mut rp_session_call_options,
    edit: impl FnOnce(&mut CallOptions) -> Result<(), Failure>,
) -> rp_status {
    boundary(|| {
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live, exclusively used options per the API contract.
        edit(unsafe { &mut *options.cast::<CallOptions>() })
    })
}

/// Sets the absolute deadline in Unix milliseconds (0 = none). It travels in the frame; past
/// it the call ends with `RP_STATUS_TIMEOUT` on both sides. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_options_set_deadline_unix_ms(
    options: *mut rp_session_call_options,
    deadline_unix_ms: u64,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.deadline_unix_ms = deadline_unix_ms;
            Ok(())
        })
    }
}

/// Sets the W3C traceparent (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
/// (the call then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_options_set_traceparent(
    options: *mut rp_session_call_options,
    traceparent: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.traceparent = cstr_arg(traceparent, "traceparent")?.to_owned();
            Ok(())
        })
    }
}

/// Sets the W3C tracestate (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
/// (the call then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_options_set_tracestate(
    options: *mut rp_session_call_options,
    tracestate: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.tracestate = cstr_arg(tracestate, "tracestate")?.to_owned();
            Ok(())
        })
    }
}

/// Frees call options. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_call_options_free(options: *mut rp_session_call_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

unsafe fn call_ref<'a>(call: *const rp_session_ticket) -> Result<&'a Call, Failure> {
    // SAFETY: NULL or a live call per the API contract.
    unsafe { box_ref::<rp_session_ticket>(call, "call") }
}

/// Writes an owned message out.
unsafe fn write_msg(out: *mut *mut rp_msg, bytes: Vec<u8>) {
    // SAFETY: the caller checked `out` non-NULL.
    unsafe { write_out(out, box_into_handle::<rp_msg>(bytes)) }
}

/// The call's request id (odd on the connecting side, even on the accepting side); 0 if NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_id(call: *const rp_session_ticket) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { call_ref(call) }.map_or(0, |c| c.id()))
}

/// True once the call has an outcome (`rp_session_ticket_wait` then returns at once); false if
/// NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_is_done(call: *const rp_session_ticket) -> bool {
    // SAFETY: forwarded API contract.
    boundary_or(false, || unsafe { call_ref(call) }.is_ok_and(|c| c.is_done()))
}

/// Waits up to `timeout_ms` (-1 = no limit, 0 = do not wait) for the call's response and takes it.
///
/// Returns `RP_STATUS_OK` (`*out_response` holds the answer), `RP_STATUS_TIMEOUT` (the wait
/// ended first and the call goes on — `rp_session_ticket_is_done` is false — or the call's
/// deadline passed and it ended), `RP_STATUS_CLOSED`, `RP_STATUS_CANCELLED`, the peer's error
/// as a status (see `rp_session_call`), `RP_STATUS_INVALID_ARGUMENT` (the outcome was already
/// taken), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_response`; free it with `rp_msg_free`.
/// Thread safety: callable from any thread, concurrently with the other call functions.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_wait(
    call: *const rp_session_ticket,
    timeout_ms: i32,
    out_response: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let c = unsafe { call_ref(call) }?;
        if out_response.is_null() {
            return Err(Failure::null("out_response"));
        }
        let response = c.wait(timeout_arg(timeout_ms)?).map_err(call_failure)?;
        // SAFETY: checked non-NULL.
        unsafe { write_msg(out_response, response) };
        Ok(())
    })
}

/// Reads the next chunk the peer streamed on this call, waiting up to `timeout_ms` (-1 = no
/// limit, 0 = do not wait). Chunks arrive in the order the peer sent them.
///
/// Returns `RP_STATUS_OK` (`*out_chunk` holds the chunk), `RP_STATUS_CLOSED` (the stream has
/// ended: the peer half-closed or sent its response — take it with `rp_session_ticket_wait` — or
/// the connection ended, which `rp_session_ticket_wait` then reports as `RP_STATUS_CLOSED` too),
/// `RP_STATUS_TIMEOUT`, `RP_STATUS_CANCELLED`, the call's error, `RP_STATUS_TOO_LARGE` (more
/// than 64 MiB of chunks were left unread: the call ended and the peer was sent a CANCEL),
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_chunk`; free it with `rp_msg_free`.
/// Thread safety: callable from any thread; concurrent readers each get different chunks.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_next_chunk(
    call: *const rp_session_ticket,
    timeout_ms: i32,
    out_chunk: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let c = unsafe { call_ref(call) }?;
        if out_chunk.is_null() {
            return Err(Failure::null("out_chunk"));
        }
        let chunk = c.next_chunk(timeout_arg(timeout_ms)?).map_err(call_failure)?;
        // SAFETY: checked non-NULL.
        unsafe { write_msg(out_chunk, chunk) };
        Ok(())
    })
}

/// Sends one chunk to the peer on this call (a tunnel; the peer reads it with
/// `rp_session_request_next_chunk`). `chunk`, `len` are copied.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (the call ended, this side already half-closed,
/// or the connection ended), `RP_STATUS_CANCELLED`, `RP_STATUS_TIMEOUT` (the peer did not read
/// for 30 s), `RP_STATUS_NULL_ARGUMENT`. Thread safety: callable from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_send_chunk(
    call: *const rp_session_ticket,
    chunk: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let (c, chunk) = unsafe { (call_ref(call)?, slice_arg(chunk, len, "chunk")?) };
        c.send_chunk(chunk)?;
        Ok(())
    })
}

/// Half-closes the call's tunnel: tells the peer this side sends no more chunks (its
/// `rp_session_request_next_chunk` then returns `RP_STATUS_CLOSED`). The response still comes.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (already half-closed, or the call or connection
/// ended), `RP_STATUS_CANCELLED`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_close_write(call: *const rp_session_ticket) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        unsafe { call_ref(call) }?.close_write()?;
        Ok(())
    })
}

/// Cancels the call: waiters in `rp_session_ticket_wait` / `_next_chunk` return
/// `RP_STATUS_CANCELLED` at once and the peer is sent a CANCEL (its request reports
/// `rp_session_request_is_cancelled`). Does nothing once the call has an outcome.
/// Callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_cancel(call: *const rp_session_ticket) {
    boundary_or((), || {
        // SAFETY: forwarded API contract.
        if let Ok(c) = unsafe { call_ref(call) } {
            c.cancel();
        }
    })
}

/// Frees a call, cancelling it first if it has no outcome yet. NULL is a no-op. Must not be
/// called twice, nor while another thread uses `call`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_free(call: *mut rp_session_ticket) {
    // SAFETY: NULL or a live call owned by the caller.
    boundary_or((), || unsafe { box_free(call) })
}

// ---------------------------------------------------------------------------------------------
// Requests being served
// ---------------------------------------------------------------------------------------------

unsafe fn request_ref<'a>(request: *const rp_session_request) -> Result<&'a Request, Failure> {
    // SAFETY: NULL or a live request per the API contract.
    unsafe { box_ref::<rp_session_request>(request, "request") }
}

/// The request id the caller chose (0 if NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_id(request: *const rp_session_request) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { request_ref(request) }.map_or(0, |r| r.id()))
}

/// The consumer protocol the caller named for the payload (0 if NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_protocol(request: *const rp_session_request) -> u32 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { request_ref(request) }.map_or(0, |r| r.payload_protocol()))
}

/// The request's bytes. Borrowed: valid until the request is ended (responded or freed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_payload(request: *const rp_session_request) -> rp_bytes {
    boundary_or(rp_bytes::from_slice(&[]), || {
        // SAFETY: forwarded API contract.
        unsafe { request_ref(request) }.map_or(rp_bytes::from_slice(&[]), |r| rp_bytes::from_slice(r.payload()))
    })
}

/// The request's absolute deadline in Unix milliseconds (0 = none, or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_deadline_unix_ms(request: *const rp_session_request) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { request_ref(request) }.map_or(0, |r| r.deadline_unix_ms()))
}

/// The W3C traceparent (empty if none). Borrowed: valid until the request is ended.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_traceparent(request: *const rp_session_request) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: forwarded API contract.
        unsafe { request_ref(request) }.map_or(rp_str::from_str(""), |r| rp_str::from_str(r.traceparent()))
    })
}

/// The W3C tracestate (empty if none). Borrowed: valid until the request is ended.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_tracestate(request: *const rp_session_request) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: forwarded API contract.
        unsafe { request_ref(request) }.map_or(rp_str::from_str(""), |r| rp_str::from_str(r.tracestate()))
    })
}

/// True once the caller cancelled the request or the connection ended (an answer is then not
/// sent); false if NULL. Poll it in long handlers.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_is_cancelled(request: *const rp_session_request) -> bool {
    // SAFETY: forwarded API contract.
    boundary_or(false, || unsafe { request_ref(request) }.is_ok_and(|r| r.is_cancelled()))
}

/// Reads the next chunk the caller sent on this request (a tunnel), waiting up to `timeout_ms`
/// (-1 = no limit, 0 = do not wait).
///
/// Returns `RP_STATUS_OK` (`*out_chunk` holds it), `RP_STATUS_CLOSED` (the caller half-closed,
/// or the connection ended), `RP_STATUS_TIMEOUT` (the wait or the request's deadline),
/// `RP_STATUS_CANCELLED`, `RP_STATUS_TOO_LARGE` (more than 64 MiB of the caller's chunks were
/// left unread: the request ended and the caller was told), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_chunk`; free it with `rp_msg_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_next_chunk(
    request: *const rp_session_request,
    timeout_ms: i32,
    out_chunk: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let r = unsafe { request_ref(request) }?;
        if out_chunk.is_null() {
            return Err(Failure::null("out_chunk"));
        }
        let chunk = r.next_chunk(timeout_arg(timeout_ms)?)?;
        // SAFETY: checked non-NULL.
        unsafe { write_msg(out_chunk, chunk) };
        Ok(())
    })
}

/// Streams one chunk to the caller (an EVENT frame; the caller reads it with
/// `rp_session_ticket_next_chunk`) before the final answer. `chunk`, `len` are copied.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (this side half-closed, or the connection
/// ended), `RP_STATUS_CANCELLED`, `RP_STATUS_TIMEOUT` (the request's deadline passed, or the
/// caller did not read for 30 s), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_send_chunk(
    request: *const rp_session_request,
    chunk: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let (r, chunk) = unsafe { (request_ref(request)?, slice_arg(chunk, len, "chunk")?) };
        r.send_chunk(chunk)?;
        Ok(())
    })
}

/// Half-closes this side of the request's stream: the caller's `rp_session_ticket_next_chunk`
/// returns `RP_STATUS_CLOSED` after the chunks already sent. The answer is still due.
/// Returns as `rp_session_request_send_chunk`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_close_write(request: *const rp_session_request) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        unsafe { request_ref(request) }?.close_write()?;
        Ok(())
    })
}

/// Takes ownership of a request handle (NULL-checked); it is dropped at the end of the caller.
unsafe fn take_request(request: *mut rp_session_request) -> Result<Box<Request>, Failure> {
    if request.is_null() {
        return Err(Failure::null("request"));
    }
    // SAFETY: a live request owned by the caller, consumed here.
    Ok(unsafe { Box::from_raw(request.cast::<Request>()) })
}

/// Answers a request with a payload, ending it. Consumes `request`, even if an error is
/// returned. `payload`, `len` are copied (`payload` may be NULL when `len` is 0).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CANCELLED` (the caller cancelled; nothing was sent),
/// `RP_STATUS_TIMEOUT` (the request's deadline passed: the caller was sent the
/// `RP_STATUS_TIMEOUT` error instead), `RP_STATUS_CLOSED` (the connection ended),
/// `RP_STATUS_NULL_ARGUMENT` (a NULL `payload` with a non-zero `len`: the caller is sent the
/// `RP_STATUS_CLOSED` error).
///
/// Thread safety: callable from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_respond(
    request: *mut rp_session_request,
    payload: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let r = unsafe { take_request(request) }?;
        // SAFETY: forwarded API contract.
        let payload = unsafe { slice_arg(payload, len, "payload") }?;
        r.respond(payload)?;
        Ok(())
    })
}

/// Answers a request with an error, ending it: the caller's call returns the status `code`
/// (when it is an `rp_status`, for example `RP_STATUS_NOT_FOUND`) or `RP_STATUS_PEER_ERROR`
/// (for an application code of 1000 or more), with `message` as its last error text.
/// Consumes `request`, even if an error is returned. `message` is copied (NULL = ""); it is at
/// most 4096 bytes (a session ends when its peer sends a longer one).
///
/// Returns as `rp_session_respond` (plus `RP_STATUS_INVALID_UTF8` for `message`, and
/// `RP_STATUS_INVALID_ARGUMENT` for a message over 4096 bytes: the caller then gets the
/// `RP_STATUS_CLOSED` error of a request dropped without an answer).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_respond_error(
    request: *mut rp_session_request,
    code: i32,
    message: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let r = unsafe { take_request(request) }?;
        // SAFETY: forwarded API contract.
        let message = if message.is_null() { "" } else { unsafe { cstr_arg(message, "message") }? };
        r.respond_error(code, message)?;
        Ok(())
    })
}

/// Frees a request; if it was not answered, the caller is sent the `RP_STATUS_CLOSED` error
/// ("dropped without answering"). NULL is a no-op. Must not be called twice, nor after
/// `rp_session_respond` / `_respond_error` (which already freed it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_free(request: *mut rp_session_request) {
    // SAFETY: NULL or a live request owned by the caller.
    boundary_or((), || unsafe { box_free(request) })
}
