//! Dialing a push server: connect (plain, TLS), say Hello (or liminal's Connect) and register,
//! all within the connect timeout; the first connection and every reconnect go through here.

use std::time::{Duration, Instant};

use prost::Message;

use super::parse::{registration_ack, Inbound};
use super::{liminal, Dialect, WorkerOptions};
use crate::control::{client_handshake, ClientHello};
use crate::error::Error;
use crate::push::{PUSH_PROTOCOL, PUSH_PROTOCOL_VERSION, REGISTRATION_REQUEST_ID};
use crate::transport::{self, Endpoint, Stream, SwitchableReads};
use crate::wire::liminal as lwire;
use crate::wire::proto::{ErrorCode, FrameKind, Negotiated};
use crate::wire::{FrameReader, FrameView, FrameWriter, WireError, HELLO_MAX_BODY, MAX_BODY};

/// One connected and registered connection, before it is installed in the worker.
pub(super) struct Connection {
    pub(super) socket: Stream,
    pub(super) writer: FrameWriter<Stream>,
    pub(super) reader: Inbound,
    pub(super) worker_id: u64,
    pub(super) negotiated: Negotiated,
}

/// Adds to a refusal of the worker's Hello what the peer is: a librp push server serving
/// another service, or something else (a broker refuses the push service the same way).
fn peer_not_push_server(e: Error, opts: &WorkerOptions) -> Error {
    let Some(refusal) = e.refusal() else { return e };
    if refusal.code != ErrorCode::ServiceUnknown as i32 {
        return e;
    }
    let note = match (refusal.details.get(crate::push::ROLE_DETAIL), refusal.details.get(crate::push::SERVICE_DETAIL)) {
        (Some(role), Some(theirs)) if role == crate::push::PUSH_SERVER_ROLE => format!(
            "the push server at {} answers to service {theirs:?}, not {:?}",
            opts.endpoint, opts.service_name
        ),
        (Some(role), None) if role == crate::push::PUSH_SERVER_ROLE => return e,
        _ => format!(
            "the peer at {} is not a librp push server (a running-process broker without a {:?} service \
             answers like this); connect the worker to the push server's own endpoint",
            opts.endpoint, opts.service_name
        ),
    };
    e.noted(note)
}



/// Checks what a worker would send before it connects.
pub(super) fn check_options(opts: &WorkerOptions) -> Result<(), Error> {
    match opts.dialect {
        Dialect::Librp => {
            crate::push::check_registration(&opts.registration).map_err(Error::invalid_argument)?;
            if !opts.activity_descriptors.is_empty() {
                return Err(Error::invalid_argument("activity descriptors are sent to liminal endpoints only"));
            }
        }
        Dialect::Liminal => liminal::check_options(opts)?,
    }
    let tls_set = !opts.tls.ca_pem.is_empty() || !opts.tls.cert_chain_pem.is_empty() || !opts.tls.server_name.is_empty();
    if tls_set && !matches!(opts.endpoint, Endpoint::Tls(_)) {
        return Err(Error::invalid_argument(format!("{}: TLS options are for tls:// endpoints only", opts.endpoint)));
    }
    if let Some(p) = &opts.reconnect {
        if p.min_delay > p.max_delay {
            return Err(Error::invalid_argument("the reconnect minimum delay is above its maximum"));
        }
    }
    Ok(())
}

/// Dials the endpoint, says Hello (or Connect) and registers, all within the connect timeout.
/// `watch` sees the socket as soon as it exists (a reconnecting worker keeps it so `close` can
/// end the attempt) and may stop the attempt.
pub(super) fn dial(opts: &WorkerOptions, watch: &dyn Fn(&Stream) -> Result<(), Error>) -> Result<Connection, Error> {
    let deadline = Instant::now() + opts.connect_timeout;
    let socket = transport::connect_with(&opts.endpoint, opts.connect_timeout, &opts.tls)?;
    watch(&socket)?;
    let remaining = || {
        deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()).ok_or_else(|| {
            Error::Timeout(format!("connect to {} exceeded {:?}", opts.endpoint, opts.connect_timeout).into())
        })
    };
    let io = |e| Error::io("configure socket", e);
    socket.set_read_timeout(Some(remaining()?)).map_err(io)?;
    socket.set_write_timeout(Some(remaining()?)).map_err(io)?;
    let mut writer = FrameWriter::new(socket.try_clone().map_err(io)?);
    let timeout_to_error = |e: Error| match transport::untangle_tls_error(e) {
        Error::Wire(WireError::Timeout) => {
            Error::Timeout(format!("no answer from {} within {:?}", opts.endpoint, opts.connect_timeout).into())
        }
        e => e,
    };
    let (reader, worker_id, negotiated) = match opts.dialect {
        Dialect::Librp => {
            // The HelloReply and the registration ack are small: the Hello cap holds until then.
            let mut reader = FrameReader::with_max_body(socket.try_clone().map_err(io)?, HELLO_MAX_BODY);
            let hello = ClientHello {
                service_name: opts.service_name.clone(),
                wanted_version: PUSH_PROTOCOL_VERSION.to_owned(),
                client_version: opts.client_version.clone(),
                auth_token: opts.auth_token.clone(),
                ..ClientHello::default()
            };
            let negotiated = client_handshake(&mut reader, &mut writer, &hello)
                .map_err(|e| peer_not_push_server(timeout_to_error(e), opts))?;

            // Register before anyone receives, so nothing else can consume the ack.
            socket.set_read_timeout(Some(remaining()?)).map_err(io)?;
            let registration = opts.registration.encode_to_vec();
            writer.write_frame(&FrameView {
                kind: FrameKind::Request as i32,
                payload_protocol: PUSH_PROTOCOL,
                payload: &registration,
                request_id: REGISTRATION_REQUEST_ID,
                ..FrameView::default()
            })?;
            let ack = registration_ack(&reader.read_frame().map_err(|e| timeout_to_error(e.into()))?)?;
            if !ack.accepted {
                return Err(Error::Rejected(format!("registration rejected: {}", ack.reason).into()));
            }
            reader.set_max_body(MAX_BODY);
            // Pushes that arrived with the ack stay buffered in the reader, which changes hands.
            (Inbound::Librp(reader.map_inner(SwitchableReads::new)), ack.worker_id, negotiated)
        }
        Dialect::Liminal => {
            // Both sides keep the connection alive the same way (30 s idle, 10 s apart, 5 probes).
            socket.set_keepalive(Duration::from_secs(30), Duration::from_secs(10), 5).map_err(io)?;
            let mut reader = lwire::Reader::new(socket.try_clone().map_err(io)?);
            let rearm = || socket.set_read_timeout(Some(remaining()?)).map_err(io);
            let negotiated = liminal::handshake(&mut reader, &mut writer, opts, &rearm).map_err(timeout_to_error)?;
            (Inbound::Liminal(reader.map_inner(SwitchableReads::new)), 0, negotiated)
        }
    };
    socket.set_read_timeout(None).map_err(io)?;
    socket.set_write_timeout(Some(opts.send_timeout)).map_err(io)?;
    Ok(Connection { socket, writer, reader, worker_id, negotiated })
}
