//! The C entry points on the hot path allocate nothing on success: `rp_frame_decode`,
//! `rp_frame_encode` and `rp_mux_poll` (payload case), called as C calls them. A counting
//! global allocator in its own test binary sees every allocation.
#![allow(unsafe_code)]

use rp::ffi::frame::{rp_frame_decode, rp_frame_encode, rp_frame_view, rp_frame_view_init};
use rp::ffi::identity::{rp_daemon_identity_free, rp_daemon_identity_new_current};
use rp::ffi::mux::{rp_mux_event, rp_mux_event_kind, rp_mux_free, rp_mux_new, rp_mux_poll};
use rp::ffi::status::rp_status;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn decode_encode_and_mux_poll_allocate_nothing_through_the_c_api() {
    let payload = [7u8; 64];
    let mut frame = std::mem::MaybeUninit::<rp_frame_view>::uninit();
    // SAFETY: valid out-pointer.
    assert_eq!(unsafe { rp_frame_view_init(frame.as_mut_ptr()) }, rp_status::Ok);
    // SAFETY: initialised by rp_frame_view_init.
    let mut frame = unsafe { frame.assume_init() };
    frame.payload_protocol = 0x7001;
    frame.request_id = 42;
    frame.payload.ptr = payload.as_ptr();
    frame.payload.len = payload.len();
    let mut wire = [0u8; 256];
    let mut wire_len = 0usize;
    // SAFETY: valid frame, buffer and out-pointer.
    assert_eq!(unsafe { rp_frame_encode(&frame, wire.as_mut_ptr(), wire.len(), &mut wire_len) }, rp_status::Ok);

    let mut identity = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings and a valid out-pointer.
    let st = unsafe { rp_daemon_identity_new_current(c"bench".as_ptr(), c"/tmp/x.sock".as_ptr(), 0, &mut identity) };
    assert_eq!(st, rp_status::Ok);
    let served = [0x7001u32];
    let mut mux = std::ptr::null();
    // SAFETY: live identity, served array, no callback, valid out-pointer.
    let st = unsafe { rp_mux_new(identity, served.as_ptr(), 1, None, std::ptr::null_mut(), None, &mut mux) };
    assert_eq!(st, rp_status::Ok);
    // SAFETY: live identity owned here.
    unsafe { rp_daemon_identity_free(identity) };

    let mut out = [0u8; 256];
    let mut event = std::mem::MaybeUninit::<rp_mux_event>::uninit();
    let before = counting_alloc::allocations();
    for _ in 0..1000 {
        let mut view = std::mem::MaybeUninit::<rp_frame_view>::uninit();
        let mut used = 0usize;
        // SAFETY: valid buffers and out-pointers for every call.
        unsafe {
            assert_eq!(rp_frame_decode(wire.as_ptr(), wire_len, 0, view.as_mut_ptr(), &mut used), rp_status::Ok);
            assert_eq!(rp_frame_encode(&frame, out.as_mut_ptr(), out.len(), &mut used), rp_status::Ok);
            assert_eq!(rp_mux_poll(mux, wire.as_ptr(), wire_len, event.as_mut_ptr()), rp_status::Ok);
            assert_eq!(event.assume_init_ref().kind, rp_mux_event_kind::Payload);
        }
    }
    let allocations = counting_alloc::allocations() - before;
    assert_eq!(allocations, 0, "allocations during 1000 rounds of decode/encode/mux poll");
    // SAFETY: live mux owned here.
    unsafe { rp_mux_free(mux) };
}
