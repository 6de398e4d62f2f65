//! "The caller reads its own reply": a thread waiting for a reply on a connection that another
//! thread normally reads (a session's reader thread, the push server's event loop) reads it
//! itself while no one else does, which spares each call two thread hops.
//!
//! Every such path has the same four steps: take the connection's reader role without waiting
//! (a `try_lock`; someone else reading means "wait for them instead"), park the connection out
//! of the background reader's readiness set so it is not woken for each frame, read in slices
//! until the reply is there ([`read_in_slices`]), then let go and hand the connection back as
//! the role needs. The first, second and last steps are the role's own (the session parks its
//! one connection and tells its reader thread through a socket pair; the push server parks
//! one link of many in its event loop's set and sends it commands); the slicing is here.

use std::time::{Duration, Instant};

/// The longest one read of a thread reading for itself waits before it looks again at whether
/// what it waits for came by another way (a cancel from another thread, a deadline the
/// background reader enforced, a reply another thread routed).
pub(crate) const READ_SLICE: Duration = Duration::from_millis(20);

/// Calls `read` with a wait limit of at most [`READ_SLICE`] until `done` is true or `until`
/// passes (`None`: no limit), and stops at the first error, which it returns. `read` reads
/// and routes what arrives within its limit; `done` is looked at before every read.
///
/// `now` is a reading of the clock the caller took just before, if it has one: the first
/// slice is measured from it instead of from a new reading.
///
/// Returns whether it looked at all (false: `done` was already true, nothing was read).
#[inline(always)]
pub(crate) fn read_in_slices<E>(
    until: Option<Instant>,
    mut now: Option<Instant>,
    mut done: impl FnMut() -> bool,
    mut read: impl FnMut(Duration) -> Result<(), E>,
) -> Result<bool, E> {
    let mut looked = false;
    while !done() {
        looked = true;
        let wait = match until {
            None => READ_SLICE,
            Some(u) => {
                let left = u.saturating_duration_since(now.take().unwrap_or_else(Instant::now));
                if left.is_zero() {
                    break;
                }
                left.min(READ_SLICE)
            }
        };
        read(wait)?;
    }
    Ok(looked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_read_for_what_is_already_there() {
        let looked = read_in_slices::<()>(None, None, || true, |_| panic!("read")).unwrap();
        assert!(!looked);
    }

    #[test]
    fn reads_until_done_in_slices_of_at_most_the_slice() {
        let waits = std::cell::RefCell::new(Vec::new());
        let until = Instant::now() + Duration::from_secs(60);
        let looked = read_in_slices::<()>(Some(until), None, || waits.borrow().len() == 3, |wait| {
            waits.borrow_mut().push(wait);
            Ok(())
        });
        assert!(looked.unwrap());
        assert_eq!(waits.into_inner(), [READ_SLICE; 3]);
    }

    #[test]
    fn the_last_slice_ends_at_the_limit_and_none_follows_it() {
        let until = Instant::now() + Duration::from_millis(5);
        let mut waits = Vec::new();
        let looked = read_in_slices::<()>(Some(until), None, || false, |wait| {
            waits.push(wait);
            std::thread::sleep(wait);
            Ok(())
        });
        assert!(looked.unwrap());
        assert!(!waits.is_empty() && waits.iter().all(|w| *w <= Duration::from_millis(5)), "{waits:?}");
        assert!(Instant::now() >= until);
    }

    #[test]
    fn a_failed_read_ends_the_loop_with_its_error() {
        let mut reads = 0;
        let got = read_in_slices(None, None, || false, |_| {
            reads += 1;
            if reads == 2 {
                Err("broken")
            } else {
                Ok(())
            }
        });
        assert_eq!(got, Err("broken"));
        assert_eq!(reads, 2);
    }
}
