//! The accepting side's listener ([`SessionListener`]) and the connecting side's [`connect`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::broker::Conn;
use crate::error::Error;
use crate::transport::{self, Endpoint, ListenOptions, Listener, Stream, TlsClientOptions, TlsServerConfig, TlsServerOptions};

/// Longest a TLS handshake may take in [`SessionListener::accept`] (a client that has not
/// finished it by then is closed and waited past).
const TLS_HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// A listening socket whose accepted connections become sessions (the accepting side).
///
/// The socket is owner-only (see [`crate::transport`]); a Unix peer of another user is refused
/// at accept time. A `tcp://` endpoint must be a loopback address; so must a `tls://` one,
/// unless its TLS options require client certificates (mutual TLS), which then protect it.
#[derive(Debug)]
pub struct SessionListener {
    listener: Listener,
    endpoint: Endpoint,
    closed: AtomicBool,
}

impl SessionListener {
    /// Binds `endpoint` (a socket path, `@abstract` name or loopback `tcp://host:port`). A
    /// `tls://` endpoint needs [`bind_with`](Self::bind_with) and its TLS options.
    pub fn bind(endpoint: &Endpoint) -> Result<SessionListener, Error> {
        Self::bind_with(endpoint, None)
    }

    /// Binds `endpoint` with TLS options for a `tls://host:port` endpoint (required there,
    /// refused elsewhere): the certificate chain and key it presents, and whether clients must
    /// present a certificate. A `tls://` endpoint on an address other than loopback requires
    /// client certificates ([`ClientAuth::Required`](crate::transport::ClientAuth::Required)).
    pub fn bind_with(endpoint: &Endpoint, tls: Option<&TlsServerOptions>) -> Result<SessionListener, Error> {
        let tls = tls.map(TlsServerConfig::new).transpose()?;
        // Reachable from elsewhere only with mutual TLS: sessions carry no auth token.
        let allow_remote_tcp = tls.as_ref().is_some_and(TlsServerConfig::requires_client_certificates);
        let listener = Listener::bind(endpoint, &ListenOptions { allow_remote_tcp, tls, ..ListenOptions::default() })
            .map_err(|e| match e {
                Error::PermissionDenied(m) if matches!(endpoint, Endpoint::Tls(_)) => Error::PermissionDenied(
                    format!("{m}; a session listener on tls:// needs required client certificates for that").into(),
                ),
                e => e,
            })?;
        let endpoint = listener.local_endpoint()?;
        Ok(SessionListener { listener, endpoint, closed: AtomicBool::new(false) })
    }

    /// The endpoint actually bound (for `tcp://127.0.0.1:0`, with the real port).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Stops accepting: every [`accept`](Self::accept) waiting now or called later fails with
    /// `Closed` at once. Connections already accepted go on. Idempotent; callable from any
    /// thread.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.listener.shutdown();
    }

    /// Waits up to `timeout` (`None` = forever) for a connection and returns it, for
    /// [`Session::new`](super::Session::new) with [`Side::Accepting`](super::Side::Accepting). Peers of another user are closed and waited
    /// past. On a `tls://` listener the TLS handshake is done before the connection is returned
    /// (its [`tls_identity`](Conn::tls_identity) is known); a client whose handshake fails (no
    /// certificate where one is required, one that does not verify, plain TCP) or does not
    /// finish within 10 s is closed and waited past too. Fails with `Timeout`, `Closed` (see
    /// [`close`](Self::close)) or an I/O error.
    pub fn accept(&self, timeout: Option<Duration>) -> Result<Conn, Error> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let stream = self.listener.accept_timeout(left, || self.closed.load(Ordering::Acquire))?;
            if let Some(peer) = stream.peer_credentials() {
                if peer.uid != crate::transport::effective_uid() {
                    continue; // dropped: closes the connection
                }
            }
            if let Stream::Tls(tls) = &stream {
                let limit = Instant::now() + TLS_HANDSHAKE_LIMIT;
                if tls.handshake(deadline.map_or(limit, |d| d.min(limit))).is_err() {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(Error::Timeout("no connection arrived in time".into()));
                    }
                    continue; // dropped: the client was told why by its TLS alert
                }
            }
            return Conn::new(stream);
        }
    }
}

/// Connects to a [`SessionListener`] (or any peer that speaks the session on a fresh
/// connection), for [`Session::new`](super::Session::new) with [`Side::Connecting`](super::Side::Connecting).
/// A `tls://` endpoint needs [`connect_with`].
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Conn, Error> {
    if let Endpoint::Tls(_) = endpoint {
        return Err(Error::invalid_argument(format!(
            "{endpoint}: a tls:// endpoint needs TLS options (session::connect_with; rp_session_connect_tls in C)"
        )));
    }
    Conn::new(transport::connect(endpoint, timeout)?)
}

/// [`connect`] with TLS options for a `tls://` endpoint: the CA roots the server's certificate
/// must chain to (the system's when empty), the name it must be valid for, and a client
/// certificate for mutual TLS. The handshake is done within `timeout` too. Certificate
/// problems fail with `PermissionDenied`, a server that does not speak TLS with `Protocol`.
/// TLS options with a Unix or `tcp://` endpoint are an `InvalidArgument` error.
pub fn connect_with(endpoint: &Endpoint, timeout: Duration, tls: &TlsClientOptions) -> Result<Conn, Error> {
    check_client_tls(endpoint, tls)?;
    Conn::new(transport::connect_with(endpoint, timeout, tls)?)
}

/// TLS client options given for an endpoint that is not `tls://` are a mistake worth saying.
pub(crate) fn check_client_tls(endpoint: &Endpoint, tls: &TlsClientOptions) -> Result<(), Error> {
    let set = !tls.ca_pem.is_empty() || !tls.cert_chain_pem.is_empty() || !tls.key_pem.is_empty() || !tls.server_name.is_empty();
    if set && !matches!(endpoint, Endpoint::Tls(_)) {
        return Err(Error::invalid_argument(format!("{endpoint}: TLS options are for tls:// endpoints only")));
    }
    Ok(())
}

