//! Codec and mux costs on one 64-byte-payload frame: librp through its Rust API, librp through
//! its C API (called from Rust), and the reference crate as the same-run baseline.
//! Groups `encode`, `decode`, `mux_poll`; functions `rust`, `c_api`, `reference` (and
//! `mux_poll/rust_detector`: the Rust mux with a legacy detector, a boxed closure answering
//! "not legacy", to show what a detector call costs).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use rp_bench::*;

fn encode(c: &mut Criterion) {
    let view = rp_view();
    let cview = c_view();
    let reference = reference_frame();
    let wire = view.to_bytes().unwrap();
    assert_eq!(
        running_process::frame_v1::encode_framed(&reference).unwrap(),
        wire,
        "same bytes"
    );
    let mut out = [0u8; 256];
    let mut g = c.benchmark_group("encode");
    g.bench_function("rust", |b| {
        b.iter(|| encode_rust(black_box(&view), &mut out))
    });
    g.bench_function("c_api", |b| {
        b.iter(|| encode_c(black_box(&cview), &mut out))
    });
    g.bench_function("reference", |b| {
        b.iter(|| encode_reference(black_box(&reference)))
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    let wire = rp_view().to_bytes().unwrap();
    let mut g = c.benchmark_group("decode");
    g.bench_function("rust", |b| b.iter(|| decode_rust(black_box(&wire))));
    g.bench_function("c_api", |b| b.iter(|| decode_c(black_box(&wire))));
    g.bench_function("reference", |b| {
        b.iter(|| decode_reference(black_box(&wire)))
    });
    g.finish();
}

fn mux_poll(c: &mut Criterion) {
    let wire = rp_view().to_bytes().unwrap();
    let rust = rust_mux();
    let with_detector = rust_mux_with_detector();
    let cmux = c_mux();
    let reference = reference_mux();
    let mut g = c.benchmark_group("mux_poll");
    g.bench_function("rust", |b| b.iter(|| poll_rust(&rust, black_box(&wire))));
    g.bench_function("rust_detector", |b| {
        b.iter(|| poll_rust(&with_detector, black_box(&wire)))
    });
    g.bench_function("c_api", |b| b.iter(|| poll_c(&cmux, black_box(&wire))));
    g.bench_function("reference", |b| {
        b.iter(|| poll_reference(&reference, black_box(&wire)))
    });
    g.finish();
}

criterion_group!(benches, encode, decode, mux_poll);
criterion_main!(benches);
