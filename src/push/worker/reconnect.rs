//! Reconnecting a worker whose connection was lost: the policy (exponential backoff with
//! jitter, an optional give-up count), the events each transition reports, and the loop that
//! dials again on a thread of its own while the connection is down.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};
use crate::transport;

/// How the delay before each attempt is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Jitter {
    /// Uniform between the minimum delay and the attempt's backoff (the default): workers that
    /// lost the same server spread out the most.
    #[default]
    Full,
    /// Half the attempt's backoff plus a uniform share of the other half (never below the
    /// minimum delay): a steadier delay, still spread.
    Equal,
}

/// When and how often a worker reconnects after losing its connection.
///
/// Attempt `n` (from 1) waits for a delay drawn from the backoff `min(max_delay, min_delay *
/// 2^(n-1))` (see [`Jitter`]), then dials the same endpoint, says the same Hello and sends the
/// same registration. Any failure — the server not there, a refused Hello, a rejected
/// registration — counts as one attempt; after `max_attempts` failed attempts (0 = never)
/// the worker gives up and ends as if closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Delay before the first attempt and lower bound of every delay (default 100 ms).
    pub min_delay: Duration,
    /// Upper bound of every delay (default 30 s).
    pub max_delay: Duration,
    /// Failed attempts in a row after which the worker gives up; 0 = never (the default).
    pub max_attempts: u32,
    /// How delays are spread (default [`Jitter::Full`]).
    pub jitter: Jitter,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: 0,
            jitter: Jitter::Full,
        }
    }
}

impl ReconnectPolicy {
    /// The backoff of attempt `attempt` (from 1), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let max = self.max_delay.max(self.min_delay);
        let doubled = self.min_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(31));
        doubled.min(max)
    }

    /// The delay before attempt `attempt` (from 1): the backoff with jitter drawn from the
    /// operating system's randomness.
    pub fn delay(&self, attempt: u32) -> Duration {
        let backoff = self.backoff(attempt);
        let (low, high) = match self.jitter {
            Jitter::Full => (self.min_delay.min(backoff), backoff),
            Jitter::Equal => ((backoff / 2).max(self.min_delay.min(backoff)), backoff),
        };
        let span = (high - low).as_micros() as u64;
        if span == 0 {
            return low;
        }
        let mut bytes = [0u8; 8];
        // Without randomness the delay is the middle of its range: still bounded, still backing off.
        let draw = match transport::fill_random(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes) % (span + 1),
            Err(_) => span / 2,
        };
        low + Duration::from_micros(draw)
    }
}

/// What happened to a worker's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerEventKind {
    /// Connected and registered: at connect (`attempt` 0), or again after a loss (`attempt` is
    /// the attempt that succeeded).
    Connected,
    /// The connection was lost; `message` says why. Pushes not yet answered on it are gone.
    Lost,
    /// Attempt `attempt` starts after `delay`; `error`/`message` say why the previous attempt
    /// failed (none for the first attempt after a loss).
    Reconnecting,
    /// The worker stopped trying after `attempt` failed attempts; `message` is the last
    /// failure. The worker is closed: `recv` fails with `Closed`.
    GaveUp,
}

/// One transition of a worker's connection, delivered to [`WorkerOptions::on_event`]
/// (and logged, component `push-worker`).
///
/// [`WorkerOptions::on_event`]: super::WorkerOptions::on_event
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerEvent {
    /// What happened.
    pub kind: WorkerEventKind,
    /// The reconnect attempt it concerns (from 1; 0 for the first connection and a loss).
    pub attempt: u32,
    /// The delay before the attempt ([`WorkerEventKind::Reconnecting`]; zero otherwise).
    pub delay: Duration,
    /// The kind of failure behind it (`Closed` for a lost connection; the failed attempt's
    /// kind for reconnecting and giving up); `None` for a connection and a first attempt.
    pub error: Option<ErrorKind>,
    /// Human-readable reason ("" when there is none).
    pub message: String,
}

impl WorkerEvent {
    pub(super) fn new(kind: WorkerEventKind, attempt: u32, delay: Duration, error: Option<&Error>) -> WorkerEvent {
        WorkerEvent { kind, attempt, delay, error: error.map(Error::kind), message: error.map(|e| e.to_string()).unwrap_or_default() }
    }
}

impl fmt::Display for WorkerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WorkerEventKind::Connected if self.attempt == 0 => write!(f, "connected"),
            WorkerEventKind::Connected => write!(f, "connected again (attempt {})", self.attempt),
            WorkerEventKind::Lost => write!(f, "connection lost: {}", self.message),
            WorkerEventKind::Reconnecting if self.message.is_empty() => {
                write!(f, "reconnecting: attempt {} in {} ms", self.attempt, self.delay.as_millis())
            }
            WorkerEventKind::Reconnecting => write!(
                f,
                "reconnecting: attempt {} in {} ms (previous attempt: {})",
                self.attempt,
                self.delay.as_millis(),
                self.message
            ),
            WorkerEventKind::GaveUp => write!(f, "gave up reconnecting after {} attempts: {}", self.attempt, self.message),
        }
    }
}

/// Receives a worker's [`WorkerEvent`]s. It runs on the thread that calls
/// [`Worker::recv`](super::Worker::recv) (or `dispatch`), inside that call, with no librp lock
/// held: it may call any method of the worker (`recv` and `dispatch` included, though events
/// then nest).
#[derive(Clone)]
pub struct EventHandler(pub Arc<dyn Fn(&WorkerEvent) + Send + Sync>);

impl EventHandler {
    /// A handler from a closure.
    pub fn new(f: impl Fn(&WorkerEvent) + Send + Sync + 'static) -> EventHandler {
        EventHandler(Arc::new(f))
    }
}

impl fmt::Debug for EventHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventHandler(..)")
    }
}

/// Events waiting for the application: at most this many (the oldest go first).
pub(super) const MAX_PENDING_EVENTS: usize = 64;

/// The reconnect thread: backs off, dials, and installs the new connection in `worker`; or
/// gives up after the policy's count; or ends at once when the worker is closed.
pub(super) fn run(worker: Arc<super::Inner>, policy: ReconnectPolicy) {
    let mut attempt = 0u32;
    let mut last: Option<Error> = None;
    loop {
        attempt = attempt.saturating_add(1);
        let delay = policy.delay(attempt);
        let event = WorkerEvent::new(WorkerEventKind::Reconnecting, attempt, delay, last.as_ref());
        crate::log!(Info, "push-worker", "{}: {event}", worker.opts.endpoint);
        if !worker.wait_before_attempt(event, Instant::now() + delay) {
            return; // closed
        }
        match worker.redial(attempt) {
            Ok(true) => {
                crate::log!(Info, "push-worker", "{}: connected again (attempt {attempt})", worker.opts.endpoint);
                return;
            }
            Ok(false) => return, // closed while dialing
            Err(e) => {
                crate::log!(Warn, "push-worker", "{}: reconnect attempt {attempt} failed: {e}", worker.opts.endpoint);
                if policy.max_attempts != 0 && attempt >= policy.max_attempts {
                    worker.give_up(attempt, &e);
                    return;
                }
                last = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_jitter_stays_in_range() {
        let p = ReconnectPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_attempts: 0,
            jitter: Jitter::Full,
        };
        let b: Vec<u128> = (1..=6).map(|n| p.backoff(n).as_millis()).collect();
        assert_eq!(b, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_millis(1000));
        for n in 1..=8 {
            let d = p.delay(n);
            assert!(d >= p.min_delay && d <= p.backoff(n), "{d:?}");
            let e = ReconnectPolicy { jitter: Jitter::Equal, ..p }.delay(n);
            assert!(e >= p.backoff(n) / 2 && e >= p.min_delay && e <= p.backoff(n), "{e:?}");
        }
        let spread: std::collections::HashSet<_> = (0..32).map(|_| p.delay(5)).collect();
        assert!(spread.len() > 1, "full jitter draws different delays");
    }
}
