//! The state one session's threads share ([`Inner`]): the calls waiting for a response, the
//! requests being served or queued, how frames are sent, librp's own answers, and ending.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use prost::Message;

use super::exchange::{Exchange, ExchangeState};
use super::proto::{SessionError, SessionMessage};
use super::{Request, Side};
use crate::broker::Conn;
use crate::error::Error;
use crate::idmap::IdMap;
use crate::wire::fast;
use crate::stats::{self, SessionCounters};
use crate::transport::{ReadinessSet, ReadySignal, WakePair};
use crate::wire::proto::FrameKind;
use crate::wire::registry::SESSION;
use crate::wire::FrameView;

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) conn: Conn,
    pub(super) side: Side,
    pub(super) next_id: AtomicU64,
    /// False: incoming requests are answered at once with `NOT_FOUND` (no dispatcher).
    pub(super) serving: AtomicBool,
    pub(super) state: Mutex<State>,
    /// Signalled when a request is queued or the session closes.
    pub(super) requests_changed: Condvar,
    /// Raised while a request waits to be dispatched or the session has ended.
    pub(super) signal: ReadySignal,
    /// Set once [`Session::request_fd`](super::Session::request_fd) was asked for: only then is the signal kept.
    pub(super) signal_used: AtomicBool,
    /// Set when what the peer sent did not fit in memory: the session then ends with
    /// `NoMemory` rather than `Closed`.
    pub(super) no_memory: AtomicBool,
    /// The reader role: held by the thread reading and routing frames (see [`read_while`](super::reader::read_while)).
    pub(super) reading: Mutex<()>,
    /// The reader thread's epoll set: the park notification, and the connection while it is
    /// not parked.
    pub(super) reader_set: ReadinessSet,
    /// True while the connection is out of the reader thread's set: a thread read for itself
    /// and left it out for the next one (consecutive calls then cost no `epoll_ctl`).
    pub(super) parked: AtomicBool,
    /// Tells the reader thread the connection was parked.
    pub(super) park: WakePair,
    /// Where librp's own answers go (the answerer thread); taken when the session ends.
    pub(super) answers: Mutex<Option<Sender<AutoAnswer>>>,
    /// Counters for [`Session::stats`](super::Session::stats).
    pub(super) stats: SessionCounters,
    /// Finished exchanges kept for the next calls and requests (at most [`SPARE_EXCHANGES`]).
    pub(super) spare_exchanges: Mutex<Vec<Arc<Exchange>>>,
}

/// Most finished exchanges a session keeps for reuse.
const SPARE_EXCHANGES: usize = 64;

#[derive(Debug, Default)]
pub(super) struct State {
    /// Why the session ended (set once).
    pub(super) closed: Option<Cow<'static, str>>,
    /// This side's calls still waiting for their response, by request id.
    pub(super) calls: IdMap<Arc<Exchange>>,
    /// The peer's requests received and not yet answered, by request id.
    pub(super) serving: IdMap<Arc<Exchange>>,
    /// Requests waiting for [`Session::next_request`](super::Session::next_request).
    pub(super) queue: VecDeque<Request>,
    /// Threads waiting in `next_request` on `requests_changed`.
    pub(super) request_waiters: usize,
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An exchange for a new call or served request: a spare one when there is one, so a call
    /// allocates none.
    pub(super) fn new_exchange(&self) -> Arc<Exchange> {
        self.spare_exchanges.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default()
    }

    /// Keeps a finished exchange for a later call or request, as new, if no one else holds it.
    pub(super) fn recycle_exchange(&self, exchange: &mut Arc<Exchange>) {
        let Some(ex) = Arc::get_mut(exchange) else { return };
        let st = ex.state.get_mut().unwrap_or_else(|p| p.into_inner());
        let mut chunks = std::mem::take(&mut st.chunks);
        if chunks.capacity() > SPARE_EXCHANGES {
            return;
        }
        chunks.clear();
        *st = ExchangeState { chunks, ..ExchangeState::default() };
        let mut spare = self.spare_exchanges.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < SPARE_EXCHANGES {
            spare.push(Arc::clone(exchange));
        }
    }

    /// Keeps the request descriptor's signal raised exactly while a request waits or the
    /// session has ended (under the state lock, so it matches the state).
    pub(super) fn update_signal(&self, st: &mut State) {
        if !self.signal_used.load(Ordering::Acquire) {
            return; // no one polls the descriptor: spare the system calls
        }
        self.signal.set(!st.queue.is_empty() || st.closed.is_some());
    }

    pub(super) fn closed_error(&self) -> Error {
        let reason = self.lock().closed.clone().unwrap_or_else(|| "the session ended".into());
        self.ended_error(reason)
    }

    /// The error a session that ended for `reason` gives: `NoMemory` when what the peer sent
    /// did not fit in memory, `Closed` otherwise.
    pub(super) fn ended_error(&self, reason: Cow<'static, str>) -> Error {
        if self.no_memory.load(Ordering::Relaxed) {
            Error::NoMemory(reason)
        } else {
            Error::Closed(reason)
        }
    }

    /// A frame of the session protocol: `kind` on request id `request_id`, carrying `payload`.
    pub(super) fn frame(kind: FrameKind, request_id: u64, payload: &[u8]) -> FrameView<'_> {
        FrameView { kind: kind as i32, payload_protocol: SESSION, payload, request_id, ..FrameView::default() }
    }

    /// Sends `frame`, whose payload field holds `head` then the frame's payload: a message
    /// ending with its payload bytes, encoded in the same pass as the frame (`head` is empty
    /// for a message encoded whole).
    pub(super) fn send(&self, frame: &FrameView<'_>, head: &[u8]) -> Result<(), Error> {
        self.conn.send_with_head(frame, head).map_err(|e| match e {
            Error::Closed(_) => self.closed_error(),
            e => e,
        })
    }

    /// Sends a frame whose message has no deadline or trace context of its own.
    pub(super) fn send_simple(&self, kind: FrameKind, request_id: u64, msg: &SessionMessage) -> Result<(), Error> {
        self.send(&Self::frame(kind, request_id, &msg.encode_to_vec()), &[])
    }

    /// Sends a frame whose message is only payload bytes (a response or a chunk).
    pub(super) fn send_payload(&self, kind: FrameKind, request_id: u64, payload: &[u8]) -> Result<(), Error> {
        let head = fast::MessageHead::plain(0, payload.len());
        self.send(&Self::frame(kind, request_id, payload), head.as_bytes())
    }

    /// Sends one stream chunk (an EVENT) on request id `id`.
    pub(super) fn send_chunk(&self, id: u64, chunk: &[u8]) -> Result<(), Error> {
        self.send_payload(FrameKind::Event, id, chunk)
    }

    /// Marks `exchange` half-closed and sends the end of stream on request id `id`.
    pub(super) fn close_write(&self, exchange: &Exchange, id: u64) -> Result<(), Error> {
        exchange.lock().write_closed = true;
        let msg = SessionMessage { end_of_stream: true, ..SessionMessage::default() };
        self.send_simple(FrameKind::Event, id, &msg)
    }

    /// Sends an error RESPONSE for one of the peer's requests.
    pub(super) fn send_error(&self, request_id: u64, code: i32, message: &str) -> Result<(), Error> {
        let msg = SessionMessage {
            error: Some(SessionError { code, message: message.to_owned() }),
            ..SessionMessage::default()
        };
        self.send_simple(FrameKind::Response, request_id, &msg)
    }

    /// Hands one of librp's own answers to the answerer thread (dropped once the session ended).
    pub(super) fn auto_answer(&self, id: u64, frame: AutoFrame, message: &'static str) {
        if matches!(frame, AutoFrame::Error(_)) {
            stats::bump(&self.stats.requests_auto_answered);
        }
        if let Some(tx) = self.answers.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send((id, frame, message));
        }
    }

    /// Ends the session once: every call, stream and request wait ends with `Closed`.
    pub(super) fn end(&self, reason: Cow<'static, str>) {
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
        self.park.notify();
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

/// An error answer the reader leaves to the answerer thread: request id, code, message.
pub(super) type AutoAnswer = (u64, AutoFrame, &'static str);

/// What librp itself writes for the reader thread (see [`AutoAnswer`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum AutoFrame {
    /// A RESPONSE carrying this error code.
    Error(i32),
    /// A CANCEL of one of this side's calls.
    Cancel,
}

