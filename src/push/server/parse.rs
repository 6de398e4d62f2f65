//! Parsing what a worker sends, by the phase of its connection (Hello, registration, replies),
//! building the server's own push-protocol frames, and the fuzzing hook over that parse path.

use prost::Message;

use crate::control::check_hello_fields;
use crate::wire::fast as fastpath;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ClientHello;
    use crate::push::proto::PushFailure;
    use crate::wire::proto::PayloadEncoding;

    fn frame(kind: FrameKind, payload_protocol: u32, payload: &[u8]) -> FrameView<'_> {
        FrameView { kind: kind as i32, payload_protocol, payload, request_id: 9, ..FrameView::default() }
    }

    fn hello() -> Vec<u8> {
        let hello = ClientHello {
            service_name: crate::push::DEFAULT_SERVICE.into(),
            wanted_version: crate::push::PUSH_PROTOCOL_VERSION.into(),
            ..ClientHello::default()
        };
        hello.to_message().encode_to_vec()
    }

    fn registration() -> Vec<u8> {
        Registration { identity: "w".into(), task_queue: "q".into(), payload_protocols: vec![0x7001], ..Registration::default() }
            .encode_to_vec()
    }

    fn reply(result: push_reply::Result) -> Vec<u8> {
        PushReply { result: Some(result) }.encode_to_vec()
    }

    fn violation(r: Result<Incoming, WireError>) -> String {
        match r {
            Err(WireError::Protocol(why)) => why.into_owned(),
            Err(e) => panic!("expected a protocol violation, got {e:?}"),
            Ok(_) => panic!("expected a protocol violation, got a frame"),
        }
    }

    #[test]
    fn each_phase_takes_its_own_frame() {
        let h = hello();
        match parse_incoming(Phase::Hello, &frame(FrameKind::Request, registry::CONTROL, &h)) {
            Ok(Incoming::Hello(9, hello)) => assert_eq!(hello.service_name, crate::push::DEFAULT_SERVICE),
            _ => panic!("the Hello was not taken"),
        }
        let r = registration();
        match parse_incoming(Phase::Registering, &frame(FrameKind::Request, PUSH_PROTOCOL, &r)) {
            Ok(Incoming::Registration(9, reg)) => assert_eq!(reg.task_queue, "q"),
            _ => panic!("the registration was not taken"),
        }
        let ok = reply(push_reply::Result::Payload(b"done".to_vec()));
        match parse_incoming(Phase::Registered, &frame(FrameKind::Response, PUSH_PROTOCOL, &ok)) {
            Ok(Incoming::Reply(9, reply)) => assert_eq!(reply.result, Some(push_reply::Result::Payload(b"done".to_vec()))),
            _ => panic!("the reply was not taken"),
        }
        let failure = PushFailure { code: 3, message: "m".repeat(MAX_FAILURE_MESSAGE) };
        let failed = reply(push_reply::Result::Failure(failure.clone()));
        match parse_incoming(Phase::Registered, &frame(FrameKind::Response, PUSH_PROTOCOL, &failed)) {
            Ok(Incoming::Reply(9, reply)) => assert_eq!(reply.result, Some(push_reply::Result::Failure(failure))),
            _ => panic!("the failure was not taken"),
        }
        // An empty reply is an empty payload.
        match parse_incoming(Phase::Registered, &frame(FrameKind::Response, PUSH_PROTOCOL, &[])) {
            Ok(Incoming::Reply(9, _)) => {}
            _ => panic!("the empty reply was not taken"),
        }
    }

    #[test]
    fn a_frame_out_of_its_phase_or_kind_is_a_violation() {
        let h = hello();
        let r = registration();
        let ok = reply(push_reply::Result::Payload(b"done".to_vec()));
        let why = violation(parse_incoming(Phase::Hello, &frame(FrameKind::Request, PUSH_PROTOCOL, &r)));
        assert!(why.contains("expected a Hello"), "{why}");
        let why = violation(parse_incoming(Phase::Hello, &frame(FrameKind::Request, registry::CONTROL, b"\xff\xff")));
        assert!(why.contains("malformed Hello"), "{why}");
        let why = violation(parse_incoming(Phase::Registering, &frame(FrameKind::Request, registry::CONTROL, &h)));
        assert!(why.contains("expected a registration"), "{why}");
        let why = violation(parse_incoming(Phase::Registering, &frame(FrameKind::Event, PUSH_PROTOCOL, &r)));
        assert!(why.contains("expected a registration"), "{why}");
        // A push sent back, a request, and a kind no version defines are not replies.
        for kind in [FrameKind::Event as i32, FrameKind::Request as i32, 42] {
            let f = FrameView { kind, ..frame(FrameKind::Response, PUSH_PROTOCOL, &ok) };
            let why = violation(parse_incoming(Phase::Registered, &f));
            assert!(why.contains(&format!("expected a push reply, got kind {kind}")), "{why}");
        }
        for phase in [Phase::AwaitingDecision, Phase::Closing] {
            let why = violation(parse_incoming(phase, &frame(FrameKind::Response, PUSH_PROTOCOL, &ok)));
            assert!(why.contains("before the registration was answered"), "{why}");
        }
    }

    #[test]
    fn an_encoded_or_oversized_reply_is_a_violation() {
        let ok = reply(push_reply::Result::Payload(b"done".to_vec()));
        let encoded = FrameView { payload_encoding: PayloadEncoding::Zstd as i32, ..frame(FrameKind::Response, PUSH_PROTOCOL, &ok) };
        let why = violation(parse_incoming(Phase::Registered, &encoded));
        assert!(why.contains("payload_encoding"), "{why}");
        let h = hello();
        let v2 = FrameView { envelope_version: 2, ..frame(FrameKind::Request, registry::CONTROL, &h) };
        let why = violation(parse_incoming(Phase::Hello, &v2));
        assert!(why.contains("envelope_version 2"), "{why}");
        let long = reply(push_reply::Result::Failure(PushFailure { code: 1, message: "m".repeat(MAX_FAILURE_MESSAGE + 1) }));
        let why = violation(parse_incoming(Phase::Registered, &frame(FrameKind::Response, PUSH_PROTOCOL, &long)));
        assert!(why.contains(&format!("exceeds the {MAX_FAILURE_MESSAGE}-byte limit")), "{why}");
    }

    /// The bytes of frames as a worker would send them.
    fn stream(frames: &[FrameView<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            f.encode_to_vec(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn the_hello_cap_holds_until_the_registration_is_accepted() {
        let (h, r) = (hello(), registration());
        let big = reply(push_reply::Result::Payload(vec![7; HELLO_MAX_BODY as usize]));
        let big_reply = frame(FrameKind::Response, PUSH_PROTOCOL, &big);
        let handshake = [frame(FrameKind::Request, registry::CONTROL, &h), frame(FrameKind::Request, PUSH_PROTOCOL, &r)];
        let mut after = handshake.to_vec();
        after.push(big_reply);
        assert_eq!(fuzz_worker_stream(&stream(&after), None), 3, "a large reply after the registration is read");
        let before = [handshake[0], big_reply];
        assert_eq!(fuzz_worker_stream(&stream(&before), None), 1, "a frame over the Hello cap ends the connection");
        let bad_reg = Registration { identity: String::new(), ..Registration::default() }.encode_to_vec();
        let refused = [handshake[0], frame(FrameKind::Request, PUSH_PROTOCOL, &bad_reg), big_reply];
        assert_eq!(fuzz_worker_stream(&stream(&refused), None), 1, "a refused registration keeps the cap");
    }

    #[test]
    fn the_servers_frames_round_trip_and_a_refused_one_leaves_the_buffer_alone() {
        let mut out = b"queued".to_vec();
        push_frame(&mut out, FrameKind::Cancel, 12, &[], None).unwrap();
        push_frame(&mut out, FrameKind::Event, 13, b"job", Some((99, "tp", "ts"))).unwrap();
        let mut reader = FrameReader::with_max_body(&out[6..], MAX_BODY);
        let cancel = reader.read_frame().unwrap();
        assert_eq!((cancel.frame_kind(), cancel.request_id, cancel.payload_protocol), (Some(FrameKind::Cancel), 12, PUSH_PROTOCOL));
        let event = reader.read_frame().unwrap();
        assert_eq!((event.request_id, event.payload, event.deadline_unix_ms), (13, &b"job"[..], 99));
        assert_eq!((event.traceparent, event.tracestate), ("tp", "ts"));
        let len = out.len();
        assert!(push_frame(&mut out, FrameKind::Event, 14, &vec![0; MAX_BODY as usize + 1], None).is_err());
        assert_eq!(out.len(), len);
    }

    #[test]
    fn tokens_compare_by_content_and_length() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
