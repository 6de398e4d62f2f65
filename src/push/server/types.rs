//! What the server's API takes and gives: its options, a push's target and job, a worker's
//! answer, the registered workers and the events the application acts on.

use std::time::Duration;

use crate::push::proto::Registration;
use crate::transport::{Endpoint, PeerCredentials, SocketAccess, TlsIdentity, TlsServerOptions};


/// How a push server is set up.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen.
    pub endpoint: Endpoint,
    /// The service name workers must ask for (default `librp-push`).
    pub service_name: String,
    /// Accept Unix peers of other users (default: refused).
    pub allow_other_uids: bool,
    /// Who may reach a path socket's file (default: its owner only).
    pub socket_access: SocketAccess,
    /// Allow a TCP or TLS endpoint on a non-loopback address: plain TCP then requires
    /// `auth_token`; TLS requires `auth_token` or client certificates
    /// ([`ClientAuth::Required`](crate::transport::ClientAuth::Required)).
    pub allow_remote_tcp: bool,
    /// Certificate, key and client-certificate policy of a `tls://` endpoint (required there,
    /// refused on other endpoints).
    pub tls: Option<TlsServerOptions>,
    /// When non-empty, every worker's Hello must carry this token (compared in constant time).
    pub auth_token: Vec<u8>,
    /// Time a new connection has to say Hello and register (default 10 s).
    pub handshake_timeout: Duration,
    /// Most connections at once; more are refused with a retry hint (default 4096).
    pub max_connections: usize,
    /// Most connections at once from one peer uid (Unix sockets), so one user cannot take
    /// every connection; more are refused with a retry hint (default 2048).
    pub max_connections_per_uid: usize,
    /// Time a registered worker has to finish a frame once its first bytes arrived (default
    /// 30 s); a worker stalled mid-frame longer is disconnected, so it cannot pin the memory of
    /// a large partial frame. `Duration::ZERO` means no limit.
    pub frame_timeout: Duration,
    /// Bytes queued for one worker before pushes to it fail with "try again" (default 8 MiB).
    pub max_send_buffer: usize,
    /// Registrations wait for [`PushServer::decide`](super::PushServer::decide) instead of being accepted at once.
    pub decide_registrations: bool,
    /// Queue [`ServerEvent`]s for [`PushServer::next_event`](super::PushServer::next_event) (implied by `decide_registrations`).
    pub events: bool,
}

impl ServerOptions {
    /// Options with defaults for everything but the endpoint.
    pub fn new(endpoint: Endpoint) -> Self {
        ServerOptions {
            endpoint,
            service_name: crate::push::DEFAULT_SERVICE.to_owned(),
            allow_other_uids: false,
            socket_access: SocketAccess::default(),
            allow_remote_tcp: false,
            tls: None,
            auth_token: Vec::new(),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_uid: 2048,
            frame_timeout: Duration::from_secs(30),
            max_send_buffer: 8 << 20,
            decide_registrations: false,
            events: false,
        }
    }
}

/// Which worker a push goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One worker by id.
    Worker(u64),
    /// Any worker registered for this task queue (the least busy one).
    TaskQueue(String),
    /// Any worker serving this payload protocol (the least busy one).
    Protocol(u32),
}

/// One job to push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSpec {
    /// Consumer protocol of the payload.
    pub payload_protocol: u32,
    /// The job's bytes.
    pub payload: Vec<u8>,
    /// Absolute deadline in Unix milliseconds; 0 = none. Past it the push fails with `Timeout`
    /// and the worker is told to drop it.
    pub deadline_unix_ms: u64,
    /// W3C traceparent.
    pub traceparent: String,
    /// W3C tracestate.
    pub tracestate: String,
}

/// A worker's answer to a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushResult {
    /// The worker's reply payload.
    Reply(Vec<u8>),
    /// The worker could not do the job.
    WorkerFailure {
        /// The worker's code.
        code: i32,
        /// The worker's message.
        message: String,
    },
}

/// A connected, registered worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// The id the server gave it.
    pub id: u64,
    /// What it registered as.
    pub registration: Registration,
    /// Kernel-reported credentials (Unix sockets).
    pub peer: Option<PeerCredentials>,
    /// The verified client certificate (a `tls://` server with client certificates).
    pub tls_identity: Option<TlsIdentity>,
    /// Pushes sent to it and not yet answered.
    pub in_flight: usize,
}

/// Something the application may want to act on, taken with [`PushServer::next_event`](super::PushServer::next_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A worker asks to register; answer with [`PushServer::decide`](super::PushServer::decide) (only with
    /// `decide_registrations`).
    RegistrationRequest {
        /// The id the worker will have if accepted.
        worker_id: u64,
        /// What it asks to register as.
        registration: Registration,
        /// Kernel-reported credentials.
        peer: Option<PeerCredentials>,
        /// The verified client certificate (a `tls://` server with client certificates).
        tls_identity: Option<TlsIdentity>,
    },
    /// A worker registered.
    WorkerConnected(WorkerInfo),
    /// A registered worker went away; its outstanding pushes failed with `Closed`.
    WorkerDisconnected {
        /// The worker as it registered (`in_flight` is 0: its pushes failed).
        worker: WorkerInfo,
        /// Why.
        reason: String,
    },
}

/// What [`PushServer::decide`](super::PushServer::decide) answers to a registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationDecision {
    /// Register the worker.
    Accept,
    /// Refuse it, with a reason the worker sees.
    Reject(String),
}
