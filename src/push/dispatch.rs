//! Dispatch loops: receive and hand each item to a handler on the calling thread. The C API's
//! `rp_push_worker_dispatch` / `rp_push_server_dispatch` are thin wrappers over these.

use std::time::Duration;

use super::{Push, Worker};
use crate::error::{Error, ErrorKind};

/// Upper bound of items handled by one dispatch call: `max` 0 means no limit.
pub(crate) fn dispatch_limit(max: usize) -> usize {
    if max == 0 {
        usize::MAX
    } else {
        max
    }
}

impl Worker {
    /// Receives pushes and runs `handler` for each, on the calling thread.
    ///
    /// Waits up to `first_wait` (`None` = no limit) for the first push, then handles those
    /// already waiting, at most `max_pushes` in all (0 = no limit). `handler` returns 0 when it
    /// handled the push; any other value is a failure code: if the push is still unanswered, it
    /// is answered with a failure carrying that code.
    ///
    /// Returns how many pushes were handled, and `Ok` (at least one handled), a `Timeout` (none
    /// came) or the error that ended the loop (`Closed`, ...) — handled pushes count either way.
    pub fn dispatch(
        &self,
        first_wait: Option<Duration>,
        max_pushes: usize,
        mut handler: impl FnMut(&Push) -> i32,
    ) -> (usize, Result<(), Error>) {
        let limit = dispatch_limit(max_pushes);
        let mut handled = 0usize;
        while handled < limit {
            let wait = if handled == 0 { first_wait } else { Some(Duration::ZERO) };
            let job = match self.recv(wait) {
                Ok(job) => job,
                Err(e) if handled > 0 && e.kind() == ErrorKind::Timeout => break,
                Err(e) => return (handled, Err(e)),
            };
            let code = handler(&job);
            handled += 1;
            if code != 0 && self.is_outstanding(job.correlation_id) {
                let message = format!("the handler returned status {code}");
                let _ = self.reply_error(job.correlation_id, code, &message);
            }
        }
        (handled, Ok(()))
    }
}

impl super::PushServer {
    /// Handles pending server events on the calling thread.
    ///
    /// Waits up to `first_wait` (`None` = no limit) for the first event, then handles those
    /// already waiting. A registration request is answered with what `decide` returns for the
    /// worker (its `in_flight` is 0); every other event goes to `on_event`.
    ///
    /// Returns how many events were handled, and `Ok` (at least one), a `Timeout` (none came)
    /// or the error that ended the loop (`Closed` once the server is shut down).
    pub fn dispatch(
        &self,
        first_wait: Option<Duration>,
        mut decide: impl FnMut(&super::WorkerInfo) -> super::RegistrationDecision,
        mut on_event: impl FnMut(super::ServerEvent),
    ) -> (usize, Result<(), Error>) {
        let mut handled = 0usize;
        loop {
            let wait = if handled == 0 { first_wait } else { Some(Duration::ZERO) };
            match self.next_event(wait) {
                Ok(super::ServerEvent::RegistrationRequest { worker_id, registration, peer, tls_identity }) => {
                    let info = super::WorkerInfo { id: worker_id, registration, peer, tls_identity, in_flight: 0 };
                    let decision = decide(&info);
                    let _ = self.decide(worker_id, decision);
                }
                Ok(event) => on_event(event),
                Err(e) if handled > 0 && e.kind() == ErrorKind::Timeout => return (handled, Ok(())),
                Err(e) => return (handled, Err(e)),
            }
            handled += 1;
        }
    }
}
