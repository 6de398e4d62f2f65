//! `rp_session_request_*` and `rp_session_respond*`: the peer's requests this side serves, for C.

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, rp_bytes, rp_msg, rp_str, slice_arg, timeout_arg};
use super::handle::{box_free, box_into_handle, box_ref, box_take, castable, out_arg};
use super::status::rp_status;
use crate::session::Request;

/// One of the peer's requests, given to the dispatcher callback.
///
/// Methods: `rp_session_request_id`, `_protocol`, `_payload`, `_deadline_unix_ms`,
/// `_traceparent`, `_tracestate`, `_is_cancelled`, `_next_chunk`, `_send_chunk`,
/// `_close_write`, and to end it `rp_session_respond`, `rp_session_respond_error`,
/// `rp_session_request_free`. Thread-safe through `const` until it is ended.
pub struct rp_session_request {
    _private: [u8; 0],
}

castable!(rp_session_request => Request: OwnedBox);
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
pub unsafe extern "C" fn rp_session_request_payload_protocol(request: *const rp_session_request) -> u32 {
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

/// Ends one `rp_session_request_next_chunk` on this request with `RP_STATUS_INTERRUPTED`: the
/// one blocked now (a wait that is reading the connection itself notices within 20 ms), or the
/// next one if none is. The request goes on. Callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_request_interrupt(request: *const rp_session_request) {
    boundary_or((), || {
        // SAFETY: forwarded API contract.
        if let Ok(r) = unsafe { request_ref(request) } {
            r.interrupt();
        }
    })
}

/// Reads the next chunk the caller sent on this request (a tunnel), waiting up to `timeout_ms`
/// (-1 = no limit, 0 = do not wait).
///
/// Returns `RP_STATUS_OK` (`*out_chunk` holds it), `RP_STATUS_CLOSED` (the caller half-closed,
/// or the connection ended), `RP_STATUS_TIMEOUT` (the wait or the request's deadline),
/// `RP_STATUS_CANCELLED`, `RP_STATUS_INTERRUPTED` (`rp_session_request_interrupt`; the request
/// goes on), `RP_STATUS_TOO_LARGE` (more than 64 MiB of the caller's chunks were left unread:
/// the request ended and the caller was told), `RP_STATUS_NULL_ARGUMENT`.
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
        // SAFETY: NULL or valid for a write per the API contract.
        let out_chunk = unsafe { out_arg(out_chunk, "out_chunk") }?;
        let chunk = r.next_chunk(timeout_arg(timeout_ms)?)?;
        out_chunk.write(box_into_handle(chunk));
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
        let r = unsafe { box_take(request, "request") }?;
        // SAFETY: forwarded API contract.
        let payload = unsafe { slice_arg(payload, len, "payload") }?;
        r.respond(payload)?;
        Ok(())
    })
}

/// Answers a request with an error, ending it: the caller's call returns the status `code`
/// (when it is an `rp_status`, for example `RP_STATUS_NOT_FOUND`, other than `RP_STATUS_OK`,
/// `_INCOMPLETE`, `_NULL_ARGUMENT` and `_PANIC`, which describe only a local call) or
/// `RP_STATUS_PEER_ERROR` (for those and an application code of 1000 or more), with `message`
/// as its last error text.
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
        let r = unsafe { box_take(request, "request") }?;
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
