//! The worker side: connect, register, receive pushes, reply. What the server sends is parsed
//! in [`parse`], which also holds the worker's inbox ([`parse::State`]); [`liminal`] is the
//! dialect a worker speaks to a liminal server (handshake and framing only).

mod dial;
mod liminal;
mod parse;
mod reconnect;

use std::borrow::Cow;
use std::net::Shutdown;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use prost::Message;

use crate::push::proto::{push_reply, PushFailure, PushReply, Registration};
use crate::push::{MAX_FAILURE_MESSAGE, PUSH_PROTOCOL};
use crate::error::Error;
use crate::wire::fast as fastpath;
use crate::stats::{self, PushWorkerCounters, PushWorkerStats};
use crate::transport::{self, Endpoint, RawDescriptor, ReadinessSet, ReadySignal, Stream, TlsClientOptions};
use crate::wire::proto::{FrameKind, Negotiated};
use crate::wire::{FrameView, FrameWriter, WireError};
use crate::wire::liminal as lwire;
use dial::{check_options, dial, Connection};
use parse::{outcome_into, State};

pub use crate::wire::liminal::ActivityDescriptor;
pub use reconnect::{EventHandler, Jitter, ReconnectPolicy, WorkerEvent, WorkerEventKind};
pub use liminal::refusal_code as liminal_refusal_code;
pub(crate) use liminal::fuzz_server_stream as fuzz_liminal_stream;
pub(crate) use parse::fuzz_server_stream;

/// The wire a worker speaks, chosen by its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// The librp push protocol (running-process v1 frames) to a librp push server.
    #[default]
    Librp,
    /// The liminal worker wire to a liminal server (`liminal+tcp://host:port`).
    Liminal,
}

/// The endpoint prefix that selects [`Dialect::Liminal`].
pub const LIMINAL_SCHEME: &str = "liminal+tcp://";

/// How a worker connects and registers.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The push server.
    pub endpoint: Endpoint,
    /// Service name in the Hello (default `librp-push`).
    pub service_name: String,
    /// What the worker registers as.
    pub registration: Registration,
    /// Limit for connecting, the Hello and the registration together (default 5 s).
    pub connect_timeout: Duration,
    /// Limit for one reply to be written (default 30 s).
    pub send_timeout: Duration,
    /// Token for servers that require one (TCP).
    pub auth_token: Vec<u8>,
    /// How a `tls://` server is verified (CA roots, name) and the client certificate offered.
    pub tls: TlsClientOptions,
    /// The worker's own version, sent as `client_version` (librp endpoints).
    pub client_version: String,
    /// The wire spoken (set from the endpoint by [`for_endpoint`](Self::for_endpoint)).
    pub dialect: Dialect,
    /// Activities described in the registration, with their schemas (liminal endpoints only).
    pub activity_descriptors: Vec<ActivityDescriptor>,
    /// Reconnect after the connection is lost (`None`, the default: the worker ends with
    /// `Closed`). See [`ReconnectPolicy`]; with it, correlation ids are the worker's own (see
    /// [`Push::correlation_id`]).
    pub reconnect: Option<ReconnectPolicy>,
    /// Receives each transition of the connection (connected, lost, reconnecting, gave up),
    /// inside [`Worker::recv`]; see [`EventHandler`]. `None` (the default): transitions are
    /// only logged.
    pub on_event: Option<EventHandler>,
}

impl WorkerOptions {
    /// Options with defaults for everything but the endpoint and registration.
    pub fn new(endpoint: Endpoint, registration: Registration) -> Self {
        WorkerOptions {
            endpoint,
            service_name: super::DEFAULT_SERVICE.to_owned(),
            registration,
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
            auth_token: Vec::new(),
            tls: TlsClientOptions::default(),
            client_version: String::new(),
            dialect: Dialect::Librp,
            activity_descriptors: Vec::new(),
            reconnect: None,
            on_event: None,
        }
    }

    /// Options for an endpoint written as a string: a socket path, `@name`, `tcp://host:port`
    /// (a librp push server) or `liminal+tcp://host:port` (a liminal server).
    pub fn for_endpoint(endpoint: &str, registration: Registration) -> Result<Self, Error> {
        let (endpoint, dialect) = match endpoint.strip_prefix(LIMINAL_SCHEME) {
            Some(addr) => (Endpoint::parse(&format!("tcp://{addr}")).map_err(|_| {
                Error::invalid_argument(format!("liminal endpoint {endpoint:?} is not liminal+tcp://host:port"))
            })?, Dialect::Liminal),
            None => (Endpoint::parse(endpoint)?, Dialect::Librp),
        };
        Ok(WorkerOptions { dialect, ..WorkerOptions::new(endpoint, registration) })
    }
}

/// One push received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// Correlation id; answer with [`Worker::reply`]. Without reconnecting it is the server's
    /// id of the push; with [`WorkerOptions::reconnect`] it is the worker's own id, never reused
    /// across connections, so a late reply to a push of a lost connection cannot answer a push
    /// of the next one (a restarted server counts its ids from the start again).
    pub correlation_id: u64,
    /// The consumer protocol of the payload.
    pub payload_protocol: u32,
    /// The pushed bytes.
    pub payload: Vec<u8>,
    /// Absolute deadline in Unix milliseconds; 0 = none.
    pub deadline_unix_ms: u64,
    /// W3C traceparent ("" = none).
    pub traceparent: String,
    /// W3C tracestate ("" = none).
    pub tracestate: String,
}

/// A registered worker connection. All methods take `&self` and may be called from any thread:
/// one thread may wait in [`recv`](Self::recv) while others reply or close.
///
/// There is no background thread: the thread that calls `recv` (or the first of several)
/// reads the socket itself, so a push reaches the caller without a thread hop. Flow control
/// follows: while nobody receives, nothing is read, the server's send buffer for this worker
/// fills and its pushes fail with "try again". Nothing is dropped silently and memory stays
/// bounded (at most the frames of one read wait in the inbox). The one exception is
/// reconnecting ([`WorkerOptions::reconnect`]): while the connection is down, a thread of the
/// worker backs off and dials; it ends once connected again, given up or closed.
#[derive(Debug)]
pub struct Worker {
    inner: Arc<Inner>,
}

/// What the worker's calls and its reconnect thread share.
#[derive(Debug)]
struct Inner {
    /// This worker, for starting the reconnect thread.
    me: Weak<Inner>,
    state: Mutex<State>,
    changed: Condvar,
    writer: Mutex<Outbound>,
    /// Raised while a push or an event waits, or the connection has ended.
    signal: ReadySignal,
    /// Level-triggered set of the current socket and `signal`: the application's pollable fd.
    /// It stays the same descriptor across reconnections; only its members change.
    readiness: ReadinessSet,
    dialect: Dialect,
    stats: PushWorkerCounters,
    /// What the worker connected with: dialed again on reconnecting (its `on_event` is here
    /// in `on_event`).
    opts: WorkerOptions,
    /// The event handler, until the worker is dropped (which drops it, on the dropping thread).
    on_event: Mutex<Option<EventHandler>>,
    /// Whether events are queued for a handler at all.
    events_wanted: bool,
}

/// The writing half of the current connection, with its generation: a reply meant for one
/// connection is never written on the next.
#[derive(Debug)]
struct Outbound {
    generation: u64,
    writer: Option<FrameWriter<Stream>>,
}

impl Worker {
    /// Connects, says Hello, registers, and starts receiving pushes.
    ///
    /// Fails with `Refused` (the server's code and retry hint in the error), `Rejected` (the
    /// registration was declined, with the server's reason), `InvalidArgument` (the registration
    /// is over a limit: `MAX_NAMESPACES` and the others of [`crate::push`]; nothing is sent), `Timeout`, or an I/O
    /// error. The first connection is never retried, with or without a reconnect policy.
    pub fn connect(opts: WorkerOptions) -> Result<Worker, Error> {
        let endpoint = opts.endpoint.clone();
        let result = Self::connect_inner(opts);
        match &result {
            Ok(c) => crate::log!(Info, "push-worker", "registered with {endpoint} as worker {}", c.worker_id()),
            Err(e) => crate::log!(Warn, "push-worker", "connecting to {endpoint} failed: {e}"),
        }
        result
    }

    fn connect_inner(mut opts: WorkerOptions) -> Result<Worker, Error> {
        check_options(&opts)?;
        let on_event = opts.on_event.take();
        let conn = dial(&opts, &|_| Ok(()))?;
        let signal = ReadySignal::new()?;
        let readiness =
            ReadinessSet::new(&[signal.fd()]).map_err(|e| Error::io("create the pollable descriptor", e))?;
        let mut state = State::new(None);
        if opts.reconnect.is_some() {
            state.ids = Some(parse::LocalIds::default());
        }
        let inner = Arc::new_cyclic(|me| Inner {
            me: me.clone(),
            state: Mutex::new(state),
            changed: Condvar::new(),
            writer: Mutex::new(Outbound { generation: 0, writer: None }),
            signal,
            readiness,
            dialect: opts.dialect,
            stats: PushWorkerCounters::default(),
            opts,
            events_wanted: on_event.is_some(),
            on_event: Mutex::new(on_event),
        });
        inner.install(conn, 0)?;
        Ok(Worker { inner })
    }

    /// The id the server gave this worker (0 on a liminal endpoint, which has none). A worker
    /// that reconnected has the id of its latest registration.
    pub fn worker_id(&self) -> u64 {
        self.inner.lock().worker_id
    }

    /// The wire this worker speaks.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// What the server negotiated (on a liminal endpoint: the version selected as
    /// `daemon_version`, "1.2" say, and the server's capabilities), on the latest connection.
    pub fn negotiated(&self) -> Negotiated {
        self.inner.lock().negotiated.clone()
    }

    /// Waits for the next push: `None` waits forever, `Some(0)` only takes one already here.
    ///
    /// Fails with `Timeout` when none came in time and `Closed` when the connection ended
    /// (server gone, protocol violation, or [`close`](Self::close)); the reason is in the error.
    /// `NoMemory` means a push did not fit in memory: the connection ended, the process lives.
    ///
    /// With [`WorkerOptions::reconnect`], a lost connection does not end the wait: it goes on
    /// (up to its timeout) through the reconnection and returns pushes of the new connection;
    /// `Closed` comes after [`close`](Self::close) or once the worker gave up, with the last
    /// failure as its reason. Pending [`WorkerEvent`]s run the event handler here first.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Push, Error> {
        self.inner.recv(timeout)
    }

    /// Answers a push with a payload.
    ///
    /// Fails with `NotFound` (not received, already answered, or cancelled by the server) and
    /// `Closed`; with reconnecting on, a push received on a connection that was since lost is
    /// `Closed` too, and nothing is sent (its server failed it when the connection was lost).
    pub fn reply(&self, correlation_id: u64, payload: &[u8]) -> Result<(), Error> {
        let inner = &*self.inner;
        match inner.dialect {
            Dialect::Librp => {
                // The `PushReply` is written inside the frame, in the same pass.
                let head = fastpath::MessageHead::reply(payload.len());
                inner.send_reply(correlation_id, head.as_bytes(), payload, false)
            }
            Dialect::Liminal => inner.send_reply(correlation_id, &[], payload, false),
        }
    }

    /// Answers a push with a failure: the worker could not do the job.
    /// The message is at most [`MAX_FAILURE_MESSAGE`] bytes (`InvalidArgument` otherwise).
    ///
    /// On a liminal endpoint this sends a refusal record: `code` picks its refusal code (see
    /// [`liminal_refusal_code`]) and the message, at most 1,024 bytes there, becomes its words.
    pub fn reply_error(&self, correlation_id: u64, code: i32, message: &str) -> Result<(), Error> {
        let inner = &*self.inner;
        if inner.dialect == Dialect::Liminal {
            if message.len() > lwire::MAX_REFUSAL_WORDS {
                return Err(Error::invalid_argument(format!(
                    "a refusal's words are at most {} bytes on a liminal endpoint (got {})",
                    lwire::MAX_REFUSAL_WORDS,
                    message.len()
                )));
            }
            return inner.send_reply(correlation_id, &[], &lwire::refusal_record(liminal::refusal_code(code), message), true);
        }
        if message.len() > MAX_FAILURE_MESSAGE {
            return Err(Error::invalid_argument(format!(
                "a failure message is at most {MAX_FAILURE_MESSAGE} bytes (got {})",
                message.len()
            )));
        }
        let failure = PushFailure { code, message: message.to_owned() };
        let msg = PushReply { result: Some(push_reply::Result::Failure(failure)) };
        inner.send_reply(correlation_id, &[], &msg.encode_to_vec(), true)
    }

    /// What this worker did since it connected (across reconnections).
    pub fn stats(&self) -> PushWorkerStats {
        let mut s = self.inner.stats.snapshot();
        let st = self.inner.lock();
        s.pushes_queued = st.jobs.len() as u64;
        s.pushes_outstanding = st.outstanding.len() as u64;
        s
    }

    /// True while `correlation_id` was received and not yet answered (on the current
    /// connection).
    pub fn is_outstanding(&self, correlation_id: u64) -> bool {
        self.inner.lock().is_outstanding(correlation_id)
    }

    /// A descriptor that is readable while a push is waiting or the connection has ended, for
    /// `poll`/`epoll` loops; then [`recv`](Self::recv) with a zero timeout returns at once. It
    /// may also be readable for part of a push that has not fully arrived (recv then times out),
    /// and while events wait for the event handler (recv runs it, then times out). The same
    /// descriptor serves every connection of a reconnecting worker.
    /// Owned by the client; do not read from or close it.
    pub fn pollable_fd(&self) -> RawDescriptor {
        self.inner.readiness.descriptor()
    }

    /// Number of pushes waiting in the inbox.
    pub fn queued(&self) -> usize {
        self.inner.lock().jobs.len()
    }

    /// Closes the connection; blocked and later calls fail with `Closed`. Idempotent, and
    /// callable from any thread. A reconnecting worker stops at once: its backoff ends and an
    /// attempt under way is cut off.
    pub fn close(&self) {
        self.inner.close()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.inner.close();
        // A reconnect thread may hold the worker a moment longer; the handler goes now.
        let handler = self.inner.on_event.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(handler);
    }
}

impl Inner {
    fn recv(&self, timeout: Option<Duration>) -> Result<Push, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut polled = false;
        let mut st = self.lock();
        loop {
            if !st.events.is_empty() {
                let events: Vec<WorkerEvent> = st.events.drain(..).collect();
                self.update_signal(&mut st);
                drop(st);
                let handler = self.on_event.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(handler) = handler {
                    for event in &events {
                        (handler.0)(event);
                    }
                }
                st = self.lock();
                continue;
            }
            if let Some(e) = st.ended() {
                return Err(e);
            }
            if let Some(mut job) = st.jobs.pop_front() {
                job.correlation_id = st.received(job.correlation_id);
                self.update_signal(&mut st);
                return Ok(job);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let expired = left.is_some_and(|l| l.is_zero());
            if expired && polled {
                return Err(Error::Timeout("no push arrived".into()));
            }
            if let Some(mut reader) = st.reader.take() {
                // This thread reads the socket (even with no time left, what is already there);
                // others wait for it on the condition variable. Waiting forever is one blocking
                // read; a limited wait polls first, so the limit is kept to the millisecond.
                polled = true;
                let generation = st.generation;
                // The wait is on the reader's own socket: it stays open with the reader even when
                // the connection is lost meanwhile.
                drop(st);
                let outcome = match left {
                    None => {
                        reader.reads().wait = true;
                        let read = reader.read_more();
                        reader.reads().wait = false;
                        read
                    }
                    Some(l) => match reader.reads().stream.wait_readable(Some(l)) {
                        Ok(false) => Ok(0),
                        Ok(true) => reader.read_more(),
                        Err(e) => Err(WireError::Io(e)),
                    },
                };
                st = self.lock();
                if st.generation != generation || st.down {
                    // The connection was lost meanwhile: what came on it is gone with it.
                    continue;
                }
                let outcome = outcome_into(outcome, &mut reader, &mut st, &self.stats);
                st.reader = Some(reader);
                if let Err(reason) = outcome {
                    st = self.connection_ended(st, reason);
                }
                st = self.answer_pings(st);
                // A push that came is taken at the top of the loop, which also keeps the
                // notification byte right for the rest. A TLS connection may hold decrypted
                // bytes after the read, which the socket's readability does not show: the
                // notification byte follows them after every read.
                if matches!(st.socket, Some(Stream::Tls(_))) {
                    self.update_signal(&mut st);
                }
                if st.waiting > 0 {
                    self.changed.notify_all();
                }
                continue;
            }
            if expired {
                return Err(Error::Timeout("no push arrived".into()));
            }
            st.waiting += 1;
            st = match left {
                None => self.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(l) => self.changed.wait_timeout(st, l).unwrap_or_else(|p| p.into_inner()).0,
            };
            st.waiting -= 1;
        }
    }

    /// Sends a `PushReply` (a liminal reply record), encoded as `head` followed by `payload`
    /// (`head` empty for one encoded whole; always for a liminal record).
    fn send_reply(&self, correlation_id: u64, head: &[u8], payload: &[u8], failure: bool) -> Result<(), Error> {
        let (wire_id, generation) = {
            let mut st = self.lock();
            if let Some(e) = st.ended() {
                return Err(e);
            }
            (st.answered(correlation_id)?, st.generation)
        };
        let result = {
            let mut out = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let Outbound { generation: current, writer } = &mut *out;
            let Some(writer) = writer.as_mut().filter(|_| *current == generation) else {
                return Err(Error::Closed(
                    format!("push {correlation_id} came on a connection that was lost; nothing was sent").into(),
                ));
            };
            match self.dialect {
                Dialect::Librp => {
                    let frame = FrameView {
                        kind: FrameKind::Response as i32,
                        payload_protocol: PUSH_PROTOCOL,
                        payload,
                        request_id: wire_id,
                        ..FrameView::default()
                    };
                    writer.queue_with_head(&frame, head).and_then(|()| {
                        let n = writer.queued_len();
                        writer.write_queued()?;
                        stats::add(&self.stats.bytes_out, n);
                        Ok(())
                    })
                }
                Dialect::Liminal => {
                    let head = lwire::push_reply_head(wire_id, payload.len(), failure);
                    writer.write_raw(&[&head, payload]).map(|()| stats::add(&self.stats.bytes_out, head.len() + payload.len()))
                }
            }
        };
        if result.is_ok() {
            stats::bump(if failure { &self.stats.failures_sent } else { &self.stats.replies_sent });
        }
        result.map_err(|e| match e {
            WireError::Timeout => Error::Timeout("the server did not accept the reply in time".into()),
            WireError::Closed => Error::Closed("the server closed the connection".into()),
            e => e.into(),
        })
    }

    /// Makes `conn` the worker's connection (at connect, and after each reconnection), taking
    /// the pushes that came with the registration ack. `attempt` is the reconnect attempt (0
    /// at connect). False when the worker was closed meanwhile (`conn` is dropped).
    fn install(&self, conn: Connection, attempt: u32) -> Result<bool, Error> {
        let Connection { socket, writer, mut reader, worker_id, negotiated } = conn;
        let generation = self.lock().generation + 1;
        // The writer first: a reply checked against the state's (older) generation then fails
        // rather than reaching this connection.
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = Outbound { generation, writer: Some(writer) };
        let mut st = self.lock();
        if st.closed.is_some() {
            let _ = socket.shutdown(Shutdown::Both);
            return Ok(false);
        }
        self.readiness
            .set_member(socket.descriptor(), true)
            .map_err(|e| Error::io("add the connection to the pollable descriptor", e))?;
        st.generation = generation;
        st.down = false;
        st.dialing = None;
        st.socket = Some(socket);
        st.worker_id = worker_id;
        st.negotiated = negotiated;
        if attempt > 0 {
            stats::bump(&self.stats.reconnects);
        }
        self.emit(&mut st, WorkerEvent::new(WorkerEventKind::Connected, attempt, Duration::ZERO, None));
        // Frames that came with the ack are pushes already here.
        let outcome = reader.take_buffered(&mut st, &self.stats);
        st.reader = Some(reader);
        if let Err(reason) = outcome {
            st = self.connection_ended(st, reason);
        }
        let mut st = self.answer_pings(st);
        self.update_signal(&mut st);
        self.changed.notify_all();
        Ok(true)
    }

    /// The connection ended, not by [`close`](Self::close): with a reconnect policy the worker
    /// forgets the connection (its queued and unanswered pushes too) and starts reconnecting;
    /// without one it is closed. Logged here, without the state lock (the log sink may call
    /// back into the worker).
    fn connection_ended<'a>(&'a self, mut st: MutexGuard<'a, State>, reason: Cow<'static, str>) -> MutexGuard<'a, State> {
        if st.closed.is_some() || st.down {
            return st;
        }
        match (self.opts.reconnect, self.me.upgrade()) {
            (Some(policy), Some(me)) => {
                st.down = true;
                if let Some(socket) = st.socket.take() {
                    let _ = self.readiness.set_member(socket.descriptor(), false);
                    let _ = socket.shutdown(Shutdown::Both);
                }
                st.forget_connection();
                let mut lost = WorkerEvent::new(WorkerEventKind::Lost, 0, Duration::ZERO, None);
                (lost.error, lost.message) = (Some(crate::error::ErrorKind::Closed), reason.to_string());
                self.emit(&mut st, lost);
                let started = std::thread::Builder::new()
                    .name("rp-reconnect".into())
                    .spawn(move || reconnect::run(me, policy));
                if let Err(e) = started {
                    self.close_with(&mut st, format!("{reason}; reconnecting could not start: {e}").into());
                }
            }
            _ => self.close_with(&mut st, reason.clone()),
        }
        self.update_signal(&mut st);
        self.changed.notify_all();
        drop(st);
        self.log_end(&reason);
        self.lock()
    }

    /// Reports the next attempt, then waits until `until` unless the worker is closed first
    /// (false then).
    fn wait_before_attempt(&self, event: WorkerEvent, until: Instant) -> bool {
        let mut st = self.lock();
        self.emit(&mut st, event);
        loop {
            if st.closed.is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            st = self.changed.wait_timeout(st, until - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// One reconnect attempt: dials, says Hello, registers and installs the connection. Ok(false)
    /// when the worker was closed meanwhile.
    fn redial(&self, attempt: u32) -> Result<bool, Error> {
        let watch = |socket: &Stream| {
            let mut st = self.lock();
            if st.closed.is_some() {
                return Err(Error::Closed("closed locally".into()));
            }
            st.dialing = Some(socket.try_clone().map_err(|e| Error::io("configure socket", e))?);
            Ok(())
        };
        let dialed = dial(&self.opts, &watch);
        let closed = {
            let mut st = self.lock();
            st.dialing = None;
            st.closed.is_some()
        };
        match dialed {
            _ if closed => Ok(false),
            Ok(conn) => self.install(conn, attempt),
            Err(e) => Err(e),
        }
    }

    /// Ends a reconnecting worker after its last failed attempt.
    fn give_up(&self, attempts: u32, last: &Error) {
        let reason = format!("gave up reconnecting to {} after {attempts} attempts; the last failed: {last}", self.opts.endpoint);
        let mut st = self.lock();
        self.emit(&mut st, WorkerEvent::new(WorkerEventKind::GaveUp, attempts, Duration::ZERO, Some(last)));
        self.close_with(&mut st, reason.clone().into());
        self.update_signal(&mut st);
        self.changed.notify_all();
        drop(st);
        crate::log!(Warn, "push-worker", "{reason}");
    }

    /// Queues an event for the handler (nothing without one); the oldest goes when full.
    fn emit(&self, st: &mut State, event: WorkerEvent) {
        if !self.events_wanted {
            return;
        }
        if st.events.len() >= reconnect::MAX_PENDING_EVENTS {
            st.events.pop_front();
        }
        st.events.push_back(event);
        self.update_signal(st);
        self.changed.notify_all();
    }

    fn close(&self) {
        let mut st = self.lock();
        let first = st.closed.is_none();
        if first && self.dialect == Dialect::Liminal {
            // Says goodbye as a liminal peer does, if that needs no waiting.
            if let (Ok(_writer), Some(socket)) = (self.writer.try_lock(), st.socket.as_ref()) {
                let _ = transport::send_nonblocking(socket.descriptor(), &lwire::empty(lwire::kind::DISCONNECT));
            }
        }
        self.close_with(&mut st, "closed locally".into());
        self.update_signal(&mut st);
        self.changed.notify_all();
        drop(st);
        if first {
            self.log_end("closed locally");
        }
    }

    /// Logs why the connection ended (called without the state lock: the log callback may
    /// call back into this client).
    fn log_end(&self, reason: &str) {
        let worker_id = self.lock().worker_id;
        if reason.starts_with("protocol violation") || reason.starts_with("connection failed") {
            crate::log!(Warn, "push-worker", "worker {worker_id}: connection ended: {reason}");
        } else {
            crate::log!(Info, "push-worker", "worker {worker_id}: connection ended: {reason}");
        }
    }

    fn close_with(&self, st: &mut State, reason: Cow<'static, str>) {
        if st.closed.is_none() {
            st.closed = Some(reason);
            st.jobs.clear();
            // Wakes a thread waiting for the socket to become readable, and ends an attempt
            // to reconnect that is under way.
            for socket in st.socket.iter().chain(st.dialing.iter()) {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the Pings a liminal server sent, after the frames of one read were taken. The
    /// Pongs are written without the state lock (a server that stops reading can hold a write
    /// up to the send timeout; `close` from another thread ends it at once), behind any reply
    /// being written; the state is locked again before this returns.
    fn answer_pings<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        let pongs = std::mem::take(&mut st.pongs_owed);
        if pongs == 0 || st.closed.is_some() || st.down {
            return st;
        }
        let generation = st.generation;
        drop(st);
        let written = {
            let mut out = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            match (out.generation == generation, out.writer.as_mut()) {
                (true, Some(writer)) => {
                    (0..pongs.min(16)).try_for_each(|_| writer.write_raw(&[&lwire::empty(lwire::kind::PONG)]))
                }
                _ => Ok(()), // that connection is gone: its Pings with it
            }
        };
        let st = self.lock();
        match written {
            Err(e) if st.generation == generation => {
                self.connection_ended(st, format!("connection failed: answering a Ping: {e}").into())
            }
            _ => st,
        }
    }

    /// Keeps the pollable descriptor's signal raised exactly while something is ready (a
    /// system call only when that changes; under the state lock, so it matches the state).
    fn update_signal(&self, st: &mut State) {
        // Decrypted bytes a TLS connection holds make the socket no more readable: they count.
        let buffered = st.socket.as_ref().is_some_and(|s| s.has_buffered_input());
        self.signal.set(!st.jobs.is_empty() || st.closed.is_some() || !st.events.is_empty() || buffered);
    }
}
