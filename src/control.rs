//! The control plane (payload protocol 0x0000): the Hello a client opens every connection with,
//! and the HelloReply (Negotiated or Refused) that answers it. Shared by every protocol role.

use std::io::{Read, Write};

use prost::Message;

use crate::error::Error;
use crate::transport::{PeerCredentials, Rejection};
use crate::wire::proto::{hello_reply, ErrorCode, FrameKind, Hello, HelloReply, Negotiated};
use crate::wire::{names, registry, FrameReader, FrameView, FrameWriter, WireError, PROTOCOL_VERSION};

pub use crate::wire::Refusal;

/// Keepalive interval a server grants a client that proposed none.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 1800;
/// Name librp reports as `client_lib_name`.
pub const CLIENT_LIB_NAME: &str = "librp";

impl Refusal {
    /// The refusal of a connection the [`Acceptor`](crate::transport::Acceptor) did not admit,
    /// sent before any Hello was read; `server` names the refusing server in the reason
    /// ("broker", "server").
    pub(crate) fn not_admitted(rejection: Rejection, server: &str) -> Self {
        match rejection {
            Rejection::NoCredentials => Refusal::new(ErrorCode::PeerRejected, "peer credentials are unavailable"),
            Rejection::OtherUser(uid) => {
                Refusal::new(ErrorCode::PeerRejected, format!("peer uid {uid} is not allowed on this {server}"))
            }
            Rejection::TooManyConnections => {
                Refusal::new(ErrorCode::RateLimited, "too many connections").with_retry_after_ms(1000)
            }
            Rejection::TooManyFromUser => {
                let mut r =
                    Refusal::new(ErrorCode::RateLimited, "too many connections from this user").with_retry_after_ms(1000);
                r.details.insert("scope".into(), "peer-uid".into());
                r
            }
        }
    }
}

/// What a client says in its Hello.
#[derive(Debug, Clone, Default)]
pub struct ClientHello {
    /// Service to reach: 1–64 characters of `[a-z0-9-]`.
    pub service_name: String,
    /// Wanted service version (semver).
    pub wanted_version: String,
    /// The client's own version (≤ 128 characters).
    pub client_version: String,
    /// Capability bits (bit 0 = handle passing).
    pub capabilities: u64,
    /// Shared token for TCP servers that require one.
    pub auth_token: Vec<u8>,
    /// Proposed keepalive interval; 0 = let the server choose.
    pub keepalive_secs: u64,
}

impl ClientHello {
    /// The wire message, with this process's pid and librp's name and version.
    pub fn to_message(&self) -> Hello {
        Hello {
            client_min_protocol: PROTOCOL_VERSION,
            client_max_protocol: PROTOCOL_VERSION,
            service_name: self.service_name.clone(),
            wanted_version: self.wanted_version.clone(),
            client_version: self.client_version.clone(),
            client_capabilities: self.capabilities,
            auth_token: self.auth_token.clone(),
            request_id: "hello".to_owned(),
            peer_pid: std::process::id(),
            client_lib_name: CLIENT_LIB_NAME.to_owned(),
            client_lib_version: crate::VERSION.to_owned(),
            client_keepalive_secs: self.keepalive_secs,
            ..Hello::default()
        }
    }
}

impl ClientHello {
    /// Checks the fields a server would refuse (see [`check_hello_fields`]) before anything is
    /// sent; fails with `InvalidArgument` naming the field and its rule.
    pub fn validate(&self) -> Result<(), Error> {
        match hello_shape_error(&self.to_message(), None) {
            Some(e) => Err(Error::invalid_argument(format!("{}: {}", e.reason, e.rule))),
            None => Ok(()),
        }
    }
}

/// Request id of the Hello frame librp sends.
const HELLO_REQUEST_ID: u64 = 1;

/// Runs the client side of the handshake: writes the Hello, reads the HelloReply.
///
/// The reader keeps any bytes that arrived after the reply. Time limits are the caller's: set
/// them on the stream before calling.
pub fn client_handshake<R: Read, W: Write>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    hello: &ClientHello,
) -> Result<Negotiated, Error> {
    hello.validate()?;
    let payload = hello.to_message().encode_to_vec();
    writer.write_frame(&FrameView {
        kind: FrameKind::Request as i32,
        payload_protocol: registry::CONTROL,
        payload: &payload,
        request_id: HELLO_REQUEST_ID,
        ..FrameView::default()
    })?;
    let frame = reader.read_frame()?;
    if frame.payload_protocol != registry::CONTROL || frame.frame_kind() != Some(FrameKind::Response) {
        return Err(WireError::Protocol(
            format!(
                "expected a HelloReply, got kind {} on payload protocol 0x{:04X}",
                frame.kind, frame.payload_protocol
            )
            .into(),
        )
        .into());
    }
    let reply = HelloReply::decode(frame.payload).map_err(|e| WireError::from_prost("HelloReply", e))?;
    match reply.result {
        Some(hello_reply::Result::Negotiated(n)) => Ok(n),
        Some(hello_reply::Result::Refused(r)) => Err(Error::Refused(Box::new(Refusal::from_message(r)))),
        None => Err(WireError::Protocol("HelloReply carries neither Negotiated nor Refused".into()).into()),
    }
}


/// Most bytes of `Hello.auth_token` and `Hello.capability_token` a server accepts.
pub const HELLO_MAX_TOKEN: usize = 1024;
/// Most bytes of `Hello.request_id` and `Hello.peer_attestation_nonce` a server accepts.
pub const HELLO_MAX_SHORT_FIELD: usize = 256;

/// One failed Hello check: the code and reason sent (the reference broker's where it has the
/// check) and the rule, for a local caller's error message.
struct ShapeError {
    code: ErrorCode,
    reason: &'static str,
    rule: &'static str,
}

/// The first Hello check that fails, in the reference broker's order (`validate_hello_shape`):
/// protocol range, service name, wanted version, client version, client library fields,
/// peer pid; then librp's caps on the fields the reference leaves unbounded.
fn hello_shape_error(hello: &Hello, peer: Option<&PeerCredentials>) -> Option<ShapeError> {
    let fail = |code, reason, rule| Some(ShapeError { code, reason, rule });
    if hello.client_min_protocol > PROTOCOL_VERSION || hello.client_max_protocol < PROTOCOL_VERSION {
        return fail(
            ErrorCode::VersionUnsupported,
            "client protocol range does not include v1",
            "the protocol range must include 1",
        );
    }
    if let Err(rule) = names::check_service_name(&hello.service_name) {
        return fail(ErrorCode::PeerRejected, "invalid service_name", rule);
    }
    if let Err(rule) = names::check_version(&hello.wanted_version) {
        return fail(ErrorCode::PeerRejected, "invalid wanted_version", rule);
    }
    if hello.client_version.len() > 128 {
        return fail(ErrorCode::PeerRejected, "client_version exceeds 128 bytes", "client_version must be at most 128 bytes");
    }
    if hello.client_lib_name.len() > 64 || hello.client_lib_version.len() > 64 {
        return fail(
            ErrorCode::PeerRejected,
            "client_lib fields exceed 64 bytes",
            "client_lib_name and client_lib_version must be at most 64 bytes each",
        );
    }
    if let Some(peer) = peer {
        if hello.peer_pid != 0 && peer.pid != 0 && hello.peer_pid != peer.pid {
            return fail(ErrorCode::PeerRejected, "peer_pid does not match verified peer", "peer_pid must be 0 or the caller's pid");
        }
    }
    if hello.auth_token.len() > HELLO_MAX_TOKEN || hello.capability_token.len() > HELLO_MAX_TOKEN {
        return fail(
            ErrorCode::PeerRejected,
            "auth_token or capability_token exceeds 1024 bytes",
            "auth_token and capability_token must be at most 1024 bytes each",
        );
    }
    if hello.request_id.len() > HELLO_MAX_SHORT_FIELD || hello.peer_attestation_nonce.len() > HELLO_MAX_SHORT_FIELD {
        return fail(
            ErrorCode::PeerRejected,
            "request_id or peer_attestation_nonce exceeds 256 bytes",
            "request_id and peer_attestation_nonce must be at most 256 bytes each",
        );
    }
    None
}

/// Checks a Hello as the reference broker does (see `hello_shape_error` for the order): the
/// protocol range must include 1 (else VERSION_UNSUPPORTED); `service_name` 1-64 characters of
/// `[a-z0-9-]`, `wanted_version` semver of at most 64 characters, `client_version` at most 128
/// bytes, `client_lib_name`/`client_lib_version` at most 64, a non-zero `peer_pid` equal to
/// the kernel-reported one, `auth_token`/`capability_token` at most [`HELLO_MAX_TOKEN`] and
/// `request_id`/`peer_attestation_nonce` at most [`HELLO_MAX_SHORT_FIELD`] bytes (else
/// PEER_REJECTED).
pub fn check_hello_fields(hello: &Hello, peer: Option<&PeerCredentials>) -> Result<(), Refusal> {
    match hello_shape_error(hello, peer) {
        Some(e) => Err(Refusal::new(e.code, e.reason)),
        None => Ok(()),
    }
}

/// The Negotiated a server grants: protocol 1, its version, the keepalive it accepts.
pub fn negotiated(daemon_version: &str, connection_id: u64, proposed_keepalive_secs: u64) -> Negotiated {
    Negotiated {
        negotiated_protocol: PROTOCOL_VERSION,
        daemon_version: daemon_version.to_owned(),
        keepalive_interval_secs: if proposed_keepalive_secs == 0 {
            DEFAULT_KEEPALIVE_SECS
        } else {
            proposed_keepalive_secs
        },
        connection_id,
        ..Negotiated::default()
    }
}

/// Encodes a HelloReply as a RESPONSE frame on the control protocol.
pub fn hello_reply_frame(request_id: u64, result: hello_reply::Result) -> Vec<u8> {
    let payload = HelloReply { result: Some(result) }.encode_to_vec();
    FrameView {
        kind: FrameKind::Response as i32,
        payload_protocol: registry::CONTROL,
        payload: &payload,
        request_id,
        ..FrameView::default()
    }
    .to_bytes()
    .expect("a HelloReply is far below the frame cap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_checks() {
        let good = ClientHello {
            service_name: "rp-demo".into(),
            wanted_version: "1.2.3".into(),
            ..Default::default()
        }
        .to_message();
        let me = PeerCredentials { pid: std::process::id(), uid: 0, gid: 0 };
        assert!(check_hello_fields(&good, Some(&me)).is_ok());
        let other = PeerCredentials { pid: me.pid + 1, ..me };
        let r = check_hello_fields(&good, Some(&other)).unwrap_err();
        assert_eq!(r.code, ErrorCode::PeerRejected as i32);
        let bad_name = Hello { service_name: "Rp_Demo".into(), ..good.clone() };
        let r = check_hello_fields(&bad_name, None).unwrap_err();
        assert_eq!((r.code, r.reason.as_str()), (ErrorCode::PeerRejected as i32, "invalid service_name"));
        let bad_version = Hello { wanted_version: "1.2".into(), ..good.clone() };
        let r = check_hello_fields(&bad_version, None).unwrap_err();
        assert_eq!((r.code, r.reason.as_str()), (ErrorCode::PeerRejected as i32, "invalid wanted_version"));
        // When several checks fail, the reference's order decides: the name before the version.
        let both = Hello { wanted_version: "x".into(), ..bad_name.clone() };
        assert_eq!(check_hello_fields(&both, None).unwrap_err().reason, "invalid service_name");
        let token = Hello { auth_token: vec![0; HELLO_MAX_TOKEN + 1], ..good.clone() };
        assert!(check_hello_fields(&token, None).unwrap_err().reason.contains("1024 bytes"));
        let id = Hello { request_id: "x".repeat(HELLO_MAX_SHORT_FIELD + 1), ..good.clone() };
        assert!(check_hello_fields(&id, None).unwrap_err().reason.contains("256 bytes"));
        let bad_proto = Hello { client_min_protocol: 2, client_max_protocol: 3, ..good.clone() };
        assert_eq!(
            check_hello_fields(&bad_proto, None).unwrap_err().code,
            ErrorCode::VersionUnsupported as i32
        );
        let long = Hello { client_version: "x".repeat(129), ..good };
        assert_eq!(check_hello_fields(&long, None).unwrap_err().code, ErrorCode::PeerRejected as i32);
    }

    #[test]
    fn refusal_reply_matches_vector_shape() {
        let r = Refusal::new(ErrorCode::ServiceUnknown, "service is not registered");
        let bytes = hello_reply_frame(1, hello_reply::Result::Refused(r.to_message()));
        let want = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/hello_reply_refused_service_unknown.hex"
        ))
        .unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want.trim());
    }
}
