//! `rp_push_worker_*`: the worker side of push for C.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, rp_bytes, rp_str, slice_arg, timeout_arg};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::handle::{box_free, box_into_handle, box_opt, box_ref, box_take, castable, lend, opt_out, out_arg};
use super::push_worker_options::rp_push_worker_options;
use super::status::rp_status;
use crate::push::{Push, Worker};

/// A worker's connection to a push server.
///
/// Methods: `rp_push_worker_connect`, `rp_push_worker_recv`, `rp_push_worker_reply`,
/// `rp_push_worker_reply_error`, `rp_push_worker_fd`, `rp_push_worker_set_handler`,
/// `rp_push_worker_dispatch`, `rp_push_worker_id`, `rp_push_worker_close`,
/// `rp_push_worker_free`.
///
/// Functions taking `const rp_push_worker *` are thread-safe: one thread may wait in
/// `rp_push_worker_recv` while others reply or close. There is no background thread: the thread
/// that receives reads the socket itself (and so notices a lost connection). The one exception
/// is reconnecting (`rp_push_worker_options_set_reconnect`): while the connection is down, a
/// librp thread backs off and dials; it ends once connected again, given up, or closed.
///
/// Flow control: the worker reads from the server only inside `rp_push_worker_recv` /
/// `_dispatch`, so it holds at most the pushes that arrived in one read. While the worker does
/// not receive, the server's buffer for it fills and further pushes to it fail with
/// `RP_STATUS_AGAIN` on the server side: nothing is dropped silently and memory stays bounded.
pub struct rp_push_worker {
    _private: [u8; 0],
}

pub(crate) struct WorkerHandle {
    pub(crate) worker: Worker,
    handler: Mutex<Option<Arc<ForeignCallback<rp_push_worker_handler_callback>>>>,
}

castable!(rp_push_worker => WorkerHandle: OwnedBox, rp_push => Push: OwnedBox);

/// One push received by a worker: correlation id, payload protocol, payload, deadline and trace
/// context.
///
/// Methods: `rp_push_correlation_id`, `rp_push_payload_protocol`, `rp_push_payload`,
/// `rp_push_deadline_unix_ms`, `rp_push_traceparent`, `rp_push_tracestate`, `rp_push_free`.
///
/// Exclusive handle (Send). Its views are valid until it is freed; reading them copies nothing.
pub struct rp_push {
    _private: [u8; 0],
}

/// Handles one push inside `rp_push_worker_dispatch`.
///
/// Parameters: `user_data` as registered; `worker` the worker (borrowed: valid for this call,
/// never freed here); `push` the push (borrowed: valid only until the callback returns — copy
/// what you keep, and remember `rp_push_correlation_id` to reply later).
///
/// Returns `RP_STATUS_OK` (an `rp_status` value as an integer), or another status when the job
/// failed: if the push is still unanswered, librp then replies with a failure carrying that
/// status as its code.
///
/// Called on the thread that calls `rp_push_worker_dispatch`, from within it. It may call
/// `rp_push_worker_reply` / `_reply_error` (now, or later from any thread) and other librp
/// functions; it must not call `rp_push_worker_dispatch`, `_set_handler` or `_free` on `worker`.
pub type rp_push_worker_handler_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, worker: *const rp_push_worker, push: *const rp_push) -> i32,
>;

/// Connects to the push server, says Hello and registers; pushes start arriving once this
/// returns.
///
/// Parameters: `options` — consumed by this call, even if an error is returned;
/// `out_worker` — receives the worker on success.
///
/// Returns:
/// - `RP_STATUS_OK`.
/// - `RP_STATUS_REFUSED`: the server refused the Hello; `rp_last_refusal` gives its code,
///   reason and retry hint.
/// - `RP_STATUS_REJECTED`: the server declined the registration; the last error message holds
///   its reason.
/// - `RP_STATUS_TIMEOUT`: no answer (or no finished TLS handshake) within the connect timeout.
/// - `RP_STATUS_IO`: the endpoint could not be reached.
/// - `RP_STATUS_PERMISSION_DENIED` (`tls://`): a certificate was refused; the last error
///   message says why: the server's certificate is from an unknown CA, expired or not valid
///   yet, or not valid for the server name (wrong name); or the server requires a client
///   certificate and none (or one it does not trust) was given.
/// - `RP_STATUS_PROTOCOL` (`tls://`): the server does not speak TLS (a plain `tcp://`
///   endpoint). The reverse, a `tcp://` worker at a TLS endpoint, is `RP_STATUS_REFUSED` with
///   a reason saying to connect with `tls://`.
/// - `RP_STATUS_CONFIG` (`tls://`): unusable TLS options (PEM text without a certificate, a
///   key that does not match, no system CA roots).
/// - `RP_STATUS_INVALID_ARGUMENT`: the registration is over a limit (see
///   `rp_push_worker_options_new`); the last error message names it. Nothing was sent. Also
///   TLS options on an endpoint that is not `tls://`.
/// - `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_PROTOCOL`, `RP_STATUS_MALFORMED`, framing errors.
///
/// Blocks up to the connect timeout. Ownership: the caller owns `*out_worker`; free it with
/// `rp_push_worker_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_connect(
    options: *mut rp_push_worker_options,
    out_worker: *mut *mut rp_push_worker,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options owned by the caller; consumed here on every path.
        let opts = unsafe { box_take(options, "options") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_worker = unsafe { out_arg(out_worker, "out_worker") }?;
        let worker = Worker::connect(opts)?;
        let handle = WorkerHandle { worker, handler: Mutex::new(None) };
        out_worker.write(box_into_handle(handle));
        Ok(())
    })
}

/// # Safety
/// `worker` is NULL or a live rp_push_worker.
unsafe fn worker_ref<'a>(worker: *const rp_push_worker) -> Result<&'a WorkerHandle, Failure> {
    // SAFETY: forwarded contract.
    unsafe { box_ref::<rp_push_worker>(worker, "worker") }
}

/// The id the server gave this worker (0 on a liminal endpoint, which has none, and if `worker`
/// is NULL). A worker that reconnected has the id of its latest registration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_id(worker: *const rp_push_worker) -> u64 {
    // SAFETY: NULL or a live worker.
    boundary_or(0, || unsafe { worker_ref(worker) }.map_or(0, |c| c.worker.worker_id()))
}

/// Waits for the next push.
///
/// Parameters: `timeout_ms` — -1 waits without limit, 0 only takes a push already here;
/// `out_push` — receives the push on success.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TIMEOUT` (none came), `RP_STATUS_CLOSED` (the server went
/// away, the connection broke a protocol rule, or `rp_push_worker_close` was called — the last
/// error message says which), `RP_STATUS_NO_MEMORY` (a push did not fit in memory: the
/// connection ended, later calls return the same), `RP_STATUS_NULL_ARGUMENT`.
///
/// A reconnecting worker (`rp_push_worker_options_set_reconnect`) keeps waiting through a lost
/// connection and returns pushes of the next one; it returns `RP_STATUS_CLOSED` only after
/// `rp_push_worker_close` or once it gave up (the last error message then holds the last
/// failure). Pending connection events run the event callback here first.
///
/// Ownership: the caller owns `*out_push`; free it with `rp_push_free`.
/// Thread safety: may run concurrently with every other `const rp_push_worker *` function.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_recv(
    worker: *const rp_push_worker,
    timeout_ms: i32,
    out_push: *mut *mut rp_push,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live worker.
        let c = unsafe { worker_ref(worker) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_push = unsafe { out_arg(out_push, "out_push") }?;
        out_push.write(box_into_handle(c.worker.recv(timeout_arg(timeout_ms)?)?));
        Ok(())
    })
}

/// Replies to a push with a payload.
///
/// Parameters: `correlation_id` — from `rp_push_correlation_id`; `payload`, `len` — the reply
/// (copied; `payload` may be NULL when `len` is 0).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NOT_FOUND` (no such push, already answered, or withdrawn
/// by the server after its deadline), `RP_STATUS_CLOSED` (also, on a reconnecting worker, for a
/// push that came on a connection since lost: nothing is sent, its server already failed it),
/// `RP_STATUS_TIMEOUT` (the server did not take the bytes within the send timeout),
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: may be called from any thread, also while another thread waits in recv.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_reply(
    worker: *const rp_push_worker,
    correlation_id: u64,
    payload: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live worker; `len` readable bytes at `payload`.
        let (c, payload) = unsafe { (worker_ref(worker)?, slice_arg(payload, len, "payload")?) };
        c.worker.reply(correlation_id, payload)?;
        Ok(())
    })
}

/// Replies to a push with a failure: the worker could not do the job.
///
/// Parameters: `code` — an `rp_status` or an application code above 1000; `message` — why
/// (NUL-terminated UTF-8, at most 4096 bytes; a server ends the connection of a worker that
/// sends a longer one).
///
/// On a liminal endpoint the failure goes out as a refusal record
/// `{"code":"…","words":"<message>"}` (the message at most 1024 bytes there), its code picked
/// from `code`: `RP_STATUS_AGAIN` → "busy"; `RP_STATUS_INVALID_ARGUMENT`, `RP_STATUS_NOT_FOUND`
/// and the wire errors (`RP_STATUS_PROTOCOL` … `RP_STATUS_MALFORMED_PROBE`) → "invalid";
/// `RP_STATUS_TIMEOUT`, `_CLOSED`, `_DISABLED`, `_CANCELLED`, `_INTERRUPTED`, `_REFUSED`,
/// `_REJECTED`, `_PERMISSION_DENIED`, `_IO` → "unavailable"; anything else, application codes
/// included → "internal".
///
/// Returns as `rp_push_worker_reply`, plus `RP_STATUS_INVALID_UTF8`, and
/// `RP_STATUS_INVALID_ARGUMENT` for a message over 4096 bytes (1024 on a liminal endpoint; the
/// push stays unanswered). Thread safety: may be called from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_reply_error(
    worker: *const rp_push_worker,
    correlation_id: u64,
    code: i32,
    message: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live worker; `message` NUL-terminated.
        let (c, message) = unsafe { (worker_ref(worker)?, cstr_arg(message, "message")?) };
        c.worker.reply_error(correlation_id, code, message)?;
        Ok(())
    })
}

/// A file descriptor that is readable while a push is waiting or the connection has ended, for
/// `poll`/`epoll`/libuv/Go loops: when it is readable, `rp_push_worker_recv` with timeout 0
/// returns a push or `RP_STATUS_CLOSED`. Level-triggered. With an event callback it is also
/// readable while events wait (recv runs the callback, then may return `RP_STATUS_TIMEOUT`).
/// A reconnecting worker keeps the same descriptor across its connections.
///
/// Returns the descriptor, or -1 if `worker` is NULL. Owned by the worker: never read from,
/// write to or close it; it is valid until `rp_push_worker_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_fd(worker: *const rp_push_worker) -> i32 {
    // SAFETY: NULL or a live worker.
    boundary_or(-1, || unsafe { worker_ref(worker) }.map_or(-1, |c| super::bytes::descriptor_out(c.worker.pollable_fd())))
}

/// Registers the handler `rp_push_worker_dispatch` runs for each push, replacing any previous
/// one (whose `user_data_free` then runs). `handler` NULL unregisters.
///
/// Parameters: `user_data` — passed to `handler`; `user_data_free` — NULL, or called once with
/// `user_data` when librp no longer needs it (on replacement, on unregistering, when the worker
/// is freed, or at once if `handler` is NULL or this call fails).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
/// Thread safety: not concurrently with `rp_push_worker_dispatch` on the same worker.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_set_handler(
    worker: *mut rp_push_worker,
    handler: rp_push_worker_handler_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    let callback = ForeignCallback::new(handler, user_data, user_data_free);
    boundary(move || {
        // SAFETY: NULL or a live worker.
        let c = unsafe { worker_ref(worker) }?;
        let new = handler.is_some().then(|| Arc::new(callback));
        let old = std::mem::replace(&mut *c.handler.lock().unwrap_or_else(|p| p.into_inner()), new);
        drop(old); // runs the old user_data_free (outside the lock)
        Ok(())
    })
}

/// Receives pushes and runs the handler for each, on the calling thread.
///
/// Waits up to `timeout_ms` (-1 = no limit) for the first push, then handles those already
/// waiting, at most `max_pushes` in all (0 = no limit). `*out_handled` (may be NULL) receives
/// how many were handled.
///
/// Returns `RP_STATUS_OK` (at least one handled), `RP_STATUS_TIMEOUT` (none came),
/// `RP_STATUS_CLOSED`, `RP_STATUS_INVALID_ARGUMENT` (no handler registered),
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: may run concurrently with recv/reply/close; not with `_set_handler`/`_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_dispatch(
    worker: *const rp_push_worker,
    timeout_ms: i32,
    max_pushes: usize,
    out_handled: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live worker.
        let c = unsafe { worker_ref(worker) }?;
        let handler = c.handler.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or_else(|| {
            Failure::new(rp_status::InvalidArgument, "no handler is registered (rp_push_worker_set_handler)")
        })?;
        let handler_fn = handler.func.expect("registered handlers are non-NULL");
        let (handled, result) = c.worker.dispatch(timeout_arg(timeout_ms)?, max_pushes, |job| {
            // SAFETY: the handler contract: `worker` and the push are borrowed for the call; no
            // librp lock is held while it runs.
            unsafe { handler_fn(handler.user_data, worker, lend::<rp_push>(job)) }
        });
        // SAFETY: NULL or valid for a write per the API contract.
        if let Some(out) = unsafe { opt_out(out_handled) } {
            out.write(handled);
        }
        Ok(result?)
    })
}

/// Closes the connection: threads blocked in recv or dispatch return `RP_STATUS_CLOSED`, and
/// so do later calls. Idempotent; callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_close(worker: *const rp_push_worker) {
    boundary_or((), || {
        // SAFETY: NULL or a live worker.
        if let Ok(c) = unsafe { worker_ref(worker) } {
            c.worker.close();
        }
    })
}

/// Closes the connection, releases the handler's user data and frees the worker. NULL is a no-op. Must not be called twice, nor while another
/// thread still uses `worker`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_free(worker: *mut rp_push_worker) {
    // SAFETY: NULL or a live worker owned by the caller.
    boundary_or((), || unsafe { box_free(worker) })
}

/// # Safety
/// `push` is NULL or a live rp_push.
unsafe fn push_ref<'a>(push: *const rp_push) -> Option<&'a Push> {
    // SAFETY: forwarded contract.
    unsafe { box_opt::<rp_push>(push) }
}

/// The push's correlation id: pass it to `rp_push_worker_reply`. 0 if `push` is NULL. The
/// server's id of the push, or on a reconnecting worker the worker's own id (see
/// `rp_push_worker_options_set_reconnect`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_correlation_id(push: *const rp_push) -> u64 {
    // SAFETY: NULL or a live push.
    boundary_or(0, || unsafe { push_ref(push) }.map_or(0, |j| j.correlation_id))
}

/// The consumer payload protocol of the push's payload. 0 if `push` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_payload_protocol(push: *const rp_push) -> u32 {
    // SAFETY: NULL or a live push.
    boundary_or(0, || unsafe { push_ref(push) }.map_or(0, |j| j.payload_protocol))
}

/// The push's payload. Borrowed: valid until `push` is freed (or, inside a handler, until it
/// returns). Empty if `push` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_payload(push: *const rp_push) -> rp_bytes {
    // SAFETY: NULL or a live push.
    boundary_or(rp_bytes::from_slice(&[]), || {
        unsafe { push_ref(push) }.map_or(rp_bytes::from_slice(&[]), |j| rp_bytes::from_slice(&j.payload))
    })
}

/// The push's absolute deadline in Unix milliseconds; 0 = none (or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_deadline_unix_ms(push: *const rp_push) -> u64 {
    // SAFETY: NULL or a live push.
    boundary_or(0, || unsafe { push_ref(push) }.map_or(0, |j| j.deadline_unix_ms))
}

/// The push's W3C traceparent (empty = none). Borrowed like `rp_push_payload`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_traceparent(push: *const rp_push) -> rp_str {
    // SAFETY: NULL or a live push.
    boundary_or(rp_str::from_str(""), || {
        unsafe { push_ref(push) }.map_or(rp_str::from_str(""), |j| rp_str::from_str(&j.traceparent))
    })
}

/// The push's W3C tracestate (empty = none). Borrowed like `rp_push_payload`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_tracestate(push: *const rp_push) -> rp_str {
    // SAFETY: NULL or a live push.
    boundary_or(rp_str::from_str(""), || {
        unsafe { push_ref(push) }.map_or(rp_str::from_str(""), |j| rp_str::from_str(&j.tracestate))
    })
}

/// Frees a push. NULL is a no-op. Must not be called twice with the same value; never call it on
/// the push a handler receives.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_free(push: *mut rp_push) {
    // SAFETY: NULL or a live push owned by the caller.
    boundary_or((), || unsafe { box_free(push) })
}
