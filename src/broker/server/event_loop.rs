//! The broker's event loop: one thread, one poller, every connection. It takes connections
//! through the [`Acceptor`] (peer policy, limits), reads each one's first frame before its
//! deadline, applies the per-uid Hello rate limit, answers, and hands negotiated connections
//! with a token to the handoff thread.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::handoff::HandoffTask;
use super::hello::{first_frame, FirstFrame, ReplyTo};
use super::services::choose_service;
use super::{admin, BrokerEvent, BrokerServerOptions, BrokerService, Shared, MAX_CONCURRENT_HANDOFFS};
use crate::control::{check_hello_fields, negotiated, Refusal};
use crate::error::Error;
use crate::handoff;
use crate::log::Peer;
use crate::stats;
use crate::transport::{self, AcceptPolicy, Acceptor, Listener, PeerCredentials, RawDescriptor, Stream};
use crate::wire::proto::{hello_reply, AdminRequest, ErrorCode, Hello};
use crate::wire::{FrameReader, WireError, CAP_HANDLE_PASSING, HELLO_MAX_BODY};

const LISTENER: Token = Token(0);
pub(super) const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

struct Connection {
    reader: FrameReader<Stream>,
    fd: RawDescriptor,
    out: Vec<u8>,
    out_pos: usize,
    closing: bool,
    peer: Option<PeerCredentials>,
    deadline: Instant,
}

struct RateWindow {
    started: Instant,
    count: u32,
}

pub(super) struct EventLoop {
    opts: BrokerServerOptions,
    acceptor: Acceptor<Token>,
    poll: Poll,
    shared: Arc<Shared>,
    conns: HashMap<Token, Connection>,
    next_token: usize,
    next_connection_id: u64,
    rate: HashMap<u32, RateWindow>,
}

impl EventLoop {
    pub(super) fn new(opts: BrokerServerOptions, listener: Listener, poll: Poll, shared: Arc<Shared>) -> Result<Self, Error> {
        if !matches!(listener, Listener::Unix(..)) {
            return Err(Error::invalid_argument("a broker serves Unix sockets only"));
        }
        let policy = AcceptPolicy {
            allow_other_uids: opts.allow_other_uids,
            require_credentials: true,
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
            rate: HashMap::new(),
        })
    }

    pub(super) fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        while !self.shared.stop.load(Ordering::Acquire) {
            let next_deadline = self.conns.values().map(|c| c.deadline).min();
            let wake_at = match (next_deadline, self.acceptor.retry_at()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake_at.map(|d| d.saturating_duration_since(Instant::now()));
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
            let now = Instant::now();
            if self.acceptor.retry_at().is_some_and(|at| at <= now) {
                self.accept_all();
            }
            let late: Vec<(Token, bool)> =
                self.conns.iter().filter(|(_, c)| c.deadline <= now).map(|(t, c)| (*t, c.closing)).collect();
            for (token, answered) in late {
                if !answered {
                    stats::bump(&self.shared.stats.hello_timeouts);
                    crate::log!(Warn, "broker", "connection {}: no complete Hello within the timeout", token.0);
                    // As the reference broker: a first frame not complete by the deadline gets no
                    // answer (its reply is written through the expired deadline, which fails).
                }
                self.close(token);
            }
        }
    }

    fn accept_all(&mut self) {
        while let Some(stream) = self.acceptor.accept() {
            self.add_connection(stream);
        }
    }

    fn add_connection(&mut self, sock: Stream) {
        let token = Token(self.next_token);
        self.next_token += 1;
        let fd = sock.descriptor();
        let peer = sock.peer_credentials();
        if transport::register(self.poll.registry(), fd, token, Interest::READABLE).is_err() {
            return;
        }
        stats::bump(&self.shared.stats.connections_accepted);
        self.shared.stats.connections_open.fetch_add(1, Ordering::Relaxed);
        crate::log!(Debug, "broker", "connection {} accepted from {}", token.0, Peer(peer));
        let deadline = Instant::now() + self.opts.hello_timeout;
        let conn = Connection {
            reader: FrameReader::with_max_body(sock, HELLO_MAX_BODY),
            fd,
            out: Vec::new(),
            out_pos: 0,
            closing: false,
            peer,
            deadline,
        };
        self.conns.insert(token, conn);
        // Connections not yet answered whose client has gone may be reaped to make room.
        let conns = &self.conns;
        let (verdict, departed) = self.acceptor.admit(token, fd, peer, |t| conns.get(t).is_some_and(|c| !c.closing));
        for gone in departed {
            self.close(gone);
        }
        if let Err(r) = verdict {
            self.refuse(token, &ReplyTo::default(), Refusal::not_admitted(r, "broker"), "");
        }
    }

    fn read_from(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        if conn.closing {
            // Drain and discard until the client closes (its answer went out, then our end of
            // the stream).
            let mut sink = [0u8; 4096];
            loop {
                match conn.reader.get_mut().read(&mut sink) {
                    Ok(0) => return self.close(token),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => return self.close(token),
                }
            }
        }
        let first = match conn.reader.read_frame() {
            Err(WireError::Timeout) => return,
            read => first_frame(read),
        };
        match first {
            FirstFrame::Hello(to, hello) => self.on_hello(token, to, hello),
            FirstFrame::Admin(id, request) => self.on_admin(token, id, request),
            FirstFrame::Invalid(to, r) => self.refuse(token, &to, r, ""),
        }
    }

    fn on_hello(&mut self, token: Token, to: ReplyTo, hello: Hello) {
        let Some(conn) = self.conns.get(&token) else { return };
        let peer = conn.peer;
        let result = check_hello_fields(&hello, peer.as_ref())
            .and_then(|()| {
                if self.shared.shutting_down.load(Ordering::Acquire) {
                    return Err(Refusal::new(ErrorCode::ShuttingDown, "the broker is shutting down").with_retry_after_ms(1000));
                }
                self.check_rate(peer.map_or(u32::MAX, |p| p.uid))
            })
            .and_then(|()| choose_service(&self.opts.services, &hello).cloned());
        let service = match result {
            Ok(s) => s,
            Err(r) => return self.refuse(token, &to, r, &hello.service_name),
        };
        let connection_id = self.next_connection_id;
        self.next_connection_id += 1;
        stats::bump(&self.shared.stats.hellos_negotiated);
        crate::log!(
            Info,
            "broker",
            "connection {} from {} negotiated service {:?} version {:?}",
            token.0,
            Peer(peer),
            service.service_name,
            hello.wanted_version
        );
        let mut reply = negotiated(&service.daemon_version, connection_id, hello.client_keepalive_secs);
        reply.backend_pipe = service.backend_pipe.clone();
        let handoff = match (&service.handoff_endpoint, hello.client_capabilities & CAP_HANDLE_PASSING != 0) {
            (Some(endpoint), true) => self.reserve_handoff(&service).map(|token| (endpoint.clone(), token)),
            _ => None,
        };
        if let Some((_, t)) = &handoff {
            reply.server_capabilities |= CAP_HANDLE_PASSING;
            reply.handle_passed_token = t.0.to_vec();
        }
        let bytes = to.hello_reply(hello_reply::Result::Negotiated(reply));
        self.shared.emit(BrokerEvent::Negotiated {
            peer,
            service: service.service_name.clone(),
            wanted_version: hello.wanted_version.clone(),
            connection_id,
            handoff: handoff.is_some(),
        });
        match handoff {
            None => {
                let Some(conn) = self.conns.get_mut(&token) else { return };
                conn.out.extend_from_slice(&bytes);
                conn.closing = true;
                self.flush(token);
            }
            Some((endpoint, t)) => {
                let Some(mut conn) = self.conns.remove(&token) else { return };
                self.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
                self.acceptor.release(token);
                let _ = transport::deregister(self.poll.registry(), conn.fd);
                conn.out.extend_from_slice(&bytes);
                let pending = conn.out[conn.out_pos..].to_vec();
                let client = conn.reader.into_inner();
                let job = HandoffTask {
                    client,
                    pending,
                    backend: endpoint,
                    token: t,
                    service_name: service.service_name.clone(),
                    correlation_id: connection_id,
                    ack_timeout: self.opts.handoff_ack_timeout,
                };
                let shared = Arc::clone(&self.shared);
                let spawned = std::thread::Builder::new().name("rp-broker-handoff".into()).spawn(move || {
                    // Counted here, before its outcome, so "started" never trails "accepted"
                    // or "failed" in a snapshot.
                    stats::bump(&shared.stats.handoffs_started);
                    let accepted = job.run();
                    stats::bump(if accepted { &shared.stats.handoffs_accepted } else { &shared.stats.handoffs_failed });
                    shared.handoffs_in_progress.fetch_sub(1, Ordering::AcqRel);
                });
                if spawned.is_err() {
                    self.shared.handoffs_in_progress.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Takes a handoff slot and a fresh token, or `None` (then no handoff is offered).
    fn reserve_handoff(&self, service: &BrokerService) -> Option<handoff::Token> {
        let in_progress = &self.shared.handoffs_in_progress;
        if in_progress.fetch_add(1, Ordering::AcqRel) >= MAX_CONCURRENT_HANDOFFS {
            in_progress.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let token = handoff::Token::random().ok().filter(|t| service.handoff_store.as_ref().is_none_or(|s| s.insert(t).is_ok()));
        if token.is_none() {
            in_progress.fetch_sub(1, Ordering::AcqRel);
        }
        token
    }

    /// Per-peer-uid Hello rate limit.
    fn check_rate(&mut self, uid: u32) -> Result<(), Refusal> {
        let now = Instant::now();
        let window = self.opts.rate_window.max(Duration::from_millis(1));
        let entry = self.rate.entry(uid).or_insert(RateWindow { started: now, count: 0 });
        let elapsed = now.duration_since(entry.started);
        if elapsed >= window {
            entry.started = now;
            entry.count = 0;
        }
        if entry.count < self.opts.rate_limit.max(1) {
            entry.count += 1;
            return Ok(());
        }
        let retry = (window - elapsed).as_millis().max(1) as u64;
        let mut r = Refusal::new(ErrorCode::RateLimited, "Hello rate limit exceeded").with_retry_after_ms(retry);
        r.details.insert("scope".into(), "peer".into());
        Err(r)
    }

    fn on_admin(&mut self, token: Token, request_id: u64, request: AdminRequest) {
        stats::bump(&self.shared.stats.admin_requests);
        let services: Vec<&str> = self.opts.services.iter().map(|s| s.service_name.as_str()).collect();
        let connections = self.conns.len();
        let Some(conn) = self.conns.get_mut(&token) else { return };
        if admin::answer(request_id, &request, &self.shared, &services, connections, &mut conn.out).is_err() {
            return self.close(token);
        }
        conn.closing = true;
        self.flush(token);
    }

    fn refuse(&mut self, token: Token, to: &ReplyTo, refusal: Refusal, service: &str) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        self.shared.stats.refused.count(refusal.code);
        crate::log!(
            Warn,
            "broker",
            "connection {} from {} refused ({}): {}{}",
            token.0,
            Peer(conn.peer),
            refusal.code_name(),
            refusal.reason,
            if service.is_empty() { String::new() } else { format!(" (service {service:?})") }
        );
        self.shared.emit(BrokerEvent::Refused { peer: conn.peer, service: service.to_owned(), refusal: refusal.clone() });
        conn.out.extend_from_slice(&to.hello_reply(hello_reply::Result::Refused(refusal.to_message())));
        conn.closing = true;
        self.flush(token);
    }

    /// Writes what is queued; closes a closing connection once flushed.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else { return };
        while conn.out_pos < conn.out.len() {
            match transport::send_nosignal(conn.fd, &conn.out[conn.out_pos..]) {
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = transport::reregister(
                        self.poll.registry(),
                        conn.fd,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    return;
                }
                Err(_) => return self.close(token),
            }
        }
        if conn.closing {
            // Half-close rather than close: a client that writes after the answer was sent
            // (a refusal at accept, before its Hello) still reads the answer instead of EPIPE.
            // Its bytes are drained until it closes or the connection's deadline passes.
            let _ = transport::shutdown(conn.fd, std::net::Shutdown::Write);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(conn) = self.conns.remove(&token) {
            self.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
            self.acceptor.release(token);
            let _ = transport::deregister(self.poll.registry(), conn.fd);
        }
    }
}

