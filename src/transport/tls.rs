//! TLS over TCP (`tls://host:port`), with rustls: the options a server and a client give, the
//! configurations built from them, and [`TlsStream`], one TLS connection whose state the read
//! path and the write path share.
//!
//! A TLS connection is one TCP socket plus one rustls state behind a lock. Reads take bytes
//! from the socket without the lock (so a blocked read never holds up a writer, and a
//! `shutdown` wakes it as it wakes a plain read), then decrypt under it; writes encrypt under
//! it. What a role sees is the same as on a plain socket: `recv`-like reads that say
//! `WouldBlock` once the socket is drained, `send`-like writes, and the socket's descriptor for
//! its poller. TLS failures come out as I/O errors that carry a [`TlsFailure`] (see
//! [`tls_failure`]) and become `PermissionDenied` (a certificate problem) or `Protocol` (the
//! peer does not speak TLS, or speaks it where plain TCP was expected) errors.

use std::fmt;
use std::io;
use std::path::Path;

use crate::error::{Error, ErrorKind};

// The TLS engine: rustls with the *ring* provider.
#[path = "tls/engine.rs"]
mod engine;

pub use engine::{TlsClientConfig, TlsServerConfig, TlsStream};

/// Whether a TLS server asks its clients for a certificate (mutual TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client may present a certificate; one it presents must verify against the client CA
    /// roots.
    Optional,
    /// Every client must present a certificate that verifies against the client CA roots.
    Required,
}

/// What a TLS server presents and what it asks of its clients. PEM text throughout.
#[derive(Clone, Default)]
pub struct TlsServerOptions {
    /// The server's certificate chain, leaf first (PEM, one or more `CERTIFICATE` blocks).
    pub cert_chain_pem: Vec<u8>,
    /// The private key of the leaf certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
    /// CA roots that client certificates must chain to (PEM); needed unless `client_auth` is
    /// [`ClientAuth::None`].
    pub client_ca_pem: Vec<u8>,
    /// Whether clients are asked for a certificate.
    pub client_auth: ClientAuth,
}

impl fmt::Debug for TlsServerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerOptions")
            .field("cert_chain_pem", &format_args!("{} bytes", self.cert_chain_pem.len()))
            .field("key_pem", &"(hidden)")
            .field("client_ca_pem", &format_args!("{} bytes", self.client_ca_pem.len()))
            .field("client_auth", &self.client_auth)
            .finish()
    }
}

/// How a TLS client verifies its server and what it presents. PEM text throughout.
#[derive(Clone, Default)]
pub struct TlsClientOptions {
    /// CA roots the server's certificate must chain to (PEM). Empty: the system's roots (the
    /// file named by `SSL_CERT_FILE`, or the system CA bundle).
    pub ca_pem: Vec<u8>,
    /// The name the server's certificate must be valid for (a DNS name or an IP address).
    /// Empty: the host of the endpoint.
    pub server_name: String,
    /// The client's certificate chain for mutual TLS, leaf first (PEM); empty for none.
    pub cert_chain_pem: Vec<u8>,
    /// The private key of the client certificate (PEM); set together with `cert_chain_pem`.
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for TlsClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientOptions")
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .field("server_name", &self.server_name)
            .field("cert_chain_pem", &format_args!("{} bytes", self.cert_chain_pem.len()))
            .field("key_pem", &"(hidden)")
            .finish()
    }
}

/// Reads a PEM file for one of the TLS options (`what` names it in the error).
pub fn read_pem_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::Config(format!("reading the TLS {what} {}: {e}", path.display()).into()))
}

/// The identity a peer proved with its certificate: the verified client certificate of a
/// mutual-TLS connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsIdentity {
    /// The certificate's subject, as `CN=...,O=...` (the attributes librp knows by name, in
    /// certificate order; others as dotted OIDs).
    pub subject: String,
    /// The certificate's subject alternative names: `DNS:name`, `IP:address`, `URI:uri`,
    /// `email:address`.
    pub sans: Vec<String>,
    /// The certificate itself (DER).
    pub certificate_der: Vec<u8>,
}

/// A TLS failure carried inside an `io::Error`: the librp kind it stands for and what happened.
#[derive(Debug, Clone)]
pub struct TlsFailure {
    /// `PermissionDenied` (a certificate was refused) or `Protocol` (TLS where plain TCP was
    /// expected, or the reverse, or a broken TLS stream).
    pub kind: ErrorKind,
    /// What happened, for users.
    pub message: String,
    /// The connection's first bytes were not TLS: the peer speaks plain TCP.
    pub not_tls: bool,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TlsFailure {}

impl TlsFailure {
    pub(crate) fn io(self) -> io::Error {
        let kind = if self.kind == ErrorKind::PermissionDenied { io::ErrorKind::PermissionDenied } else { io::ErrorKind::InvalidData };
        io::Error::new(kind, self)
    }

    /// This failure as a librp error.
    pub fn into_error(self) -> Error {
        match self.kind {
            ErrorKind::PermissionDenied => Error::PermissionDenied(self.message.into()),
            _ => Error::Wire(crate::wire::WireError::Protocol(self.message.into())),
        }
    }
}

/// The TLS failure an I/O error carries, if it carries one.
pub fn tls_failure(e: &io::Error) -> Option<&TlsFailure> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<TlsFailure>())
}

/// An error turned into the TLS failure it carries (a certificate refused, no TLS), or kept.
pub fn untangle(e: Error) -> Error {
    let failure = match &e {
        Error::Wire(crate::wire::WireError::Io(io)) | Error::Io { source: io, .. } => tls_failure(io).cloned(),
        _ => None,
    };
    failure.map_or(e, TlsFailure::into_error)
}

