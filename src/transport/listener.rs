//! [`Listener`]: a listening socket librp created, owner-only (see the module docs of
//! [`transport`](super)).

use std::io;
use std::net::{Shutdown, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use super::tls::{TlsServerConfig, TlsStream};
use super::{sys, Endpoint, Stream};
use crate::error::Error;

/// How a listener is set up.
#[derive(Debug, Clone, Default)]
pub struct ListenOptions {
    /// Allow a TCP listener on a non-loopback address (callers must then require a token).
    pub allow_remote_tcp: bool,
    /// Who may reach a path socket's file.
    pub socket_access: SocketAccess,
    /// The TLS configuration of a `tls://` endpoint (required there, refused elsewhere).
    pub tls: Option<TlsServerConfig>,
}

/// Who may reach a path socket's file (Unix socket paths only; abstract and TCP endpoints
/// have no file). By default only its owner: mode 0600 in a directory only the owner can enter.
///
/// A daemon serving one group of users sets `mode` 0660 and `group`: the socket file then
/// belongs to that group, and a socket directory librp creates is 0710 with that group (the
/// group may pass through it, not list it); an existing directory must let that group pass. The server's own peer check still applies, so such
/// a server also allows other uids. Nothing is ever granted to others, and a directory is never
/// group- or world-writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketAccess {
    /// Permission bits of the socket file: 0600, or with group bits (0660, 0640, 0620); never
    /// bits for others.
    pub mode: u32,
    /// The group id the socket file (and a directory librp creates) belongs to; `None` keeps
    /// the process's group.
    pub group: Option<u32>,
}

impl Default for SocketAccess {
    fn default() -> Self {
        SocketAccess { mode: 0o600, group: None }
    }
}

impl SocketAccess {
    /// Checks the mode: owner read-write, group at most read-write, nothing for others.
    pub fn check(&self) -> Result<(), Error> {
        if self.mode & !0o660 != 0 || self.mode & 0o600 != 0o600 {
            return Err(Error::invalid_argument(format!(
                "socket mode {:04o}: the owner must have read-write (0600), the group at most read-write (0660), others nothing",
                self.mode
            )));
        }
        Ok(())
    }
}

/// A listening socket; a path socket's file is removed when the listener is dropped.
#[derive(Debug)]
pub enum Listener {
    /// A Unix listener and the socket file it owns, if any (on Windows, a named-pipe listener:
    /// [`PipeListener`](super::PipeListener), and no file).
    Unix(sys::LocalListener, Option<PathBuf>),
    /// A TCP listener; with a TLS configuration, a `tls://` one.
    Tcp(TcpListener, Option<TlsServerConfig>),
}

impl Listener {
    /// Binds an endpoint, owner-only unless `opts.socket_access` says otherwise (see the module
    /// docs).
    pub fn bind(endpoint: &Endpoint, opts: &ListenOptions) -> Result<Listener, Error> {
        opts.socket_access.check()?;
        match (endpoint, &opts.tls) {
            (Endpoint::Tls(_), None) => {
                return Err(Error::Config(format!("{endpoint}: a TLS endpoint needs a certificate and key").into()))
            }
            (_, Some(_)) if !matches!(endpoint, Endpoint::Tls(_)) => {
                return Err(Error::invalid_argument(format!("{endpoint}: TLS options are for tls:// endpoints only")))
            }
            _ => {}
        }
        match endpoint {
            Endpoint::Path(path) => {
                sys::bind_path(path, &opts.socket_access).map(|(l, path)| Listener::Unix(l, Some(path)))
            }
            Endpoint::Abstract(name) => {
                let l = sys::bind_abstract(name)
                    .map_err(|e| Error::io("bind", io::Error::new(e.kind(), format!("{endpoint}: {e}"))))?;
                Ok(Listener::Unix(l, None))
            }
            #[cfg(windows)]
            Endpoint::Pipe(name) => sys::PipeListener::bind(name)
                .map(|l| Listener::Unix(l, None))
                .map_err(|e| Error::io("bind", io::Error::new(e.kind(), format!("{endpoint}: {e}")))),
            Endpoint::Tcp(addr) | Endpoint::Tls(addr) => {
                let l = TcpListener::bind(addr.as_str())
                    .map_err(|e| Error::io("bind", io::Error::new(e.kind(), format!("{endpoint}: {e}"))))?;
                let local = l.local_addr().map_err(|e| Error::io("bind", e))?;
                if !local.ip().is_loopback() && !opts.allow_remote_tcp {
                    return Err(Error::PermissionDenied(
                        format!("{endpoint} is not a loopback address; remote TCP must be enabled explicitly and requires an auth token").into(),
                    ));
                }
                Ok(Listener::Tcp(l, opts.tls.clone()))
            }
        }
    }

    /// The address actually bound (useful with `tcp://127.0.0.1:0`).
    pub fn local_endpoint(&self) -> Result<Endpoint, Error> {
        match self {
            Listener::Unix(l, _) => sys::unix_local_endpoint(l),
            Listener::Tcp(l, tls) => {
                let addr = l.local_addr().map_err(|e| Error::io("local address", e))?.to_string();
                Ok(if tls.is_some() { Endpoint::Tls(addr) } else { Endpoint::Tcp(addr) })
            }
        }
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Unix(l, _) => l.set_nonblocking(on),
            Listener::Tcp(l, _) => l.set_nonblocking(on),
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
            let look = self.closed_look();
            let wait = match (left, look) {
                (Some(l), Some(k)) => Some(l.min(k)),
                (l, k) => l.or(k),
            };
            let ready = sys::wait_readable(self.descriptor(), wait).map_err(|e| Error::io("wait for a connection", e))?;
            if closed() {
                return Err(Error::Closed("the listener was closed".into()));
            }
            if !ready {
                // A wait cut short to look at `closed`: wait on.
                if deadline.map_or(look.is_some(), |d| std::time::Instant::now() < d) {
                    continue;
                }
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

    /// How long one wait in [`accept_timeout`](Self::accept_timeout) may last before it looks at
    /// `closed` again, where [`shutdown`](Self::shutdown) cannot wake the wait: a TCP listener on
    /// Windows, where `shutdown` of a listening socket fails (`WSAENOTCONN`) and leaves it
    /// unreadable. `None`: the wait is woken.
    fn closed_look(&self) -> Option<Duration> {
        match self {
            Listener::Tcp(..) if cfg!(windows) => Some(Duration::from_millis(50)),
            _ => None,
        }
    }

    /// Stops accepting: wakes every thread waiting in [`accept_timeout`](Self::accept_timeout)
    /// (the descriptor stays readable, so callers check their own closed flag first).
    pub fn shutdown(&self) {
        let _ = sys::shutdown(self.descriptor(), Shutdown::Both);
    }

    /// Accepts one connection.
    pub fn accept(&self) -> io::Result<Stream> {
        let stream = self.accept_socket()?;
        sys::no_sigpipe(stream.descriptor());
        Ok(stream)
    }

    fn accept_socket(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(l, _) => sys::accept_blocking(l).map(Stream::Unix),
            Listener::Tcp(l, tls) => l.accept().and_then(|(s, _)| {
                let _ = s.set_nodelay(true);
                match tls {
                    None => Ok(Stream::Tcp(s)),
                    Some(config) => TlsStream::server(s, config).map(Stream::Tls),
                }
            }),
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

