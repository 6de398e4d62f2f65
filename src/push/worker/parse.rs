//! What the server sends a worker, parsed: the registration ack, then the frames a receiving
//! thread turns into pushes (or cancels) in the worker's inbox, and the fuzzing hook over that
//! parse path.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Read;

use prost::Message;

use super::{Push, WorkerEvent};
use crate::control::{client_handshake, ClientHello};
use crate::error::Error;
use crate::idmap::{FewIds, IdMap};
use crate::wire::fast as fastpath;
use crate::push::proto::{Push as PushMessage, RegistrationAck};
use crate::push::{PUSH_PROTOCOL, PUSH_PROTOCOL_VERSION, REGISTRATION_REQUEST_ID};
use crate::stats::{self, PushWorkerCounters};
use crate::transport::{Stream, SwitchableReads};
use crate::wire::proto::{FrameKind, Negotiated};
use crate::wire::liminal;
use crate::wire::{FrameReader, FrameView, FrameWriter, WireError, HELLO_MAX_BODY, MAX_BODY};


/// The worker's framed reader, in its dialect.
#[derive(Debug)]
pub(super) enum Inbound {
    /// v1 frames from a librp push server.
    Librp(FrameReader<SwitchableReads>),
    /// Frames from a liminal server.
    Liminal(liminal::Reader<SwitchableReads>),
}

impl Inbound {
    /// Reads once from the socket into the buffer.
    pub(super) fn read_more(&mut self) -> Result<usize, WireError> {
        match self {
            Inbound::Librp(r) => r.read_more(),
            Inbound::Liminal(r) => r.read_more(),
        }
    }

    /// The socket under the reader.
    pub(super) fn reads(&mut self) -> &mut SwitchableReads {
        match self {
            Inbound::Librp(r) => r.get_mut(),
            Inbound::Liminal(r) => r.get_mut(),
        }
    }

    /// Moves every complete buffered frame into the inbox.
    pub(super) fn take_buffered(&mut self, st: &mut State, counters: &PushWorkerCounters) -> Result<(), Cow<'static, str>> {
        match self {
            Inbound::Librp(r) => take_buffered(r, st, counters),
            Inbound::Liminal(r) => super::liminal::take_buffered(r, st, counters),
        }
    }
}

#[derive(Debug)]
pub(super) struct State {
    /// The framed reader; `None` while a receiving thread has it.
    pub(super) reader: Option<Inbound>,
    /// Threads waiting on `changed`, so a receiver notifies only when someone listens.
    pub(super) waiting: usize,
    pub(super) jobs: VecDeque<Push>,
    /// Received and not yet answered; a reply must name one of these, once.
    pub(super) outstanding: FewIds,
    pub(super) closed: Option<Cow<'static, str>>,
    /// The connection ended because what the server sent did not fit in memory: calls then
    /// fail with `NoMemory` rather than `Closed`.
    pub(super) no_memory: bool,
    /// Pings a liminal server sent that still want their Pong.
    pub(super) pongs_owed: u32,
    /// The current connection's socket (`None` while reconnecting).
    pub(super) socket: Option<Stream>,
    /// The socket of a reconnect attempt under way, so `close` can cut it off.
    pub(super) dialing: Option<Stream>,
    /// Counts connections: the one in use (or the last one, while reconnecting).
    pub(super) generation: u64,
    /// The connection was lost and the worker is reconnecting.
    pub(super) down: bool,
    /// The id of the latest registration.
    pub(super) worker_id: u64,
    /// What the latest connection negotiated.
    pub(super) negotiated: Negotiated,
    /// The worker's own correlation ids (a reconnecting worker); `None`: the server's.
    pub(super) ids: Option<LocalIds>,
    /// Transitions waiting for the application's event handler.
    pub(super) events: VecDeque<WorkerEvent>,
}

/// A reconnecting worker's correlation ids: its own, counted from 1 and never reused, each
/// mapped to the server's id on the connection it came on. The maps hold the current
/// connection's unanswered pushes only; an id below `first_of_connection` belonged to a lost
/// connection.
#[derive(Debug)]
pub(super) struct LocalIds {
    next: u64,
    first_of_connection: u64,
    to_wire: IdMap<u64>,
    to_local: IdMap<u64>,
}

impl Default for LocalIds {
    fn default() -> Self {
        LocalIds { next: 1, first_of_connection: 1, to_wire: IdMap::default(), to_local: IdMap::default() }
    }
}

impl State {
    /// A fresh inbox over `reader`.
    pub(super) fn new(reader: Option<Inbound>) -> State {
        State {
            reader,
            waiting: 0,
            jobs: VecDeque::new(),
            outstanding: FewIds::default(),
            closed: None,
            no_memory: false,
            pongs_owed: 0,
            socket: None,
            dialing: None,
            generation: 0,
            down: false,
            worker_id: 0,
            negotiated: Negotiated::default(),
            ids: None,
            events: VecDeque::new(),
        }
    }

    /// Records that the application took the push with server id `wire_id`; returns the id
    /// it answers with.
    pub(super) fn received(&mut self, wire_id: u64) -> u64 {
        self.outstanding.insert(wire_id);
        let Some(ids) = &mut self.ids else { return wire_id };
        let local = ids.next;
        ids.next += 1;
        ids.to_wire.insert(local, wire_id);
        ids.to_local.insert(wire_id, local);
        local
    }

    /// The server id of unanswered push `id`, which is answered from now on. `NotFound` if it
    /// was not received or was answered; `Closed` if it came on a connection since lost.
    pub(super) fn answered(&mut self, id: u64) -> Result<u64, Error> {
        let wire_id = match &mut self.ids {
            None => id,
            Some(ids) => match ids.to_wire.remove(&id) {
                Some(w) => {
                    ids.to_local.remove(&w);
                    w
                }
                None if id != 0 && id < ids.first_of_connection => {
                    return Err(Error::Closed(
                        format!("push {id} came on a connection that was lost; nothing was sent").into(),
                    ))
                }
                None => return Err(not_outstanding(id)),
            },
        };
        if !self.outstanding.remove(wire_id) {
            return Err(not_outstanding(id));
        }
        Ok(wire_id)
    }

    /// True while push `id` (as the application knows it) is unanswered.
    pub(super) fn is_outstanding(&self, id: u64) -> bool {
        match &self.ids {
            None => self.outstanding.contains(id),
            Some(ids) => ids.to_wire.get(&id).is_some_and(|w| self.outstanding.contains(*w)),
        }
    }

    /// The server cancelled push `wire_id`.
    fn cancelled(&mut self, wire_id: u64) {
        self.jobs.retain(|j| j.correlation_id != wire_id);
        self.outstanding.remove(wire_id);
        if let Some(ids) = &mut self.ids {
            if let Some(local) = ids.to_local.remove(&wire_id) {
                ids.to_wire.remove(&local);
            }
        }
    }

    /// Drops what belonged to a lost connection: its reader, queued and unanswered pushes,
    /// owed Pongs. A later reply to one of its pushes fails with `Closed`.
    pub(super) fn forget_connection(&mut self) {
        self.reader = None;
        self.jobs.clear();
        self.outstanding.clear();
        self.pongs_owed = 0;
        self.no_memory = false;
        if let Some(ids) = &mut self.ids {
            ids.to_wire.clear();
            ids.to_local.clear();
            ids.first_of_connection = ids.next;
        }
    }

    /// The error calls return once the connection has ended.
    pub(super) fn ended(&self) -> Option<Error> {
        let reason = self.closed.clone()?;
        Some(if self.no_memory { Error::NoMemory(reason) } else { Error::Closed(reason) })
    }
}

fn not_outstanding(id: u64) -> Error {
    Error::NotFound(format!("push {id} was not received or was already answered").into())
}

/// Checks and decodes the server's answer to the registration.
pub(super) fn registration_ack(frame: &FrameView<'_>) -> Result<RegistrationAck, Error> {
    if frame.payload_protocol != PUSH_PROTOCOL
        || frame.frame_kind() != Some(FrameKind::Response)
        || frame.request_id != REGISTRATION_REQUEST_ID
    {
        return Err(WireError::Protocol("expected the registration ack".into()).into());
    }
    Ok(RegistrationAck::decode(frame.payload).map_err(|e| WireError::from_prost("RegistrationAck", e))?)
}

/// Fuzzing and corpus-replay hook (see [`crate::push::fuzzing`]): runs `bytes`, as if a server sent
/// them, through the worker's real parse path: the HelloReply ([`client_handshake`]), the
/// registration ack, then the frames a receiving thread turns into pushes. Returns the pushes
/// received, in order (empty when the handshake fails).
pub(crate) fn fuzz_server_stream(bytes: &[u8]) -> Vec<Push> {
    let mut reader = FrameReader::with_max_body(bytes, HELLO_MAX_BODY);
    let hello = ClientHello {
        service_name: crate::push::DEFAULT_SERVICE.to_owned(),
        wanted_version: PUSH_PROTOCOL_VERSION.to_owned(),
        ..ClientHello::default()
    };
    if client_handshake(&mut reader, &mut FrameWriter::new(std::io::sink()), &hello).is_err() {
        return Vec::new();
    }
    match reader.read_frame().map_err(Error::from).and_then(|f| registration_ack(&f)) {
        Ok(ack) if ack.accepted => reader.set_max_body(MAX_BODY),
        _ => return Vec::new(),
    }
    let counters = PushWorkerCounters::default();
    drain_for_fuzzing(|st| take_buffered(&mut reader, st, &counters).is_ok() && reader.read_more().is_ok())
}

/// The fuzz hooks' receive loop: runs `step` (take what is buffered, then read more; false
/// once either fails) until it says stop, collecting every push it put in the inbox.
pub(super) fn drain_for_fuzzing(mut step: impl FnMut(&mut State) -> bool) -> Vec<Push> {
    let mut st = State::new(None);
    let mut received = Vec::new();
    loop {
        let go_on = step(&mut st);
        received.extend(st.jobs.drain(..));
        if !go_on {
            return received;
        }
    }
}

/// Turns what one read did into the connection's fate, moving every complete frame it
/// brought into the inbox.
pub(super) fn outcome_into(
    read: Result<usize, WireError>,
    reader: &mut Inbound,
    st: &mut State,
    counters: &PushWorkerCounters,
) -> Result<(), Cow<'static, str>> {
    match read {
        Ok(n) => stats::add(&counters.bytes_in, n),
        Err(WireError::Timeout) => {}
        Err(WireError::Closed) => return Err("the server closed the connection".into()),
        Err(e @ WireError::NoMemory { .. }) => {
            st.no_memory = true;
            return Err(format!("the connection ended: {e}").into());
        }
        Err(e) => return Err(format!("connection failed: {e}").into()),
    }
    reader.take_buffered(st, counters)
}

/// Moves every complete buffered frame into the inbox; a frame that is not a push or a cancel
/// on the push protocol ends the connection.
pub(super) fn take_buffered<R: Read>(
    reader: &mut FrameReader<R>,
    st: &mut State,
    counters: &PushWorkerCounters,
) -> Result<(), Cow<'static, str>> {
    loop {
        let frame = match reader.next_buffered() {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("connection failed: {e}").into()),
        };
        if let Err(e) = frame.check_plain().and_then(|()| frame.check_trace_context()) {
            return Err(e.to_string().into());
        }
        if frame.payload_protocol != PUSH_PROTOCOL {
            return Err(format!("protocol violation: frame on payload protocol 0x{:04X}", frame.payload_protocol).into());
        }
        match frame.frame_kind() {
            Some(FrameKind::Event) => {
                let decoded = match fastpath::plain_message(frame.payload) {
                    Some((payload_protocol, payload)) => {
                        WireError::try_copy(payload).map(|payload| PushMessage { payload_protocol, payload })
                    }
                    None => fastpath::decode_large(frame.payload, "Push", 2, &[1], false, |m: &mut PushMessage, p| m.payload = p),
                };
                let push = match decoded {
                    Ok(push) => push,
                    Err(e @ WireError::NoMemory { .. }) => {
                        st.no_memory = true;
                        return Err(format!("push {} not received: {e}", frame.request_id).into());
                    }
                    Err(e) => return Err(format!("protocol violation: {e}").into()),
                };
                stats::bump(&counters.pushes_received);
                st.jobs.push_back(Push {
                    correlation_id: frame.request_id,
                    payload_protocol: push.payload_protocol,
                    payload: push.payload,
                    deadline_unix_ms: frame.deadline_unix_ms,
                    traceparent: frame.traceparent.to_owned(),
                    tracestate: frame.tracestate.to_owned(),
                });
            }
            Some(FrameKind::Cancel) => {
                // The server gave up on a push (deadline passed): drop it if not yet received.
                stats::bump(&counters.cancels_received);
                st.cancelled(frame.request_id);
            }
            _ => return Err(format!("protocol violation: unexpected frame kind {}", frame.kind).into()),
        }
    }
}
