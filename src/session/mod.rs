//! Session: multiplexed calls, streams and tunnels in both directions over one connection.
//!
//! A [`Session`] owns one [`Conn`] and is its only reader: every incoming frame is routed by
//! one function ([`route`]) — a RESPONSE to the call waiting for it, an EVENT to the stream of
//! its request id, a REQUEST to the queue of requests to serve, a CANCEL to the request being
//! served. Whoever holds the reader role reads and routes: a reader thread by default, or a
//! thread waiting for a frame (a caller waiting for its response, a dispatcher waiting for a
//! request) when no one else reads — the reader thread then steps aside, which spares each
//! call two thread hops. Routing never runs user code and never writes (librp's own error
//! answers go through an answerer thread); requests are taken with [`Session::next_request`]
//! on a thread of the application's choosing.
//!
//! Wire (docs/PROTOCOL.md, "Session"): every frame is on payload protocol
//! [`SESSION`](crate::wire::registry::SESSION) and carries one `SessionMessage`
//! (`proto/librp_session.proto`). Request ids are split by side: the connecting side uses odd
//! ids, the accepting side even ids, so both sides call each other on one connection.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;

use crate::broker::Conn;
use crate::error::Error;
use crate::fastpath::{self, IdMap};
use crate::stats::{self, SessionCounters, SessionStats};
use crate::transport::{self, Endpoint, ListenOptions, Listener, ReadySignal};
use crate::wire::proto::FrameKind;
use crate::wire::registry::SESSION;
use crate::wire::{FrameView, WireError};

/// Generated messages of `proto/librp_session.proto`.
mod dispatch;

pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/librp.session.v1.rs"));
}

use proto::{SessionError, SessionMessage};

/// Error codes librp itself puts in a `SessionError` (they are `rp_status` values).
pub mod code {
    /// The request's deadline passed.
    pub const TIMEOUT: i32 = 2;
    /// The serving side dropped the request without answering, or its connection ended.
    pub const CLOSED: i32 = 3;
    /// The request was cancelled.
    pub const CANCELLED: i32 = 7;
    /// The serving side has too many requests waiting to be dispatched; retry later.
    pub const AGAIN: i32 = 1;
    /// The argument was not acceptable to the serving side.
    pub const INVALID_ARGUMENT: i32 = 11;
    /// The receiving session has no dispatcher: it serves no requests.
    pub const NOT_FOUND: i32 = 13;
    /// The serving side's reader left more than [`super::MAX_UNREAD_STREAM_BYTES`] of the
    /// caller's stream unread.
    pub const TOO_LARGE: i32 = 22;
    /// The smallest application code; codes below are `rp_status` values.
    pub const FIRST_APPLICATION_CODE: i32 = 1000;
}

/// Longest error message a session sends or accepts in a `SessionError`, in bytes; a peer's
/// longer one is a protocol violation.
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// Requests held for dispatch at most; more are answered at once with the `AGAIN` error.
pub const MAX_QUEUED_REQUESTS: usize = 65536;

/// Stream bytes held at most per call or served request for a reader that has not taken
/// them (payload bytes plus 64 per chunk). Beyond it the exchange ends with
/// [`Error::Overflow`] and the peer is told (a CANCEL for a call, a `TOO_LARGE` error answer
/// for a served request).
pub const MAX_UNREAD_STREAM_BYTES: usize = 64 << 20;

/// The longest a thread reading for itself waits in one read before it looks again at
/// whether what it waits for came by another way (a cancel from another thread).
const READ_SLICE: Duration = Duration::from_millis(20);

/// While the connection is parked out of the reader thread's set, how often that thread looks
/// whether anyone still reads for itself; when no one does, it takes the connection back.
/// This bounds how long a frame no one waits for (a cancel, a response to a call no one waits
/// on yet) can sit unread after a burst of calls. A session whose requests are taken by a poll
/// loop (`request_fd`) is never left parked.
const PARKED_RECHECK: Duration = Duration::from_millis(10);

/// What [`MAX_UNREAD_STREAM_BYTES`] counts for one chunk of `len` payload bytes.
const fn chunk_cost(len: usize) -> usize {
    len + 64
}

/// Which end of the connection this session is; it decides the parity of request ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The side that connected: its calls use odd request ids (1, 3, 5, ...).
    Connecting,
    /// The side that accepted: its calls use even request ids (2, 4, 6, ...).
    Accepting,
}

impl Side {
    fn first_id(self) -> u64 {
        match self {
            Side::Connecting => 1,
            Side::Accepting => 2,
        }
    }

    /// True when `id` belongs to this side's calls.
    fn owns(self, id: u64) -> bool {
        (id % 2 == 1) == (self == Side::Connecting)
    }
}

/// What a call sends besides its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Absolute deadline in Unix milliseconds (0 = none). Past it the call ends with `Timeout`
    /// on both sides, and the peer is sent a CANCEL.
    pub deadline_unix_ms: u64,
    /// W3C traceparent ("" = none).
    pub traceparent: String,
    /// W3C tracestate ("" = none).
    pub tracestate: String,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The monotonic instant of a Unix-ms deadline (`None` for 0 = no deadline).
fn deadline_instant(deadline_unix_ms: u64) -> Option<Instant> {
    if deadline_unix_ms == 0 {
        return None;
    }
    let left = deadline_unix_ms.saturating_sub(now_unix_ms());
    Some(Instant::now() + Duration::from_millis(left))
}

/// Decodes a frame's `SessionMessage` (plain ones without prost, see [`fastpath`]); the payload
/// is copied by a fallible allocation ([`WireError::NoMemory`]).
fn decode_message(bytes: &[u8]) -> Result<SessionMessage, WireError> {
    match fastpath::plain_message(bytes) {
        Some((payload_protocol, payload)) => WireError::try_copy(payload)
            .map(|payload| SessionMessage { payload_protocol, payload, ..SessionMessage::default() }),
        None => fastpath::decode_large(bytes, "SessionMessage", 2, &[1, 3, 4], false, |m: &mut SessionMessage, p| {
            m.payload = p
        }),
    }
}

/// The error a peer's `SessionError` stands for: librp's own codes map back to their kind.
fn peer_error(e: SessionError) -> Error {
    let text = |m: String| -> Cow<'static, str> { format!("the peer answered: {m}").into() };
    match e.code {
        code::AGAIN => Error::Again(text(e.message)),
        code::TIMEOUT => Error::Timeout(text(e.message)),
        code::CLOSED => Error::Closed(text(e.message)),
        code::CANCELLED => Error::Cancelled(text(e.message)),
        code::INVALID_ARGUMENT => Error::InvalidArgument(text(e.message)),
        code::NOT_FOUND => Error::NotFound(text(e.message)),
        code::TOO_LARGE => Error::Overflow(text(e.message)),
        code => Error::Peer { code, message: e.message },
    }
}

/// One multiplexed session over a connection. All methods take `&self` and may be called from
/// any thread; dropping the session closes the connection and ends every call and stream with
/// `Closed`.
#[derive(Debug)]
pub struct Session {
    inner: Arc<Inner>,
    /// The reader, then the answerer (which ends when the reader has ended).
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    conn: Conn,
    side: Side,
    next_id: AtomicU64,
    /// False: incoming requests are answered at once with `NOT_FOUND` (no dispatcher).
    serving: AtomicBool,
    state: Mutex<State>,
    /// Signalled when a request is queued or the session closes.
    requests_changed: Condvar,
    /// Raised while a request waits to be dispatched or the session has ended.
    signal: ReadySignal,
    /// Set once [`Session::request_fd`] was asked for: only then is the signal kept.
    signal_used: AtomicBool,
    /// Set when what the peer sent did not fit in memory: the session then ends with
    /// `NoMemory` rather than `Closed`.
    no_memory: AtomicBool,
    /// The reader role: held by the thread reading and routing frames (see [`read_while`]).
    reading: Mutex<()>,
    /// The reader thread's epoll set: the park notification, and the connection while it is
    /// not parked.
    reader_set: OwnedFd,
    /// True while the connection is out of the reader thread's set: a thread read for itself
    /// and left it out for the next one (consecutive calls then cost no `epoll_ctl`).
    parked: AtomicBool,
    /// A byte on this pair tells the reader thread the connection was parked.
    park_rx: UnixStream,
    park_tx: UnixStream,
    /// Where librp's own answers go (the answerer thread); taken when the session ends.
    answers: Mutex<Option<Sender<AutoAnswer>>>,
    /// Counters for [`Session::stats`].
    stats: SessionCounters,
}

#[derive(Debug, Default)]
struct State {
    /// Why the session ended (set once).
    closed: Option<Cow<'static, str>>,
    /// This side's calls still waiting for their response, by request id.
    calls: IdMap<Arc<Exchange>>,
    /// The peer's requests received and not yet answered, by request id.
    serving: IdMap<Arc<Exchange>>,
    /// Requests waiting for [`Session::next_request`].
    queue: VecDeque<Request>,
    /// Threads waiting in `next_request` on `requests_changed`.
    request_waiters: usize,
}

/// The shared state of one request id on one side: chunks the peer sent, the outcome.
#[derive(Debug, Default)]
struct Exchange {
    state: Mutex<ExchangeState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ExchangeState {
    /// Chunks received and not yet read.
    chunks: VecDeque<Vec<u8>>,
    /// What the unread chunks count against [`MAX_UNREAD_STREAM_BYTES`].
    unread_bytes: usize,
    /// The peer sent its end of stream (or its final response).
    peer_done: bool,
    /// Set once: the call's outcome (for calls), or why a served request ended early.
    outcome: Option<Outcome>,
    /// This side sent its end of stream.
    write_closed: bool,
    /// Threads waiting on `changed` (a notification is a system call; none is made for nobody).
    waiters: usize,
}

#[derive(Debug)]
enum Outcome {
    /// The response payload, or the error it ended with; `None` once taken.
    Ready(Option<Result<Vec<u8>, Error>>),
}

impl Exchange {
    fn lock(&self) -> MutexGuard<'_, ExchangeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the outcome once and wakes every waiter; returns false if there already was one.
    fn finish(&self, result: Result<Vec<u8>, Error>) -> bool {
        let mut st = self.lock();
        if st.outcome.is_some() {
            return false;
        }
        st.outcome = Some(Outcome::Ready(Some(result)));
        st.peer_done = true;
        self.notify(&st);
        true
    }

    fn is_done(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// Ok while this side may still send chunks: no outcome yet and not half-closed. `ended`
    /// is the text for an exchange that ended without an error of its own.
    fn check_writable(&self, ended: &'static str) -> Result<(), Error> {
        let st = self.lock();
        match &st.outcome {
            Some(Outcome::Ready(Some(Err(e)))) => Err(copy_error(e)),
            Some(_) => Err(Error::Closed(ended.into())),
            None if st.write_closed => Err(Error::Closed("this side already closed its half".into())),
            None => Ok(()),
        }
    }

    /// Wakes the threads waiting on this exchange, if there are any.
    fn notify(&self, st: &ExchangeState) {
        if st.waiters > 0 {
            self.changed.notify_all();
        }
    }
}

/// Copies an error that several waiters must see (errors are not `Clone`).
fn copy_error(e: &Error) -> Error {
    match e {
        Error::Timeout(m) => Error::Timeout(m.clone()),
        Error::Closed(m) => Error::Closed(m.clone()),
        Error::Cancelled(m) => Error::Cancelled(m.clone()),
        Error::Overflow(m) => Error::Overflow(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
        Error::Peer { code, message } => Error::Peer { code: *code, message: message.clone() },
        Error::NoMemory(m) => Error::NoMemory(m.clone()),
        other => Error::Closed(other.to_string().into()),
    }
}

impl Session {
    /// Starts a session over `conn`, which it owns from now on (nothing else may read it).
    ///
    /// `serve_requests` false: the peer's requests are answered at once with the
    /// `NOT_FOUND` error ("no dispatcher"); true: they queue for [`next_request`](Self::next_request).
    pub fn new(conn: Conn, side: Side, serve_requests: bool) -> Result<Session, Error> {
        let signal = ReadySignal::new()?;
        let io = |e| Error::io("notification socket", e);
        let (park_rx, park_tx) = UnixStream::pair().map_err(|e| Error::io("notification socket", e))?;
        park_rx.set_nonblocking(true).map_err(io)?;
        park_tx.set_nonblocking(true).map_err(io)?;
        let reader_set = transport::readiness_set(&[conn.socket_fd(), park_rx.as_raw_fd()])
            .map_err(|e| Error::io("reader epoll set", e))?;
        // librp's own error answers are written by a second thread, so routing never blocks
        // on a write (two readers each waiting for the other to read could never finish).
        let (answers, queued_answers) = std::sync::mpsc::channel::<AutoAnswer>();
        let inner = Arc::new(Inner {
            conn,
            side,
            next_id: AtomicU64::new(side.first_id()),
            serving: AtomicBool::new(serve_requests),
            state: Mutex::new(State::default()),
            requests_changed: Condvar::new(),
            signal,
            signal_used: AtomicBool::new(false),
            no_memory: AtomicBool::new(false),
            reading: Mutex::new(()),
            reader_set,
            parked: AtomicBool::new(false),
            park_rx,
            park_tx,
            answers: Mutex::new(Some(answers)),
            stats: SessionCounters::default(),
        });
        let answer_inner = Arc::clone(&inner);
        let answerer = std::thread::Builder::new()
            .name("rp-session-answers".into())
            .spawn(move || {
                for (id, frame, message) in queued_answers {
                    let _ = match frame {
                        AutoFrame::Error(code) => answer_inner.send_error(id, code, message),
                        AutoFrame::Cancel => answer_inner.send_simple(FrameKind::Cancel, id, &SessionMessage::default()),
                    };
                }
            })
            .map_err(|e| Error::io("spawn session thread", e))?;
        let reader_inner = Arc::clone(&inner);
        let reader = std::thread::Builder::new()
            .name("rp-session-reader".into())
            .spawn(move || read_frames(reader_inner));
        let reader = match reader {
            Ok(r) => r,
            Err(e) => {
                // Ending the session drops the answer channel's sender: the answerer ends.
                inner.end("the session could not start".into());
                let _ = answerer.join();
                return Err(Error::io("spawn session reader thread", e));
            }
        };
        Ok(Session { inner, threads: Mutex::new(vec![reader, answerer]) })
    }

    /// Which side this session is.
    pub fn side(&self) -> Side {
        self.inner.side
    }

    /// Starts a call and returns at once; the response arrives through the [`Call`].
    ///
    /// Fails with `Closed` (the session ended), `Timeout` (the deadline already passed), or a
    /// send error.
    pub fn start_call(&self, payload_protocol: u32, payload: &[u8], opts: &CallOptions) -> Result<Call, Error> {
        let deadline = deadline_instant(opts.deadline_unix_ms);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout("the call's deadline had already passed".into()));
        }
        self.send_call(payload_protocol, payload, opts, deadline)
    }

    /// Registers and sends a call whose deadline (`opts.deadline_unix_ms` as an instant) is
    /// still ahead.
    fn send_call(
        &self,
        payload_protocol: u32,
        payload: &[u8],
        opts: &CallOptions,
        deadline: Option<Instant>,
    ) -> Result<Call, Error> {
        crate::wire::trace_context_fits(&opts.traceparent, &opts.tracestate).map_err(Error::invalid_argument)?;
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(2, Ordering::Relaxed);
        let exchange = Arc::new(Exchange::default());
        {
            let mut st = inner.lock();
            if let Some(reason) = &st.closed {
                return Err(inner.ended_error(reason.clone()));
            }
            st.calls.insert(id, Arc::clone(&exchange));
        }
        let sent = fastpath::with_plain_message(payload_protocol, payload, |body| {
            inner.send(FrameKind::Request, id, body, opts.deadline_unix_ms, &opts.traceparent, &opts.tracestate)
        });
        if let Err(e) = sent {
            inner.lock().calls.remove(&id);
            return Err(e);
        }
        stats::bump(&inner.stats.calls_started);
        Ok(Call { inner: Arc::clone(inner), exchange, id, deadline })
    }

    /// Calls and waits up to `timeout` (`None` = forever) for the response payload.
    ///
    /// Without a deadline of its own the call gets "now + timeout" as its deadline, so the peer
    /// knows when to stop. Fails with `Timeout`, `Closed`, `Cancelled`, the peer's error (see
    /// [`Error::Peer`]), or a send error.
    pub fn call(
        &self,
        payload_protocol: u32,
        payload: &[u8],
        opts: &CallOptions,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, Error> {
        let call = match (opts.deadline_unix_ms, timeout) {
            (0, Some(t)) => {
                // The deadline is the timeout from now, on both clocks (read once each).
                let ms = (t.as_millis() as u64).max(1);
                let deadline = Instant::now() + Duration::from_millis(ms);
                let opts = CallOptions { deadline_unix_ms: now_unix_ms() + ms, ..opts.clone() };
                self.send_call(payload_protocol, payload, &opts, Some(deadline))?
            }
            _ => self.start_call(payload_protocol, payload, opts)?,
        };
        let result = call.wait(timeout);
        if result.as_ref().is_err_and(|e| e.kind() == crate::ErrorKind::Timeout) {
            call.cancel_with(Error::Timeout("the call timed out".into()));
        }
        result
    }

    /// Takes the next request to serve, waiting up to `timeout` (`None` = forever).
    ///
    /// Requests whose deadline passed while queued are answered with `TIMEOUT` and skipped.
    /// Fails with `Timeout` (none came) or `Closed` (the session ended).
    pub fn next_request(&self, timeout: Option<Duration>) -> Result<Request, Error> {
        let until = timeout.map(|t| Instant::now() + t);
        let mut st = self.inner.lock();
        loop {
            if let Some(reason) = &st.closed {
                return Err(self.inner.ended_error(reason.clone()));
            }
            let next = st.queue.pop_front();
            self.inner.update_signal(&mut st);
            if let Some(req) = next {
                if req.deadline.is_some_and(|d| d <= Instant::now()) {
                    drop(st);
                    let _ = req.answer(Err(Error::Timeout("the request's deadline passed before it was served".into())));
                    st = self.inner.lock();
                    continue;
                }
                return Ok(req);
            }
            if until.is_some_and(|d| d <= Instant::now()) {
                return Err(Error::Timeout("no request arrived".into()));
            }
            // Read for ourselves if no one else does; otherwise wait for whoever reads.
            drop(st);
            let read = read_while(&self.inner, until, || !self.inner.lock().queue.is_empty());
            st = self.inner.lock();
            // Look again before sleeping: whoever reads may have queued a request meanwhile
            // (its notification is made only to threads already waiting).
            if read || !st.queue.is_empty() || st.closed.is_some() {
                continue;
            }
            st.request_waiters += 1;
            st = match until {
                None => self.inner.requests_changed.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout("no request arrived".into()));
                    }
                    self.inner.requests_changed.wait_timeout(st, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
            st.request_waiters -= 1;
        }
    }

    /// A descriptor that is readable while a request waits for
    /// [`next_request`](Self::next_request) or the session has ended, for `poll`/`epoll` loops.
    /// Level-triggered; owned by the session: never read from or close it.
    pub fn request_fd(&self) -> RawFd {
        if !self.inner.signal_used.swap(true, Ordering::AcqRel) {
            let mut st = self.inner.lock();
            self.inner.update_signal(&mut st);
        }
        self.inner.signal.fd()
    }

    /// Number of this side's calls waiting for a response.
    pub fn pending_calls(&self) -> usize {
        self.inner.lock().calls.len()
    }

    /// What this session did since it started.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.inner.stats.snapshot();
        let st = self.inner.lock();
        s.calls_pending = st.calls.len() as u64;
        s.requests_queued = st.queue.len() as u64;
        s
    }

    /// True once the session has ended (connection closed, protocol violation, or
    /// [`close`](Self::close)).
    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed.is_some()
    }

    /// Closes the connection: every call, stream and request wait ends with `Closed` at once.
    /// Idempotent; callable from any thread.
    pub fn close(&self) {
        self.inner.conn.close();
        self.inner.end("the session was closed locally".into());
    }
}

/// A listening socket whose accepted connections become sessions (the accepting side).
///
/// The socket is owner-only (see [`crate::transport`]); a Unix peer of another user is refused
/// at accept time, and a TCP endpoint must be a loopback address.
#[derive(Debug)]
pub struct SessionListener {
    listener: Listener,
    endpoint: Endpoint,
    closed: AtomicBool,
}

impl SessionListener {
    /// Binds `endpoint` (a socket path, `@abstract` name or loopback `tcp://host:port`).
    pub fn bind(endpoint: &Endpoint) -> Result<SessionListener, Error> {
        let listener = Listener::bind(endpoint, &ListenOptions::default())?;
        let endpoint = listener.local_endpoint()?;
        Ok(SessionListener { listener, endpoint, closed: AtomicBool::new(false) })
    }

    /// The endpoint actually bound (for `tcp://127.0.0.1:0`, with the real port).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Stops accepting: every [`accept`](Self::accept) waiting now or called later fails with
    /// `Closed` at once. Connections already accepted go on. Idempotent; callable from any
    /// thread.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.listener.shutdown();
    }

    /// Waits up to `timeout` (`None` = forever) for a connection and returns it, for
    /// [`Session::new`] with [`Side::Accepting`]. Peers of another user are closed and waited
    /// past. Fails with `Timeout`, `Closed` (see [`close`](Self::close)) or an I/O error.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Conn, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let stream = self.listener.accept_timeout(left, || self.closed.load(Ordering::Acquire))?;
            if let Some(peer) = stream.peer_credentials() {
                if peer.uid != crate::transport::effective_uid() {
                    continue; // dropped: closes the connection
                }
            }
            return Conn::new(stream);
        }
    }
}

/// Connects to a [`SessionListener`] (or any peer that speaks the session on a fresh
/// connection), for [`Session::new`] with [`Side::Connecting`].
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Conn, Error> {
    Conn::new(crate::transport::connect(endpoint, timeout)?)
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the request descriptor's signal raised exactly while a request waits or the
    /// session has ended (under the state lock, so it matches the state).
    fn update_signal(&self, st: &mut State) {
        if !self.signal_used.load(Ordering::Acquire) {
            return; // no one polls the descriptor: spare the system calls
        }
        self.signal.set(!st.queue.is_empty() || st.closed.is_some());
    }

    fn closed_error(&self) -> Error {
        let reason = self.lock().closed.clone().unwrap_or_else(|| "the session ended".into());
        self.ended_error(reason)
    }

    /// The error a session that ended for `reason` gives: `NoMemory` when what the peer sent
    /// did not fit in memory, `Closed` otherwise.
    fn ended_error(&self, reason: Cow<'static, str>) -> Error {
        if self.no_memory.load(Ordering::Relaxed) {
            Error::NoMemory(reason)
        } else {
            Error::Closed(reason)
        }
    }

    fn send(
        &self,
        kind: FrameKind,
        request_id: u64,
        body: &[u8],
        deadline_unix_ms: u64,
        traceparent: &str,
        tracestate: &str,
    ) -> Result<(), Error> {
        let frame = FrameView {
            kind: kind as i32,
            payload_protocol: SESSION,
            payload: body,
            request_id,
            deadline_unix_ms,
            traceparent,
            tracestate,
            ..FrameView::default()
        };
        self.conn.send(&frame).map_err(|e| match e {
            Error::Closed(_) => self.closed_error(),
            e => e,
        })
    }

    /// Sends a frame whose message has no deadline or trace context of its own.
    fn send_simple(&self, kind: FrameKind, request_id: u64, msg: &SessionMessage) -> Result<(), Error> {
        self.send(kind, request_id, &msg.encode_to_vec(), 0, "", "")
    }

    /// Sends a frame whose message is only payload bytes (a response or a chunk).
    fn send_payload(&self, kind: FrameKind, request_id: u64, payload: &[u8]) -> Result<(), Error> {
        fastpath::with_plain_message(0, payload, |body| self.send(kind, request_id, body, 0, "", ""))
    }

    /// Sends one stream chunk (an EVENT) on request id `id`.
    fn send_chunk(&self, id: u64, chunk: &[u8]) -> Result<(), Error> {
        self.send_payload(FrameKind::Event, id, chunk)
    }

    /// Marks `exchange` half-closed and sends the end of stream on request id `id`.
    fn close_write(&self, exchange: &Exchange, id: u64) -> Result<(), Error> {
        exchange.lock().write_closed = true;
        let msg = SessionMessage { end_of_stream: true, ..SessionMessage::default() };
        self.send_simple(FrameKind::Event, id, &msg)
    }

    /// Sends an error RESPONSE for one of the peer's requests.
    fn send_error(&self, request_id: u64, code: i32, message: &str) -> Result<(), Error> {
        let msg = SessionMessage {
            error: Some(SessionError { code, message: message.to_owned() }),
            ..SessionMessage::default()
        };
        self.send_simple(FrameKind::Response, request_id, &msg)
    }

    /// Hands one of librp's own answers to the answerer thread (dropped once the session ended).
    fn auto_answer(&self, id: u64, frame: AutoFrame, message: &'static str) {
        if matches!(frame, AutoFrame::Error(_)) {
            stats::bump(&self.stats.requests_auto_answered);
        }
        if let Some(tx) = self.answers.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send((id, frame, message));
        }
    }

    /// Ends the session once: every call, stream and request wait ends with `Closed`.
    fn end(&self, reason: Cow<'static, str>) {
        let (calls, serving, queued, first) = {
            let mut st = self.lock();
            let first = st.closed.is_none();
            if first {
                st.closed = Some(reason.clone());
            }
            let queued = std::mem::take(&mut st.queue);
            self.update_signal(&mut st);
            (std::mem::take(&mut st.calls), std::mem::take(&mut st.serving), queued, first)
        };
        // Logged without the lock: the log callback may call back into this session.
        if first && reason.starts_with("protocol violation") {
            crate::log!(Warn, "session", "session ended: {reason}");
        } else if first {
            crate::log!(Info, "session", "session ended: {reason}");
        }
        self.answers.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Wake the reader thread even while the connection is parked out of its set.
        let _ = (&self.park_tx).write(&[1]);
        self.requests_changed.notify_all();
        for ex in calls.values() {
            if ex.finish(Err(self.ended_error(reason.clone()))) {
                stats::bump(&self.stats.calls_failed);
            }
        }
        for ex in serving.values() {
            ex.finish(Err(self.ended_error(reason.clone())));
        }
        // Dropped outside the lock: a dropped request tries to answer.
        drop(queued);
    }
}

/// The reader thread: routes frames until the connection ends, then ends the session.
/// An error answer the reader leaves to the answerer thread: request id, code, message.
type AutoAnswer = (u64, AutoFrame, &'static str);

/// What librp itself writes for the reader thread (see [`AutoAnswer`]).
#[derive(Debug, Clone, Copy)]
enum AutoFrame {
    /// A RESPONSE carrying this error code.
    Error(i32),
    /// A CANCEL of one of this side's calls.
    Cancel,
}

/// Ends the exchange `id` whose reader fell [`MAX_UNREAD_STREAM_BYTES`] behind: its waiters
/// get [`Error::Overflow`], its unread chunks are dropped, and the peer is told.
fn stream_overflowed(inner: &Inner, ex: &Exchange, id: u64, ours: bool) {
    let why = "the peer streamed more than 64 MiB that was not read; the exchange was ended";
    if ex.finish(Err(Error::Overflow(why.into()))) {
        let mut st = ex.lock();
        st.chunks.clear();
        st.unread_bytes = 0;
        drop(st);
        if ours {
            inner.lock().calls.remove(&id);
            inner.auto_answer(id, AutoFrame::Cancel, why);
        } else {
            inner.lock().serving.remove(&id);
            inner.auto_answer(id, AutoFrame::Error(code::TOO_LARGE), why);
        }
    }
}

/// The reader thread: whenever the connection is readable and no other thread holds the
/// reader role, reads and routes what arrived; ends the session when the connection ends.
/// While the connection is parked it looks every [`PARKED_RECHECK`] whether it may take it
/// back.
fn read_frames(inner: Arc<Inner>) {
    let reason: Cow<'static, str> = loop {
        let parked = inner.parked.load(Ordering::Acquire);
        let woke = match transport::wait_readable(inner.reader_set.as_raw_fd(), parked.then_some(PARKED_RECHECK)) {
            Ok(woke) => woke,
            Err(e) => break format!("connection failed: {e}").into(),
        };
        let mut sink = [0u8; 64];
        while matches!((&inner.park_rx).read(&mut sink), Ok(n) if n > 0) {}
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
            let _ = transport::readiness_set_member(inner.reader_set.as_raw_fd(), inner.conn.socket_fd(), true);
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
/// buffered, then batches until no complete frame is left buffered (where no `poll` would see
/// it). The caller holds the reader role.
fn route_available(inner: &Arc<Inner>) -> Result<(), Cow<'static, str>> {
    while read_once(inner, Duration::ZERO)? == READ_BATCH || inner.conn.has_buffered_frame() {}
    Ok(())
}

/// Reads the connection on the calling thread until `done` is true, `until` passes or the
/// session ends — if no other thread holds the reader role. The connection is parked out of
/// the reader thread's epoll set meanwhile (and stays so for the next thread that reads for
/// itself), so that thread sleeps instead of waking for each frame.
/// Returns false when another thread is reading (wait for it to route instead) or the session
/// has ended with nothing done.
fn read_while(inner: &Arc<Inner>, until: Option<Instant>, mut done: impl FnMut() -> bool) -> bool {
    if until.is_some_and(|u| u <= Instant::now()) {
        return false; // no time to read: do not park the connection for nothing
    }
    let Ok(role) = inner.reading.try_lock() else { return false };
    if !inner.parked.load(Ordering::Acquire) {
        let _ = transport::readiness_set_member(inner.reader_set.as_raw_fd(), inner.conn.socket_fd(), false);
        inner.parked.store(true, Ordering::Release);
        // The reader thread may be waiting without a time limit: tell it to recheck.
        let _ = (&inner.park_tx).write(&[1]);
    }
    let mut ended = None;
    let mut looked = false;
    while !done() && inner.lock().closed.is_none() {
        looked = true;
        let left = until.map(|u| u.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            break;
        }
        // A blocking read with the socket's timeout (set again only when it changes).
        if let Err(why) = read_once(inner, left.map_or(READ_SLICE, |l| l.min(READ_SLICE))) {
            ended = Some(why);
            break;
        }
    }
    if ended.is_none() {
        // Frames that completed with the ones waited for, and stay buffered, are routed now.
        while inner.conn.has_buffered_frame() {
            if let Err(why) = read_once(inner, Duration::ZERO) {
                ended = Some(why);
                break;
            }
        }
    }
    if inner.signal_used.load(Ordering::Acquire) {
        // A poll loop waits on `request_fd`: requests must not wait for the recheck, so the
        // reader thread gets the connection back at once.
        let _ = transport::readiness_set_member(inner.reader_set.as_raw_fd(), inner.conn.socket_fd(), true);
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

/// Routes one incoming frame to where it belongs. Returns why the session must end on a
/// protocol violation. Runs with the reader role held; never blocks on I/O.
fn route(inner: &Arc<Inner>, frame: &FrameView<'_>) -> Result<(), Cow<'static, str>> {
    if let Err(e) = frame.check_plain().and_then(|()| frame.check_trace_context()) {
        return Err(e.to_string().into());
    }
    if frame.payload_protocol != SESSION {
        return Err(format!("protocol violation: frame on payload protocol 0x{:04X}", frame.payload_protocol).into());
    }
    let msg = if frame.kind == FrameKind::Cancel as i32 {
        SessionMessage::default()
    } else {
        match decode_message(frame.payload) {
            Ok(m) => m,
            Err(e @ WireError::NoMemory { .. }) => {
                inner.no_memory.store(true, Ordering::Relaxed);
                return Err(format!("message {} not received: {e}", frame.request_id).into());
            }
            Err(WireError::Malformed { detail, .. }) => {
                return Err(format!("protocol violation: malformed SessionMessage: {detail}").into())
            }
            Err(e) => return Err(format!("protocol violation: {e}").into()),
        }
    };
    if let Some(e) = msg.error.as_ref().filter(|e| e.message.len() > MAX_ERROR_MESSAGE) {
        return Err(format!(
            "protocol violation: an error message of {} bytes exceeds the {MAX_ERROR_MESSAGE}-byte limit",
            e.message.len()
        )
        .into());
    }
    let id = frame.request_id;
    let ours = inner.side.owns(id);
    match (FrameKind::try_from(frame.kind).ok(), ours) {
        (Some(FrameKind::Request), false) => {
            let deadline = deadline_instant(frame.deadline_unix_ms);
            let request = Request {
                inner: Arc::clone(inner),
                exchange: Arc::new(Exchange::default()),
                id,
                payload_protocol: msg.payload_protocol,
                payload: msg.payload,
                deadline_unix_ms: frame.deadline_unix_ms,
                deadline,
                traceparent: frame.traceparent.to_owned(),
                tracestate: frame.tracestate.to_owned(),
                answered: AtomicBool::new(false),
            };
            stats::bump(&inner.stats.requests_received);
            if !inner.serving.load(Ordering::Acquire) {
                request.answered.store(true, Ordering::Release);
                inner.auto_answer(id, AutoFrame::Error(code::NOT_FOUND), "no dispatcher: this session serves no requests");
                return Ok(());
            }
            if deadline.is_some_and(|d| d <= Instant::now()) {
                request.answered.store(true, Ordering::Release);
                inner.auto_answer(id, AutoFrame::Error(code::TIMEOUT), "the request's deadline had passed on arrival");
                return Ok(());
            }
            let mut st = inner.lock();
            if st.serving.contains_key(&id) {
                drop(st);
                request.answered.store(true, Ordering::Release);
                return Err(format!("protocol violation: request id {id} is already in use").into());
            }
            st.serving.insert(id, Arc::clone(&request.exchange));
            if st.queue.len() >= MAX_QUEUED_REQUESTS {
                drop(st);
                request.answered.store(true, Ordering::Release);
                inner.lock().serving.remove(&id);
                inner.auto_answer(id, AutoFrame::Error(code::AGAIN), "too many requests are waiting to be dispatched");
                return Ok(());
            }
            st.queue.push_back(request);
            inner.update_signal(&mut st);
            let waiting = st.request_waiters > 0;
            drop(st);
            if waiting {
                inner.requests_changed.notify_one();
            }
        }
        (Some(FrameKind::Request), true) => {
            return Err(format!("protocol violation: the peer sent a request with id {id}, which has this side's parity")
                .into());
        }
        (Some(FrameKind::Response), true) => {
            let call = inner.lock().calls.remove(&id);
            if let Some(ex) = call {
                let result = match msg.error {
                    Some(e) => Err(peer_error(e)),
                    None => Ok(msg.payload),
                };
                let ok = result.is_ok();
                if ex.finish(result) {
                    stats::bump(if ok { &inner.stats.calls_succeeded } else { &inner.stats.calls_failed });
                }
            }
            // An unknown id: the call was cancelled or timed out here; drop the answer.
        }
        (Some(FrameKind::Event), ours) => {
            let ex = {
                let st = inner.lock();
                if ours { st.calls.get(&id).cloned() } else { st.serving.get(&id).cloned() }
            };
            if let Some(ex) = ex {
                let mut st = ex.lock();
                if !msg.payload.is_empty() || !msg.end_of_stream {
                    let cost = chunk_cost(msg.payload.len());
                    if st.unread_bytes + cost > MAX_UNREAD_STREAM_BYTES {
                        drop(st);
                        stream_overflowed(inner, &ex, id, ours);
                        return Ok(());
                    }
                    st.unread_bytes += cost;
                    st.chunks.push_back(msg.payload);
                }
                if msg.end_of_stream {
                    st.peer_done = true;
                }
                ex.notify(&st);
            }
        }
        (Some(FrameKind::Cancel), false) => {
            let ex = inner.lock().serving.remove(&id);
            if let Some(ex) = ex {
                ex.finish(Err(Error::Cancelled("the caller cancelled the request".into())));
            }
            // Also take it off the queue if it was not yet dispatched (dropped outside the lock).
            let mut st = inner.lock();
            let (gone, kept) = std::mem::take(&mut st.queue).into_iter().partition(|r| r.id == id);
            st.queue = kept;
            inner.update_signal(&mut st);
            drop(st);
            drop::<VecDeque<Request>>(gone);
        }
        (Some(FrameKind::Cancel), true) | (Some(FrameKind::Response), false) => {
            return Err(format!("protocol violation: frame kind {} with request id {id} of the wrong side", frame.kind)
                .into());
        }
        (None, _) => return Err(format!("protocol violation: unknown frame kind {}", frame.kind).into()),
    }
    Ok(())
}

/// How a waiter on an exchange may read the connection itself: the session, and when what
/// it waits for has arrived.
type ReadFor<'a> = (&'a Arc<Inner>, fn(&ExchangeState) -> bool);

/// Waits on an exchange until `ready` returns a value, the wait limit or the deadline passes.
/// With `read_for`, the waiting thread reads and routes frames itself while no other thread
/// does (see [`read_while`]).
///
/// Returns `Err(true)` when the deadline passed, `Err(false)` when only the wait limit did.
fn wait_on<T>(
    ex: &Exchange,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    read_for: Option<ReadFor<'_>>,
    mut ready: impl FnMut(&mut ExchangeState) -> Option<T>,
) -> Result<T, bool> {
    let until = timeout.map(|t| Instant::now() + t);
    let mut st = ex.lock();
    loop {
        if let Some(v) = ready(&mut st) {
            return Ok(v);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| d <= now) {
            return Err(true);
        }
        if until.is_some_and(|u| u <= now) {
            return Err(false);
        }
        let limit = [until, deadline].into_iter().flatten().min();
        if let Some((inner, arrived)) = read_for {
            drop(st);
            let read = read_while(inner, limit, || arrived(&ex.lock()));
            st = ex.lock();
            // Look again before sleeping: whoever reads may have routed our frame meanwhile
            // (its notification is made only to threads already waiting).
            if read || arrived(&st) {
                continue;
            }
        }
        st.waiters += 1;
        st = match limit {
            None => ex.changed.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(l) => ex.changed.wait_timeout(st, l - now).unwrap_or_else(|p| p.into_inner()).0,
        };
        st.waiters -= 1;
    }
}

/// True once a call's outcome is there.
fn has_outcome(st: &ExchangeState) -> bool {
    st.outcome.is_some()
}

/// True once [`take_chunk`] has something to return.
fn has_chunk_or_end(st: &ExchangeState) -> bool {
    !st.chunks.is_empty() || st.outcome.is_some() || st.peer_done
}

/// Takes a chunk, or says why there is none (ended, failed) — `None` means "wait".
fn take_chunk(st: &mut ExchangeState) -> Option<Result<Vec<u8>, Error>> {
    if let Some(c) = st.chunks.pop_front() {
        st.unread_bytes -= chunk_cost(c.len());
        return Some(Ok(c));
    }
    match &st.outcome {
        Some(Outcome::Ready(Some(Err(e)))) => Some(Err(copy_error(e))),
        Some(_) => Some(Err(Error::Closed("the stream has ended".into()))),
        None if st.peer_done => Some(Err(Error::Closed("the stream has ended".into()))),
        None => None,
    }
}

/// One call this side made: wait for its response, read its stream, write to its tunnel,
/// cancel it. All methods take `&self`; dropping an unfinished call cancels it.
#[derive(Debug)]
pub struct Call {
    inner: Arc<Inner>,
    exchange: Arc<Exchange>,
    id: u64,
    deadline: Option<Instant>,
}

impl Call {
    /// The call's request id (odd on the connecting side, even on the accepting side).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True once the call has an outcome ([`wait`](Self::wait) then returns at once).
    pub fn is_done(&self) -> bool {
        self.exchange.is_done()
    }

    /// Waits up to `timeout` (`None` = forever) for the response and takes it.
    ///
    /// `Timeout` either means the wait ended first (the call goes on; [`is_done`](Self::is_done)
    /// is false) or the call's deadline passed (the call ended and the peer was sent a CANCEL).
    /// An outcome can be taken once; later calls fail with `InvalidArgument`.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        let got = wait_on(&self.exchange, timeout, self.deadline, Some((&self.inner, has_outcome)), |st| {
            st.outcome.as_mut().map(|Outcome::Ready(r)| r.take())
        });
        match got {
            Ok(Some(result)) => result,
            Ok(None) => Err(Error::invalid_argument("the call's outcome was already taken")),
            Err(true) => {
                self.cancel_with(Error::Timeout("the call's deadline passed".into()));
                match self.wait(Some(Duration::ZERO)) {
                    Err(e) if e.kind() == crate::ErrorKind::InvalidArgument => {
                        Err(Error::Timeout("the call's deadline passed".into()))
                    }
                    other => other,
                }
            }
            Err(false) => Err(Error::Timeout("no response arrived in time".into())),
        }
    }

    /// Reads the next chunk the peer streamed (EVENT frames), waiting up to `timeout`.
    ///
    /// Fails with `Closed` once the stream has ended (the peer's end of stream or final
    /// response — take that with [`wait`](Self::wait) — or the connection ended), `Timeout`,
    /// `Cancelled`, or the call's error.
    pub fn next_chunk(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        match wait_on(&self.exchange, timeout, self.deadline, Some((&self.inner, has_chunk_or_end)), take_chunk) {
            Ok(r) => r,
            Err(true) => {
                self.cancel_with(Error::Timeout("the call's deadline passed".into()));
                Err(Error::Timeout("the call's deadline passed".into()))
            }
            Err(false) => Err(Error::Timeout("no chunk arrived in time".into())),
        }
    }

    /// Sends one chunk to the peer on this call (the tunnel direction caller → callee).
    pub fn send_chunk(&self, chunk: &[u8]) -> Result<(), Error> {
        self.exchange.check_writable("the call has ended")?;
        self.inner.send_chunk(self.id, chunk)
    }

    /// Half-closes: tells the peer this side sends no more chunks. The response still comes.
    pub fn close_write(&self) -> Result<(), Error> {
        self.exchange.check_writable("the call has ended")?;
        self.inner.close_write(&self.exchange, self.id)
    }

    /// Cancels the call: its waiters wake with `Cancelled` and the peer is sent a CANCEL.
    /// Does nothing once the call has an outcome.
    pub fn cancel(&self) {
        self.cancel_with(Error::Cancelled("the call was cancelled".into()));
    }

    fn cancel_with(&self, error: Error) {
        let timed_out = error.kind() == crate::ErrorKind::Timeout;
        if self.exchange.finish(Err(error)) {
            stats::bump(&self.inner.stats.calls_failed);
            if timed_out {
                stats::bump(&self.inner.stats.calls_timed_out);
                crate::log!(Debug, "session", "call {} timed out", self.id);
            }
            self.inner.lock().calls.remove(&self.id);
            let _ = self.inner.send_simple(FrameKind::Cancel, self.id, &SessionMessage::default());
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// One of the peer's requests being served: its fields, its stream, and its answer.
///
/// Answer it once with [`respond`](Self::respond) or [`respond_error`](Self::respond_error),
/// from any thread; dropping it unanswered answers with the `CLOSED` error.
#[derive(Debug)]
pub struct Request {
    inner: Arc<Inner>,
    exchange: Arc<Exchange>,
    id: u64,
    payload_protocol: u32,
    payload: Vec<u8>,
    deadline_unix_ms: u64,
    deadline: Option<Instant>,
    traceparent: String,
    tracestate: String,
    answered: AtomicBool,
}

impl Request {
    /// The request id the caller chose.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The consumer protocol of the payload.
    pub fn payload_protocol(&self) -> u32 {
        self.payload_protocol
    }

    /// The request's bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Absolute deadline in Unix milliseconds; 0 = none.
    pub fn deadline_unix_ms(&self) -> u64 {
        self.deadline_unix_ms
    }

    /// W3C traceparent ("" = none).
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// W3C tracestate ("" = none).
    pub fn tracestate(&self) -> &str {
        &self.tracestate
    }

    /// True once the caller cancelled the request (or the session ended); answers are then
    /// not sent.
    pub fn is_cancelled(&self) -> bool {
        !self.answered.load(Ordering::Acquire) && self.exchange.is_done()
    }

    /// Answers with a payload. Fails with `Cancelled` (the caller cancelled), `Timeout` (the
    /// deadline passed: the caller is sent the `TIMEOUT` error instead), `Closed`, or
    /// `InvalidArgument` (already answered).
    pub fn respond(&self, payload: &[u8]) -> Result<(), Error> {
        self.counted(self.answer(Ok(payload)))
    }

    /// Answers with an error: `code` is an `rp_status` value or an application code ≥ 1000.
    /// Fails like [`respond`](Self::respond).
    /// The message is at most [`MAX_ERROR_MESSAGE`] bytes (`InvalidArgument` otherwise, and the
    /// request stays unanswered).
    pub fn respond_error(&self, code: i32, message: &str) -> Result<(), Error> {
        if message.len() > MAX_ERROR_MESSAGE {
            return Err(Error::invalid_argument(format!(
                "an error message is at most {MAX_ERROR_MESSAGE} bytes (got {})",
                message.len()
            )));
        }
        self.counted(self.answer(Err(Error::Peer { code, message: message.to_owned() })))
    }

    /// Counts an answer the application gave (not a second one).
    fn counted(&self, result: Result<(), Error>) -> Result<(), Error> {
        if !result.as_ref().is_err_and(|e| e.kind() == crate::ErrorKind::InvalidArgument) {
            stats::bump(&self.inner.stats.requests_answered);
        }
        result
    }

    fn answer(&self, result: Result<&[u8], Error>) -> Result<(), Error> {
        if self.answered.swap(true, Ordering::AcqRel) {
            return Err(Error::invalid_argument("the request was already answered"));
        }
        self.inner.lock().serving.remove(&self.id);
        let late = self.deadline.is_some_and(|d| d <= Instant::now());
        if let Some(Outcome::Ready(Some(Err(e)))) = &self.exchange.lock().outcome {
            // Cancelled or the session ended: nothing is sent. Past the deadline, the caller
            // has ended the call with TIMEOUT, and so does this side.
            if late {
                return Err(Error::Timeout("the request's deadline passed before it was answered".into()));
            }
            return Err(copy_error(e));
        }
        let (msg, outcome) = if late {
            let text = "the request's deadline passed before it was answered";
            (error_message(code::TIMEOUT, text), Err(Error::Timeout(text.into())))
        } else {
            match result {
                Ok(payload) => {
                    self.exchange.finish(Err(Error::Closed("the request was answered".into())));
                    return self.inner.send_payload(FrameKind::Response, self.id, payload);
                }
                Err(Error::Peer { code, message }) => (error_message(code, &message), Ok(())),
                Err(e) => (error_message(code_of(&e), &e.to_string()), Ok(())),
            }
        };
        self.exchange.finish(Err(Error::Closed("the request was answered".into())));
        self.inner.send_simple(FrameKind::Response, self.id, &msg)?;
        outcome
    }

    /// Reads the next chunk the caller sent on this request (a tunnel), waiting up to
    /// `timeout`. Fails with `Closed` once the caller half-closed (or the session ended),
    /// `Timeout` (the wait or the request's deadline), or `Cancelled`.
    pub fn next_chunk(&self, timeout: Option<Duration>) -> Result<Vec<u8>, Error> {
        if self.deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout("the request's deadline passed".into()));
        }
        match wait_on(&self.exchange, timeout, self.deadline, Some((&self.inner, has_chunk_or_end)), take_chunk) {
            Ok(r) => r,
            Err(true) => Err(Error::Timeout("the request's deadline passed".into())),
            Err(false) => Err(Error::Timeout("no chunk arrived in time".into())),
        }
    }

    /// Streams one chunk to the caller (an EVENT frame) before the final answer.
    pub fn send_chunk(&self, chunk: &[u8]) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.send_chunk(self.id, chunk)
    }

    /// Half-closes: tells the caller no more chunks come; the final answer is still due.
    pub fn close_write(&self) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.close_write(&self.exchange, self.id)
    }

    fn check_writable(&self) -> Result<(), Error> {
        if self.answered.load(Ordering::Acquire) {
            return Err(Error::Closed("the request was already answered".into()));
        }
        if self.deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout("the request's deadline passed".into()));
        }
        self.exchange.check_writable("the request has ended")
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered.load(Ordering::Acquire) {
            stats::bump(&self.inner.stats.requests_auto_answered);
            let _ = self.answer(Err(Error::Peer {
                code: code::CLOSED,
                message: "the serving side dropped the request without answering".into(),
            }));
        }
    }
}

fn error_message(code: i32, message: &str) -> SessionMessage {
    SessionMessage { error: Some(SessionError { code, message: message.to_owned() }), ..SessionMessage::default() }
}

/// The wire code of a local error kind.
fn code_of(e: &Error) -> i32 {
    match e.kind() {
        crate::ErrorKind::Timeout => code::TIMEOUT,
        crate::ErrorKind::Cancelled => code::CANCELLED,
        crate::ErrorKind::NotFound => code::NOT_FOUND,
        crate::ErrorKind::InvalidArgument => code::INVALID_ARGUMENT,
        _ => code::CLOSED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_by_side() {
        assert!(Side::Connecting.owns(1) && !Side::Connecting.owns(2));
        assert!(Side::Accepting.owns(2) && !Side::Accepting.owns(3));
        assert_eq!(Side::Connecting.first_id(), 1);
        assert_eq!(Side::Accepting.first_id(), 2);
    }

    #[test]
    fn peer_codes_map_back_to_kinds() {
        let e = |code| peer_error(SessionError { code, message: "m".into() }).kind();
        assert_eq!(e(code::TIMEOUT), crate::ErrorKind::Timeout);
        assert_eq!(e(code::NOT_FOUND), crate::ErrorKind::NotFound);
        assert_eq!(e(1234), crate::ErrorKind::PeerError);
    }
}
