//! `rp_mux_*`: the sans-io backend endpoint multiplexer for C, and the response-frame helpers.

use std::cell::RefCell;
use std::ffi::c_void;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{arg_names, rp_bytes, rp_msg, slice_arg, slice_arg_named, slice_out};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::frame::rp_frame_view;
use super::handle::{
    arc_clone, arc_free, arc_into_handle, arc_ref, box_into_handle, box_ref, castable, out_arg, out_arg_named,
};
use super::identity::rp_daemon_identity;
use super::status::rp_status;
use crate::mux::{self, DetectorError, LegacyVerdict, Mux, MuxEvent};
use crate::wire::FrameView;

arg_names! {
    ArgBuf = "buf";
    ArgOutEvent = "out_event";
}

/// What a legacy detector says about the buffered bytes (the return value of an
/// `rp_legacy_detect_callback`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rp_legacy_verdict {
    /// Not the daemon's own wire: the mux goes on to classify the bytes as v1.
    NotLegacy = 0,
    /// The daemon's own wire: `rp_mux_poll` reports `RP_MUX_EVENT_KIND_LEGACY`.
    Legacy = 1,
    /// Cannot tell yet: `rp_mux_poll` reports `RP_MUX_EVENT_KIND_NEED_MORE_BYTES`.
    NeedMore = 2,
}

/// Decides whether the bytes buffered on a connection belong to the daemon's own ("legacy")
/// wire.
///
/// Parameters: `user_data` as given to `rp_mux_new`; `buf`, `len` the buffered bytes (never
/// empty: an empty buffer is answered without asking).
///
/// Returns one of `rp_legacy_verdict`. Any other value makes `rp_mux_poll` fail with
/// `RP_STATUS_INVALID_ARGUMENT`.
///
/// Called on the thread that calls `rp_mux_poll`, from within `rp_mux_poll`; when several
/// threads poll the same mux, it runs concurrently on each of them, so it must be thread-safe.
/// `buf` is borrowed: valid only until the callback returns. It must not free the mux.
pub type rp_legacy_detect_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, buf: *const u8, len: usize) -> i32>;

/// The C legacy detector; dropping it releases the user data exactly once. The documentation
/// of `rp_mux_new` requires the callback and `user_data` to be usable from any thread at once.
struct CallbackDetector(ForeignCallback<rp_legacy_detect_callback>);

impl CallbackDetector {
    fn detect(&self, buf: &[u8]) -> Result<LegacyVerdict, DetectorError> {
        let Some(detect) = self.0.func else {
            return Ok(LegacyVerdict::NotLegacy);
        };
        // SAFETY: the callback contract: it reads `len` bytes at `buf`, which are borrowed
        // from the caller's buffer for the duration of the call.
        let code = unsafe { detect(self.0.user_data, buf.as_ptr(), buf.len()) };
        verdict_from_code(code)
    }
}

/// Total mapping of the integer a C detector returns: unknown values are errors.
fn verdict_from_code(code: i32) -> Result<LegacyVerdict, DetectorError> {
    match code {
        c if c == rp_legacy_verdict::NotLegacy as i32 => Ok(LegacyVerdict::NotLegacy),
        c if c == rp_legacy_verdict::Legacy as i32 => Ok(LegacyVerdict::Legacy),
        c if c == rp_legacy_verdict::NeedMore as i32 => Ok(LegacyVerdict::NeedMore),
        other => Err(DetectorError(
            format!("the legacy detector returned {other}, which is not an rp_legacy_verdict")
                .into(),
        )),
    }
}

/// The multiplexer of one backend endpoint: classifies the bytes a daemon buffered on a
/// connection as need-more, legacy, an identity probe (answered), or a consumer frame, without
/// reading, writing or consuming anything.
///
/// Methods: `rp_mux_new`, `rp_mux_poll`, `rp_mux_clone`, `rp_mux_free`.
///
/// Shared handle (Send + Sync): immutable after creation; `rp_mux_poll` may run on many
/// threads at once with the same mux. Under the hood, an `Arc` of the Rust mux.
pub struct rp_mux {
    _private: [u8; 0],
}

/// What an `rp_mux` handle holds: the core mux, and the C caller's user data when no detector
/// callback uses it (released when the last reference is freed).
pub(crate) struct MuxHandle {
    mux: Mux,
    _user_data: Option<CallbackDetector>,
}

castable!(rp_mux => MuxHandle: OwnedArc);

/// What `rp_mux_poll` found at the front of the buffer (`rp_mux_event.kind`).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rp_mux_event_kind {
    /// Too few bytes to decide: read more and poll again. `consumed` is 0.
    NeedMoreBytes = 0,
    /// The daemon's own wire: handle the bytes with the daemon's code. `consumed` is 0 (the
    /// mux does not know the extent of legacy messages).
    Legacy = 1,
    /// An identity probe: write `reply` back on the connection, then advance by `consumed`.
    ProbeAnswered = 2,
    /// A frame of a served consumer protocol in `frame`: handle it, then advance by
    /// `consumed`.
    Payload = 3,
}

/// The verdict of one `rp_mux_poll`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rp_mux_event {
    /// One of `rp_mux_event_kind`.
    pub kind: rp_mux_event_kind,
    /// Bytes to advance past once the event is handled (0 for need-more and legacy).
    pub consumed: usize,
    /// For `RP_MUX_EVENT_KIND_PAYLOAD`: the frame; its views point into the polled buffer and
    /// are valid while that buffer is unchanged. Defaults (as `rp_frame_view_init`) otherwise.
    pub frame: rp_frame_view,
    /// For `RP_MUX_EVENT_KIND_PROBE_ANSWERED`: the complete reply frame to write back. Owned by
    /// librp, in a per-thread buffer: valid until the next `rp_mux_poll` on the same thread
    /// (with any mux) or until the thread exits; copy it to keep it longer. `{NULL, 0}`
    /// otherwise.
    pub reply: rp_bytes,
}

thread_local! {
    /// The last probe reply produced on this thread (`rp_mux_event.reply` points into it).
    static PROBE_REPLY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Creates a mux.
///
/// Parameters:
/// - `identity`: answered to identity probes; read (copied) during the call, not consumed.
/// - `served`, `served_count`: the consumer payload protocols this endpoint serves (`served`
///   may be NULL when `served_count` is 0). Each must be in the consumer range
///   (0x7000–0x7EFF), the private-use range (0xF000–0xFFFF), or SESSION (0x5350).
/// - `detect`: the legacy detector, or NULL for a daemon without a legacy wire (then any
///   first byte other than `RP_FRAMING_VERSION` is reported as legacy).
/// - `user_data`: passed to `detect` and `user_data_free`.
/// - `user_data_free`: NULL, or called once with `user_data` when librp no longer needs it.
/// - `out_mux`: receives the mux on success.
///
/// Returns `RP_STATUS_OK`; `RP_STATUS_INVALID_ARGUMENT` for a protocol that cannot be served
/// (a first-party id, or outside the ranges above); `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: `user_data` passes to librp on every path, even if an error is returned:
/// `user_data_free` is called exactly once, either from within `rp_mux_new` when it fails, or
/// from within the `rp_mux_free` that drops the last reference. On success the caller owns
/// `*out_mux` (written only on success); free it with `rp_mux_free`.
///
/// Thread safety: `detect` may then be called concurrently from every thread that polls.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_mux_new(
    identity: *const rp_daemon_identity,
    served: *const u32,
    served_count: usize,
    detect: rp_legacy_detect_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
    out_mux: *mut *const rp_mux,
) -> rp_status {
    // Built first, so that every early return releases `user_data`.
    let detector = CallbackDetector(ForeignCallback::new(detect, user_data, user_data_free));
    boundary(move || {
        // SAFETY: `identity` is NULL or a live identity per the API contract.
        let identity = unsafe { box_ref::<rp_daemon_identity>(identity, "identity") }?;
        let served = if served.is_null() && served_count == 0 {
            &[][..]
        } else if served.is_null() {
            return Err(Failure::null("served"));
        } else if served_count > isize::MAX as usize / std::mem::size_of::<u32>() {
            return Err(Failure::new(
                rp_status::InvalidArgument,
                "served_count too large",
            ));
        } else {
            // SAFETY: `served_count` readable u32s at `served` per the API contract; alignment
            // is that of a `const uint32_t *`.
            unsafe { std::slice::from_raw_parts(served, served_count) }
        };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_mux = unsafe { out_arg(out_mux, "out_mux") }?;
        let handle = if detector.0.func.is_some() {
            let detector: mux::LegacyDetector = Box::new(move |buf: &[u8]| detector.detect(buf));
            MuxHandle { mux: Mux::new(identity, served, Some(detector))?, _user_data: None }
        } else {
            // Without a callback there is nothing to ask (a detector answering "not legacy"
            // changes no verdict); the handle only keeps `user_data`, released when it is freed.
            MuxHandle { mux: Mux::new(identity, served, None)?, _user_data: Some(detector) }
        };
        out_mux.write(arc_into_handle::<rp_mux>(handle));
        Ok(())
    })
}

/// Classifies the front of the bytes buffered on one connection. Never reads or writes a
/// socket and never consumes: the event says what the bytes are and how many to advance past.
/// Handles at most one frame per call; poll again after advancing.
///
/// Parameters: `mux`; `buf`, `len` the buffered bytes (`buf` may be NULL when `len` is 0);
/// `out_event` receives the verdict on `RP_STATUS_OK` (not written otherwise).
///
/// Returns:
/// - `RP_STATUS_OK`: see `out_event->kind`.
/// - Connection-fatal verdicts (close the connection): `RP_STATUS_UNSERVED_PROTOCOL` (a frame
///   of a consumer protocol this mux does not serve), `RP_STATUS_FIRST_PARTY_FRAME` (control,
///   admin or handoff frame), `RP_STATUS_MALFORMED_PROBE` (probe not a REQUEST, compressed, or
///   nonce not 32 bytes), `RP_STATUS_TOO_LARGE` (announced body above 16 MiB, decided from the
///   header alone), `RP_STATUS_MALFORMED` (undecodable frame body).
/// - `RP_STATUS_INVALID_ARGUMENT`: the legacy detector returned a value outside
///   `rp_legacy_verdict`.
/// - `RP_STATUS_NULL_ARGUMENT`.
///
/// `rp_last_error_message` describes every failure.
///
/// Ownership: `out_event->frame` borrows `buf` (valid while `buf` is unchanged);
/// `out_event->reply` is owned by librp, valid until the next `rp_mux_poll` on this thread.
///
/// Allocation: none for need-more, legacy and payload verdicts; a probe answer allocates.
///
/// Thread safety: may run concurrently on many threads with the same mux. The legacy detector
/// runs on the calling thread, from within this call.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_mux_poll(
    mux: *const rp_mux,
    buf: *const u8,
    len: usize,
    out_event: *mut rp_mux_event,
) -> rp_status {
    boundary(|| {
        // SAFETY: `mux` is NULL or a live mux reference per the API contract.
        let mux = &unsafe { arc_ref::<rp_mux>(mux, "mux") }?.mux;
        // SAFETY: `len` readable bytes at `buf` (or NULL, 0), unchanged during the call.
        let buf = unsafe { slice_arg_named::<ArgBuf>(buf, len) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_event = unsafe { out_arg_named::<_, ArgOutEvent>(out_event) }?;
        mux.poll_then(
            buf,
            out_event,
            |out_event, frame, consumed| {
                out_event.write(rp_mux_event {
                    kind: rp_mux_event_kind::Payload,
                    consumed,
                    frame: rp_frame_view::from_view(&frame),
                    reply: rp_bytes::from_slice(&[]),
                });
                Ok(())
            },
            |out_event, event| {
                let event = event.map_err(crate::Error::from)?;
                out_event.write(other_event(event));
                Ok(())
            },
        )
    })
}

/// The C event of any verdict (the payload one is built in `rp_mux_poll` itself).
#[inline(never)]
fn other_event(event: MuxEvent<'_>) -> rp_mux_event {
    let mut out = rp_mux_event {
        kind: rp_mux_event_kind::NeedMoreBytes,
        consumed: 0,
        frame: rp_frame_view::from_view(&FrameView::default()),
        reply: rp_bytes::from_slice(&[]),
    };
    match event {
        MuxEvent::NeedMoreBytes => {}
        MuxEvent::Legacy => out.kind = rp_mux_event_kind::Legacy,
        MuxEvent::ProbeAnswered { reply, consumed } => {
            out.kind = rp_mux_event_kind::ProbeAnswered;
            out.consumed = consumed;
            out.reply = PROBE_REPLY.with_borrow_mut(|slot| {
                *slot = reply;
                // The heap buffer stays put until the slot is replaced by a later poll.
                rp_bytes::from_slice(slot)
            });
        }
        MuxEvent::Payload { frame, consumed } => {
            out.kind = rp_mux_event_kind::Payload;
            out.consumed = consumed;
            out.frame = rp_frame_view::from_view(&frame);
        }
    }
    out
}

/// Adds a reference to a mux (for another owner, another thread, or a C++ copy).
///
/// Returns `mux` itself, or NULL if `mux` is NULL. Each reference is freed with `rp_mux_free`.
///
/// Thread safety: may run concurrently with any other call on the mux.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_mux_clone(mux: *const rp_mux) -> *const rp_mux {
    boundary_or(std::ptr::null(), || {
        // SAFETY: `mux` is NULL or a live mux reference per the API contract.
        unsafe { arc_clone::<rp_mux>(mux, "mux") }.unwrap_or(std::ptr::null())
    })
}

/// Drops one reference to a mux; the last one frees it and calls the detector's
/// `user_data_free`. NULL is a no-op. Must not be called twice with the same reference, nor
/// while a poll with this reference runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_mux_free(mux: *const rp_mux) {
    boundary_or((), || {
        // SAFETY: `mux` is NULL or a live mux reference owned by the caller, freed once.
        unsafe { arc_free(mux) }
    })
}

/// The RESPONSE answering `request` with `payload`: same payload protocol, request id and
/// trace context.
///
/// # Safety
/// The views of `request` and the `payload` bytes are readable for `'a`.
unsafe fn response_view<'a>(
    request: *const rp_frame_view,
    payload: *const u8,
    payload_len: usize,
) -> Result<FrameView<'a>, Failure> {
    // SAFETY: `request` is NULL or a readable rp_frame_view whose views are valid now.
    let request = unsafe { request.as_ref() }.ok_or_else(|| Failure::null("request"))?;
    // SAFETY: as above.
    let request = unsafe { request.to_view() }?;
    // SAFETY: `payload_len` readable bytes at `payload` (or NULL, 0).
    let payload = unsafe { slice_arg(payload, payload_len, "payload") }?;
    Ok(FrameView {
        payload,
        ..mux::response_to(&request)
    })
}

/// Encodes the RESPONSE frame answering `request` (typically `rp_mux_event.frame`) into a
/// caller buffer: envelope version 1, kind RESPONSE, the request's payload protocol, request
/// id, traceparent and tracestate, `payload` uncompressed, no deadline.
///
/// Parameters: `request` (read during the call); `payload`, `payload_len` (`payload` may be
/// NULL when `payload_len` is 0); `buf`, `cap` the output buffer (`buf` may be NULL when `cap`
/// is 0, to ask for the size); `out_len` receives the bytes written, or the bytes needed on
/// `RP_STATUS_BUFFER_TOO_SMALL`.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_BUFFER_TOO_SMALL` (nothing written to `buf`),
/// `RP_STATUS_TOO_LARGE`, `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: reentrant. Never allocates.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_encode_response(
    request: *const rp_frame_view,
    payload: *const u8,
    payload_len: usize,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let response = unsafe { response_view(request, payload, payload_len) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        // SAFETY: `cap` writable bytes at `buf` (or NULL, 0) per the API contract.
        let out = unsafe { slice_out(buf, cap, "buf") }?;
        match response.encode_into(out) {
            Ok(n) => {
                out_len.write(n);
                Ok(())
            }
            Err(e) => {
                if let crate::wire::WireError::BufferTooSmall { needed, .. } = e {
                    out_len.write(needed);
                }
                Err(crate::Error::from(e).into())
            }
        }
    })
}

/// Encodes the RESPONSE frame answering `request` (as `rp_frame_encode_response`) into a new
/// library-owned message.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: on success the caller owns `*out_msg` (written only on success) and frees it
/// with `rp_msg_free`. Thread safety: reentrant.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_encode_response_msg(
    request: *const rp_frame_view,
    payload: *const u8,
    payload_len: usize,
    out_msg: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let response = unsafe { response_view(request, payload, payload_len) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_msg = unsafe { out_arg(out_msg, "out_msg") }?;
        let bytes = response.to_bytes()?;
        out_msg.write(box_into_handle(bytes));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::identity::{rp_daemon_identity_free, rp_daemon_identity_new};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FREED: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count_free(_: *mut c_void) {
        FREED.fetch_add(1, Ordering::SeqCst);
    }

    unsafe extern "C" fn bad_verdict(_: *mut c_void, _: *const u8, _: usize) -> i32 {
        7
    }

    #[test]
    fn user_data_is_freed_once_on_failure_and_on_free() {
        let mut identity = std::ptr::null_mut();
        // SAFETY: valid out-pointer.
        assert_eq!(
            unsafe { rp_daemon_identity_new(&mut identity) },
            rp_status::Ok
        );
        let before = FREED.load(Ordering::SeqCst);
        let bad = [0xB232u32];
        let mut mux = std::ptr::null();
        // SAFETY: valid arguments; the served id is refused.
        let status = unsafe {
            rp_mux_new(
                identity,
                bad.as_ptr(),
                1,
                None,
                std::ptr::null_mut(),
                Some(count_free),
                &mut mux,
            )
        };
        assert_eq!(status, rp_status::InvalidArgument);
        assert!(mux.is_null());
        assert_eq!(FREED.load(Ordering::SeqCst), before + 1);

        let served = [0x7001u32];
        // SAFETY: valid arguments.
        let status = unsafe {
            rp_mux_new(
                identity,
                served.as_ptr(),
                1,
                Some(bad_verdict),
                std::ptr::null_mut(),
                Some(count_free),
                &mut mux,
            )
        };
        assert_eq!(status, rp_status::Ok);
        let mut event = std::mem::MaybeUninit::<rp_mux_event>::uninit();
        // SAFETY: valid mux, buffer and out-pointer.
        let status = unsafe { rp_mux_poll(mux, [1u8].as_ptr(), 1, event.as_mut_ptr()) };
        assert_eq!(
            status,
            rp_status::InvalidArgument,
            "unknown verdicts are errors"
        );
        // SAFETY: `mux` is live; a clone and two frees drop both references.
        unsafe {
            let second = rp_mux_clone(mux);
            rp_mux_free(mux);
            assert_eq!(FREED.load(Ordering::SeqCst), before + 1);
            rp_mux_free(second);
            rp_daemon_identity_free(identity);
        }
        assert_eq!(FREED.load(Ordering::SeqCst), before + 2);
    }
}
