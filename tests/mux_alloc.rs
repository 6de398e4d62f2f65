//! The payload path of `Mux::poll` allocates nothing: a counting global allocator (in its own
//! test binary, so no other test shares it) sees zero allocations across many polls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use rp::mux::{DaemonIdentity, LegacyVerdict, Mux, MuxEvent};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    let before = ALLOCATIONS.load(Ordering::SeqCst);
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
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "allocations on the payload path");
    assert_eq!(payload_bytes, 19 * 1000);
}
