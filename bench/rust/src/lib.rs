//! Shared setup of the benchmarks: the 64-byte-payload frame every codec benchmark uses, and
//! librp's C entry points declared as a C caller sees them (linked from the `rp` rlib).
#![allow(non_camel_case_types)]

use std::os::raw::c_char;

pub use rp::ffi::frame::rp_frame_view;
pub use rp::ffi::identity::rp_daemon_identity;
pub use rp::ffi::mux::{rp_mux, rp_mux_event};
pub use rp::ffi::status::rp_status;

/// Payload protocol of the benchmark frame (consumer range, served by every mux here).
pub const PROTOCOL: u32 = 0x7001;
/// Request id of the benchmark frame.
pub const REQUEST_ID: u64 = 123_456_789;
/// The benchmark payload: 64 bytes.
pub const PAYLOAD: [u8; 64] = [b'x'; 64];

// The opaque handle types are zero-sized Rust structs; only pointers to them cross the ABI.
#[allow(improper_ctypes)]
extern "C" {
    pub fn rp_frame_view_init(frame: *mut rp_frame_view) -> rp_status;
    pub fn rp_frame_encode(
        frame: *const rp_frame_view,
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> rp_status;
    pub fn rp_frame_decode(
        buf: *const u8,
        len: usize,
        max_body: u32,
        out_frame: *mut rp_frame_view,
        out_len: *mut usize,
    ) -> rp_status;
    pub fn rp_daemon_identity_new_current(
        endpoint_namespace: *const c_char,
        endpoint_path: *const c_char,
        flags: u32,
        out_identity: *mut *mut rp_daemon_identity,
    ) -> rp_status;
    pub fn rp_daemon_identity_free(identity: *mut rp_daemon_identity);
    pub fn rp_mux_new(
        identity: *const rp_daemon_identity,
        served: *const u32,
        served_count: usize,
        detect: rp::ffi::mux::rp_legacy_detect_callback,
        user_data: *mut std::ffi::c_void,
        user_data_free: rp::ffi::callback::rp_user_data_free_callback,
        out_mux: *mut *const rp_mux,
    ) -> rp_status;
    pub fn rp_mux_poll(
        mux: *const rp_mux,
        buf: *const u8,
        len: usize,
        out_event: *mut rp_mux_event,
    ) -> rp_status;
    pub fn rp_mux_free(mux: *const rp_mux);
}

/// The benchmark frame as a librp view.
pub fn rp_view() -> rp::FrameView<'static> {
    rp::FrameView {
        payload_protocol: PROTOCOL,
        request_id: REQUEST_ID,
        payload: &PAYLOAD,
        ..Default::default()
    }
}

/// The same frame as a C-API view (from `rp_frame_view_init`, then the same fields).
pub fn c_view() -> rp_frame_view {
    let mut v = std::mem::MaybeUninit::<rp_frame_view>::uninit();
    // SAFETY: `v` is writable; init fills every field.
    assert_eq!(unsafe { rp_frame_view_init(v.as_mut_ptr()) }, rp_status::Ok);
    // SAFETY: initialised by the call above.
    let mut v = unsafe { v.assume_init() };
    v.payload_protocol = PROTOCOL;
    v.request_id = REQUEST_ID;
    v.payload.ptr = PAYLOAD.as_ptr();
    v.payload.len = PAYLOAD.len();
    v
}

/// The same frame as the reference crate's prost `Frame`.
pub fn reference_frame() -> running_process::frame_v1::Frame {
    running_process::frame_v1::Frame {
        envelope_version: 1,
        payload_protocol: PROTOCOL,
        payload: PAYLOAD.to_vec(),
        request_id: REQUEST_ID,
        ..Default::default()
    }
}

/// A mux made through the C API; freed with `rp_mux_free` on drop.
pub struct CMux(*const rp_mux);

impl Drop for CMux {
    fn drop(&mut self) {
        // SAFETY: the one reference `c_mux` created.
        unsafe { rp_mux_free(self.0) }
    }
}

/// A C-API mux serving [`PROTOCOL`], without a legacy detector (as `bench/c/codec.c` makes it).
pub fn c_mux() -> CMux {
    let mut identity = std::ptr::null_mut();
    let mut mux = std::ptr::null();
    // SAFETY: NUL-terminated strings, valid out-pointers; the identity is freed after use.
    unsafe {
        assert_eq!(
            rp_daemon_identity_new_current(
                c"bench".as_ptr(),
                c"/tmp/bench.sock".as_ptr(),
                0,
                &mut identity
            ),
            rp_status::Ok
        );
        assert_eq!(
            rp_mux_new(
                identity,
                &PROTOCOL,
                1,
                None,
                std::ptr::null_mut(),
                None,
                &mut mux
            ),
            rp_status::Ok
        );
        rp_daemon_identity_free(identity);
    }
    CMux(mux)
}

/// A Rust-API mux serving [`PROTOCOL`], without a legacy detector.
pub fn rust_mux() -> rp::mux::Mux {
    let identity = rp::mux::DaemonIdentity::current_process(
        "bench",
        "/tmp/bench.sock",
        None,
        rp::mux::LegacyHash::Zeros,
    )
    .expect("identity");
    rp::mux::Mux::new(&identity, &[PROTOCOL], None).expect("mux")
}

/// A Rust-API mux like [`rust_mux`] with a legacy detector: a boxed closure answering "not
/// legacy" (what a detector call costs).
pub fn rust_mux_with_detector() -> rp::mux::Mux {
    let identity = rp::mux::DaemonIdentity::current_process(
        "bench",
        "/tmp/bench.sock",
        None,
        rp::mux::LegacyHash::Zeros,
    )
    .expect("identity");
    let detector: rp::mux::LegacyDetector =
        Box::new(|_: &[u8]| Ok(rp::mux::LegacyVerdict::NotLegacy));
    rp::mux::Mux::new(&identity, &[PROTOCOL], Some(detector)).expect("mux")
}

/// The reference crate's mux serving [`PROTOCOL`], whose detector always answers "not legacy".
pub fn reference_mux() -> running_process::broker::backend_sdk::BackendEndpointMux<
    impl Fn(&[u8]) -> running_process::broker::backend_sdk::LegacyClassification,
> {
    use running_process::broker::backend_lifecycle::identity::DaemonProcess;
    use running_process::broker::backend_sdk::{BackendEndpointMux, LegacyClassification};
    use running_process::broker::protocol::Endpoint;
    let endpoint = Endpoint {
        namespace_id: "bench".into(),
        path: "/tmp/bench.sock".into(),
    };
    let daemon = DaemonProcess::current_process(endpoint, None).expect("reference identity");
    BackendEndpointMux::new(daemon, &[PROTOCOL], |_: &[u8]| {
        LegacyClassification::NotLegacy
    })
}

// The measured operations, shared by the criterion bench and the instruction counter. Each
// returns a value derived from its result so that nothing is optimised away.

/// Encodes `view` into `out` with the Rust API; returns the bytes written.
#[inline]
pub fn encode_rust(view: &rp::FrameView<'_>, out: &mut [u8]) -> usize {
    view.encode_into(out).unwrap()
}

/// Encodes `view` into `out` through `rp_frame_encode`; returns the bytes written.
#[inline]
pub fn encode_c(view: &rp_frame_view, out: &mut [u8]) -> usize {
    let mut len = 0usize;
    // SAFETY: `view`'s views are valid (see `c_view`); `out` is writable for its length.
    let st = unsafe { rp_frame_encode(view, out.as_mut_ptr(), out.len(), &mut len) };
    assert_eq!(st, rp_status::Ok);
    len
}

/// Encodes `frame` with the reference crate (a new `Vec`); returns its length.
#[inline]
pub fn encode_reference(frame: &running_process::frame_v1::Frame) -> usize {
    running_process::frame_v1::encode_framed(frame)
        .unwrap()
        .len()
}

/// Decodes the frame at the front of `wire` with the Rust API; returns payload length + consumed.
#[inline]
pub fn decode_rust(wire: &[u8]) -> usize {
    match rp::wire::decode_frame(wire, rp::wire::MAX_BODY).unwrap() {
        rp::Decoded::Frame { frame, consumed } => frame.payload.len() + consumed,
        rp::Decoded::NeedMore { .. } => panic!("complete frame expected"),
    }
}

/// Decodes with the Rust API and keeps the whole frame (`black_box`); returns consumed.
#[inline]
pub fn decode_rust_whole(wire: &[u8]) -> usize {
    match rp::wire::decode_frame(wire, rp::wire::MAX_BODY).unwrap() {
        rp::Decoded::Frame { frame, consumed } => {
            std::hint::black_box(frame);
            consumed
        }
        rp::Decoded::NeedMore { .. } => panic!("complete frame expected"),
    }
}

/// Decodes through `rp_frame_decode`; returns payload length + consumed.
#[inline]
pub fn decode_c(wire: &[u8]) -> usize {
    let mut frame = std::mem::MaybeUninit::<rp_frame_view>::uninit();
    let mut used = 0usize;
    // SAFETY: `wire` is readable for its length; the out-pointers are writable.
    let st =
        unsafe { rp_frame_decode(wire.as_ptr(), wire.len(), 0, frame.as_mut_ptr(), &mut used) };
    assert_eq!(st, rp_status::Ok);
    // SAFETY: written on OK.
    unsafe { frame.assume_init() }.payload.len + used
}

/// Decodes with the reference crate (an owned prost `Frame`); returns payload length + consumed.
#[inline]
pub fn decode_reference(wire: &[u8]) -> usize {
    let d = running_process::frame_v1::try_decode_framed(wire)
        .unwrap()
        .unwrap();
    d.frame.payload.len() + d.consumed
}

/// Polls a Rust-API mux; returns payload length + consumed of the payload event.
#[inline]
pub fn poll_rust(mux: &rp::mux::Mux, wire: &[u8]) -> usize {
    match mux.poll(wire).unwrap() {
        rp::mux::MuxEvent::Payload { frame, consumed } => frame.payload.len() + consumed,
        other => panic!("payload expected, got {other:?}"),
    }
}

/// Polls a Rust-API mux and keeps the whole payload frame (`black_box`); returns consumed.
#[inline]
pub fn poll_rust_whole(mux: &rp::mux::Mux, wire: &[u8]) -> usize {
    match mux.poll(wire).unwrap() {
        rp::mux::MuxEvent::Payload { frame, consumed } => {
            std::hint::black_box(frame);
            consumed
        }
        other => panic!("payload expected, got {other:?}"),
    }
}

/// Polls through `rp_mux_poll`; returns payload length + consumed of the payload event.
#[inline]
pub fn poll_c(mux: &CMux, wire: &[u8]) -> usize {
    let mut ev = std::mem::MaybeUninit::<rp_mux_event>::uninit();
    // SAFETY: `mux` is live (from `c_mux`); `wire` readable for its length; `ev` writable.
    let st = unsafe { rp_mux_poll(mux.0, wire.as_ptr(), wire.len(), ev.as_mut_ptr()) };
    assert_eq!(st, rp_status::Ok);
    // SAFETY: written on OK.
    let ev = unsafe { ev.assume_init() };
    ev.frame.payload.len + ev.consumed
}

/// Polls the reference crate's mux; returns payload length + consumed of the payload event.
#[inline]
pub fn poll_reference<
    F: Fn(&[u8]) -> running_process::broker::backend_sdk::LegacyClassification,
>(
    mux: &running_process::broker::backend_sdk::BackendEndpointMux<F>,
    wire: &[u8],
) -> usize {
    match mux.poll(wire).unwrap() {
        running_process::broker::backend_sdk::MuxPoll::Payload { frame, consumed } => {
            frame.payload.len() + consumed
        }
        other => panic!("payload expected, got {other:?}"),
    }
}
