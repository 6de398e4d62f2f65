//! Heap allocations per mux poll of the 64 B payload frame: librp's Rust API, librp's C API and
//! the reference crate, counted by a global allocator (a binary of its own, so the criterion
//! timings never pay for the counting). Prints `ALLOC name=... allocations_per_op=...`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use rp_bench::*;

/// The system allocator, counting `alloc` and `realloc` calls.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const POLLS: usize = 10_000;

/// Runs `poll` [`POLLS`] times and prints the allocations per call.
fn count(name: &str, mut poll: impl FnMut()) {
    poll(); // first call may set up thread-locals
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..POLLS {
        poll();
    }
    let n = ALLOCATIONS.load(Ordering::Relaxed) - before;
    println!(
        "ALLOC name={name} allocations_per_op={}",
        n as f64 / POLLS as f64
    );
}

fn main() {
    let wire = rp_view().to_bytes().unwrap();
    let rust = rust_mux();
    count("mux_poll/rust", || match rust.poll(black_box(&wire)) {
        Ok(rp::mux::MuxEvent::Payload { consumed, .. }) => assert_eq!(consumed, wire.len()),
        _ => panic!("payload expected"),
    });
    let cmux = c_mux();
    count("mux_poll/c_api", || {
        assert_eq!(poll_c(&cmux, black_box(&wire)), 64 + wire.len())
    });
    drop(cmux);
    let reference = reference_mux();
    count("mux_poll/reference", || {
        assert!(matches!(
            reference.poll(black_box(&wire)),
            Ok(running_process::broker::backend_sdk::MuxPoll::Payload { .. })
        ))
    });
}
