//! The broker server: answers Hellos from a service table, optionally hands the client's
//! connection to the backend, and answers a few admin verbs.
//!
//! One event-loop thread serves every connection (no thread per client), so a slow or silent
//! client never holds up others; each connection must finish its first frame before a
//! deadline. A handoff (descriptor passing and the wait for the backend's ack) runs on a short
//! helper thread of its own, at most [`MAX_CONCURRENT_HANDOFFS`] at once; beyond that clients
//! are simply not offered a handoff and reconnect to `backend_pipe`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::UnixListener;
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token, Waker};
use prost::Message;

use crate::control::{check_hello_fields, negotiated, Refusal};
use crate::error::Error;
use crate::event_queue::EventQueue;
use crate::handoff::{self, TokenStore};
use crate::log::Peer;
use crate::stats::{self, BrokerServerCounters, BrokerServerStats};
use crate::transport::{self, Endpoint, ListenOptions, Listener, PeerCredentials};
use crate::wire::proto::{
    hello_reply, AdminReply, AdminReplyKind, AdminRequest, AdminVerb, ErrorCode, FrameKind, HandoffAck,
    Hello, HelloReply, PayloadEncoding,
};
use crate::wire::{names, registry, FrameReader, FrameView, WireError, CAP_HANDLE_PASSING, HELLO_MAX_BODY};

/// Most bytes of `AdminRequest.service_name` the broker accepts (longer: exit code 2).
pub const ADMIN_MAX_SERVICE_NAME: usize = 64;
/// Most bytes of `AdminRequest.output_path` the broker accepts (longer: exit code 2).
pub const ADMIN_MAX_OUTPUT_PATH: usize = 4096;

/// Most handoffs in progress at once.
pub const MAX_CONCURRENT_HANDOFFS: usize = 64;

/// One service the broker knows.
#[derive(Debug, Clone, Default)]
pub struct ServiceEntry {
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
    pub handoff_store: Option<Arc<TokenStore>>,
}

/// How a broker server is set up.
#[derive(Debug, Clone)]
pub struct BrokerServerOptions {
    /// Where to listen (a Unix socket path or `@abstract` name).
    pub endpoint: Endpoint,
    /// The service table.
    pub services: Vec<ServiceEntry>,
    /// Accept peers of other users (default: refused with PEER_REJECTED).
    pub allow_other_uids: bool,
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
    pub fn new(endpoint: Endpoint, services: Vec<ServiceEntry>) -> Self {
        BrokerServerOptions {
            endpoint,
            services,
            allow_other_uids: false,
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
            check_service(s)?;
        }
        if matches!(opts.endpoint, Endpoint::Tcp(_)) {
            return Err(Error::invalid_argument("a broker serves Unix sockets only (peer credentials are required)"));
        }
        let listener = Listener::bind(&opts.endpoint, &ListenOptions::default())?;
        let endpoint = listener.local_endpoint()?;
        let poll = Poll::new().map_err(|e| Error::io("create poller", e))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("create waker", e))?);
        let shared = Arc::new(Shared {
            shutting_down: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            handoffs_in_progress: AtomicUsize::new(0),
            events_enabled: opts.events,
            events: EventQueue::new(MAX_QUEUED_EVENTS, false)?,
            stats: BrokerServerCounters::default(),
            started: Instant::now(),
        });
        let mut event_loop = EventLoop::new(opts, listener, poll, Arc::clone(&shared))?;
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

fn check_service(s: &ServiceEntry) -> Result<(), Error> {
    let name = &s.service_name;
    if let Err(rule) = names::check_service_name(name) {
        return Err(Error::invalid_argument(format!("service name {name:?} is not {rule}")));
    }
    for v in s.allowed_versions.iter().chain(&s.blocked_versions).chain((!s.min_version.is_empty()).then_some(&s.min_version)) {
        if let Err(rule) = names::check_version(v) {
            return Err(Error::invalid_argument(format!("version {v:?} of service {name} is not {rule}")));
        }
    }
    if s.daemon_version.len() > 64 || s.backend_pipe.len() > 4096 {
        return Err(Error::invalid_argument(format!("daemon_version or backend_pipe of service {name} is too long")));
    }
    Ok(())
}

/// `MAJOR.MINOR.PATCH` as numbers (pre-release tags ignored for ordering).
fn version_triple(v: &str) -> (u64, u64, u64) {
    let core = v.split('-').next().unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Retry hint of a refusal by version policy (the reference's).
const VERSION_POLICY_RETRY_MS: u64 = 30_000;

/// The version policy of one service, applied to a wanted version, in the reference's order
/// (`validate_version_policy`: the floor, then the allow list), then librp's block list.
fn check_version_policy(service: &ServiceEntry, wanted: &str) -> Result<(), Refusal> {
    if !service.min_version.is_empty() && version_triple(wanted) < version_triple(&service.min_version) {
        return Err(Refusal::new(ErrorCode::VersionBlocked, "wanted_version is below min_version")
            .with_retry_after_ms(VERSION_POLICY_RETRY_MS));
    }
    if !service.allowed_versions.is_empty() && !service.allowed_versions.iter().any(|a| a == wanted) {
        return Err(Refusal::new(ErrorCode::VersionBlocked, "wanted_version is not in version_allow_list")
            .with_retry_after_ms(VERSION_POLICY_RETRY_MS));
    }
    if service.blocked_versions.iter().any(|b| b == wanted) {
        return Err(Refusal::new(ErrorCode::VersionBlocked, format!("version {wanted} is blocked")));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The event loop
// ---------------------------------------------------------------------------------------------

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

struct Connection {
    reader: FrameReader<UnixStream>,
    fd: RawFd,
    out: Vec<u8>,
    out_pos: usize,
    closing: bool,
    peer: Option<PeerCredentials>,
    deadline: Instant,
}

/// What the first frame asks for, copied out of the read buffer.
enum FirstFrame {
    Hello(ReplyTo, Hello),
    Admin(u64, AdminRequest),
    /// Refused, answering this request (request id 0 when the frame did not decode).
    Invalid(ReplyTo, Refusal),
}

/// The request a HelloReply answers: its id and trace context, which the reply echoes as the
/// reference broker's does (`write_response_frame`).
#[derive(Debug, Default)]
struct ReplyTo {
    request_id: u64,
    traceparent: String,
    tracestate: String,
}

impl ReplyTo {
    fn of(frame: &FrameView<'_>) -> Self {
        ReplyTo {
            request_id: frame.request_id,
            traceparent: frame.traceparent.to_owned(),
            tracestate: frame.tracestate.to_owned(),
        }
    }

    /// The RESPONSE frame on the control protocol carrying `result`.
    fn hello_reply(&self, result: hello_reply::Result) -> Vec<u8> {
        let payload = HelloReply { result: Some(result) }.encode_to_vec();
        let frame = FrameView {
            kind: FrameKind::Response as i32,
            payload_protocol: registry::CONTROL,
            payload: &payload,
            request_id: self.request_id,
            traceparent: &self.traceparent,
            tracestate: &self.tracestate,
            ..FrameView::default()
        };
        // The request was at most 64 KiB, so its answer is far below the frame cap.
        frame.to_bytes().unwrap_or_default()
    }
}

struct RateWindow {
    started: Instant,
    count: u32,
}

struct EventLoop {
    opts: BrokerServerOptions,
    _listener: Listener,
    accepting: UnixListener,
    poll: Poll,
    shared: Arc<Shared>,
    conns: HashMap<Token, Connection>,
    next_token: usize,
    next_connection_id: u64,
    rate: HashMap<u32, RateWindow>,
    /// Set when accepting failed (EMFILE, ENFILE, ENOMEM...): when to try again.
    accept_retry: Option<Instant>,
    /// Open connections per peer uid.
    per_uid: HashMap<u32, usize>,
}

impl EventLoop {
    fn new(opts: BrokerServerOptions, listener: Listener, poll: Poll, shared: Arc<Shared>) -> Result<Self, Error> {
        let io = |e| Error::io("register listener", e);
        let Listener::Unix(std_listener, _) = &listener else {
            return Err(Error::invalid_argument("a broker serves Unix sockets only"));
        };
        let l = std_listener.try_clone().map_err(io)?;
        l.set_nonblocking(true).map_err(io)?;
        let mut accepting = UnixListener::from_std(l);
        poll.registry().register(&mut accepting, LISTENER, Interest::READABLE).map_err(io)?;
        Ok(EventLoop {
            opts,
            _listener: listener,
            accepting,
            poll,
            shared,
            conns: HashMap::new(),
            next_token: FIRST_CONNECTION,
            next_connection_id: 1,
            rate: HashMap::new(),
            accept_retry: None,
            per_uid: HashMap::new(),
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        while !self.shared.stop.load(Ordering::Acquire) {
            let next_deadline = self.conns.values().map(|c| c.deadline).min();
            let wake_at = match (next_deadline, self.accept_retry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake_at.map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    token => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_from(token);
                        }
                        if event.is_writable() {
                            self.flush(token);
                        }
                    }
                }
            }
            let now = Instant::now();
            if self.accept_retry.is_some_and(|at| at <= now) {
                self.accept_all();
            }
            let late: Vec<(Token, bool)> =
                self.conns.iter().filter(|(_, c)| c.deadline <= now).map(|(t, c)| (*t, c.closing)).collect();
            for (token, answered) in late {
                if !answered {
                    stats::bump(&self.shared.stats.hello_timeouts);
                    crate::log!(Warn, "broker", "connection {}: no complete Hello within the timeout", token.0);
                    // As the reference: a first frame not complete by the deadline is answered
                    // "incomplete Hello frame" before the close.
                    self.refuse(token, &ReplyTo::default(), incomplete_hello(), "");
                }
                self.close(token);
            }
        }
    }

    fn accept_all(&mut self) {
        self.accept_retry = None;
        loop {
            match self.accepting.accept() {
                Ok((sock, _)) => self.add_connection(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors or similar: retry shortly, since the edge-triggered
                // listener reports nothing new for connections already queued.
                Err(_) => {
                    self.accept_retry = Some(Instant::now() + transport::ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn add_connection(&mut self, mut sock: UnixStream) {
        let token = Token(self.next_token);
        self.next_token += 1;
        let fd = sock.as_raw_fd();
        let peer = transport::peer_credentials(fd).ok();
        if self.poll.registry().register(&mut sock, token, Interest::READABLE).is_err() {
            return;
        }
        stats::bump(&self.shared.stats.connections_accepted);
        self.shared.stats.connections_open.fetch_add(1, Ordering::Relaxed);
        crate::log!(Debug, "broker", "connection {} accepted from {}", token.0, Peer(peer));
        let deadline = Instant::now() + self.opts.hello_timeout;
        let conn = Connection {
            reader: FrameReader::with_max_body(sock, HELLO_MAX_BODY),
            fd,
            out: Vec::new(),
            out_pos: 0,
            closing: false,
            peer,
            deadline,
        };
        self.conns.insert(token, conn);
        if let Some(p) = peer {
            *self.per_uid.entry(p.uid).or_insert(0) += 1;
        }
        let refusal = match peer {
            None => Some(Refusal::new(ErrorCode::PeerRejected, "peer credentials are unavailable")),
            Some(p) if p.uid != transport::effective_uid() && !self.opts.allow_other_uids => {
                Some(Refusal::new(ErrorCode::PeerRejected, format!("peer uid {} is not allowed on this broker", p.uid)))
            }
            _ if self.conns.len() > self.opts.max_connections && self.reap_departed() == 0 => {
                Some(Refusal::new(ErrorCode::RateLimited, "too many connections").with_retry_after_ms(1000))
            }
            Some(p)
                if self.per_uid.get(&p.uid).copied().unwrap_or(0) > self.opts.max_connections_per_uid
                    && self.reap_departed() == 0 =>
            {
                let mut r =
                    Refusal::new(ErrorCode::RateLimited, "too many connections from this user").with_retry_after_ms(1000);
                r.details.insert("scope".into(), "peer-uid".into());
                Some(r)
            }
            _ => None,
        };
        if let Some(r) = refusal {
            self.refuse(token, &ReplyTo::default(), r, "");
        }
    }

    /// Closes connections whose client has already gone without sending anything (an accept
    /// burst can queue many such), so they stop counting towards `max_connections`; returns
    /// how many. Runs only when the limit is reached.
    fn reap_departed(&mut self) -> usize {
        let gone: Vec<Token> =
            self.conns.iter().filter(|(_, c)| !c.closing && transport::peer_gone(c.fd)).map(|(t, _)| *t).collect();
        for &token in &gone {
            self.close(token);
        }
        gone.len()
    }

    fn read_from(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        if conn.closing {
            // Drain and discard until the client closes (its answer went out, then our end of
            // the stream).
            let mut sink = [0u8; 4096];
            loop {
                match conn.reader.get_mut().read(&mut sink) {
                    Ok(0) => return self.close(token),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => return self.close(token),
                }
            }
        }
        let first = match conn.reader.read_frame() {
            Err(WireError::Timeout) => return,
            read => first_frame(read),
        };
        match first {
            FirstFrame::Hello(to, hello) => self.on_hello(token, to, hello),
            FirstFrame::Admin(id, request) => self.on_admin(token, id, request),
            FirstFrame::Invalid(to, r) => self.refuse(token, &to, r, ""),
        }
    }

    fn on_hello(&mut self, token: Token, to: ReplyTo, hello: Hello) {
        let Some(conn) = self.conns.get(&token) else { return };
        let peer = conn.peer;
        let result = check_hello_fields(&hello, peer.as_ref())
            .and_then(|()| {
                if self.shared.shutting_down.load(Ordering::Acquire) {
                    return Err(Refusal::new(ErrorCode::ShuttingDown, "the broker is shutting down").with_retry_after_ms(1000));
                }
                self.check_rate(peer.map_or(u32::MAX, |p| p.uid))
            })
            .and_then(|()| choose_service(&self.opts.services, &hello).cloned());
        let service = match result {
            Ok(s) => s,
            Err(r) => return self.refuse(token, &to, r, &hello.service_name),
        };
        let connection_id = self.next_connection_id;
        self.next_connection_id += 1;
        stats::bump(&self.shared.stats.hellos_negotiated);
        crate::log!(
            Info,
            "broker",
            "connection {} from {} negotiated service {:?} version {:?}",
            token.0,
            Peer(peer),
            service.service_name,
            hello.wanted_version
        );
        let mut reply = negotiated(&service.daemon_version, connection_id, hello.client_keepalive_secs);
        reply.backend_pipe = service.backend_pipe.clone();
        let handoff = match (&service.handoff_endpoint, hello.client_capabilities & CAP_HANDLE_PASSING != 0) {
            (Some(endpoint), true) => self.reserve_handoff(&service).map(|token| (endpoint.clone(), token)),
            _ => None,
        };
        if let Some((_, t)) = &handoff {
            reply.server_capabilities |= CAP_HANDLE_PASSING;
            reply.handle_passed_token = t.0.to_vec();
        }
        let bytes = to.hello_reply(hello_reply::Result::Negotiated(reply));
        self.shared.emit(BrokerEvent::Negotiated {
            peer,
            service: service.service_name.clone(),
            wanted_version: hello.wanted_version.clone(),
            connection_id,
            handoff: handoff.is_some(),
        });
        match handoff {
            None => {
                let Some(conn) = self.conns.get_mut(&token) else { return };
                conn.out.extend_from_slice(&bytes);
                conn.closing = true;
                self.flush(token);
            }
            Some((endpoint, t)) => {
                let Some(mut conn) = self.conns.remove(&token) else { return };
                self.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
                if let Some(p) = conn.peer {
                    transport::forget_peer_uid(&mut self.per_uid, p.uid);
                }
                let _ = self.poll.registry().deregister(conn.reader.get_mut());
                conn.out.extend_from_slice(&bytes);
                let pending = conn.out[conn.out_pos..].to_vec();
                let client = StdUnixStream::from(conn.reader.into_inner());
                let job = HandoffJob {
                    client,
                    pending,
                    backend: endpoint,
                    token: t,
                    service_name: service.service_name.clone(),
                    correlation_id: connection_id,
                    ack_timeout: self.opts.handoff_ack_timeout,
                };
                let shared = Arc::clone(&self.shared);
                let spawned = std::thread::Builder::new().name("rp-broker-handoff".into()).spawn(move || {
                    let accepted = job.run();
                    stats::bump(if accepted { &shared.stats.handoffs_accepted } else { &shared.stats.handoffs_failed });
                    shared.handoffs_in_progress.fetch_sub(1, Ordering::AcqRel);
                });
                match spawned {
                    Ok(_) => stats::bump(&self.shared.stats.handoffs_started),
                    Err(_) => {
                        self.shared.handoffs_in_progress.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
        }
    }

    /// Takes a handoff slot and a fresh token, or `None` (then no handoff is offered).
    fn reserve_handoff(&self, service: &ServiceEntry) -> Option<handoff::Token> {
        let in_progress = &self.shared.handoffs_in_progress;
        if in_progress.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT_HANDOFFS {
            in_progress.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let token = handoff::Token::random().ok().filter(|t| service.handoff_store.as_ref().is_none_or(|s| s.insert(t).is_ok()));
        if token.is_none() {
            in_progress.fetch_sub(1, Ordering::AcqRel);
        }
        token
    }

    /// Per-peer-uid Hello rate limit.
    fn check_rate(&mut self, uid: u32) -> Result<(), Refusal> {
        let now = Instant::now();
        let window = self.opts.rate_window.max(Duration::from_millis(1));
        let entry = self.rate.entry(uid).or_insert(RateWindow { started: now, count: 0 });
        let elapsed = now.duration_since(entry.started);
        if elapsed >= window {
            entry.started = now;
            entry.count = 0;
        }
        if entry.count < self.opts.rate_limit.max(1) {
            entry.count += 1;
            return Ok(());
        }
        let retry = (window - elapsed).as_millis().max(1) as u64;
        let mut r = Refusal::new(ErrorCode::RateLimited, "Hello rate limit exceeded").with_retry_after_ms(retry);
        r.details.insert("scope".into(), "peer".into());
        Err(r)
    }

    fn on_admin(&mut self, token: Token, request_id: u64, request: AdminRequest) {
        stats::bump(&self.shared.stats.admin_requests);
        let verb = AdminVerb::try_from(request.verb);
        let within_limits = request.service_name.len() <= ADMIN_MAX_SERVICE_NAME
            && request.output_path.len() <= ADMIN_MAX_OUTPUT_PATH;
        if within_limits && verb == Ok(AdminVerb::Metrics) {
            let body = render_metrics(&self.shared.stats.snapshot(), self.shared.started.elapsed());
            let Some(conn) = self.conns.get_mut(&token) else { return };
            if admin_reply(request_id, AdminReplyKind::Openmetrics, OPENMETRICS_TYPE, body, 0, &mut conn.out).is_err() {
                return self.close(token);
            }
            conn.closing = true;
            return self.flush(token);
        }
        let (body, exit_code) = match verb {
            _ if request.service_name.len() > ADMIN_MAX_SERVICE_NAME => {
                (format!("service_name exceeds {ADMIN_MAX_SERVICE_NAME} bytes"), 2)
            }
            _ if request.output_path.len() > ADMIN_MAX_OUTPUT_PATH => {
                (format!("output_path exceeds {ADMIN_MAX_OUTPUT_PATH} bytes"), 2)
            }
            Ok(AdminVerb::Healthz | AdminVerb::Readyz) => {
                if self.shared.shutting_down.load(Ordering::Acquire) {
                    ("shutting down".to_owned(), 1)
                } else {
                    ("ok".to_owned(), 0)
                }
            }
            Ok(AdminVerb::Status | AdminVerb::ListInstances) => {
                let names: Vec<&str> = self.opts.services.iter().map(|s| s.service_name.as_str()).collect();
                (format!("services: {}; connections: {}", names.join(","), self.conns.len()), 0)
            }
            Ok(AdminVerb::Shutdown) => {
                self.shared.shutting_down.store(true, Ordering::Release);
                ("shutting down".to_owned(), 0)
            }
            Ok(other) => (format!("verb {} ({}) is not supported by this broker", other.as_str_name(), request.verb), 2),
            Err(_) => (format!("verb {} is not supported by this broker", request.verb), 2),
        };
        let Some(conn) = self.conns.get_mut(&token) else { return };
        if admin_reply_frame(request_id, body, exit_code, &mut conn.out).is_err() {
            return self.close(token);
        }
        conn.closing = true;
        self.flush(token);
    }

    fn refuse(&mut self, token: Token, to: &ReplyTo, refusal: Refusal, service: &str) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        self.shared.stats.refused.count(refusal.code);
        crate::log!(
            Warn,
            "broker",
            "connection {} from {} refused ({}): {}{}",
            token.0,
            Peer(conn.peer),
            refusal.code_name(),
            refusal.reason,
            if service.is_empty() { String::new() } else { format!(" (service {service:?})") }
        );
        self.shared.emit(BrokerEvent::Refused { peer: conn.peer, service: service.to_owned(), refusal: refusal.clone() });
        conn.out.extend_from_slice(&to.hello_reply(hello_reply::Result::Refused(refusal.to_message())));
        conn.closing = true;
        self.flush(token);
    }

    /// Writes what is queued; closes a closing connection once flushed.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        while conn.out_pos < conn.out.len() {
            match transport::send_nosignal(conn.fd, &conn.out[conn.out_pos..]) {
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = self.poll.registry().reregister(
                        conn.reader.get_mut(),
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    return;
                }
                Err(_) => return self.close(token),
            }
        }
        if conn.closing {
            // Half-close rather than close: a client that writes after the answer was sent
            // (a refusal at accept, before its Hello) still reads the answer instead of EPIPE.
            // Its bytes are drained until it closes or the connection's deadline passes.
            let _ = transport::shutdown(conn.fd, std::net::Shutdown::Write);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            self.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            if let Some(p) = conn.peer {
                transport::forget_peer_uid(&mut self.per_uid, p.uid);
            }
            let _ = self.poll.registry().deregister(conn.reader.get_mut());
        }
    }
}

/// The reference's answer to a stream that ended (or stalled past the deadline) before its
/// first frame was complete.
fn incomplete_hello() -> Refusal {
    Refusal::new(ErrorCode::PeerRejected, "incomplete Hello frame")
}

/// What the result of reading a connection's first frame asks for (not called for a read
/// that would block). Every outcome is answered, as the reference's `reply_for_framing_error`
/// does: an undecodable body with "malformed broker Frame", a stream that ended early with
/// "incomplete Hello frame" (written even when the peer is gone; the write then fails).
fn first_frame(read: Result<FrameView<'_>, WireError>) -> FirstFrame {
    let invalid = |code, reason: &str| FirstFrame::Invalid(ReplyTo::default(), Refusal::new(code, reason));
    match read {
        Ok(frame) => parse_first_frame(&frame),
        Err(WireError::UnsupportedFramingVersion { .. }) => {
            invalid(ErrorCode::VersionUnsupported, "unsupported framing version")
        }
        Err(WireError::TooLarge { .. }) => invalid(ErrorCode::PeerRejected, "initial Hello frame exceeds 64 KiB"),
        Err(WireError::Malformed { .. }) => invalid(ErrorCode::PeerRejected, "malformed broker Frame"),
        Err(_) => FirstFrame::Invalid(ReplyTo::default(), incomplete_hello()),
    }
}

/// The service a Hello asks for, if it is registered and its version policy admits the
/// wanted version.
fn choose_service<'a>(services: &'a [ServiceEntry], hello: &Hello) -> Result<&'a ServiceEntry, Refusal> {
    let service = services
        .iter()
        .find(|s| s.service_name == hello.service_name)
        .ok_or_else(|| Refusal::new(ErrorCode::ServiceUnknown, "service is not registered"))?;
    check_version_policy(service, &hello.wanted_version)?;
    Ok(service)
}

/// Appends the admin RESPONSE frame answering request `request_id` to `out`.
fn admin_reply_frame(request_id: u64, body: String, exit_code: u32, out: &mut Vec<u8>) -> Result<(), WireError> {
    admin_reply(request_id, AdminReplyKind::Text, "text/plain", body, exit_code, out)
}

/// The content type of the METRICS verb's answer, as running-process sends it.
const OPENMETRICS_TYPE: &str = "application/openmetrics-text";

/// The METRICS verb's OpenMetrics body: running-process's frozen v1 families in its order
/// (Hellos by outcome, open connections and uptime filled in; the families about spawning
/// backends, which this broker does not do, without samples), then librp's own counters.
/// Every number is the one [`BrokerServer::stats`] reports.
pub(crate) fn render_metrics(s: &BrokerServerStats, uptime: Duration) -> String {
    use std::fmt::Write as _;
    const P: &str = "running_process_broker_v1_";
    let r = &s.refused;
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE {P}hello_total counter");
    for (outcome, n) in [
        ("negotiated", s.hellos_negotiated),
        ("peer_rejected", r.peer_rejected),
        ("rate_limited", r.rate_limited),
        ("service_unknown", r.service_unknown),
        ("version_unsupported", r.version_unsupported),
        ("version_blocked", r.version_blocked),
        ("shutting_down", r.shutting_down),
        ("refused_other", r.other),
    ] {
        let _ = writeln!(out, "{P}hello_total{{outcome=\"{outcome}\"}} {n}");
    }
    for (name, kind) in [
        ("hello_duration_seconds", "histogram"),
        ("active_backends", "gauge"),
        ("spawn_attempts_total", "counter"),
        ("spawn_budget_remaining", "gauge"),
    ] {
        let _ = writeln!(out, "# TYPE {P}{name} {kind}");
    }
    let _ = writeln!(out, "# TYPE {P}connections_open gauge\n{P}connections_open {}", s.connections_open);
    let _ = writeln!(out, "# TYPE {P}fd_usage_ratio gauge\n{P}fd_usage_ratio 0");
    let _ = writeln!(out, "# TYPE {P}uptime_seconds gauge\n{P}uptime_seconds {}", uptime.as_secs());
    for (name, n) in [
        ("connections_accepted_total", s.connections_accepted),
        ("admin_requests_total", s.admin_requests),
        ("hello_timeouts_total", s.hello_timeouts),
    ] {
        let _ = writeln!(out, "# TYPE librp_broker_{name} counter\nlibrp_broker_{name} {n}");
    }
    let _ = writeln!(out, "# TYPE librp_broker_handoffs_total counter");
    for (outcome, n) in [("started", s.handoffs_started), ("accepted", s.handoffs_accepted), ("failed", s.handoffs_failed)] {
        let _ = writeln!(out, "librp_broker_handoffs_total{{outcome=\"{outcome}\"}} {n}");
    }
    out.push_str("# EOF\n");
    out
}

/// Appends an admin RESPONSE frame of any kind to `out`.
fn admin_reply(
    request_id: u64,
    kind: AdminReplyKind,
    content_type: &str,
    body: String,
    exit_code: u32,
    out: &mut Vec<u8>,
) -> Result<(), WireError> {
    let reply = AdminReply { kind: kind as i32, body, exit_code, content_type: content_type.into() };
    let payload = reply.encode_to_vec();
    let frame = FrameView {
        kind: FrameKind::Response as i32,
        payload_protocol: registry::ADMIN,
        payload: &payload,
        request_id,
        ..FrameView::default()
    };
    frame.encode_to_vec(out).map(|_| ())
}

/// Fuzzing and corpus-replay hook (see [`super::fuzzing`]): answers `bytes`, as if one client
/// connection sent them, through the event loop's first-frame path without a socket: a
/// [`FrameReader`] capped at [`HELLO_MAX_BODY`], [`first_frame`], the Hello checks against
/// `services` with `peer` as the kernel-reported peer (rate limits, shutdown and handoff,
/// which depend on the loop's state, are left out), and the reply bytes the loop would write.
/// `None` when the loop would close without answering.
pub(crate) fn fuzz_client_stream(
    bytes: &[u8],
    peer: Option<PeerCredentials>,
    services: &[ServiceEntry],
) -> Option<Vec<u8>> {
    let mut reader = FrameReader::with_max_body(bytes, HELLO_MAX_BODY);
    let mut out = Vec::new();
    match first_frame(reader.read_frame()) {
        FirstFrame::Hello(to, hello) => {
            let result = check_hello_fields(&hello, peer.as_ref()).and_then(|()| choose_service(services, &hello));
            let reply = match result {
                Ok(service) => {
                    let mut n = negotiated(&service.daemon_version, 1, hello.client_keepalive_secs);
                    n.backend_pipe = service.backend_pipe.clone();
                    hello_reply::Result::Negotiated(n)
                }
                Err(r) => hello_reply::Result::Refused(r.to_message()),
            };
            out.extend_from_slice(&to.hello_reply(reply));
        }
        FirstFrame::Admin(id, _) => admin_reply_frame(id, "ok".into(), 0, &mut out).ok()?,
        FirstFrame::Invalid(to, r) => out.extend_from_slice(&to.hello_reply(hello_reply::Result::Refused(r.to_message()))),
    }
    Some(out)
}

/// Checks a decoded first frame in the reference's order (`validate_frame_envelope`:
/// envelope version, kind, payload protocol, encoding; then the payload). Refusals echo the
/// frame's request id, as the reference's do.
fn parse_first_frame(frame: &FrameView<'_>) -> FirstFrame {
    let id = frame.request_id;
    let rejected = |why: &str| FirstFrame::Invalid(ReplyTo::of(frame), Refusal::new(ErrorCode::PeerRejected, why));
    if frame.envelope_version != 1 {
        return FirstFrame::Invalid(
            ReplyTo::of(frame),
            Refusal::new(ErrorCode::VersionUnsupported, "frame envelope_version is not v1"),
        );
    }
    if frame.frame_kind() != Some(FrameKind::Request) {
        return rejected("Hello frame kind must be REQUEST");
    }
    if frame.payload_protocol != registry::CONTROL && frame.payload_protocol != registry::ADMIN {
        return rejected("Hello frame payload_protocol must be control-plane");
    }
    if frame.payload_encoding != PayloadEncoding::None as i32 {
        return rejected("Hello payload must not be compressed");
    }
    if frame.payload_protocol == registry::ADMIN {
        return match AdminRequest::decode(frame.payload) {
            Ok(r) => FirstFrame::Admin(id, r),
            Err(_) => rejected("malformed AdminRequest payload"),
        };
    }
    match Hello::decode(frame.payload) {
        Ok(h) => FirstFrame::Hello(ReplyTo::of(frame), h),
        Err(_) => rejected("malformed Hello payload"),
    }
}

// ---------------------------------------------------------------------------------------------
// Handoff
// ---------------------------------------------------------------------------------------------

/// One handoff, run on its own short thread: finish writing the Negotiated, pass the client's
/// descriptor to the backend with a HandoffOffer, wait for the HandoffAck, relay it to the
/// client as the handoff-ready EVENT. A failure relays `accepted = false`, so the client
/// reconnects to `backend_pipe` at once instead of waiting out its timeout.
struct HandoffJob {
    client: StdUnixStream,
    pending: Vec<u8>,
    backend: Endpoint,
    token: handoff::Token,
    service_name: String,
    correlation_id: u64,
    ack_timeout: Duration,
}

impl HandoffJob {
    /// True when the backend accepted the connection.
    fn run(self) -> bool {
        let io_limit = Some(Duration::from_secs(2));
        if self.client.set_nonblocking(false).is_err()
            || self.client.set_write_timeout(io_limit).is_err()
            || (&self.client).write_all(&self.pending).is_err()
        {
            crate::log!(Warn, "broker", "handoff {} failed: the client went away", self.correlation_id);
            return false;
        }
        let ack = match self.offer() {
            Ok(ack) => ack,
            Err(e) => HandoffAck {
                token: self.token.0.to_vec(),
                accepted: false,
                error_detail: format!("handoff failed: {e}"),
                correlation_id: self.correlation_id,
            },
        };
        let payload = ack.encode_to_vec();
        let relay = FrameView {
            kind: FrameKind::Event as i32,
            payload_protocol: registry::HANDOFF,
            payload: &payload,
            request_id: self.correlation_id,
            ..FrameView::default()
        };
        if let Ok(bytes) = relay.to_bytes() {
            let _ = (&self.client).write_all(&bytes);
        }
        if ack.accepted {
            crate::log!(Info, "broker", "handoff {} to {} accepted", self.correlation_id, self.backend);
        } else {
            crate::log!(Warn, "broker", "handoff {} to {} declined: {}", self.correlation_id, self.backend, ack.error_detail);
        }
        ack.accepted
        // The broker's copy of the client connection closes here; an adopted one lives on in
        // the backend.
    }

    fn offer(&self) -> Result<HandoffAck, Error> {
        let socket = match transport::connect(&self.backend, self.ack_timeout)? {
            transport::Stream::Unix(s) => s,
            transport::Stream::Tcp(_) => return Err(Error::invalid_argument("a handoff endpoint must be a Unix socket")),
        };
        let io = |e| Error::io("configure handoff socket", e);
        socket.set_read_timeout(Some(self.ack_timeout)).map_err(io)?;
        socket.set_write_timeout(Some(self.ack_timeout)).map_err(io)?;
        let frame = handoff::offer_frame(&self.token.0, &self.service_name, self.correlation_id);
        let sent = handoff::send_with_fd(&socket, &frame, &self.client)?;
        if sent < frame.len() {
            (&socket).write_all(&frame[sent..]).map_err(|e| Error::io("send handoff offer", e))?;
        }
        let mut reader = FrameReader::with_max_body(&socket, HELLO_MAX_BODY);
        let reply = reader.read_frame().map_err(|e| match e {
            WireError::Timeout => Error::Timeout("the backend did not acknowledge the handoff in time".into()),
            e => e.into(),
        })?;
        if reply.payload_protocol != registry::HANDOFF
            || reply.frame_kind() != Some(FrameKind::Response)
            || reply.request_id != self.correlation_id
        {
            return Err(WireError::Protocol("expected the backend's HandoffAck".into()).into());
        }
        let ack = HandoffAck::decode(reply.payload).map_err(|e| WireError::from_prost("HandoffAck", e))?;
        if ack.token != self.token.0 || ack.correlation_id != self.correlation_id {
            return Err(WireError::Protocol("the HandoffAck does not echo the offer".into()).into());
        }
        Ok(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::hello_reply_frame;

    #[test]
    fn version_policy() {
        let s = ServiceEntry {
            service_name: "svc".into(),
            allowed_versions: vec!["1.2.3".into(), "1.0.0".into()],
            blocked_versions: vec!["1.0.0".into()],
            min_version: "0.5.0".into(),
            ..Default::default()
        };
        assert!(check_version_policy(&s, "1.2.3").is_ok());
        assert_eq!(check_version_policy(&s, "1.0.0").unwrap_err().code, ErrorCode::VersionBlocked as i32);
        assert_eq!(check_version_policy(&s, "0.4.9").unwrap_err().code, ErrorCode::VersionBlocked as i32);
        let r = check_version_policy(&s, "2.0.0").unwrap_err();
        assert_eq!((r.code, r.retry_after_ms), (ErrorCode::VersionBlocked as i32, 30_000));
    }

    #[test]
    fn min_version_refusal_matches_the_vector() {
        let s = ServiceEntry { service_name: "svc".into(), min_version: "2.0.0".into(), ..Default::default() };
        let r = check_version_policy(&s, "1.2.3").unwrap_err();
        let bytes = hello_reply_frame(1, hello_reply::Result::Refused(r.to_message()));
        let want = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/hello_reply_refused_version_blocked.hex"
        ))
        .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want.trim());
    }
}
