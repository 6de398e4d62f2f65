//! Decoding a frame view allocates nothing (checked with a counting global allocator).

use rp::wire::{decode_frame, Decoded, FrameView, MAX_BODY};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn decode_and_encode_into_allocate_nothing() {
    let payload = [7u8; 64];
    let frame = FrameView {
        payload_protocol: 0x7001,
        request_id: 42,
        payload: &payload,
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ..FrameView::default()
    };
    let bytes = frame.to_bytes().unwrap();
    let mut out = [0u8; 256];

    let before = counting_alloc::allocations();
    let mut total = 0usize;
    for _ in 0..1000 {
        match decode_frame(std::hint::black_box(&bytes), MAX_BODY).unwrap() {
            Decoded::Frame { frame, consumed } => {
                total += consumed + frame.payload.len();
                total += frame.encode_into(&mut out).unwrap();
            }
            Decoded::NeedMore { .. } => unreachable!(),
        }
    }
    let after = counting_alloc::allocations();
    assert_eq!(after - before, 0, "allocations during decode/encode_into");
    assert!(total > 0);
}
