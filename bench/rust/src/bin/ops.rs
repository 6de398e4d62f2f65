//! Runs one benchmark operation N times, for instruction counts under callgrind (run it with
//! two values of N and divide the difference by the difference in N, so setup cancels out).
//!
//!   ops GROUP/FUNCTION N      e.g. `ops mux_poll/reference 10000`

use std::hint::black_box;

use rp_bench::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (name, n): (&str, usize) = match &args[..] {
        [_, name, n] => (name, n.parse().expect("N")),
        _ => panic!("usage: ops GROUP/FUNCTION N"),
    };
    let wire = rp_view().to_bytes().unwrap();
    let mut out = [0u8; 256];
    let mut sink = 0usize;
    let mut run = |f: &mut dyn FnMut() -> usize| (0..n).for_each(|_| sink += black_box(f()));
    match name {
        "encode/rust" => {
            let view = rp_view();
            run(&mut || encode_rust(black_box(&view), &mut out))
        }
        "encode/c_api" => {
            let view = c_view();
            run(&mut || encode_c(black_box(&view), &mut out))
        }
        "encode/reference" => {
            let frame = reference_frame();
            run(&mut || encode_reference(black_box(&frame)))
        }
        "decode/rust" => run(&mut || decode_rust(black_box(&wire))),
        // The Rust API with the whole decoded frame kept (`decode/rust` reads two fields, so the
        // compiler drops the others), as a C caller gets it.
        "decode/rust_whole" => run(&mut || decode_rust_whole(black_box(&wire))),
        "decode/c_api" => run(&mut || decode_c(black_box(&wire))),
        "decode/reference" => run(&mut || decode_reference(black_box(&wire))),
        "mux_poll/rust" => {
            let mux = rust_mux();
            run(&mut || poll_rust(&mux, black_box(&wire)))
        }
        "mux_poll/rust_whole" => {
            let mux = rust_mux();
            run(&mut || poll_rust_whole(&mux, black_box(&wire)))
        }
        "mux_poll/rust_detector" => {
            let mux = rust_mux_with_detector();
            run(&mut || poll_rust(&mux, black_box(&wire)))
        }
        "mux_poll/c_api" => {
            let mux = c_mux();
            run(&mut || poll_c(&mux, black_box(&wire)))
        }
        "mux_poll/reference" => {
            let mux = reference_mux();
            run(&mut || poll_reference(&mux, black_box(&wire)))
        }
        other => panic!("unknown operation {other}"),
    }
    println!("{sink}");
}
