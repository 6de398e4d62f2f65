//! [`Conn`]: one framed connection (to a backend, a broker, or any v1 peer).

use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::error::Error;
use crate::transport::{OwnedDescriptor, PeerCredentials, RawDescriptor, ReadinessSet, ReadySignal, Stream, TlsIdentity};
use crate::wire::proto::Frame;
use crate::wire::{FrameReader, FrameView, FrameWriter, WireError};

/// A framed connection. Every method takes `&self`: one thread may wait in
/// [`recv`](Self::recv) while another sends or calls [`close`](Self::close), which wakes the
/// waiting receive.
///
/// [`pollable_fd`](Self::pollable_fd) is for `poll`/`epoll` loops: level-triggered, readable
/// exactly while a receive would return without waiting, including for frames one read
/// brought along that are already buffered here (one receive per wake-up is enough). On a TLS
/// connection, decrypted bytes already taken from the socket count as readable too.
#[derive(Debug)]
pub struct Conn {
    socket: Stream,
    receiving: Mutex<Receiving>,
    writer: Mutex<FrameWriter<Stream>>,
    closed: AtomicBool,
    /// The pollable descriptor, made on first request.
    ready: OnceLock<Readiness>,
}

/// What makes [`Conn::pollable_fd`] level-triggered: a signal raised while a frame (or an
/// error) is buffered, and one epoll set over it and the socket.
#[derive(Debug)]
struct Readiness {
    signal: ReadySignal,
    set: ReadinessSet,
}

/// The socket as the framed reader reads it: blocking (per the socket's read timeout), or
/// without ever waiting when `dont_wait` is set (a receive with a zero timeout).
#[derive(Debug)]
struct SocketReads {
    socket: Stream,
    dont_wait: bool,
}

impl std::io::Read for SocketReads {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.dont_wait {
            self.socket.recv_nonblocking(buf)
        } else {
            self.socket.read(buf)
        }
    }
}

/// The receiving half: the framed reader and the read timeout last set on the socket (set
/// again only when a receive asks for another).
#[derive(Debug)]
struct Receiving {
    reader: FrameReader<SocketReads>,
    read_timeout: Option<Option<Duration>>,
    /// An error met after frames were handed out, for the next receive.
    pending_error: Option<Error>,
}

impl Receiving {
    fn has_complete_frame(&self) -> bool {
        matches!(crate::wire::frame_extent(self.reader.buffered(), u32::MAX), Ok(crate::wire::Extent::Complete(_)))
    }

    /// Whether a receive returns at once with what is buffered (a frame or an error).
    fn ready(&self) -> bool {
        self.pending_error.is_some() || self.has_complete_frame()
    }
}

impl Conn {
    /// Wraps a connected stream.
    pub fn new(socket: Stream) -> Result<Conn, Error> {
        let reader = FrameReader::new(socket.try_clone().map_err(|e| Error::io("clone socket", e))?);
        Self::with_reader(socket, reader)
    }

    /// Adopts a connected Unix stream socket, for example one received by a handoff
    /// (`rp::handoff::accept_handoff`). The connection owns and closes the descriptor.
    pub fn from_unix_fd(fd: OwnedDescriptor) -> Result<Conn, Error> {
        Self::new(Stream::from_unix_descriptor(fd))
    }

    /// Wraps a stream whose reader already holds bytes received after a handshake.
    pub(crate) fn with_reader(socket: Stream, reader: FrameReader<Stream>) -> Result<Conn, Error> {
        let io = |e| Error::io("configure socket", e);
        socket.set_nonblocking(false).map_err(io)?;
        socket.set_write_timeout(Some(Duration::from_secs(30))).map_err(io)?;
        let writer = FrameWriter::new(socket.try_clone().map_err(io)?);
        let reader = reader.map_inner(|socket| SocketReads { socket, dont_wait: false });
        let receiving = Mutex::new(Receiving { reader, read_timeout: None, pending_error: None });
        Ok(Conn { socket, receiving, writer: Mutex::new(writer), closed: AtomicBool::new(false), ready: OnceLock::new() })
    }

    /// Sends one frame (all of it, or an error).
    pub fn send(&self, frame: &FrameView<'_>) -> Result<(), Error> {
        self.check_open()?;
        let result = self.writer.lock().unwrap_or_else(|p| p.into_inner()).write_frame(frame);
        result.map_err(|e| self.map_wire(e, "the peer did not accept the frame in time"))
    }

    /// [`send`](Self::send) for a frame whose payload field holds `head` then the frame's
    /// payload (see `FrameView::encode_at_with`), encoded in one pass.
    pub(crate) fn send_with_head(&self, frame: &FrameView<'_>, head: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        let result = self.writer.lock().unwrap_or_else(|p| p.into_inner()).write_frame_with_head(frame, head);
        result.map_err(|e| self.map_wire(e, "the peer did not accept the frame in time"))
    }

    /// Sends several frames in one write where the socket allows (all of them, or an error):
    /// the way to stream many small frames without a system call each.
    pub fn send_many(&self, frames: &[FrameView<'_>]) -> Result<(), Error> {
        self.send_each(frames.iter().map(|f| Ok::<_, Error>(*f)))
    }

    /// [`send_many`](Self::send_many) for frames made on the fly (for example converted from
    /// another representation): the first `Err` the iterator yields is returned and nothing
    /// is sent.
    pub fn send_each<'a, E: From<Error>>(
        &self,
        frames: impl IntoIterator<Item = Result<FrameView<'a>, E>>,
    ) -> Result<(), E> {
        self.check_open()?;
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for frame in frames {
            let queued = match frame {
                Ok(frame) => writer.queue(&frame).map_err(|e| self.map_wire(e, "").into()),
                Err(e) => Err(e),
            };
            if let Err(e) = queued {
                writer.discard_queued();
                return Err(e);
            }
        }
        let result = writer.write_queued();
        result.map_err(|e| self.map_wire(e, "the peer did not accept the frames in time").into())
    }

    /// Receives one frame, waiting up to `timeout` (`None` = forever, zero = only what is
    /// already here or arrives at once).
    ///
    /// Fails with `Timeout` (nothing complete in time; partial bytes stay buffered), `Closed`
    /// (the peer or [`close`](Self::close) ended the connection), or a wire error.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Frame, Error> {
        let mut frame = None;
        self.recv_each(timeout, 1, |f| frame = Some(f.try_to_frame()))?;
        // A payload that did not fit in memory ends the connection (`NoMemory`).
        match frame {
            Some(Ok(frame)) => Ok(frame),
            Some(Err(e)) => {
                self.close();
                Err(e.into())
            }
            None => Err(Error::Closed("the connection ended".into())),
        }
    }

    /// Receives every frame already buffered, or arriving with the first, up to `max`:
    /// waits up to `timeout` for the first (as [`recv`](Self::recv)), then hands each to `each`
    /// as a view into the connection's read buffer, without copying. Returns how many; the
    /// way to read a stream of small frames without a system call or a copy each. A frame
    /// that fails to decode after others were handed out is reported by the next call.
    pub fn recv_each(
        &self,
        timeout: Option<Duration>,
        max: usize,
        each: impl FnMut(FrameView<'_>),
    ) -> Result<usize, Error> {
        self.check_open()?;
        let mut rx = self.receiving.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.recv_locked(&mut rx, timeout, max, each);
        // Frames this receive left buffered keep the pollable descriptor readable; a system
        // call only when that changes (never while each read brings one frame).
        // Decrypted bytes a TLS connection holds beyond them leave the socket unreadable: they
        // count too.
        if let Some(r) = self.ready.get() {
            r.signal.set(rx.ready() || self.socket.has_buffered_input());
        }
        result
    }

    fn recv_locked(
        &self,
        rx: &mut Receiving,
        timeout: Option<Duration>,
        max: usize,
        mut each: impl FnMut(FrameView<'_>),
    ) -> Result<usize, Error> {
        if let Some(e) = rx.pending_error.take() {
            return Err(e);
        }
        if !rx.has_complete_frame() {
            let dont_wait = timeout == Some(Duration::ZERO);
            if !dont_wait && rx.read_timeout != Some(timeout) {
                self.socket.set_read_timeout(timeout).map_err(|e| Error::io("set read timeout", e))?;
                rx.read_timeout = Some(timeout);
            }
            rx.reader.get_mut().dont_wait = dont_wait;
            rx.reader.wait_frame().map_err(|e| self.map_wire(e, "no frame arrived in time"))?;
        }
        let mut count = 0;
        while count < max.max(1) {
            match rx.reader.next_buffered() {
                Ok(Some(frame)) => each(frame),
                Ok(None) => break,
                Err(e) if count == 0 => return Err(self.map_wire(e, "")),
                Err(e) => {
                    rx.pending_error = Some(self.map_wire(e, ""));
                    break;
                }
            }
            count += 1;
        }
        Ok(count)
    }

    /// True when a complete frame is already buffered (a receive returns it without reading).
    pub(crate) fn has_buffered_frame(&self) -> bool {
        self.receiving.lock().unwrap_or_else(|p| p.into_inner()).has_complete_frame()
    }

    /// True when a receive has something to take that the socket's readability does not show:
    /// a complete frame buffered here, or decrypted bytes a TLS connection holds (never on a
    /// plain socket, where this is [`has_buffered_frame`](Self::has_buffered_frame)).
    pub(crate) fn has_buffered_input(&self) -> bool {
        self.has_buffered_frame() || self.socket.has_buffered_input()
    }

    /// A descriptor for `poll`/`epoll` loops, readable exactly while [`recv`](Self::recv)
    /// would return without waiting: a frame is here (also one already buffered, or decrypted
    /// and held by a TLS connection), or the connection ended. Level-triggered: one receive per wake-up loses nothing. It may be
    /// readable for part of a frame too (a zero-timeout receive then reports `Timeout` and takes
    /// the bytes). Only for readability; owned by the connection. Made on the first call, so a
    /// connection never polled pays nothing for it; that call never waits.
    pub fn pollable_fd(&self) -> Result<RawDescriptor, Error> {
        if let Some(r) = self.ready.get() {
            return Ok(r.set.descriptor());
        }
        // Held until the descriptor is published, so no receive runs between reading the
        // buffer's state and publishing. A receive in progress on another thread is not waited
        // for: the signal then starts raised (at worst one spurious wake-up), and that receive,
        // or the next, sets it right.
        let rx = self.receiving.try_lock();
        let ready_now = match &rx {
            Ok(rx) => rx.ready() || self.socket.has_buffered_input(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.get_ref().ready() || self.socket.has_buffered_input(),
            Err(std::sync::TryLockError::WouldBlock) => true,
        };
        let signal = ReadySignal::new()?;
        let set = ReadinessSet::new(&[self.socket.descriptor(), signal.fd()])
            .map_err(|e| Error::io("create the pollable descriptor", e))?;
        signal.set(ready_now);
        let fd = self.ready.get_or_init(|| Readiness { signal, set }).set.descriptor();
        drop(rx);
        Ok(fd)
    }

    /// The socket itself, for librp's own readers.
    pub(crate) fn socket_fd(&self) -> RawDescriptor {
        self.socket.descriptor()
    }

    /// The peer's kernel-reported credentials (Unix sockets; `None` for TCP and TLS).
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        self.socket.peer_credentials()
    }

    /// The verified certificate identity of the peer of a TLS connection: the server's on the
    /// connecting side, the client's under mutual TLS on the accepting side. `None` on Unix and
    /// TCP connections, and before the handshake is done.
    pub fn tls_identity(&self) -> Option<TlsIdentity> {
        self.socket.tls_identity()
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self.socket, Stream::Tls(_))
    }

    /// Closes the connection: a blocked receive wakes with `Closed`, later calls fail with
    /// `Closed`. Idempotent and callable from any thread.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("the connection was closed locally".into()));
        }
        Ok(())
    }

    fn map_wire(&self, e: WireError, timeout_text: &'static str) -> Error {
        if self.closed.load(Ordering::Acquire) {
            return Error::Closed("the connection was closed locally".into());
        }
        match e {
            WireError::Timeout => Error::Timeout(timeout_text.into()),
            WireError::Closed => Error::Closed("the peer closed the connection".into()),
            e => e.into(),
        }
    }
}
