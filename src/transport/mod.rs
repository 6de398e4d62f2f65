//! The seam between librp and the operating system: endpoints (Unix socket paths, Linux
//! abstract names, TCP, TLS over TCP), connected [`Stream`]s, [`Listener`]s and the one [`Acceptor`] of the
//! servers (peer policy, connection limits), peer credentials, descriptor passing, readiness
//! ([`ReadySignal`], [`ReadinessSet`], [`WakePair`], waits) and what the kernel says about a
//! process. The roles (`push`, `broker`, `session`, `mux`, `handoff`) reach the OS only through
//! here. Platform code lives in one place per family (`unix/` for Linux and macOS, `windows/`);
//! a socket, pipe or event as the OS names it is a [`RawDescriptor`].
//!
//! Listening sockets librp creates are owner-only: a path socket is mode 0600 inside a
//! directory that only this user can write (created 0700 when missing; only that directory,
//! never its missing parents); [`SocketAccess`] can open a path socket to one group. Every send uses
//! `MSG_NOSIGNAL`, so a vanished peer never raises SIGPIPE in the host process. On Windows the
//! local endpoint is a named pipe whose DACL grants access to this user alone (see `windows/`).

mod acceptor;
mod listener;
mod stream;
mod tls;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;
mod x509;

#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
use windows as sys;

pub use acceptor::{AcceptPolicy, Acceptor, Rejection};
pub use listener::{ListenOptions, Listener, SocketAccess};
pub use stream::{connect, connect_with, refuse_tls, NonBlockingReads, SocketIo, Stream, SwitchableReads};
pub use sys::{
    boot_id, deregister, fill_random, process_alive, process_exe, process_start_unix_ms, recv_with_fd, register, reregister,
    send_with_fd, AsDescriptor, AsRawDescriptor, OwnedDescriptor, RawDescriptor, ReadinessSet, ReadySignal, WakePair,
    MAX_FDS_PER_MESSAGE,
};
pub use tls::{
    read_pem_file, tls_failure, untangle as untangle_tls_error, ClientAuth, TlsClientConfig, TlsClientOptions, TlsFailure,
    TlsIdentity, TlsServerConfig, TlsServerOptions, TlsStream,
};
#[cfg(unix)]
pub use unix::{BorrowedDescriptor, DeadlineSocket, UnixListener, UnixStream};
#[cfg(windows)]
pub use windows::{adopt_handle, duplicate_handle_to, names_pipe, PipeListener, PipeStream};

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::path::PathBuf;
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
    /// TLS over TCP to or at `host:port` (written `tls://host:port`).
    Tls(String),
    /// A Windows named pipe, by its bare name: `name` is the pipe `\\.\pipe\name` (written
    /// with that prefix).
    #[cfg(windows)]
    Pipe(String),
}

impl Endpoint {
    /// Parses `tcp://host:port`, `tls://host:port`, `@name` / `abstract:name`, `unix:PATH` or a
    /// plain path. On Windows a plain string names a pipe: `\\.\pipe\name` and bare `name`
    /// are the same pipe.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::invalid_argument("endpoint is empty"));
        }
        if let Some(addr) = s.strip_prefix("tls://") {
            if addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
                return Err(Error::invalid_argument(format!("TLS endpoint {s:?} is not tls://host:port")));
            }
            return Ok(Endpoint::Tls(addr.to_owned()));
        }
        if let Some(addr) = s.strip_prefix("tcp://") {
            if addr.rsplit_once(':').is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err()) {
                return Err(Error::invalid_argument(format!("TCP endpoint {s:?} is not tcp://host:port")));
            }
            return Ok(Endpoint::Tcp(addr.to_owned()));
        }
        if let Some(name) = s.strip_prefix('@').or_else(|| s.strip_prefix("abstract:")) {
            if cfg!(not(target_os = "linux")) {
                return Err(Error::invalid_argument(format!(
                    "{s}: abstract socket names exist on Linux only; use a socket path"
                )));
            }
            if name.is_empty() || name.len() > 107 {
                return Err(Error::invalid_argument("abstract socket name must be 1-107 bytes"));
            }
            return Ok(Endpoint::Abstract(name.to_owned()));
        }
        #[cfg(windows)]
        if !s.starts_with("unix:") {
            return sys::parse_pipe_name(s).map(Endpoint::Pipe);
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
            Endpoint::Tls(a) => write!(f, "tls://{a}"),
            #[cfg(windows)]
            Endpoint::Pipe(n) => write!(f, r"\\.\pipe\{n}"),
        }
    }
}

/// A peer's identity as the kernel reports it (Unix sockets; on Windows a named pipe's client
/// process id, with `uid` and `gid` 0: a pipe librp creates admits only its own user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    /// Process id at connect time.
    pub pid: u32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

/// The executable path a daemon identity reports for `exe` (a path [`process_exe`] gave): the
/// canonical path on Unix; on Windows the path as given (running-process reports
/// `current_exe()` unresolved there, a plain drive path).
pub fn identity_exe_path(exe: &std::path::Path) -> io::Result<PathBuf> {
    #[cfg(unix)]
    return std::fs::canonicalize(exe);
    #[cfg(windows)]
    Ok(exe.to_owned())
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    sys::effective_uid()
}

/// `send(2)` with `MSG_NOSIGNAL` on any socket descriptor.
pub fn send_nosignal(fd: RawDescriptor, buf: &[u8]) -> io::Result<usize> {
    sys::send_nosignal(fd, buf)
}

/// "No limit" where a limit is kept as a `Duration` (an option of a connect or a server): longer
/// than any process runs, and still far from overflowing `Instant` arithmetic.
pub const NO_LIMIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Waits up to `timeout` (`None` = forever) for `fd` to be readable or hung up; false on timeout.
pub fn wait_readable(fd: RawDescriptor, timeout: Option<Duration>) -> io::Result<bool> {
    sys::wait_readable(fd, timeout)
}

/// `send(2)` with `MSG_NOSIGNAL | MSG_DONTWAIT` on any socket descriptor.
pub fn send_nonblocking(fd: RawDescriptor, buf: &[u8]) -> io::Result<usize> {
    sys::send_nonblocking(fd, buf)
}

/// `recv(2)` with `MSG_DONTWAIT` on any socket descriptor.
pub fn recv_nonblocking(fd: RawDescriptor, buf: &mut [u8]) -> io::Result<usize> {
    sys::recv_dontwait(fd, buf)
}

/// Shuts one or both directions of any socket descriptor (`shutdown(2)`).
pub fn shutdown(fd: RawDescriptor, how: Shutdown) -> io::Result<()> {
    sys::shutdown(fd, how)
}

/// Kernel-reported credentials of the peer of a Unix socket descriptor.
pub fn peer_credentials(fd: RawDescriptor) -> io::Result<PeerCredentials> {
    sys::peer_credentials(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn endpoints_parse() {
        assert_eq!(Endpoint::parse("/run/x.sock").unwrap(), Endpoint::Path("/run/x.sock".into()));
        assert_eq!(Endpoint::parse("unix:rel.sock").unwrap(), Endpoint::Path("rel.sock".into()));
        assert_eq!(Endpoint::parse("@rp-demo").unwrap(), Endpoint::Abstract("rp-demo".into()));
        assert_eq!(Endpoint::parse("tcp://127.0.0.1:7000").unwrap(), Endpoint::Tcp("127.0.0.1:7000".into()));
        assert!(Endpoint::parse("tcp://nohost").is_err());
        assert_eq!(Endpoint::parse("tls://localhost:7000").unwrap(), Endpoint::Tls("localhost:7000".into()));
        assert_eq!(Endpoint::parse("tls://localhost:7000").unwrap().to_string(), "tls://localhost:7000");
        assert!(Endpoint::parse("tls://nohost").is_err());
        assert!(Endpoint::parse("").is_err());
        assert!(Endpoint::parse(&"a".repeat(200)).is_err());
    }

    #[cfg(windows)]
    #[test]
    fn pipe_endpoints_parse() {
        assert_eq!(Endpoint::parse(r"\\.\pipe\rp-demo").unwrap(), Endpoint::Pipe("rp-demo".into()));
        assert_eq!(Endpoint::parse("rp-demo").unwrap(), Endpoint::Pipe("rp-demo".into()));
        assert_eq!(Endpoint::parse("rp-demo").unwrap().to_string(), r"\\.\pipe\rp-demo");
        assert_eq!(Endpoint::parse("tcp://127.0.0.1:7000").unwrap(), Endpoint::Tcp("127.0.0.1:7000".into()));
        assert!(Endpoint::parse("@rp-demo").is_err());
        assert!(Endpoint::parse(r"\\.\pipe\").is_err());
        assert!(Endpoint::parse(&"a".repeat(300)).is_err());
    }
}
