//! Connections coming and going: accepting through the [`Acceptor`](crate::transport::Acceptor)
//! (which also decides the refusals that need no Hello: another user, too many connections, and
//! reaps peers that left during the Hello), and closing a connection with everything in flight
//! on it.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use mio::{Interest, Token};

use super::{Conn, EventLoop};
use crate::control::Refusal;
use crate::error::Error;
use crate::log::Peer;
use crate::push::server::link::{Link, LinkIo};
use crate::push::server::parse::Phase;
use crate::push::server::shared::InFlight;
use crate::push::server::types::{ServerEvent, WorkerInfo};
use crate::stats;
use crate::transport::{self, Stream, SwitchableReads};
use crate::wire::{FrameReader, HELLO_MAX_BODY};

impl EventLoop {
    pub(super) fn accept_all(&mut self) {
        while let Some(stream) = self.acceptor.accept() {
            self.add_connection(stream);
        }
    }

    pub(super) fn add_connection(&mut self, socket: Stream) {
        // Blocking mode, so a `push_wait` caller can wait for its reply in one `recv`; every
        // other read and write on it says `MSG_DONTWAIT`, so the event loop never blocks.
        if socket.set_nonblocking(false).is_err() {
            return;
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let peer = socket.peer_credentials();
        stats::bump(&self.shared.stats.connections_accepted);
        crate::log!(Debug, "push-server", "connection {} accepted from {}", token.0, Peer(peer));
        let link = Arc::new(Link {
            token,
            fd: socket.descriptor(),
            sock: socket.io(),
            reader: Mutex::new(FrameReader::with_max_body(SwitchableReads::new(socket), HELLO_MAX_BODY)),
            io: Mutex::new(LinkIo::default()),
            missed_read: AtomicBool::new(false),
            worker: OnceLock::new(),
            in_flight_count: AtomicUsize::new(0),
            stats: Arc::clone(&self.shared.stats),
            no_memory: AtomicBool::new(false),
        });
        if transport::register(&self.shared.registry, link.fd(), token, Interest::READABLE).is_err() {
            return;
        }
        let handshake_deadline = Instant::now() + self.opts.handshake_timeout;
        self.conns.insert(
            token,
            Conn {
                link,
                phase: Phase::Hello,
                peer,
                handshake_deadline,
                partial_frame: None,
                worker_id: 0,
                registration: None,
                registration_request_id: 0,
            },
        );
        self.conn_deadlines.push(Reverse((handshake_deadline, token)));
        self.shared.stats.connections_open.fetch_add(1, Ordering::Relaxed);

        // Refusals that need no Hello: another user's process, too many connections (connections
        // still saying Hello whose peer has gone are reaped first).
        let conns = &self.conns;
        let fd = conns[&token].link.fd();
        let (verdict, departed) =
            self.acceptor.admit(token, fd, peer, |t| conns.get(t).is_some_and(|c| c.phase == Phase::Hello));
        for gone in departed {
            self.close(gone, "peer closed the connection".into());
        }
        if let Err(r) = verdict {
            self.refuse(token, 0, Refusal::not_admitted(r, "server"));
        }
    }

    pub(super) fn close(&mut self, token: Token, reason: Cow<'static, str>) {
        let Some(conn) = self.conns.remove(&token) else { return };
        self.shared.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
        self.acceptor.release(token);
        let violation = reason.starts_with("protocol violation");
        if violation {
            stats::bump(&self.shared.stats.protocol_violations);
        }
        let stopping = self.shared.stopping.load(Ordering::Acquire);
        if conn.phase == Phase::Registered && !stopping {
            stats::bump(&self.shared.stats.workers_lost);
            crate::log!(Warn, "push-server", "worker {} lost: {reason}", conn.worker_id);
        } else if violation || reason.starts_with("handshake") {
            crate::log!(Warn, "push-server", "connection {} from {} closed: {reason}", token.0, Peer(conn.peer));
        } else {
            crate::log!(Debug, "push-server", "connection {} closed: {reason}", token.0);
        }
        let link = conn.link;
        let _ = transport::deregister(&self.shared.registry, link.fd());
        self.pending_decisions.remove(&conn.worker_id);
        let was_registered = conn.phase == Phase::Registered;
        if was_registered {
            self.shared.links.write().unwrap_or_else(|p| p.into_inner()).remove(&conn.worker_id);
        }
        let failed: Vec<InFlight> = {
            let mut in_flight = self.shared.lock_in_flight();
            let mut io = link.lock_io();
            io.closed = true;
            io.in_flight.drain().filter_map(|id| in_flight.remove(&id)).collect()
        };
        // Wakes a caller reading this socket; the descriptor closes with the last reference.
        let _ = transport::shutdown(link.fd(), std::net::Shutdown::Both);
        stats::add(&self.shared.stats.pushes_lost, failed.len());
        let no_memory = link.no_memory.load(Ordering::Relaxed);
        for f in failed {
            let why = format!("worker {} disconnected before replying: {reason}", conn.worker_id).into();
            f.ticket.complete(Err(if no_memory { Error::NoMemory(why) } else { Error::Closed(why) }));
        }
        if was_registered {
            let info = self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).remove(&conn.worker_id);
            let mut worker = info.unwrap_or_else(|| WorkerInfo {
                id: conn.worker_id,
                registration: Default::default(),
                peer: conn.peer,
                tls_identity: None,
                in_flight: 0,
            });
            worker.in_flight = 0;
            self.shared.emit(ServerEvent::WorkerDisconnected { worker, reason: reason.into_owned() });
        }
    }
}
