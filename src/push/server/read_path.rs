//! The caller's own read path: a thread in [`PushServer::push_wait`](super::PushServer::push_wait)
//! takes its worker's socket out of the event loop's epoll set ("parks" it) and reads the reply
//! itself, so a synchronous push costs no thread hop; the event loop gets the socket back when
//! it needs it or once it has been idle.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use mio::Interest;

use super::link::Link;
use super::parse::{parse_incoming, Incoming, Phase};
use super::shared::{Command, Shared};
use super::ticket::Ticket;
use crate::own_read::read_in_slices;
use crate::stats;
use crate::transport::{self, SwitchableReads};
use crate::wire::{FrameReader, WireError};

/// How long a link parked by `push_wait` may go unused before the event loop watches it again,
/// so a worker that leaves or sends something unasked while nobody pushes is noticed within
/// about twice this.
pub(super) const PARKED_IDLE: Duration = Duration::from_millis(5);

impl Shared {
    /// Moves every complete buffered frame of a registered link to its ticket. Any frame but a
    /// push reply ends the connection (the reason is returned).
    pub(super) fn drain_replies(&self, link: &Link, reader: &mut FrameReader<SwitchableReads>) -> Result<(), Cow<'static, str>> {
        loop {
            let (id, reply) = {
                let frame = match reader.next_buffered() {
                    Ok(Some(f)) => f,
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(link.failed(&e, "connection failed: ")),
                };
                match parse_incoming(Phase::Registered, &frame) {
                    Ok(Incoming::Reply(id, reply)) => (id, reply),
                    Ok(_) => return Err("protocol violation: unexpected frame".into()),
                    Err(e) => return Err(link.failed(&e, "")),
                }
            };
            self.complete_reply(link, id, reply);
        }
    }

    /// Waits for `ticket` by reading `link` on the calling thread, if no one else is reading it.
    /// Returns without waiting when another thread (the event loop or another caller) reads.
    /// `now` is the caller's last reading of the clock.
    pub(super) fn read_until_done(&self, link: &Link, ticket: &Ticket, deadline: Instant, now: Instant) {
        let Ok(mut reader) = link.reader.try_lock() else { return };
        // Out of the event loop's epoll set while this thread reads, so it is not woken.
        let Some(first_parked) = self.park(link) else {
            // The push is still being written (larger than the socket's buffers): the event loop
            // writes the rest once the socket is writable, which it only learns with the link
            // in its set, and reads the reply. Back in the set, then, and the loop waits.
            drop(reader);
            if link.let_go() {
                self.command(Command::Read(link.token));
            }
            if link.lock_io().parked {
                self.unpark(link);
            }
            return;
        };
        let mut failure = self.drain_replies(link, &mut reader).err();
        // Waiting reads, in slices (`own_read`): the ticket may also be completed by the event
        // loop (deadline passed, worker disconnected), which is seen between two reads. Closing
        // the link shuts the socket down, which ends a read at once.
        reader.get_mut().wait = true;
        if failure.is_none() {
            let read = |wait| -> Result<(), Cow<'static, str>> {
                reader.get_mut().set_wait_limit(Some(wait)).map_err(|e| format!("connection failed: {e}"))?;
                match reader.read_more() {
                    Ok(n) => {
                        stats::add(&self.stats.bytes_in, n);
                        self.drain_replies(link, &mut reader)
                    }
                    Err(WireError::Timeout) => self.drain_replies(link, &mut reader),
                    Err(WireError::Closed) => Err("worker closed the connection".into()),
                    Err(e) => Err(link.failed(&e, "connection failed: ")),
                }
            };
            failure = read_in_slices(Some(deadline), Some(now), || ticket.is_done(), read).err();
        }
        reader.get_mut().wait = false;
        // Part of a frame already read here raises no event later: the event loop must look, so
        // that a worker stalled mid-frame meets `frame_timeout`.
        // Likewise decrypted bytes a TLS connection holds beyond what the reader took.
        let partial = !reader.buffered().is_empty() || link.sock.has_buffered_input();
        drop(reader);
        if link.let_go() || (partial && failure.is_none()) {
            self.command(Command::Read(link.token));
        }
        if let Some(reason) = failure {
            self.command(Command::Close(link.token, reason));
            return;
        }
        // Checked after letting go of the reader: a thread that wanted the link back in the
        // set while this one held it could not put it back itself.
        let needs_loop = {
            let mut io = link.lock_io();
            io.idle_since = Instant::now();
            !io.in_flight.is_empty() || io.wants_write
        };
        if needs_loop {
            self.unpark(link);
        }
        if first_parked {
            // The event loop has no parked link to look after yet: it schedules the idle check.
            let _ = self.waker.wake();
        }
    }

    /// Takes a link whose reader the caller holds out of the event loop's epoll set, unless it
    /// is out already. True when it is the only parked link (the event loop must be told);
    /// `None`, and nothing done, while bytes wait in the link's send buffer.
    pub(super) fn park(&self, link: &Link) -> Option<bool> {
        let mut io = link.lock_io();
        if !io.out.is_empty() {
            return None;
        }
        if io.parked || io.closed {
            return Some(false);
        }
        let _ = transport::deregister(&self.registry, link.fd());
        io.parked = true;
        drop(io);
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        parked.insert(link.token);
        Some(parked.len() == 1)
    }

    /// Puts a parked link back in the event loop's epoll set, with the interest in force. Fails
    /// (false) while another thread holds its reader; a `push_wait` caller re-checks whether
    /// the link is needed when it lets go.
    pub(super) fn unpark(&self, link: &Link) -> bool {
        let Ok(reader) = link.reader.try_lock() else { return false };
        let mut io = link.lock_io();
        if io.parked {
            io.parked = false;
            if !io.closed {
                let interest = if io.wants_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                let _ = transport::register(&self.registry, link.fd(), link.token, interest);
            }
        }
        drop(io);
        self.parked.lock().unwrap_or_else(|p| p.into_inner()).remove(&link.token);
        drop(reader);
        // Bytes already waiting raise the event at once, maybe while this thread held the reader;
        // decrypted bytes a TLS connection holds raise none.
        if link.let_go() || link.sock.has_buffered_input() {
            self.command(Command::Read(link.token));
        }
        true
    }
}
