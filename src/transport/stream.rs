//! [`Stream`]: a connected socket (Unix, TCP or TLS over TCP; on Windows a named pipe, TCP or
//! TLS) whose writes never raise SIGPIPE, the readers librp's roles put over one, [`SocketIo`]
//! (non-blocking I/O on a connection without owning it), and [`connect`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::tls::{TlsClientConfig, TlsClientOptions, TlsIdentity, TlsStream};
use super::{sys, Endpoint, PeerCredentials, RawDescriptor};
use crate::error::Error;

/// A connected byte stream (Unix, TCP or TLS) whose writes never raise SIGPIPE.
#[derive(Debug)]
pub enum Stream {
    /// The local kind: a Unix domain socket (on Windows, a named pipe: [`PipeStream`](super::PipeStream)).
    Unix(sys::LocalStream),
    /// A TCP socket.
    Tcp(TcpStream),
    /// A TLS connection over TCP; clones share it.
    Tls(Arc<TlsStream>),
}

impl Stream {
    /// Sets the read timeout (None = block).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.socket().set_read_timeout(t),
        }
    }

    /// Sets the write timeout (None = block).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Tls(s) => s.socket().set_write_timeout(t),
        }
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_nonblocking(on),
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Tls(s) => s.socket().set_nonblocking(on),
        }
    }

    /// Shuts down one or both directions; wakes threads blocked reading it.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.shutdown(how),
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Tls(s) => s.shutdown(how),
        }
    }

    /// A second handle to the same socket.
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Tls(s) => Stream::Tls(Arc::clone(s)),
        })
    }

    /// The kernel-reported credentials of the peer; None for TCP, which has none.
    pub fn peer_credentials(&self) -> Option<PeerCredentials> {
        match self {
            Stream::Unix(_) => sys::peer_credentials(self.descriptor()).ok(),
            Stream::Tcp(_) | Stream::Tls(_) => None,
        }
    }

    /// The verified certificate identity of the peer of a TLS connection (a client that
    /// presented one, under mutual TLS); None otherwise.
    pub fn tls_identity(&self) -> Option<TlsIdentity> {
        match self {
            Stream::Tls(s) => s.peer_identity(),
            _ => None,
        }
    }

    /// Non-blocking I/O on this connection for a holder that does not own it.
    pub fn io(&self) -> SocketIo {
        match self {
            Stream::Tls(s) => SocketIo::Tls(Arc::clone(s)),
            _ => SocketIo::Plain(self.descriptor()),
        }
    }

    /// Whether decrypted bytes of a TLS connection wait to be read: the socket itself may then
    /// not be readable. Never on a plain socket.
    pub fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Tls(s) => s.has_buffered_input(),
            _ => false,
        }
    }

    /// Waits up to `timeout` for something to read (decrypted bytes already buffered count).
    pub fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        if let Stream::Tls(s) = self {
            if s.has_buffered_input() {
                return Ok(true);
            }
        }
        sys::wait_readable(self.descriptor(), timeout)
    }

    /// Turns on TCP keepalive (see [`sys::set_tcp_keepalive`]); nothing to do on a Unix socket.
    pub fn set_keepalive(&self, idle: Duration, interval: Duration, probes: u32) -> io::Result<()> {
        match self {
            Stream::Unix(_) => Ok(()),
            Stream::Tcp(_) | Stream::Tls(_) => sys::set_tcp_keepalive(self.descriptor(), idle, interval, probes),
        }
    }

    /// Whether this is the local kind: a Unix domain socket (which can carry descriptors and has
    /// credentials), or a named pipe on Windows.
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Reads without blocking, whatever the socket's mode (`WouldBlock` when nothing is there).
    pub fn recv_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tls(s) => s.read(buf, false),
            _ => sys::recv_dontwait(self.descriptor(), buf),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf, true),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Tls(s) => s.read(buf, true),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tls(s) => s.write_blocking(buf),
            _ => sys::stream_write(self, buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads from a socket without blocking, whatever its mode, so a stream shared with blocking
/// writers can be read only when `poll` said so.
#[derive(Debug)]
pub struct NonBlockingReads(pub Stream);

impl Read for NonBlockingReads {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.recv_nonblocking(buf)
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
            self.stream.recv_nonblocking(buf)
        }
    }
}

/// Connects to an endpoint; a TCP connect gives up after `timeout`. For the roles that take no
/// TLS options: a `tls://` endpoint is refused (`InvalidArgument`), see [`connect_with`].
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Stream, Error> {
    refuse_tls(endpoint)?;
    connect_with(endpoint, timeout, &TlsClientOptions::default())
}

/// Refuses a `tls://` endpoint for a role that does not speak TLS (the push server and worker,
/// sessions and the broker client do).
pub fn refuse_tls(endpoint: &Endpoint) -> Result<(), Error> {
    if let Endpoint::Tls(_) = endpoint {
        return Err(Error::invalid_argument(format!(
            "{endpoint}: this role takes Unix socket and tcp:// endpoints (tls:// is for the push server and worker, sessions and the broker client, with their TLS options)"
        )));
    }
    Ok(())
}

/// Connects to an endpoint; on a `tls://` endpoint runs the TLS handshake with `tls` too, all
/// within `timeout`. Certificate problems fail with `PermissionDenied`, a server that does not
/// speak TLS with `Protocol`; the message says which.
pub fn connect_with(endpoint: &Endpoint, timeout: Duration, tls: &TlsClientOptions) -> Result<Stream, Error> {
    let deadline = Instant::now() + timeout;
    let stream = match endpoint {
        Endpoint::Tls(addr) => {
            let config = TlsClientConfig::new(tls, addr)?;
            let Stream::Tcp(sock) = connect_socket(&Endpoint::Tcp(addr.clone()), timeout)? else { unreachable!() };
            sys::no_sigpipe(sys::tcp_descriptor(&sock));
            let tls = TlsStream::client(sock, &config).map_err(|e| Error::io("TLS setup", e))?;
            tls.handshake(deadline).map_err(|e| match e {
                Error::Timeout(_) => Error::Timeout(format!("the TLS handshake with {endpoint} did not finish within {timeout:?}").into()),
                e => e,
            })?;
            return Ok(Stream::Tls(tls));
        }
        _ => connect_socket(endpoint, timeout)?,
    };
    sys::no_sigpipe(stream.descriptor());
    Ok(stream)
}

fn connect_socket(endpoint: &Endpoint, timeout: Duration) -> Result<Stream, Error> {
    let ctx = "connect";
    match endpoint {
        Endpoint::Path(p) => sys::connect_path(p)?.map(Stream::Unix).map_err(|e| connect_error(endpoint, e)),
        Endpoint::Abstract(name) => sys::connect_abstract(name, ctx)?.map(Stream::Unix).map_err(|e| connect_error(endpoint, e)),
        #[cfg(windows)]
        Endpoint::Pipe(name) => sys::PipeStream::connect(name, timeout).map(Stream::Unix).map_err(|e| connect_error(endpoint, e)),
        Endpoint::Tls(addr) | Endpoint::Tcp(addr) => {
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


/// Non-blocking reads and writes on a connection whose owner is elsewhere (a server's link
/// keeps one beside the reader that owns the socket): plain `recv`/`send` system calls on a
/// Unix or TCP socket, through the shared TLS state on a TLS connection. Callers hold their
/// own lock per connection for writes, as on a plain socket.
#[derive(Debug, Clone)]
pub enum SocketIo {
    /// A Unix or TCP socket's descriptor (owned elsewhere).
    Plain(RawDescriptor),
    /// A TLS connection.
    Tls(Arc<TlsStream>),
}

impl SocketIo {
    /// `send(2)` with `MSG_NOSIGNAL | MSG_DONTWAIT`, or its TLS equivalent.
    #[inline]
    pub fn send_nonblocking(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SocketIo::Plain(fd) => sys::send_nonblocking(*fd, buf),
            SocketIo::Tls(s) => s.send_nonblocking(buf),
        }
    }

    /// `recv(2)` with `MSG_DONTWAIT`, or its TLS equivalent.
    #[inline]
    pub fn recv_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SocketIo::Plain(fd) => sys::recv_dontwait(*fd, buf),
            SocketIo::Tls(s) => s.read(buf, false),
        }
    }

    /// Writes what the connection itself still holds (TLS records), without blocking: true
    /// once nothing waits. Always true on a plain socket, with no system call.
    #[inline]
    pub fn flush_nonblocking(&self) -> io::Result<bool> {
        match self {
            SocketIo::Plain(_) => Ok(true),
            SocketIo::Tls(s) => s.flush_nonblocking(),
        }
    }

    /// Whether decrypted bytes of a TLS connection wait to be read (the socket may not be
    /// readable then); never on a plain socket.
    #[inline]
    pub fn has_buffered_input(&self) -> bool {
        match self {
            SocketIo::Plain(_) => false,
            SocketIo::Tls(s) => s.has_buffered_input(),
        }
    }

    /// The verified certificate identity of the peer of a TLS connection, if it sent one.
    pub fn tls_identity(&self) -> Option<TlsIdentity> {
        match self {
            SocketIo::Plain(_) => None,
            SocketIo::Tls(s) => s.peer_identity(),
        }
    }

    /// Whether the connection itself holds bytes to write (TLS records); never on a plain socket.
    #[inline]
    pub fn has_pending_output(&self) -> bool {
        match self {
            SocketIo::Plain(_) => false,
            SocketIo::Tls(s) => s.has_pending_output(),
        }
    }
}
