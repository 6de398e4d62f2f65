//! The server side: accept workers, keep their registrations, push work, collect replies.
//!
//! One event-loop thread serves every worker (no thread per worker): it accepts connections,
//! runs handshakes, reads replies and enforces deadlines. A thread that pushes writes the push
//! to the worker's socket itself, and a thread waiting in [`PushServer::push_wait`] reads the
//! reply itself (taking that worker's socket out of the event loop's epoll set meanwhile), so a
//! synchronous push costs no thread hop inside the server. User code never runs on the event
//! loop: registration decisions and connect/disconnect notices are queued as [`ServerEvent`]s
//! that the application takes with [`PushServer::next_event`] on its own thread.
//!
//! The pieces: [`types`] (what the API takes and gives), [`ticket`] (an outcome completed and
//! taken once), [`link`] (one worker connection), [`shared`] (state shared with the event loop,
//! and writing a push), [`read_path`] (the caller reading its own reply), [`event_loop`] and
//! [`parse`] (frames a worker sends). The API, [`PushServer`], is here.
mod event_loop;
mod link;
mod parse;
mod read_path;
mod shared;
mod ticket;
mod types;

use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

use super::now_unix_ms;
use crate::error::Error;
use crate::event_queue::EventQueue;
use crate::idmap::IdMap;
use crate::stats::PushServerStats;
use crate::transport::{Endpoint, ListenOptions, Listener, RawDescriptor, TlsServerConfig};
use event_loop::{EventLoop, MAX_QUEUED_EVENTS, WAKER};
use shared::{Command, Shared};

pub(crate) use parse::fuzz_worker_stream;
pub use ticket::Ticket;
pub use types::{PushResult, PushSpec, RegistrationDecision, ServerEvent, ServerOptions, Target, WorkerInfo};

/// A running push server. Methods take `&self` and may be called from any thread.
#[derive(Debug)]
pub struct PushServer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    endpoint: Endpoint,
}

impl PushServer {
    /// Binds the endpoint and starts serving.
    pub fn bind(opts: ServerOptions) -> Result<PushServer, Error> {
        let tls = opts.tls.as_ref().map(TlsServerConfig::new).transpose()?;
        // Reachable from elsewhere: plain TCP needs the token; TLS the token or required client
        // certificates.
        let certified = tls.as_ref().is_some_and(TlsServerConfig::requires_client_certificates);
        if opts.allow_remote_tcp && opts.auth_token.is_empty() && !certified {
            return Err(Error::Config(
                if tls.is_some() {
                    "a TLS server reachable from other hosts requires client certificates (required) or an auth token"
                } else {
                    "a server reachable from other hosts requires an auth token (or TLS with required client certificates)"
                }
                .into(),
            ));
        }
        let listen = ListenOptions { allow_remote_tcp: opts.allow_remote_tcp, socket_access: opts.socket_access, tls };
        let listener = Listener::bind(&opts.endpoint, &listen)?;
        let endpoint = listener.local_endpoint()?;
        let poll = Poll::new().map_err(|e| Error::io("create poller", e))?;
        let waker = Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("create waker", e))?;
        let registry = poll.registry().try_clone().map_err(|e| Error::io("clone poller", e))?;
        let shared = Arc::new(Shared {
            waker,
            registry,
            max_send_buffer: opts.max_send_buffer,
            commands: Mutex::new(VecDeque::new()),
            workers: Mutex::new(BTreeMap::new()),
            links: RwLock::new(IdMap::default()),
            in_flight: Mutex::new(IdMap::default()),
            parked: Mutex::new(HashSet::new()),
            deadlines: Mutex::new(BinaryHeap::new()),
            loop_wakes_at: AtomicU64::new(u64::MAX),
            round_robin: AtomicU64::new(0),
            events: EventQueue::new(MAX_QUEUED_EVENTS, true)?,
            events_enabled: opts.events || opts.decide_registrations,
            next_correlation: AtomicU64::new(1),
            spare_tickets: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            stats: Arc::default(),
        });
        let mut event_loop = EventLoop::new(opts, listener, poll, Arc::clone(&shared))?;
        let thread = std::thread::Builder::new()
            .name("rp-push-server".into())
            .spawn(move || event_loop.run())
            .map_err(|e| Error::io("spawn server thread", e))?;
        Ok(PushServer { shared, thread: Mutex::new(Some(thread)), endpoint })
    }

    /// The endpoint actually bound (with the real port for `tcp://host:0`).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Starts a push and returns its ticket at once; the push is written from the calling
    /// thread. Failures to deliver (no such worker, send buffer full, worker gone) arrive
    /// through the ticket.
    pub fn push(&self, target: Target, spec: PushSpec) -> Result<Ticket, Error> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed("the server is shut down".into()));
        }
        crate::wire::trace_context_fits(&spec.traceparent, &spec.tracestate).map_err(Error::invalid_argument)?;
        let ticket = Ticket::new(self.shared.next_correlation.fetch_add(1, Ordering::Relaxed));
        if let Some(link) = self.shared.start_push(&target, &spec, spec.deadline_unix_ms, &ticket) {
            self.shared.enforce_deadline(spec.deadline_unix_ms, ticket.correlation_id());
            // The event loop reads the reply: a link parked by `push_wait` goes back in its set.
            if link.lock_io().parked {
                self.shared.unpark(&link);
            }
        }
        Ok(ticket)
    }

    /// Pushes and waits up to `timeout` for the reply, reading it on the calling thread when no
    /// other thread is reading that worker's connection. Without a deadline of its own the push
    /// gets `now + timeout` as its deadline, so the worker drops it when the caller stops waiting.
    pub fn push_wait(&self, target: Target, spec: PushSpec, timeout: Duration) -> Result<PushResult, Error> {
        self.push_wait_ref(&target, &spec, timeout)
    }

    /// [`push_wait`](Self::push_wait) on a borrowed target and job, which are copied nowhere
    /// but into the frame.
    pub fn push_wait_ref(&self, target: &Target, spec: &PushSpec, timeout: Duration) -> Result<PushResult, Error> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed("the server is shut down".into()));
        }
        crate::wire::trace_context_fits(&spec.traceparent, &spec.tracestate).map_err(Error::invalid_argument)?;
        let now = Instant::now();
        let now_ms = now_unix_ms();
        let deadline_unix_ms = match spec.deadline_unix_ms {
            0 => now_ms + timeout.as_millis().max(1) as u64,
            own => own,
        };
        let wait_until = now + timeout + Duration::from_millis(50);
        let expires = now + Duration::from_millis(deadline_unix_ms.saturating_sub(now_ms));
        let ticket = self.shared.new_ticket();
        if let Some(link) = self.shared.start_push(target, spec, deadline_unix_ms, &ticket) {
            // While this thread reads the reply itself it also keeps the deadline, so a push
            // answered in time never enters the event loop's deadline heap.
            self.shared.read_until_done(&link, &ticket, expires.min(wait_until), now);
            if !ticket.is_done() {
                // Another thread reads this worker, or the deadline came: the loop takes over.
                self.shared.enforce_deadline(deadline_unix_ms, ticket.correlation_id());
            }
        }
        let outcome = ticket.wait_until(Some(wait_until));
        self.shared.recycle_ticket(ticket);
        outcome
    }

    /// The registered workers.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        // A worker's pushes in flight are counted on its link, where the push path keeps them.
        let links = self.shared.links.read().unwrap_or_else(|p| p.into_inner());
        let workers = self.shared.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers
            .values()
            .map(|w| WorkerInfo {
                in_flight: links.get(&w.id).map_or(0, |l| l.in_flight_count.load(Ordering::Relaxed)),
                ..w.clone()
            })
            .collect()
    }

    /// What the server did since it was bound; cheap enough to call often.
    pub fn stats(&self) -> PushServerStats {
        let mut s = self.shared.stats.snapshot();
        s.workers_registered = self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).len() as u64;
        s.pushes_in_flight = self.shared.lock_in_flight().len() as u64;
        s
    }

    /// Answers a [`ServerEvent::RegistrationRequest`].
    pub fn decide(&self, worker_id: u64, decision: RegistrationDecision) -> Result<(), Error> {
        self.command(Command::Decide { worker_id, decision })
    }

    /// Disconnects a worker; its outstanding pushes fail with `Closed`.
    pub fn disconnect(&self, worker_id: u64) -> Result<(), Error> {
        self.command(Command::Disconnect { worker_id })
    }

    /// Takes the next event, waiting up to `timeout` (`None` = forever). Requires
    /// `ServerOptions::events` or `decide_registrations`.
    pub fn next_event(&self, timeout: Option<Duration>) -> Result<ServerEvent, Error> {
        if !self.shared.events_enabled {
            return Err(Error::invalid_argument("events are not enabled on this server"));
        }
        self.shared.events.pop(timeout, "the server is shut down")
    }

    /// A descriptor readable while an event is waiting or the server is shut down. Owned by the
    /// server.
    pub fn event_fd(&self) -> RawDescriptor {
        self.shared.events.signal_fd().expect("the server's event queue is pollable")
    }

    /// Stops serving: every worker is disconnected and every outstanding push fails with
    /// `Closed`. Idempotent; blocks until the event loop has finished.
    pub fn shutdown(&self) {
        if !self.shared.stopping.swap(true, Ordering::AcqRel) {
            self.shared.command(Command::Stop);
        }
        self.shared.events.close();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn command(&self, c: Command) -> Result<(), Error> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed("the server is shut down".into()));
        }
        self.shared.command(c);
        Ok(())
    }
}

impl Drop for PushServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
