//! The control plane (payload protocol 0x0000): the Hello a client opens every connection with,
//! and the HelloReply (Negotiated or Refused) that answers it. Shared by every protocol role.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use prost::Message;

use crate::error::Error;
use crate::transport::PeerCredentials;
use crate::wire::proto::{hello_reply, ErrorCode, FrameKind, Hello, HelloReply, Negotiated, Refused};
use crate::wire::{registry, FrameReader, FrameView, FrameWriter, WireError, PROTOCOL_VERSION};

/// Keepalive interval a server grants a client that proposed none.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 1800;
/// Name librp reports as `client_lib_name`.
pub const CLIENT_LIB_NAME: &str = "librp";

/// A server's refusal of a Hello: the wire `Refused` message in Rust form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Raw `ErrorCode` value (see [`ErrorCode`]).
    pub code: i32,
    /// Human-readable reason.
    pub reason: String,
    /// How long to wait before retrying; 0 = no hint.
    pub retry_after_ms: u64,
    /// Extra key/value details.
    pub details: BTreeMap<String, String>,
}

impl Refusal {
    /// A refusal with a code and reason.
    pub fn new(code: ErrorCode, reason: impl Into<String>) -> Self {
        Refusal { code: code as i32, reason: reason.into(), retry_after_ms: 0, details: BTreeMap::new() }
    }

    /// Adds a retry hint.
    pub fn with_retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_ms = ms;
        self
    }

    /// The code's name as the protocol spells it (`SERVICE_UNKNOWN`, ...), or "UNKNOWN".
    pub fn code_name(&self) -> &'static str {
        ErrorCode::try_from(self.code)
            .map(|c| c.as_str_name().trim_start_matches("ERROR_CODE_"))
            .unwrap_or("UNKNOWN")
    }

    /// The wire message.
    pub fn to_message(&self) -> Refused {
        Refused {
            reason: self.reason.clone(),
            daemon_min_protocol: PROTOCOL_VERSION,
            daemon_max_protocol: PROTOCOL_VERSION,
            code: self.code,
            details: self.details.clone(),
            retry_after_ms: self.retry_after_ms,
        }
    }

    /// From the wire message.
    pub fn from_message(r: Refused) -> Self {
        Refusal { code: r.code, reason: r.reason, retry_after_ms: r.retry_after_ms, details: r.details }
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
    validate_client_hello(hello)?;
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

fn validate_client_hello(hello: &ClientHello) -> Result<(), Error> {
    check_hello_fields(&hello.to_message(), None).map_err(|r| Error::invalid_argument(r.reason))
}

/// Checks a Hello as a broker does: protocol range, service name, version strings and their
/// caps, and a non-zero `peer_pid` against the kernel-reported peer.
pub fn check_hello_fields(hello: &Hello, peer: Option<&PeerCredentials>) -> Result<(), Refusal> {
    if hello.client_min_protocol > PROTOCOL_VERSION || hello.client_max_protocol < PROTOCOL_VERSION {
        return Err(Refusal::new(
            ErrorCode::VersionUnsupported,
            format!(
                "client protocol range {}..={} does not include {PROTOCOL_VERSION}",
                hello.client_min_protocol, hello.client_max_protocol
            ),
        ));
    }
    let name = &hello.service_name;
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Refusal::new(
            ErrorCode::ServiceUnknown,
            "service_name must be 1-64 characters of [a-z0-9-]",
        ));
    }
    if hello.wanted_version.len() > 64 || !is_semver(&hello.wanted_version) {
        return Err(Refusal::new(
            ErrorCode::VersionUnsupported,
            "wanted_version must be semver MAJOR.MINOR.PATCH[-pre], at most 64 characters",
        ));
    }
    if hello.client_version.len() > 128 {
        return Err(Refusal::new(ErrorCode::PeerRejected, "client_version is longer than 128 characters"));
    }
    if hello.client_lib_name.len() > 64 || hello.client_lib_version.len() > 64 {
        return Err(Refusal::new(
            ErrorCode::PeerRejected,
            "client_lib_name and client_lib_version must be at most 64 characters",
        ));
    }
    if let Some(peer) = peer {
        if hello.peer_pid != 0 && hello.peer_pid != peer.pid {
            return Err(Refusal::new(ErrorCode::PeerRejected, "peer_pid does not match verified peer"));
        }
    }
    Ok(())
}

/// True for `MAJOR.MINOR.PATCH` with an optional `-pre` suffix of `[0-9A-Za-z.-]`.
pub fn is_semver(v: &str) -> bool {
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let mut parts = core.split('.');
    let numeric = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0')))
    };
    numeric(parts.next())
        && numeric(parts.next())
        && numeric(parts.next())
        && parts.next().is_none()
        && pre.is_none_or(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
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
    fn semver() {
        for ok in ["1.2.3", "0.0.0", "10.20.30", "1.2.3-rc.1", "1.0.0-alpha-2"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "1.2.3-", "1.2.3-a b", "v1.2.3"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

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
        assert_eq!(check_hello_fields(&bad_name, None).unwrap_err().code, ErrorCode::ServiceUnknown as i32);
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
