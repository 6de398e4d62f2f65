//! Reading and writing one connection from the event loop: frames in by the connection's phase
//! (draining a closing one), the partial-frame deadline, and flushing what callers queued.

use std::cmp::Reverse;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use mio::{Interest, Token};

use super::EventLoop;
use crate::control::Refusal;
use crate::push::server::link::{Link, Sent};
use crate::push::server::parse::{parse_incoming, Incoming, Phase};
use crate::stats;
use crate::transport::{self, SwitchableReads};
use crate::wire::proto::ErrorCode;
use crate::wire::{FrameReader, WireError, MAX_BODY};

/// Ends a refused connection's sending side once its refusal is out, rather than closing it: a
/// peer still writing (a Hello sent before it read the refusal) must not get EPIPE before it can
/// read why it was refused. Its bytes are drained (phase `Closing`) until it closes, or until the
/// handshake deadline.
fn half_close(link: &Link) {
    let _ = transport::shutdown(link.fd(), std::net::Shutdown::Write);
}

impl EventLoop {
    pub(super) fn read_from(&mut self, token: Token) {
        let Some(conn) = self.conns.get(&token) else { return };
        let link = Arc::clone(&conn.link);
        // A caller waiting for its reply reads this link itself.
        let Some(mut reader) = link.reader_for_loop() else { return };
        loop {
            let Some(phase) = self.conns.get(&token).map(|c| c.phase) else { return };
            match phase {
                Phase::Closing => {
                    // Drain and discard; the connection ends once its last reply is flushed.
                    let mut sink = [0u8; 4096];
                    match link.sock.recv_nonblocking(&mut sink) {
                        Ok(0) => return self.close(token, "peer closed the connection".into()),
                        Ok(n) => {
                            stats::add(&self.shared.stats.bytes_in, n);
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(_) => return self.close(token, "connection failed".into()),
                    }
                }
                Phase::Registered => {
                    if let Err(reason) = self.shared.drain_replies(&link, &mut reader) {
                        return self.close(token, reason);
                    }
                }
                _ => {
                    let incoming = match reader.next_buffered() {
                        Ok(Some(frame)) => Some(parse_incoming(phase, &frame)),
                        Ok(None) => None,
                        Err(WireError::UnsupportedFramingVersion { .. }) if phase == Phase::Hello => {
                            let refusal = Refusal::new(ErrorCode::VersionUnsupported, "unsupported framing version");
                            return self.refuse(token, 0, refusal);
                        }
                        Err(e) => return self.close(token, format!("connection failed: {e}").into()),
                    };
                    if let Some(incoming) = incoming {
                        match incoming {
                            Ok(Incoming::Hello(id, hello)) => self.on_hello(token, id, hello),
                            Ok(Incoming::Registration(id, reg)) => self.on_registration(token, id, reg),
                            Ok(Incoming::Reply(..)) => unreachable!("replies are parsed only when registered"),
                            Err(e) => return self.close(token, link.failed(&e, "")),
                        }
                        // The Hello cap holds until the worker is registered: a registration is
                        // small (MAX_REGISTRATION_BYTES), pushes' replies may not be.
                        if self.conns.get(&token).is_some_and(|c| c.phase == Phase::Registered) {
                            reader.set_max_body(MAX_BODY);
                        }
                        continue;
                    }
                }
            }
            match reader.read_more() {
                Ok(n) => stats::add(&self.shared.stats.bytes_in, n),
                // WouldBlock: nothing more for now. A TLS handshake step may have left records
                // the socket did not take: they go out when it is writable.
                Err(WireError::Timeout) => {
                    if link.sock.has_pending_output() {
                        self.flush(token);
                    }
                    return self.track_partial_frame(token, &reader);
                }
                // A plain client on a `tls://` endpoint: told so in plain v1, which it reads.
                Err(WireError::Io(e)) if phase == Phase::Hello && transport::tls_failure(&e).is_some_and(|f| f.not_tls) => {
                    let refusal = Refusal::new(
                        ErrorCode::PeerRejected,
                        "this endpoint speaks TLS: connect with tls:// (a plain TCP client reached a TLS endpoint)",
                    );
                    return self.refuse(token, 0, refusal);
                }
                Err(WireError::Closed) => return self.close(token, "worker closed the connection".into()),
                Err(WireError::UnsupportedFramingVersion { .. }) if phase == Phase::Hello => {
                    let refusal = Refusal::new(ErrorCode::VersionUnsupported, "unsupported framing version");
                    return self.refuse(token, 0, refusal);
                }
                Err(e) => return self.close(token, link.failed(&e, "connection failed: ")),
            }
        }
    }

    /// Starts, restarts or clears the deadline of a registered worker's partial frame, so a
    /// worker that stalls mid-frame is disconnected after [`ServerOptions::frame_timeout`](crate::push::ServerOptions::frame_timeout)
    /// while one that keeps completing frames never is.
    pub(super) fn track_partial_frame(&mut self, token: Token, reader: &FrameReader<SwitchableReads>) {
        let timeout = self.opts.frame_timeout;
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let frames = reader.frames_read();
        if conn.phase != Phase::Registered || timeout.is_zero() || reader.buffered().is_empty() {
            conn.partial_frame = None;
        } else if conn.partial_frame.is_none_or(|(_, seen)| seen != frames) {
            let at = Instant::now() + timeout;
            conn.partial_frame = Some((at, frames));
            self.conn_deadlines.push(Reverse((at, token)));
        }
    }

    /// A partial-frame deadline passed: disconnects the worker if it is still stalled on the
    /// same frame; re-tracks it otherwise. A worker whose reader a `push_wait` caller holds is
    /// being read right now: it is looked at again one timeout later.
    pub(super) fn partial_frame_expired(&mut self, token: Token) {
        let timeout = self.opts.frame_timeout;
        let Some(conn) = self.conns.get_mut(&token) else { return };
        let link = Arc::clone(&conn.link);
        let Ok(reader) = link.reader.try_lock() else {
            if let Some((at, _)) = conn.partial_frame.as_mut() {
                *at = Instant::now() + timeout;
                self.conn_deadlines.push(Reverse((*at, token)));
            }
            return;
        };
        let seen = conn.partial_frame.map(|(_, seen)| seen);
        if seen == Some(reader.frames_read()) && !reader.buffered().is_empty() {
            drop(reader);
            return self.close(token, "the worker stalled in the middle of a frame".into());
        }
        conn.partial_frame = None;
        self.track_partial_frame(token, &reader);
    }

    /// Writes bytes on a connection from the event loop; a closing connection ends once its
    /// bytes are out.
    pub(super) fn send(&mut self, token: Token, bytes: &[u8]) {
        let Some(conn) = self.conns.get(&token) else { return };
        match conn.link.send(bytes) {
            Sent::All => {
                if conn.phase == Phase::Closing {
                    half_close(&conn.link);
                }
            }
            Sent::Queued => self.flush(token),
            Sent::Closed => self.close(token, "send failed".into()),
        }
    }

    /// Writes what is queued for a connection and watches it for writability while bytes remain;
    /// closes a closing connection once flushed.
    pub(super) fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get(&token) else { return };
        let link = Arc::clone(&conn.link);
        let closing = conn.phase == Phase::Closing;
        let mut io = link.lock_io();
        while !io.out.is_empty() {
            match link.sock.send_nonblocking(io.out.pending()) {
                Ok(n) => {
                    io.out.advance(n);
                    stats::add(&self.shared.stats.bytes_out, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    drop(io);
                    return self.close(token, format!("send failed: {e}").into());
                }
            }
        }
        let mut drained = io.out.is_empty();
        io.out.tidy();
        // What the connection itself still holds (TLS records; never on a plain socket).
        if drained {
            match link.sock.flush_nonblocking() {
                Ok(all) => drained = all,
                Err(e) => {
                    drop(io);
                    return self.close(token, format!("send failed: {e}").into());
                }
            }
        }
        let mut unpark = false;
        if drained == io.wants_write {
            io.wants_write = !drained;
            if io.parked {
                // Out of the set (see `LinkIo::parked`): back in to be told when writable.
                unpark = !drained;
            } else {
                let interest = if drained { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
                let _ = transport::reregister(&self.shared.registry, link.fd(), token, interest);
            }
        }
        drop(io);
        if unpark {
            self.shared.unpark(&link);
        }
        if drained && closing {
            half_close(&link);
        }
    }
}
