//! The client: reach a backend for a service through a broker, as the reference client does.

use std::time::{Duration, Instant};

use prost::Message;

use super::{Conn, DEFAULT_HANDOFF_WAIT, DISABLE_ENV};
use crate::control::{client_handshake, ClientHello};
use crate::error::Error;
use crate::transport::{self, Endpoint, Stream, TlsClientOptions};
use crate::wire::proto::{AdminReply, AdminRequest, FrameKind, HandoffAck, Negotiated, PayloadEncoding};
use crate::wire::{registry, FrameReader, FrameView, FrameWriter, WireError, CAP_HANDLE_PASSING};

/// What [`connect`] needs to know.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// The broker's endpoint.
    pub broker: Endpoint,
    /// The service to reach (1–64 characters of `[a-z0-9-]`).
    pub service_name: String,
    /// The backend version wanted (semver).
    pub wanted_version: String,
    /// The caller's own version: hello-skip is tried only when it equals `wanted_version`.
    pub own_version: String,
    /// A backend endpoint remembered from an earlier connect, for hello-skip.
    pub cached_endpoint: Option<Endpoint>,
    /// Informational client version sent in the Hello (≤ 128 characters).
    pub client_version: String,
    /// Proposed keepalive interval in seconds (0 = let the broker choose).
    pub keepalive_secs: u64,
    /// Adopt a handed-off connection when the broker offers one.
    pub adopt_handoff: bool,
    /// How long to wait for the handoff-ready relay (default 2 s).
    pub handoff_wait: Duration,
    /// Limit for each connect and for the Hello round trip (default 5 s).
    pub timeout: Duration,
    /// Fail with `Disabled` when `RUNNING_PROCESS_DISABLE=1` (and with `Config` for any other
    /// non-empty value).
    pub honor_disable_env: bool,
    /// Token for brokers that require one (`Hello.auth_token`).
    pub auth_token: Vec<u8>,
    /// How a `tls://` endpoint (the broker, a cached endpoint, or the `backend_pipe` the broker
    /// names) is verified, and the client certificate offered there; unused for Unix and
    /// `tcp://` endpoints. A connection over TLS is never handed off (its TLS state cannot
    /// travel with its descriptor): over a `tls://` broker endpoint no handoff is asked for.
    pub tls: TlsClientOptions,
}

impl BrokerOptions {
    /// Options with defaults for everything but the broker, service and versions.
    pub fn new(broker: Endpoint, service_name: &str, wanted_version: &str, own_version: &str) -> Self {
        BrokerOptions {
            broker,
            service_name: service_name.to_owned(),
            wanted_version: wanted_version.to_owned(),
            own_version: own_version.to_owned(),
            cached_endpoint: None,
            client_version: String::new(),
            keepalive_secs: 0,
            adopt_handoff: false,
            handoff_wait: DEFAULT_HANDOFF_WAIT,
            timeout: Duration::from_secs(5),
            honor_disable_env: false,
            auth_token: Vec::new(),
            tls: TlsClientOptions::default(),
        }
    }
}

/// How [`connect`] reached the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Straight to the cached endpoint, without a Hello.
    HelloSkip,
    /// Hello to the broker, then a new connection to `backend_pipe`.
    Negotiated,
    /// Hello to the broker, which handed that same connection to the backend.
    HandedOff,
}

/// A connection to a backend and how it was made.
#[derive(Debug)]
pub struct BrokerConnection {
    /// The backend connection.
    pub conn: Conn,
    /// The route taken.
    pub route: Route,
    /// The backend endpoint to cache for hello-skip next time.
    pub endpoint: Endpoint,
    /// What the broker negotiated (`None` after hello-skip).
    pub negotiated: Option<Negotiated>,
}

/// Reads `RUNNING_PROCESS_DISABLE`: unset or empty = enabled, `1` = disabled, anything else is
/// a `Config` error.
pub fn broker_disabled_by_env() -> Result<bool, Error> {
    match std::env::var_os(DISABLE_ENV) {
        None => Ok(false),
        Some(v) if v.is_empty() => Ok(false),
        Some(v) if v == "1" => Ok(true),
        Some(v) => Err(Error::Config(
            format!("{DISABLE_ENV} must be unset or 1, got {:?}", v.to_string_lossy()).into(),
        )),
    }
}

/// Connects to a backend for a service.
///
/// Hello-skip to the cached endpoint when `wanted_version == own_version` and it accepts the
/// connection; otherwise Hello → Negotiated, then (when a handoff was negotiated and
/// `adopt_handoff` is set) wait for the handoff-ready relay and keep the Hello connection, or
/// else connect to `backend_pipe`. Every handoff failure falls back to `backend_pipe` silently.
///
/// Fails with `Refused` (the broker's refusal), `Disabled`/`Config` (see
/// `honor_disable_env`), `Protocol` (an empty `backend_pipe`), `Timeout`, or an I/O error.
pub fn connect(opts: &BrokerOptions) -> Result<BrokerConnection, Error> {
    if opts.honor_disable_env && broker_disabled_by_env()? {
        return Err(Error::Disabled(format!("the broker path is disabled by {DISABLE_ENV}=1").into()));
    }
    if let Some(cached) = opts.cached_endpoint.as_ref().filter(|_| opts.wanted_version == opts.own_version) {
        if let Ok(stream) = transport::connect_with(cached, opts.timeout, &opts.tls) {
            return Ok(BrokerConnection {
                conn: Conn::new(stream)?,
                route: Route::HelloSkip,
                endpoint: cached.clone(),
                negotiated: None,
            });
        }
    }

    let (stream, mut reader, negotiated) = hello(opts)?;
    let backend = if negotiated.backend_pipe.is_empty() {
        None
    } else {
        Some(Endpoint::parse(&negotiated.backend_pipe)?)
    };
    let handoff_offered = negotiated.server_capabilities & CAP_HANDLE_PASSING != 0
        && !negotiated.handle_passed_token.is_empty();
    if opts.adopt_handoff && handoff_offered && !matches!(stream, Stream::Tls(_)) && wait_for_handoff(&stream, &mut reader, &negotiated, opts.handoff_wait) {
        let endpoint = backend.clone().unwrap_or_else(|| opts.broker.clone());
        return Ok(BrokerConnection {
            conn: Conn::with_reader(stream, reader)?,
            route: Route::HandedOff,
            endpoint,
            negotiated: Some(negotiated),
        });
    }
    drop(reader);
    drop(stream);
    let Some(backend) = backend else {
        return Err(WireError::Protocol(
            format!(
                "the peer at {} is not a broker: it answered the Hello itself, naming no backend (empty \
                 backend_pipe) and offering no handoff, as a librp push server or a backend does; connect to \
                 the broker's endpoint",
                opts.broker
            )
            .into(),
        )
        .into());
    };
    let stream = transport::connect_with(&backend, opts.timeout, &opts.tls)?;
    Ok(BrokerConnection { conn: Conn::new(stream)?, route: Route::Negotiated, endpoint: backend, negotiated: Some(negotiated) })
}

/// Says Hello to the broker; returns the stream, its reader (which may hold later bytes) and
/// the Negotiated reply.
fn hello(opts: &BrokerOptions) -> Result<(Stream, FrameReader<Stream>, Negotiated), Error> {
    let deadline = Instant::now() + opts.timeout;
    let stream = transport::connect_with(&opts.broker, opts.timeout, &opts.tls)?;
    let io = |e| Error::io("configure socket", e);
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).map_err(io)?;
    stream.set_write_timeout(Some(left)).map_err(io)?;
    let mut reader = FrameReader::new(stream.try_clone().map_err(io)?);
    let mut writer = FrameWriter::new(stream.try_clone().map_err(io)?);
    let hello = ClientHello {
        service_name: opts.service_name.clone(),
        wanted_version: opts.wanted_version.clone(),
        client_version: opts.client_version.clone(),
        // A TLS connection's state cannot travel with its descriptor: never handed off.
        capabilities: if opts.adopt_handoff && !matches!(stream, Stream::Tls(_)) { CAP_HANDLE_PASSING } else { 0 },
        auth_token: opts.auth_token.clone(),
        keepalive_secs: opts.keepalive_secs,
    };
    let negotiated = client_handshake(&mut reader, &mut writer, &hello).map_err(|e| match e {
        Error::Wire(WireError::Timeout) => {
            Error::Timeout(format!("no Hello reply from {} within {:?}", opts.broker, opts.timeout).into())
        }
        e if e.refusal().and_then(|r| r.details.get(crate::push::ROLE_DETAIL)).is_some() => e.noted(format!(
            "the peer at {} is a librp push server, not a broker; connect to the broker's endpoint",
            opts.broker
        )),
        e => e,
    })?;
    Ok((stream, reader, negotiated))
}

/// Waits for the handoff-ready relay: an EVENT on 0xD0FF carrying a HandoffAck that echoes the
/// negotiated token with `accepted = true`. Any other outcome is `false`.
fn wait_for_handoff(
    stream: &Stream,
    reader: &mut FrameReader<Stream>,
    negotiated: &Negotiated,
    wait: Duration,
) -> bool {
    if stream.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).is_err() {
        return false;
    }
    let Ok(frame) = reader.read_frame() else { return false };
    if frame.payload_protocol != registry::HANDOFF
        || frame.frame_kind() != Some(FrameKind::Event)
        || frame.envelope_version != 1
        || frame.payload_encoding != PayloadEncoding::None as i32
    {
        return false;
    }
    let Ok(ack) = HandoffAck::decode(frame.payload) else { return false };
    ack.accepted && ack.token == negotiated.handle_passed_token
}

/// Sends one admin request (0xAD01) on a new connection to `endpoint` and returns the reply,
/// within `timeout` in all (`None` = no limit; zero = only a reply already there).
pub fn admin_request(endpoint: &Endpoint, request: &AdminRequest, timeout: Option<Duration>) -> Result<AdminReply, Error> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let stream = transport::connect(endpoint, timeout.unwrap_or(transport::NO_LIMIT))?;
    let conn = Conn::new(stream)?;
    let payload = request.encode_to_vec();
    conn.send(&FrameView {
        kind: FrameKind::Request as i32,
        payload_protocol: registry::ADMIN,
        payload: &payload,
        request_id: 1,
        ..FrameView::default()
    })?;
    let frame = conn.recv(deadline.map(|d| d.saturating_duration_since(Instant::now())))?;
    if frame.payload_protocol != registry::ADMIN || frame.kind != FrameKind::Response as i32 {
        return Err(WireError::Protocol(
            format!("expected an AdminReply, got kind {} on 0x{:04X}", frame.kind, frame.payload_protocol).into(),
        )
        .into());
    }
    AdminReply::decode(frame.payload.as_slice()).map_err(|e| WireError::from_prost("AdminReply", e).into())
}
