//! The server side: accept workers, keep their registrations, push work, collect replies.
//!
//! One event-loop thread serves every worker (no thread per worker): it accepts connections,
//! runs handshakes, reads replies and enforces deadlines. A thread that pushes writes the push
//! to the worker's socket itself, and a thread waiting in [`PushServer::push_wait`] reads the
//! reply itself (taking that worker's socket out of the event loop's epoll set meanwhile), so a
//! synchronous push costs no thread hop inside the server. User code never runs on the event
//! loop: registration decisions and connect/disconnect notices are queued as [`ServerEvent`]s
//! that the application takes with [`PushServer::next_event`] on its own thread.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use prost::Message;

use super::proto::{push_reply, PushReply, Registration, RegistrationAck};
use super::{check_registration, now_unix_ms, MAX_FAILURE_MESSAGE, PUSH_PROTOCOL, PUSH_PROTOCOL_VERSION};
use crate::control::{check_hello_fields, hello_reply_frame, negotiated, Refusal};
use crate::error::Error;
use crate::event_queue::EventQueue;
use crate::{idmap::{IdMap, IdSet}, wire::fast as fastpath};
use crate::log::Peer;
use crate::stats::{self, PushServerCounters, PushServerStats};
use crate::transport::{self, Endpoint, ListenOptions, Listener, PeerCredentials, Stream, SwitchableReads};
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
    /// Most connections at once from one peer uid (Unix sockets), so one user cannot take
    /// every connection; more are refused with a retry hint (default 2048).
    pub max_connections_per_uid: usize,
    /// Time a registered worker has to finish a frame once its first bytes arrived (default
    /// 30 s); a worker stalled mid-frame longer is disconnected, so it cannot pin the memory of
    /// a large partial frame. `Duration::ZERO` means no limit.
    pub frame_timeout: Duration,
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
            max_connections_per_uid: 2048,
            frame_timeout: Duration::from_secs(30),
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
    state: Mutex<TicketSlot>,
    done: Condvar,
}

/// A ticket's outcome and how many threads wait for it (so completing a push nobody waits on,
/// as `push_wait` does for itself, makes no wake-up call).
#[derive(Debug)]
struct TicketSlot {
    state: TicketState,
    waiting: usize,
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
                state: Mutex::new(TicketSlot { state: TicketState::Pending, waiting: 0 }),
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
        !matches!(self.lock().state, TicketState::Pending)
    }

    /// Waits for the outcome (`None` = forever) and takes it.
    ///
    /// `Timeout` means the wait ended first (the push goes on unless its own deadline passed;
    /// [`is_done`](Self::is_done) tells which). An outcome can be taken once; later calls fail
    /// with `InvalidArgument`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<PushOutcome, Error> {
        self.wait_until(timeout.map(|t| Instant::now() + t))
    }

    /// [`wait`](Self::wait) until an instant (`None` = forever); reads no clock when the
    /// outcome is already there.
    fn wait_until(&self, deadline: Option<Instant>) -> Result<PushOutcome, Error> {
        let mut slot = self.lock();
        loop {
            match std::mem::replace(&mut slot.state, TicketState::Taken) {
                TicketState::Done(result) => return result,
                TicketState::Taken => {
                    return Err(Error::invalid_argument("the push's outcome was already taken"))
                }
                TicketState::Pending => slot.state = TicketState::Pending,
            }
            slot.waiting += 1;
            slot = match deadline {
                None => self.inner.done.wait(slot).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        slot.waiting -= 1;
                        return Err(Error::Timeout(
                            format!("push {} has no reply yet", self.inner.correlation_id).into(),
                        ));
                    }
                    self.inner.done.wait_timeout(slot, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
            slot.waiting -= 1;
        }
    }

    fn complete(&self, result: Result<PushOutcome, Error>) {
        let mut slot = self.lock();
        if matches!(slot.state, TicketState::Pending) {
            slot.state = TicketState::Done(result);
            if slot.waiting > 0 {
                self.inner.done.notify_all();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, TicketSlot> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running push server. Methods take `&self` and may be called from any thread.
#[derive(Debug)]
pub struct PushServer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    endpoint: Endpoint,
}

/// State shared by the event loop and the threads that call the API.
#[derive(Debug)]
struct Shared {
    waker: Waker,
    /// The event loop's epoll set; callers take a worker's socket out of it while they read.
    registry: Registry,
    max_send_buffer: usize,
    commands: Mutex<VecDeque<Command>>,
    /// Registered workers as the API reports them.
    workers: Mutex<BTreeMap<u64, WorkerInfo>>,
    /// Registered workers' connections, for picking one and writing to it.
    links: RwLock<IdMap<Arc<Link>>>,
    /// Pushes sent and not yet answered. Lock order: a link's `reader`, `in_flight`, then a
    /// link's `io`.
    in_flight: Mutex<IdMap<InFlight>>,
    /// Links out of the epoll set between `push_wait` calls ([`LinkIo::parked`]); the event loop
    /// puts each back once idle. Changed only by a holder of the link's reader.
    parked: Mutex<HashSet<Token>>,
    /// (deadline in Unix ms, correlation id) of pushes with a deadline.
    deadlines: Mutex<BinaryHeap<Reverse<(u64, u64)>>>,
    /// When the event loop will next wake by itself (Unix ms; u64::MAX = never).
    loop_wakes_at: AtomicU64,
    round_robin: AtomicU64,
    events: EventQueue<ServerEvent>,
    events_enabled: bool,
    next_correlation: AtomicU64,
    stopping: AtomicBool,
    /// Counters for [`PushServer::stats`], shared with every link.
    stats: Arc<PushServerCounters>,
}

#[derive(Debug)]
struct InFlight {
    ticket: Ticket,
    link: Arc<Link>,
}

#[derive(Debug)]
enum Command {
    Decide { worker_id: u64, decision: RegistrationDecision },
    Disconnect { worker_id: u64 },
    /// A caller left bytes queued on a link: watch it for writability.
    WantWrite(Token),
    /// A caller reading a link found it broken.
    Close(Token, Cow<'static, str>),
    /// The event loop skipped reading a link while a caller held its reader.
    Read(Token),
    Stop,
}

/// One connection, shared by the event loop and the threads that push to its worker.
#[derive(Debug)]
struct Link {
    token: Token,
    /// The socket's descriptor, owned by `reader` and so open as long as this link lives.
    /// Writers use it directly: a link costs one descriptor, never a duplicate (which could
    /// fail, and drop a connection just accepted, when descriptors run short).
    fd: RawFd,
    /// The framed reader, owner of the socket. Held by the event loop while it reads, or by a
    /// `push_wait` caller while it waits for its reply with the socket out of the epoll set.
    reader: Mutex<FrameReader<SwitchableReads>>,
    io: Mutex<LinkIo>,
    /// Set by the event loop when it had a read to do but another thread held `reader`: that
    /// thread asks the loop to read once it lets go, since the edge-triggered event that called
    /// for the read will not come again.
    missed_read: AtomicBool,
    /// Set once the worker is registered.
    worker: OnceLock<RegisteredWorker>,
    in_flight_count: AtomicUsize,
    /// The server's counters (bytes out).
    stats: Arc<PushServerCounters>,
    /// Set when what the worker sent did not fit in memory: its pushes then fail with
    /// `NoMemory` rather than `Closed`.
    no_memory: AtomicBool,
}

/// What picking a worker needs of its registration (the whole of it is kept once, in
/// [`Shared::workers`]).
#[derive(Debug)]
struct RegisteredWorker {
    id: u64,
    task_queue: String,
    payload_protocols: Vec<u32>,
}

#[derive(Debug)]
struct LinkIo {
    out: Vec<u8>,
    out_pos: usize,
    wants_write: bool,
    closed: bool,
    in_flight: IdSet,
    /// Out of the event loop's epoll set: a `push_wait` caller took it out to read its reply
    /// itself, and it stays out for the next call until the event loop needs it (an async push
    /// or bytes to flush) or it has been idle for [`PARKED_IDLE`].
    parked: bool,
    /// When the last `push_wait` caller let go of the link.
    idle_since: Instant,
}

impl Default for LinkIo {
    fn default() -> Self {
        LinkIo {
            out: Vec::new(),
            out_pos: 0,
            wants_write: false,
            closed: false,
            in_flight: IdSet::default(),
            parked: false,
            idle_since: Instant::now(),
        }
    }
}

/// A link's send buffer larger than this is freed once empty, so one large push does not keep
/// its memory.
const KEEP_SEND_BUFFER: usize = 64 * 1024;

/// The longest a `push_wait` caller's read waits before it looks whether the event loop
/// completed its push (a deadline that passed).
const READ_SLICE: Duration = Duration::from_millis(20);

/// How long a link parked by `push_wait` may go unused before the event loop watches it again,
/// so a worker that leaves or sends something unasked while nobody pushes is noticed within
/// about twice this.
const PARKED_IDLE: Duration = Duration::from_millis(5);

/// What writing to a link did.
enum Sent {
    /// Everything went out.
    All,
    /// Some bytes wait for the socket to become writable.
    Queued,
    /// The link is closed.
    Closed,
}

impl Link {
    fn fd(&self) -> RawFd {
        self.fd
    }

    fn worker_id(&self) -> u64 {
        self.worker.get().map_or(0, |w| w.id)
    }

    /// The reason a read or decode failure `e` ends this link (after `context`), noting one
    /// that is out of memory.
    fn failed(&self, e: &WireError, context: &str) -> Cow<'static, str> {
        if matches!(e, WireError::NoMemory { .. }) {
            self.no_memory.store(true, Ordering::Relaxed);
            return format!("a frame did not fit in memory: {e}").into();
        }
        format!("{context}{e}").into()
    }

    fn lock_io(&self) -> MutexGuard<'_, LinkIo> {
        self.io.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `bytes` after whatever is already queued, without blocking.
    fn send(&self, bytes: &[u8]) -> Sent {
        let mut io = self.lock_io();
        if io.closed {
            return Sent::Closed;
        }
        if io.out_pos < io.out.len() {
            io.out.extend_from_slice(bytes);
            return Sent::Queued;
        }
        let mut at = 0;
        while at < bytes.len() {
            match transport::send_nonblocking(self.fd(), &bytes[at..]) {
                Ok(n) => {
                    at += n;
                    stats::add(&self.stats.bytes_out, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    io.closed = true;
                    return Sent::Closed;
                }
            }
        }
        if at == bytes.len() {
            return Sent::All;
        }
        io.out.clear();
        io.out_pos = 0;
        io.out.extend_from_slice(&bytes[at..]);
        Sent::Queued
    }

    /// The reader, for the event loop; `None` while another thread holds it, which then finds
    /// `missed_read` set when it lets go (see [`Link::let_go`]).
    fn reader_for_loop(&self) -> Option<MutexGuard<'_, FrameReader<SwitchableReads>>> {
        if let Ok(reader) = self.reader.try_lock() {
            return Some(reader);
        }
        self.missed_read.store(true, Ordering::SeqCst);
        // Taken again in case the holder let go before the flag was set.
        let reader = self.reader.try_lock().ok()?;
        self.missed_read.store(false, Ordering::SeqCst);
        Some(reader)
    }

    /// To call by a thread other than the event loop right after it let go of the reader: true
    /// when the event loop skipped a read meanwhile, which the thread must then ask for.
    fn let_go(&self) -> bool {
        self.missed_read.load(Ordering::SeqCst) && self.missed_read.swap(false, Ordering::SeqCst)
    }

    /// Encodes a frame straight into the send buffer (reused from frame to frame) behind
    /// whatever is queued, and writes what it can without blocking. The frame's size must have
    /// been checked ([`FrameView::checked_body_len`]); a frame that still fails to encode closes
    /// the link rather than being half-sent.
    fn send_frame(&self, frame: &FrameView<'_>) -> Sent {
        let mut io = self.lock_io();
        if io.closed {
            return Sent::Closed;
        }
        let queued = io.out_pos < io.out.len();
        if frame.encode_to_vec(&mut io.out).is_err() {
            io.closed = true;
            return Sent::Closed;
        }
        if queued {
            return Sent::Queued;
        }
        while io.out_pos < io.out.len() {
            let at = io.out_pos;
            match transport::send_nonblocking(self.fd(), &io.out[at..]) {
                Ok(n) => {
                    io.out_pos += n;
                    stats::add(&self.stats.bytes_out, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::Queued,
                Err(_) => {
                    io.closed = true;
                    return Sent::Closed;
                }
            }
        }
        io.out.clear();
        io.out_pos = 0;
        if io.out.capacity() > KEEP_SEND_BUFFER {
            io.out = Vec::new();
        }
        Sent::All
    }

    /// Bytes queued and not yet written.
    fn backlog(&self) -> usize {
        let io = self.lock_io();
        io.out.len() - io.out_pos
    }
}

impl Shared {
    fn emit(&self, event: ServerEvent) {
        if self.events_enabled {
            self.events.push(event);
        }
    }

    fn command(&self, c: Command) {
        self.commands.lock().unwrap_or_else(|p| p.into_inner()).push_back(c);
        let _ = self.waker.wake();
    }

    fn lock_in_flight(&self) -> MutexGuard<'_, IdMap<InFlight>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update_in_flight(&self, worker_id: u64, delta: isize) {
        if let Some(w) = self.workers.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&worker_id) {
            w.in_flight = w.in_flight.saturating_add_signed(delta);
        }
    }

    /// The named worker, or the least busy registered worker matching the target, taking turns
    /// among equals.
    fn pick(&self, target: &Target) -> Option<Arc<Link>> {
        let links = self.links.read().unwrap_or_else(|p| p.into_inner());
        if let Target::Worker(id) = target {
            return links.get(id).cloned();
        }
        let matches = |w: &RegisteredWorker| match target {
            Target::TaskQueue(q) => w.task_queue == *q,
            Target::Protocol(p) => w.payload_protocols.contains(p),
            Target::Worker(_) => false,
        };
        let mut least: Vec<&Arc<Link>> = Vec::new();
        let mut fewest = usize::MAX;
        for link in links.values() {
            let Some(w) = link.worker.get() else { continue };
            if !matches(w) {
                continue;
            }
            let busy = link.in_flight_count.load(Ordering::Relaxed);
            match busy.cmp(&fewest) {
                std::cmp::Ordering::Less => {
                    fewest = busy;
                    least.clear();
                    least.push(link);
                }
                std::cmp::Ordering::Equal => least.push(link),
                std::cmp::Ordering::Greater => {}
            }
        }
        if least.is_empty() {
            return None;
        }
        least.sort_unstable_by_key(|l| l.token.0);
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
        Some(Arc::clone(least[(turn % least.len() as u64) as usize]))
    }

    /// Sends a push from the calling thread. Returns the link it went to, or completes the
    /// ticket with the reason it could not be sent.
    /// `deadline_unix_ms` replaces the spec's own; the caller has it kept
    /// ([`enforce_deadline`](Self::enforce_deadline)).
    fn start_push(&self, target: &Target, spec: &PushSpec, deadline_unix_ms: u64, ticket: &Ticket) -> Option<Arc<Link>> {
        let Some(link) = self.pick(target) else {
            let what = match target {
                Target::Worker(id) => format!("worker {id} is not connected"),
                Target::TaskQueue(q) => format!("no worker is registered for task queue {q:?}"),
                Target::Protocol(p) => format!("no worker serves payload protocol 0x{p:04X}"),
            };
            stats::bump(&self.stats.pushes_unsent);
            ticket.complete(Err(Error::NotFound(what.into())));
            return None;
        };
        if link.backlog() > self.max_send_buffer {
            stats::bump(&self.stats.pushes_unsent);
            ticket.complete(Err(Error::Again(
                format!("worker {} is not keeping up (send buffer full)", link.worker_id()).into(),
            )));
            return None;
        }
        // A deadline the spec did not set was just derived from the clock by `push_wait`.
        let own_deadline = deadline_unix_ms == spec.deadline_unix_ms;
        if own_deadline && deadline_unix_ms != 0 && deadline_unix_ms <= now_unix_ms() {
            stats::bump(&self.stats.pushes_unsent);
            ticket.complete(Err(Error::Timeout("the push's deadline has already passed".into())));
            return None;
        }
        let correlation_id = ticket.correlation_id();
        fastpath::with_plain_message(spec.payload_protocol, &spec.payload, |payload| {
            let frame = FrameView {
                kind: FrameKind::Event as i32,
                payload_protocol: PUSH_PROTOCOL,
                payload,
                request_id: correlation_id,
                deadline_unix_ms,
                traceparent: &spec.traceparent,
                tracestate: &spec.tracestate,
                ..FrameView::default()
            };
            if let Err(e) = frame.checked_body_len() {
                stats::bump(&self.stats.pushes_unsent);
                ticket.complete(Err(e.into()));
                return None;
            }
            {
                // Recorded before the bytes leave, so a reply or a disconnect always finds it.
                let mut in_flight = self.lock_in_flight();
                let mut io = link.lock_io();
                if io.closed {
                    drop(io);
                    drop(in_flight);
                    stats::bump(&self.stats.pushes_unsent);
                    ticket.complete(Err(Error::Closed(format!("worker {} disconnected", link.worker_id()).into())));
                    return None;
                }
                io.in_flight.insert(correlation_id);
                in_flight.insert(correlation_id, InFlight { ticket: ticket.clone(), link: Arc::clone(&link) });
            }
            link.in_flight_count.fetch_add(1, Ordering::Relaxed);
            stats::bump(&self.stats.pushes_sent);
            self.update_in_flight(link.worker_id(), 1);
            match link.send_frame(&frame) {
                Sent::All => {}
                Sent::Queued => self.command(Command::WantWrite(link.token)),
                Sent::Closed => self.command(Command::Close(link.token, "send failed".into())),
            }
            Some(link)
        })
    }

    /// Has the event loop fail a push that is still unanswered at `deadline_unix_ms` (0 = none),
    /// and tell its worker to drop it.
    fn enforce_deadline(&self, deadline_unix_ms: u64, correlation_id: u64) {
        if deadline_unix_ms == 0 {
            return;
        }
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner()).push(Reverse((deadline_unix_ms, correlation_id)));
        if deadline_unix_ms < self.loop_wakes_at.load(Ordering::Acquire) {
            let _ = self.waker.wake();
        }
    }

    /// A worker's reply arrived (read by the event loop or by a waiting caller).
    fn complete_reply(&self, link: &Link, correlation_id: u64, reply: PushReply) {
        let entry = {
            let mut in_flight = self.lock_in_flight();
            let mut io = link.lock_io();
            if !io.in_flight.remove(&correlation_id) {
                // Late (its deadline passed) or never sent: nothing waits for it.
                return;
            }
            drop(io);
            in_flight.remove(&correlation_id)
        };
        link.in_flight_count.fetch_sub(1, Ordering::Relaxed);
        self.update_in_flight(link.worker_id(), -1);
        if let Some(f) = entry {
            let outcome = match reply.result {
                Some(push_reply::Result::Payload(p)) => PushOutcome::Reply(p),
                Some(push_reply::Result::Failure(f)) => PushOutcome::WorkerFailure { code: f.code, message: f.message },
                None => PushOutcome::Reply(Vec::new()),
            };
            match &outcome {
                PushOutcome::Reply(_) => stats::bump(&self.stats.pushes_answered),
                PushOutcome::WorkerFailure { .. } => stats::bump(&self.stats.pushes_failed),
            }
            f.ticket.complete(Ok(outcome));
        }
    }

    /// Moves every complete buffered frame of a registered link to its ticket. Any frame but a
    /// push reply ends the connection (the reason is returned).
    fn drain_replies(&self, link: &Link, reader: &mut FrameReader<SwitchableReads>) -> Result<(), Cow<'static, str>> {
        loop {
            let (id, reply) = {
                let frame = match reader.next_buffered() {
                    Ok(Some(f)) => f,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(link.failed(&e, "connection failed: ")),
                };
                match parse_incoming(Phase::Registered, &frame) {
                    Ok(Incoming::Reply(id, reply)) => (id, reply),
                    Ok(_) => return Err("protocol violation: unexpected frame".into()),
                    Err(e) => return Err(link.failed(&e, "")),
                }
            };
            self.complete_reply(link, id, reply);
        }
    }

    /// Waits for `ticket` by reading `link` on the calling thread, if no one else is reading it.
    /// Returns without waiting when another thread (the event loop or another caller) reads.
    fn read_until_done(&self, link: &Link, ticket: &Ticket, deadline: Instant) {
        let Ok(mut reader) = link.reader.try_lock() else { return };
        if link.backlog() > 0 {
            // The push is still being written (larger than the socket's buffers): the event loop
            // writes the rest once the socket is writable, which it only learns with the link
            // in its set, and reads the reply. Back in the set, then, and the loop waits.
            drop(reader);
            if link.let_go() {
                self.command(Command::Read(link.token));
            }
            if link.lock_io().parked {
                self.unpark(link);
            }
            return;
        }
        // Out of the event loop's epoll set while this thread reads, so it is not woken.
        let first_parked = self.park(link);
        let mut failure = self.drain_replies(link, &mut reader).err();
        // Waiting reads, at most READ_SLICE each: the ticket may also be completed by the event
        // loop (deadline passed, worker disconnected), which is seen between two reads. Closing
        // the link shuts the socket down, which ends a read at once.
        reader.get_mut().wait = true;
        while failure.is_none() && !ticket.is_done() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Err(e) = reader.get_mut().set_wait_limit(Some(left.min(READ_SLICE))) {
                failure = Some(format!("connection failed: {e}").into());
                break;
            }
            failure = match reader.read_more() {
                Ok(n) => {
                    stats::add(&self.stats.bytes_in, n);
                    self.drain_replies(link, &mut reader).err()
                }
                Err(WireError::Timeout) => self.drain_replies(link, &mut reader).err(),
                Err(WireError::Closed) => Some("worker closed the connection".into()),
                Err(e) => Some(link.failed(&e, "connection failed: ")),
            };
        }
        reader.get_mut().wait = false;
        // Part of a frame already read here raises no event later: the event loop must look, so
        // that a worker stalled mid-frame meets `frame_timeout`.
        let partial = !reader.buffered().is_empty();
        drop(reader);
        if link.let_go() || (partial && failure.is_none()) {
            self.command(Command::Read(link.token));
        }
        if let Some(reason) = failure {
            self.command(Command::Close(link.token, reason));
            return;
        }
        // Checked after letting go of the reader: a thread that wanted the link back in the
        // set while this one held it could not put it back itself.
        let needs_loop = {
            let mut io = link.lock_io();
            io.idle_since = Instant::now();
            !io.in_flight.is_empty() || io.wants_write
        };
        if needs_loop {
            self.unpark(link);
        }
        if first_parked {
            // The event loop has no parked link to look after yet: it schedules the idle check.
            let _ = self.waker.wake();
        }
    }

    /// Takes a link whose reader the caller holds out of the event loop's epoll set, unless it
    /// is out already. True when it is the only parked link (the event loop must be told).
    fn park(&self, link: &Link) -> bool {
        let mut io = link.lock_io();
        if io.parked || io.closed {
            return false;
        }
        let _ = self.registry.deregister(&mut SourceFd(&link.fd()));
        io.parked = true;
        drop(io);
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        parked.insert(link.token);
        parked.len() == 1
    }

    /// Puts a parked link back in the event loop's epoll set, with the interest in force. Fails
    /// (false) while another thread holds its reader; a `push_wait` caller re-checks whether
    /// the link is needed when it lets go.
    fn unpark(&self, link: &Link) -> bool {
        let Ok(reader) = link.reader.try_lock() else { return false };
        let mut io = link.lock_io();
        if io.parked {
            io.parked = false;
            if !io.closed {
                let interest = if io.wants_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                let _ = self.registry.register(&mut SourceFd(&link.fd()), link.token, interest);
            }
        }
        drop(io);
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&link.token);
        drop(reader);
        // Bytes already waiting raise the event at once, maybe while this thread held the reader.
        if link.let_go() {
            self.command(Command::Read(link.token));
        }
        true
    }
}

impl PushServer {
    /// Binds the endpoint and starts serving.
    pub fn bind(opts: ServerOptions) -> Result<PushServer, Error> {
        if opts.allow_remote_tcp && opts.auth_token.is_empty() {
            return Err(Error::Config("a server reachable from other hosts requires an auth token".into()));
        }
        let listener = Listener::bind(&opts.endpoint, &ListenOptions { allow_remote_tcp: opts.allow_remote_tcp })?;
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
    pub fn push_wait(&self, target: Target, spec: PushSpec, timeout: Duration) -> Result<PushOutcome, Error> {
        self.push_wait_ref(&target, &spec, timeout)
    }

    /// [`push_wait`](Self::push_wait) on a borrowed target and job, which are copied nowhere
    /// but into the frame.
    pub fn push_wait_ref(&self, target: &Target, spec: &PushSpec, timeout: Duration) -> Result<PushOutcome, Error> {
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
        let ticket = Ticket::new(self.shared.next_correlation.fetch_add(1, Ordering::Relaxed));
        if let Some(link) = self.shared.start_push(target, spec, deadline_unix_ms, &ticket) {
            // While this thread reads the reply itself it also keeps the deadline, so a push
            // answered in time never enters the event loop's deadline heap.
            self.shared.read_until_done(&link, &ticket, expires.min(wait_until));
            if !ticket.is_done() {
                // Another thread reads this worker, or the deadline came: the loop takes over.
                self.shared.enforce_deadline(deadline_unix_ms, ticket.correlation_id());
            }
        }
        ticket.wait_until(Some(wait_until))
    }

    /// The registered workers.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
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
    pub fn event_fd(&self) -> RawFd {
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

// ---------------------------------------------------------------------------------------------
// The event loop
// ---------------------------------------------------------------------------------------------

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// Most server events kept waiting for [`PushServer::next_event`]; beyond that new ones are
/// dropped (and counted), so an application that stops reading cannot grow memory.
const MAX_QUEUED_EVENTS: usize = 65_536;

enum Accepting {
    Unix(UnixListener),
    Tcp(TcpListener),
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
    link: Arc<Link>,
    phase: Phase,
    peer: Option<PeerCredentials>,
    handshake_deadline: Instant,
    /// While a registered worker's partial frame is buffered: when it must be complete, and
    /// the reader's frame count then (a count that moved means frames are completing).
    partial_frame: Option<(Instant, u64)>,
    worker_id: u64,
    registration: Option<Registration>,
    registration_request_id: u64,
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
    /// Workers waiting for the application's decision, by the id they will get.
    pending_decisions: HashMap<u64, Token>,
    /// Open connections per peer uid (Unix peers only).
    per_uid: HashMap<u32, usize>,
    /// Handshake and partial-frame deadlines of connections (stale entries are skipped).
    conn_deadlines: BinaryHeap<Reverse<(Instant, Token)>>,
    /// Set when accepting failed (EMFILE, ENFILE, ENOMEM...): when to try again.
    accept_retry: Option<Instant>,
    /// When to look at the parked links next (`None`: at the next wake-up).
    park_check: Option<Instant>,
}

/// Ends a refused connection's sending side once its refusal is out, rather than closing it: a
/// peer still writing (a Hello sent before it read the refusal) must not get EPIPE before it can
/// read why it was refused. Its bytes are drained (phase `Closing`) until it closes, or until the
/// handshake deadline.
fn half_close(link: &Link) {
    let _ = transport::shutdown(link.fd(), std::net::Shutdown::Write);
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
            pending_decisions: HashMap::new(),
            conn_deadlines: BinaryHeap::new(),
            per_uid: HashMap::new(),
            accept_retry: None,
            park_check: None,
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
            self.unpark_idle();
            if self.accept_retry.is_some_and(|at| at <= Instant::now()) {
                self.accept_all();
            }
        }
        self.stop();
    }

    /// How long to sleep: until the next push deadline or handshake deadline. Publishes the
    /// push part so a caller adding an earlier deadline knows to wake the loop.
    fn next_timeout(&self) -> Option<Duration> {
        let deadlines = self.shared.deadlines.lock().unwrap_or_else(|p| p.into_inner());
        let push_ms = deadlines.peek().map(|Reverse((ms, _))| *ms);
        self.shared.loop_wakes_at.store(push_ms.unwrap_or(u64::MAX), Ordering::Release);
        drop(deadlines);
        let mut next: Option<Duration> = push_ms.map(|ms| Duration::from_millis(ms.saturating_sub(now_unix_ms())));
        let conn_deadline = self.conn_deadlines.peek().map(|Reverse((at, _))| *at);
        for at in conn_deadline.into_iter().chain(self.accept_retry).chain(self.park_check) {
            let d = at.saturating_duration_since(Instant::now());
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        next
    }

    fn accept_all(&mut self) {
        self.accept_retry = None;
        loop {
            let accepted = match &self.accepting {
                Accepting::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(OwnedFd::from(s).into())),
                Accepting::Tcp(l) => l.accept().map(|(s, _)| {
                    let s: std::net::TcpStream = OwnedFd::from(s).into();
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
            };
            match accepted {
                Ok(stream) => self.add_connection(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors or similar: stop accepting for now and retry shortly, since
                // the edge-triggered listener reports nothing new for connections already queued.
                Err(_) => {
                    self.accept_retry = Some(Instant::now() + transport::ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    fn add_connection(&mut self, socket: Stream) {
        // Blocking mode, so a `push_wait` caller can wait for its reply in one `recv`; every
        // other read and write on it says `MSG_DONTWAIT`, so the event loop never blocks.
        if socket.set_nonblocking(false).is_err() {
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let peer = socket.peer_credentials();
        stats::bump(&self.shared.stats.connections_accepted);
        crate::log!(Debug, "push-server", "connection {} accepted from {}", token.0, Peer(peer));
        let link = Arc::new(Link {
            token,
            fd: socket.as_raw_fd(),
            reader: Mutex::new(FrameReader::with_max_body(SwitchableReads::new(socket), HELLO_MAX_BODY)),
            io: Mutex::new(LinkIo::default()),
            missed_read: AtomicBool::new(false),
            worker: OnceLock::new(),
            in_flight_count: AtomicUsize::new(0),
            stats: Arc::clone(&self.shared.stats),
            no_memory: AtomicBool::new(false),
        });
        if self.shared.registry.register(&mut SourceFd(&link.fd()), token, Interest::READABLE).is_err() {
            return;
        }
        let handshake_deadline = Instant::now() + self.opts.handshake_timeout;
        self.conns.insert(
            token,
            Conn {
                link,
                phase: Phase::Hello,
                peer,
                handshake_deadline,
                partial_frame: None,
                worker_id: 0,
                registration: None,
                registration_request_id: 0,
            },
        );
        self.conn_deadlines.push(Reverse((handshake_deadline, token)));
        self.shared.stats.connections_open.fetch_add(1, Ordering::Relaxed);
        if let Some(p) = peer {
            *self.per_uid.entry(p.uid).or_insert(0) += 1;
        }

        // Refusals that need no Hello: another user's process, too many connections.
        let refusal = if let Some(p) = peer.filter(|p| p.uid != transport::effective_uid()) {
            (!self.opts.allow_other_uids).then(|| {
                Refusal::new(ErrorCode::PeerRejected, format!("peer uid {} is not allowed on this server", p.uid))
            })
        } else if self.conns.len() > self.opts.max_connections && self.reap_departed() == 0 {
            Some(Refusal::new(ErrorCode::RateLimited, "too many connections").with_retry_after_ms(1000))
        } else if peer.is_some_and(|p| self.per_uid.get(&p.uid).copied().unwrap_or(0) > self.opts.max_connections_per_uid)
            && self.reap_departed() == 0
        {
            let mut r = Refusal::new(ErrorCode::RateLimited, "too many connections from this user").with_retry_after_ms(1000);
            r.details.insert("scope".into(), "peer-uid".into());
            Some(r)
        } else {
            None
        };
        if let Some(r) = refusal {
            self.refuse(token, 0, r);
        }
    }

    /// Closes connections still saying Hello whose peer has already gone (an accept burst can
    /// queue many such), so they stop counting towards `max_connections`; returns how many.
    /// Runs only when the limit is reached.
    fn reap_departed(&mut self) -> usize {
        let gone: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Hello && transport::peer_gone(c.link.fd()))
            .map(|(t, _)| *t)
            .collect();
        for &token in &gone {
            self.close(token, "peer closed the connection".into());
        }
        gone.len()
    }

    fn read_from(&mut self, token: Token) {
        let Some(conn) = self.conns.get(&token) else { return };
        let link = Arc::clone(&conn.link);
        // A caller waiting for its reply reads this link itself.
        let Some(mut reader) = link.reader_for_loop() else { return };
        loop {
            let Some(phase) = self.conns.get(&token).map(|c| c.phase) else { return };
            match phase {
                Phase::Closing => {
                    // Drain and discard; the connection ends once its last reply is flushed.
                    let mut sink = [0u8; 4096];
                    match transport::recv_nonblocking(link.fd(), &mut sink) {
                        Ok(0) => return self.close(token, "peer closed the connection".into()),
                        Ok(n) => {
                            stats::add(&self.shared.stats.bytes_in, n);
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(_) => return self.close(token, "connection failed".into()),
                    }
                }
                Phase::Registered => {
                    if let Err(reason) = self.shared.drain_replies(&link, &mut reader) {
                        return self.close(token, reason);
                    }
                }
                _ => {
                    let incoming = match reader.next_buffered() {
                        Ok(Some(frame)) => Some(parse_incoming(phase, &frame)),
                        Ok(None) => None,
                        Err(WireError::UnsupportedFramingVersion { .. }) if phase == Phase::Hello => {
                            let refusal = Refusal::new(ErrorCode::VersionUnsupported, "unsupported framing version");
                            return self.refuse(token, 0, refusal);
                        }
                        Err(e) => return self.close(token, format!("connection failed: {e}").into()),
                    };
                    if let Some(incoming) = incoming {
                        match incoming {
                            Ok(Incoming::Hello(id, hello)) => self.on_hello(token, id, hello),
                            Ok(Incoming::Registration(id, reg)) => self.on_registration(token, id, reg),
                            Ok(Incoming::Reply(..)) => unreachable!("replies are parsed only when registered"),
                            Err(e) => return self.close(token, link.failed(&e, "")),
                        }
                        // The Hello cap holds until the worker is registered: a registration is
                        // small (MAX_REGISTRATION_BYTES), pushes' replies may not be.
                        if self.conns.get(&token).is_some_and(|c| c.phase == Phase::Registered) {
                            reader.set_max_body(MAX_BODY);
                        }
                        continue;
                    }
                }
            }
            match reader.read_more() {
                Ok(n) => stats::add(&self.shared.stats.bytes_in, n),
                // WouldBlock: nothing more for now.
                Err(WireError::Timeout) => return self.track_partial_frame(token, &reader),
                Err(WireError::Closed) => return self.close(token, "worker closed the connection".into()),
                Err(WireError::UnsupportedFramingVersion { .. }) if phase == Phase::Hello => {
                    let refusal = Refusal::new(ErrorCode::VersionUnsupported, "unsupported framing version");
                    return self.refuse(token, 0, refusal);
                }
                Err(e) => return self.close(token, link.failed(&e, "connection failed: ")),
            }
        }
    }

    /// Starts, restarts or clears the deadline of a registered worker's partial frame, so a
    /// worker that stalls mid-frame is disconnected after [`ServerOptions::frame_timeout`]
    /// while one that keeps completing frames never is.
    fn track_partial_frame(&mut self, token: Token, reader: &FrameReader<SwitchableReads>) {
        let timeout = self.opts.frame_timeout;
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let frames = reader.frames_read();
        if conn.phase != Phase::Registered || timeout.is_zero() || reader.buffered().is_empty() {
            conn.partial_frame = None;
        } else if conn.partial_frame.is_none_or(|(_, seen)| seen != frames) {
            let at = Instant::now() + timeout;
            conn.partial_frame = Some((at, frames));
            self.conn_deadlines.push(Reverse((at, token)));
        }
    }

    /// A partial-frame deadline passed: disconnects the worker if it is still stalled on the
    /// same frame; re-tracks it otherwise. A worker whose reader a `push_wait` caller holds is
    /// being read right now: it is looked at again one timeout later.
    fn partial_frame_expired(&mut self, token: Token) {
        let timeout = self.opts.frame_timeout;
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let link = Arc::clone(&conn.link);
        let Ok(reader) = link.reader.try_lock() else {
            if let Some((at, _)) = conn.partial_frame.as_mut() {
                *at = Instant::now() + timeout;
                self.conn_deadlines.push(Reverse((*at, token)));
            }
            return;
        };
        let seen = conn.partial_frame.map(|(_, seen)| seen);
        if seen == Some(reader.frames_read()) && !reader.buffered().is_empty() {
            drop(reader);
            return self.close(token, "the worker stalled in the middle of a frame".into());
        }
        conn.partial_frame = None;
        self.track_partial_frame(token, &reader);
    }

    fn on_hello(&mut self, token: Token, request_id: u64, hello: Hello) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let check = check_hello_fields(&hello, conn.peer.as_ref()).and_then(|()| {
            if hello.service_name != self.opts.service_name {
                let mut refusal = Refusal::new(ErrorCode::ServiceUnknown, "service is not registered");
                refusal.details.insert(super::SERVICE_DETAIL.into(), self.opts.service_name.clone());
                return Err(refusal);
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
            // A refused Hello names the server's role, so the client can say what it reached
            // (framing-level refusals stay byte-identical to the reference broker's).
            Err(mut refusal) => {
                refusal.details.insert(super::ROLE_DETAIL.into(), super::PUSH_SERVER_ROLE.into());
                self.refuse(token, request_id, refusal)
            }
            Ok(()) => {
                let connection_id = self.next_connection_id;
                self.next_connection_id += 1;
                let reply = negotiated(PUSH_PROTOCOL_VERSION, connection_id, hello.client_keepalive_secs);
                conn.phase = Phase::Registering;
                let bytes = hello_reply_frame(request_id, hello_reply::Result::Negotiated(reply));
                self.send(token, &bytes);
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
            conn.registration = Some(reg.clone());
            conn.phase = Phase::AwaitingDecision;
            let peer = conn.peer;
            self.pending_decisions.insert(worker_id, token);
            self.shared.emit(ServerEvent::RegistrationRequest { worker_id, registration: reg, peer });
        } else {
            conn.registration = Some(reg);
            self.answer_registration(token, RegistrationDecision::Accept);
        }
    }

    fn answer_registration(&mut self, token: Token, decision: RegistrationDecision) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        self.pending_decisions.remove(&conn.worker_id);
        let ack = match &decision {
            RegistrationDecision::Accept => {
                RegistrationAck { accepted: true, reason: String::new(), worker_id: conn.worker_id }
            }
            RegistrationDecision::Reject(reason) => {
                RegistrationAck { accepted: false, reason: reason.clone(), worker_id: 0 }
            }
        };
        let mut frame = Vec::new();
        push_frame(&mut frame, FrameKind::Response, conn.registration_request_id, &ack.encode_to_vec(), None)
            .expect("a registration ack is far below the frame cap");
        match decision {
            RegistrationDecision::Accept => {
                conn.phase = Phase::Registered;
                let registration = conn.registration.take().unwrap_or_default();
                let task_queue = registration.task_queue.clone();
                let payload_protocols = registration.payload_protocols.clone();
                let info = WorkerInfo { id: conn.worker_id, registration, peer: conn.peer, in_flight: 0 };
                let link = Arc::clone(&conn.link);
                stats::bump(&self.shared.stats.registrations_accepted);
                crate::log!(
                    Info,
                    "push-server",
                    "worker {} registered from {}: identity {:?}, task queue {:?}",
                    info.id,
                    Peer(info.peer),
                    info.registration.identity,
                    info.registration.task_queue
                );
                // Decided later (not while the event loop reads this link, which raises the cap
                // itself): replies may now be as large as any frame.
                if let Ok(mut reader) = link.reader.try_lock() {
                    reader.set_max_body(MAX_BODY);
                }
                let _ = link.worker.set(RegisteredWorker { id: info.id, task_queue, payload_protocols });
                // The ack is queued before the worker can be picked, so every push queues behind
                // it; and the worker is known before the ack reaches it.
                link.lock_io().out.extend_from_slice(&frame);
                self.shared.links.write().unwrap_or_else(|p| p.into_inner()).insert(info.id, link);
                self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).insert(info.id, info.clone());
                self.shared.emit(ServerEvent::WorkerConnected(info));
                self.flush(token);
            }
            RegistrationDecision::Reject(reason) => {
                stats::bump(&self.shared.stats.registrations_rejected);
                crate::log!(
                    Warn,
                    "push-server",
                    "registration of connection {} from {} rejected: {reason}",
                    token.0,
                    Peer(conn.peer)
                );
                conn.phase = Phase::Closing;
                self.send(token, &frame);
            }
        }
    }

    fn run_commands(&mut self) -> bool {
        loop {
            let command = self.shared.commands.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            match command {
                None => return true,
                Some(Command::Stop) => return false,
                Some(Command::Decide { worker_id, decision }) => {
                    if let Some(&token) = self.pending_decisions.get(&worker_id) {
                        if self.conns.get(&token).is_some_and(|c| c.phase == Phase::AwaitingDecision) {
                            self.answer_registration(token, decision);
                        }
                    }
                }
                Some(Command::Disconnect { worker_id }) => {
                    let token = self.shared.links.read().unwrap_or_else(|p| p.into_inner()).get(&worker_id).map(|l| l.token);
                    if let Some(token) = token {
                        self.close(token, "disconnected by the server".into());
                    }
                }
                Some(Command::WantWrite(token)) => self.flush(token),
                Some(Command::Close(token, reason)) => self.close(token, reason),
                Some(Command::Read(token)) => self.read_from(token),
            }
        }
    }

    /// Fails pushes past their deadline (telling their worker to drop them) and closes
    /// connections that did not finish the handshake in time.
    fn expire(&mut self) {
        let now_ms = now_unix_ms();
        loop {
            let due = {
                let mut deadlines = self.shared.deadlines.lock().unwrap_or_else(|p| p.into_inner());
                match deadlines.peek() {
                    Some(&Reverse((ms, id))) if ms <= now_ms => {
                        deadlines.pop();
                        Some(id)
                    }
                    _ => None,
                }
            };
            let Some(correlation_id) = due else { break };
            let entry = {
                let mut in_flight = self.shared.lock_in_flight();
                let Some(entry) = in_flight.remove(&correlation_id) else { continue };
                entry.link.lock_io().in_flight.remove(&correlation_id);
                entry
            };
            entry.link.in_flight_count.fetch_sub(1, Ordering::Relaxed);
            self.shared.update_in_flight(entry.link.worker_id(), -1);
            stats::bump(&self.shared.stats.pushes_timed_out);
            crate::log!(
                Warn,
                "push-server",
                "push {correlation_id} to worker {} passed its deadline without a reply",
                entry.link.worker_id()
            );
            entry.ticket.complete(Err(Error::Timeout(
                format!("push {correlation_id} passed its deadline without a reply").into(),
            )));
            let mut cancel = Vec::new();
            push_frame(&mut cancel, FrameKind::Cancel, correlation_id, &[], None)
                .expect("an empty cancel frame is far below the frame cap");
            self.send(entry.link.token, &cancel);
        }
        let now = Instant::now();
        while let Some(&Reverse((at, token))) = self.conn_deadlines.peek() {
            if at > now {
                break;
            }
            self.conn_deadlines.pop();
            let Some(conn) = self.conns.get(&token) else { continue };
            if conn.handshake_deadline == at && conn.phase != Phase::Registered {
                if conn.phase != Phase::Closing {
                    stats::bump(&self.shared.stats.handshake_timeouts);
                }
                self.close(token, "handshake not completed in time".into());
            } else if conn.partial_frame.is_some_and(|(deadline, _)| deadline == at) {
                self.partial_frame_expired(token);
            }
        }
    }

    fn refuse(&mut self, token: Token, request_id: u64, refusal: Refusal) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        conn.phase = Phase::Closing;
        self.shared.stats.refused.count(refusal.code);
        crate::log!(
            Warn,
            "push-server",
            "connection {} from {} refused ({}): {}",
            token.0,
            Peer(conn.peer),
            refusal.code_name(),
            refusal.reason
        );
        let bytes = hello_reply_frame(request_id, hello_reply::Result::Refused(refusal.to_message()));
        self.send(token, &bytes);
    }

    /// Writes bytes on a connection from the event loop; a closing connection ends once its
    /// bytes are out.
    fn send(&mut self, token: Token, bytes: &[u8]) {
        let Some(conn) = self.conns.get(&token) else { return };
        match conn.link.send(bytes) {
            Sent::All => {
                if conn.phase == Phase::Closing {
                    half_close(&conn.link);
                }
            }
            Sent::Queued => self.flush(token),
            Sent::Closed => self.close(token, "send failed".into()),
        }
    }

    /// Writes what is queued for a connection and watches it for writability while bytes remain;
    /// closes a closing connection once flushed.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get(&token) else { return };
        let link = Arc::clone(&conn.link);
        let closing = conn.phase == Phase::Closing;
        let mut io = link.lock_io();
        while io.out_pos < io.out.len() {
            let at = io.out_pos;
            match transport::send_nonblocking(link.fd(), &io.out[at..]) {
                Ok(n) => {
                    io.out_pos += n;
                    stats::add(&self.shared.stats.bytes_out, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    drop(io);
                    return self.close(token, format!("send failed: {e}").into());
                }
            }
        }
        let drained = io.out_pos == io.out.len();
        if drained {
            io.out.clear();
            io.out_pos = 0;
        } else if io.out_pos > 64 * 1024 {
            let at = io.out_pos;
            io.out.drain(..at);
            io.out_pos = 0;
        }
        let mut unpark = false;
        if drained == io.wants_write {
            io.wants_write = !drained;
            if io.parked {
                // Out of the set (see `LinkIo::parked`): back in to be told when writable.
                unpark = !drained;
            } else {
                let interest = if drained { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
                let _ = self.shared.registry.reregister(&mut SourceFd(&link.fd()), token, interest);
            }
        }
        drop(io);
        if unpark {
            self.shared.unpark(&link);
        }
        if drained && closing {
            half_close(&link);
        }
    }

    /// Puts back in the epoll set every parked link that no `push_wait` caller has used for
    /// [`PARKED_IDLE`], and reads what it has, so a worker that left or sent something while
    /// parked is noticed.
    fn unpark_idle(&mut self) {
        let now = Instant::now();
        if self.park_check.is_some_and(|at| at > now) {
            return;
        }
        self.park_check = None;
        let tokens: Vec<Token> = self.shared.parked.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        for token in tokens {
            let Some(conn) = self.conns.get(&token) else {
                self.shared.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&token);
                continue;
            };
            let link = Arc::clone(&conn.link);
            let due = link.lock_io().idle_since + PARKED_IDLE;
            // A caller reading it now holds the reader: look again later.
            let next = if due <= now && self.shared.unpark(&link) {
                self.read_from(token);
                continue;
            } else if due <= now {
                now + PARKED_IDLE
            } else {
                due
            };
            self.park_check = Some(self.park_check.map_or(next, |at| at.min(next)));
        }
    }

    fn close(&mut self, token: Token, reason: Cow<'static, str>) {
        let Some(conn) = self.conns.remove(&token) else { return };
        self.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
        if let Some(p) = conn.peer {
            transport::forget_peer_uid(&mut self.per_uid, p.uid);
        }
        let violation = reason.starts_with("protocol violation");
        if violation {
            stats::bump(&self.shared.stats.protocol_violations);
        }
        let stopping = self.shared.stopping.load(Ordering::Acquire);
        if conn.phase == Phase::Registered && !stopping {
            stats::bump(&self.shared.stats.workers_lost);
            crate::log!(Warn, "push-server", "worker {} lost: {reason}", conn.worker_id);
        } else if violation || reason.starts_with("handshake") {
            crate::log!(Warn, "push-server", "connection {} from {} closed: {reason}", token.0, Peer(conn.peer));
        } else {
            crate::log!(Debug, "push-server", "connection {} closed: {reason}", token.0);
        }
        let link = conn.link;
        let _ = self.shared.registry.deregister(&mut SourceFd(&link.fd()));
        self.pending_decisions.remove(&conn.worker_id);
        let was_registered = conn.phase == Phase::Registered;
        if was_registered {
            self.shared.links.write().unwrap_or_else(|p| p.into_inner()).remove(&conn.worker_id);
        }
        let failed: Vec<InFlight> = {
            let mut in_flight = self.shared.lock_in_flight();
            let mut io = link.lock_io();
            io.closed = true;
            io.in_flight.drain().filter_map(|id| in_flight.remove(&id)).collect()
        };
        // Wakes a caller reading this socket; the descriptor closes with the last reference.
        let _ = transport::shutdown(link.fd(), std::net::Shutdown::Both);
        stats::add(&self.shared.stats.pushes_lost, failed.len());
        let no_memory = link.no_memory.load(Ordering::Relaxed);
        for f in failed {
            let why = format!("worker {} disconnected before replying: {reason}", conn.worker_id).into();
            f.ticket.complete(Err(if no_memory { Error::NoMemory(why) } else { Error::Closed(why) }));
        }
        if was_registered {
            self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).remove(&conn.worker_id);
            self.shared.emit(ServerEvent::WorkerDisconnected { worker_id: conn.worker_id, reason: reason.into_owned() });
        }
    }

    fn stop(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            self.close(token, "the server shut down".into());
        }
        let left: Vec<InFlight> = self.shared.lock_in_flight().drain().map(|(_, f)| f).collect();
        stats::add(&self.shared.stats.pushes_lost, left.len());
        for f in left {
            f.ticket.complete(Err(Error::Closed("the server shut down".into())));
        }
        self.shared.events.close();
    }
}

/// Fuzzing and corpus-replay hook (see [`super::fuzzing`]): runs `bytes`, as if one worker
/// connection sent them, through the event loop's parse path without a socket: a
/// [`FrameReader`] capped at [`HELLO_MAX_BODY`] until the registration is accepted, [`parse_incoming`]
/// in the connection's phase, and the Hello and registration checks the loop applies (with
/// `peer` as the kernel-reported peer). Returns the number of frames accepted before the server
/// would have closed the connection.
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
                phase = Phase::Registering;
            }
            Ok(Incoming::Registration(_, reg)) => {
                if check_registration(&reg).is_err() {
                    return accepted;
                }
                reader.set_max_body(MAX_BODY);
                phase = Phase::Registered;
            }
            Ok(Incoming::Reply(..)) => {}
            Err(_) => return accepted,
        }
        accepted += 1;
    }
}

/// Decodes one frame into what it asks for, given where the connection is in its life. A
/// frame that breaks the protocol is a [`WireError::Protocol`]; a reply whose payload does not
/// fit in memory is [`WireError::NoMemory`].
fn parse_incoming(phase: Phase, frame: &FrameView<'_>) -> Result<Incoming, WireError> {
    let violation = |why: String| WireError::Protocol(why.into());
    frame.check_plain()?;
    let kind = frame.frame_kind();
    match phase {
        Phase::Hello => {
            if frame.payload_protocol != registry::CONTROL || kind != Some(FrameKind::Request) {
                return Err(violation(format!("expected a Hello, got payload protocol 0x{:04X}", frame.payload_protocol)));
            }
            Hello::decode(frame.payload)
                .map(|h| Incoming::Hello(frame.request_id, h))
                .map_err(|e| violation(format!("malformed Hello: {e}")))
        }
        Phase::Registering => {
            if frame.payload_protocol != PUSH_PROTOCOL || kind != Some(FrameKind::Request) {
                return Err(violation("expected a registration".into()));
            }
            Registration::decode(frame.payload)
                .map(|r| Incoming::Registration(frame.request_id, r))
                .map_err(|e| violation(format!("malformed Registration: {e}")))
        }
        Phase::Registered => {
            if frame.payload_protocol != PUSH_PROTOCOL || kind != Some(FrameKind::Response) {
                return Err(violation(format!(
                    "expected a push reply, got kind {} on payload protocol 0x{:04X}",
                    frame.kind, frame.payload_protocol
                )));
            }
            let decoded = match fastpath::reply_payload(frame.payload) {
                Some(p) => WireError::try_copy(p).map(|p| PushReply { result: Some(push_reply::Result::Payload(p)) }),
                None => fastpath::decode_large(frame.payload, "PushReply", 1, &[2], true, |m: &mut PushReply, p| {
                    m.result = Some(push_reply::Result::Payload(p))
                }),
            };
            let reply = match decoded {
                Ok(reply) => reply,
                Err(e @ WireError::NoMemory { .. }) => return Err(e),
                Err(e @ WireError::Protocol(_)) => return Err(e),
                Err(e) => return Err(violation(e.to_string())),
            };
            if let Some(push_reply::Result::Failure(f)) = &reply.result {
                if f.message.len() > MAX_FAILURE_MESSAGE {
                    return Err(violation(format!(
                        "a failure message of {} bytes exceeds the {MAX_FAILURE_MESSAGE}-byte limit",
                        f.message.len()
                    )));
                }
            }
            Ok(Incoming::Reply(frame.request_id, reply))
        }
        Phase::AwaitingDecision | Phase::Closing => {
            Err(violation("unexpected frame before the registration was answered".into()))
        }
    }
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
