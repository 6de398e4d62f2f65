//! One request id's exchange ([`Exchange`]): the chunks the peer streamed, the outcome, and
//! how a thread waits on it (reading the connection itself when no one else does).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::chunk_cost;
use super::inner::Inner;
use super::reader::read_while;
use crate::error::Error;

/// The shared state of one request id on one side: chunks the peer sent, the outcome.
#[derive(Debug, Default)]
pub(super) struct Exchange {
    pub(super) state: Mutex<ExchangeState>,
    pub(super) changed: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct ExchangeState {
    /// Chunks received and not yet read.
    pub(super) chunks: VecDeque<Vec<u8>>,
    /// What the unread chunks count against [`MAX_UNREAD_STREAM_BYTES`](super::MAX_UNREAD_STREAM_BYTES).
    pub(super) unread_bytes: usize,
    /// The peer sent its end of stream (or its final response).
    pub(super) peer_done: bool,
    /// Set once: the call's outcome (for calls), or why a served request ended early.
    pub(super) outcome: Option<Outcome>,
    /// This side sent its end of stream.
    pub(super) write_closed: bool,
    /// Threads waiting on `changed` (a notification is a system call; none is made for nobody).
    pub(super) waiters: usize,
    /// An interrupt no wait has taken yet ([`Exchange::interrupt`]).
    pub(super) interrupted: bool,
}

#[derive(Debug)]
pub(super) enum Outcome {
    /// The response payload, or the error it ended with; `None` once taken.
    Ready(Option<Result<Vec<u8>, Error>>),
}

impl Exchange {
    pub(super) fn lock(&self) -> MutexGuard<'_, ExchangeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the outcome once and wakes every waiter; returns false if there already was one.
    pub(super) fn finish(&self, result: Result<Vec<u8>, Error>) -> bool {
        let mut st = self.lock();
        if st.outcome.is_some() {
            return false;
        }
        st.outcome = Some(Outcome::Ready(Some(result)));
        st.peer_done = true;
        self.notify(&st);
        true
    }

    pub(super) fn is_done(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// Ok while this side may still send chunks: no outcome yet and not half-closed. `ended`
    /// is the text for an exchange that ended without an error of its own.
    pub(super) fn check_writable(&self, ended: &'static str) -> Result<(), Error> {
        let st = self.lock();
        match &st.outcome {
            Some(Outcome::Ready(Some(Err(e)))) => Err(copy_error(e)),
            Some(_) => Err(Error::Closed(ended.into())),
            None if st.write_closed => Err(Error::Closed("this side already closed its half".into())),
            None => Ok(()),
        }
    }

    /// Ends one wait on this exchange with [`WaitEnd::Interrupted`]: the one blocked now, or the
    /// next one if none is. Nothing else changes.
    pub(super) fn interrupt(&self) {
        let mut st = self.lock();
        st.interrupted = true;
        self.notify(&st);
    }

    /// Wakes the threads waiting on this exchange, if there are any.
    pub(super) fn notify(&self, st: &ExchangeState) {
        if st.waiters > 0 {
            self.changed.notify_all();
        }
    }
}

/// Copies an error that several waiters must see (errors are not `Clone`).
pub(super) fn copy_error(e: &Error) -> Error {
    match e {
        Error::Timeout(m) => Error::Timeout(m.clone()),
        Error::Closed(m) => Error::Closed(m.clone()),
        Error::Cancelled(m) => Error::Cancelled(m.clone()),
        Error::Overflow(m) => Error::Overflow(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
        Error::Peer { code, message } => Error::Peer { code: *code, message: message.clone() },
        Error::NoMemory(m) => Error::NoMemory(m.clone()),
        other => Error::Closed(other.to_string().into()),
    }
}

/// How a waiter on an exchange may read the connection itself: the session, and when what
/// it waits for has arrived.
pub(super) type ReadFor<'a> = (&'a Arc<Inner>, fn(&ExchangeState) -> bool);

/// Why [`wait_on`] returned without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitEnd {
    /// The exchange's own deadline passed.
    Deadline,
    /// Only the wait's limit passed.
    Limit,
    /// [`Exchange::interrupt`] ended the wait.
    Interrupted,
}

/// Waits on an exchange until `ready` returns a value, the wait limit or the deadline passes,
/// or the wait is interrupted. With `read_for`, the waiting thread reads and routes frames
/// itself while no other thread does (see [`read_while`]); it then notices an interrupt
/// between two reads (within [`READ_SLICE`](crate::own_read::READ_SLICE)).
pub(super) fn wait_on<T>(
    ex: &Exchange,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    read_for: Option<ReadFor<'_>>,
    mut ready: impl FnMut(&mut ExchangeState) -> Option<T>,
) -> Result<T, WaitEnd> {
    // The wait's limit counts from the first reading of the clock, taken only if the wait
    // cannot end at once.
    let mut first_until = None;
    let mut st = ex.lock();
    loop {
        if let Some(v) = ready(&mut st) {
            return Ok(v);
        }
        if std::mem::take(&mut st.interrupted) {
            return Err(WaitEnd::Interrupted);
        }
        let now = Instant::now();
        let until = *first_until.get_or_insert_with(|| timeout.map(|t| now + t));
        if deadline.is_some_and(|d| d <= now) {
            return Err(WaitEnd::Deadline);
        }
        if until.is_some_and(|u| u <= now) {
            return Err(WaitEnd::Limit);
        }
        let limit = [until, deadline].into_iter().flatten().min();
        if let Some((inner, arrived)) = read_for {
            drop(st);
            let read = read_while(inner, limit, Some(now), || {
                let st = ex.lock();
                arrived(&st) || st.interrupted
            });
            st = ex.lock();
            // Look again before sleeping: whoever reads may have routed our frame meanwhile
            // (its notification is made only to threads already waiting).
            if read || arrived(&st) || st.interrupted {
                continue;
            }
        }
        st.waiters += 1;
        st = match limit {
            None => ex.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(l) => ex.changed.wait_timeout(st, l - now).unwrap_or_else(|p| p.into_inner()).0,
        };
        st.waiters -= 1;
    }
}

/// True once a call's outcome is there.
pub(super) fn has_outcome(st: &ExchangeState) -> bool {
    st.outcome.is_some()
}

/// True once [`take_chunk`] has something to return.
pub(super) fn has_chunk_or_end(st: &ExchangeState) -> bool {
    !st.chunks.is_empty() || st.outcome.is_some() || st.peer_done
}

/// Takes a chunk, or says why there is none (ended, failed) — `None` means "wait".
pub(super) fn take_chunk(st: &mut ExchangeState) -> Option<Result<Vec<u8>, Error>> {
    if let Some(c) = st.chunks.pop_front() {
        st.unread_bytes -= chunk_cost(c.len());
        return Some(Ok(c));
    }
    match &st.outcome {
        Some(Outcome::Ready(Some(Err(e)))) => Some(Err(copy_error(e))),
        Some(_) => Some(Err(Error::Closed("the stream has ended".into()))),
        None if st.peer_done => Some(Err(Error::Closed("the stream has ended".into()))),
        None => None,
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn an_outcome_is_set_once() {
        let ex = Exchange::default();
        assert!(!ex.is_done());
        assert!(ex.finish(Ok(b"first".to_vec())));
        assert!(!ex.finish(Err(Error::Closed("late".into()))), "a second outcome is refused");
        assert!(ex.is_done());
        let got = wait_on(&ex, Some(Duration::ZERO), None, None, |st| st.outcome.as_mut().map(|Outcome::Ready(r)| r.take()));
        assert_eq!(got.unwrap().unwrap().unwrap(), b"first");
    }

    #[test]
    fn chunks_come_out_in_order_then_the_end() {
        let ex = Exchange::default();
        {
            let mut st = ex.lock();
            for c in [&b"a"[..], b"bc"] {
                st.unread_bytes += chunk_cost(c.len());
                st.chunks.push_back(c.to_vec());
            }
            st.peer_done = true;
        }
        let mut st = ex.lock();
        assert_eq!(take_chunk(&mut st).unwrap().unwrap(), b"a");
        assert_eq!(st.unread_bytes, chunk_cost(2));
        assert_eq!(take_chunk(&mut st).unwrap().unwrap(), b"bc");
        assert_eq!(st.unread_bytes, 0);
        assert_eq!(take_chunk(&mut st).unwrap().unwrap_err().kind(), ErrorKind::Closed);
    }

    #[test]
    fn a_failed_exchange_gives_its_error_to_every_reader() {
        let ex = Exchange::default();
        assert!(take_chunk(&mut ex.lock()).is_none(), "nothing yet: wait");
        assert!(ex.check_writable("ended").is_ok());
        ex.finish(Err(Error::Peer { code: 1234, message: "no".into() }));
        for _ in 0..2 {
            assert_eq!(take_chunk(&mut ex.lock()).unwrap().unwrap_err().kind(), ErrorKind::PeerError);
            assert_eq!(ex.check_writable("ended").unwrap_err().kind(), ErrorKind::PeerError);
        }
    }

    #[test]
    fn a_half_closed_exchange_is_not_writable() {
        let ex = Exchange::default();
        ex.lock().write_closed = true;
        assert_eq!(ex.check_writable("ended").unwrap_err().kind(), ErrorKind::Closed);
    }

    #[test]
    fn a_wait_ends_at_its_limit_at_the_deadline_or_at_the_outcome() {
        let ex = Arc::new(Exchange::default());
        let short = Some(Duration::from_millis(5));
        assert_eq!(wait_on(&ex, short, None, None, take_chunk).unwrap_err(), WaitEnd::Limit, "the wait limit");
        let past = Some(Instant::now());
        assert_eq!(wait_on(&ex, None, past, None, take_chunk).unwrap_err(), WaitEnd::Deadline, "the deadline");
        let finisher = {
            let ex = Arc::clone(&ex);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                ex.finish(Ok(Vec::new()))
            })
        };
        let got = wait_on(&ex, Some(Duration::from_secs(10)), None, None, |st| st.outcome.is_some().then_some(()));
        assert!(got.is_ok());
        assert!(finisher.join().unwrap());
        assert_eq!(ex.lock().waiters, 0);
    }
}
