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
        let io = |e| Error::io("configure handoff socket", e);
        socket.set_read_timeout(Some(self.ack_timeout)).map_err(io)?;
        socket.set_write_timeout(Some(self.ack_timeout)).map_err(io)?;
        // The descriptor with the token alone, then the offer (a duplicated handle's value in
        // the offer on Windows): running-process's layout, which its backends expect.
        handoff::offer_connection(&socket, &self.client, &self.token, &self.service_name, self.correlation_id)?;
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
