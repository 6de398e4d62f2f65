//! The seam between librp and the operating system: endpoints (Unix socket paths, Linux
//! abstract names, TCP), connected [`Stream`]s, [`Listener`]s and the one [`Acceptor`] of the
//! servers (peer policy, connection limits), peer credentials, descriptor passing, readiness
//! ([`ReadySignal`], [`ReadinessSet`], [`WakePair`], waits) and what the kernel says about a
//! process. The roles (`push`, `broker`, `session`, `mux`, `handoff`) reach the OS only through
//! here. Platform code lives in one file per family (`unix.rs`); a socket as the OS names it is
//! a [`RawDescriptor`].
//!
//! Listening sockets librp creates are owner-only: a path socket is mode 0600 inside a
//! directory that only this user can write (created 0700 when missing; only that directory,
//! never its missing parents). Every send uses
//! `MSG_NOSIGNAL`, so a vanished peer never raises SIGPIPE in the host process.

mod acceptor;
mod unix;

use unix as sys;

pub use acceptor::{AcceptPolicy, Acceptor, Rejection};
pub use unix::{
    boot_id, deregister, process_alive, process_exe, process_start_unix_ms, recv_with_fd, register, reregister,
    send_with_fd, AsDescriptor, AsRawDescriptor, BorrowedDescriptor, DeadlineSocket, OwnedDescriptor, RawDescriptor,
    ReadinessSet, WakePair, MAX_FDS_PER_MESSAGE,
};

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Where a server listens or a client connects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A Unix socket file.
    Path(PathBuf),
    /// A Linux abstract socket name (no file; written `@name`).
    Abstract(String),
    /// A TCP address `host:port` (written `tcp://host:port`).
    Tcp(String),
}

impl Endpoint {
    /// Parses `tcp://host:port`, `@name` / `abstract:name`, `unix:PATH` or a plain path.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::invalid_argument("endpoint is empty"));
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            if addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
                return Err(Error::invalid_argument(format!("TCP endpoint {s:?} is not tcp://host:port")));
            }
            return Ok(Endpoint::Tcp(addr.to_owned()));
        }
        if let Some(name) = s.strip_prefix('@').or_else(|| s.strip_prefix("abstract:")) {
            if name.is_empty() || name.len() > 107 {
                return Err(Error::invalid_argument("abstract socket name must be 1-107 bytes"));
            }
            return Ok(Endpoint::Abstract(name.to_owned()));
        }
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.len() > 107 {
            return Err(Error::invalid_argument(format!("socket path is longer than 107 bytes: {path}")));
        }
        Ok(Endpoint::Path(PathBuf::from(path)))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Path(p) => write!(f, "{}", p.display()),
            Endpoint::Abstract(n) => write!(f, "@{n}"),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// A peer's identity as the kernel reports it (Unix sockets only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id at connect time.
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    sys::effective_uid()
}

/// A connected byte stream (Unix or TCP) whose writes never raise SIGPIPE.
#[derive(Debug)]
pub enum Stream {
    /// A Unix domain socket.
    Unix(UnixStream),
    /// A TCP socket.
    Tcp(TcpStream),
}

impl Stream {
    /// Sets the read timeout (None = block).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    /// Sets the write timeout (None = block).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
        }
    }

    /// Shuts down one or both directions; wakes threads blocked reading it.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
        }
    }

    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    /// The kernel-reported credentials of the peer; None for TCP, which has none.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        match self {
            Stream::Unix(s) => sys::peer_credentials(s.as_raw_fd()).ok(),
            Stream::Tcp(_) => None,
        }
    }

    /// Adopts a connected Unix stream socket (one received by a handoff, say); the stream owns
    /// and closes it.
    pub fn from_unix_descriptor(socket: OwnedDescriptor) -> Stream {
        Stream::Unix(UnixStream::from(socket))
    }

    /// Whether this is a Unix domain socket (which can carry descriptors and has credentials).
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// The socket as the OS names it, for the calls below that take one and for event loops;
    /// owned by the stream.
    pub fn descriptor(&self) -> RawDescriptor {
        self.as_raw_fd()
    }

    /// Reads without blocking, whatever the socket's mode (`WouldBlock` when nothing is there).
    pub fn recv_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv_dontwait(self.as_raw_fd(), buf)
    }
}

impl std::os::fd::AsFd for Stream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send_nosignal(self.as_raw_fd(), buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        send_nosignal(self.as_raw_fd(), buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `send(2)` with `MSG_NOSIGNAL` on any socket descriptor.
pub fn send_nosignal(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    sys::send_nosignal(fd, buf)
}

/// "No limit" where a limit is kept as a `Duration` (an option of a connect or a server): longer
/// than any process runs, and still far from overflowing `Instant` arithmetic.
pub const NO_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Waits up to `timeout` (`None` = forever) for `fd` to be readable or hung up; false on timeout.
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    sys::wait_readable(fd, timeout)
}

/// A level-triggered epoll set over `fds`: one descriptor readable whenever any of them is
/// (the owning form is [`ReadinessSet`]).
pub fn readiness_set(fds: &[RawFd]) -> io::Result<std::os::fd::OwnedFd> {
    sys::readiness_set(fds)
}

/// Adds `fd` to (or removes it from) a set made by [`readiness_set`].
pub fn readiness_set_member(set: RawFd, fd: RawFd, member: bool) -> io::Result<()> {
    sys::readiness_set_member(set, fd, member)
}

/// A descriptor readable exactly while its owner says something is ready: the one mechanism
/// behind every descriptor librp hands to an event loop, so each is level-triggered even for
/// what librp already holds in memory (a buffered frame, a queued event) and the socket no longer
/// shows. It holds one byte in a socket pair while raised; [`set`](Self::set) makes a system
/// call only when the state changes, so an owner that calls it after every receive pays nothing
/// while nothing is left over.
#[derive(Debug)]
pub struct ReadySignal {
    rx: UnixStream,
    tx: UnixStream,
    raised: std::sync::atomic::AtomicBool,
}

impl ReadySignal {
    /// A lowered signal.
    pub fn new() -> Result<ReadySignal, Error> {
        let io = |e| Error::io("readiness signal", e);
        let (rx, tx) = UnixStream::pair().map_err(io)?;
        rx.set_nonblocking(true).map_err(io)?;
        tx.set_nonblocking(true).map_err(io)?;
        Ok(ReadySignal { rx, tx, raised: std::sync::atomic::AtomicBool::new(false) })
    }

    /// Raises (`ready`) or lowers the signal. Callers serialise it with what decides `ready`
    /// (the lock guarding the buffer or queue), so the byte always matches the last call.
    pub fn set(&self, ready: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        if ready == self.raised.load(Relaxed) {
            return;
        }
        if ready {
            if (&self.tx).write(&[1]).is_ok() {
                self.raised.store(true, Relaxed);
            }
        } else {
            // Raised means exactly one byte is there: one read takes it.
            let mut b = [0u8; 8];
            let _ = (&self.rx).read(&mut b);
            self.raised.store(false, Relaxed);
        }
    }

    /// The descriptor, readable while the signal is raised. Owned by the signal.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

/// Reads from a socket without blocking, whatever its mode, so a stream shared with blocking
/// writers can be read only when `poll` said so.
#[derive(Debug)]
pub struct NonBlockingReads(pub Stream);

impl Read for NonBlockingReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv_dontwait(self.0.as_raw_fd(), buf)
    }
}

/// Reads from a blocking-mode socket shared with blocking writers: without blocking
/// (`MSG_DONTWAIT`) by default, or waiting for data while `wait` is set, so a reader that would
/// only `poll` and then read saves the `poll`. A waiting read returns on data, end of stream,
/// a `shutdown` of the socket (from any thread), or the socket's read timeout.
#[derive(Debug)]
pub struct SwitchableReads {
    /// The socket (in blocking mode).
    pub stream: Stream,
    /// Whether the next reads wait for data.
    pub wait: bool,
    /// The read timeout last set through [`set_wait_limit`](Self::set_wait_limit).
    limit: Option<Duration>,
}

impl SwitchableReads {
    /// Wraps a socket; reads do not wait until `wait` is set.
    pub fn new(stream: Stream) -> Self {
        SwitchableReads { stream, wait: false, limit: None }
    }

    /// Sets how long a waiting read may wait (the socket's read timeout; `None` = forever).
    /// Makes a system call only when the limit changes. The kernel rounds it up to its timer
    /// tick, so callers that must keep a limit to the millisecond `poll` instead.
    pub fn set_wait_limit(&mut self, limit: Option<Duration>) -> io::Result<()> {
        if self.limit != limit {
            self.stream.set_read_timeout(limit)?;
            self.limit = limit;
        }
        Ok(())
    }
}

impl Read for SwitchableReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.wait {
            (&self.stream).read(buf)
        } else {
            sys::recv_dontwait(self.stream.as_raw_fd(), buf)
        }
    }
}

/// `send(2)` with `MSG_NOSIGNAL | MSG_DONTWAIT` on any socket descriptor.
pub fn send_nonblocking(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    sys::send_nonblocking(fd, buf)
}

/// `recv(2)` with `MSG_DONTWAIT` on any socket descriptor.
pub fn recv_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    sys::recv_dontwait(fd, buf)
}

/// How soon accepting is retried after it failed for lack of descriptors (or similar): the
/// listener is edge-triggered, so connections left in the backlog would get no new event.
pub(crate) const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Whether the peer of a socket descriptor has closed it with nothing left to read; never
/// consumes or blocks.
pub fn peer_gone(fd: RawFd) -> bool {
    sys::peer_gone(fd)
}

/// Counts one connection of `uid` as closed, in a server's per-uid connection counts.
pub(crate) fn forget_peer_uid(per_uid: &mut std::collections::HashMap<u32, usize>, uid: u32) {
    if let Some(n) = per_uid.get_mut(&uid) {
        *n -= 1;
        if *n == 0 {
            per_uid.remove(&uid);
        }
    }
}

/// Shuts one or both directions of any socket descriptor (`shutdown(2)`).
pub fn shutdown(fd: RawFd, how: Shutdown) -> io::Result<()> {
    sys::shutdown(fd, how)
}

/// Kernel-reported credentials of the peer of a Unix socket descriptor.
pub fn peer_credentials(fd: RawFd) -> io::Result<PeerCredentials> {
    sys::peer_credentials(fd)
}

/// Connects to an endpoint; a TCP connect gives up after `timeout`.
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Stream, Error> {
    let ctx = "connect";
    match endpoint {
        Endpoint::Path(p) => UnixStream::connect(p).map(Stream::Unix).map_err(|e| connect_error(endpoint, e)),
        Endpoint::Abstract(name) => {
            let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| Error::io(ctx, e))?;
            UnixStream::connect_addr(&addr).map(Stream::Unix).map_err(|e| connect_error(endpoint, e))
        }
        Endpoint::Tcp(addr) => {
            let addrs = addr.to_socket_addrs().map_err(|e| connect_error(endpoint, e))?;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
            for a in addrs {
                match TcpStream::connect_timeout(&a, timeout.max(Duration::from_millis(1))) {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(connect_error(endpoint, last))
        }
    }
}

fn connect_error(endpoint: &Endpoint, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            Error::Timeout(format!("connecting to {endpoint}").into())
        }
        _ => Error::Io { context: "connect", source: io::Error::new(e.kind(), format!("{endpoint}: {e}")) },
    }
}

/// How a listener is set up.
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    /// Allow a TCP listener on a non-loopback address (callers must then require a token).
    pub allow_remote_tcp: bool,
}

/// A listening socket; a path socket's file is removed when the listener is dropped.
#[derive(Debug)]
pub enum Listener {
    /// A Unix listener and the socket file it owns, if any.
    Unix(UnixListener, Option<PathBuf>),
    /// A TCP listener.
    Tcp(TcpListener),
}

impl Listener {
    /// Binds an endpoint with owner-only permissions (see the module docs).
    pub fn bind(endpoint: &Endpoint, opts: &ListenOptions) -> Result<Listener, Error> {
        match endpoint {
            Endpoint::Path(path) => bind_path(path),
            Endpoint::Abstract(name) => {
                let addr =
                    SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| Error::io("bind", e))?;
                let l = UnixListener::bind_addr(&addr)
                    .map_err(|e| Error::io("bind", io::Error::new(e.kind(), format!("{endpoint}: {e}"))))?;
                Ok(Listener::Unix(l, None))
            }
            Endpoint::Tcp(addr) => {
                let l = TcpListener::bind(addr.as_str())
                    .map_err(|e| Error::io("bind", io::Error::new(e.kind(), format!("{endpoint}: {e}"))))?;
                let local = l.local_addr().map_err(|e| Error::io("bind", e))?;
                if !local.ip().is_loopback() && !opts.allow_remote_tcp {
                    return Err(Error::PermissionDenied(
                        format!("{endpoint} is not a loopback address; remote TCP must be enabled explicitly and requires an auth token").into(),
                    ));
                }
                Ok(Listener::Tcp(l))
            }
        }
    }

    /// The address actually bound (useful with `tcp://127.0.0.1:0`).
    pub fn local_endpoint(&self) -> Result<Endpoint, Error> {
        match self {
            Listener::Unix(l, _) => {
                let addr = l.local_addr().map_err(|e| Error::io("local address", e))?;
                if let Some(p) = addr.as_pathname() {
                    Ok(Endpoint::Path(p.to_owned()))
                } else if let Some(n) = addr.as_abstract_name() {
                    Ok(Endpoint::Abstract(String::from_utf8_lossy(n).into_owned()))
                } else {
                    Err(Error::invalid_argument("unnamed Unix socket"))
                }
            }
            Listener::Tcp(l) => {
                Ok(Endpoint::Tcp(l.local_addr().map_err(|e| Error::io("local address", e))?.to_string()))
            }
        }
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Unix(l, _) => l.set_nonblocking(on),
            Listener::Tcp(l) => l.set_nonblocking(on),
        }
    }

    /// Accepts one connection, waiting up to `timeout` (`None` = forever). Fails with
    /// `Timeout` when none came in time, and with `Closed` once `closed` says so after a
    /// [`shutdown`](Self::shutdown) woke it. Works whether the listener blocks or not.
    pub fn accept_timeout(&self, timeout: Option<Duration>, closed: impl Fn() -> bool) -> Result<Stream, Error> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if closed() {
                return Err(Error::Closed("the listener was closed".into()));
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let ready = sys::wait_readable(self.as_raw_fd(), left).map_err(|e| Error::io("wait for a connection", e))?;
            if closed() {
                return Err(Error::Closed("the listener was closed".into()));
            }
            if !ready {
                return Err(Error::Timeout("no connection arrived in time".into()));
            }
            self.set_nonblocking(true).map_err(|e| Error::io("accept", e))?;
            match self.accept() {
                Ok(s) => return Ok(s),
                // The connection went away between the wake-up and the accept: wait again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("accept", e)),
            }
        }
    }

    /// Stops accepting: wakes every thread waiting in [`accept_timeout`](Self::accept_timeout)
    /// (the descriptor stays readable, so callers check their own closed flag first).
    pub fn shutdown(&self) {
        let _ = sys::shutdown(self.as_raw_fd(), Shutdown::Both);
    }

    /// Accepts one connection.
    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix(l, _) => l.as_raw_fd(),
            Listener::Tcp(l) => l.as_raw_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, Some(path)) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds a socket file: the parent must be a real directory owned by this user and writable by
/// no one else (it is created 0700 when missing, if its own parent exists); a live socket at
/// the path is never taken over, a stale one is replaced, anything else at the path is left
/// alone and refused.
fn bind_path(path: &Path) -> Result<Listener, Error> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    check_or_create_private_dir(&parent)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(Error::io(
                    "bind",
                    io::Error::new(io::ErrorKind::AddrInUse, format!("{} is in use by a live server", path.display())),
                ));
            }
            std::fs::remove_file(path).map_err(|e| Error::io("remove stale socket", e))?;
        }
        Ok(_) => {
            return Err(Error::PermissionDenied(
                format!("{} exists and is not a socket; refusing to replace it", path.display()).into(),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("inspect socket path", e)),
    }
    let listener = UnixListener::bind(path)
        .map_err(|e| Error::io("bind", io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("chmod 0600 socket", e))?;
    Ok(Listener::Unix(listener, Some(path.to_owned())))
}

fn check_or_create_private_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(dir) {
        // Only the socket's own directory is created, never a chain of them: a typo in a
        // path must not build a tree (as root, from `/`).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| {
                let why = if e.kind() == io::ErrorKind::NotFound {
                    format!(
                        "{}: its parent directory does not exist (librp creates only the socket's own directory, not its parents)",
                        dir.display()
                    )
                } else {
                    format!("{}: {e}", dir.display())
                };
                Error::io("create socket directory", io::Error::new(e.kind(), why))
            })
        }
        Err(e) => Err(Error::io("inspect socket directory", e)),
        Ok(meta) => {
            let refuse = |why: String| {
                Err(Error::PermissionDenied(
                    format!("socket directory {}: {why}; use a directory only this user can write", dir.display())
                        .into(),
                ))
            };
            if meta.file_type().is_symlink() {
                return refuse("is a symbolic link".into());
            }
            if !meta.is_dir() {
                return refuse("is not a directory".into());
            }
            if meta.uid() != effective_uid() {
                return refuse(format!("is owned by uid {}, not {}", meta.uid(), effective_uid()));
            }
            if meta.mode() & 0o022 != 0 {
                return refuse(format!("is writable by group or others (mode {:o})", meta.mode() & 0o777));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(Endpoint::parse("/run/x.sock").unwrap(), Endpoint::Path("/run/x.sock".into()));
        assert_eq!(Endpoint::parse("unix:rel.sock").unwrap(), Endpoint::Path("rel.sock".into()));
        assert_eq!(Endpoint::parse("@rp-demo").unwrap(), Endpoint::Abstract("rp-demo".into()));
        assert_eq!(Endpoint::parse("tcp://127.0.0.1:7000").unwrap(), Endpoint::Tcp("127.0.0.1:7000".into()));
        assert!(Endpoint::parse("tcp://nohost").is_err());
        assert!(Endpoint::parse("").is_err());
        assert!(Endpoint::parse(&"a".repeat(200)).is_err());
    }
}
