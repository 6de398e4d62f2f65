//! [`Stream`]: a connected socket (Unix or TCP; a named pipe or TCP on Windows) whose writes
//! never raise SIGPIPE, the readers librp's roles put over one, and [`connect`].

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{sys, Endpoint, PeerCredentials};
use crate::error::Error;

/// A connected byte stream (Unix or TCP) whose writes never raise SIGPIPE.
#[derive(Debug)]
pub enum Stream {
    /// The local kind: a Unix domain socket (on Windows, a named pipe: [`PipeStream`](super::PipeStream)).
    Unix(sys::LocalStream),
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
            Stream::Unix(_) => sys::peer_credentials(self.descriptor()).ok(),
            Stream::Tcp(_) => None,
        }
    }

    /// Turns on TCP keepalive (see [`sys::set_tcp_keepalive`]); nothing to do on a Unix socket.
    pub fn set_keepalive(&self, idle: Duration, interval: Duration, probes: u32) -> io::Result<()> {
        match self {
            Stream::Unix(_) => Ok(()),
            Stream::Tcp(_) => sys::set_tcp_keepalive(self.descriptor(), idle, interval, probes),
        }
    }

    /// Whether this is the local kind: a Unix domain socket (which can carry descriptors and has
    /// credentials), or a named pipe on Windows.
    pub fn is_unix(&self) -> bool {
        matches!(self, Stream::Unix(_))
    }

    /// Reads without blocking, whatever the socket's mode (`WouldBlock` when nothing is there).
    pub fn recv_nonblocking(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::recv_dontwait(self.descriptor(), buf)
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
        sys::stream_write(self, buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::stream_write(self, buf)
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
        sys::recv_dontwait(self.0.descriptor(), buf)
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
            sys::recv_dontwait(self.stream.descriptor(), buf)
        }
    }
}

/// Connects to an endpoint; a TCP connect gives up after `timeout`.
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Stream, Error> {
    let stream = connect_socket(endpoint, timeout)?;
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

