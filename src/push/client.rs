//! The worker side: connect, register, receive pushes, reply.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prost::Message;

use super::proto::{push_reply, Push, PushFailure, PushReply, Registration, RegistrationAck};
use super::{PUSH_PROTOCOL, PUSH_PROTOCOL_VERSION, REGISTRATION_REQUEST_ID};
use crate::control::{client_handshake, ClientHello};
use crate::error::Error;
use crate::transport::{self, Endpoint, Stream};
use crate::wire::proto::{FrameKind, Negotiated};
use crate::wire::{FrameReader, FrameView, FrameWriter, WireError};

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
    /// Pushes held before the worker stops reading from the server (default 1024).
    pub max_queued_pushes: usize,
    /// Limit for one reply to be written (default 30 s).
    pub send_timeout: Duration,
    /// Token for servers that require one (TCP).
    pub auth_token: Vec<u8>,
    /// The worker's own version, sent as `client_version`.
    pub client_version: String,
}

impl WorkerOptions {
    /// Options with defaults for everything but the endpoint and registration.
    pub fn new(endpoint: Endpoint, registration: Registration) -> Self {
        WorkerOptions {
            endpoint,
            service_name: super::DEFAULT_SERVICE.to_owned(),
            registration,
            connect_timeout: Duration::from_secs(5),
            max_queued_pushes: 1024,
            send_timeout: Duration::from_secs(30),
            auth_token: Vec::new(),
            client_version: String::new(),
        }
    }
}

/// One push received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Correlation id; answer with [`PushClient::reply`].
    pub correlation_id: u64,
    /// The consumer protocol of the payload.
    pub payload_protocol: u32,
    /// The job's bytes.
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
/// A background reader moves pushes from the socket into a bounded inbox. When the inbox is
/// full the reader stops reading, so the server's send buffer for this worker fills and its
/// pushes fail with "try again"; nothing is dropped silently and memory stays bounded.
#[derive(Debug)]
pub struct PushClient {
    shared: Arc<Shared>,
    writer: Mutex<FrameWriter<Stream>>,
    socket: Stream,
    reader: Mutex<Option<JoinHandle<()>>>,
    worker_id: u64,
    negotiated: Negotiated,
}

#[derive(Debug)]
struct Shared {
    inbox: Mutex<Inbox>,
    changed: Condvar,
    max_queued: usize,
    /// Readable end of the notification pair: holds one byte while a push waits or the
    /// connection has ended.
    signal_rx: UnixStream,
    signal_tx: UnixStream,
}

#[derive(Debug, Default)]
struct Inbox {
    jobs: VecDeque<Job>,
    /// Received and not yet answered; a reply must name one of these, once.
    outstanding: HashSet<u64>,
    closed: Option<Cow<'static, str>>,
    signalled: bool,
}

impl PushClient {
    /// Connects, says Hello, registers, and starts receiving pushes.
    ///
    /// Fails with `Refused` (the server's code and retry hint in the error), `Rejected` (the
    /// registration was declined, with the server's reason), `Timeout`, or an I/O error.
    pub fn connect(opts: WorkerOptions) -> Result<PushClient, Error> {
        let deadline = Instant::now() + opts.connect_timeout;
        let socket = transport::connect(&opts.endpoint, opts.connect_timeout)?;
        let remaining = || {
            deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()).ok_or_else(|| {
                Error::Timeout(format!("connect to {} exceeded {:?}", opts.endpoint, opts.connect_timeout).into())
            })
        };
        let io = |e| Error::io("configure socket", e);
        socket.set_read_timeout(Some(remaining()?)).map_err(io)?;
        socket.set_write_timeout(Some(remaining()?)).map_err(io)?;
        let mut reader = FrameReader::new(socket.try_clone().map_err(io)?);
        let mut writer = FrameWriter::new(socket.try_clone().map_err(io)?);
        let hello = ClientHello {
            service_name: opts.service_name.clone(),
            wanted_version: PUSH_PROTOCOL_VERSION.to_owned(),
            client_version: opts.client_version.clone(),
            auth_token: opts.auth_token.clone(),
            ..ClientHello::default()
        };
        let timeout_to_error = |e: Error| match e {
            Error::Wire(WireError::Timeout) => {
                Error::Timeout(format!("no answer from {} within {:?}", opts.endpoint, opts.connect_timeout).into())
            }
            e => e,
        };
        let negotiated = client_handshake(&mut reader, &mut writer, &hello).map_err(timeout_to_error)?;

        // Register before the reader thread exists, so nothing else can consume the ack.
        socket.set_read_timeout(Some(remaining()?)).map_err(io)?;
        let registration = opts.registration.encode_to_vec();
        writer.write_frame(&FrameView {
            kind: FrameKind::Request as i32,
            payload_protocol: PUSH_PROTOCOL,
            payload: &registration,
            request_id: REGISTRATION_REQUEST_ID,
            ..FrameView::default()
        })?;
        let ack = registration_ack(&reader.read_frame().map_err(|e| timeout_to_error(e.into()))?)?;
        if !ack.accepted {
            return Err(Error::Rejected(format!("registration rejected: {}", ack.reason).into()));
        }

        socket.set_read_timeout(None).map_err(io)?;
        socket.set_write_timeout(Some(opts.send_timeout)).map_err(io)?;
        let (signal_rx, signal_tx) = UnixStream::pair().map_err(|e| Error::io("notification socket", e))?;
        signal_rx.set_nonblocking(true).map_err(io)?;
        signal_tx.set_nonblocking(true).map_err(io)?;
        let shared = Arc::new(Shared {
            inbox: Mutex::new(Inbox::default()),
            changed: Condvar::new(),
            max_queued: opts.max_queued_pushes.max(1),
            signal_rx,
            signal_tx,
        });
        let reader_shared = Arc::clone(&shared);
        let reader_socket = socket.try_clone().map_err(io)?;
        let handle = std::thread::Builder::new()
            .name("rp-push-reader".into())
            .spawn(move || read_pushes(reader, reader_shared, reader_socket))
            .map_err(|e| Error::io("spawn reader thread", e))?;
        Ok(PushClient {
            shared,
            writer: Mutex::new(writer),
            socket,
            reader: Mutex::new(Some(handle)),
            worker_id: ack.worker_id,
            negotiated,
        })
    }

    /// The id the server gave this worker.
    pub fn worker_id(&self) -> u64 {
        self.worker_id
    }

    /// What the server negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// Waits for the next push: `None` waits forever, `Some(0)` only takes one already here.
    ///
    /// Fails with `Timeout` when none came in time and `Closed` when the connection ended
    /// (server gone, protocol violation, or [`close`](Self::close)); the reason is in the error.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Job, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut inbox = self.shared.lock();
        loop {
            if let Some(reason) = &inbox.closed {
                return Err(Error::Closed(reason.clone()));
            }
            if let Some(job) = inbox.jobs.pop_front() {
                inbox.outstanding.insert(job.correlation_id);
                self.shared.update_signal(&mut inbox);
                self.shared.changed.notify_all();
                return Ok(job);
            }
            inbox = match deadline {
                None => self.shared.changed.wait(inbox).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout("no push arrived".into()));
                    }
                    self.shared.changed.wait_timeout(inbox, d - now).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }

    /// Answers a push with a payload.
    pub fn reply(&self, correlation_id: u64, payload: &[u8]) -> Result<(), Error> {
        let msg = PushReply { result: Some(push_reply::Result::Payload(payload.to_vec())) };
        self.send_reply(correlation_id, &msg)
    }

    /// Answers a push with a failure: the worker could not do the job.
    pub fn reply_error(&self, correlation_id: u64, code: i32, message: &str) -> Result<(), Error> {
        let failure = PushFailure { code, message: message.to_owned() };
        let msg = PushReply { result: Some(push_reply::Result::Failure(failure)) };
        self.send_reply(correlation_id, &msg)
    }

    /// True while `correlation_id` was received and not yet answered.
    pub fn is_outstanding(&self, correlation_id: u64) -> bool {
        self.shared.lock().outstanding.contains(&correlation_id)
    }

    fn send_reply(&self, correlation_id: u64, msg: &PushReply) -> Result<(), Error> {
        {
            let mut inbox = self.shared.lock();
            if let Some(reason) = &inbox.closed {
                return Err(Error::Closed(reason.clone()));
            }
            if !inbox.outstanding.remove(&correlation_id) {
                return Err(Error::NotFound(
                    format!("push {correlation_id} was not received or was already answered").into(),
                ));
            }
        }
        let payload = msg.encode_to_vec();
        let frame = FrameView {
            kind: FrameKind::Response as i32,
            payload_protocol: PUSH_PROTOCOL,
            payload: &payload,
            request_id: correlation_id,
            ..FrameView::default()
        };
        let result = self.writer.lock().unwrap_or_else(|p| p.into_inner()).write_frame(&frame);
        result.map_err(|e| match e {
            WireError::Timeout => Error::Timeout("the server did not accept the reply in time".into()),
            WireError::Closed => Error::Closed("the server closed the connection".into()),
            e => e.into(),
        })
    }

    /// A descriptor that is readable while a push is waiting or the connection has ended, for
    /// `poll`/`epoll` loops. Owned by the client; do not read from or close it.
    pub fn pollable_fd(&self) -> RawFd {
        self.shared.signal_rx.as_raw_fd()
    }

    /// Number of pushes waiting in the inbox.
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    /// Closes the connection; blocked and later calls fail with `Closed`. Idempotent, and
    /// callable from any thread.
    pub fn close(&self) {
        self.shared.close("closed locally".into());
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

impl Drop for PushClient {
    fn drop(&mut self) {
        self.close();
        let handle = self.reader.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self, reason: Cow<'static, str>) {
        let mut inbox = self.lock();
        if inbox.closed.is_none() {
            inbox.closed = Some(reason);
            inbox.jobs.clear();
        }
        self.update_signal(&mut inbox);
        self.changed.notify_all();
    }

    /// Keeps exactly one byte in the notification socket while something is ready.
    fn update_signal(&self, inbox: &mut Inbox) {
        let ready = !inbox.jobs.is_empty() || inbox.closed.is_some();
        if ready && !inbox.signalled {
            inbox.signalled = (&self.signal_tx).write(&[1]).is_ok();
        } else if !ready && inbox.signalled {
            let mut byte = [0u8; 1];
            let _ = (&self.signal_rx).read(&mut byte);
            inbox.signalled = false;
        }
    }
}

/// Checks and decodes the server's answer to the registration.
fn registration_ack(frame: &FrameView<'_>) -> Result<RegistrationAck, Error> {
    if frame.payload_protocol != PUSH_PROTOCOL
        || frame.frame_kind() != Some(FrameKind::Response)
        || frame.request_id != REGISTRATION_REQUEST_ID
    {
        return Err(WireError::Protocol("expected the registration ack".into()).into());
    }
    Ok(RegistrationAck::decode(frame.payload).map_err(|e| WireError::from_prost("RegistrationAck", e))?)
}

/// Fuzzing and corpus-replay hook (see [`super::fuzzing`]): runs `bytes`, as if a server sent
/// them, through the worker's real parse path: the HelloReply ([`client_handshake`]), the
/// registration ack, then the reader thread's loop (run on this thread, with an unbounded inbox
/// so it never waits). Returns the pushes received, in order (empty when the handshake fails).
pub(crate) fn fuzz_server_stream(bytes: &[u8]) -> Vec<Job> {
    let mut reader = FrameReader::new(bytes);
    let hello = ClientHello {
        service_name: super::DEFAULT_SERVICE.to_owned(),
        wanted_version: PUSH_PROTOCOL_VERSION.to_owned(),
        ..ClientHello::default()
    };
    if client_handshake(&mut reader, &mut FrameWriter::new(std::io::sink()), &hello).is_err() {
        return Vec::new();
    }
    match reader.read_frame().map_err(Error::from).and_then(|f| registration_ack(&f)) {
        Ok(ack) if ack.accepted => {}
        _ => return Vec::new(),
    }
    let (signal_rx, signal_tx) = UnixStream::pair().expect("socketpair for the fuzzing hook");
    let (socket, _peer) = UnixStream::pair().expect("socketpair for the fuzzing hook");
    let shared = Arc::new(Shared {
        inbox: Mutex::new(Inbox::default()),
        changed: Condvar::new(),
        max_queued: usize::MAX,
        signal_rx,
        signal_tx,
    });
    let mut received = Vec::new();
    read_pushes_into(reader, &shared, Stream::Unix(socket), Some(&mut received));
    assert!(shared.lock().closed.is_some(), "the reader loop ends only with the connection closed");
    received
}

/// The reader thread: frames from the server into the inbox until the connection ends.
fn read_pushes(reader: FrameReader<Stream>, shared: Arc<Shared>, socket: Stream) {
    read_pushes_into(reader, &shared, socket, None)
}

/// The reader loop; `seen` (fuzzing hook only) collects each push as it is queued.
fn read_pushes_into<R: Read>(
    mut reader: FrameReader<R>,
    shared: &Shared,
    socket: Stream,
    mut seen: Option<&mut Vec<Job>>,
) {
    let reason: Cow<'static, str> = loop {
        let frame = match reader.read_frame() {
            Ok(f) => f,
            Err(WireError::Closed) => break "the server closed the connection".into(),
            Err(e) => break format!("connection failed: {e}").into(),
        };
        if frame.payload_protocol != PUSH_PROTOCOL {
            break format!("protocol violation: frame on payload protocol 0x{:04X}", frame.payload_protocol).into();
        }
        match frame.frame_kind() {
            Some(FrameKind::Event) => {
                let push = match Push::decode(frame.payload) {
                    Ok(p) => p,
                    Err(e) => break format!("protocol violation: malformed Push: {e}").into(),
                };
                let job = Job {
                    correlation_id: frame.request_id,
                    payload_protocol: push.payload_protocol,
                    payload: push.payload,
                    deadline_unix_ms: frame.deadline_unix_ms,
                    traceparent: frame.traceparent.to_owned(),
                    tracestate: frame.tracestate.to_owned(),
                };
                let mut inbox = shared.lock();
                while inbox.jobs.len() >= shared.max_queued && inbox.closed.is_none() {
                    inbox = shared.changed.wait(inbox).unwrap_or_else(|p| p.into_inner());
                }
                if inbox.closed.is_some() {
                    return;
                }
                if let Some(seen) = seen.as_deref_mut() {
                    seen.push(job.clone());
                }
                inbox.jobs.push_back(job);
                shared.update_signal(&mut inbox);
                shared.changed.notify_all();
            }
            Some(FrameKind::Cancel) => {
                // The server gave up on a push (deadline passed): drop it if not yet received.
                let mut inbox = shared.lock();
                inbox.jobs.retain(|j| j.correlation_id != frame.request_id);
                inbox.outstanding.remove(&frame.request_id);
                shared.update_signal(&mut inbox);
            }
            _ => break format!("protocol violation: unexpected frame kind {}", frame.kind).into(),
        }
    };
    shared.close(reason);
    let _ = socket.shutdown(Shutdown::Both);
}
