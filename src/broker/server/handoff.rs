//! Handing a negotiated client connection to the backend, on a short thread of its own: the
//! descriptor goes with a HandoffOffer, the backend's HandoffAck comes back and is relayed to
//! the client.

use std::io::Write;
use std::time::Duration;

use prost::Message;

use crate::error::Error;
use crate::handoff;
use crate::transport::{self, Endpoint, Stream};
use crate::wire::proto::{FrameKind, HandoffAck};
use crate::wire::{registry, FrameReader, FrameView, WireError, HELLO_MAX_BODY};

/// One handoff, run on its own short thread: finish writing the Negotiated, pass the client's
/// descriptor to the backend with a HandoffOffer, wait for the HandoffAck, relay it to the
/// client as the handoff-ready EVENT. A failure relays `accepted = false`, so the client
/// reconnects to `backend_pipe` at once instead of waiting out its timeout.
pub(super) struct HandoffTask {
    /// The client's connection (a Unix socket).
    pub(super) client: Stream,
    /// What is still to be written to the client before its descriptor goes (the Negotiated).
    pub(super) pending: Vec<u8>,
    /// The backend's handoff socket.
    pub(super) backend: Endpoint,
    /// The one-time token the Negotiated carries.
    pub(super) token: handoff::Token,
    /// The service negotiated.
    pub(super) service_name: String,
    /// The connection id, which is the offer's correlation id.
    pub(super) correlation_id: u64,
    /// How long the backend has to acknowledge.
    pub(super) ack_timeout: Duration,
}

impl HandoffTask {
    /// True when the backend accepted the connection.
    pub(super) fn run(self) -> bool {
        let io_limit = Some(Duration::from_secs(2));
        if self.client.set_nonblocking(false).is_err()
            || self.client.set_write_timeout(io_limit).is_err()
            || (&self.client).write_all(&self.pending).is_err()
        {
            crate::log!(Warn, "broker", "handoff {} failed: the client went away", self.correlation_id);
            return false;
        }
        let ack = match self.offer() {
            Ok(ack) => ack,
            Err(e) => HandoffAck {
                token: self.token.0.to_vec(),
                accepted: false,
                error_detail: format!("handoff failed: {e}"),
                correlation_id: self.correlation_id,
            },
        };
        let payload = ack.encode_to_vec();
        let relay = FrameView {
            kind: FrameKind::Event as i32,
            payload_protocol: registry::HANDOFF,
            payload: &payload,
            request_id: self.correlation_id,
            ..FrameView::default()
        };
        if let Ok(bytes) = relay.to_bytes() {
            let _ = (&self.client).write_all(&bytes);
        }
        if ack.accepted {
            crate::log!(Info, "broker", "handoff {} to {} accepted", self.correlation_id, self.backend);
        } else {
            crate::log!(Warn, "broker", "handoff {} to {} declined: {}", self.correlation_id, self.backend, ack.error_detail);
        }
        ack.accepted
        // The broker's copy of the client connection closes here; an adopted one lives on in
        // the backend.
    }

    fn offer(&self) -> Result<HandoffAck, Error> {
        let socket = transport::connect(&self.backend, self.ack_timeout)?;
        if !socket.is_unix() {
            return Err(Error::invalid_argument("a handoff endpoint must be a Unix socket (a named pipe on Windows)"));
        }
        let io = |e| Error::io("configure handoff socket", e);
        socket.set_read_timeout(Some(self.ack_timeout)).map_err(io)?;
        socket.set_write_timeout(Some(self.ack_timeout)).map_err(io)?;
        #[cfg(unix)]
        {
            let frame = handoff::offer_frame(&self.token.0, &self.service_name, self.correlation_id);
            let sent = handoff::send_with_fd(&socket, &frame, &self.client)?;
            if sent < frame.len() {
                (&socket).write_all(&frame[sent..]).map_err(|e| Error::io("send handoff offer", e))?;
            }
        }
        // Windows: the client's pipe handle is duplicated into the backend (the process serving
        // the handoff pipe, as the kernel reports it) and its value goes in the offer.
        #[cfg(windows)]
        {
            let client = self.client.pipe_handle().ok_or_else(|| Error::invalid_argument("only a pipe connection can be handed off"))?;
            let backend_pid = socket
                .peer_credentials()
                .map(|p| p.pid)
                .ok_or_else(|| Error::invalid_argument("the handoff pipe's server process is unknown"))?;
            let value = transport::duplicate_handle_to(client, backend_pid).map_err(|e| Error::io("duplicate the client's handle", e))?;
            let frame = handoff::offer_frame_with_handle(value, &self.token.0, &self.service_name, self.correlation_id);
            (&socket).write_all(&frame).map_err(|e| Error::io("send handoff offer", e))?;
        }
        let mut reader = FrameReader::with_max_body(&socket, HELLO_MAX_BODY);
        let reply = reader.read_frame().map_err(|e| match e {
            WireError::Timeout => Error::Timeout("the backend did not acknowledge the handoff in time".into()),
            e => e.into(),
        })?;
        if reply.payload_protocol != registry::HANDOFF
            || reply.frame_kind() != Some(FrameKind::Response)
            || reply.request_id != self.correlation_id
        {
            return Err(WireError::Protocol("expected the backend's HandoffAck".into()).into());
        }
        let ack = HandoffAck::decode(reply.payload).map_err(|e| WireError::from_prost("HandoffAck", e))?;
        if ack.token != self.token.0 || ack.correlation_id != self.correlation_id {
            return Err(WireError::Protocol("the HandoffAck does not echo the offer".into()).into());
        }
        Ok(ack)
    }
}
