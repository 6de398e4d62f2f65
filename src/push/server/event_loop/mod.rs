//! The event loop: one thread that accepts connections, runs handshakes, reads replies,
//! writes what callers left queued and enforces deadlines for every worker. Its work is split
//! by what it handles: [`connections`] (accepting, admission, closing), [`handshake`] (Hello
//! and registration), [`conn_io`] (reading and writing a connection).

mod connections;
mod handshake;
mod conn_io;

use std::cmp::Reverse;
use std::io;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::link::Link;
use super::parse::{push_frame, Phase};
use super::read_path::PARKED_IDLE;
use super::shared::{Command, InFlight, Shared};
use super::types::ServerOptions;
use crate::error::Error;
use crate::push::now_unix_ms;
use crate::push::proto::Registration;
use crate::stats;
use crate::transport::{AcceptPolicy, Acceptor, Listener, PeerCredentials};
use crate::wire::proto::FrameKind;


const LISTENER: Token = Token(0);
pub(super) const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;
/// Most server events kept waiting for [`PushServer::next_event`](super::PushServer::next_event); beyond that new ones are
/// dropped (and counted), so an application that stops reading cannot grow memory.
pub(super) const MAX_QUEUED_EVENTS: usize = 65_536;

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

pub(super) struct EventLoop {
    opts: ServerOptions,
    /// Accepting, the peer-uid policy and the connection limits.
    acceptor: Acceptor<Token>,
    poll: Poll,
    shared: Arc<Shared>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    next_connection_id: u64,
    /// Workers waiting for the application's decision, by the id they will get.
    pending_decisions: HashMap<u64, Token>,
    /// Handshake and partial-frame deadlines of connections (stale entries are skipped).
    conn_deadlines: BinaryHeap<Reverse<(Instant, Token)>>,
    /// When to look at the parked links next (`None`: at the next wake-up).
    park_check: Option<Instant>,
}


impl EventLoop {
    pub(super) fn new(opts: ServerOptions, listener: Listener, poll: Poll, shared: Arc<Shared>) -> Result<Self, Error> {
        let policy = AcceptPolicy {
            allow_other_uids: opts.allow_other_uids,
            require_credentials: false,
            max_connections: opts.max_connections,
            max_connections_per_uid: opts.max_connections_per_uid,
        };
        let acceptor = Acceptor::new(listener, policy, poll.registry(), LISTENER)?;
        Ok(EventLoop {
            opts,
            acceptor,
            poll,
            shared,
            conns: HashMap::new(),
            next_token: FIRST_CONNECTION,
            next_connection_id: 1,
            pending_decisions: HashMap::new(),
            conn_deadlines: BinaryHeap::new(),
            park_check: None,
        })
    }

    pub(super) fn run(&mut self) {
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
            if self.acceptor.retry_at().is_some_and(|at| at <= Instant::now()) {
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
        for at in conn_deadline.into_iter().chain(self.acceptor.retry_at()).chain(self.park_check) {
            let d = at.saturating_duration_since(Instant::now());
            next = Some(next.map_or(d, |n| n.min(d)));
        }
        next
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
                entry.link.lock_io().in_flight.remove(correlation_id);
                entry
            };
            entry.link.in_flight_count.fetch_sub(1, Ordering::Relaxed);
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
