//! `rp_push_request_*`, `rp_push_ticket_*`, `rp_push_result_*`: a push to send, the ticket of one
//! in flight and the worker's answer, for C.

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, rp_bytes, rp_str, slice_arg, timeout_arg};
use super::handle::{box_free, box_into_handle, box_mut, box_opt, box_ref, castable, out_arg};
use super::status::rp_status;
use crate::push::{
    PushResult, PushSpec, Target, Ticket,
};

/// One job to push: payload protocol, payload, target, deadline and trace context.
///
/// Methods: `rp_push_request_new`, `_set_deadline_unix_ms`, `_set_traceparent`,
/// `_set_tracestate`, `_to_worker`, `_to_task_queue`, `_to_protocol`, `_free`.
/// Exclusive handle (Send). Pushing copies it, so one request may be pushed many times.
pub struct rp_push_request {
    _private: [u8; 0],
}

pub(crate) struct PushRequest {
    pub(crate) target: Target,
    pub(crate) spec: PushSpec,
}

castable!(rp_push_request => PushRequest: OwnedBox);

/// An in-flight push. Methods: `rp_push_ticket_correlation_id`, `rp_push_ticket_is_done`,
/// `rp_push_ticket_wait`, `rp_push_ticket_free`. Thread-safe through `const`.
pub struct rp_push_ticket {
    _private: [u8; 0],
}

castable!(rp_push_ticket => Ticket: OwnedBox);

/// A worker's answer: a reply payload, or the worker's failure (code and message).
///
/// Methods: `rp_push_result_is_failure`, `rp_push_result_payload`,
/// `rp_push_result_failure_code`, `rp_push_result_failure_message`, `rp_push_result_free`.
pub struct rp_push_result {
    _private: [u8; 0],
}

castable!(rp_push_result => PushResult: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Requests, tickets, results
// ---------------------------------------------------------------------------------------------

/// Creates a push request; by default it goes to any worker serving `payload_protocol`.
///
/// Parameters: `payload_protocol` — a consumer (0x7000–0x7EFF) or private-use (0xF000–0xFFFF)
/// id, or SESSION (0x5350); `payload`, `len` — copied (`payload` may be NULL when `len` is 0).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE` (beyond what one frame carries),
/// `RP_STATUS_INVALID_ARGUMENT` (a first-party or unassigned `payload_protocol`),
/// `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns `*out_request`; free it with
/// `rp_push_request_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_new(
    payload_protocol: u32,
    payload: *const u8,
    len: usize,
    out_request: *mut *mut rp_push_request,
) -> rp_status {
    boundary(|| {
        // SAFETY: `len` readable bytes at `payload` per the API contract.
        let payload = unsafe { slice_arg(payload, len, "payload") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_request = unsafe { out_arg(out_request, "out_request") }?;
        crate::wire::registry::check_servable(payload_protocol).map_err(crate::Error::invalid_argument)?;
        // Leave room for the envelope and the Push wrapper inside the frame cap.
        if payload.len() > crate::wire::MAX_BODY as usize - 1024 {
            return Err(Failure::new(
                rp_status::TooLarge,
                format!("payload of {} bytes does not fit in one frame", payload.len()),
            ));
        }
        let request = PushRequest {
            target: Target::Protocol(payload_protocol),
            spec: PushSpec { payload_protocol, payload: payload.to_vec(), ..PushSpec::default() },
        };
        out_request.write(box_into_handle(request));
        Ok(())
    })
}

/// Sets the absolute deadline (Unix milliseconds; 0 = none). Past it the push fails with
/// `RP_STATUS_TIMEOUT` and the worker is told to drop it. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_set_deadline_unix_ms(request: *mut rp_push_request, deadline: u64) -> rp_status {
    boundary(|| {
        // SAFETY: `request` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let r = box_mut(request, "request")?;
            r.spec.deadline_unix_ms = deadline;
            Ok(())
        }
    })
}

/// Sets the W3C traceparent (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
/// (the push then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_set_traceparent(
    request: *mut rp_push_request,
    traceparent: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `request` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let r = box_mut(request, "request")?;
            r.spec.traceparent = cstr_arg(traceparent, "traceparent")?.to_owned();
            Ok(())
        }
    })
}

/// Sets the W3C tracestate (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
/// (the push then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_set_tracestate(
    request: *mut rp_push_request,
    tracestate: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `request` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let r = box_mut(request, "request")?;
            r.spec.tracestate = cstr_arg(tracestate, "tracestate")?.to_owned();
            Ok(())
        }
    })
}

/// Sends the push to one worker by id. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_to_worker(request: *mut rp_push_request, worker_id: u64) -> rp_status {
    boundary(|| {
        // SAFETY: `request` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let r = box_mut(request, "request")?;
            r.target = Target::Worker(worker_id);
            Ok(())
        }
    })
}

/// Sends the push to the least busy worker registered for `task_queue`. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_to_task_queue(
    request: *mut rp_push_request,
    task_queue: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `request` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let r = box_mut(request, "request")?;
            r.target = Target::TaskQueue(cstr_arg(task_queue, "task_queue")?.to_owned());
            Ok(())
        }
    })
}

/// Sends the push to the least busy worker serving `payload_protocol` (the default target uses
/// the request's own protocol). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a
/// first-party or unassigned id), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_to_protocol(request: *mut rp_push_request, payload_protocol: u32) -> rp_status {
    boundary(|| {
        // SAFETY: `request` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let r = box_mut(request, "request")?;
            crate::wire::registry::check_servable(payload_protocol).map_err(crate::Error::invalid_argument)?;
            r.target = Target::Protocol(payload_protocol);
            Ok(())
        }
    })
}

/// Frees a push request. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_free(request: *mut rp_push_request) {
    // SAFETY: NULL or a live request owned by the caller.
    boundary_or((), || unsafe { box_free(request) })
}

/// The push's correlation id (0 if `ticket` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_correlation_id(ticket: *const rp_push_ticket) -> u64 {
    boundary_or(0, || {
        // SAFETY: NULL or a live ticket.
        unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") }.map_or(0, |t| t.correlation_id())
    })
}

/// True once the push has an outcome (`rp_push_ticket_wait` then returns at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_is_done(ticket: *const rp_push_ticket) -> bool {
    boundary_or(false, || {
        // SAFETY: NULL or a live ticket.
        unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") }.is_ok_and(|t| t.is_done())
    })
}

/// Waits up to `timeout_ms` (-1 = no limit, 0 = do not wait) for the push's outcome and takes it.
///
/// Returns `RP_STATUS_OK` (`*out_result` holds the worker's answer), `RP_STATUS_TIMEOUT` (no
/// outcome yet — or the push's own deadline passed; `rp_push_ticket_is_done` tells which),
/// `RP_STATUS_CLOSED`, `RP_STATUS_NOT_FOUND`, `RP_STATUS_AGAIN` (see `rp_push_server_push_wait`),
/// `RP_STATUS_INTERRUPTED` (`rp_push_ticket_interrupt`; the push goes on),
/// `RP_STATUS_INVALID_ARGUMENT` (the outcome was already taken), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_result`; free it with `rp_push_result_free`.
/// Thread safety: callable from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_wait(
    ticket: *const rp_push_ticket,
    timeout_ms: i32,
    out_result: *mut *mut rp_push_result,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live ticket.
        let t = unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_result = unsafe { out_arg(out_result, "out_result") }?;
        let outcome = t.wait(timeout_arg(timeout_ms)?)?;
        out_result.write(box_into_handle(outcome));
        Ok(())
    })
}

/// Ends one `rp_push_ticket_wait` on this ticket with `RP_STATUS_INTERRUPTED`: the one blocked
/// now, or the next one if none is. The push goes on and its outcome stays for a later wait.
/// This is how an event loop or another thread stops a wait without a timeout early.
/// Callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_interrupt(ticket: *const rp_push_ticket) {
    boundary_or((), || {
        // SAFETY: NULL or a live ticket.
        if let Ok(t) = unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") } {
            t.interrupt();
        }
    })
}

/// Frees a ticket; the push itself goes on. NULL is a no-op. Must not be called twice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_free(ticket: *mut rp_push_ticket) {
    // SAFETY: NULL or a live ticket owned by the caller.
    boundary_or((), || unsafe { box_free(ticket) })
}

unsafe fn result_ref<'a>(result: *const rp_push_result) -> Option<&'a PushResult> {
    // SAFETY: NULL or a live result per the API contract.
    unsafe { box_opt::<rp_push_result>(result) }
}

/// True when the worker answered with a failure (see `rp_push_result_failure_code`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_is_failure(result: *const rp_push_result) -> bool {
    boundary_or(false, || {
        // SAFETY: NULL or a live result.
        matches!(unsafe { result_ref(result) }, Some(PushResult::WorkerFailure { .. }))
    })
}

/// The worker's reply payload (empty for a failure). Borrowed: valid until the result is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_payload(result: *const rp_push_result) -> rp_bytes {
    boundary_or(rp_bytes::from_slice(&[]), || {
        // SAFETY: NULL or a live result.
        match unsafe { result_ref(result) } {
            Some(PushResult::Reply(p)) => rp_bytes::from_slice(p),
            _ => rp_bytes::from_slice(&[]),
        }
    })
}

/// The worker's failure code (0 when the worker replied normally).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_failure_code(result: *const rp_push_result) -> i32 {
    boundary_or(0, || {
        // SAFETY: NULL or a live result.
        match unsafe { result_ref(result) } {
            Some(PushResult::WorkerFailure { code, .. }) => *code,
            _ => 0,
        }
    })
}

/// The worker's failure message (empty when it replied normally). Borrowed: valid until the
/// result is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_failure_message(result: *const rp_push_result) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live result.
        match unsafe { result_ref(result) } {
            Some(PushResult::WorkerFailure { message, .. }) => rp_str::from_str(message),
            _ => rp_str::from_str(""),
        }
    })
}

/// Frees a result. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_free(result: *mut rp_push_result) {
    // SAFETY: NULL or a live result owned by the caller.
    boundary_or((), || unsafe { box_free(result) })
}
