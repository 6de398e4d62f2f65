//! Connection handoff, backend side: the one-time token store, answering a `HandoffOffer`
//! with a `HandoffAck`, and adopting a descriptor received over a Unix socket.
//!
//! Wire facts (`WIRE.md`, "Handoff"): the offer is a REQUEST on 0xD0FF whose request id equals
//! its `correlation_id`; the ack is a RESPONSE on 0xD0FF with the same request id, echoing the
//! presented token and the correlation id. A rejected offer still gets a well-formed ack with
//! `accepted = false` and a reason in `error_detail`.
//!
//! Descriptor transport (librp's choice, to be confirmed by the interop suite): the broker
//! sends the handed-off descriptor with `SCM_RIGHTS` together with the first bytes of the
//! framed offer on the same Unix socket; the rest of the offer (if any) follows as ordinary
//! bytes, and the ack goes back on that socket. See [`accept_handoff`]. On Windows, as
//! running-process does it there, the broker duplicates the connection's pipe handle into the
//! backend (`DuplicateHandle`) and the offer carries its value in `handle_value`.

mod token;

/// Descriptor passing (`SCM_RIGHTS`) lives in the transport seam; re-exported here, where
/// handoff users look for it.
pub use crate::transport::{recv_with_fd, send_with_fd, MAX_FDS_PER_MESSAGE};
pub use token::{HandoffStore, Token, TokenRejection, DEFAULT_MAX_PENDING, DEFAULT_TTL, TOKEN_LEN};

use std::borrow::Cow;
use std::io::{Read, Write};

use prost::Message;

use crate::error::{Error, Result};
use crate::transport::{AsDescriptor, OwnedDescriptor};
use crate::wire::proto::{FrameKind, HandoffAck, HandoffOffer};
use crate::wire::{self, registry, Decoded, FrameView, WireError, HEADER_LEN};

/// Largest offer frame body accepted (offers are a few dozen bytes).
pub const MAX_OFFER_BODY: u32 = wire::HELLO_MAX_BODY;

/// What happened to one offer; the ack has been built (or written) either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffOutcome {
    /// True when the token was valid and consumed.
    pub accepted: bool,
    /// The reason for a rejection (also sent as `error_detail`); empty when accepted.
    pub error_detail: String,
    /// The offer's service name.
    pub service_name: String,
    /// The offer's correlation id.
    pub correlation_id: u64,
}

/// The broker's HandoffOffer frame: a REQUEST on 0xD0FF whose request id is the correlation id,
/// carrying the one-time token (`handle_value` 0: on Unix the descriptor travels by SCM_RIGHTS).
pub fn offer_frame(token: &[u8], service_name: &str, correlation_id: u64) -> Vec<u8> {
    offer_frame_with_handle(0, token, service_name, correlation_id)
}

/// The HandoffOffer frame carrying `handle_value`: on Windows the value of the connection's
/// handle as duplicated into the backend (`DuplicateHandle`), as running-process hands
/// connections over there.
pub fn offer_frame_with_handle(handle_value: u64, token: &[u8], service_name: &str, correlation_id: u64) -> Vec<u8> {
    let offer = HandoffOffer {
        handle_value,
        token: token.to_vec(),
        service_name: service_name.to_owned(),
        correlation_id,
    }
    .encode_to_vec();
    FrameView {
        kind: FrameKind::Request as i32,
        payload_protocol: registry::HANDOFF,
        payload: &offer,
        request_id: correlation_id,
        ..FrameView::default()
    }
    .to_bytes()
    .expect("a HandoffOffer is far below the frame cap")
}

/// Answers one offer frame: checks the frame, the request id against the correlation id, and
/// the token (consuming it), and returns the encoded HandoffAck frame with the outcome.
///
/// Fails (no ack possible) only when the frame is not a HandoffOffer at all: wrong payload
/// protocol, wrong kind, or an undecodable payload.
pub fn answer_offer(
    frame: &FrameView<'_>,
    store: &HandoffStore,
) -> Result<(Vec<u8>, HandoffOutcome)> {
    if frame.payload_protocol != registry::HANDOFF {
        return Err(WireError::Protocol(Cow::Owned(format!(
            "expected a handoff offer (payload protocol 0xD0FF), got 0x{:04X}",
            frame.payload_protocol
        )))
        .into());
    }
    if frame.kind != FrameKind::Request as i32 {
        return Err(WireError::Protocol("a handoff offer must be a REQUEST frame".into()).into());
    }
    let offer = HandoffOffer::decode(frame.payload)
        .map_err(|e| WireError::from_prost("HandoffOffer", e))?;
    let verdict = if frame.request_id != offer.correlation_id {
        Err(Cow::Borrowed(
            "handoff offer request id does not match its correlation id",
        ))
    } else {
        store
            .consume(&offer.token)
            .map_err(|r| Cow::Owned(r.to_string()))
    };
    let error_detail = verdict.err().map(Cow::into_owned).unwrap_or_default();
    let ack = HandoffAck {
        token: offer.token,
        accepted: error_detail.is_empty(),
        error_detail,
        correlation_id: offer.correlation_id,
    };
    let payload = ack.encode_to_vec();
    let reply = FrameView {
        payload: &payload,
        ..crate::mux::response_to(frame)
    }
    .to_bytes()?;
    let outcome = HandoffOutcome {
        accepted: ack.accepted,
        error_detail: ack.error_detail,
        service_name: offer.service_name,
        correlation_id: offer.correlation_id,
    };
    Ok((reply, outcome))
}

/// Reads exactly one frame (never a byte more) from `stream`, starting with `prefix` bytes
/// already received.
fn read_one_frame<R: Read>(stream: &mut R, mut prefix: Vec<u8>) -> Result<Vec<u8>> {
    loop {
        match wire::frame_extent(&prefix, MAX_OFFER_BODY)? {
            wire::Extent::Complete(total) if total == prefix.len() => return Ok(prefix),
            wire::Extent::Complete(_) => {
                return Err(WireError::Protocol(
                    "bytes after the handoff offer in the same message".into(),
                )
                .into())
            }
            wire::Extent::NeedMore(needed) => {
                let have = prefix.len();
                let want = if have < HEADER_LEN {
                    HEADER_LEN
                } else {
                    needed
                };
                prefix.resize(want, 0);
                let mut filled = have;
                while filled < want {
                    match stream.read(&mut prefix[filled..]) {
                        Ok(0) if filled == 0 => return Err(WireError::Closed.into()),
                        Ok(0) => {
                            return Err(WireError::Truncated {
                                received: filled,
                                expected: want,
                            }
                            .into())
                        }
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(WireError::from_io(e).into()),
                    }
                }
            }
        }
    }
}

/// Serves one handoff offer on a framed control connection: reads the offer (exactly one
/// frame), answers it, and writes the ack. A rejected token is not an error: the outcome says
/// so and the peer got a well-formed ack.
pub fn serve_offer<S: Read + Write>(stream: &mut S, store: &HandoffStore) -> Result<HandoffOutcome> {
    let bytes = read_one_frame(stream, Vec::new())?;
    serve_frame_bytes(stream, &bytes, store)
}

fn serve_frame_bytes<W: Write>(
    stream: &mut W,
    bytes: &[u8],
    store: &HandoffStore,
) -> Result<HandoffOutcome> {
    let Decoded::Frame { frame, .. } = wire::decode_frame(bytes, MAX_OFFER_BODY)? else {
        unreachable!("read_one_frame returns a complete frame");
    };
    let (ack, outcome) = answer_offer(&frame, store)?;
    stream
        .write_all(&ack)
        .and_then(|()| stream.flush())
        .map_err(WireError::from_io)?;
    Ok(outcome)
}

/// Receives a handed-off connection on `socket`: the descriptor (by `SCM_RIGHTS`) with the
/// first bytes of a HandoffOffer frame, the rest of the frame, then answers the offer with an
/// ack on `socket`. Returns the adopted descriptor when the token was accepted; otherwise the
/// descriptor is closed and the error is [`Error::Rejected`] with the reason. Every received
/// descriptor is closed on every failure.
///
/// The descriptor may also come as running-process's broker sends it: with the 16 token bytes
/// alone, the offer frame after them; the offer must then carry that token.
///
/// `socket` is any Unix stream socket: a [`transport::Stream`](crate::transport::Stream), a
/// `UnixStream`, or a wrapper around a caller's descriptor (the C API uses one that enforces a
/// deadline on reads).
#[cfg(unix)]
pub fn accept_handoff<S: AsDescriptor + Read + Write>(
    socket: &mut S,
    store: &HandoffStore,
) -> Result<(OwnedDescriptor, HandoffOutcome)> {
    let mut first = vec![0u8; 512];
    let (n, fd) = recv_with_fd(socket, &mut first)?;
    first.truncate(n);
    let Some(fd) = fd else {
        return Err(WireError::Protocol("the handoff offer carried no descriptor".into()).into());
    };
    // running-process's layout: the descriptor travels with the token alone (no frame is
    // sent in a 16-byte first message with a descriptor otherwise).
    let sideband = (n == TOKEN_LEN).then(|| std::mem::take(&mut first));
    let bytes = read_one_frame(socket, first)?;
    if let Some(token) = sideband {
        let Decoded::Frame { frame, .. } = wire::decode_frame(&bytes, MAX_OFFER_BODY)? else {
            unreachable!("read_one_frame returns a complete frame");
        };
        if HandoffOffer::decode(frame.payload).is_ok_and(|o| o.token != token) {
            return Err(WireError::Protocol("the handoff offer's token is not the one sent with the descriptor".into()).into());
        }
    }
    let outcome = serve_frame_bytes(socket, &bytes, store)?;
    if outcome.accepted {
        Ok((fd, outcome))
    } else {
        Err(Error::Rejected(outcome.error_detail.into()))
    }
}

/// Receives a handed-off connection on Windows: reads the HandoffOffer from `socket`, whose
/// `handle_value` is the connection's pipe handle as the broker duplicated it into this
/// process; checks that this value names a named pipe here (a value that does not is refused
/// before any ack); answers the offer with an ack on `socket`. Returns the adopted handle when
/// the token was accepted; otherwise the error is [`Error::Rejected`] with the reason, and the
/// handle is left alone (as running-process leaves it).
#[cfg(windows)]
pub fn accept_handoff<S: AsDescriptor + Read + Write>(
    socket: &mut S,
    store: &HandoffStore,
) -> Result<(OwnedDescriptor, HandoffOutcome)> {
    let bytes = read_one_frame(socket, Vec::new())?;
    let Decoded::Frame { frame, .. } = wire::decode_frame(&bytes, MAX_OFFER_BODY)? else {
        unreachable!("read_one_frame returns a complete frame");
    };
    let handle_value = HandoffOffer::decode(frame.payload).map(|o| o.handle_value).unwrap_or(0);
    if frame.payload_protocol == registry::HANDOFF && !crate::transport::names_pipe(handle_value) {
        return Err(WireError::Protocol(
            format!("the handoff offer's handle_value {handle_value:#x} is not a pipe handle in this process").into(),
        )
        .into());
    }
    let outcome = serve_frame_bytes(socket, &bytes, store)?;
    if !outcome.accepted {
        return Err(Error::Rejected(outcome.error_detail.into()));
    }
    let handle = crate::transport::adopt_handle(handle_value).map_err(|e| Error::io("adopt the handed-off handle", e))?;
    Ok((handle, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.trim();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    const TOKEN: [u8; 16] = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
        0x1f,
    ];

    #[test]
    fn accepted_and_rejected_acks_match_the_vectors() {
        let store = HandoffStore::default();
        store.insert(&Token(TOKEN)).unwrap();
        let offer = vector("handoff_offer.hex");
        let mut conn = std::io::Cursor::new(offer.clone());
        let mut out = Vec::new();
        let outcome = serve_frame_bytes(
            &mut out,
            &read_one_frame(&mut conn, Vec::new()).unwrap(),
            &store,
        )
        .unwrap();
        assert!(outcome.accepted);
        assert_eq!(outcome.service_name, "rp-demo");
        assert_eq!(outcome.correlation_id, 77);
        assert_eq!(out, vector("handoff_ack_accepted.hex"));

        // Replayed: the token was consumed.
        let mut out = Vec::new();
        let outcome = serve_frame_bytes(&mut out, &offer, &store).unwrap();
        assert!(!outcome.accepted);
        assert_eq!(out, vector("handoff_ack_rejected.hex"));

        // Wrong token.
        let other = HandoffStore::default();
        other.insert(&Token([0x20; 16])).unwrap();
        let mut out = Vec::new();
        assert!(
            !serve_frame_bytes(&mut out, &offer, &other)
                .unwrap()
                .accepted
        );
        assert_eq!(out, vector("handoff_ack_rejected.hex"));
        assert_eq!(other.len(), 1, "a wrong token consumes nothing");
    }
}
