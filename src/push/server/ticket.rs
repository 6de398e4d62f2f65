//! A push's ticket: the one place its outcome is kept, completed exactly once (by whoever
//! learns it first: a reply, a deadline, a disconnect) and taken exactly once by a waiter.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::types::PushOutcome;
use crate::error::Error;

/// An in-flight push: wait on it or poll it, from any thread.
#[derive(Debug, Clone)]
pub struct Ticket {
    inner: Arc<TicketInner>,
}

#[derive(Debug)]
struct TicketInner {
    correlation_id: u64,
    state: Mutex<TicketSlot>,
    done: Condvar,
}

/// A ticket's outcome and how many threads wait for it (so completing a push nobody waits on,
/// as `push_wait` does for itself, makes no wake-up call).
#[derive(Debug)]
struct TicketSlot {
    state: TicketState,
    waiting: usize,
}

#[derive(Debug)]
enum TicketState {
    Pending,
    Done(Result<PushOutcome, Error>),
    Taken,
}

impl Ticket {
    pub(super) fn new(correlation_id: u64) -> Self {
        Ticket {
            inner: Arc::new(TicketInner {
                correlation_id,
                state: Mutex::new(TicketSlot { state: TicketState::Pending, waiting: 0 }),
                done: Condvar::new(),
            }),
        }
    }

    /// The push's correlation id (the request id of its frames).
    pub fn correlation_id(&self) -> u64 {
        self.inner.correlation_id
    }

    /// True once the push has an outcome.
    pub fn is_done(&self) -> bool {
        !matches!(self.lock().state, TicketState::Pending)
    }

    /// Waits for the outcome (`None` = forever) and takes it.
    ///
    /// `Timeout` means the wait ended first (the push goes on unless its own deadline passed;
    /// [`is_done`](Self::is_done) tells which). An outcome can be taken once; later calls fail
    /// with `InvalidArgument`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<PushOutcome, Error> {
        self.wait_until(timeout.map(|t| Instant::now() + t))
    }

    /// [`wait`](Self::wait) until an instant (`None` = forever); reads no clock when the
    /// outcome is already there.
    pub(super) fn wait_until(&self, deadline: Option<Instant>) -> Result<PushOutcome, Error> {
        let mut slot = self.lock();
        loop {
            match std::mem::replace(&mut slot.state, TicketState::Taken) {
                TicketState::Done(result) => return result,
                TicketState::Taken => {
                    return Err(Error::invalid_argument("the push's outcome was already taken"))
                }
                TicketState::Pending => slot.state = TicketState::Pending,
            }
            slot.waiting += 1;
            slot = match deadline {
                None => self.inner.done.wait(slot).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        slot.waiting -= 1;
                        return Err(Error::Timeout(
                            format!("push {} has no reply yet", self.inner.correlation_id).into(),
                        ));
                    }
                    self.inner.done.wait_timeout(slot, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
            slot.waiting -= 1;
        }
    }

    pub(super) fn complete(&self, result: Result<PushOutcome, Error>) {
        let mut slot = self.lock();
        if matches!(slot.state, TicketState::Pending) {
            slot.state = TicketState::Done(result);
            if slot.waiting > 0 {
                self.inner.done.notify_all();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, TicketSlot> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
