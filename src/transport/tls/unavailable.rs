//! [`tls`](super) where the TLS engine is not built (Apple targets, compile-checked only here):
//! every configuration fails with `Config`, so no TLS connection ever exists.

use std::convert::Infallible;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use super::{TlsClientOptions, TlsIdentity, TlsServerOptions};
use crate::error::Error;

fn unavailable() -> Error {
    Error::Config("TLS is not available in this build of librp".into())
}

/// A built server configuration (never built here).
#[derive(Debug, Clone)]
pub struct TlsServerConfig(Infallible);

impl TlsServerConfig {
    /// Fails: TLS is not available in this build.
    pub fn new(_opts: &TlsServerOptions) -> Result<Self, Error> {
        Err(unavailable())
    }

    /// Whether every client must present a verified certificate.
    pub fn requires_client_certificates(&self) -> bool {
        match self.0 {}
    }
}

/// A built client configuration (never built here).
#[derive(Debug, Clone)]
pub struct TlsClientConfig(Infallible);

impl TlsClientConfig {
    /// Fails: TLS is not available in this build.
    pub fn new(_opts: &TlsClientOptions, _host: &str) -> Result<Self, Error> {
        Err(unavailable())
    }
}

/// A TLS connection (none exists here).
#[derive(Debug)]
pub enum TlsStream {}

impl TlsStream {
    /// Never called: no configuration exists.
    pub fn server(_sock: TcpStream, config: &TlsServerConfig) -> io::Result<Arc<TlsStream>> {
        match config.0 {}
    }

    /// Never called: no configuration exists.
    pub fn client(_sock: TcpStream, config: &TlsClientConfig) -> io::Result<Arc<TlsStream>> {
        match config.0 {}
    }

    /// The TCP socket under the TLS.
    pub fn socket(&self) -> &TcpStream {
        match *self {}
    }

    /// Runs the client handshake.
    pub fn handshake(&self, _deadline: Instant) -> Result<(), Error> {
        match *self {}
    }

    /// Reads decrypted bytes.
    pub fn read(&self, _buf: &mut [u8], _wait: bool) -> io::Result<usize> {
        match *self {}
    }

    /// Encrypts and writes without blocking.
    pub fn send_nonblocking(&self, _buf: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    /// Writes encrypted bytes still waiting.
    pub fn flush_nonblocking(&self) -> io::Result<bool> {
        match *self {}
    }

    /// Whether encrypted bytes wait to be written.
    pub fn has_pending_output(&self) -> bool {
        match *self {}
    }

    /// Whether decrypted bytes wait to be read.
    pub fn has_buffered_input(&self) -> bool {
        match *self {}
    }

    /// Encrypts and writes all of `buf`, blocking.
    pub fn write_blocking(&self, _buf: &[u8]) -> io::Result<usize> {
        match *self {}
    }

    /// Shuts down the socket.
    pub fn shutdown(&self, _how: Shutdown) -> io::Result<()> {
        match *self {}
    }

    /// The verified certificate of the peer.
    pub fn peer_identity(&self) -> Option<TlsIdentity> {
        match *self {}
    }

    /// Whether the handshake is done.
    pub fn is_handshaking(&self) -> bool {
        match *self {}
    }
}
