//! Statistics of the protocol roles: relaxed atomic counters bumped on the hot path, read as a
//! plain snapshot struct (the C ABI copies it into its `#[repr(C)]` structs, `src/ffi/stats.rs`).
//!
//! Counters only grow; the "now" values (connections open, workers registered, pushes in
//! flight...) are read from the role's own state when the snapshot is taken.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::proto::ErrorCode;

/// Adds 1 to a counter.
#[inline(always)]
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
#[inline(always)]
pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Ordering::Relaxed);
}

/// Declares a snapshot struct of `u64` fields and its atomic twin with `snapshot()`.
macro_rules! stats {
    ($(#[$m:meta])* $snap:ident / $ctr:ident { $($(#[$fm:meta])* $f:ident,)* } $(+ $(#[$rm:meta])* $r:ident)?) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $snap {
            $($(#[$fm])* pub $f: u64,)*
            $($(#[$rm])* pub $r: Refusals,)?
        }

        #[derive(Debug, Default)]
        pub(crate) struct $ctr {
            $(pub(crate) $f: AtomicU64,)*
            $(pub(crate) $r: RefusalCounters,)?
        }

        impl $snap {
            /// Every field as (name, value), in declaration order; refusals as
            /// `refused_<code>` (`refused_service_unknown`, ...).
            pub fn fields(&self) -> Vec<(String, u64)> {
                #[allow(unused_mut)]
                let mut v = vec![$((stringify!($f).to_owned(), self.$f),)*];
                $(v.extend(self.$r.fields().into_iter().map(|(n, x)| (format!("refused_{n}"), x)));)?
                v
            }
        }

        impl $ctr {
            /// The counters as they are now (gauges read 0: the role fills them in).
            #[allow(dead_code)]
            pub(crate) fn snapshot(&self) -> $snap {
                $snap { $($f: self.$f.load(Ordering::Relaxed),)* $($r: self.$r.snapshot(),)? }
            }
        }
    };
}

stats! {
    /// Connections refused during the handshake, by the code sent in the refusal.
    Refusals / RefusalCounters {
        /// PEER_REJECTED: another user's process, a failed auth token, bad Hello fields.
        peer_rejected,
        /// RATE_LIMITED: too many connections (in all, or from one user), too many Hellos.
        rate_limited,
        /// SERVICE_UNKNOWN: the Hello asked for a service not served here.
        service_unknown,
        /// VERSION_UNSUPPORTED: an unsupported wanted version or framing version.
        version_unsupported,
        /// VERSION_BLOCKED: the wanted version is blocked or below the minimum.
        version_blocked,
        /// SHUTTING_DOWN: the server is shutting down.
        shutting_down,
        /// Any other code.
        other,
    }
}

impl RefusalCounters {
    /// Counts one refusal with `code` (an `ErrorCode` value).
    pub(crate) fn count(&self, code: i32) {
        let c = match ErrorCode::try_from(code) {
            Ok(ErrorCode::PeerRejected) => &self.peer_rejected,
            Ok(ErrorCode::RateLimited) => &self.rate_limited,
            Ok(ErrorCode::ServiceUnknown) => &self.service_unknown,
            Ok(ErrorCode::VersionUnsupported) => &self.version_unsupported,
            Ok(ErrorCode::VersionBlocked) => &self.version_blocked,
            Ok(ErrorCode::ShuttingDown) => &self.shutting_down,
            _ => &self.other,
        };
        bump(c);
    }
}

impl Refusals {
    /// All refusals.
    pub fn total(&self) -> u64 {
        self.peer_rejected
            + self.rate_limited
            + self.service_unknown
            + self.version_unsupported
            + self.version_blocked
            + self.shutting_down
            + self.other
    }
}

stats! {
    /// What a push server did since it was bound.
    ///
    /// Pushes add up: `pushes_sent = pushes_answered + pushes_failed + pushes_timed_out +
    /// pushes_lost + pushes_in_flight`.
    PushServerStats / PushServerCounters {
        /// Connections accepted (before any check).
        connections_accepted,
        /// Connections open now (handshaking, registered, or closing).
        connections_open,
        /// Workers registered now.
        workers_registered,
        /// Registrations accepted.
        registrations_accepted,
        /// Registrations rejected (invalid, or by the application's decision).
        registrations_rejected,
        /// Registered workers that went away before the server shut down (closed by the
        /// worker, a failure, a protocol violation, a stall, or a disconnect call).
        workers_lost,
        /// Connections closed for not finishing Hello and registration within the handshake
        /// timeout.
        handshake_timeouts,
        /// Connections closed for a protocol violation (an unexpected or malformed frame).
        protocol_violations,
        /// Pushes waiting for their reply now.
        pushes_in_flight,
        /// Pushes written to a worker.
        pushes_sent,
        /// Pushes answered with a reply payload.
        pushes_answered,
        /// Pushes answered with the worker's failure.
        pushes_failed,
        /// Pushes that passed their deadline without a reply.
        pushes_timed_out,
        /// Pushes whose worker disconnected (or the server shut down) before replying.
        pushes_lost,
        /// Pushes never written: no matching worker, its send buffer full, its deadline
        /// already passed, or too large.
        pushes_unsent,
        /// Bytes read from workers.
        bytes_in,
        /// Bytes written to workers.
        bytes_out,
    } + /// Connections refused during the handshake, by the refusal's code.
    refused
}

stats! {
    /// What one push worker did since it connected.
    PushWorkerStats / PushWorkerCounters {
        /// Pushes received from the server.
        pushes_received,
        /// Pushes waiting in the inbox now.
        pushes_queued,
        /// Pushes received and not yet answered now.
        pushes_outstanding,
        /// Replies sent with a payload.
        replies_sent,
        /// Replies sent with a failure.
        failures_sent,
        /// Pushes the server cancelled (their deadline passed).
        cancels_received,
        /// Bytes read from the server (after the registration).
        bytes_in,
        /// Bytes of replies written to the server.
        bytes_out,
        /// Times the worker connected and registered again after losing its connection.
        reconnects,
    }
}

stats! {
    /// What a broker server did since it was bound.
    BrokerServerStats / BrokerServerCounters {
        /// Connections accepted (before any check).
        connections_accepted,
        /// Connections open now (excluding those handed to a backend).
        connections_open,
        /// Hellos answered with Negotiated.
        hellos_negotiated,
        /// Admin requests answered.
        admin_requests,
        /// Connections closed for not sending their first frame within the Hello timeout.
        hello_timeouts,
        /// Handoffs started (the client was offered one and its connection passed on).
        handoffs_started,
        /// Handoffs the backend accepted.
        handoffs_accepted,
        /// Handoffs that failed or the backend declined (the client was told to reconnect).
        handoffs_failed,
    } + /// Hellos (and connections) refused, by the refusal's code.
    refused
}

stats! {
    /// What one session did since it started.
    SessionStats / SessionCounters {
        /// Calls this side started.
        calls_started,
        /// Calls answered with a response payload.
        calls_succeeded,
        /// Calls that ended otherwise (peer error, timeout, cancel, session closed).
        calls_failed,
        /// Of the failed calls, those that timed out.
        calls_timed_out,
        /// Calls waiting for their outcome now.
        calls_pending,
        /// Requests received from the peer.
        requests_received,
        /// Requests answered by this side's application (payload or error).
        requests_answered,
        /// Requests answered by librp itself (no dispatcher, queue full, dropped unanswered,
        /// deadline passed).
        requests_auto_answered,
        /// Requests waiting to be dispatched now.
        requests_queued,
    }
}
