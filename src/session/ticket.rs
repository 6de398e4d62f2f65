//! A call this side made ([`Ticket`]): its response, its stream, its tunnel, its cancellation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::exchange::{has_chunk_or_end, has_outcome, take_chunk, wait_on, Exchange, Outcome, WaitEnd};
use super::inner::Inner;
use super::proto::SessionMessage;
use crate::error::Error;
use crate::stats;
use crate::wire::proto::FrameKind;

/// One call this side made: wait for its response, read its stream, write to its tunnel,
/// cancel it. All methods take `&self`; dropping an unfinished call cancels it.
#[derive(Debug)]
pub struct Ticket {
    pub(super) inner: Arc<Inner>,
    pub(super) exchange: Arc<Exchange>,
    pub(super) id: u64,
    pub(super) deadline: Option<Instant>,
}

impl Ticket {
    /// The call's request id (odd on the connecting side, even on the accepting side).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True once the call has an outcome ([`wait`](Self::wait) then returns at once).
    pub fn is_done(&self) -> bool {
        self.exchange.is_done()
    }

    /// Waits up to `timeout` (`None` = forever) for the response and takes it.
    ///
    /// `Timeout` either means the wait ended first (the call goes on; [`is_done`](Self::is_done)
    /// is false) or the call's deadline passed (the call ended and the peer was sent a CANCEL).
    /// An outcome can be taken once; later calls fail with `InvalidArgument`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        let got = wait_on(&self.exchange, timeout, self.deadline, Some((&self.inner, has_outcome)), |st| {
            st.outcome.as_mut().map(|Outcome::Ready(r)| r.take())
        });
        match got {
            Ok(Some(result)) => result,
            Ok(None) => Err(Error::invalid_argument("the call's outcome was already taken")),
            Err(WaitEnd::Deadline) => {
                self.cancel_with(Error::Timeout("the call's deadline passed".into()));
                match self.wait(Some(Duration::ZERO)) {
                    Err(e) if e.kind() == crate::ErrorKind::InvalidArgument => {
                        Err(Error::Timeout("the call's deadline passed".into()))
                    }
                    other => other,
                }
            }
            Err(WaitEnd::Limit) => Err(Error::Timeout("no response arrived in time".into())),
            Err(WaitEnd::Interrupted) => Err(Error::Interrupted("the wait for the response was interrupted".into())),
        }
    }

    /// Reads the next chunk the peer streamed (EVENT frames), waiting up to `timeout`.
    ///
    /// Fails with `Closed` once the stream has ended (the peer's end of stream or final
    /// response — take that with [`wait`](Self::wait) — or the connection ended), `Timeout`,
    /// `Cancelled`, or the call's error.
    pub fn next_chunk(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        match wait_on(&self.exchange, timeout, self.deadline, Some((&self.inner, has_chunk_or_end)), take_chunk) {
            Ok(r) => r,
            Err(WaitEnd::Deadline) => {
                self.cancel_with(Error::Timeout("the call's deadline passed".into()));
                Err(Error::Timeout("the call's deadline passed".into()))
            }
            Err(WaitEnd::Limit) => Err(Error::Timeout("no chunk arrived in time".into())),
            Err(WaitEnd::Interrupted) => Err(Error::Interrupted("the wait for a chunk was interrupted".into())),
        }
    }

    /// Sends one chunk to the peer on this call (the tunnel direction caller → callee).
    pub fn send_chunk(&self, chunk: &[u8]) -> Result<(), Error> {
        self.exchange.check_writable("the call has ended")?;
        self.inner.send_chunk(self.id, chunk)
    }

    /// Half-closes: tells the peer this side sends no more chunks. The response still comes.
    pub fn close_write(&self) -> Result<(), Error> {
        self.exchange.check_writable("the call has ended")?;
        self.inner.close_write(&self.exchange, self.id)
    }

    /// Ends one [`wait`](Self::wait) or [`next_chunk`](Self::next_chunk) on this call with
    /// `Interrupted`: the one blocked now, or the next one if none is. The call goes on.
    pub fn interrupt(&self) {
        self.exchange.interrupt();
    }

    /// Cancels the call: its waiters wake with `Cancelled` and the peer is sent a CANCEL.
    /// Does nothing once the call has an outcome.
    pub fn cancel(&self) {
        self.cancel_with(Error::Cancelled("the call was cancelled".into()));
    }

    pub(super) fn cancel_with(&self, error: Error) {
        let timed_out = error.kind() == crate::ErrorKind::Timeout;
        if self.exchange.finish(Err(error)) {
            stats::bump(&self.inner.stats.calls_failed);
            if timed_out {
                stats::bump(&self.inner.stats.calls_timed_out);
                crate::log!(Debug, "session", "call {} timed out", self.id);
            }
            self.inner.lock().calls.remove(&self.id);
            let _ = self.inner.send_simple(FrameKind::Cancel, self.id, &SessionMessage::default());
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel();
        self.inner.recycle_exchange(&mut self.exchange);
    }
}
