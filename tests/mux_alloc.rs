//! The payload path of `Mux::poll` allocates nothing: a counting global allocator (in its own
//! test binary, so no other test shares it) sees zero allocations across many polls.

use rp::mux::{DaemonIdentity, LegacyVerdict, Mux, MuxEvent};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn payload_poll_allocates_nothing() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/consumer_request_traceparent.hex"
    );
    let frame = hex(std::fs::read_to_string(path).unwrap().trim());
    let identity = DaemonIdentity::default();
    let detector: rp::mux::LegacyDetector = Box::new(|buf: &[u8]| {
        Ok(if buf.first() == Some(&0x4c) {
            LegacyVerdict::Legacy
        } else {
            LegacyVerdict::NotLegacy
        })
    });
    let mux = Mux::new(&identity, &[0x7001], Some(detector)).unwrap();

    let before = counting_alloc::allocations();
    let mut payload_bytes = 0;
    for _ in 0..1000 {
        match mux.poll(std::hint::black_box(&frame)) {
            Ok(MuxEvent::Payload { frame, consumed }) => {
                payload_bytes += frame.payload.len();
                assert_eq!(consumed, frame.encoded_len());
            }
            _ => unreachable!("payload expected"),
        }
        assert!(matches!(
            mux.poll(&frame[..10]),
            Ok(MuxEvent::NeedMoreBytes)
        ));
    }
    let after = counting_alloc::allocations();
    assert_eq!(after - before, 0, "allocations on the payload path");
    assert_eq!(payload_bytes, 19 * 1000);
}
