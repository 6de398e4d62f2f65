//! Codec and mux costs on one 64-byte-payload frame: librp through its Rust API, librp through
//! its C API (called from Rust), and the reference crate as the same-run baseline.
//! Groups `encode`, `decode`, `mux_poll`; functions `rust`, `c_api`, `reference`.

use std::hint::black_box;
use std::mem::MaybeUninit;

use criterion::{criterion_group, criterion_main, Criterion};
use rp_bench::*;
use running_process::broker::backend_sdk::MuxPoll;
use running_process::frame_v1::{encode_framed, try_decode_framed};

fn encode(c: &mut Criterion) {
    let view = rp_view();
    let cview = c_view();
    let reference = reference_frame();
    let wire = view.to_bytes().unwrap();
    assert_eq!(encode_framed(&reference).unwrap(), wire, "both encoders produce the same bytes");

    let mut g = c.benchmark_group("encode");
    g.bench_function("rust", |b| {
        let mut out = [0u8; 256];
        b.iter(|| black_box(black_box(&view).encode_into(&mut out).unwrap()))
    });
    g.bench_function("c_api", |b| {
        let mut out = [0u8; 256];
        b.iter(|| {
            let mut len = 0usize;
            // SAFETY: `cview`'s views point at static bytes; `out` has 256 writable bytes.
            let st = unsafe { rp_frame_encode(black_box(&cview), out.as_mut_ptr(), out.len(), &mut len) };
            assert_eq!(st, rp_status::Ok);
            black_box(len)
        })
    });
    g.bench_function("reference", |b| b.iter(|| black_box(encode_framed(black_box(&reference)).unwrap())));
    g.finish();
}

fn decode(c: &mut Criterion) {
    let wire = rp_view().to_bytes().unwrap();
    let mut g = c.benchmark_group("decode");
    g.bench_function("rust", |b| {
        b.iter(|| match rp::wire::decode_frame(black_box(&wire), rp::wire::MAX_BODY).unwrap() {
            rp::Decoded::Frame { frame, consumed } => black_box((frame.payload.len(), consumed)),
            rp::Decoded::NeedMore { .. } => unreachable!(),
        })
    });
    g.bench_function("c_api", |b| {
        b.iter(|| {
            let mut frame = MaybeUninit::<rp_frame_view>::uninit();
            let mut used = 0usize;
            let buf = black_box(&wire);
            // SAFETY: `buf` is readable for its length; the out-pointers are writable.
            let st = unsafe { rp_frame_decode(buf.as_ptr(), buf.len(), 0, frame.as_mut_ptr(), &mut used) };
            assert_eq!(st, rp_status::Ok);
            // SAFETY: written on OK.
            black_box((unsafe { frame.assume_init() }.payload.len, used))
        })
    });
    g.bench_function("reference", |b| {
        b.iter(|| {
            let d = try_decode_framed(black_box(&wire)).unwrap().unwrap();
            black_box((d.frame.payload.len(), d.consumed))
        })
    });
    g.finish();
}

fn mux_poll(c: &mut Criterion) {
    let wire = rp_view().to_bytes().unwrap();
    let rust = rust_mux();
    let cmux = c_mux();
    let reference = reference_mux();
    let mut g = c.benchmark_group("mux_poll");
    g.bench_function("rust", |b| {
        b.iter(|| match rust.poll(black_box(&wire)).unwrap() {
            rp::mux::MuxEvent::Payload { frame, consumed } => black_box((frame.payload.len(), consumed)),
            _ => unreachable!(),
        })
    });
    g.bench_function("c_api", |b| {
        b.iter(|| {
            let mut ev = MaybeUninit::<rp_mux_event>::uninit();
            let buf = black_box(&wire);
            // SAFETY: live mux; `buf` readable for its length; `ev` writable.
            let st = unsafe { rp_mux_poll(cmux, buf.as_ptr(), buf.len(), ev.as_mut_ptr()) };
            assert_eq!(st, rp_status::Ok);
            // SAFETY: written on OK.
            let ev = unsafe { ev.assume_init() };
            black_box((ev.frame.payload.len, ev.consumed))
        })
    });
    g.bench_function("reference", |b| {
        b.iter(|| match reference.poll(black_box(&wire)).unwrap() {
            MuxPoll::Payload { frame, consumed } => black_box((frame.payload.len(), consumed)),
            _ => unreachable!(),
        })
    });
    g.finish();
    // SAFETY: the one reference from `c_mux`.
    unsafe { rp_mux_free(cmux) };
}

criterion_group!(benches, encode, decode, mux_poll);
criterion_main!(benches);
