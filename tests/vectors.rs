//! Every golden vector from the reference implementation decodes, and re-encodes to the
//! identical bytes: the envelope through `FrameView`, and the payload through its message type.

use std::path::{Path, PathBuf};

use prost::Message;
use rp::wire::proto::{DaemonProcess, Frame, HandoffAck, HandoffOffer, Hello, HelloReply};
use rp::wire::{decode_frame, registry, Decoded, MAX_BODY};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn hex_decode(text: &str) -> Vec<u8> {
    let text = text.trim();
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn all_vectors() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(vectors_dir())
        .expect("tests/vectors exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hex"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, hex_decode(&std::fs::read_to_string(&p).unwrap()))
        })
        .collect();
    out.sort();
    out
}

/// Re-encodes a payload through its prost message and checks the bytes are identical.
fn payload_round_trips<M: Message + Default>(name: &str, payload: &[u8]) {
    let msg = M::decode(payload).unwrap_or_else(|e| panic!("{name}: payload: {e}"));
    assert_eq!(msg.encode_to_vec(), payload, "{name}: payload re-encodes identically");
}

#[test]
fn every_vector_round_trips_byte_for_byte() {
    let vectors = all_vectors();
    assert!(vectors.len() >= 21, "expected the whole vector set, found {}", vectors.len());
    for (name, bytes) in &vectors {
        let Decoded::Frame { frame, consumed } = decode_frame(bytes, MAX_BODY)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
        else {
            panic!("{name}: incomplete")
        };
        assert_eq!(consumed, bytes.len(), "{name}: one frame exactly");
        assert_eq!(frame.to_bytes().unwrap(), *bytes, "{name}: FrameView re-encodes identically");
        // Cross-check with the prost runtime on the owned message.
        let owned = Frame::decode(&bytes[5..]).unwrap();
        assert_eq!(owned.view(), frame, "{name}: prost and FrameView agree");
        assert_eq!(owned.encode_to_vec(), bytes[5..], "{name}: prost re-encodes identically");

        let payload = frame.payload;
        match frame.payload_protocol {
            registry::CONTROL if name.starts_with("hello_request") => {
                payload_round_trips::<Hello>(name, payload)
            }
            registry::CONTROL => payload_round_trips::<HelloReply>(name, payload),
            registry::HANDOFF if name == "handoff_offer" => {
                payload_round_trips::<HandoffOffer>(name, payload);
                let offer = HandoffOffer::decode(payload).unwrap();
                assert_eq!(offer.correlation_id, frame.request_id);
            }
            registry::HANDOFF => payload_round_trips::<HandoffAck>(name, payload),
            registry::IDENTITY_PROBE if name == "probe_request" => {
                assert_eq!(payload.len(), 32, "probe nonce");
                let nonce_id = u64::from_le_bytes(payload[..8].try_into().unwrap());
                assert_eq!(frame.request_id, nonce_id);
            }
            registry::IDENTITY_PROBE => {
                // nonce echo, canonical DaemonProcess, then the legacy field 3 appended by hand.
                let identity = &payload[32..];
                let (canonical, legacy) = identity.split_at(identity.len() - 34);
                assert_eq!(&legacy[..2], &[0x1a, 0x20], "{name}: trailing legacy sha field");
                payload_round_trips::<DaemonProcess>(name, canonical);
                let decoded = DaemonProcess::decode(identity).unwrap();
                assert_eq!(decoded.exe_hash_algorithm, "blake3");
                assert_eq!(decoded.exe_hash.len(), 32);
            }
            p => assert!(
                registry::classify(p) == registry::ProtocolClass::Consumer,
                "{name}: unexpected protocol {p:#x}"
            ),
        }
    }
}

#[test]
fn decoded_fields_match_the_index() {
    let by_name: std::collections::HashMap<_, _> = all_vectors().into_iter().collect();
    let frame_of = |n: &str| match decode_frame(&by_name[n], MAX_BODY).unwrap() {
        Decoded::Frame { frame, .. } => frame,
        Decoded::NeedMore { .. } => panic!("{n} incomplete"),
    };
    let t = frame_of("consumer_request_traceparent");
    assert_eq!(t.payload_protocol, 0x7001);
    assert_eq!(t.request_id, 7);
    assert_eq!(t.traceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(t.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    let d = frame_of("consumer_request_deadline");
    assert_eq!(d.request_id, u64::MAX);
    assert_eq!(d.deadline_unix_ms, 1_700_000_000_123);
    assert_eq!(d.payload, [0x00, 0x01, 0xfe, 0xff]);
    assert_eq!(frame_of("consumer_event").kind, 2);

    let reply = HelloReply::decode(frame_of("hello_reply_refused_rate_limited").payload).unwrap();
    let Some(rp::wire::proto::hello_reply::Result::Refused(refused)) = reply.result else {
        panic!("refused expected")
    };
    assert_eq!(refused.code, rp::wire::proto::ErrorCode::RateLimited as i32);
    assert_eq!(refused.retry_after_ms, 1500);
    assert_eq!(refused.details.get("scope").map(String::as_str), Some("peer"));

    let hello = Hello::decode(frame_of("hello_request").payload).unwrap();
    assert_eq!(hello.service_name, "rp-demo");
    assert_eq!(hello.peer_pid, 4242);
    assert_eq!(hello.client_capabilities, rp::wire::CAP_HANDLE_PASSING);
}
