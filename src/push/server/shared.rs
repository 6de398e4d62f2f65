//! The state the event loop shares with the threads that call the API, and what those threads
//! do with it themselves: pick a worker, write a push to its socket, record it in flight and
//! complete it when its reply comes.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use mio::{Registry, Token, Waker};

use super::link::{Link, RegisteredWorker, Sent};
use super::ticket::Ticket;
use super::types::{PushOutcome, PushSpec, RegistrationDecision, ServerEvent, Target, WorkerInfo};
use crate::error::Error;
use crate::event_queue::EventQueue;
use crate::fastpath::{self, IdMap};
use crate::push::proto::{push_reply, PushReply};
use crate::push::{now_unix_ms, PUSH_PROTOCOL};
use crate::stats::{self, PushServerCounters};
use crate::wire::proto::FrameKind;
use crate::wire::FrameView;


/// State shared by the event loop and the threads that call the API.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) waker: Waker,
    /// The event loop's epoll set; callers take a worker's socket out of it while they read.
    pub(super) registry: Registry,
    pub(super) max_send_buffer: usize,
    pub(super) commands: Mutex<VecDeque<Command>>,
    /// Registered workers as the API reports them.
    pub(super) workers: Mutex<BTreeMap<u64, WorkerInfo>>,
    /// Registered workers' connections, for picking one and writing to it.
    pub(super) links: RwLock<IdMap<Arc<Link>>>,
    /// Pushes sent and not yet answered. Lock order: a link's `reader`, `in_flight`, then a
    /// link's `io`.
    pub(super) in_flight: Mutex<IdMap<InFlight>>,
    /// Links out of the epoll set between `push_wait` calls ([`LinkIo::parked`](super::link::LinkIo::parked)); the event loop
    /// puts each back once idle. Changed only by a holder of the link's reader.
    pub(super) parked: Mutex<HashSet<Token>>,
    /// (deadline in Unix ms, correlation id) of pushes with a deadline.
    pub(super) deadlines: Mutex<BinaryHeap<Reverse<(u64, u64)>>>,
    /// When the event loop will next wake by itself (Unix ms; u64::MAX = never).
    pub(super) loop_wakes_at: AtomicU64,
    pub(super) round_robin: AtomicU64,
    pub(super) events: EventQueue<ServerEvent>,
    pub(super) events_enabled: bool,
    pub(super) next_correlation: AtomicU64,
    pub(super) stopping: AtomicBool,
    /// Counters for [`PushServer::stats`](super::PushServer::stats), shared with every link.
    pub(super) stats: Arc<PushServerCounters>,
}

#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) ticket: Ticket,
    pub(super) link: Arc<Link>,
}

#[derive(Debug)]
pub(super) enum Command {
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

impl Shared {
    pub(super) fn emit(&self, event: ServerEvent) {
        if self.events_enabled {
            self.events.push(event);
        }
    }

    pub(super) fn command(&self, c: Command) {
        self.commands.lock().unwrap_or_else(|p| p.into_inner()).push_back(c);
        let _ = self.waker.wake();
    }

    pub(super) fn lock_in_flight(&self) -> MutexGuard<'_, IdMap<InFlight>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn update_in_flight(&self, worker_id: u64, delta: isize) {
        if let Some(w) = self.workers.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&worker_id) {
            w.in_flight = w.in_flight.saturating_add_signed(delta);
        }
    }

    /// The named worker, or the least busy registered worker matching the target, taking turns
    /// among equals.
    pub(super) fn pick(&self, target: &Target) -> Option<Arc<Link>> {
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
    pub(super) fn start_push(&self, target: &Target, spec: &PushSpec, deadline_unix_ms: u64, ticket: &Ticket) -> Option<Arc<Link>> {
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
    pub(super) fn enforce_deadline(&self, deadline_unix_ms: u64, correlation_id: u64) {
        if deadline_unix_ms == 0 {
            return;
        }
        self.deadlines.lock().unwrap_or_else(|p| p.into_inner()).push(Reverse((deadline_unix_ms, correlation_id)));
        if deadline_unix_ms < self.loop_wakes_at.load(Ordering::Acquire) {
            let _ = self.waker.wake();
        }
    }

    /// A worker's reply arrived (read by the event loop or by a waiting caller).
    pub(super) fn complete_reply(&self, link: &Link, correlation_id: u64, reply: PushReply) {
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
}
