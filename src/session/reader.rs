//! The reader role: the reader thread, and a waiting thread that reads for itself while the
//! connection is parked out of the reader thread's epoll set.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::inner::Inner;
use super::route::route;
use crate::error::Error;
use crate::own_read::read_in_slices;

/// While the connection is parked out of the reader thread's set, how often that thread looks
/// whether anyone still reads for itself; when no one does, it takes the connection back.
/// This bounds how long a frame no one waits for (a cancel, a response to a call no one waits
/// on yet) can sit unread after a burst of calls. A session whose requests are taken by a poll
/// loop (`request_fd`) is never left parked.
const PARKED_RECHECK: Duration = Duration::from_millis(10);

/// The reader thread: whenever the connection is readable and no other thread holds the
/// reader role, reads and routes what arrived; ends the session when the connection ends.
/// While the connection is parked it looks every [`PARKED_RECHECK`] whether it may take it
/// back.
pub(super) fn read_frames(inner: Arc<Inner>) {
    // Decrypted bytes a TLS connection took in with its handshake make the socket no more
    // readable: they are routed before the first wait.
    if inner.conn.has_buffered_input() {
        if let Ok(role) = inner.reading.try_lock() {
            let read = route_available(&inner);
            drop(role);
            if let Err(reason) = read {
                inner.conn.close();
                inner.end(reason);
                return;
            }
        }
    }
    let reason: Cow<'static, str> = loop {
        let parked = inner.parked.load(Ordering::Acquire);
        let woke = match inner.reader_set.wait(parked.then_some(PARKED_RECHECK)) {
            Ok(woke) => woke,
            Err(e) => break format!("connection failed: {e}").into(),
        };
        inner.park.drain();
        if let Some(reason) = inner.lock().closed.clone() {
            break reason; // ended meanwhile (and woken for it)
        }
        // A thread reading for itself has the connection.
        let Ok(role) = inner.reading.try_lock() else { continue };
        if inner.parked.load(Ordering::Acquire) {
            if woke {
                continue; // just parked: let the next call find it so
            }
            // No one has read for itself for a while: take the connection back.
            let _ = inner.reader_set.set_member(inner.conn.socket_fd(), true);
            inner.parked.store(false, Ordering::Release);
        }
        let read = route_available(&inner);
        drop(role);
        if let Err(reason) = read {
            break reason;
        }
        if let Some(reason) = inner.lock().closed.clone() {
            break reason; // ended by a thread that was reading for itself
        }
    };
    inner.conn.close();
    inner.end(reason);
}

/// Frames routed at most per read, so a thread reading for itself looks at what it waits
/// for between batches.
const READ_BATCH: usize = 256;

/// Reads from the connection, waiting up to `wait` for a complete frame (zero: only what is
/// there), and routes the frames that completed (at most [`READ_BATCH`]). The caller holds
/// the reader role. Returns how many frames were routed (0: none in time), or why the session
/// must end.
#[inline]
fn read_once(inner: &Arc<Inner>, wait: Duration) -> Result<usize, Cow<'static, str>> {
    let mut violation = None;
    let got = inner.conn.recv_each(Some(wait), READ_BATCH, |frame| {
        if violation.is_none() {
            violation = route(inner, &frame).err();
        }
    });
    if let Some(why) = violation {
        return Err(why);
    }
    match got {
        Ok(n) => Ok(n),
        Err(Error::Timeout(_)) => Ok(0),
        Err(Error::Closed(m)) => Err(m),
        Err(e) => {
            if e.kind() == crate::ErrorKind::NoMemory {
                inner.no_memory.store(true, Ordering::Relaxed);
                return Err(format!("a frame did not fit in memory: {e}").into());
            }
            Err(format!("connection failed: {e}").into())
        }
    }
}

/// Routes what the connection has now without waiting: a read if nothing complete is
/// buffered, then batches until no complete frame is left buffered and no decrypted bytes of a
/// TLS connection wait (where no `poll` would see them). The caller holds the reader role.
fn route_available(inner: &Arc<Inner>) -> Result<(), Cow<'static, str>> {
    while read_once(inner, Duration::ZERO)? == READ_BATCH || inner.conn.has_buffered_input() {}
    Ok(())
}

/// Reads the connection on the calling thread until `done` is true, `until` passes or the
/// session ends — if no other thread holds the reader role. The connection is parked out of
/// the reader thread's epoll set meanwhile (and stays so for the next thread that reads for
/// itself), so that thread sleeps instead of waking for each frame (see [`crate::own_read`]).
/// Returns false when another thread is reading (wait for it to route instead) or the session
/// has ended with nothing done. `now` is a reading of the clock the caller took just before,
/// if it has one (see [`read_in_slices`]).
pub(super) fn read_while(
    inner: &Arc<Inner>,
    until: Option<Instant>,
    now: Option<Instant>,
    mut done: impl FnMut() -> bool,
) -> bool {
    let now = until.map(|_| now.unwrap_or_else(Instant::now));
    if until.zip(now).is_some_and(|(u, now)| u <= now) {
        return false; // no time to read: do not park the connection for nothing
    }
    let Ok(role) = inner.reading.try_lock() else { return false };
    if !inner.parked.load(Ordering::Acquire) {
        let _ = inner.reader_set.set_member(inner.conn.socket_fd(), false);
        inner.parked.store(true, Ordering::Release);
        // The reader thread may be waiting without a time limit: tell it to recheck.
        inner.park.notify();
    }
    // Blocking reads with the socket's timeout (set again only when it changes).
    let read = read_in_slices(until, now, || done() || inner.lock().closed.is_some(), |wait| read_once(inner, wait).map(drop));
    let (looked, mut ended) = match read {
        Ok(looked) => (looked, None),
        Err(why) => (true, Some(why)),
    };
    if ended.is_none() {
        // Frames that completed with the ones waited for, and stay buffered (or decrypted and
        // held by a TLS connection), are routed now: the reader thread's poll would not see them.
        while inner.conn.has_buffered_input() {
            if let Err(why) = read_once(inner, Duration::ZERO) {
                ended = Some(why);
                break;
            }
        }
    }
    if inner.signal_used.load(Ordering::Acquire) {
        // A poll loop waits on `request_fd`: requests must not wait for the recheck, so the
        // reader thread gets the connection back at once.
        let _ = inner.reader_set.set_member(inner.conn.socket_fd(), true);
        inner.parked.store(false, Ordering::Release);
    }
    drop(role);
    if let Some(why) = ended {
        inner.conn.close();
        inner.end(why);
    }
    // Nothing to read for (the session had ended): let the caller wait as usual.
    looked || done()
}

