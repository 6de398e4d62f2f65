//! `rp_session_call_options_*` and `rp_session_ticket_*`: the calls this side makes on a
//! session, for C.

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, rp_msg, slice_arg, timeout_arg};
use super::handle::{box_free, box_into_handle, box_mut, box_ref, castable, out_arg};
use super::status::rp_status;
use crate::session::{CallOptions, Ticket};

/// Deadline and trace context of a call. Methods: `rp_session_call_options_new`,
/// `_set_deadline_unix_ms`, `_set_traceparent`, `_set_tracestate`, `_free`. Exclusive handle
/// (Send); calls copy it, so one options value may serve many calls.
pub struct rp_session_call_options {
    _private: [u8; 0],
}

castable!(rp_session_call_options => CallOptions: OwnedBox);

/// One call this side made, started by `rp_session_call_start`: wait for its response, read the chunks the peer
/// streams, write chunks of a tunnel, half-close, cancel.
///
/// Methods: `rp_session_ticket_id`, `_is_done`, `_wait`, `_next_chunk`, `_send_chunk`,
/// `_close_write`, `_cancel`, `_free`. Thread-safe through `const`: one thread may wait while
/// another cancels.
pub struct rp_session_ticket {
    _private: [u8; 0],
}

castable!(rp_session_ticket => Ticket: OwnedBox);
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
        // SAFETY: NULL or valid for a write per the API contract.
        let out_options = unsafe { out_arg(out_options, "out_options") }?;
        out_options.write(box_into_handle(CallOptions::default()));
        Ok(())
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
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.deadline_unix_ms = deadline_unix_ms;
            Ok(())
        }
    })
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
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.traceparent = cstr_arg(traceparent, "traceparent")?.to_owned();
            Ok(())
        }
    })
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
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.tracestate = cstr_arg(tracestate, "tracestate")?.to_owned();
            Ok(())
        }
    })
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

unsafe fn ticket_ref<'a>(ticket: *const rp_session_ticket) -> Result<&'a Ticket, Failure> {
    // SAFETY: NULL or a live call per the API contract.
    unsafe { box_ref::<rp_session_ticket>(ticket, "ticket") }
}

/// The call's request id (odd on the connecting side, even on the accepting side); 0 if NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_id(ticket: *const rp_session_ticket) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { ticket_ref(ticket) }.map_or(0, |c| c.id()))
}

/// True once the call has an outcome (`rp_session_ticket_wait` then returns at once); false if
/// NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_is_done(ticket: *const rp_session_ticket) -> bool {
    // SAFETY: forwarded API contract.
    boundary_or(false, || unsafe { ticket_ref(ticket) }.is_ok_and(|c| c.is_done()))
}

/// Waits up to `timeout_ms` (-1 = no limit, 0 = do not wait) for the call's response and takes it.
///
/// Returns `RP_STATUS_OK` (`*out_response` holds the answer), `RP_STATUS_TIMEOUT` (the wait
/// ended first and the call goes on — `rp_session_ticket_is_done` is false — or the call's
/// deadline passed and it ended), `RP_STATUS_CLOSED`, `RP_STATUS_CANCELLED`,
/// `RP_STATUS_INTERRUPTED` (`rp_session_ticket_interrupt`; the call goes on), the peer's error
/// as a status (see `rp_session_call`), `RP_STATUS_INVALID_ARGUMENT` (the outcome was already
/// taken), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_response`; free it with `rp_msg_free`.
/// Thread safety: callable from any thread, concurrently with the other call functions.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_wait(
    ticket: *const rp_session_ticket,
    timeout_ms: i32,
    out_response: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let c = unsafe { ticket_ref(ticket) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_response = unsafe { out_arg(out_response, "out_response") }?;
        let response = c.wait(timeout_arg(timeout_ms)?)?;
        out_response.write(box_into_handle(response));
        Ok(())
    })
}

/// Reads the next chunk the peer streamed on this call, waiting up to `timeout_ms` (-1 = no
/// limit, 0 = do not wait). Chunks arrive in the order the peer sent them.
///
/// Returns `RP_STATUS_OK` (`*out_chunk` holds the chunk), `RP_STATUS_CLOSED` (the stream has
/// ended: the peer half-closed or sent its response — take it with `rp_session_ticket_wait` — or
/// the connection ended, which `rp_session_ticket_wait` then reports as `RP_STATUS_CLOSED` too),
/// `RP_STATUS_TIMEOUT`, `RP_STATUS_CANCELLED`, `RP_STATUS_INTERRUPTED`
/// (`rp_session_ticket_interrupt`), the call's error, `RP_STATUS_TOO_LARGE` (more
/// than 64 MiB of chunks were left unread: the call ended and the peer was sent a CANCEL),
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_chunk`; free it with `rp_msg_free`.
/// Thread safety: callable from any thread; concurrent readers each get different chunks.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_next_chunk(
    ticket: *const rp_session_ticket,
    timeout_ms: i32,
    out_chunk: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let c = unsafe { ticket_ref(ticket) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_chunk = unsafe { out_arg(out_chunk, "out_chunk") }?;
        let chunk = c.next_chunk(timeout_arg(timeout_ms)?)?;
        out_chunk.write(box_into_handle(chunk));
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
    ticket: *const rp_session_ticket,
    chunk: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let (c, chunk) = unsafe { (ticket_ref(ticket)?, slice_arg(chunk, len, "chunk")?) };
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
pub unsafe extern "C" fn rp_session_ticket_close_write(ticket: *const rp_session_ticket) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        unsafe { ticket_ref(ticket) }?.close_write()?;
        Ok(())
    })
}

/// Cancels the call: waiters in `rp_session_ticket_wait` / `_next_chunk` return
/// `RP_STATUS_CANCELLED` at once and the peer is sent a CANCEL (its request reports
/// `rp_session_request_is_cancelled`). Does nothing once the call has an outcome.
/// Callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_cancel(ticket: *const rp_session_ticket) {
    boundary_or((), || {
        // SAFETY: forwarded API contract.
        if let Ok(c) = unsafe { ticket_ref(ticket) } {
            c.cancel();
        }
    })
}

/// Ends one `rp_session_ticket_wait` or `_next_chunk` on this call with
/// `RP_STATUS_INTERRUPTED`: the one blocked now (a wait that is reading the connection itself
/// notices within 20 ms), or the next one if none is. The call goes on; wait again for it.
/// Callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_interrupt(ticket: *const rp_session_ticket) {
    boundary_or((), || {
        // SAFETY: forwarded API contract.
        if let Ok(c) = unsafe { ticket_ref(ticket) } {
            c.interrupt();
        }
    })
}

/// Frees a ticket, cancelling the call first if it has no outcome yet. NULL is a no-op. Must not be
/// called twice, nor while another thread uses `ticket`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_ticket_free(ticket: *mut rp_session_ticket) {
    // SAFETY: NULL or a live call owned by the caller.
    boundary_or((), || unsafe { box_free(ticket) })
}
