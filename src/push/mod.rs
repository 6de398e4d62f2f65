//! Push: workers connect to a server, register, receive server-initiated pushes and answer
//! each with a correlated reply.
//!
//! Wire (docs/PROTOCOL.md): a v1 Hello on the control protocol, then on [`PUSH_PROTOCOL`]:
//! `Registration` (worker REQUEST) → `RegistrationAck` (server RESPONSE); `Push` (server EVENT,
//! request_id = correlation id) → `PushReply` (worker RESPONSE echoing it).

mod dispatch;
mod server;
mod worker;

pub use server::{
    PushResult, PushServer, PushSpec, RegistrationDecision, ServerEvent, ServerOptions, Target, Ticket,
    WorkerInfo,
};
pub use worker::{
    liminal_refusal_code, ActivityDescriptor, Dialect, EventHandler, Jitter, Push, ReconnectPolicy, Worker, WorkerEvent,
    WorkerEventKind, WorkerOptions, LIMINAL_SCHEME,
};

/// Hooks for the fuzz targets (`fuzz/`) and their corpus replay (`tests/fuzz_corpus.rs`); not
/// API. Each runs one side's real parse path over bytes, without a socket or threads.
#[doc(hidden)]
pub mod fuzzing {
    /// The worker side: HelloReply, registration ack, then the pushes; returns the pushes.
    pub fn server_stream(bytes: &[u8]) -> Vec<super::Push> {
        super::worker::fuzz_server_stream(bytes)
    }

    /// The worker side of the liminal dialect: ConnectAck, WorkerRegisterAck, then the pushes.
    pub fn liminal_server_stream(bytes: &[u8]) -> Vec<super::Push> {
        super::worker::fuzz_liminal_stream(bytes)
    }

    /// The server side: Hello, registration, replies; returns the frames accepted.
    pub fn worker_stream(bytes: &[u8], peer: Option<crate::transport::PeerCredentials>) -> usize {
        super::server::fuzz_worker_stream(bytes, peer)
    }
}

/// Generated messages of `proto/librp_push.proto`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/librp.push.v1.rs"));
}

/// The payload protocol of registration, pushes and replies (private-use range).
pub const PUSH_PROTOCOL: u32 = crate::wire::registry::LIBRP_PUSH;
/// The service name a push server answers to by default.
pub const DEFAULT_SERVICE: &str = "librp-push";
/// The version of the push protocol, sent as `wanted_version` and `daemon_version`.
pub const PUSH_PROTOCOL_VERSION: &str = "1.0.0";
/// Key of the `Refused.details` entry by which a push server names itself, so that a client
/// that reached one by mistake (a broker client) or expected one (a worker) can say what the
/// peer is. Its value is [`PUSH_SERVER_ROLE`].
pub const ROLE_DETAIL: &str = "librp.role";
/// The value of [`ROLE_DETAIL`] in a push server's refusals.
pub const PUSH_SERVER_ROLE: &str = "push-server";
/// Key of the `Refused.details` entry with the service a push server answers to (sent when
/// it refused a Hello for another service).
pub const SERVICE_DETAIL: &str = "librp.service";
/// Request id of the registration frame.
pub(crate) const REGISTRATION_REQUEST_ID: u64 = 1;

/// Longest identity, task queue, node, namespace or activity type of a registration, in bytes.
pub const MAX_REGISTRATION_STRING: usize = 256;
/// Most namespaces in a registration.
pub const MAX_NAMESPACES: usize = 64;
/// Most activity types in a registration.
pub const MAX_ACTIVITY_TYPES: usize = 256;
/// Most served payload protocols in a registration.
pub const MAX_PAYLOAD_PROTOCOLS: usize = 64;
/// Largest encoded registration, in bytes (its lists together).
pub const MAX_REGISTRATION_BYTES: usize = 16 * 1024;
/// Longest failure message a worker may send with a failed push, in bytes.
pub const MAX_FAILURE_MESSAGE: usize = 4096;

/// Checks a registration against the limits above (both sides apply it: a worker before it
/// sends, a server on receipt). The error names the limit that was passed.
pub(crate) fn check_registration(reg: &proto::Registration) -> Result<(), String> {
    use prost::Message;
    if reg.identity.is_empty() || reg.identity.len() > MAX_REGISTRATION_STRING {
        return Err(format!("identity must be 1-{MAX_REGISTRATION_STRING} bytes"));
    }
    if reg.task_queue.len() > MAX_REGISTRATION_STRING || reg.node.len() > MAX_REGISTRATION_STRING {
        return Err(format!("task_queue and node must be at most {MAX_REGISTRATION_STRING} bytes"));
    }
    for (what, list, most) in [
        ("namespaces", &reg.namespaces, MAX_NAMESPACES),
        ("activity types", &reg.activity_types, MAX_ACTIVITY_TYPES),
    ] {
        if list.len() > most {
            return Err(format!("at most {most} {what} (got {})", list.len()));
        }
        if list.iter().any(|s| s.len() > MAX_REGISTRATION_STRING) {
            return Err(format!("{what} must be at most {MAX_REGISTRATION_STRING} bytes each"));
        }
    }
    if reg.payload_protocols.len() > MAX_PAYLOAD_PROTOCOLS {
        return Err(format!("at most {MAX_PAYLOAD_PROTOCOLS} payload protocols (got {})", reg.payload_protocols.len()));
    }
    if reg.encoded_len() > MAX_REGISTRATION_BYTES {
        return Err(format!("a registration must encode to at most {MAX_REGISTRATION_BYTES} bytes (got {})", reg.encoded_len()));
    }
    for p in &reg.payload_protocols {
        crate::wire::registry::check_servable(*p)?;
    }
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
