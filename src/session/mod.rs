//! Session: multiplexed calls, streams and tunnels in both directions over one connection.
//!
//! A [`Session`] owns one [`Conn`](crate::broker::Conn) and is its only reader: every incoming frame is routed by
//! one function (`route`) — a RESPONSE to the call waiting for it, an EVENT to the stream of
//! its request id, a REQUEST to the queue of requests to serve, a CANCEL to the request being
//! served. Whoever holds the reader role reads and routes: a reader thread by default, or a
//! thread waiting for a frame (a caller waiting for its response, a dispatcher waiting for a
//! request) when no one else reads — the reader thread then steps aside, which spares each
//! call two thread hops. Routing never runs user code and never writes (librp's own error
//! answers go through an answerer thread); requests are taken with [`Session::next_request`]
//! on a thread of the application's choosing.
//!
//! Wire (docs/PROTOCOL.md, "Session"): every frame is on payload protocol
//! [`SESSION`](crate::wire::registry::SESSION) and carries one `SessionMessage`
//! (`proto/librp_session.proto`). Request ids are split by side: the connecting side uses odd
//! ids, the accepting side even ids, so both sides call each other on one connection.
//!
//! Files: `api` ([`Session`] itself), `ticket` ([`Ticket`]), `request` ([`Request`]), `listener`
//! ([`SessionListener`], [`connect`]); underneath, `inner` (the state the threads share and how
//! frames are sent), `exchange` (one request id's chunks and outcome, and waiting on them),
//! `reader` (the reader role: the reader thread, or a waiting thread reading for itself) and
//! `route` (where an incoming frame goes).

mod api;
mod exchange;
mod inner;
mod listener;
mod reader;
mod request;
mod route;
mod ticket;

use std::time::{Duration, Instant};

pub use api::Session;
pub use listener::{connect, connect_with, SessionListener};
pub use request::Request;
pub use ticket::Ticket;

/// Generated messages of `proto/librp_session.proto`.
mod dispatch;

pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/librp.session.v1.rs"));
}


/// Error codes librp itself puts in a `SessionError`: the stable codes of their kinds (the
/// `rp_status` values).
pub mod code {
    use crate::error::ErrorKind;

    /// The request's deadline passed.
    pub const TIMEOUT: i32 = ErrorKind::Timeout.code();
    /// The serving side dropped the request without answering, or its connection ended.
    pub const CLOSED: i32 = ErrorKind::Closed.code();
    /// The request was cancelled.
    pub const CANCELLED: i32 = ErrorKind::Cancelled.code();
    /// The serving side has too many requests waiting to be dispatched; retry later.
    pub const AGAIN: i32 = ErrorKind::Again.code();
    /// The argument was not acceptable to the serving side.
    pub const INVALID_ARGUMENT: i32 = ErrorKind::InvalidArgument.code();
    /// The receiving session has no dispatcher: it serves no requests.
    pub const NOT_FOUND: i32 = ErrorKind::NotFound.code();
    /// The serving side's reader left more than [`super::MAX_UNREAD_STREAM_BYTES`] of the
    /// caller's stream unread.
    pub const TOO_LARGE: i32 = ErrorKind::TooLarge.code();
    /// The smallest application code; codes below are `rp_status` values.
    pub const FIRST_APPLICATION_CODE: i32 = 1000;
}

/// Longest error message a session sends or accepts in a `SessionError`, in bytes; a peer's
/// longer one is a protocol violation.
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// Requests held for dispatch at most; more are answered at once with the `AGAIN` error.
pub const MAX_QUEUED_REQUESTS: usize = 65536;

/// Stream bytes held at most per call or served request for a reader that has not taken
/// them (payload bytes plus 64 per chunk). Beyond it the exchange ends with
/// [`Error::Overflow`](crate::Error::Overflow) and the peer is told (a CANCEL for a call, a `TOO_LARGE` error answer
/// for a served request).
pub const MAX_UNREAD_STREAM_BYTES: usize = 64 << 20;

/// What [`MAX_UNREAD_STREAM_BYTES`] counts for one chunk of `len` payload bytes.
const fn chunk_cost(len: usize) -> usize {
    len + 64
}

/// Which end of the connection this session is; it decides the parity of request ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The side that connected: its calls use odd request ids (1, 3, 5, ...).
    Connecting,
    /// The side that accepted: its calls use even request ids (2, 4, 6, ...).
    Accepting,
}

impl Side {
    fn first_id(self) -> u64 {
        match self {
            Side::Connecting => 1,
            Side::Accepting => 2,
        }
    }

    /// True when `id` belongs to this side's calls.
    fn owns(self, id: u64) -> bool {
        (id % 2 == 1) == (self == Side::Connecting)
    }
}

/// What a call sends besides its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Absolute deadline in Unix milliseconds (0 = none). Past it the call ends with `Timeout`
    /// on both sides, and the peer is sent a CANCEL.
    pub deadline_unix_ms: u64,
    /// W3C traceparent ("" = none).
    pub traceparent: String,
    /// W3C tracestate ("" = none).
    pub tracestate: String,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The monotonic instant of a Unix-ms deadline (`None` for 0 = no deadline).
fn deadline_instant(deadline_unix_ms: u64) -> Option<Instant> {
    if deadline_unix_ms == 0 {
        return None;
    }
    let left = deadline_unix_ms.saturating_sub(now_unix_ms());
    Some(Instant::now() + Duration::from_millis(left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_codes_start_above_every_stable_code() {
        for c in 0..code::FIRST_APPLICATION_CODE + 100 {
            if crate::ErrorKind::from_code(c).is_some() {
                assert!(c < code::FIRST_APPLICATION_CODE, "{c}");
            }
        }
    }

    #[test]
    fn ids_split_by_side() {
        assert!(Side::Connecting.owns(1) && !Side::Connecting.owns(2));
        assert!(Side::Accepting.owns(2) && !Side::Accepting.owns(3));
        assert_eq!(Side::Connecting.first_id(), 1);
        assert_eq!(Side::Accepting.first_id(), 2);
    }
}
