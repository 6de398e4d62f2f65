//! One worker connection as the event loop and the pushing threads share it: its socket, its
//! framed reader (held by whoever reads), its send buffer and the pushes in flight on it.

use std::borrow::Cow;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use mio::Token;

use crate::idmap::FewIds;
use crate::stats::{self, PushServerCounters};
use crate::transport::{RawDescriptor, SocketIo, SwitchableReads};
use crate::wire::{FrameReader, FrameView, WireError};


/// One connection, shared by the event loop and the threads that push to its worker.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) token: Token,
    /// The socket's descriptor, owned by `reader` and so open as long as this link lives.
    /// Writers use it directly: a link costs one descriptor, never a duplicate (which could
    /// fail, and drop a connection just accepted, when descriptors run short).
    pub(super) fd: RawDescriptor,
    /// Non-blocking reads and writes on the socket: plain system calls, or through the TLS
    /// state of a `tls://` connection.
    pub(super) sock: SocketIo,
    /// The framed reader, owner of the socket. Held by the event loop while it reads, or by a
    /// `push_wait` caller while it waits for its reply with the socket out of the epoll set.
    pub(super) reader: Mutex<FrameReader<SwitchableReads>>,
    pub(super) io: Mutex<LinkIo>,
    /// Set by the event loop when it had a read to do but another thread held `reader`: that
    /// thread asks the loop to read once it lets go, since the edge-triggered event that called
    /// for the read will not come again.
    pub(super) missed_read: AtomicBool,
    /// Set once the worker is registered.
    pub(super) worker: OnceLock<RegisteredWorker>,
    pub(super) in_flight_count: AtomicUsize,
    /// The server's counters (bytes out).
    pub(super) stats: Arc<PushServerCounters>,
    /// Set when what the worker sent did not fit in memory: its pushes then fail with
    /// `NoMemory` rather than `Closed`.
    pub(super) no_memory: AtomicBool,
}

/// What picking a worker needs of its registration (the whole of it is kept once, in
/// [`Shared::workers`](super::shared::Shared::workers)).
#[derive(Debug)]
pub(super) struct RegisteredWorker {
    pub(super) id: u64,
    pub(super) task_queue: String,
    pub(super) payload_protocols: Vec<u32>,
}

#[derive(Debug)]
pub(super) struct LinkIo {
    /// Bytes waiting for the socket to take them.
    pub(super) out: SendBuffer,
    pub(super) wants_write: bool,
    pub(super) closed: bool,
    pub(super) in_flight: FewIds,
    /// Out of the event loop's epoll set: a `push_wait` caller took it out to read its reply
    /// itself, and it stays out for the next call until the event loop needs it (an async push
    /// or bytes to flush) or it has been idle for [`PARKED_IDLE`](super::read_path::PARKED_IDLE).
    pub(super) parked: bool,
    /// When the last `push_wait` caller let go of the link.
    pub(super) idle_since: Instant,
}

impl Default for LinkIo {
    fn default() -> Self {
        LinkIo {
            out: SendBuffer::default(),
            wants_write: false,
            closed: false,
            in_flight: FewIds::default(),
            parked: false,
            idle_since: Instant::now(),
        }
    }
}

/// A link's send buffer larger than this is freed once empty, so one large push does not keep
/// its memory.
pub(super) const KEEP_SEND_BUFFER: usize = 64 * 1024;

/// A link's send buffer: `bytes[start..end]` wait to be written. The vector keeps its length
/// (up to [`KEEP_SEND_BUFFER`]) from frame to frame, so a frame is encoded into it without
/// zero-filling its room first.
#[derive(Debug, Default)]
pub(super) struct SendBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

/// Once this many bytes at the front of a send buffer are written, the rest moves to the front.
const COMPACT_AFTER: usize = 64 * 1024;

impl SendBuffer {
    /// The bytes not yet written.
    pub(super) fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// How many bytes are not yet written.
    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when every byte is written.
    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks the first `n` pending bytes written.
    pub(super) fn advance(&mut self, n: usize) {
        self.start += n;
    }

    /// Queues `more` behind the pending bytes.
    pub(super) fn extend(&mut self, more: &[u8]) {
        let end = self.end + more.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[self.end..end].copy_from_slice(more);
        self.end = end;
    }

    /// Encodes a frame behind the pending bytes (see [`Link::send_frame`]); nothing is queued
    /// when it fails.
    fn encode(&mut self, frame: &FrameView<'_>, head: &[u8]) -> Result<(), WireError> {
        self.end = frame.encode_at_with(head, &mut self.bytes, self.end)?;
        Ok(())
    }

    /// Once every byte is written: starts over at the front, freeing a buffer grown past
    /// [`KEEP_SEND_BUFFER`]. While bytes remain: moves them to the front once many were written.
    pub(super) fn tidy(&mut self) {
        if self.is_empty() {
            self.start = 0;
            self.end = 0;
            if self.bytes.len() > KEEP_SEND_BUFFER {
                self.bytes = Vec::new();
            }
        } else if self.start > COMPACT_AFTER {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The memory the buffer holds.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}

/// What writing to a link did.
pub(super) enum Sent {
    /// Everything went out.
    All,
    /// Some bytes wait for the socket to become writable.
    Queued,
    /// The link is closed.
    Closed,
}

impl Link {
    pub(super) fn fd(&self) -> RawDescriptor {
        self.fd
    }

    pub(super) fn worker_id(&self) -> u64 {
        self.worker.get().map_or(0, |w| w.id)
    }

    /// The reason a read or decode failure `e` ends this link (after `context`), noting one
    /// that is out of memory.
    pub(super) fn failed(&self, e: &WireError, context: &str) -> Cow<'static, str> {
        if matches!(e, WireError::NoMemory { .. }) {
            self.no_memory.store(true, Ordering::Relaxed);
            return format!("a frame did not fit in memory: {e}").into();
        }
        format!("{context}{e}").into()
    }

    pub(super) fn lock_io(&self) -> MutexGuard<'_, LinkIo> {
        self.io.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `bytes` after whatever is already queued, without blocking.
    pub(super) fn send(&self, bytes: &[u8]) -> Sent {
        let mut io = self.lock_io();
        if io.closed {
            return Sent::Closed;
        }
        if !io.out.is_empty() {
            io.out.extend(bytes);
            return Sent::Queued;
        }
        let mut at = 0;
        while at < bytes.len() {
            match self.sock.send_nonblocking(&bytes[at..]) {
                Ok(n) => {
                    at += n;
                    stats::add(&self.stats.bytes_out, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    io.closed = true;
                    return Sent::Closed;
                }
            }
        }
        if at == bytes.len() {
            return match self.sock.flush_nonblocking() {
                Ok(true) => Sent::All,
                Ok(false) => Sent::Queued,
                Err(_) => {
                    io.closed = true;
                    Sent::Closed
                }
            };
        }
        io.out.tidy();
        io.out.extend(&bytes[at..]);
        Sent::Queued
    }

    /// The reader, for the event loop; `None` while another thread holds it, which then finds
    /// `missed_read` set when it lets go (see [`Link::let_go`]).
    pub(super) fn reader_for_loop(&self) -> Option<MutexGuard<'_, FrameReader<SwitchableReads>>> {
        if let Ok(reader) = self.reader.try_lock() {
            return Some(reader);
        }
        self.missed_read.store(true, Ordering::SeqCst);
        // Taken again in case the holder let go before the flag was set.
        let reader = self.reader.try_lock().ok()?;
        self.missed_read.store(false, Ordering::SeqCst);
        Some(reader)
    }

    /// To call by a thread other than the event loop right after it let go of the reader: true
    /// when the event loop skipped a read meanwhile, which the thread must then ask for.
    pub(super) fn let_go(&self) -> bool {
        self.missed_read.load(Ordering::SeqCst) && self.missed_read.swap(false, Ordering::SeqCst)
    }

    /// Encodes a frame straight into the send buffer (reused from frame to frame) behind
    /// whatever is queued, and writes what it can without blocking. The frame's payload field
    /// holds `head` then the frame's payload (see `FrameView::encode_at_with`; `head` is empty
    /// for a frame whose payload is whole). The frame's size must have been checked
    /// (`FrameView::check_fits_with`); a frame that still fails to encode closes the
    /// link rather than being half-sent.
    /// The caller holds the link's I/O state (`io`, from [`lock_io`](Self::lock_io)).
    pub(super) fn send_frame(&self, io: &mut LinkIo, frame: &FrameView<'_>, head: &[u8]) -> Sent {
        if io.closed {
            return Sent::Closed;
        }
        let queued = !io.out.is_empty();
        if io.out.encode(frame, head).is_err() {
            io.closed = true;
            return Sent::Closed;
        }
        if queued {
            return Sent::Queued;
        }
        while !io.out.is_empty() {
            match self.sock.send_nonblocking(io.out.pending()) {
                Ok(n) => {
                    io.out.advance(n);
                    stats::add(&self.stats.bytes_out, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Sent::Queued,
                Err(_) => {
                    io.closed = true;
                    return Sent::Closed;
                }
            }
        }
        io.out.tidy();
        if self.sock.has_pending_output() {
            return Sent::Queued;
        }
        Sent::All
    }
}

/// Links over real sockets for the unit tests of the server's pieces.
#[cfg(test)]
pub(super) mod testing {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::transport::{self, Endpoint, ListenOptions, Listener, Stream};
    use crate::wire::HELLO_MAX_BODY;

    /// A link as the event loop makes it (blocking socket, Hello cap), registered as `worker`
    /// (id, task queue, protocols) if given, and the worker's end of its connection.
    pub(in crate::push::server) fn link(token: usize, worker: Option<(u64, &str, &[u32])>) -> (Arc<Link>, Stream) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        #[cfg(unix)]
        let endpoint = Endpoint::Abstract(format!("rp-push-unit-{}-{n}", std::process::id()));
        #[cfg(windows)]
        let endpoint = Endpoint::Pipe(format!("rp-push-unit-{}-{n}", std::process::id()));
        let listener = Listener::bind(&endpoint, &ListenOptions::default()).unwrap();
        let peer = transport::connect(&endpoint, Duration::from_secs(5)).unwrap();
        let socket = listener.accept().unwrap();
        socket.set_nonblocking(false).unwrap();
        let link = Arc::new(Link {
            token: Token(token),
            fd: socket.descriptor(),
            sock: socket.io(),
            reader: Mutex::new(FrameReader::with_max_body(SwitchableReads::new(socket), HELLO_MAX_BODY)),
            io: Mutex::new(LinkIo::default()),
            missed_read: AtomicBool::new(false),
            worker: OnceLock::new(),
            in_flight_count: AtomicUsize::new(0),
            stats: Arc::default(),
            no_memory: AtomicBool::new(false),
        });
        if let Some((id, task_queue, protocols)) = worker {
            let registered = RegisteredWorker { id, task_queue: task_queue.into(), payload_protocols: protocols.to_vec() };
            link.worker.set(registered).unwrap();
        }
        (link, peer)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::time::Duration;

    use super::testing::link;
    use super::*;
    use crate::wire::proto::FrameKind;

    #[test]
    fn bytes_go_out_at_once_queue_behind_a_full_socket_and_fail_once_closed() {
        let (link, mut peer) = link(2, None);
        assert!(matches!(link.send(b"hello"), Sent::All));
        let mut got = [0u8; 5];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // More than the socket holds: the rest waits in the link, and later bytes queue behind it.
        let big = vec![1u8; 8 << 20];
        assert!(matches!(link.send(&big), Sent::Queued));
        let backlog = link.lock_io().out.len();
        assert!(backlog > 0 && backlog < big.len(), "{backlog}");
        let frame = FrameView { kind: FrameKind::Event as i32, payload: b"x", ..FrameView::default() };
        assert!(matches!(link.send_frame(&mut link.lock_io(), &frame, &[]), Sent::Queued));
        assert!(link.lock_io().out.len() > backlog);
        link.lock_io().closed = true;
        assert!(matches!(link.send(b"late"), Sent::Closed));
        assert!(matches!(link.send_frame(&mut link.lock_io(), &frame, &[]), Sent::Closed));
    }

    #[test]
    fn a_frame_is_encoded_into_the_send_buffer_and_a_large_buffer_is_freed_once_sent() {
        let (link, peer) = link(2, None);
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let payload = vec![3u8; 2 * KEEP_SEND_BUFFER];
        let frame = FrameView { kind: FrameKind::Event as i32, payload: &payload, request_id: 5, ..FrameView::default() };
        let reading = std::thread::spawn(move || {
            let mut reader = FrameReader::with_max_body(peer, crate::wire::MAX_BODY);
            let f = reader.read_frame().unwrap();
            let first = (f.request_id, f.payload.len());
            let f = reader.read_frame().unwrap();
            (first, (f.request_id, f.payload.len()))
        });
        let mut sent = link.send_frame(&mut link.lock_io(), &frame, &[]);
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(sent, Sent::Queued) {
            assert!(std::time::Instant::now() < until, "the frame never went out");
            // What the event loop does on writability, in short.
            let mut io = link.lock_io();
            if let Ok(n) = link.sock.send_nonblocking(io.out.pending()) {
                io.out.advance(n);
            }
            sent = if io.out.is_empty() { Sent::All } else { Sent::Queued };
        }
        // Whether the large frame went out at once or by parts, the next one leaves an empty
        // buffer of a size worth keeping.
        let small = FrameView { kind: FrameKind::Event as i32, payload: b"x", request_id: 6, ..FrameView::default() };
        assert!(matches!(link.send_frame(&mut link.lock_io(), &small, &[]), Sent::All));
        assert_eq!(reading.join().unwrap(), ((5, payload.len()), (6, 1)));
        let io = link.lock_io();
        assert!(io.out.is_empty());
        assert!(io.out.capacity() <= KEEP_SEND_BUFFER);
    }

    #[test]
    fn the_loop_skips_a_reader_another_thread_holds_and_that_thread_is_told() {
        let (link, _peer) = link(2, None);
        assert!(!link.let_go());
        let held = link.reader.lock().unwrap();
        assert!(link.reader_for_loop().is_none());
        drop(held);
        assert!(link.let_go(), "the holder learns of the skipped read");
        assert!(!link.let_go(), "once");
        assert!(link.reader_for_loop().is_some());
        assert!(!link.let_go());
    }

    #[test]
    fn a_frame_that_does_not_fit_in_memory_marks_the_link() {
        let (link, _peer) = link(2, Some((7, "q", &[])));
        assert_eq!(link.worker_id(), 7);
        let why = link.failed(&WireError::Protocol("bad".into()), "connection failed: ");
        assert_eq!(why, "connection failed: protocol violation: bad");
        assert!(!link.no_memory.load(Ordering::Relaxed));
        let e = WireError::NoMemory { bytes: 1 << 30 };
        assert!(link.failed(&e, "").starts_with("a frame did not fit in memory"));
        assert!(link.no_memory.load(Ordering::Relaxed));
    }
}
