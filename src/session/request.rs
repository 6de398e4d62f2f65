//! One of the peer's requests being served ([`Request`]): its fields, its stream, its answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exchange::{copy_error, has_chunk_or_end, take_chunk, wait_on, Exchange, Outcome, WaitEnd};
use super::inner::Inner;
use super::proto::{SessionError, SessionMessage};
use super::{code, MAX_ERROR_MESSAGE};
use crate::error::Error;
use crate::stats;
use crate::wire::proto::FrameKind;

/// One of the peer's requests being served: its fields, its stream, and its answer.
///
/// Answer it once with [`respond`](Self::respond) or [`respond_error`](Self::respond_error),
/// from any thread; dropping it unanswered answers with the `CLOSED` error.
#[derive(Debug)]
pub struct Request {
    pub(super) inner: Arc<Inner>,
    pub(super) exchange: Arc<Exchange>,
    pub(super) id: u64,
    pub(super) payload_protocol: u32,
    pub(super) payload: Vec<u8>,
    pub(super) deadline_unix_ms: u64,
    pub(super) deadline: Option<Instant>,
    pub(super) traceparent: String,
    pub(super) tracestate: String,
    pub(super) answered: AtomicBool,
}

impl Request {
    /// The request id the caller chose.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The consumer protocol of the payload.
    pub fn payload_protocol(&self) -> u32 {
        self.payload_protocol
    }

    /// The request's bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Absolute deadline in Unix milliseconds; 0 = none.
    pub fn deadline_unix_ms(&self) -> u64 {
        self.deadline_unix_ms
    }

    /// W3C traceparent ("" = none).
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// W3C tracestate ("" = none).
    pub fn tracestate(&self) -> &str {
        &self.tracestate
    }

    /// True once the caller cancelled the request (or the session ended); answers are then
    /// not sent.
    pub fn is_cancelled(&self) -> bool {
        !self.answered.load(Ordering::Acquire) && self.exchange.is_done()
    }

    /// Answers with a payload. Fails with `Cancelled` (the caller cancelled), `Timeout` (the
    /// deadline passed: the caller is sent the `TIMEOUT` error instead), `Closed`, or
    /// `InvalidArgument` (already answered).
    pub fn respond(&self, payload: &[u8]) -> Result<(), Error> {
        self.counted(self.answer(Ok(payload)))
    }

    /// Answers with an error: `code` is an `rp_status` value or an application code ≥ 1000.
    /// Fails like [`respond`](Self::respond).
    /// The message is at most [`MAX_ERROR_MESSAGE`] bytes (`InvalidArgument` otherwise, and the
    /// request stays unanswered).
    pub fn respond_error(&self, code: i32, message: &str) -> Result<(), Error> {
        if message.len() > MAX_ERROR_MESSAGE {
            return Err(Error::invalid_argument(format!(
                "an error message is at most {MAX_ERROR_MESSAGE} bytes (got {})",
                message.len()
            )));
        }
        self.counted(self.answer(Err(Error::Peer { code, message: message.to_owned() })))
    }

    /// Counts an answer the application gave (not a second one).
    fn counted(&self, result: Result<(), Error>) -> Result<(), Error> {
        if !result.as_ref().is_err_and(|e| e.kind() == crate::ErrorKind::InvalidArgument) {
            stats::bump(&self.inner.stats.requests_answered);
        }
        result
    }

    pub(super) fn answer(&self, result: Result<&[u8], Error>) -> Result<(), Error> {
        if self.answered.swap(true, Ordering::AcqRel) {
            return Err(Error::invalid_argument("the request was already answered"));
        }
        self.inner.lock().serving.remove(&self.id);
        let late = self.deadline.is_some_and(|d| d <= Instant::now());
        if let Some(Outcome::Ready(Some(Err(e)))) = &self.exchange.lock().outcome {
            // Cancelled or the session ended: nothing is sent. Past the deadline, the caller
            // has ended the call with TIMEOUT, and so does this side.
            if late {
                return Err(Error::Timeout("the request's deadline passed before it was answered".into()));
            }
            return Err(copy_error(e));
        }
        let (msg, outcome) = if late {
            let text = "the request's deadline passed before it was answered";
            (error_message(code::TIMEOUT, text), Err(Error::Timeout(text.into())))
        } else {
            match result {
                Ok(payload) => {
                    self.exchange.finish(Err(Error::Closed("the request was answered".into())));
                    return self.inner.send_payload(FrameKind::Response, self.id, payload);
                }
                Err(Error::Peer { code, message }) => (error_message(code, &message), Ok(())),
                Err(e) => (error_message(code_of(&e), &e.to_string()), Ok(())),
            }
        };
        self.exchange.finish(Err(Error::Closed("the request was answered".into())));
        self.inner.send_simple(FrameKind::Response, self.id, &msg)?;
        outcome
    }

    /// Reads the next chunk the caller sent on this request (a tunnel), waiting up to
    /// `timeout`. Fails with `Closed` once the caller half-closed (or the session ended),
    /// `Timeout` (the wait or the request's deadline), or `Cancelled`.
    pub fn next_chunk(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        if self.deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout("the request's deadline passed".into()));
        }
        match wait_on(&self.exchange, timeout, self.deadline, Some((&self.inner, has_chunk_or_end)), take_chunk) {
            Ok(r) => r,
            Err(WaitEnd::Deadline) => Err(Error::Timeout("the request's deadline passed".into())),
            Err(WaitEnd::Limit) => Err(Error::Timeout("no chunk arrived in time".into())),
            Err(WaitEnd::Interrupted) => Err(Error::Interrupted("the wait for a chunk was interrupted".into())),
        }
    }

    /// Ends one [`next_chunk`](Self::next_chunk) on this request with `Interrupted`: the one
    /// blocked now, or the next one if none is. The request goes on.
    pub fn interrupt(&self) {
        self.exchange.interrupt();
    }

    /// Streams one chunk to the caller (an EVENT frame) before the final answer.
    pub fn send_chunk(&self, chunk: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.send_chunk(self.id, chunk)
    }

    /// Half-closes: tells the caller no more chunks come; the final answer is still due.
    pub fn close_write(&self) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.close_write(&self.exchange, self.id)
    }

    fn check_writable(&self) -> Result<(), Error> {
        if self.answered.load(Ordering::Acquire) {
            return Err(Error::Closed("the request was already answered".into()));
        }
        if self.deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout("the request's deadline passed".into()));
        }
        self.exchange.check_writable("the request has ended")
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) {
            stats::bump(&self.inner.stats.requests_auto_answered);
            let _ = self.answer(Err(Error::Peer {
                code: code::CLOSED,
                message: "the serving side dropped the request without answering".into(),
            }));
        }
        self.inner.recycle_exchange(&mut self.exchange);
    }
}

pub(super) fn error_message(code: i32, message: &str) -> SessionMessage {
    SessionMessage { error: Some(SessionError { code, message: message.to_owned() }), ..SessionMessage::default() }
}

/// The wire code of a local error kind.
pub(super) fn code_of(e: &Error) -> i32 {
    match e.kind() {
        crate::ErrorKind::Timeout => code::TIMEOUT,
        crate::ErrorKind::Cancelled => code::CANCELLED,
        crate::ErrorKind::NotFound => code::NOT_FOUND,
        crate::ErrorKind::InvalidArgument => code::INVALID_ARGUMENT,
        _ => code::CLOSED,
    }
}
