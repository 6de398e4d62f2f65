//! The Unix family (Linux, and macOS where it differs) of the transport seam: every system call
//! librp makes, and the only place outside `src/ffi` with `unsafe` code. Sends that never raise
//! SIGPIPE, kernel-reported peer credentials, the effective uid, non-blocking reads and peeks,
//! `shutdown`, `poll`, the readiness sets (`epoll` on Linux, `kqueue` on macOS), descriptor
//! passing (`SCM_RIGHTS`), what the kernel says about a process (`/proc` on Linux, `sysctl` and
//! `proc_pidinfo` on macOS), and the registration of raw sockets with the event loop's poller. Every
//! `unsafe` block here says why it is sound. Descriptor passing and the deadline socket are in
//! `fdpass`, `/proc` in `process`. The Windows family (`../windows/`) has the same names.
#![allow(unsafe_code)]

mod fdpass;
mod process;

pub use fdpass::{recv_with_fd, send_with_fd, BorrowedDescriptor, DeadlineSocket, MAX_FDS_PER_MESSAGE};
pub use process::{boot_id, process_alive, process_exe, process_start_unix_ms};

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
#[cfg(target_os = "linux")]
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
#[cfg(target_os = "linux")]
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{Endpoint, Listener, PeerCredentials, Stream};
use crate::error::{Error, Result};

/// A socket or other pollable object as the operating system names it (a Unix descriptor).
/// Borrowed: whoever handed it out keeps it open and closes it.
pub type RawDescriptor = RawFd;
/// An owned [`RawDescriptor`]: closed when dropped.
pub type OwnedDescriptor = OwnedFd;
/// Whatever can lend its descriptor (a socket librp or the caller owns); the bound of the
/// descriptor-passing calls.
pub use std::os::fd::AsFd as AsDescriptor;
/// Whatever has a [`RawDescriptor`] (read it with `as_raw_fd`).
pub use std::os::fd::AsRawFd as AsRawDescriptor;
/// A connected Unix stream socket.
pub use std::os::unix::net::UnixStream;
/// A listening Unix stream socket.
pub use std::os::unix::net::UnixListener;
/// The local stream of this family ([`Stream::Unix`]).
pub(crate) type LocalStream = UnixStream;
/// The local listener of this family ([`Listener::Unix`]).
pub(crate) type LocalListener = UnixListener;
/// A local listener as the event loop's poller accepts from it.
pub(crate) type LocalAccepting = mio::net::UnixListener;

/// `send(2)` with `MSG_NOSIGNAL`: a vanished peer is `EPIPE`, never a SIGPIPE in the host process.
pub(crate) fn send_nosignal(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid readable slice of `buf.len()` bytes for the duration of the call;
    // an invalid fd makes send fail with EBADF, which is reported, not undefined behaviour.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Turns on TCP keepalive: the first probe after `idle` without traffic, then one every
/// `interval`, the connection declared dead after `probes` unanswered.
pub(crate) fn set_tcp_keepalive(fd: RawFd, idle: std::time::Duration, interval: std::time::Duration, probes: u32) -> io::Result<()> {
    let set = |level, name, value: libc::c_int| {
        // SAFETY: a valid socket descriptor and a c_int option value of the right size.
        let rc = unsafe {
            libc::setsockopt(fd, level, name, (&value as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
        };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    };
    let secs = |d: std::time::Duration| d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int;
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    #[cfg(target_os = "linux")]
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
    #[cfg(target_os = "macos")]
    set(libc::IPPROTO_TCP, libc::TCP_KEEPALIVE, secs(idle))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(interval))?;
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, probes.clamp(1, i32::MAX as u32) as libc::c_int)
}

/// The peer's pid, uid and gid as the kernel recorded them at connect time (`SO_PEERCRED`).
#[cfg(target_os = "linux")]
pub(crate) fn peer_credentials(fd: RawFd) -> io::Result<PeerCredentials> {
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes and `len` holds the size of `cred`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials { pid: cred.pid as u32, uid: cred.uid, gid: cred.gid })
}

/// The peer's uid and gid (`getpeereid`) and pid (`LOCAL_PEERPID`) as the kernel recorded them.
#[cfg(target_os = "macos")]
pub(crate) fn peer_credentials(fd: RawFd) -> io::Result<PeerCredentials> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: `uid` and `gid` are valid for writes.
    if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut pid: libc::pid_t = 0;
    let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
    // SAFETY: `pid` and `len` are valid for writes and `len` holds the size of `pid`.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_LOCAL, libc::LOCAL_PEERPID, (&mut pid as *mut libc::pid_t).cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCredentials { pid: pid as u32, uid, gid })
}

/// Sockets librp did not create itself (accepted, adopted, received) never raise SIGPIPE on
/// macOS either: `SO_NOSIGPIPE`, besides `MSG_NOSIGNAL` on every send. Nothing to do on Linux.
pub(crate) fn no_sigpipe(fd: RawFd) {
    #[cfg(target_os = "macos")]
    {
        let on: libc::c_int = 1;
        // SAFETY: a c_int option value of the right size; a bad fd only fails the call.
        let _ = unsafe {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, (&on as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as libc::socklen_t)
        };
    }
    #[cfg(not(target_os = "macos"))]
    let _ = fd;
}

/// Fills `buf` from the operating system's random source (`/dev/urandom`).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

pub(crate) fn effective_gid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether the peer of a socket has closed it with nothing left to read (a `recv` with
/// `MSG_PEEK | MSG_DONTWAIT` that returns 0, or a reset). Never consumes or blocks.
pub(crate) fn peer_gone(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: `byte` is a valid writable byte for the duration of the call.
    let n = unsafe { libc::recv(fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    n == 0 || (n < 0 && matches!(io::Error::last_os_error().raw_os_error(), Some(libc::ECONNRESET | libc::EPIPE)))
}

/// `recv(2)` with `MSG_DONTWAIT`: never blocks, whatever the descriptor's mode.
pub(crate) fn recv_dontwait(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `shutdown(2)` on a socket descriptor: `SHUT_WR` ends what is sent (the peer reads the end),
/// `SHUT_RDWR` also wakes a thread blocked reading it.
pub(crate) fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown(2) takes no memory; an invalid descriptor is reported as EBADF.
    if unsafe { libc::shutdown(fd, how) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Waits up to `timeout_ms` (negative = forever) for `fd` to be readable (or hung up).
/// Returns false on timeout. EINTR is retried with the time left.
pub(crate) fn wait_readable(fd: RawFd, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    wait_for(fd, libc::POLLIN, timeout)
}

/// Waits up to `timeout` for `fd` to be writable (or hung up); false on timeout.
pub(crate) fn wait_writable(fd: RawFd, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    wait_for(fd, libc::POLLOUT, timeout)
}

fn wait_for(fd: RawFd, events: libc::c_short, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so a sub-millisecond remainder still waits.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd { fd, events, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // A limit beyond what one poll can wait (about 24 days) waits again.
        if n == 0 && ms == i32::MAX && deadline.is_some_and(|d| std::time::Instant::now() < d) {
            continue;
        }
        return Ok(n > 0);
    }
}

/// A level-triggered epoll set over `fds` (readable when any of them is), usable as one
/// pollable descriptor by an application's own event loop.
#[cfg(target_os = "linux")]
pub(crate) fn readiness_set(fds: &[RawFd]) -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 has no memory preconditions.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `epfd` is a fresh descriptor this function owns from here on.
    let owned = unsafe { OwnedFd::from_raw_fd(epfd) };
    for &fd in fds {
        readiness_set_member(epfd, fd, true)?;
    }
    Ok(owned)
}

/// Adds `fd` to (or removes it from) an epoll set made by [`readiness_set`]. Adding a
/// descriptor that is already readable makes the set readable at once.
#[cfg(target_os = "linux")]
pub(crate) fn readiness_set_member(set: RawFd, fd: RawFd, member: bool) -> io::Result<()> {
    let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
    let op = if member { libc::EPOLL_CTL_ADD } else { libc::EPOLL_CTL_DEL };
    // SAFETY: valid epoll fd, descriptor and event struct for the call.
    if unsafe { libc::epoll_ctl(set, op, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A kqueue watching `fds` for reading, level-triggered (no `EV_CLEAR`): the kqueue descriptor
/// is readable while any of them is, so it serves as one pollable descriptor.
#[cfg(target_os = "macos")]
pub(crate) fn readiness_set(fds: &[RawFd]) -> io::Result<OwnedFd> {
    // SAFETY: kqueue has no memory preconditions.
    let kq = unsafe { libc::kqueue() };
    if kq < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `kq` is a fresh descriptor this function owns from here on.
    let owned = unsafe { OwnedFd::from_raw_fd(kq) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(kq, libc::F_SETFD, libc::FD_CLOEXEC) };
    for &fd in fds {
        readiness_set_member(kq, fd, true)?;
    }
    Ok(owned)
}

/// Adds `fd` to (or removes it from) a kqueue made by [`readiness_set`].
#[cfg(target_os = "macos")]
pub(crate) fn readiness_set_member(set: RawFd, fd: RawFd, member: bool) -> io::Result<()> {
    // SAFETY: an all-zero kevent is a valid value to fill in.
    let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
    ev.ident = fd as libc::uintptr_t;
    ev.filter = libc::EVFILT_READ;
    ev.flags = if member { libc::EV_ADD } else { libc::EV_DELETE };
    // SAFETY: one valid change and no event buffer for the call.
    if unsafe { libc::kevent(set, &ev, 1, std::ptr::null_mut(), 0, std::ptr::null()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `send(2)` with `MSG_NOSIGNAL | MSG_DONTWAIT`: never blocks, never raises SIGPIPE.
pub(crate) fn send_nonblocking(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid readable slice of `buf.len()` bytes for the duration of the call.
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets: Unix streams and listeners, socket files, abstract names
// ---------------------------------------------------------------------------------------------

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
            Stream::Tls(s) => s.socket().as_fd(),
        }
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Tls(s) => s.socket().as_raw_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix(l, _) => l.as_raw_fd(),
            Listener::Tcp(l, _) => l.as_raw_fd(),
        }
    }
}

impl Stream {
    /// Adopts a connected Unix stream socket (one received by a handoff, say); the stream owns
    /// and closes it.
    pub fn from_unix_descriptor(socket: OwnedDescriptor) -> Stream {
        no_sigpipe(socket.as_raw_fd());
        Stream::Unix(UnixStream::from(socket))
    }

    /// The socket as the OS names it, for the calls below that take one and for event loops;
    /// owned by the stream.
    pub fn descriptor(&self) -> RawDescriptor {
        self.as_raw_fd()
    }

}

impl Listener {
    /// The listening socket as the OS names it; owned by the listener.
    pub(super) fn descriptor(&self) -> RawFd {
        self.as_raw_fd()
    }
}

/// A stream the event loop's poller accepted, as std's (still non-blocking).
pub(super) fn std_unix_stream(s: mio::net::UnixStream) -> UnixStream {
    no_sigpipe(s.as_raw_fd());
    OwnedFd::from(s).into()
}

/// A second, non-blocking handle to a local listener for the event loop's poller.
pub(super) fn local_accepting(l: &UnixListener) -> io::Result<LocalAccepting> {
    let l = l.try_clone()?;
    l.set_nonblocking(true)?;
    Ok(mio::net::UnixListener::from_std(l))
}

/// Registers a local listener with the event loop's poller (readable).
pub(super) fn register_accepting(l: &mut LocalAccepting, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
    registry.register(l, token, mio::Interest::READABLE)
}

/// Accepts one connection from a local listener registered with the poller (non-blocking).
pub(super) fn accept_local(l: &LocalAccepting) -> io::Result<UnixStream> {
    l.accept().map(|(s, _)| std_unix_stream(s))
}

/// Accepts one connection from a local listener (waiting unless it is non-blocking).
pub(super) fn accept_blocking(l: &UnixListener) -> io::Result<UnixStream> {
    l.accept().map(|(s, _)| s)
}

/// Writes to a stream with `MSG_NOSIGNAL`.
pub(super) fn stream_write(s: &Stream, buf: &[u8]) -> io::Result<usize> {
    send_nosignal(s.descriptor(), buf)
}

/// Connects to a Unix socket path.
pub(super) fn connect_path(path: &Path) -> Result<io::Result<UnixStream>> {
    Ok(UnixStream::connect(path))
}

/// The descriptor of a TCP stream.
pub(crate) fn tcp_descriptor(s: &std::net::TcpStream) -> RawFd {
    s.as_raw_fd()
}

/// A TCP stream the event loop's poller accepted, as std's (still non-blocking).
pub(super) fn std_tcp_stream(s: mio::net::TcpStream) -> std::net::TcpStream {
    no_sigpipe(s.as_raw_fd());
    OwnedFd::from(s).into()
}

/// The endpoint a Unix listener is bound to.
pub(super) fn unix_local_endpoint(l: &UnixListener) -> Result<Endpoint> {
    let addr = l.local_addr().map_err(|e| Error::io("local address", e))?;
    if let Some(p) = addr.as_pathname() {
        return Ok(Endpoint::Path(p.to_owned()));
    }
    #[cfg(target_os = "linux")]
    if let Some(n) = addr.as_abstract_name() {
        return Ok(Endpoint::Abstract(String::from_utf8_lossy(n).into_owned()));
    }
    Err(Error::invalid_argument("unnamed Unix socket"))
}

/// Connects to a Linux abstract socket name (an invalid name fails with `context`).
#[cfg(target_os = "linux")]
pub(super) fn connect_abstract(name: &str, context: &'static str) -> Result<io::Result<UnixStream>> {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(|e| Error::io(context, e))?;
    Ok(UnixStream::connect_addr(&addr))
}

/// Binds a Linux abstract socket name.
#[cfg(target_os = "linux")]
pub(super) fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)
}

/// Abstract socket names are Linux's alone.
#[cfg(not(target_os = "linux"))]
pub(super) fn connect_abstract(name: &str, _context: &'static str) -> Result<io::Result<UnixStream>> {
    Err(Error::invalid_argument(format!("@{name}: abstract socket names exist on Linux only; use a socket path")))
}

/// Abstract socket names are Linux's alone (`Endpoint::parse` refuses them elsewhere).
#[cfg(not(target_os = "linux"))]
pub(super) fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("@{name}: abstract socket names exist on Linux only; use a socket path")))
}

/// Binds a socket file: the parent must be a real directory owned by this user and writable by
/// no one else (it is created 0700 when missing, if its own parent exists); a live socket at
/// the path is never taken over, a stale one is replaced, anything else at the path is left
/// alone and refused.
pub(super) fn bind_path(path: &Path, access: &super::SocketAccess) -> Result<(UnixListener, PathBuf)> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // A socket open to a group needs a directory that group can pass through.
    let reach = (access.mode & 0o060 != 0).then(|| access.group.unwrap_or_else(effective_gid));
    check_or_create_private_dir(&parent, reach)?;
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
    if let Some(gid) = access.group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| group_error(path, gid, e))?;
    }
    if access.mode != 0o600 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode))
            .map_err(|e| Error::io("chmod socket", io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
    }
    Ok((listener, path.to_owned()))
}

/// Giving a file to a group failed: EPERM means this process is neither root nor a member.
fn group_error(path: &Path, gid: u32, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        return Error::PermissionDenied(
            format!("{}: cannot give it to group {gid} (only root or a member of the group can)", path.display()).into(),
        );
    }
    Error::io("chown socket", io::Error::new(e.kind(), format!("{}: group {gid}: {e}", path.display())))
}

/// Checks the socket's directory, or creates it: 0700, or 0710 with `group` so that group can
/// pass through to the socket.
fn check_or_create_private_dir(dir: &Path, group: Option<u32>) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        // Only the socket's own directory is created, never a chain of them: a typo in a
        // path must not build a tree (as root, from `/`).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mode = if group.is_some() { 0o710 } else { 0o700 };
            std::fs::DirBuilder::new().mode(mode).create(dir).map_err(|e| {
                let why = if e.kind() == io::ErrorKind::NotFound {
                    format!(
                        "{}: its parent directory does not exist (librp creates only the socket's own directory, not its parents)",
                        dir.display()
                    )
                } else {
                    format!("{}: {e}", dir.display())
                };
                Error::io("create socket directory", io::Error::new(e.kind(), why))
            })?;
            if let Some(gid) = group {
                std::os::unix::fs::chown(dir, None, Some(gid)).map_err(|e| group_error(dir, gid, e))?;
                // The umask may have taken the group's search bit.
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o710))
                    .map_err(|e| Error::io("chmod socket directory", e))?;
            }
            Ok(())
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
            if let Some(gid) = group {
                let passable = (meta.gid() == gid && meta.mode() & 0o010 != 0) || meta.mode() & 0o001 != 0;
                if !passable {
                    return Err(Error::PermissionDenied(
                        format!(
                            "socket directory {} (mode {:o}, group {}) does not let group {gid} reach the socket; make it 0710 or 0750 with group {gid}",
                            dir.display(),
                            meta.mode() & 0o777,
                            meta.gid()
                        )
                        .into(),
                    ));
                }
            }
            Ok(())
        }
    }
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
    pub fn new() -> Result<ReadySignal> {
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
            if send_nonblocking(self.tx.as_raw_fd(), &[1]).is_ok() {
                self.raised.store(true, Relaxed);
            }
        } else {
            // Raised means exactly one byte is there: one read takes it.
            let mut b = [0u8; 8];
            let _ = recv_dontwait(self.rx.as_raw_fd(), &mut b);
            self.raised.store(false, Relaxed);
        }
    }

    /// The descriptor, readable while the signal is raised. Owned by the signal.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}

// ---------------------------------------------------------------------------------------------
// The event loop's poller (mio) over raw sockets
// ---------------------------------------------------------------------------------------------

/// Adds a socket to an event loop's poller (edge-triggered, as every mio source).
pub fn register(registry: &mio::Registry, socket: RawFd, token: mio::Token, interest: mio::Interest) -> io::Result<()> {
    registry.register(&mut mio::unix::SourceFd(&socket), token, interest)
}

/// Changes what a registered socket is watched for.
pub fn reregister(registry: &mio::Registry, socket: RawFd, token: mio::Token, interest: mio::Interest) -> io::Result<()> {
    registry.reregister(&mut mio::unix::SourceFd(&socket), token, interest)
}

/// Takes a socket out of an event loop's poller.
pub fn deregister(registry: &mio::Registry, socket: RawFd) -> io::Result<()> {
    registry.deregister(&mut mio::unix::SourceFd(&socket))
}

// ---------------------------------------------------------------------------------------------
// Readiness: descriptors an event loop (librp's own or the application's) can wait on
// ---------------------------------------------------------------------------------------------

/// A level-triggered `epoll` set that is one pollable descriptor: readable whenever any member
/// is. Closed when dropped.
#[derive(Debug)]
pub struct ReadinessSet(OwnedFd);

impl ReadinessSet {
    /// A set over `members`.
    pub fn new(members: &[RawFd]) -> io::Result<ReadinessSet> {
        readiness_set(members).map(ReadinessSet)
    }

    /// Adds `member` to (or removes it from) the set. Adding a descriptor that is already
    /// readable makes the set readable at once.
    pub fn set_member(&self, member: RawFd, on: bool) -> io::Result<()> {
        readiness_set_member(self.0.as_raw_fd(), member, on)
    }

    /// Waits up to `timeout` (`None` = forever) for a member to be readable; false on timeout.
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> io::Result<bool> {
        wait_readable(self.0.as_raw_fd(), timeout)
    }

    /// The set's own descriptor (owned by the set).
    pub fn descriptor(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A wake-up channel between threads that an event loop can wait on: [`notify`](Self::notify)
/// makes [`descriptor`](Self::descriptor) readable until [`drain`](Self::drain). Never blocks.
#[derive(Debug)]
pub struct WakePair {
    rx: UnixStream,
    tx: UnixStream,
}

impl WakePair {
    /// A pair with nothing pending.
    pub fn new() -> io::Result<WakePair> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(WakePair { rx, tx })
    }

    /// Makes the descriptor readable (a full buffer already is).
    pub fn notify(&self) {
        let _ = send_nonblocking(self.tx.as_raw_fd(), &[1]);
    }

    /// Takes every pending notification.
    pub fn drain(&self) {
        let mut sink = [0u8; 64];
        while matches!(recv_dontwait(self.rx.as_raw_fd(), &mut sink), Ok(n) if n > 0) {}
    }

    /// The descriptor to wait on (owned by the pair).
    pub fn descriptor(&self) -> RawFd {
        self.rx.as_raw_fd()
    }
}
