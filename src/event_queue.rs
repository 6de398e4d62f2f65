//! A bounded queue of events that a server's internal thread fills and the application's
//! threads drain, with a timeout, and optionally through a pollable descriptor.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::transport::{RawDescriptor, ReadySignal};

/// Events waiting for the application; at most `capacity`, beyond which new ones are counted
/// and dropped (never unbounded memory).
#[derive(Debug)]
pub(crate) struct EventQueue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
    dropped: AtomicU64,
    /// Raised while events wait, for poll loops.
    signal: Option<ReadySignal>,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> EventQueue<T> {
    /// A queue of at most `capacity` events, with a pollable descriptor when `pollable`.
    pub(crate) fn new(capacity: usize, pollable: bool) -> Result<Self, Error> {
        let signal = if pollable { Some(ReadySignal::new()?) } else { None };
        Ok(EventQueue {
            state: Mutex::new(State { items: VecDeque::new(), closed: false }),
            ready: Condvar::new(),
            capacity,
            dropped: AtomicU64::new(0),
            signal,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an event, or counts it as dropped when the queue is full.
    pub(crate) fn push(&self, item: T) {
        let mut st = self.lock();
        if st.items.len() >= self.capacity {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        st.items.push_back(item);
        if let Some(signal) = &self.signal {
            signal.set(true);
        }
        self.ready.notify_one();
    }

    /// Takes the next event, waiting up to `timeout` (`None` = forever). Fails with `Timeout`,
    /// or with `Closed` (saying `closed`) once the queue is closed and empty.
    pub(crate) fn pop(&self, timeout: Option<Duration>, closed: &'static str) -> Result<T, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                if let (true, false, Some(signal)) = (st.items.is_empty(), st.closed, &self.signal) {
                    signal.set(false);
                }
                return Ok(item);
            }
            if st.closed {
                return Err(Error::Closed(closed.into()));
            }
            st = match deadline {
                None => self.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout("no event arrived".into()));
                    }
                    self.ready.wait_timeout(st, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }

    /// No more events will come: waiters return once the queue is empty, and the descriptor
    /// stays readable (a pop then returns `Closed` at once).
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        if let Some(signal) = &self.signal {
            signal.set(true);
        }
        drop(st);
        self.ready.notify_all();
    }

    /// The descriptor readable while events wait or the queue is closed (when the queue was
    /// made pollable).
    pub(crate) fn signal_fd(&self) -> Option<RawDescriptor> {
        self.signal.as_ref().map(ReadySignal::fd)
    }

    /// Events dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_ordered_and_closable() {
        let q = EventQueue::new(2, true).unwrap();
        q.push(1);
        q.push(2);
        q.push(3);
        assert_eq!(q.dropped(), 1);
        let readable = || crate::transport::wait_readable(q.signal_fd().unwrap(), Some(Duration::ZERO)).unwrap();
        assert!(readable());
        assert_eq!(q.pop(Some(Duration::ZERO), "closed").unwrap(), 1);
        assert_eq!(q.pop(Some(Duration::ZERO), "closed").unwrap(), 2);
        assert!(matches!(q.pop(Some(Duration::from_millis(5)), "closed"), Err(Error::Timeout(_))));
        assert!(!readable());
        q.close();
        assert!(matches!(q.pop(None, "closed"), Err(Error::Closed(_))));
        // Closed: readable, so a poll loop learns it.
        assert!(readable());
    }
}
