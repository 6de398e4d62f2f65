//! A connection's first frame: what it asks for (a Hello, an admin request, or something
//! refused, checked in the reference's order), the HelloReply that answers it, and the fuzzing
//! hook that runs this path without a socket.

use prost::Message;

use super::admin::admin_reply_frame;
use super::services::choose_service;
use super::BrokerService;
use crate::control::{check_hello_fields, negotiated, Refusal};
use crate::transport::PeerCredentials;
use crate::wire::proto::{hello_reply, AdminRequest, ErrorCode, FrameKind, Hello, HelloReply, PayloadEncoding};
use crate::wire::{registry, FrameReader, FrameView, WireError, HELLO_MAX_BODY};

/// What the first frame asks for, copied out of the read buffer.
pub(super) enum FirstFrame {
    Hello(ReplyTo, Hello),
    Admin(u64, AdminRequest),
    /// Refused, answering this request (request id 0 when the frame did not decode).
    Invalid(ReplyTo, Refusal),
}

/// The request a HelloReply answers: its id and trace context, which the reply echoes as the
/// reference broker's does (`write_response_frame`).
#[derive(Debug, Default)]
pub(super) struct ReplyTo {
    request_id: u64,
    traceparent: String,
    tracestate: String,
}

impl ReplyTo {
    pub(super) fn of(frame: &FrameView<'_>) -> Self {
        ReplyTo {
            request_id: frame.request_id,
            traceparent: frame.traceparent.to_owned(),
            tracestate: frame.tracestate.to_owned(),
        }
    }

    /// The RESPONSE frame on the control protocol carrying `result`.
    pub(super) fn hello_reply(&self, result: hello_reply::Result) -> Vec<u8> {
        let payload = HelloReply { result: Some(result) }.encode_to_vec();
        let frame = FrameView {
            kind: FrameKind::Response as i32,
            payload_protocol: registry::CONTROL,
            payload: &payload,
            request_id: self.request_id,
            traceparent: &self.traceparent,
            tracestate: &self.tracestate,
            ..FrameView::default()
        };
        // The request was at most 64 KiB, so its answer is far below the frame cap.
        frame.to_bytes().unwrap_or_default()
    }
}

/// The reference's answer to a stream that ended before its first frame was complete.
fn incomplete_hello() -> Refusal {
    Refusal::new(ErrorCode::PeerRejected, "incomplete Hello frame")
}

/// What the result of reading a connection's first frame asks for (not called for a read
/// that would block). Every outcome is answered, as the reference's `reply_for_framing_error`
/// does: an undecodable body with "malformed broker Frame", a stream that ended early with
/// "incomplete Hello frame" (written even when the peer is gone; the write then fails).
pub(super) fn first_frame(read: Result<FrameView<'_>, WireError>) -> FirstFrame {
    let invalid = |code, reason: &str| FirstFrame::Invalid(ReplyTo::default(), Refusal::new(code, reason));
    match read {
        Ok(frame) => parse_first_frame(&frame),
        Err(WireError::UnsupportedFramingVersion { .. }) => {
            invalid(ErrorCode::VersionUnsupported, "unsupported framing version")
        }
        Err(WireError::TooLarge { .. }) => invalid(ErrorCode::PeerRejected, "initial Hello frame exceeds 64 KiB"),
        Err(WireError::Malformed { .. }) => invalid(ErrorCode::PeerRejected, "malformed broker Frame"),
        Err(_) => FirstFrame::Invalid(ReplyTo::default(), incomplete_hello()),
    }
}

/// Checks a decoded first frame in the reference's order (`validate_frame_envelope`:
/// envelope version, kind, payload protocol, encoding; then the payload). Refusals echo the
/// frame's request id, as the reference's do.
fn parse_first_frame(frame: &FrameView<'_>) -> FirstFrame {
    let id = frame.request_id;
    let rejected = |why: &str| FirstFrame::Invalid(ReplyTo::of(frame), Refusal::new(ErrorCode::PeerRejected, why));
    if frame.envelope_version != 1 {
        return FirstFrame::Invalid(
            ReplyTo::of(frame),
            Refusal::new(ErrorCode::VersionUnsupported, "frame envelope_version is not v1"),
        );
    }
    if frame.frame_kind() != Some(FrameKind::Request) {
        return rejected("Hello frame kind must be REQUEST");
    }
    if frame.payload_protocol != registry::CONTROL && frame.payload_protocol != registry::ADMIN {
        return rejected("Hello frame payload_protocol must be control-plane");
    }
    if frame.payload_encoding != PayloadEncoding::None as i32 {
        return rejected("Hello payload must not be compressed");
    }
    if frame.payload_protocol == registry::ADMIN {
        return match AdminRequest::decode(frame.payload) {
            Ok(r) => FirstFrame::Admin(id, r),
            Err(_) => rejected("malformed AdminRequest payload"),
        };
    }
    match Hello::decode(frame.payload) {
        Ok(h) => FirstFrame::Hello(ReplyTo::of(frame), h),
        Err(_) => rejected("malformed Hello payload"),
    }
}

/// Fuzzing and corpus-replay hook (see [`super::fuzzing`]): answers `bytes`, as if one client
/// connection sent them, through the event loop's first-frame path without a socket: a
/// [`FrameReader`] capped at [`HELLO_MAX_BODY`], [`first_frame`], the Hello checks against
/// `services` with `peer` as the kernel-reported peer (rate limits, shutdown and handoff,
/// which depend on the loop's state, are left out), and the reply bytes the loop would write.
/// `None` when the loop would close without answering.
pub(crate) fn fuzz_client_stream(
    bytes: &[u8],
    peer: Option<PeerCredentials>,
    services: &[BrokerService],
) -> Option<Vec<u8>> {
    let mut reader = FrameReader::with_max_body(bytes, HELLO_MAX_BODY);
    let mut out = Vec::new();
    match first_frame(reader.read_frame()) {
        FirstFrame::Hello(to, hello) => {
            let result = check_hello_fields(&hello, peer.as_ref()).and_then(|()| choose_service(services, &hello));
            let reply = match result {
                Ok(service) => {
                    let mut n = negotiated(&service.daemon_version, 1, hello.client_keepalive_secs);
                    n.backend_pipe = service.backend_pipe.clone();
                    hello_reply::Result::Negotiated(n)
                }
                Err(r) => hello_reply::Result::Refused(r.to_message()),
            };
            out.extend_from_slice(&to.hello_reply(reply));
        }
        FirstFrame::Admin(id, _) => admin_reply_frame(id, "ok".into(), 0, &mut out).ok()?,
        FirstFrame::Invalid(to, r) => out.extend_from_slice(&to.hello_reply(hello_reply::Result::Refused(r.to_message()))),
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Refusal;

    fn refusal(bytes: &[u8]) -> (u64, Refusal) {
        let mut reader = FrameReader::with_max_body(bytes, HELLO_MAX_BODY);
        match first_frame(reader.read_frame()) {
            FirstFrame::Invalid(to, r) => (to.request_id, r),
            _ => panic!("expected a refusal"),
        }
    }

    fn frame(kind: FrameKind, protocol: u32, payload: &[u8]) -> Vec<u8> {
        let f = FrameView { kind: kind as i32, payload_protocol: protocol, payload, request_id: 9, ..FrameView::default() };
        f.to_bytes().unwrap()
    }

    #[test]
    fn first_frames_are_checked_in_the_reference_order() {
        let hello = Hello { service_name: "svc".into(), ..Hello::default() }.encode_to_vec();
        let bytes = frame(FrameKind::Request, registry::CONTROL, &hello);
        let mut reader = FrameReader::new(&bytes[..]);
        assert!(matches!(first_frame(reader.read_frame()), FirstFrame::Hello(to, h) if to.request_id == 9 && h.service_name == "svc"));
        let admin = AdminRequest::default().encode_to_vec();
        let bytes = frame(FrameKind::Request, registry::ADMIN, &admin);
        let mut reader = FrameReader::new(&bytes[..]);
        assert!(matches!(first_frame(reader.read_frame()), FirstFrame::Admin(9, _)));

        let (id, r) = refusal(&frame(FrameKind::Event, registry::CONTROL, &hello));
        assert_eq!((id, r.code, r.reason.as_str()), (9, ErrorCode::PeerRejected as i32, "Hello frame kind must be REQUEST"));
        let (_, r) = refusal(&frame(FrameKind::Request, registry::HANDOFF, &hello));
        assert_eq!(r.reason, "Hello frame payload_protocol must be control-plane");
        let (_, r) = refusal(&frame(FrameKind::Request, registry::CONTROL, &[0xff, 0xff]));
        assert_eq!(r.reason, "malformed Hello payload");
        let (id, r) = refusal(&frame(FrameKind::Request, registry::CONTROL, &hello)[..10]);
        assert_eq!((id, r), (0, incomplete_hello()));
    }
}
