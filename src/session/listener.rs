//! The accepting side's listener ([`SessionListener`]) and the connecting side's [`connect`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::broker::Conn;
use crate::error::Error;
use crate::transport::{Endpoint, ListenOptions, Listener};

/// A listening socket whose accepted connections become sessions (the accepting side).
///
/// The socket is owner-only (see [`crate::transport`]); a Unix peer of another user is refused
/// at accept time, and a TCP endpoint must be a loopback address.
#[derive(Debug)]
pub struct SessionListener {
    listener: Listener,
    endpoint: Endpoint,
    closed: AtomicBool,
}

impl SessionListener {
    /// Binds `endpoint` (a socket path, `@abstract` name or loopback `tcp://host:port`).
    pub fn bind(endpoint: &Endpoint) -> Result<SessionListener, Error> {
        crate::transport::refuse_tls(endpoint)?;
        let listener = Listener::bind(endpoint, &ListenOptions::default())?;
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
    /// past. Fails with `Timeout`, `Closed` (see [`close`](Self::close)) or an I/O error.
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
            return Conn::new(stream);
        }
    }
}

/// Connects to a [`SessionListener`] (or any peer that speaks the session on a fresh
/// connection), for [`Session::new`](super::Session::new) with [`Side::Connecting`](super::Side::Connecting).
pub fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<Conn, Error> {
    Conn::new(crate::transport::connect(endpoint, timeout)?)
}

