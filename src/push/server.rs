//! The server side: accept workers, keep their registrations, push work, collect replies.
//!
//! One event-loop thread serves every worker (no thread per worker). API calls from any thread
//! hand commands to it through a queue and a waker. User code never runs on that thread:
//! registration decisions and connect/disconnect notices are queued as [`ServerEvent`]s that
//! the application takes with [`PushServer::next_event`] on its own thread.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use prost::Message;

use super::proto::{push_reply, Push, PushReply, Registration, RegistrationAck};
use super::{now_unix_ms, PUSH_PROTOCOL, PUSH_PROTOCOL_VERSION};
use crate::control::{check_hello_fields, hello_reply_frame, negotiated, Refusal};
use crate::error::Error;
use crate::transport::{self, Endpoint, ListenOptions, Listener, PeerCredentials};
use crate::wire::proto::{hello_reply, ErrorCode, FrameKind, Hello};
use crate::wire::{registry, FrameReader, FrameView, WireError, HELLO_MAX_BODY, MAX_BODY};

/// How a push server is set up.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen.
    pub endpoint: Endpoint,
    /// The service name workers must ask for (default `librp-push`).
    pub service_name: String,
    /// Accept Unix peers of other users (default: refused).
    pub allow_other_uids: bool,
    /// Allow a TCP endpoint on a non-loopback address (requires `auth_token`).
    pub allow_remote_tcp: bool,
    /// When non-empty, every worker's Hello must carry this token (compared in constant time).
    pub auth_token: Vec<u8>,
    /// Time a new connection has to say Hello and register (default 10 s).
    pub handshake_timeout: Duration,
    /// Most connections at once; more are refused with a retry hint (default 4096).
    pub max_connections: usize,
    /// Bytes queued for one worker before pushes to it fail with "try again" (default 8 MiB).
    pub max_send_buffer: usize,
    /// Registrations wait for [`PushServer::decide`] instead of being accepted at once.
    pub decide_registrations: bool,
    /// Queue [`ServerEvent`]s for [`PushServer::next_event`] (implied by `decide_registrations`).
    pub events: bool,
}

impl ServerOptions {
    /// Options with defaults for everything but the endpoint.
    pub fn new(endpoint: Endpoint) -> Self {
        ServerOptions {
            endpoint,
            service_name: super::DEFAULT_SERVICE.to_owned(),
            allow_other_uids: false,
            allow_remote_tcp: false,
            auth_token: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_send_buffer: 8 << 20,
            decide_registrations: false,
            events: false,
        }
    }
}

/// Which worker a push goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One worker by id.
    Worker(u64),
    /// Any worker registered for this task queue (the least busy one).
    TaskQueue(String),
    /// Any worker serving this payload protocol (the least busy one).
    Protocol(u32),
}

/// One job to push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSpec {
    /// Consumer protocol of the payload.
    pub payload_protocol: u32,
    /// The job's bytes.
    pub payload: Vec<u8>,
    /// Absolute deadline in Unix milliseconds; 0 = none. Past it the push fails with `Timeout`
    /// and the worker is told to drop it.
    pub deadline_unix_ms: u64,
    /// W3C traceparent.
    pub traceparent: String,
    /// W3C tracestate.
    pub tracestate: String,
}

/// A worker's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The worker's reply payload.
    Reply(Vec<u8>),
    /// The worker could not do the job.
    WorkerFailure {
        /// The worker's code.
        code: i32,
        /// The worker's message.
        message: String,
    },
}

/// A connected, registered worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The id the server gave it.
    pub id: u64,
    /// What it registered as.
    pub registration: Registration,
    /// Kernel-reported credentials (Unix sockets).
    pub peer: Option<PeerCredentials>,
    /// Pushes sent to it and not yet answered.
    pub in_flight: usize,
}

/// Something the application may want to act on, taken with [`PushServer::next_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A worker asks to register; answer with [`PushServer::decide`] (only with
    /// `decide_registrations`).
    RegistrationRequest {
        /// The id the worker will have if accepted.
        worker_id: u64,
        /// What it asks to register as.
        registration: Registration,
        /// Kernel-reported credentials.
        peer: Option<PeerCredentials>,
    },
    /// A worker registered.
    WorkerConnected(WorkerInfo),
    /// A registered worker went away; its outstanding pushes failed with `Closed`.
    WorkerDisconnected {
        /// Its id.
        worker_id: u64,
        /// Why.
        reason: String,
    },
}

/// What [`PushServer::decide`] answers to a registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationDecision {
    /// Register the worker.
    Accept,
    /// Refuse it, with a reason the worker sees.
    Reject(String),
}

/// An in-flight push: wait on it or poll it, from any thread.
#[derive(Debug, Clone)]
pub struct Ticket {
    inner: Arc<TicketInner>,
}

#[derive(Debug)]
struct TicketInner {
    correlation_id: u64,
    state: Mutex<TicketState>,
    done: Condvar,
}

#[derive(Debug)]
enum TicketState {
    Pending,
    Done(Result<PushOutcome, Error>),
    Taken,
}

impl Ticket {
    fn new(correlation_id: u64) -> Self {
        Ticket {
            inner: Arc::new(TicketInner {
                correlation_id,
                state: Mutex::new(TicketState::Pending),
                done: Condvar::new(),
            }),
        }
    }

    /// The push's correlation id (the request id of its frames).
    pub fn correlation_id(&self) -> u64 {
        self.inner.correlation_id
    }

    /// True once the push has an outcome.
    pub fn is_done(&self) -> bool {
        !matches!(*self.lock(), TicketState::Pending)
    }

    /// Waits for the outcome (`None` = forever) and takes it.
    ///
    /// `Timeout` means the wait ended first (the push goes on unless its own deadline passed;
    /// [`is_done`](Self::is_done) tells which). An outcome can be taken once; later calls fail
    /// with `InvalidArgument`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<PushOutcome, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        loop {
            match std::mem::replace(&mut *state, TicketState::Taken) {
                TicketState::Done(result) => return result,
                TicketState::Taken => {
                    return Err(Error::invalid_argument("the push's outcome was already taken"))
                }
                TicketState::Pending => *state = TicketState::Pending,
            }
            state = match deadline {
                None => self.inner.done.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout(
                            format!("push {} has no reply yet", self.inner.correlation_id).into(),
                        ));
                    }
                    self.inner.done.wait_timeout(state, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }

    fn complete(&self, result: Result<PushOutcome, Error>) {
        let mut state = self.lock();
        if matches!(*state, TicketState::Pending) {
            *state = TicketState::Done(result);
            self.inner.done.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, TicketState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running push server. Methods take `&self` and may be called from any thread.
#[derive(Debug)]
pub struct PushServer {
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    thread: Mutex<Option<JoinHandle<()>>>,
    endpoint: Endpoint,
}

#[derive(Debug)]
struct Shared {
    commands: Mutex<VecDeque<Command>>,
    workers: Mutex<BTreeMap<u64, WorkerInfo>>,
    events: Mutex<VecDeque<ServerEvent>>,
    event_ready: Condvar,
    events_enabled: bool,
    event_signal_rx: StdUnixStream,
    event_signal_tx: StdUnixStream,
    next_correlation: AtomicU64,
    stopping: AtomicBool,
}

#[derive(Debug)]
enum Command {
    Push { target: Target, spec: PushSpec, ticket: Ticket },
    Decide { worker_id: u64, decision: RegistrationDecision },
    Disconnect { worker_id: u64 },
    Stop,
}

impl PushServer {
    /// Binds the endpoint and starts serving.
    pub fn bind(opts: ServerOptions) -> Result<PushServer, Error> {
        if opts.allow_remote_tcp && opts.auth_token.is_empty() {
            return Err(Error::Config("a server reachable from other hosts requires an auth token".into()));
        }
        let listener = Listener::bind(
            &opts.endpoint,
            &ListenOptions { allow_remote_tcp: opts.allow_remote_tcp },
        )?;
        let endpoint = listener.local_endpoint()?;
        let poll = Poll::new().map_err(|e| Error::io("create poller", e))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| Error::io("create waker", e))?);
        let (event_signal_rx, event_signal_tx) =
            StdUnixStream::pair().map_err(|e| Error::io("notification socket", e))?;
        event_signal_rx.set_nonblocking(true).map_err(|e| Error::io("notification socket", e))?;
        event_signal_tx.set_nonblocking(true).map_err(|e| Error::io("notification socket", e))?;
        let shared = Arc::new(Shared {
            commands: Mutex::new(VecDeque::new()),
            workers: Mutex::new(BTreeMap::new()),
            events: Mutex::new(VecDeque::new()),
            event_ready: Condvar::new(),
            events_enabled: opts.events || opts.decide_registrations,
            event_signal_rx,
            event_signal_tx,
            next_correlation: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
        });
        let mut event_loop = EventLoop::new(opts, listener, poll, Arc::clone(&shared))?;
        let thread = std::thread::Builder::new()
            .name("rp-push-server".into())
            .spawn(move || event_loop.run())
            .map_err(|e| Error::io("spawn server thread", e))?;
        Ok(PushServer { shared, waker, thread: Mutex::new(Some(thread)), endpoint })
    }

    /// The endpoint actually bound (with the real port for `tcp://host:0`).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Starts a push and returns its ticket at once. Failures to deliver (no such worker, send
    /// buffer full, worker gone) arrive through the ticket.
    pub fn push(&self, target: Target, spec: PushSpec) -> Result<Ticket, Error> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed("the server is shut down".into()));
        }
        let ticket = Ticket::new(self.shared.next_correlation.fetch_add(1, Ordering::Relaxed));
        self.command(Command::Push { target, spec, ticket: ticket.clone() })?;
        Ok(ticket)
    }

    /// Pushes and waits up to `timeout` for the reply. Without a deadline of its own the push
    /// gets `now + timeout` as its deadline, so the worker drops it when the caller stops waiting.
    pub fn push_wait(&self, target: Target, mut spec: PushSpec, timeout: Duration) -> Result<PushOutcome, Error> {
        if spec.deadline_unix_ms == 0 {
            spec.deadline_unix_ms = now_unix_ms() + timeout.as_millis().max(1) as u64;
        }
        self.push(target, spec)?.wait(Some(timeout + Duration::from_millis(50)))
    }

    /// The registered workers.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
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
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut events = self.shared.events.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = events.pop_front() {
                if events.is_empty() {
                    let mut b = [0u8; 64];
                    while (&self.shared.event_signal_rx).read(&mut b).is_ok_and(|n| n > 0) {}
                }
                return Ok(e);
            }
            if self.shared.stopping.load(Ordering::Acquire) {
                return Err(Error::Closed("the server is shut down".into()));
            }
            events = match deadline {
                None => self.shared.event_ready.wait(events).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout("no server event".into()));
                    }
                    self.shared.event_ready.wait_timeout(events, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }

    /// A descriptor readable while an event is waiting. Owned by the server.
    pub fn event_fd(&self) -> RawFd {
        self.shared.event_signal_rx.as_raw_fd()
    }

    /// Stops serving: every worker is disconnected and every outstanding push fails with
    /// `Closed`. Idempotent; blocks until the event loop has finished.
    pub fn shutdown(&self) {
        if !self.shared.stopping.swap(true, Ordering::AcqRel) {
            self.shared.commands.lock().unwrap_or_else(|p| p.into_inner()).push_back(Command::Stop);
            let _ = self.waker.wake();
        }
        self.shared.event_ready.notify_all();
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn command(&self, c: Command) -> Result<(), Error> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(Error::Closed("the server is shut down".into()));
        }
        self.shared.commands.lock().unwrap_or_else(|p| p.into_inner()).push_back(c);
        self.waker.wake().map_err(|e| Error::io("wake server thread", e))
    }
}

impl Drop for PushServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Shared {
    fn emit(&self, event: ServerEvent) {
        if !self.events_enabled {
            return;
        }
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        if events.is_empty() {
            let _ = (&self.event_signal_tx).write(&[1]);
        }
        events.push_back(event);
        self.event_ready.notify_all();
    }
}

// ---------------------------------------------------------------------------------------------
// The event loop
// ---------------------------------------------------------------------------------------------

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// How soon accepting is retried after it failed for lack of descriptors (or similar): the
/// listener is edge-triggered, so connections left in the backlog would get no new event.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

enum Accepting {
    Unix(UnixListener),
    Tcp(TcpListener),
}

enum Sock {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Unix(s) => s.read(buf),
            Sock::Tcp(s) => s.read(buf),
        }
    }
}

impl Sock {
    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Sock::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Sock::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Sock::Unix(s) => s.as_raw_fd(),
            Sock::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl Source for Sock {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Sock::Unix(s) => s.register(r, t, i),
            Sock::Tcp(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Sock::Unix(s) => s.reregister(r, t, i),
            Sock::Tcp(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Sock::Unix(s) => s.deregister(r),
            Sock::Tcp(s) => s.deregister(r),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the Hello.
    Hello,
    /// Negotiated; waiting for the registration.
    Registering,
    /// Registration sent to the application for a decision.
    AwaitingDecision,
    /// Registered: receives pushes.
    Registered,
    /// Refused or failed: flush what is queued, then close.
    Closing,
}

struct Conn {
    reader: FrameReader<Sock>,
    fd: RawFd,
    out: Vec<u8>,
    out_pos: usize,
    wants_write: bool,
    phase: Phase,
    peer: Option<PeerCredentials>,
    handshake_deadline: Instant,
    worker_id: u64,
    registration: Option<Registration>,
    registration_request_id: u64,
    in_flight: HashSet<u64>,
}

struct InFlight {
    ticket: Ticket,
    token: Token,
}

/// What one frame from a connection asks for, copied out of the read buffer.
enum Incoming {
    Hello(u64, Hello),
    Registration(u64, Registration),
    Reply(u64, PushReply),
}

struct EventLoop {
    opts: ServerOptions,
    _listener: Listener,
    accepting: Accepting,
    poll: Poll,
    shared: Arc<Shared>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    next_connection_id: u64,
    workers: HashMap<u64, Token>,
    in_flight: HashMap<u64, InFlight>,
    push_deadlines: BinaryHeap<Reverse<(u64, u64)>>,
    handshake_deadlines: BinaryHeap<Reverse<(Instant, Token)>>,
    round_robin: u64,
    /// Set when accepting failed (EMFILE, ENFILE, ENOMEM...): when to try again.
    accept_retry: Option<Instant>,
}

impl EventLoop {
    fn new(opts: ServerOptions, listener: Listener, poll: Poll, shared: Arc<Shared>) -> Result<Self, Error> {
        let io = |e| Error::io("register listener", e);
        let mut accepting = match &listener {
            Listener::Unix(l, _) => {
                let l = l.try_clone().map_err(io)?;
                l.set_nonblocking(true).map_err(io)?;
                Accepting::Unix(UnixListener::from_std(l))
            }
            Listener::Tcp(l) => {
                let l = l.try_clone().map_err(io)?;
                l.set_nonblocking(true).map_err(io)?;
                Accepting::Tcp(TcpListener::from_std(l))
            }
        };
        match &mut accepting {
            Accepting::Unix(l) => poll.registry().register(l, LISTENER, Interest::READABLE),
            Accepting::Tcp(l) => poll.registry().register(l, LISTENER, Interest::READABLE),
        }
        .map_err(io)?;
        Ok(EventLoop {
            opts,
            _listener: listener,
            accepting,
            poll,
            shared,
            conns: HashMap::new(),
            next_token: FIRST_CONNECTION,
            next_connection_id: 1,
            workers: HashMap::new(),
            in_flight: HashMap::new(),
            push_deadlines: BinaryHeap::new(),
            handshake_deadlines: BinaryHeap::new(),
            round_robin: 0,
            accept_retry: None,
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        loop {
            let timeout = self.next_timeout();
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
            if !self.run_commands() {
                break;
            }
            self.expire();
            if self.accept_retry.is_some_and(|at| at <= Instant::now()) {
                self.accept_all();
            }
        }
        self.stop();
    }

    fn next_timeout(&self) -> Option<Duration> {
        let mut next: Option<Duration> = None;
        let mut consider = |d: Duration| next = Some(next.map_or(d, |n| n.min(d)));
        if let Some(Reverse((ms, _))) = self.push_deadlines.peek() {
            consider(Duration::from_millis(ms.saturating_sub(now_unix_ms())));
        }
        if let Some(Reverse((at, _))) = self.handshake_deadlines.peek() {
            consider(at.saturating_duration_since(Instant::now()));
        }
        if let Some(at) = self.accept_retry {
            consider(at.saturating_duration_since(Instant::now()));
        }
        next
    }

    fn accept_all(&mut self) {
        self.accept_retry = None;
        loop {
            let accepted = match &self.accepting {
                Accepting::Unix(l) => l.accept().map(|(s, _)| Sock::Unix(s)),
                Accepting::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Sock::Tcp(s)
                }),
            };
            match accepted {
                Ok(sock) => self.add_connection(sock),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors or similar: stop accepting for now and retry shortly, since
                // the edge-triggered listener reports nothing new for connections already queued.
                Err(_) => {
                    self.accept_retry = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn add_connection(&mut self, mut sock: Sock) {
        let token = Token(self.next_token);
        self.next_token += 1;
        let fd = sock.fd();
        let peer = match &sock {
            Sock::Unix(_) => transport::peer_credentials(fd).ok(),
            Sock::Tcp(_) => None,
        };
        if sock.register(self.poll.registry(), token, Interest::READABLE).is_err() {
            return;
        }
        let handshake_deadline = Instant::now() + self.opts.handshake_timeout;
        let conn = Conn {
            reader: FrameReader::with_max_body(sock, HELLO_MAX_BODY),
            fd,
            out: Vec::new(),
            out_pos: 0,
            wants_write: false,
            phase: Phase::Hello,
            peer,
            handshake_deadline,
            worker_id: 0,
            registration: None,
            registration_request_id: 0,
            in_flight: HashSet::new(),
        };
        self.conns.insert(token, conn);
        self.handshake_deadlines.push(Reverse((handshake_deadline, token)));

        // Refusals that need no Hello: another user's process, too many connections.
        let refusal = if let Some(p) = peer.filter(|p| p.uid != transport::effective_uid()) {
            (!self.opts.allow_other_uids).then(|| {
                Refusal::new(ErrorCode::PeerRejected, format!("peer uid {} is not allowed on this server", p.uid))
            })
        } else if self.conns.len() > self.opts.max_connections {
            Some(
                Refusal::new(ErrorCode::RateLimited, "too many connections").with_retry_after_ms(1000),
            )
        } else {
            None
        };
        if let Some(r) = refusal {
            self.refuse(token, 0, r);
        }
    }

    fn read_from(&mut self, token: Token) {
        loop {
            let Some(conn) = self.conns.get_mut(&token) else { return };
            if conn.phase == Phase::Closing {
                // Drain and discard; the connection ends once its last reply is flushed.
                let mut sink = [0u8; 4096];
                match conn.reader.get_mut().read(&mut sink) {
                    Ok(0) => return self.close(token, "peer closed the connection".into()),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => return self.close(token, "connection failed".into()),
                }
            }
            let phase = conn.phase;
            let incoming = match conn.reader.read_frame() {
                Ok(frame) => parse_incoming(phase, &frame),
                Err(WireError::Timeout) => return, // WouldBlock: nothing more for now
                Err(WireError::Closed) => return self.close(token, "worker closed the connection".into()),
                Err(WireError::UnsupportedFramingVersion { .. }) if phase == Phase::Hello => {
                    let refusal = Refusal::new(ErrorCode::VersionUnsupported, "unsupported framing version");
                    return self.refuse(token, 0, refusal);
                }
                Err(e) => return self.close(token, format!("connection failed: {e}").into()),
            };
            match incoming {
                Ok(Incoming::Hello(id, hello)) => self.on_hello(token, id, hello),
                Ok(Incoming::Registration(id, reg)) => self.on_registration(token, id, reg),
                Ok(Incoming::Reply(id, reply)) => self.on_reply(token, id, reply),
                Err(why) => return self.close(token, format!("protocol violation: {why}").into()),
            }
        }
    }

    fn on_hello(&mut self, token: Token, request_id: u64, hello: Hello) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let check = check_hello_fields(&hello, conn.peer.as_ref()).and_then(|()| {
            if hello.service_name != self.opts.service_name {
                return Err(Refusal::new(ErrorCode::ServiceUnknown, "service is not registered"));
            }
            if !hello.wanted_version.starts_with("1.") {
                return Err(Refusal::new(
                    ErrorCode::VersionUnsupported,
                    format!("push protocol {} is not served (this server speaks 1.x)", hello.wanted_version),
                ));
            }
            if !self.opts.auth_token.is_empty() && !constant_time_eq(&hello.auth_token, &self.opts.auth_token) {
                return Err(Refusal::new(ErrorCode::PeerRejected, "authentication failed"));
            }
            if self.shared.stopping.load(Ordering::Acquire) {
                return Err(Refusal::new(ErrorCode::ShuttingDown, "the server is shutting down"));
            }
            Ok(())
        });
        match check {
            Err(refusal) => self.refuse(token, request_id, refusal),
            Ok(()) => {
                let connection_id = self.next_connection_id;
                self.next_connection_id += 1;
                let reply = negotiated(PUSH_PROTOCOL_VERSION, connection_id, hello.client_keepalive_secs);
                conn.reader.set_max_body(MAX_BODY);
                conn.phase = Phase::Registering;
                conn.out.extend_from_slice(&hello_reply_frame(request_id, hello_reply::Result::Negotiated(reply)));
                self.flush(token);
            }
        }
    }

    fn on_registration(&mut self, token: Token, request_id: u64, reg: Registration) {
        let worker_id = self.next_connection_id;
        self.next_connection_id += 1;
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.worker_id = worker_id;
        conn.registration_request_id = request_id;
        if let Err(reason) = check_registration(&reg) {
            return self.answer_registration(token, RegistrationDecision::Reject(reason));
        }
        if self.opts.decide_registrations {
            conn.phase = Phase::AwaitingDecision;
            conn.registration = Some(reg.clone());
            self.workers.insert(worker_id, token);
            let peer = conn.peer;
            self.shared.emit(ServerEvent::RegistrationRequest { worker_id, registration: reg, peer });
        } else {
            conn.registration = Some(reg);
            self.answer_registration(token, RegistrationDecision::Accept);
        }
    }

    fn answer_registration(&mut self, token: Token, decision: RegistrationDecision) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let ack = match &decision {
            RegistrationDecision::Accept => {
                RegistrationAck { accepted: true, reason: String::new(), worker_id: conn.worker_id }
            }
            RegistrationDecision::Reject(reason) => {
                RegistrationAck { accepted: false, reason: reason.clone(), worker_id: 0 }
            }
        };
        let payload = ack.encode_to_vec();
        push_frame(&mut conn.out, FrameKind::Response, conn.registration_request_id, &payload, None)
            .expect("a registration ack is far below the frame cap");
        match decision {
            RegistrationDecision::Accept => {
                conn.phase = Phase::Registered;
                let info = WorkerInfo {
                    id: conn.worker_id,
                    registration: conn.registration.clone().unwrap_or_default(),
                    peer: conn.peer,
                    in_flight: 0,
                };
                self.workers.insert(info.id, token);
                self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).insert(info.id, info.clone());
                self.shared.emit(ServerEvent::WorkerConnected(info));
            }
            RegistrationDecision::Reject(_) => {
                self.workers.remove(&conn.worker_id);
                conn.phase = Phase::Closing;
            }
        }
        self.flush(token);
    }

    fn on_reply(&mut self, token: Token, correlation_id: u64, reply: PushReply) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        if !conn.in_flight.remove(&correlation_id) {
            // Late (its deadline passed) or never sent: nothing waits for it.
            return;
        }
        let worker_id = conn.worker_id;
        if let Some(f) = self.in_flight.remove(&correlation_id) {
            let outcome = match reply.result {
                Some(push_reply::Result::Payload(p)) => Ok(PushOutcome::Reply(p)),
                Some(push_reply::Result::Failure(f)) => {
                    Ok(PushOutcome::WorkerFailure { code: f.code, message: f.message })
                }
                None => Ok(PushOutcome::Reply(Vec::new())),
            };
            f.ticket.complete(outcome);
        }
        self.update_in_flight(worker_id, -1);
    }

    fn run_commands(&mut self) -> bool {
        loop {
            let command = self.shared.commands.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            match command {
                None => return true,
                Some(Command::Stop) => return false,
                Some(Command::Push { target, spec, ticket }) => self.start_push(target, spec, ticket),
                Some(Command::Decide { worker_id, decision }) => {
                    if let Some(&token) = self.workers.get(&worker_id) {
                        if self.conns.get(&token).is_some_and(|c| c.phase == Phase::AwaitingDecision) {
                            self.answer_registration(token, decision);
                        }
                    }
                }
                Some(Command::Disconnect { worker_id }) => {
                    if let Some(&token) = self.workers.get(&worker_id) {
                        self.close(token, "disconnected by the server".into());
                    }
                }
            }
        }
    }

    fn start_push(&mut self, target: Target, spec: PushSpec, ticket: Ticket) {
        let Some(token) = self.pick_worker(&target) else {
            let what = match &target {
                Target::Worker(id) => format!("worker {id} is not connected"),
                Target::TaskQueue(q) => format!("no worker is registered for task queue {q:?}"),
                Target::Protocol(p) => format!("no worker serves payload protocol 0x{p:04X}"),
            };
            return ticket.complete(Err(Error::NotFound(what.into())));
        };
        let conn = self.conns.get_mut(&token).expect("picked workers exist");
        if conn.out.len() - conn.out_pos > self.opts.max_send_buffer {
            return ticket.complete(Err(Error::Again(
                format!("worker {} is not keeping up (send buffer full)", conn.worker_id).into(),
            )));
        }
        if spec.deadline_unix_ms != 0 && spec.deadline_unix_ms <= now_unix_ms() {
            return ticket.complete(Err(Error::Timeout("the push's deadline has already passed".into())));
        }
        let correlation_id = ticket.correlation_id();
        let payload = Push { payload_protocol: spec.payload_protocol, payload: spec.payload }.encode_to_vec();
        let trace = (spec.deadline_unix_ms, spec.traceparent.as_str(), spec.tracestate.as_str());
        if let Err(e) = push_frame(&mut conn.out, FrameKind::Event, correlation_id, &payload, Some(trace)) {
            return ticket.complete(Err(e.into()));
        }
        conn.in_flight.insert(correlation_id);
        let worker_id = conn.worker_id;
        if spec.deadline_unix_ms != 0 {
            self.push_deadlines.push(Reverse((spec.deadline_unix_ms, correlation_id)));
        }
        self.in_flight.insert(correlation_id, InFlight { ticket, token });
        self.update_in_flight(worker_id, 1);
        self.flush(token);
    }

    /// The named worker, or the least busy registered worker matching the target.
    fn pick_worker(&mut self, target: &Target) -> Option<Token> {
        if let Target::Worker(id) = target {
            let token = *self.workers.get(id)?;
            return self.conns.get(&token).filter(|c| c.phase == Phase::Registered).map(|_| token);
        }
        let matches = |reg: &Registration| match target {
            Target::TaskQueue(q) => reg.task_queue == *q,
            Target::Protocol(p) => reg.payload_protocols.contains(p),
            Target::Worker(_) => false,
        };
        // The least busy matching workers; among equals, take turns.
        let mut least: Vec<Token> = Vec::new();
        let mut fewest = usize::MAX;
        for token in self.workers.values() {
            let Some(c) = self.conns.get(token) else { continue };
            if c.phase != Phase::Registered || !c.registration.as_ref().is_some_and(matches) {
                continue;
            }
            match c.in_flight.len().cmp(&fewest) {
                std::cmp::Ordering::Less => {
                    fewest = c.in_flight.len();
                    least.clear();
                    least.push(*token);
                }
                std::cmp::Ordering::Equal => least.push(*token),
                std::cmp::Ordering::Greater => {}
            }
        }
        if least.is_empty() {
            return None;
        }
        least.sort_unstable_by_key(|t| t.0);
        self.round_robin = self.round_robin.wrapping_add(1);
        Some(least[(self.round_robin % least.len() as u64) as usize])
    }

    fn update_in_flight(&self, worker_id: u64, delta: isize) {
        if let Some(w) = self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&worker_id) {
            w.in_flight = w.in_flight.saturating_add_signed(delta);
        }
    }

    /// Fails pushes past their deadline (telling their worker to drop them) and closes
    /// connections that did not finish the handshake in time.
    fn expire(&mut self) {
        let now_ms = now_unix_ms();
        while let Some(&Reverse((deadline, correlation_id))) = self.push_deadlines.peek() {
            if deadline > now_ms {
                break;
            }
            self.push_deadlines.pop();
            let Some(f) = self.in_flight.remove(&correlation_id) else { continue };
            f.ticket.complete(Err(Error::Timeout(
                format!("push {correlation_id} passed its deadline without a reply").into(),
            )));
            if let Some(conn) = self.conns.get_mut(&f.token) {
                conn.in_flight.remove(&correlation_id);
                push_frame(&mut conn.out, FrameKind::Cancel, correlation_id, &[], None)
                    .expect("an empty cancel frame is far below the frame cap");
                let worker_id = conn.worker_id;
                self.update_in_flight(worker_id, -1);
                self.flush(f.token);
            }
        }
        let now = Instant::now();
        while let Some(&Reverse((at, token))) = self.handshake_deadlines.peek() {
            if at > now {
                break;
            }
            self.handshake_deadlines.pop();
            if self.conns.get(&token).is_some_and(|c| c.handshake_deadline == at && c.phase != Phase::Registered) {
                self.close(token, "handshake not completed in time".into());
            }
        }
    }

    fn refuse(&mut self, token: Token, request_id: u64, refusal: Refusal) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.out.extend_from_slice(&hello_reply_frame(request_id, hello_reply::Result::Refused(refusal.to_message())));
        conn.phase = Phase::Closing;
        self.flush(token);
    }

    /// Writes what is queued for a connection; closes it when a closing one is flushed.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        while conn.out_pos < conn.out.len() {
            match transport::send_nosignal(conn.fd, &conn.out[conn.out_pos..]) {
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.close(token, format!("send failed: {e}").into()),
            }
        }
        let drained = conn.out_pos == conn.out.len();
        if drained {
            conn.out.clear();
            conn.out_pos = 0;
            if conn.phase == Phase::Closing {
                // Half-close rather than close: a peer that is still writing (a Hello sent before
                // it read the refusal) must not get EPIPE before it can read why it was refused.
                // Its bytes are drained until it closes, or until the handshake deadline.
                let _ = conn.reader.get_mut().shutdown_write();
            }
        } else if conn.out_pos > 64 * 1024 {
            conn.out.drain(..conn.out_pos);
            conn.out_pos = 0;
        }
        if drained == conn.wants_write {
            conn.wants_write = !drained;
            let interest = if drained { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
            let _ = conn.reader.get_mut().reregister(self.poll.registry(), token, interest);
        }
    }

    fn close(&mut self, token: Token, reason: Cow<'static, str>) {
        let Some(mut conn) = self.conns.remove(&token) else { return };
        let _ = conn.reader.get_mut().deregister(self.poll.registry());
        for correlation_id in conn.in_flight.drain() {
            if let Some(f) = self.in_flight.remove(&correlation_id) {
                f.ticket.complete(Err(Error::Closed(
                    format!("worker {} disconnected before replying: {reason}", conn.worker_id).into(),
                )));
            }
        }
        if conn.worker_id != 0 && self.workers.get(&conn.worker_id) == Some(&token) {
            self.workers.remove(&conn.worker_id);
            let was_registered =
                self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).remove(&conn.worker_id).is_some();
            if was_registered {
                self.shared.emit(ServerEvent::WorkerDisconnected {
                    worker_id: conn.worker_id,
                    reason: reason.into_owned(),
                });
            }
        }
    }

    fn stop(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close(token, "the server shut down".into());
        }
        for (_, f) in self.in_flight.drain() {
            f.ticket.complete(Err(Error::Closed("the server shut down".into())));
        }
        let pending: Vec<Command> = self.shared.commands.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
        for c in pending {
            if let Command::Push { ticket, .. } = c {
                ticket.complete(Err(Error::Closed("the server shut down".into())));
            }
        }
        self.shared.event_ready.notify_all();
    }
}

/// Fuzzing and corpus-replay hook (see [`super::fuzzing`]): runs `bytes`, as if one worker
/// connection sent them, through the event loop's read path without a socket: a [`FrameReader`]
/// capped at [`HELLO_MAX_BODY`] until the Hello is accepted, [`parse_incoming`] in the
/// connection's phase, and the Hello and registration checks the loop applies (with `peer` as
/// the kernel-reported peer), advancing phases as for an accepted worker. Returns the number of
/// frames accepted before the server would have closed the connection.
pub(crate) fn fuzz_worker_stream(bytes: &[u8], peer: Option<PeerCredentials>) -> usize {
    let mut reader = FrameReader::with_max_body(bytes, HELLO_MAX_BODY);
    let mut phase = Phase::Hello;
    let mut accepted = 0;
    loop {
        let incoming = match reader.read_frame() {
            Ok(frame) => parse_incoming(phase, &frame),
            Err(_) => return accepted,
        };
        match incoming {
            Ok(Incoming::Hello(_, hello)) => {
                if check_hello_fields(&hello, peer.as_ref()).is_err() {
                    return accepted;
                }
                reader.set_max_body(MAX_BODY);
                phase = Phase::Registering;
            }
            Ok(Incoming::Registration(_, reg)) => {
                if check_registration(&reg).is_err() {
                    return accepted;
                }
                phase = Phase::Registered;
            }
            Ok(Incoming::Reply(..)) => {}
            Err(_) => return accepted,
        }
        accepted += 1;
    }
}

/// Decodes one frame into what it asks for, given where the connection is in its life.
fn parse_incoming(phase: Phase, frame: &FrameView<'_>) -> Result<Incoming, String> {
    let kind = frame.frame_kind();
    match phase {
        Phase::Hello => {
            if frame.payload_protocol != registry::CONTROL || kind != Some(FrameKind::Request) {
                return Err(format!("expected a Hello, got payload protocol 0x{:04X}", frame.payload_protocol));
            }
            Hello::decode(frame.payload).map(|h| Incoming::Hello(frame.request_id, h)).map_err(|e| format!("malformed Hello: {e}"))
        }
        Phase::Registering => {
            if frame.payload_protocol != PUSH_PROTOCOL || kind != Some(FrameKind::Request) {
                return Err("expected a registration".into());
            }
            Registration::decode(frame.payload)
                .map(|r| Incoming::Registration(frame.request_id, r))
                .map_err(|e| format!("malformed Registration: {e}"))
        }
        Phase::Registered => {
            if frame.payload_protocol != PUSH_PROTOCOL || kind != Some(FrameKind::Response) {
                return Err(format!(
                    "expected a push reply, got kind {} on payload protocol 0x{:04X}",
                    frame.kind, frame.payload_protocol
                ));
            }
            PushReply::decode(frame.payload)
                .map(|r| Incoming::Reply(frame.request_id, r))
                .map_err(|e| format!("malformed PushReply: {e}"))
        }
        Phase::AwaitingDecision | Phase::Closing => Err("unexpected frame before the registration was answered".into()),
    }
}

fn check_registration(reg: &Registration) -> Result<(), String> {
    if reg.identity.is_empty() || reg.identity.len() > 256 {
        return Err("identity must be 1-256 bytes".into());
    }
    if reg.task_queue.len() > 256 || reg.node.len() > 256 {
        return Err("task_queue and node must be at most 256 bytes".into());
    }
    for p in &reg.payload_protocols {
        registry::check_servable(*p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Appends one push-protocol frame to a connection's send buffer.
fn push_frame(
    out: &mut Vec<u8>,
    kind: FrameKind,
    request_id: u64,
    payload: &[u8],
    trace: Option<(u64, &str, &str)>,
) -> Result<(), WireError> {
    let (deadline_unix_ms, traceparent, tracestate) = trace.unwrap_or((0, "", ""));
    let frame = FrameView {
        kind: kind as i32,
        payload_protocol: PUSH_PROTOCOL,
        payload,
        request_id,
        deadline_unix_ms,
        traceparent,
        tracestate,
        ..FrameView::default()
    };
    // Leaves `out` untouched on error (a body above the cap is refused before writing).
    frame.encode_to_vec(out)
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
