//! Parsing what a worker sends, by the phase of its connection (Hello, registration, replies),
//! building the server's own push-protocol frames, and the fuzzing hook over that parse path.

use prost::Message;

use crate::control::check_hello_fields;
use crate::fastpath;
use crate::push::proto::{push_reply, PushReply, Registration};
use crate::push::{check_registration, MAX_FAILURE_MESSAGE, PUSH_PROTOCOL};
use crate::transport::PeerCredentials;
use crate::wire::proto::{FrameKind, Hello};
use crate::wire::{registry, FrameReader, FrameView, WireError, HELLO_MAX_BODY, MAX_BODY};

/// Where a connection is in its life, which decides the frames it may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the Hello.
    Hello,
    /// Negotiated; waiting for the registration.
    Registering,
    /// Registration sent to the application for a decision.
    AwaitingDecision,
    /// Registered: receives pushes.
    Registered,
    /// Refused or failed: flush what is queued, then close.
    Closing,
}

/// What one frame from a connection asks for, copied out of the read buffer.
pub(super) enum Incoming {
    Hello(u64, Hello),
    Registration(u64, Registration),
    Reply(u64, PushReply),
}

/// Fuzzing and corpus-replay hook (see [`crate::push::fuzzing`]): runs `bytes`, as if one worker
/// connection sent them, through the event loop's parse path without a socket: a
/// [`FrameReader`] capped at [`HELLO_MAX_BODY`] until the registration is accepted, [`parse_incoming`]
/// in the connection's phase, and the Hello and registration checks the loop applies (with
/// `peer` as the kernel-reported peer). Returns the number of frames accepted before the server
/// would have closed the connection.
pub(crate) fn fuzz_worker_stream(bytes: &[u8], peer: Option<PeerCredentials>) -> usize {
    let mut reader = FrameReader::with_max_body(bytes, HELLO_MAX_BODY);
    let mut phase = Phase::Hello;
    let mut accepted = 0;
    loop {
        let incoming = match reader.read_frame() {
            Ok(frame) => parse_incoming(phase, &frame),
            Err(_) => return accepted,
        };
        match incoming {
            Ok(Incoming::Hello(_, hello)) => {
                if check_hello_fields(&hello, peer.as_ref()).is_err() {
                    return accepted;
                }
                phase = Phase::Registering;
            }
            Ok(Incoming::Registration(_, reg)) => {
                if check_registration(&reg).is_err() {
                    return accepted;
                }
                reader.set_max_body(MAX_BODY);
                phase = Phase::Registered;
            }
            Ok(Incoming::Reply(..)) => {}
            Err(_) => return accepted,
        }
        accepted += 1;
    }
}

/// Decodes one frame into what it asks for, given where the connection is in its life. A
/// frame that breaks the protocol is a [`WireError::Protocol`]; a reply whose payload does not
/// fit in memory is [`WireError::NoMemory`].
pub(super) fn parse_incoming(phase: Phase, frame: &FrameView<'_>) -> Result<Incoming, WireError> {
    let violation = |why: String| WireError::Protocol(why.into());
    frame.check_plain()?;
    let kind = frame.frame_kind();
    match phase {
        Phase::Hello => {
            if frame.payload_protocol != registry::CONTROL || kind != Some(FrameKind::Request) {
                return Err(violation(format!("expected a Hello, got payload protocol 0x{:04X}", frame.payload_protocol)));
            }
            Hello::decode(frame.payload)
                .map(|h| Incoming::Hello(frame.request_id, h))
                .map_err(|e| violation(format!("malformed Hello: {e}")))
        }
        Phase::Registering => {
            if frame.payload_protocol != PUSH_PROTOCOL || kind != Some(FrameKind::Request) {
                return Err(violation("expected a registration".into()));
            }
            Registration::decode(frame.payload)
                .map(|r| Incoming::Registration(frame.request_id, r))
                .map_err(|e| violation(format!("malformed Registration: {e}")))
        }
        Phase::Registered => {
            if frame.payload_protocol != PUSH_PROTOCOL || kind != Some(FrameKind::Response) {
                return Err(violation(format!(
                    "expected a push reply, got kind {} on payload protocol 0x{:04X}",
                    frame.kind, frame.payload_protocol
                )));
            }
            let decoded = match fastpath::reply_payload(frame.payload) {
                Some(p) => WireError::try_copy(p).map(|p| PushReply { result: Some(push_reply::Result::Payload(p)) }),
                None => fastpath::decode_large(frame.payload, "PushReply", 1, &[2], true, |m: &mut PushReply, p| {
                    m.result = Some(push_reply::Result::Payload(p))
                }),
            };
            let reply = match decoded {
                Ok(reply) => reply,
                Err(e @ WireError::NoMemory { .. }) => return Err(e),
                Err(e @ WireError::Protocol(_)) => return Err(e),
                Err(e) => return Err(violation(e.to_string())),
            };
            if let Some(push_reply::Result::Failure(f)) = &reply.result {
                if f.message.len() > MAX_FAILURE_MESSAGE {
                    return Err(violation(format!(
                        "a failure message of {} bytes exceeds the {MAX_FAILURE_MESSAGE}-byte limit",
                        f.message.len()
                    )));
                }
            }
            Ok(Incoming::Reply(frame.request_id, reply))
        }
        Phase::AwaitingDecision | Phase::Closing => {
            Err(violation("unexpected frame before the registration was answered".into()))
        }
    }
}

/// Appends one push-protocol frame to a connection's send buffer.
pub(super) fn push_frame(
    out: &mut Vec<u8>,
    kind: FrameKind,
    request_id: u64,
    payload: &[u8],
    trace: Option<(u64, &str, &str)>,
) -> Result<(), WireError> {
    let (deadline_unix_ms, traceparent, tracestate) = trace.unwrap_or((0, "", ""));
    let frame = FrameView {
        kind: kind as i32,
        payload_protocol: PUSH_PROTOCOL,
        payload,
        request_id,
        deadline_unix_ms,
        traceparent,
        tracestate,
        ..FrameView::default()
    };
    // Leaves `out` untouched on error (a body above the cap is refused before writing).
    frame.encode_to_vec(out)
}

/// Compares two byte strings in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
