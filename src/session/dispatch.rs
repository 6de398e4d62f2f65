//! The dispatch loop: take the peer's requests and hand each to a handler on the calling
//! thread. The C API's `rp_session_dispatch` is a thin wrapper over it.

use std::time::Duration;

use super::{Request, Session};
use crate::error::Error;

impl Session {
    /// Takes the peer's requests and runs `serve` for each, on the calling thread; `serve` owns
    /// the request (it answers it now, or later from any thread).
    ///
    /// Waits up to `first_wait` (`None` = no limit) for the first request, then serves those
    /// already waiting. Requests whose deadline passed while they waited are answered with
    /// `Timeout` and not served.
    ///
    /// Returns how many requests were served, and `Ok` (at least one), a `Timeout` (none came)
    /// or the error that ended the loop (`Closed` once the session has ended). Several threads
    /// may dispatch at once; each request goes to one.
    pub fn dispatch(&self, first_wait: Option<Duration>, mut serve: impl FnMut(Request)) -> (usize, Result<(), Error>) {
        let mut handled = 0usize;
        loop {
            let wait = if handled == 0 { first_wait } else { Some(Duration::ZERO) };
            match self.poll_request(wait) {
                Ok(Some(request)) => serve(request),
                Ok(None) if handled > 0 => return (handled, Ok(())),
                Ok(None) => return (handled, Err(Error::Timeout("no request arrived".into()))),
                Err(e) => return (handled, Err(e)),
            }
            handled += 1;
        }
    }
}
