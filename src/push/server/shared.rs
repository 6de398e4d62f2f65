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
use super::types::{PushResult, PushSpec, RegistrationDecision, ServerEvent, Target, WorkerInfo};
use crate::error::Error;
use crate::event_queue::EventQueue;
use crate::{idmap::IdMap, wire::fast as fastpath};
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
    /// Tickets of finished `push_wait` calls, kept for the next ones (at most [`SPARE_TICKETS`]).
    pub(super) spare_tickets: Mutex<Vec<Ticket>>,
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

/// Most finished tickets a server keeps for reuse.
const SPARE_TICKETS: usize = 64;

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

    /// A ticket for a new push: a spare one when there is one, so a synchronous push allocates
    /// none.
    pub(super) fn new_ticket(&self) -> Ticket {
        let correlation_id = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let spare = self.spare_tickets.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match spare {
            Some(t) => t.renew(correlation_id),
            None => Ticket::new(correlation_id),
        }
    }

    /// Keeps a finished ticket for a later push, unless someone else still holds it.
    pub(super) fn recycle_ticket(&self, ticket: Ticket) {
        if let Some(t) = ticket.into_spare() {
            let mut spare = self.spare_tickets.lock().unwrap_or_else(|p| p.into_inner());
            if spare.len() < SPARE_TICKETS {
                spare.push(t);
            }
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
        // The least busy match, and all the matches as busy as it once there are several
        // (the common single match allocates nothing).
        let mut first: Option<&Arc<Link>> = None;
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
                    first = Some(link);
                    least.clear();
                }
                std::cmp::Ordering::Equal => {
                    if least.is_empty() {
                        least.extend(first);
                    }
                    least.push(link);
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        let first = first?;
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
        if least.is_empty() {
            return Some(Arc::clone(first));
        }
        least.sort_unstable_by_key(|l| l.token.0);
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
        // A deadline the spec did not set was just derived from the clock by `push_wait`.
        let own_deadline = deadline_unix_ms == spec.deadline_unix_ms;
        let correlation_id = ticket.correlation_id();
        // The push message is written inside the frame, in the same pass.
        let head = fastpath::MessageHead::plain(spec.payload_protocol, spec.payload.len());
        let frame = FrameView {
            kind: FrameKind::Event as i32,
            payload_protocol: PUSH_PROTOCOL,
            payload: &spec.payload,
            request_id: correlation_id,
            deadline_unix_ms,
            traceparent: &spec.traceparent,
            tracestate: &spec.tracestate,
            ..FrameView::default()
        };
        // Checked, recorded and written under one hold of the link: recorded before the bytes
        // leave, so a reply or a disconnect always finds it.
        let mut in_flight = self.lock_in_flight();
        let mut io = link.lock_io();
        let refused = if io.out.len() > self.max_send_buffer {
            Some(Error::Again(format!("worker {} is not keeping up (send buffer full)", link.worker_id()).into()))
        } else if own_deadline && deadline_unix_ms != 0 && deadline_unix_ms <= now_unix_ms() {
            Some(Error::Timeout("the push's deadline has already passed".into()))
        } else if let Err(e) = frame.check_fits_with(head.as_bytes()) {
            Some(e.into())
        } else if io.closed {
            Some(Error::Closed(format!("worker {} disconnected", link.worker_id()).into()))
        } else {
            None
        };
        if let Some(e) = refused {
            drop(io);
            drop(in_flight);
            stats::bump(&self.stats.pushes_unsent);
            ticket.complete(Err(e));
            return None;
        }
        io.in_flight.insert(correlation_id);
        in_flight.insert(correlation_id, InFlight { ticket: ticket.clone(), link: Arc::clone(&link) });
        drop(in_flight);
        link.in_flight_count.fetch_add(1, Ordering::Relaxed);
        stats::bump(&self.stats.pushes_sent);
        let sent = link.send_frame(&mut io, &frame, head.as_bytes());
        drop(io);
        match sent {
            Sent::All => {}
            Sent::Queued => self.command(Command::WantWrite(link.token)),
            Sent::Closed => self.command(Command::Close(link.token, "send failed".into())),
        }
        Some(link)
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
            if !io.in_flight.remove(correlation_id) {
                // Late (its deadline passed) or never sent: nothing waits for it.
                return;
            }
            drop(io);
            in_flight.remove(&correlation_id)
        };
        link.in_flight_count.fetch_sub(1, Ordering::Relaxed);
        if let Some(f) = entry {
            let outcome = match reply.result {
                Some(push_reply::Result::Payload(p)) => PushResult::Reply(p),
                Some(push_reply::Result::Failure(f)) => PushResult::WorkerFailure { code: f.code, message: f.message },
                None => PushResult::Reply(Vec::new()),
            };
            match &outcome {
                PushResult::Reply(_) => stats::bump(&self.stats.pushes_answered),
                PushResult::WorkerFailure { .. } => stats::bump(&self.stats.pushes_failed),
            }
            f.ticket.complete(Ok(outcome));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mio::{Events, Poll};

    use super::super::link::testing::link;
    use super::*;
    use crate::push::proto::PushFailure;
    use crate::wire::{FrameReader, MAX_BODY};
    use crate::ErrorKind;

    const WAKER: Token = Token(1);

    /// Shared state as `PushServer::bind` makes it, with the poller whose waker it holds.
    fn shared() -> (Shared, Poll) {
        let poll = Poll::new().unwrap();
        let shared = Shared {
            waker: Waker::new(poll.registry(), WAKER).unwrap(),
            registry: poll.registry().try_clone().unwrap(),
            max_send_buffer: 1 << 20,
            commands: Mutex::new(VecDeque::new()),
            workers: Mutex::new(BTreeMap::new()),
            links: RwLock::new(IdMap::default()),
            in_flight: Mutex::new(IdMap::default()),
            parked: Mutex::new(HashSet::new()),
            deadlines: Mutex::new(BinaryHeap::new()),
            loop_wakes_at: AtomicU64::new(u64::MAX),
            round_robin: AtomicU64::new(0),
            events: EventQueue::new(16, false).unwrap(),
            events_enabled: false,
            next_correlation: AtomicU64::new(1),
            spare_tickets: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            stats: Arc::default(),
        };
        (shared, poll)
    }

    fn add(shared: &Shared, token: usize, id: u64, queue: &str, protocols: &[u32]) -> crate::transport::Stream {
        let (l, peer) = link(token, Some((id, queue, protocols)));
        shared.links.write().unwrap().insert(id, l);
        peer
    }

    fn picked(shared: &Shared, target: &Target) -> Option<u64> {
        shared.pick(target).map(|l| l.worker_id())
    }

    #[test]
    fn a_push_goes_to_the_least_busy_matching_worker_taking_turns_among_equals() {
        let (shared, _poll) = shared();
        let _peers = [
            add(&shared, 2, 10, "a", &[0x7001]),
            add(&shared, 3, 11, "a", &[0x7002]),
            add(&shared, 4, 12, "b", &[0x7001, 0x7002]),
        ];
        let queue_a = Target::TaskQueue("a".into());
        let turns: Vec<_> = (0..4).map(|_| picked(&shared, &queue_a).unwrap()).collect();
        assert_eq!(turns.iter().filter(|&&id| id == 10).count(), 2, "{turns:?}");
        assert_eq!(turns.iter().filter(|&&id| id == 11).count(), 2, "{turns:?}");
        shared.links.read().unwrap()[&10].in_flight_count.store(2, Ordering::Relaxed);
        for _ in 0..3 {
            assert_eq!(picked(&shared, &queue_a), Some(11), "the least busy wins");
        }
        for _ in 0..3 {
            assert_eq!(picked(&shared, &Target::Protocol(0x7001)), Some(12));
        }
        assert_eq!(picked(&shared, &Target::Worker(10)), Some(10), "by id, however busy");
        assert_eq!(picked(&shared, &Target::Worker(99)), None);
        assert_eq!(picked(&shared, &Target::TaskQueue("c".into())), None);
        assert_eq!(picked(&shared, &Target::Protocol(0x7003)), None);
    }

    #[test]
    fn an_unregistered_connection_is_never_picked() {
        let (shared, _poll) = shared();
        let (l, _peer) = link(2, None);
        shared.links.write().unwrap().insert(5, l);
        assert_eq!(picked(&shared, &Target::TaskQueue(String::new())), None);
    }

    #[test]
    fn a_push_is_written_recorded_and_its_reply_completes_it_once() {
        let (shared, _poll) = shared();
        let peer = add(&shared, 2, 10, "a", &[0x7001]);
        let ticket = Ticket::new(shared.next_correlation.fetch_add(1, Ordering::Relaxed));
        let spec = PushSpec { payload_protocol: 0x7001, payload: b"job".to_vec(), ..PushSpec::default() };
        let link = shared.start_push(&Target::TaskQueue("a".into()), &spec, 0, &ticket).expect("sent");
        assert_eq!(link.worker_id(), 10);
        assert!(!ticket.is_done());
        assert_eq!(shared.lock_in_flight().len(), 1);
        assert_eq!(link.in_flight_count.load(Ordering::Relaxed), 1);
        let mut reader = FrameReader::with_max_body(peer, MAX_BODY);
        let push = reader.read_frame().unwrap();
        assert_eq!((push.frame_kind(), push.request_id), (Some(FrameKind::Event), ticket.correlation_id()));
        let answer = PushReply { result: Some(push_reply::Result::Payload(b"done".to_vec())) };
        shared.complete_reply(&link, ticket.correlation_id(), answer);
        // A second reply to the same push, or one to a push never sent, changes nothing.
        let again = PushReply { result: Some(push_reply::Result::Failure(PushFailure { code: 1, message: "late".into() })) };
        shared.complete_reply(&link, ticket.correlation_id(), again.clone());
        shared.complete_reply(&link, 999, again);
        assert_eq!(ticket.wait(Some(Duration::ZERO)).unwrap(), PushResult::Reply(b"done".to_vec()));
        assert_eq!(shared.lock_in_flight().len(), 0);
        assert_eq!(link.in_flight_count.load(Ordering::Relaxed), 0);
        let s = shared.stats.snapshot();
        assert_eq!((s.pushes_sent, s.pushes_answered, s.pushes_failed), (1, 1, 0));
    }

    #[test]
    fn a_push_that_cannot_go_fails_through_its_ticket() {
        let (shared, _poll) = shared();
        let _peer = add(&shared, 2, 10, "a", &[0x7001]);
        let spec = PushSpec { payload_protocol: 0x7001, ..PushSpec::default() };
        let nobody = Ticket::new(1);
        assert!(shared.start_push(&Target::TaskQueue("b".into()), &spec, 0, &nobody).is_none());
        assert_eq!(nobody.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::NotFound);
        let past = PushSpec { deadline_unix_ms: 1, ..spec.clone() };
        let late = Ticket::new(2);
        assert!(shared.start_push(&Target::Worker(10), &past, 1, &late).is_none());
        assert_eq!(late.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::Timeout);
        shared.links.read().unwrap()[&10].lock_io().closed = true;
        let gone = Ticket::new(3);
        assert!(shared.start_push(&Target::Worker(10), &spec, 0, &gone).is_none());
        assert_eq!(gone.wait(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(shared.lock_in_flight().len(), 0);
        assert_eq!(shared.stats.snapshot().pushes_unsent, 3);
    }

    fn woken(poll: &mut Poll) -> bool {
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        events.iter().any(|e| e.token() == WAKER)
    }

    #[test]
    fn deadlines_come_due_earliest_first_and_only_an_earlier_one_wakes_the_loop() {
        let (shared, mut poll) = shared();
        shared.enforce_deadline(0, 1);
        assert!(shared.deadlines.lock().unwrap().is_empty(), "no deadline, nothing to keep");
        shared.loop_wakes_at.store(150, Ordering::Release);
        shared.enforce_deadline(300, 2);
        assert!(!woken(&mut poll), "the loop wakes before 300 anyway");
        shared.enforce_deadline(100, 3);
        assert!(woken(&mut poll), "100 is before the loop would wake");
        shared.enforce_deadline(200, 4);
        shared.enforce_deadline(100, 5);
        let mut order = Vec::new();
        while let Some(Reverse(due)) = shared.deadlines.lock().unwrap().pop() {
            order.push(due);
        }
        assert_eq!(order, [(100, 3), (100, 5), (200, 4), (300, 2)]);
    }
}
