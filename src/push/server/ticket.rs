//! A push's ticket: the one place its outcome is kept, completed exactly once (by whoever
//! learns it first: a reply, a deadline, a disconnect) and taken exactly once by a waiter.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::types::PushResult;
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
    /// An [`interrupt`](Ticket::interrupt) no wait has taken yet.
    interrupted: bool,
}

#[derive(Debug)]
enum TicketState {
    Pending,
    Done(Result<PushResult, Error>),
    Taken,
}

impl Ticket {
    pub(super) fn new(correlation_id: u64) -> Self {
        Ticket {
            inner: Arc::new(TicketInner {
                correlation_id,
                state: Mutex::new(TicketSlot { state: TicketState::Pending, waiting: 0, interrupted: false }),
                done: Condvar::new(),
            }),
        }
    }

    /// This ticket, held by no one else and with its outcome taken, as a pending ticket for
    /// the push `correlation_id`.
    pub(super) fn renew(mut self, correlation_id: u64) -> Ticket {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.correlation_id = correlation_id;
            *inner.state.get_mut().unwrap_or_else(|p| p.into_inner()) =
                TicketSlot { state: TicketState::Pending, waiting: 0, interrupted: false };
            self
        } else {
            Ticket::new(correlation_id)
        }
    }

    /// The ticket for reuse ([`renew`](Self::renew)) if no one else holds it and its outcome
    /// was taken.
    pub(super) fn into_spare(mut self) -> Option<Ticket> {
        let inner = Arc::get_mut(&mut self.inner)?;
        let taken = matches!(inner.state.get_mut().unwrap_or_else(|p| p.into_inner()).state, TicketState::Taken);
        taken.then_some(self)
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
    pub fn wait(&self, timeout: Option<Duration>) -> Result<PushResult, Error> {
        self.wait_until(timeout.map(|t| Instant::now() + t))
    }

    /// [`wait`](Self::wait) until an instant (`None` = forever); reads no clock when the
    /// outcome is already there.
    pub(super) fn wait_until(&self, deadline: Option<Instant>) -> Result<PushResult, Error> {
        let mut slot = self.lock();
        loop {
            match std::mem::replace(&mut slot.state, TicketState::Taken) {
                TicketState::Done(result) => return result,
                TicketState::Taken => {
                    return Err(Error::invalid_argument("the push's outcome was already taken"))
                }
                TicketState::Pending => slot.state = TicketState::Pending,
            }
            if std::mem::take(&mut slot.interrupted) {
                return Err(Error::Interrupted(
                    format!("the wait for push {} was interrupted", self.inner.correlation_id).into(),
                ));
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

    /// Ends one wait for the outcome with `Interrupted`: the one blocked now, or the next one if
    /// none is. The push goes on; its outcome stays for a later wait. Callable from any thread.
    pub fn interrupt(&self) {
        let mut slot = self.lock();
        slot.interrupted = true;
        if slot.waiting > 0 {
            self.inner.done.notify_all();
        }
    }

    pub(super) fn complete(&self, result: Result<PushResult, Error>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn the_first_outcome_is_kept_and_taken_once() {
        let t = Ticket::new(7);
        assert_eq!(t.correlation_id(), 7);
        assert!(!t.is_done());
        t.complete(Ok(PushResult::Reply(b"first".to_vec())));
        // A late deadline or disconnect after the reply changes nothing.
        t.complete(Err(Error::Closed("late".into())));
        assert!(t.is_done());
        assert_eq!(t.wait(Some(Duration::ZERO)).unwrap(), PushResult::Reply(b"first".to_vec()));
        assert_eq!(t.wait(None).unwrap_err().kind(), ErrorKind::InvalidArgument);
        // Nor does a completion after the outcome was taken.
        t.complete(Ok(PushResult::Reply(b"again".to_vec())));
        assert_eq!(t.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn only_a_ticket_held_once_with_its_outcome_taken_is_reused() {
        // Pending, held once: not reusable.
        assert!(Ticket::new(1).into_spare().is_none());
        // Done but not taken, held once: not reusable.
        let done = Ticket::new(2);
        done.complete(Ok(PushResult::Reply(b"x".to_vec())));
        assert!(done.into_spare().is_none());
        let t = Ticket::new(3);
        t.complete(Ok(PushResult::Reply(b"x".to_vec())));
        t.wait(Some(Duration::ZERO)).unwrap();
        // Taken, but someone else holds it: not reusable.
        let other = t.clone();
        assert!(t.into_spare().is_none());
        let t = other.into_spare().expect("taken and held once");
        let t = t.renew(9);
        assert_eq!(t.correlation_id(), 9);
        assert!(!t.is_done());
        t.complete(Ok(PushResult::Reply(b"y".to_vec())));
        assert_eq!(t.wait(Some(Duration::ZERO)).unwrap(), PushResult::Reply(b"y".to_vec()));
    }

    #[test]
    fn an_interrupt_ends_one_wait_and_the_outcome_stays() {
        let t = Ticket::new(3);
        // No one waits yet: the next wait takes it at once, the one after waits as usual.
        t.interrupt();
        assert_eq!(t.wait(None).unwrap_err().kind(), ErrorKind::Interrupted);
        assert_eq!(t.wait(Some(Duration::from_millis(5))).unwrap_err().kind(), ErrorKind::Timeout);
        // A wait blocked without a limit is woken.
        let waiter = {
            let t = t.clone();
            std::thread::spawn(move || t.wait(None))
        };
        while t.lock().waiting == 0 {
            std::thread::yield_now();
        }
        t.interrupt();
        assert_eq!(waiter.join().unwrap().unwrap_err().kind(), ErrorKind::Interrupted);
        // An outcome that is there wins over an interrupt.
        t.complete(Ok(PushResult::Reply(b"r".to_vec())));
        t.interrupt();
        assert_eq!(t.wait(None).unwrap(), PushResult::Reply(b"r".to_vec()));
    }

    #[test]
    fn a_wait_ends_at_its_limit_and_the_outcome_stays_for_later() {
        let t = Ticket::new(1);
        let started = Instant::now();
        assert_eq!(t.wait(Some(Duration::from_millis(20))).unwrap_err().kind(), ErrorKind::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(!t.is_done());
        assert_eq!(t.lock().waiting, 0, "a waiter that timed out is no longer counted");
        t.complete(Err(Error::Closed("worker gone".into())));
        assert_eq!(t.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::Closed);
    }

    #[test]
    fn a_completion_wakes_every_waiter_and_exactly_one_takes_it() {
        let t = Ticket::new(3);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || t.wait(Some(Duration::from_secs(10))))
            })
            .collect();
        let until = Instant::now() + Duration::from_secs(10);
        while t.lock().waiting < 3 {
            assert!(Instant::now() < until, "the waiters never waited");
            std::thread::sleep(Duration::from_millis(1));
        }
        t.complete(Ok(PushResult::Reply(b"x".to_vec())));
        let results: Vec<_> = waiters.into_iter().map(|h| h.join().unwrap()).collect();
        let taken = results.iter().filter(|r| r.as_ref().is_ok_and(|o| *o == PushResult::Reply(b"x".to_vec()))).count();
        let refused = results.iter().filter(|r| r.as_ref().is_err_and(|e| e.kind() == ErrorKind::InvalidArgument)).count();
        assert_eq!((taken, refused), (1, 2), "{results:?}");
    }
}
