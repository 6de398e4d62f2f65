//! The broker server: answers Hellos from a service table, optionally hands the client's
//! connection to the backend, and answers a few admin verbs.
//!
//! One event-loop thread serves every connection (no thread per client), so a slow or silent
//! client never holds up others; each connection must finish its first frame before a
//! deadline. A handoff (descriptor passing and the wait for the backend's ack) runs on a short
//! helper thread of its own, at most [`MAX_CONCURRENT_HANDOFFS`] at once; beyond that clients
//! are simply not offered a handoff and reconnect to `backend_pipe`.
//!
//! The parts: this file (the public types and the server's handle), `services` (the service
//! table and version policy), `hello` (a connection's first frame and its answer), `admin` (the
//! admin verbs), `event_loop` (connections, limits through [`Acceptor`](crate::transport::Acceptor), rate
//! limits, refusals) and `handoff` (passing a connection to the backend).

mod admin;
mod event_loop;
mod handoff;
mod hello;
mod services;

pub(crate) use hello::fuzz_client_stream;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

use crate::control::Refusal;
use crate::error::Error;
use crate::event_queue::EventQueue;
use crate::handoff::HandoffStore;
use crate::stats::{BrokerServerCounters, BrokerServerStats};
use crate::transport::{Endpoint, ListenOptions, Listener, PeerCredentials, SocketAccess};

/// Most handoffs in progress at once.
pub const MAX_CONCURRENT_HANDOFFS: usize = 64;

/// One service the broker knows.
#[derive(Debug, Clone, Default)]
pub struct BrokerService {
    /// Service name (1–64 characters of `[a-z0-9-]`).
    pub service_name: String,
    /// The backend endpoint sent as `Negotiated.backend_pipe`.
    pub backend_pipe: String,
    /// The backend's version, sent as `Negotiated.daemon_version`.
    pub daemon_version: String,
    /// When non-empty, only these wanted versions are served (others: VERSION_BLOCKED, retry
    /// 30000 ms, as the reference's `version_allow_list`).
    pub allowed_versions: Vec<String>,
    /// Wanted versions refused with VERSION_BLOCKED (no retry hint; a librp addition).
    pub blocked_versions: Vec<String>,
    /// When non-empty, wanted versions below it are refused with VERSION_BLOCKED, retry 30000 ms.
    pub min_version: String,
    /// The backend's handoff socket: when set, capable clients are offered a handoff.
    pub handoff_endpoint: Option<Endpoint>,
    /// Where issued tokens are also stored, for a backend in this process that checks them
    /// (the backend must know the token to accept the offer).
    pub handoff_store: Option<Arc<HandoffStore>>,
}

/// How a broker server is set up.
#[derive(Debug, Clone)]
pub struct BrokerServerOptions {
    /// Where to listen (a Unix socket path or `@abstract` name).
    pub endpoint: Endpoint,
    /// The service table.
    pub services: Vec<BrokerService>,
    /// Accept peers of other users (default: refused with PEER_REJECTED).
    pub allow_other_uids: bool,
    /// Who may reach a path socket's file (default: its owner only).
    pub socket_access: SocketAccess,
    /// Time a connection has to send its first frame (default 5 s).
    pub hello_timeout: Duration,
    /// Hellos allowed per peer uid per window (default 256).
    pub rate_limit: u32,
    /// The rate-limit window (default 1 s).
    pub rate_window: Duration,
    /// How long to wait for the backend's HandoffAck (default 1.5 s).
    pub handoff_ack_timeout: Duration,
    /// Most connections at once; more are refused with RATE_LIMITED (default 4096).
    pub max_connections: usize,
    /// Most connections at once from one peer uid, so one user cannot take every connection;
    /// more are refused with RATE_LIMITED (default 2048).
    pub max_connections_per_uid: usize,
    /// Queue a [`BrokerEvent`] for every Hello answered, for [`BrokerServer::next_event`]
    /// (default off). At most 4096 wait; beyond that new ones are counted, not kept.
    pub events: bool,
}

/// What the broker did with one connection, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// A Hello was answered with Negotiated.
    Negotiated {
        /// Kernel-reported credentials of the client.
        peer: Option<PeerCredentials>,
        /// The service asked for.
        service: String,
        /// The version asked for.
        wanted_version: String,
        /// The connection id given.
        connection_id: u64,
        /// Whether the connection is being handed to the backend.
        handoff: bool,
    },
    /// A connection was refused.
    Refused {
        /// Kernel-reported credentials of the client.
        peer: Option<PeerCredentials>,
        /// The service asked for ("" when refused before a Hello was read).
        service: String,
        /// The refusal sent.
        refusal: Refusal,
    },
}

/// Most events kept waiting for [`BrokerServer::next_event`].
const MAX_QUEUED_EVENTS: usize = 4096;

impl BrokerServerOptions {
    /// Options with defaults for everything but the endpoint and services.
    pub fn new(endpoint: Endpoint, services: Vec<BrokerService>) -> Self {
        BrokerServerOptions {
            endpoint,
            services,
            allow_other_uids: false,
            socket_access: SocketAccess::default(),
            hello_timeout: Duration::from_secs(5),
            rate_limit: 256,
            rate_window: Duration::from_secs(1),
            handoff_ack_timeout: Duration::from_millis(1500),
            max_connections: 4096,
            max_connections_per_uid: 2048,
            events: false,
        }
    }
}

/// A running broker server. Methods take `&self` and may be called from any thread.
#[derive(Debug)]
pub struct BrokerServer {
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    thread: Mutex<Option<JoinHandle<()>>>,
    endpoint: Endpoint,
}

#[derive(Debug)]
struct Shared {
    shutting_down: AtomicBool,
    stop: AtomicBool,
    handoffs_in_progress: AtomicUsize,
    events_enabled: bool,
    events: EventQueue<BrokerEvent>,
    /// Counters for [`BrokerServer::stats`] and the METRICS admin verb.
    stats: BrokerServerCounters,
    started: Instant,
}

impl Shared {
    fn new(events_enabled: bool) -> Result<Shared, Error> {
        Ok(Shared {
            shutting_down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            handoffs_in_progress: AtomicUsize::new(0),
            events_enabled,
            events: EventQueue::new(MAX_QUEUED_EVENTS, false)?,
            stats: BrokerServerCounters::default(),
            started: Instant::now(),
        })
    }

    fn emit(&self, event: BrokerEvent) {
        if self.events_enabled {
            self.events.push(event);
        }
    }
}

impl BrokerServer {
    /// Checks the service table, binds the endpoint and starts serving.
    pub fn bind(opts: BrokerServerOptions) -> Result<BrokerServer, Error> {
        for s in &opts.services {
            services::check_service(s)?;
        }
        if matches!(opts.endpoint, Endpoint::Tcp(_) | Endpoint::Tls(_)) {
            return Err(Error::invalid_argument("a broker serves Unix sockets only (peer credentials are required)"));
        }
        let listener = Listener::bind(&opts.endpoint, &ListenOptions { socket_access: opts.socket_access, ..ListenOptions::default() })?;
        let endpoint = listener.local_endpoint()?;
        let poll = Poll::new().map_err(|e| Error::io("create poller", e))?;
        let waker = Arc::new(Waker::new(poll.registry(), event_loop::WAKER).map_err(|e| Error::io("create waker", e))?);
        let shared = Arc::new(Shared::new(opts.events)?);
        let mut event_loop = event_loop::EventLoop::new(opts, listener, poll, Arc::clone(&shared))?;
        let thread = std::thread::Builder::new()
            .name("rp-broker".into())
            .spawn(move || event_loop.run())
            .map_err(|e| Error::io("spawn broker thread", e))?;
        Ok(BrokerServer { shared, waker, thread: Mutex::new(Some(thread)), endpoint })
    }

    /// The endpoint actually bound.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Takes the next event, waiting up to `timeout` (`None` = forever). Requires
    /// [`BrokerServerOptions::events`]. Fails with `Timeout`, or `Closed` once shut down.
    pub fn next_event(&self, timeout: Option<Duration>) -> Result<BrokerEvent, Error> {
        if !self.shared.events_enabled {
            return Err(Error::invalid_argument("events are not enabled on this broker"));
        }
        self.shared.events.pop(timeout, "the broker is shut down")
    }

    /// What the broker did since it was bound (the METRICS admin verb reports the same).
    pub fn stats(&self) -> BrokerServerStats {
        self.shared.stats.snapshot()
    }

    /// Events not kept because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.shared.events.dropped()
    }

    /// From now on every Hello is refused with SHUTTING_DOWN (the admin verb SHUTDOWN does
    /// the same). The server keeps running until [`shutdown`](Self::shutdown) or drop.
    pub fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::Release);
    }

    /// Stops serving and closes every connection. Idempotent; waits for the event loop.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.events.close();
        let _ = self.waker.wake();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for BrokerServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

