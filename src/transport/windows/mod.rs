//! The Windows family of the transport seam: every Win32 call librp makes, and the only place
//! outside `src/ffi` with `unsafe` code on Windows. Local endpoints are named pipes (`pipe`),
//! TCP is std's; readiness for event loops is event `HANDLE`s (`ready`, waiting for data through
//! the zero-byte reads of `arrival`); what the system says about a process is in `process`;
//! handle passing in `handoff`. Every `unsafe` block says why it is sound.
//!
//! Named pipes are made here on `windows-sys`, not through `interprocess` nor mio's
//! `NamedPipe`, because the roles need four things of one pipe that neither gives together:
//! blocking reads and writes from two threads at once (overlapped handles, one operation per
//! thread), a read that never waits on a blocking pipe while the end of the stream stays
//! visible (`PeekNamedPipe`; interprocess only offers `PIPE_NOWAIT`, under which an empty pipe
//! and a closed one both read 0 bytes), waking a reader blocked in another thread (`CancelIoEx`
//! on shutdown; interprocess has no way to), and use without an event loop (mio's pipe does I/O
//! only while registered with a `Poll`, which the blocking worker, session and connection
//! handles do not have). The pipes carry what running-process 4.10.21 sets through interprocess:
//! the name `\\.\pipe\<name>`, an owner-only DACL `D:P(A;;GA;;;<user SID>)`,
//! `FILE_FLAG_FIRST_PIPE_INSTANCE` on the first instance, `PIPE_REJECT_REMOTE_CLIENTS`, byte
//! mode, overlapped handles on both ends. The peer is known by process id
//! (`GetNamedPipeClientProcessId`).
//!
//! Event loops: the servers' mio poller cannot watch a raw pipe, so a registration here is a
//! doorbell, a loopback UDP socket mio does watch, rung by one watcher thread while the
//! registered pipe or socket is readable and the loop has not yet read it down to
//! `WouldBlock` (which rearms it).
#![allow(unsafe_code)]

mod arrival;
mod handoff;
mod pipe;
mod pipe_listener;
mod process;
mod ready;

pub use handoff::{adopt_handle, duplicate_handle_to, names_pipe, recv_with_fd, send_with_fd, MAX_FDS_PER_MESSAGE};
pub use pipe::PipeStream;
pub use pipe_listener::PipeListener;
pub use process::{boot_id, fill_random, process_alive, process_exe, process_start_unix_ms};
pub use ready::{deregister, register, reregister, ReadinessSet, ReadySignal, WakePair};
pub(super) use pipe::parse_pipe_name;
pub(crate) use ready::{wait_readable, wait_writable};

use std::io;
use std::os::windows::io::{AsRawSocket, FromRawSocket, OwnedHandle};
use std::path::Path;

use windows_sys::Win32::Networking::WinSock as ws;

use super::{Endpoint, Listener, PeerCredentials, Stream};
use crate::error::{Error, Result};

/// A socket, pipe or event as Windows names it (a `HANDLE` or a `SOCKET`, as a signed integer
/// of pointer size). Borrowed: whoever handed it out keeps it open and closes it.
pub type RawDescriptor = isize;
/// An owned handle: closed when dropped.
pub type OwnedDescriptor = OwnedHandle;

/// Whatever has a [`RawDescriptor`]: the bound of the descriptor-passing calls.
pub trait AsDescriptor {
    /// The descriptor, owned by `self`.
    fn raw_descriptor(&self) -> RawDescriptor;
}
pub use AsDescriptor as AsRawDescriptor;

impl AsDescriptor for Stream {
    fn raw_descriptor(&self) -> RawDescriptor {
        self.descriptor()
    }
}

impl AsDescriptor for PipeStream {
    fn raw_descriptor(&self) -> RawDescriptor {
        self.raw()
    }
}

impl AsDescriptor for std::net::TcpStream {
    fn raw_descriptor(&self) -> RawDescriptor {
        self.as_raw_socket() as RawDescriptor
    }
}

/// The local stream of this family ([`Stream::Unix`]): a named pipe.
pub(crate) type LocalStream = PipeStream;
/// The local listener of this family ([`Listener::Unix`]): a named-pipe listener.
pub(crate) type LocalListener = PipeListener;
/// A named-pipe listener as the event loop's poller accepts from it: the listener itself,
/// registered through a doorbell.
pub(crate) type LocalAccepting = PipeListener;

/// Which kind of object a descriptor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A Winsock socket.
    Socket,
    /// A named pipe (either end).
    Pipe,
    /// Anything else waitable (an event).
    Other,
}

/// What `raw` names: a socket when Winsock knows it, a pipe when the pipe system does.
pub(crate) fn kind(raw: RawDescriptor) -> Kind {
    let mut ty: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as i32;
    // SAFETY: `ty` and `len` are valid for writes and `len` holds the size of `ty`; a value that
    // is no socket fails with WSAENOTSOCK.
    let rc = unsafe { ws::getsockopt(raw as ws::SOCKET, ws::SOL_SOCKET, ws::SO_TYPE, (&mut ty as *mut i32).cast(), &mut len) };
    if rc == 0 {
        return Kind::Socket;
    }
    if pipe::is_pipe(raw) {
        Kind::Pipe
    } else {
        Kind::Other
    }
}

/// The last Winsock error as an `io::Error`.
fn wsa_error() -> io::Error {
    // SAFETY: WSAGetLastError has no preconditions.
    io::Error::from_raw_os_error(unsafe { ws::WSAGetLastError() })
}

/// Sends on a socket, or writes to a pipe; Windows raises no signal for a vanished peer.
pub(crate) fn send_nosignal(raw: RawDescriptor, buf: &[u8]) -> io::Result<usize> {
    match kind(raw) {
        Kind::Pipe => pipe::write_handle(raw, buf, None),
        _ => socket_send(raw, buf),
    }
}

fn socket_send(raw: RawDescriptor, buf: &[u8]) -> io::Result<usize> {
    let len = buf.len().min(i32::MAX as usize) as i32;
    // SAFETY: `buf` is readable for `len` bytes for the duration of the call.
    let n = unsafe { ws::send(raw as ws::SOCKET, buf.as_ptr(), len, 0) };
    if n < 0 {
        Err(wsa_error())
    } else {
        Ok(n as usize)
    }
}

/// Writes to a stream: a pipe with its write timeout, a TCP socket by `send`.
pub(super) fn stream_write(s: &Stream, buf: &[u8]) -> io::Result<usize> {
    match s {
        Stream::Unix(p) => p.write_bytes(buf),
        Stream::Tcp(t) => socket_send(t.as_raw_socket() as RawDescriptor, buf),
        Stream::Tls(t) => t.write_blocking(buf),
    }
}

/// Turns on TCP keepalive: the first probe after `idle` without traffic, then one every
/// `interval` (`SIO_KEEPALIVE_VALS`; Windows fixes the number of probes at 10).
pub(crate) fn set_tcp_keepalive(raw: RawDescriptor, idle: std::time::Duration, interval: std::time::Duration, _probes: u32) -> io::Result<()> {
    let ms = |d: std::time::Duration| d.as_millis().clamp(1000, u32::MAX as u128) as u32;
    let vals = ws::tcp_keepalive { onoff: 1, keepalivetime: ms(idle), keepaliveinterval: ms(interval) };
    let mut returned = 0u32;
    // SAFETY: `vals` is readable for its size, no output buffer, no overlapped operation.
    let rc = unsafe {
        ws::WSAIoctl(
            raw as ws::SOCKET,
            ws::SIO_KEEPALIVE_VALS,
            (&vals as *const ws::tcp_keepalive).cast(),
            std::mem::size_of::<ws::tcp_keepalive>() as u32,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
            None,
        )
    };
    if rc != 0 {
        return Err(wsa_error());
    }
    Ok(())
}

/// The peer of a named pipe: its process id (the client's on the server end, the server's on
/// the client end). `uid` and `gid` are 0: Windows has none, and a pipe librp creates admits
/// only its own user. Sockets have no kernel-reported peer.
pub(crate) fn peer_credentials(raw: RawDescriptor) -> io::Result<PeerCredentials> {
    match kind(raw) {
        Kind::Pipe => pipe::peer_pid(raw).map(|pid| PeerCredentials { pid, uid: 0, gid: 0 }),
        _ => Err(io::Error::new(io::ErrorKind::Unsupported, "no kernel-reported peer on this descriptor")),
    }
}

/// Nothing to do on Windows: no signal is raised by a write to a vanished peer.
pub(crate) fn no_sigpipe(_raw: RawDescriptor) {}

/// 0: Windows has no uids; a pipe librp creates admits only its own user, and its peers report
/// uid 0 too.
pub(crate) fn effective_uid() -> u32 {
    0
}

/// Whether the peer has closed with nothing left to read. Never consumes or blocks.
pub(crate) fn peer_gone(raw: RawDescriptor) -> bool {
    match kind(raw) {
        Kind::Pipe => pipe::peer_gone(raw),
        Kind::Socket => {
            let mut byte = 0u8;
            if !ready::socket_ready(raw, ws::POLLRDNORM, 0) {
                return false;
            }
            // SAFETY: `byte` is a valid writable byte for the duration of the call.
            let n = unsafe { ws::recv(raw as ws::SOCKET, &mut byte, 1, ws::MSG_PEEK) };
            n == 0 || (n < 0 && matches!(wsa_error().raw_os_error(), Some(ws::WSAECONNRESET | ws::WSAECONNABORTED)))
        }
        Kind::Other => false,
    }
}

/// Reads what is there without waiting (`WouldBlock` when nothing is), whatever the mode.
pub(crate) fn recv_dontwait(raw: RawDescriptor, buf: &mut [u8]) -> io::Result<usize> {
    let r = match kind(raw) {
        Kind::Pipe => pipe::read_now(raw, buf),
        _ => {
            if !ready::socket_ready(raw, ws::POLLRDNORM, 0) {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                let len = buf.len().min(i32::MAX as usize) as i32;
                // SAFETY: `buf` is writable for `len` bytes for the duration of the call; the
                // socket is readable, so the call does not wait.
                let n = unsafe { ws::recv(raw as ws::SOCKET, buf.as_mut_ptr(), len, 0) };
                if n < 0 {
                    Err(wsa_error())
                } else {
                    Ok(n as usize)
                }
            }
        }
    };
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        ready::rearm(raw);
    }
    r
}

/// Sends without waiting for room: `WouldBlock` unless a socket has room, or while a pipe's
/// previous write is still in flight (see `pipe::write_now`).
pub(crate) fn send_nonblocking(raw: RawDescriptor, buf: &[u8]) -> io::Result<usize> {
    let r = match kind(raw) {
        Kind::Pipe => pipe::write_now(raw, buf),
        _ => {
            if ready::socket_ready(raw, ws::POLLWRNORM, 0) {
                socket_send(raw, buf)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
    };
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        ready::rearm_writable(raw);
    }
    r
}

/// Shuts one or both directions: a socket by `shutdown`; a pipe is marked so its reads end
/// (and a read waiting in another thread is woken) and its writes fail. A pipe has no
/// half-close: the peer sees the end when the last handle closes. An event (a listener's) is
/// set, so that waiters wake.
pub(crate) fn shutdown(raw: RawDescriptor, how: std::net::Shutdown) -> io::Result<()> {
    match kind(raw) {
        Kind::Socket => {
            let how = match how {
                std::net::Shutdown::Read => ws::SD_RECEIVE,
                std::net::Shutdown::Write => ws::SD_SEND,
                std::net::Shutdown::Both => ws::SD_BOTH,
            };
            // SAFETY: shutdown takes no memory; an invalid socket is reported.
            if unsafe { ws::shutdown(raw as ws::SOCKET, how) } != 0 {
                return Err(wsa_error());
            }
            Ok(())
        }
        Kind::Pipe => {
            pipe::shutdown_handle(raw, how);
            Ok(())
        }
        Kind::Other => ready::set_event(raw),
    }
}

impl Stream {
    /// Adopts a connected named pipe handle (one handed over by `DuplicateHandle`, say); the
    /// stream owns and closes it.
    pub fn from_unix_descriptor(handle: OwnedDescriptor) -> Stream {
        Stream::Unix(PipeStream::from_handle(handle))
    }

    /// The pipe handle itself, while it is open (for `DuplicateHandle`); `None` for TCP.
    pub fn pipe_handle(&self) -> Option<RawDescriptor> {
        match self {
            Stream::Unix(p) => p.pipe_handle(),
            Stream::Tcp(_) | Stream::Tls(_) => None,
        }
    }

    /// The pipe or socket as Windows names it, for the calls that take one and for event
    /// loops; owned by the stream.
    pub fn descriptor(&self) -> RawDescriptor {
        match self {
            Stream::Unix(p) => p.raw(),
            Stream::Tcp(t) => t.as_raw_socket() as RawDescriptor,
            Stream::Tls(t) => tcp_descriptor(t.socket()),
        }
    }
}

impl Listener {
    /// What waits for a connection: a pipe listener's connect event, or the TCP socket.
    pub(super) fn descriptor(&self) -> RawDescriptor {
        match self {
            Listener::Unix(l, _) => l.event(),
            Listener::Tcp(l, _) => l.as_raw_socket() as RawDescriptor,
        }
    }
}

/// The socket of a TCP stream.
pub(crate) fn tcp_descriptor(s: &std::net::TcpStream) -> RawDescriptor {
    s.as_raw_socket() as RawDescriptor
}

/// A TCP stream the event loop's poller accepted, as std's (still non-blocking).
pub(super) fn std_tcp_stream(s: mio::net::TcpStream) -> std::net::TcpStream {
    use std::os::windows::io::IntoRawSocket;
    // SAFETY: the socket is moved out of mio's stream, so the std stream is its only owner.
    unsafe { std::net::TcpStream::from_raw_socket(s.into_raw_socket()) }
}

/// The same listener for the event loop's poller (a pipe listener is shared, not duplicated).
pub(super) fn local_accepting(l: &PipeListener) -> io::Result<LocalAccepting> {
    l.try_clone()
}

/// Registers a pipe listener with the event loop's poller: readable while a client waits.
pub(super) fn register_accepting(l: &mut LocalAccepting, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
    register(registry, l.event(), token, mio::Interest::READABLE)
}

/// Accepts one connection from a pipe listener (waiting unless it is non-blocking).
pub(super) fn accept_blocking(l: &PipeListener) -> io::Result<PipeStream> {
    l.accept()
}

/// Accepts one connection from a registered pipe listener without waiting; the stream is in
/// non-blocking mode, as the poller's accepted sockets are.
pub(super) fn accept_local(l: &LocalAccepting) -> io::Result<PipeStream> {
    let r = l.accept_nonblocking().and_then(|s| s.set_nonblocking(true).map(|()| s));
    if matches!(&r, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
        ready::rearm(l.event());
    }
    r
}

/// The endpoint a pipe listener is bound to.
pub(super) fn unix_local_endpoint(l: &PipeListener) -> Result<Endpoint> {
    Ok(Endpoint::Pipe(l.name().to_owned()))
}

fn no_unix_sockets(what: &str) -> Error {
    Error::invalid_argument(format!(
        "{what}: Unix socket paths and abstract names are not used on Windows; name a pipe (\\\\.\\pipe\\NAME or NAME) or use tcp://HOST:PORT"
    ))
}

/// Unix socket paths are not endpoints on Windows.
pub(super) fn connect_path(path: &Path) -> Result<io::Result<PipeStream>> {
    Err(no_unix_sockets(&path.display().to_string()))
}

/// Abstract socket names are Linux's alone.
pub(super) fn connect_abstract(name: &str, _context: &'static str) -> Result<io::Result<PipeStream>> {
    Err(no_unix_sockets(&format!("@{name}")))
}

/// Abstract socket names are Linux's alone (`Endpoint::parse` refuses them elsewhere).
pub(super) fn bind_abstract(name: &str) -> io::Result<PipeListener> {
    Err(io::Error::new(io::ErrorKind::InvalidInput, no_unix_sockets(&format!("@{name}")).to_string()))
}

/// Unix socket paths are not endpoints on Windows.
pub(super) fn bind_path(path: &Path, _access: &super::SocketAccess) -> Result<(PipeListener, std::path::PathBuf)> {
    Err(no_unix_sockets(&path.display().to_string()))
}
