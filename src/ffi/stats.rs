//! `rp_*_stats`: statistics of the push server, push worker, broker server and session for C.
//!
//! Each struct starts with `size`, so it can grow: the caller sets `size` to the
//! `sizeof` it was compiled with, librp fills the fields that fit and writes back how many bytes
//! it filled. A program built against an older header gets the fields it knows; one built
//! against a newer header finds `size` smaller than its `sizeof` (the newer fields untouched).
//! Every field is a `uint64_t`; counters only grow, the fields marked "now" are current values.

use std::mem::{offset_of, size_of};

use super::boundary::{boundary, Failure};
use super::handle::box_ref;
use super::status::rp_status;
use super::{push_worker, push_server, session};
use crate::stats::{BrokerServerStats, PushServerStats, PushWorkerStats, Refusals, SessionStats};

/// What a push server did since it was bound. Read with `rp_push_server_get_stats`.
///
/// Pushes add up: `pushes_sent = pushes_answered + pushes_failed + pushes_timed_out +
/// pushes_lost + pushes_in_flight`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct rp_push_server_stats {
    /// Set to `sizeof(rp_push_server_stats)` before the call; librp writes back the bytes filled.
    pub size: u64,
    /// Connections accepted (before any check).
    pub connections_accepted: u64,
    /// Connections open now (handshaking, registered, or closing).
    pub connections_open: u64,
    /// Workers registered now.
    pub workers_registered: u64,
    /// Registrations accepted.
    pub registrations_accepted: u64,
    /// Registrations rejected (invalid, or by the registration callback).
    pub registrations_rejected: u64,
    /// Registered workers that went away before the server shut down (closed by the worker,
    /// a failure, a protocol violation, a stall, or `rp_push_server_disconnect`).
    pub workers_lost: u64,
    /// Connections closed for not finishing Hello and registration within the handshake timeout.
    pub handshake_timeouts: u64,
    /// Connections closed for a protocol violation (an unexpected or malformed frame).
    pub protocol_violations: u64,
    /// Pushes waiting for their reply now.
    pub pushes_in_flight: u64,
    /// Pushes written to a worker.
    pub pushes_sent: u64,
    /// Pushes answered with a reply payload.
    pub pushes_answered: u64,
    /// Pushes answered with the worker's failure.
    pub pushes_failed: u64,
    /// Pushes that passed their deadline without a reply.
    pub pushes_timed_out: u64,
    /// Pushes whose worker disconnected (or the server shut down) before replying.
    pub pushes_lost: u64,
    /// Pushes never written: no matching worker, its send buffer full, its deadline already
    /// passed, or too large.
    pub pushes_unsent: u64,
    /// Bytes read from workers.
    pub bytes_in: u64,
    /// Bytes written to workers.
    pub bytes_out: u64,
    /// Connections refused with PEER_REJECTED (another user's process, a wrong auth token,
    /// invalid Hello fields).
    pub refused_peer_rejected: u64,
    /// Connections refused with RATE_LIMITED (too many connections, in all or from one user).
    pub refused_rate_limited: u64,
    /// Connections refused with SERVICE_UNKNOWN (the Hello asked for another service).
    pub refused_service_unknown: u64,
    /// Connections refused with VERSION_UNSUPPORTED (protocol or framing version).
    pub refused_version_unsupported: u64,
    /// Connections refused with SHUTTING_DOWN.
    pub refused_shutting_down: u64,
    /// Connections refused with any other code.
    pub refused_other: u64,
}

/// What one push worker (`rp_push_worker`) did since it connected. Read with
/// `rp_push_worker_get_stats`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct rp_push_worker_stats {
    /// Set to `sizeof(rp_push_worker_stats)` before the call; librp writes back the bytes filled.
    pub size: u64,
    /// Pushes received from the server.
    pub pushes_received: u64,
    /// Pushes received and not yet taken by `rp_push_worker_recv` now.
    pub pushes_queued: u64,
    /// Pushes taken and not yet answered now.
    pub pushes_outstanding: u64,
    /// Replies sent with a payload (`rp_push_worker_reply`).
    pub replies_sent: u64,
    /// Replies sent with a failure (`rp_push_worker_reply_error`).
    pub failures_sent: u64,
    /// Pushes the server cancelled (their deadline passed).
    pub cancels_received: u64,
    /// Bytes read from the server after the registration.
    pub bytes_in: u64,
    /// Bytes of replies written to the server.
    pub bytes_out: u64,
    /// Times the worker connected and registered again after losing its connection
    /// (`rp_push_worker_options_set_reconnect`).
    pub reconnects: u64,
}

/// What a broker server did since it was bound. Read with `rp_broker_server_get_stats`; the
/// METRICS admin verb (`rp_admin_request`) reports the same numbers in OpenMetrics text.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct rp_broker_server_stats {
    /// Set to `sizeof(rp_broker_server_stats)` before the call; librp writes back the bytes filled.
    pub size: u64,
    /// Connections accepted (before any check).
    pub connections_accepted: u64,
    /// Connections open now (excluding those handed to a backend).
    pub connections_open: u64,
    /// Hellos answered with Negotiated.
    pub hellos_negotiated: u64,
    /// Admin requests answered (including the one asking for these numbers).
    pub admin_requests: u64,
    /// Connections closed for not sending their first frame within the Hello timeout.
    pub hello_timeouts: u64,
    /// Handoffs started (the client was offered one and its connection passed on).
    pub handoffs_started: u64,
    /// Handoffs the backend accepted.
    pub handoffs_accepted: u64,
    /// Handoffs that failed or the backend declined (the client was told to reconnect).
    pub handoffs_failed: u64,
    /// Hellos refused with PEER_REJECTED (another user's process, invalid Hello fields).
    pub refused_peer_rejected: u64,
    /// Hellos refused with RATE_LIMITED (Hello rate, or too many connections).
    pub refused_rate_limited: u64,
    /// Hellos refused with SERVICE_UNKNOWN.
    pub refused_service_unknown: u64,
    /// Hellos refused with VERSION_UNSUPPORTED.
    pub refused_version_unsupported: u64,
    /// Hellos refused with VERSION_BLOCKED.
    pub refused_version_blocked: u64,
    /// Hellos refused with SHUTTING_DOWN.
    pub refused_shutting_down: u64,
    /// Hellos refused with any other code.
    pub refused_other: u64,
}

/// What one session did since it started. Read with `rp_session_get_stats`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct rp_session_stats {
    /// Set to `sizeof(rp_session_stats)` before the call; librp writes back the bytes filled.
    pub size: u64,
    /// Calls this side started.
    pub calls_started: u64,
    /// Calls answered with a response payload.
    pub calls_succeeded: u64,
    /// Calls that ended otherwise (the peer's error, timeout, cancel, the session ended).
    pub calls_failed: u64,
    /// Of the failed calls, those whose deadline or wait limit passed.
    pub calls_timed_out: u64,
    /// Calls waiting for their outcome now.
    pub calls_pending: u64,
    /// Requests received from the peer.
    pub requests_received: u64,
    /// Requests answered by the application (`rp_session_respond`, `_respond_error`).
    pub requests_answered: u64,
    /// Requests answered by librp itself (no dispatcher, queue full, freed unanswered,
    /// deadline passed on arrival).
    pub requests_auto_answered: u64,
    /// Requests waiting to be dispatched now.
    pub requests_queued: u64,
}

impl From<PushServerStats> for rp_push_server_stats {
    fn from(s: PushServerStats) -> Self {
        let Refusals { peer_rejected, rate_limited, service_unknown, version_unsupported, version_blocked, shutting_down, other } =
            s.refused;
        rp_push_server_stats {
            size: 0,
            connections_accepted: s.connections_accepted,
            connections_open: s.connections_open,
            workers_registered: s.workers_registered,
            registrations_accepted: s.registrations_accepted,
            registrations_rejected: s.registrations_rejected,
            workers_lost: s.workers_lost,
            handshake_timeouts: s.handshake_timeouts,
            protocol_violations: s.protocol_violations,
            pushes_in_flight: s.pushes_in_flight,
            pushes_sent: s.pushes_sent,
            pushes_answered: s.pushes_answered,
            pushes_failed: s.pushes_failed,
            pushes_timed_out: s.pushes_timed_out,
            pushes_lost: s.pushes_lost,
            pushes_unsent: s.pushes_unsent,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            refused_peer_rejected: peer_rejected,
            refused_rate_limited: rate_limited,
            refused_service_unknown: service_unknown,
            refused_version_unsupported: version_unsupported,
            refused_shutting_down: shutting_down,
            // A push server never blocks versions; counted with the others should it ever.
            refused_other: other + version_blocked,
        }
    }
}

impl From<PushWorkerStats> for rp_push_worker_stats {
    fn from(s: PushWorkerStats) -> Self {
        rp_push_worker_stats {
            size: 0,
            pushes_received: s.pushes_received,
            pushes_queued: s.pushes_queued,
            pushes_outstanding: s.pushes_outstanding,
            replies_sent: s.replies_sent,
            failures_sent: s.failures_sent,
            cancels_received: s.cancels_received,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            reconnects: s.reconnects,
        }
    }
}

impl From<BrokerServerStats> for rp_broker_server_stats {
    fn from(s: BrokerServerStats) -> Self {
        let r = s.refused;
        rp_broker_server_stats {
            size: 0,
            connections_accepted: s.connections_accepted,
            connections_open: s.connections_open,
            hellos_negotiated: s.hellos_negotiated,
            admin_requests: s.admin_requests,
            hello_timeouts: s.hello_timeouts,
            handoffs_started: s.handoffs_started,
            handoffs_accepted: s.handoffs_accepted,
            handoffs_failed: s.handoffs_failed,
            refused_peer_rejected: r.peer_rejected,
            refused_rate_limited: r.rate_limited,
            refused_service_unknown: r.service_unknown,
            refused_version_unsupported: r.version_unsupported,
            refused_version_blocked: r.version_blocked,
            refused_shutting_down: r.shutting_down,
            refused_other: r.other,
        }
    }
}

impl From<SessionStats> for rp_session_stats {
    fn from(s: SessionStats) -> Self {
        rp_session_stats {
            size: 0,
            calls_started: s.calls_started,
            calls_succeeded: s.calls_succeeded,
            calls_failed: s.calls_failed,
            calls_timed_out: s.calls_timed_out,
            calls_pending: s.calls_pending,
            requests_received: s.requests_received,
            requests_answered: s.requests_answered,
            requests_auto_answered: s.requests_auto_answered,
            requests_queued: s.requests_queued,
        }
    }
}

/// Structs of `u64` fields only, `size` first: no padding, so every byte is initialised.
trait SizedStats: Copy {}
impl SizedStats for rp_push_server_stats {}
impl SizedStats for rp_push_worker_stats {}
impl SizedStats for rp_broker_server_stats {}
impl SizedStats for rp_session_stats {}

/// Checks `out` and its `size`, then copies the fields of `stats` that fit in it and writes
/// the bytes filled to `size`.
///
/// # Safety
/// `out` is NULL or points to at least `(*out).size` writable bytes (the caller's
/// `sizeof(T)`), starting with a readable `u64`.
unsafe fn write_stats<T: SizedStats>(out: *mut T, name: &'static str, stats: impl FnOnce() -> T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(name));
    }
    let first = offset_of!(rp_session_stats, calls_started);
    // SAFETY: `out` is non-NULL and starts with the caller's `u64 size`.
    let given = unsafe { (out as *const u64).read_unaligned() };
    if given < (first + size_of::<u64>()) as u64 {
        return Err(Failure::new(
            rp_status::InvalidArgument,
            format!("{name}->size is {given}: set it to sizeof the struct before the call"),
        ));
    }
    let fill = (given as usize).min(size_of::<T>()) / size_of::<u64>() * size_of::<u64>();
    let value = stats();
    // SAFETY: `value` is a `T` of `u64` fields (no padding), so its first `fill <= size_of::<T>()`
    // bytes are initialised; the caller guarantees `given >= fill` writable bytes at `out`;
    // the two cannot overlap (one is a local).
    unsafe {
        std::ptr::copy_nonoverlapping(&value as *const T as *const u8, out as *mut u8, fill);
        (out as *mut u64).write_unaligned(fill as u64);
    }
    Ok(())
}

/// Reads what a push server did since it was bound.
///
/// Parameters: `server`; `out_stats` — set `out_stats->size = sizeof(rp_push_server_stats)`
/// first. On success the fields that fit in `size` are filled and `size` is set to the bytes
/// filled.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
/// smaller than the first counter). Thread safety: may be called from any thread, at any
/// time; the counters are read one by one, not as one atomic snapshot. Costs a few locks:
/// cheap enough to call every second, not on every push.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_get_stats(
    server: *const push_server::rp_push_server,
    out_stats: *mut rp_push_server_stats,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live server, per the API contract.
        let handle = unsafe { box_ref(server, "server") }?;
        // SAFETY: per the API contract above.
        unsafe { write_stats(out_stats, "out_stats", || handle.server.stats().into()) }
    })
}

/// Reads what a push worker did since it connected.
///
/// Parameters: `worker`; `out_stats` — set `out_stats->size = sizeof(rp_push_worker_stats)`
/// first. On success the fields that fit in `size` are filled and `size` is set to the bytes
/// filled.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
/// too small). Thread safety: may be called from any thread, also while another receives.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_get_stats(
    worker: *const push_worker::rp_push_worker,
    out_stats: *mut rp_push_worker_stats,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live worker, per the API contract.
        let handle = unsafe { box_ref(worker, "worker") }?;
        // SAFETY: per the API contract above.
        unsafe { write_stats(out_stats, "out_stats", || handle.worker.stats().into()) }
    })
}

/// Reads what a broker server did since it was bound (the METRICS admin verb answers the
/// same numbers).
///
/// Parameters: `server`; `out_stats` — set `out_stats->size = sizeof(rp_broker_server_stats)`
/// first. On success the fields that fit in `size` are filled and `size` is set to the bytes
/// filled.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
/// too small). Thread safety: may be called from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_get_stats(
    server: *const super::broker_server::rp_broker_server,
    out_stats: *mut rp_broker_server_stats,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live server, per the API contract.
        let handle = unsafe { box_ref(server, "server") }?;
        // SAFETY: per the API contract above.
        unsafe { write_stats(out_stats, "out_stats", || handle.server.stats().into()) }
    })
}

/// Reads what a session did since it started.
///
/// Parameters: `session`; `out_stats` — set `out_stats->size = sizeof(rp_session_stats)`
/// first. On success the fields that fit in `size` are filled and `size` is set to the bytes
/// filled.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
/// too small). Thread safety: may be called from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_session_get_stats(
    session: *const session::rp_session,
    out_stats: *mut rp_session_stats,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live session, per the API contract.
        let handle = unsafe { box_ref(session, "session") }?;
        // SAFETY: per the API contract above.
        unsafe { write_stats(out_stats, "out_stats", || handle.session.stats().into()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bounds_what_is_written() {
        let mut s = rp_session_stats { size: 16, calls_succeeded: 99, ..Default::default() };
        let full = SessionStats { calls_started: 5, calls_succeeded: 6, ..Default::default() };
        // SAFETY: `s` is a live struct of at least 16 bytes.
        unsafe { write_stats(&mut s, "s", || full.into()) }.unwrap();
        assert_eq!((s.size, s.calls_started, s.calls_succeeded), (16, 5, 99), "only what fits is written");
        s.size = size_of::<rp_session_stats>() as u64 + 64;
        // SAFETY: as above; librp writes at most its own size.
        unsafe { write_stats(&mut s, "s", || full.into()) }.unwrap();
        assert_eq!((s.size as usize, s.calls_succeeded), (size_of::<rp_session_stats>(), 6));
        s.size = 8;
        // SAFETY: as above.
        assert!(unsafe { write_stats(&mut s, "s", || full.into()) }.is_err());
    }
}
