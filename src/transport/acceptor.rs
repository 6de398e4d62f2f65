//! [`Acceptor`]: the one way librp's servers (the broker and the push server) take connections
//! in their event loops: accepting from a [`Listener`] registered with the loop's poller, the
//! peer-uid policy, the limits on connections at once and per peer uid, and the reaping of
//! connections whose client left before saying anything, so an accept burst of departed
//! clients cannot hold the limits.
//!
//! The acceptor decides; the server answers. A server calls [`Acceptor::accept`] while it
//! returns connections, registers each, and asks [`Acceptor::admit`]; it refuses a
//! [`Rejection`] in its own protocol and tells the acceptor when a connection ends
//! ([`Acceptor::release`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::io;
use std::time::{Duration, Instant};

use super::tls::{TlsServerConfig, TlsStream};
use super::{sys, Listener, PeerCredentials, RawDescriptor, Stream};
use crate::error::Error;

/// How soon accepting is retried after it failed for lack of descriptors (or similar): the
/// listener is edge-triggered, so connections left in the backlog would get no new event.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// Who may connect and how many at once.
#[derive(Debug, Clone)]
pub struct AcceptPolicy {
    /// Accept peers of other users (otherwise [`Rejection::OtherUser`]).
    pub allow_other_uids: bool,
    /// Refuse peers without kernel-reported credentials ([`Rejection::NoCredentials`]); TCP
    /// peers never have them.
    pub require_credentials: bool,
    /// Most connections at once.
    pub max_connections: usize,
    /// Most connections at once from one peer uid.
    pub max_connections_per_uid: usize,
}

/// Why a connection is not admitted; the server refuses it in its own protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The kernel reported no credentials and the policy requires them.
    NoCredentials,
    /// The peer runs as another user (this uid) and the policy does not allow it.
    OtherUser(u32),
    /// `max_connections` are open.
    TooManyConnections,
    /// `max_connections_per_uid` are open from this peer's uid.
    TooManyFromUser,
}

#[derive(Debug)]
enum Accepting {
    Unix(sys::LocalAccepting),
    /// With a TLS configuration on a `tls://` endpoint: accepted connections are TLS.
    Tcp(mio::net::TcpListener, Option<TlsServerConfig>),
}

/// One open connection as the acceptor counts it.
#[derive(Debug)]
struct Open {
    socket: RawDescriptor,
    uid: Option<u32>,
}

/// Accepts connections for one event loop and applies an [`AcceptPolicy`]; `K` is the loop's
/// name for a connection (its poller token).
#[derive(Debug)]
pub struct Acceptor<K> {
    /// Kept for its socket file, removed when the acceptor goes.
    _listener: Listener,
    accepting: Accepting,
    policy: AcceptPolicy,
    open: HashMap<K, Open>,
    per_uid: HashMap<u32, usize>,
    /// Set when accepting failed (EMFILE, ENFILE, ENOMEM...): when to try again.
    retry_at: Option<Instant>,
}

impl<K: Copy + Eq + Hash> Acceptor<K> {
    /// Takes over `listener` and registers it with `registry` under `token` (readable).
    pub fn new(listener: Listener, policy: AcceptPolicy, registry: &mio::Registry, token: mio::Token) -> Result<Self, Error> {
        let io = |e| Error::io("register listener", e);
        let mut accepting = match &listener {
            Listener::Unix(l, _) => Accepting::Unix(sys::local_accepting(l).map_err(io)?),
            Listener::Tcp(l, tls) => {
                let l = l.try_clone().map_err(io)?;
                l.set_nonblocking(true).map_err(io)?;
                Accepting::Tcp(mio::net::TcpListener::from_std(l), tls.clone())
            }
        };
        match &mut accepting {
            Accepting::Unix(l) => sys::register_accepting(l, registry, token),
            Accepting::Tcp(l, _) => registry.register(l, token, mio::Interest::READABLE),
        }
        .map_err(io)?;
        Ok(Acceptor {
            _listener: listener,
            accepting,
            policy,
            open: HashMap::new(),
            per_uid: HashMap::new(),
            retry_at: None,
        })
    }

    /// The next connection waiting, in non-blocking mode (TCP without Nagle's delay); `None`
    /// once none waits, or when accepting failed (out of descriptors or similar: then
    /// [`retry_at`](Self::retry_at) says when to call again, since the edge-triggered listener
    /// reports nothing new for connections already queued).
    pub fn accept(&mut self) -> Option<Stream> {
        self.retry_at = None;
        loop {
            let accepted = match &self.accepting {
                Accepting::Unix(l) => sys::accept_local(l).map(Stream::Unix),
                Accepting::Tcp(l, tls) => l.accept().and_then(|(s, _)| {
                    let s = sys::std_tcp_stream(s);
                    let _ = s.set_nodelay(true);
                    match tls {
                        None => Ok(Stream::Tcp(s)),
                        Some(config) => TlsStream::server(s, config).map(Stream::Tls),
                    }
                }),
            };
            match accepted {
                Ok(stream) => return Some(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return None;
                }
            }
        }
    }

    /// When accepting must be tried again after a failure (`None`: no failure pending).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Counts a connection just accepted (`socket`, from `peer`) as open under `key` and
    /// applies the policy, in this order: credentials, peer uid, connections at once,
    /// connections of the peer's uid. Before refusing for a limit it reaps: connections the
    /// server calls `still_new` (nothing answered yet) whose client has already gone are
    /// forgotten and returned, for the server to close; then the new one is admitted if any
    /// were. The server refuses on `Err` (the connection stays counted until released).
    pub fn admit(
        &mut self,
        key: K,
        socket: RawDescriptor,
        peer: Option<PeerCredentials>,
        still_new: impl Fn(&K) -> bool,
    ) -> (Result<(), Rejection>, Vec<K>) {
        let uid = peer.map(|p| p.uid);
        self.open.insert(key, Open { socket, uid });
        if let Some(uid) = uid {
            *self.per_uid.entry(uid).or_insert(0) += 1;
        }
        let mut departed = Vec::new();
        let verdict = match uid {
            None if self.policy.require_credentials => Err(Rejection::NoCredentials),
            Some(uid) if uid != sys::effective_uid() && !self.policy.allow_other_uids => Err(Rejection::OtherUser(uid)),
            _ if self.open.len() > self.policy.max_connections && self.reap(&still_new, &mut departed) == 0 => {
                Err(Rejection::TooManyConnections)
            }
            Some(uid)
                if self.per_uid.get(&uid).copied().unwrap_or(0) > self.policy.max_connections_per_uid
                    && self.reap(&still_new, &mut departed) == 0 =>
            {
                Err(Rejection::TooManyFromUser)
            }
            _ => Ok(()),
        };
        (verdict, departed)
    }

    /// Forgets connections `still_new` whose peer has gone, adding them to `departed`; returns
    /// how many.
    fn reap(&mut self, still_new: &impl Fn(&K) -> bool, departed: &mut Vec<K>) -> usize {
        let gone: Vec<K> =
            self.open.iter().filter(|(k, o)| still_new(k) && sys::peer_gone(o.socket)).map(|(k, _)| *k).collect();
        for &key in &gone {
            self.release(key);
        }
        departed.extend_from_slice(&gone);
        gone.len()
    }

    /// A connection ended (or left the server, handed off): it no longer counts. Releasing a
    /// key not counted (reaped already) does nothing.
    pub fn release(&mut self, key: K) {
        let Some(Open { uid: Some(uid), .. }) = self.open.remove(&key) else { return };
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
    }

    /// Connections counted open.
    pub fn open(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use crate::transport::{Endpoint, ListenOptions};

    fn acceptor(policy: AcceptPolicy) -> (Acceptor<u32>, Endpoint, mio::Poll) {
        let name = format!("rp-acceptor-test-{}-{:?}", std::process::id(), std::thread::current().id());
        #[cfg(unix)]
        let endpoint = Endpoint::Abstract(name);
        #[cfg(windows)]
        let endpoint = Endpoint::Pipe(name);
        let listener = Listener::bind(&endpoint, &ListenOptions::default()).unwrap();
        let endpoint = listener.local_endpoint().unwrap();
        let poll = mio::Poll::new().unwrap();
        (Acceptor::new(listener, policy, poll.registry(), mio::Token(0)).unwrap(), endpoint, poll)
    }

    fn policy(max: usize, per_uid: usize) -> AcceptPolicy {
        AcceptPolicy { allow_other_uids: false, require_credentials: true, max_connections: max, max_connections_per_uid: per_uid }
    }

    /// Accepts the connection just made (the listener may need a moment to show it).
    fn next(a: &mut Acceptor<u32>) -> Stream {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(s) = a.accept() {
                return s;
            }
            assert!(Instant::now() < deadline, "no connection to accept");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn limits_count_open_connections_and_reap_departed_ones() {
        let (mut a, endpoint, _poll) = acceptor(policy(2, 10));
        assert!(a.accept().is_none());
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for key in 0..2 {
            clients.push(super::super::connect(&endpoint, Duration::from_secs(1)).unwrap());
            let s = next(&mut a);
            let peer = s.peer_credentials();
            assert_eq!(a.admit(key, s.descriptor(), peer, |_| true), (Ok(()), vec![]));
            servers.push(s);
        }
        // A third is over the limit while both others are alive...
        let _c = super::super::connect(&endpoint, Duration::from_secs(1)).unwrap();
        let s = next(&mut a);
        assert_eq!(a.admit(2, s.descriptor(), s.peer_credentials(), |_| true), (Err(Rejection::TooManyConnections), vec![]));
        a.release(2);
        // ...and admitted once one of them left: the departed one is reaped, unless the server
        // already answered it.
        drop(clients.remove(0));
        assert_eq!(a.admit(3, s.descriptor(), s.peer_credentials(), |&k| k != 0), (Err(Rejection::TooManyConnections), vec![]));
        a.release(3);
        assert_eq!(a.admit(3, s.descriptor(), s.peer_credentials(), |_| true), (Ok(()), vec![0]));
        assert_eq!(a.open(), 2);
    }

    #[test]
    fn per_uid_limit_and_missing_credentials() {
        let (mut a, endpoint, _poll) = acceptor(policy(10, 1));
        let _c1 = super::super::connect(&endpoint, Duration::from_secs(1)).unwrap();
        let s1 = next(&mut a);
        assert_eq!(a.admit(1, s1.descriptor(), s1.peer_credentials(), |_| true).0, Ok(()));
        let _c2 = super::super::connect(&endpoint, Duration::from_secs(1)).unwrap();
        let s2 = next(&mut a);
        assert_eq!(a.admit(2, s2.descriptor(), s2.peer_credentials(), |_| true).0, Err(Rejection::TooManyFromUser));
        a.release(2);
        a.release(1);
        assert_eq!(a.admit(2, s2.descriptor(), s2.peer_credentials(), |_| true).0, Ok(()));
        assert_eq!(a.admit(3, s2.descriptor(), None, |_| true).0, Err(Rejection::NoCredentials));
        let mut other = s2.peer_credentials().unwrap();
        other.uid = other.uid.wrapping_add(1);
        assert_eq!(a.admit(4, s2.descriptor(), Some(other), |_| true).0, Err(Rejection::OtherUser(other.uid)));
    }
}
