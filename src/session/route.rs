//! Routing one incoming frame: decoding its `SessionMessage`, then handing it to the call,
//! stream, request queue or request being served it belongs to.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::exchange::Exchange;
use super::inner::{AutoFrame, Inner};
use super::proto::{SessionError, SessionMessage};
use super::{chunk_cost, code, deadline_instant, Request, MAX_ERROR_MESSAGE, MAX_QUEUED_REQUESTS, MAX_UNREAD_STREAM_BYTES};
use crate::error::Error;
use crate::wire::fast;
use crate::stats;
use crate::wire::proto::FrameKind;
use crate::wire::registry::SESSION;
use crate::wire::{FrameView, WireError};

/// Decodes a frame's `SessionMessage` (plain ones without prost, see [`fast`]); the payload
/// is copied by a fallible allocation ([`WireError::NoMemory`]).
pub(super) fn decode_message(bytes: &[u8]) -> Result<SessionMessage, WireError> {
    match fast::plain_message(bytes) {
        Some((payload_protocol, payload)) => WireError::try_copy(payload)
            .map(|payload| SessionMessage { payload_protocol, payload, ..SessionMessage::default() }),
        None => fast::decode_large(bytes, "SessionMessage", 2, &[1, 3, 4], false, |m: &mut SessionMessage, p| {
            m.payload = p
        }),
    }
}

/// The error a peer's `SessionError` stands for: librp's own codes map back to their kind.
pub(super) fn peer_error(e: SessionError) -> Error {
    let text = |m: String| -> Cow<'static, str> { format!("the peer answered: {m}").into() };
    match e.code {
        code::AGAIN => Error::Again(text(e.message)),
        code::TIMEOUT => Error::Timeout(text(e.message)),
        code::CLOSED => Error::Closed(text(e.message)),
        code::CANCELLED => Error::Cancelled(text(e.message)),
        code::INVALID_ARGUMENT => Error::InvalidArgument(text(e.message)),
        code::NOT_FOUND => Error::NotFound(text(e.message)),
        code::TOO_LARGE => Error::Overflow(text(e.message)),
        code => Error::Peer { code, message: e.message },
    }
}

/// Ends the exchange `id` whose reader fell [`MAX_UNREAD_STREAM_BYTES`] behind: its waiters
/// get [`Error::Overflow`], its unread chunks are dropped, and the peer is told.
pub(super) fn stream_overflowed(inner: &Inner, ex: &Exchange, id: u64, ours: bool) {
    let why = "the peer streamed more than 64 MiB that was not read; the exchange was ended";
    if ex.finish(Err(Error::Overflow(why.into()))) {
        let mut st = ex.lock();
        st.chunks.clear();
        st.unread_bytes = 0;
        drop(st);
        if ours {
            inner.lock().calls.remove(&id);
            inner.auto_answer(id, AutoFrame::Cancel, why);
        } else {
            inner.lock().serving.remove(&id);
            inner.auto_answer(id, AutoFrame::Error(code::TOO_LARGE), why);
        }
    }
}

/// Routes one incoming frame to where it belongs. Returns why the session must end on a
/// protocol violation. Runs with the reader role held; never blocks on I/O.
pub(super) fn route(inner: &Arc<Inner>, frame: &FrameView<'_>) -> Result<(), Cow<'static, str>> {
    if let Err(e) = frame.check_plain().and_then(|()| frame.check_trace_context()) {
        return Err(e.to_string().into());
    }
    if frame.payload_protocol != SESSION {
        return Err(format!("protocol violation: frame on payload protocol 0x{:04X}", frame.payload_protocol).into());
    }
    let msg = if frame.kind == FrameKind::Cancel as i32 {
        SessionMessage::default()
    } else {
        match decode_message(frame.payload) {
            Ok(m) => m,
            Err(e @ WireError::NoMemory { .. }) => {
                inner.no_memory.store(true, Ordering::Relaxed);
                return Err(format!("message {} not received: {e}", frame.request_id).into());
            }
            Err(WireError::Malformed { detail, .. }) => {
                return Err(format!("protocol violation: malformed SessionMessage: {detail}").into())
            }
            Err(e) => return Err(format!("protocol violation: {e}").into()),
        }
    };
    if let Some(e) = msg.error.as_ref().filter(|e| e.message.len() > MAX_ERROR_MESSAGE) {
        return Err(format!(
            "protocol violation: an error message of {} bytes exceeds the {MAX_ERROR_MESSAGE}-byte limit",
            e.message.len()
        )
        .into());
    }
    let id = frame.request_id;
    let ours = inner.side.owns(id);
    match (FrameKind::try_from(frame.kind).ok(), ours) {
        (Some(FrameKind::Request), false) => {
            let deadline = deadline_instant(frame.deadline_unix_ms);
            let request = Request {
                inner: Arc::clone(inner),
                exchange: inner.new_exchange(),
                id,
                payload_protocol: msg.payload_protocol,
                payload: msg.payload,
                deadline_unix_ms: frame.deadline_unix_ms,
                deadline,
                traceparent: frame.traceparent.to_owned(),
                tracestate: frame.tracestate.to_owned(),
                answered: AtomicBool::new(false),
            };
            stats::bump(&inner.stats.requests_received);
            if !inner.serving.load(Ordering::Acquire) {
                request.answered.store(true, Ordering::Release);
                inner.auto_answer(id, AutoFrame::Error(code::NOT_FOUND), "no dispatcher: this session serves no requests");
                return Ok(());
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                request.answered.store(true, Ordering::Release);
                inner.auto_answer(id, AutoFrame::Error(code::TIMEOUT), "the request's deadline had passed on arrival");
                return Ok(());
            }
            let mut st = inner.lock();
            if st.serving.contains_key(&id) {
                drop(st);
                request.answered.store(true, Ordering::Release);
                return Err(format!("protocol violation: request id {id} is already in use").into());
            }
            st.serving.insert(id, Arc::clone(&request.exchange));
            if st.queue.len() >= MAX_QUEUED_REQUESTS {
                drop(st);
                request.answered.store(true, Ordering::Release);
                inner.lock().serving.remove(&id);
                inner.auto_answer(id, AutoFrame::Error(code::AGAIN), "too many requests are waiting to be dispatched");
                return Ok(());
            }
            st.queue.push_back(request);
            inner.update_signal(&mut st);
            let waiting = st.request_waiters > 0;
            drop(st);
            if waiting {
                inner.requests_changed.notify_one();
            }
        }
        (Some(FrameKind::Request), true) => {
            return Err(format!("protocol violation: the peer sent a request with id {id}, which has this side's parity")
                .into());
        }
        (Some(FrameKind::Response), true) => {
            let call = inner.lock().calls.remove(&id);
            if let Some(ex) = call {
                let result = match msg.error {
                    Some(e) => Err(peer_error(e)),
                    None => Ok(msg.payload),
                };
                let ok = result.is_ok();
                if ex.finish(result) {
                    stats::bump(if ok { &inner.stats.calls_succeeded } else { &inner.stats.calls_failed });
                }
            }
            // An unknown id: the call was cancelled or timed out here; drop the answer.
        }
        (Some(FrameKind::Event), ours) => {
            let ex = {
                let st = inner.lock();
                if ours { st.calls.get(&id).cloned() } else { st.serving.get(&id).cloned() }
            };
            if let Some(ex) = ex {
                let mut st = ex.lock();
                if !msg.payload.is_empty() || !msg.end_of_stream {
                    let cost = chunk_cost(msg.payload.len());
                    if st.unread_bytes + cost > MAX_UNREAD_STREAM_BYTES {
                        drop(st);
                        stream_overflowed(inner, &ex, id, ours);
                        return Ok(());
                    }
                    st.unread_bytes += cost;
                    st.chunks.push_back(msg.payload);
                }
                if msg.end_of_stream {
                    st.peer_done = true;
                }
                ex.notify(&st);
            }
        }
        (Some(FrameKind::Cancel), false) => {
            let ex = inner.lock().serving.remove(&id);
            if let Some(ex) = ex {
                ex.finish(Err(Error::Cancelled("the caller cancelled the request".into())));
            }
            // Also take it off the queue if it was not yet dispatched (dropped outside the lock).
            let mut st = inner.lock();
            let (gone, kept) = std::mem::take(&mut st.queue).into_iter().partition(|r| r.id == id);
            st.queue = kept;
            inner.update_signal(&mut st);
            drop(st);
            drop::<VecDeque<Request>>(gone);
        }
        (Some(FrameKind::Cancel), true) | (Some(FrameKind::Response), false) => {
            return Err(format!("protocol violation: frame kind {} with request id {id} of the wrong side", frame.kind)
                .into());
        }
        (None, _) => return Err(format!("protocol violation: unknown frame kind {}", frame.kind).into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_codes_map_back_to_kinds() {
        let e = |code| peer_error(SessionError { code, message: "m".into() }).kind();
        assert_eq!(e(code::TIMEOUT), crate::ErrorKind::Timeout);
        assert_eq!(e(code::NOT_FOUND), crate::ErrorKind::NotFound);
        assert_eq!(e(1234), crate::ErrorKind::PeerError);
    }

    /// A local error sent as a wire code is read back by the peer as the same kind.
    #[test]
    fn local_errors_survive_the_wire() {
        use super::super::request::code_of;
        let errors = [
            Error::Timeout("t".into()),
            Error::Cancelled("c".into()),
            Error::NotFound("n".into()),
            Error::invalid_argument("i"),
            Error::Closed("x".into()),
        ];
        for e in errors {
            let back = peer_error(SessionError { code: code_of(&e), message: String::new() });
            assert_eq!(back.kind(), e.kind(), "{e}");
        }
    }

    /// Plain messages take the fast path, others prost's; both decode as prost does.
    #[test]
    fn messages_decode_as_prost_decodes_them() {
        use prost::Message;
        let messages = [
            SessionMessage { payload_protocol: 0x7001, payload: b"abc".to_vec(), ..SessionMessage::default() },
            SessionMessage::default(),
            SessionMessage { end_of_stream: true, ..SessionMessage::default() },
            SessionMessage {
                payload: b"p".to_vec(),
                error: Some(SessionError { code: 1001, message: "app".into() }),
                ..SessionMessage::default()
            },
        ];
        for m in messages {
            assert_eq!(decode_message(&m.encode_to_vec()).unwrap(), m);
        }
        assert!(matches!(decode_message(&[0x12, 0x05, 1]), Err(WireError::Malformed { .. })));
    }
}
