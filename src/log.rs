//! The process-wide log facility: silent until a sink is set.
//!
//! Roles report what a user needs to debug a deployment (connections refused and why,
//! registrations, workers lost, protocol violations, timeouts) with [`log!`](crate::log!).
//! Without a sink nothing is formatted: a log call costs one relaxed atomic load.
//!
//! The sink runs on the thread that noticed the event — the push server's or broker's event
//! loop thread, a session's reader thread, or the application's own thread inside a librp call
//! — and no librp lock is held while it runs, so it may call back into librp (including
//! [`set_sink`]).

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// How much an event matters. Lower is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Something failed that librp cannot recover from on its own.
    Error = 1,
    /// A peer was refused or misbehaved, a timeout passed, a worker was lost.
    Warn = 2,
    /// A connection or registration was accepted, a session ended normally.
    Info = 3,
    /// Details for tracing a problem.
    Debug = 4,
}

impl Level {
    /// The level of a number (1 = error ... 4 = debug); `None` otherwise.
    pub fn from_u8(n: u8) -> Option<Level> {
        match n {
            1 => Some(Level::Error),
            2 => Some(Level::Warn),
            3 => Some(Level::Info),
            4 => Some(Level::Debug),
            _ => None,
        }
    }

    /// Lower-case name ("error", "warn", "info", "debug").
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// What receives log events: level, component (`push-server`, `push-worker`, `broker`,
/// `session`), message.
pub type Sink = dyn Fn(Level, &str, &str) + Send + Sync;

/// The most verbose level delivered; 0 = no sink (nothing is formatted).
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static SINK: RwLock<Option<Arc<Sink>>> = RwLock::new(None);

/// Sets the process-wide sink and the most verbose level it receives (`None` clears it).
///
/// The previous sink is dropped once no call of it is in progress (on the thread whose call
/// ended last, or here).
pub fn set_sink(max_level: Level, sink: Option<Arc<Sink>>) {
    let old = {
        let mut slot = SINK.write().unwrap_or_else(|p| p.into_inner());
        // Published under the lock so the level and the sink change together.
        MAX_LEVEL.store(if sink.is_some() { max_level as u8 } else { 0 }, Ordering::Relaxed);
        std::mem::replace(&mut *slot, sink)
    };
    drop(old);
}

/// True when an event at `level` would be delivered: the one check before formatting.
#[inline(always)]
pub fn enabled(level: Level) -> bool {
    (level as u8) <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Formats and delivers one event. Use [`log!`](crate::log!), which checks [`enabled`] first.
#[cold]
pub fn emit(level: Level, component: &str, args: fmt::Arguments<'_>) {
    let sink = SINK.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(sink) = sink {
        let message = fmt::format(args);
        // No lock held here: the sink may call back into librp.
        sink(level, component, &message);
    }
}

/// Logs an event: `log!(Warn, "push-server", "refused {}: {}", who, why)`. Formats nothing
/// unless a sink wants the level.
#[macro_export]
#[doc(hidden)]
macro_rules! log {
    ($level:ident, $component:expr, $($arg:tt)+) => {
        if $crate::log::enabled($crate::log::Level::$level) {
            $crate::log::emit($crate::log::Level::$level, $component, format_args!($($arg)+));
        }
    };
}

/// Shows a connection's peer in a log message: `pid 12 uid 1000`, or `a TCP peer`.
pub(crate) struct Peer(pub(crate) Option<crate::transport::PeerCredentials>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "pid {} uid {}", p.pid, p.uid),
            None => f.write_str("a TCP peer"),
        }
    }
}

/// Serialises the tests (in this crate's unit tests) that set the process-wide sink.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    #[test]
    fn silent_until_set_and_filtered_by_level() {
        let _g = TEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let formatted = AtomicUsize::new(0);
        let counting = || {
            formatted.fetch_add(1, Ordering::Relaxed);
            "x"
        };
        set_sink(Level::Debug, None);
        crate::log!(Error, "t", "{}", counting());
        assert_eq!(formatted.load(Ordering::Relaxed), 0, "no sink: the arguments are not even evaluated");

        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = Arc::clone(&seen);
        set_sink(
            Level::Warn,
            Some(Arc::new(move |l: Level, c: &str, m: &str| s2.lock().unwrap().push((l, c.to_owned(), m.to_owned())))),
        );
        crate::log!(Info, "t", "{}", counting());
        crate::log!(Warn, "t", "w {}", 1);
        set_sink(Level::Debug, None);
        crate::log!(Error, "t", "after");
        assert_eq!(formatted.load(Ordering::Relaxed), 0);
        assert_eq!(*seen.lock().unwrap(), vec![(Level::Warn, "t".to_owned(), "w 1".to_owned())]);
    }

    #[test]
    fn sink_may_replace_itself() {
        let _g = TEST_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = Arc::clone(&calls);
        set_sink(
            Level::Info,
            Some(Arc::new(move |_: Level, _: &str, _: &str| {
                c2.fetch_add(1, Ordering::Relaxed);
                set_sink(Level::Info, None);
            })),
        );
        crate::log!(Info, "t", "one");
        crate::log!(Info, "t", "two");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
