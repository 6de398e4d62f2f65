//! The public face of a session: starting it (its reader and answerer threads), calls,
//! taking requests to serve, the request descriptor, statistics and closing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::inner::{AutoAnswer, AutoFrame, Inner, State};
use super::proto::SessionMessage;
use super::reader::{read_frames, read_while};
use super::{deadline_instant, now_unix_ms, CallOptions, Request, Side, Ticket};
use crate::broker::Conn;
use crate::error::Error;
use crate::wire::fast;
use crate::stats::{self, SessionCounters, SessionStats};
use crate::transport::{RawDescriptor, ReadinessSet, ReadySignal, WakePair};
use crate::wire::proto::FrameKind;
use crate::wire::FrameView;

/// One multiplexed session over a connection. All methods take `&self` and may be called from
/// any thread; dropping the session closes the connection and ends every call and stream with
/// `Closed`.
#[derive(Debug)]
pub struct Session {
    pub(super) inner: Arc<Inner>,
    /// The reader, then the answerer (which ends when the reader has ended).
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
}


impl Session {
    /// The verified certificate identity of the peer when the session runs over TLS (the
    /// server's on the connecting side; the client's under mutual TLS on the accepting side);
    /// `None` over Unix sockets and TCP.
    pub fn tls_identity(&self) -> Option<crate::transport::TlsIdentity> {
        self.inner.conn.tls_identity()
    }

    /// Starts a session over `conn`, which it owns from now on (nothing else may read it).
    ///
    /// `serve_requests` false: the peer's requests are answered at once with the
    /// `NOT_FOUND` error ("no dispatcher"); true: they queue for [`next_request`](Self::next_request).
    pub fn new(conn: Conn, side: Side, serve_requests: bool) -> Result<Session, Error> {
        let signal = ReadySignal::new()?;
        let io = |e| Error::io("notification socket", e);
        let park = WakePair::new().map_err(io)?;
        let reader_set = ReadinessSet::new(&[conn.socket_fd(), park.descriptor()])
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
            park,
            answers: Mutex::new(Some(answers)),
            stats: SessionCounters::default(),
            spare_exchanges: Mutex::new(Vec::new()),
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

    /// Starts a call and returns at once; the response arrives through the [`Ticket`].
    ///
    /// Fails with `Closed` (the session ended), `Timeout` (the deadline already passed), or a
    /// send error.
    pub fn start_call(&self, payload_protocol: u32, payload: &[u8], opts: &CallOptions) -> Result<Ticket, Error> {
        let deadline = deadline_instant(opts.deadline_unix_ms);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(Error::Timeout("the call's deadline had already passed".into()));
        }
        self.send_call(payload_protocol, payload, opts, opts.deadline_unix_ms, deadline)
    }

    /// Registers and sends a call with `opts`' trace context and the deadline
    /// `deadline_unix_ms` (in place of `opts`' own), which is still ahead (`deadline` is the
    /// same as an instant).
    fn send_call(
        &self,
        payload_protocol: u32,
        payload: &[u8],
        opts: &CallOptions,
        deadline_unix_ms: u64,
        deadline: Option<Instant>,
    ) -> Result<Ticket, Error> {
        crate::wire::trace_context_fits(&opts.traceparent, &opts.tracestate).map_err(Error::invalid_argument)?;
        let inner = &self.inner;
        let id = inner.next_id.fetch_add(2, Ordering::Relaxed);
        let exchange = inner.new_exchange();
        {
            let mut st = inner.lock();
            if let Some(reason) = &st.closed {
                return Err(inner.ended_error(reason.clone()));
            }
            st.calls.insert(id, Arc::clone(&exchange));
        }
        let frame = FrameView {
            deadline_unix_ms,
            traceparent: &opts.traceparent,
            tracestate: &opts.tracestate,
            ..Inner::frame(FrameKind::Request, id, payload)
        };
        let sent = inner.send(&frame, fast::MessageHead::plain(payload_protocol, payload.len()).as_bytes());
        if let Err(e) = sent {
            inner.lock().calls.remove(&id);
            return Err(e);
        }
        stats::bump(&inner.stats.calls_started);
        Ok(Ticket { inner: Arc::clone(inner), exchange, id, deadline })
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
                self.send_call(payload_protocol, payload, opts, now_unix_ms() + ms, Some(deadline))?
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
        self.poll_request(timeout)?.ok_or_else(|| Error::Timeout("no request arrived".into()))
    }

    /// [`next_request`](Self::next_request), with `None` where it fails with `Timeout` because
    /// no request came.
    pub(super) fn poll_request(&self, timeout: Option<Duration>) -> Result<Option<Request>, Error> {
        // A zero timeout takes only what is queued, which needs no clock.
        let no_wait = timeout == Some(Duration::ZERO);
        let until = timeout.filter(|_| !no_wait).map(|t| Instant::now() + t);
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
                return Ok(Some(req));
            }
            if no_wait || until.is_some_and(|d| d <= Instant::now()) {
                return Ok(None);
            }
            // Read for ourselves if no one else does; otherwise wait for whoever reads.
            drop(st);
            let read = read_while(&self.inner, until, None, || !self.inner.lock().queue.is_empty());
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
                        return Ok(None);
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
    pub fn request_fd(&self) -> RawDescriptor {
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

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
        let threads = std::mem::take(self.threads.get_mut().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

