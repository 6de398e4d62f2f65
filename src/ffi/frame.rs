//! `rp_frame_*`: build and parse v1 frames from C.

use super::boundary::{boundary, Failure};
use super::bytes::{arg_names, rp_bytes, rp_msg, rp_str, slice_arg_named, slice_out_named};
use super::handle::{box_into_handle, out_arg, out_arg_named};
use super::status::rp_status;
use crate::wire::{self, Decoded, FrameView};

/// The framing version byte that starts every frame.
pub const RP_FRAMING_VERSION: u8 = 1;
/// Bytes of the frame header (framing version + u32 little-endian body length).
pub const RP_FRAME_HEADER_LEN: usize = 5;
/// The largest frame body librp accepts or produces: 16 MiB.
pub const RP_FRAME_MAX_BODY: u32 = 16777216;
/// The largest body accepted for the first (Hello) frame of a connection: 64 KiB.
pub const RP_HELLO_MAX_BODY: u32 = 65536;

arg_names! {
    ArgBuf = "buf";
    ArgFrame = "frame";
    ArgOutFrame = "out_frame";
    ArgOutLen = "out_len";
    ArgPayload = "frame.payload";
    ArgTraceparent = "frame.traceparent";
    ArgTracestate = "frame.tracestate";
}

/// Frame kinds (`rp_frame_view.kind`).
#[repr(i32)]
pub enum rp_frame_kind {
    /// A request; answered by a RESPONSE with the same request id.
    Request = 0,
    /// The answer to a REQUEST.
    Response = 1,
    /// A server-to-client push, or one chunk of a stream.
    Event = 2,
    /// Cancels the request with the same request id.
    Cancel = 3,
}

/// Payload encodings (`rp_frame_view.payload_encoding`).
#[repr(i32)]
pub enum rp_payload_encoding {
    /// The payload is not compressed.
    None = 0,
    /// zstd-compressed payload.
    Zstd = 1,
    /// Snappy-compressed payload.
    Snappy = 2,
    /// LZ4-compressed payload.
    Lz4 = 3,
}

/// One v1 frame, with its byte fields borrowed.
///
/// As an output (`rp_frame_decode`) its views point into the caller's buffer and stay valid
/// while that buffer is unchanged. As an input (`rp_frame_encode*`) the views are read during
/// the call only. Start from `rp_frame_view_init` so fields added later get their defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rp_frame_view {
    /// Envelope version; 1 for every frame librp builds.
    pub envelope_version: u32,
    /// One of `rp_frame_kind` (other values are carried as-is).
    pub kind: i32,
    /// Payload protocol id (see `RP_PROTOCOL_*`).
    pub payload_protocol: u32,
    /// One of `rp_payload_encoding`.
    pub payload_encoding: i32,
    /// Correlation id.
    pub request_id: u64,
    /// Absolute deadline in Unix milliseconds; 0 = none.
    pub deadline_unix_ms: u64,
    /// Payload bytes.
    pub payload: rp_bytes,
    /// W3C traceparent; empty = none.
    pub traceparent: rp_str,
    /// W3C tracestate; empty = none.
    pub tracestate: rp_str,
}

impl rp_frame_view {
    /// The C view of a frame (same borrows).
    #[inline]
    pub(crate) fn from_view(v: &FrameView<'_>) -> Self {
        rp_frame_view {
            envelope_version: v.envelope_version,
            kind: v.kind,
            payload_protocol: v.payload_protocol,
            payload_encoding: v.payload_encoding,
            request_id: v.request_id,
            deadline_unix_ms: v.deadline_unix_ms,
            payload: rp_bytes::from_slice(v.payload),
            traceparent: rp_str::from_str(v.traceparent),
            tracestate: rp_str::from_str(v.tracestate),
        }
    }

    /// The Rust view of a frame from C (checked: NULL views with a length, bad UTF-8).
    ///
    /// # Safety
    /// The views are NULL-with-zero-length or point to readable memory for `'a`.
    #[inline(always)]
    pub(crate) unsafe fn to_view<'a>(self) -> Result<FrameView<'a>, Failure> {
        // SAFETY: forwarded contract.
        unsafe {
            Ok(FrameView {
                envelope_version: self.envelope_version,
                kind: self.kind,
                payload_protocol: self.payload_protocol,
                payload: slice_arg_named::<ArgPayload>(self.payload.ptr, self.payload.len)?,
                request_id: self.request_id,
                payload_encoding: self.payload_encoding,
                deadline_unix_ms: self.deadline_unix_ms,
                traceparent: self.traceparent.as_str_named::<ArgTraceparent>()?,
                tracestate: self.tracestate.as_str_named::<ArgTracestate>()?,
            })
        }
    }
}

/// Sets every field of `frame` to its default: envelope version 1, kind REQUEST, protocol 0,
/// no payload, request id 0, no encoding, no deadline, no trace context.
///
/// Returns `RP_STATUS_OK`, or `RP_STATUS_NULL_ARGUMENT` if `frame` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_view_init(frame: *mut rp_frame_view) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a writable rp_frame_view per the API contract.
        unsafe { out_arg(frame, "frame") }?.write(rp_frame_view::from_view(&FrameView::default()));
        Ok(())
    })
}

/// Decodes the frame at the front of `buf` without copying it.
///
/// Parameters:
/// - `buf`, `len`: the bytes received so far (`buf` may be NULL when `len` is 0).
/// - `max_body`: the body cap in force; 0 means `RP_FRAME_MAX_BODY`. Use `RP_HELLO_MAX_BODY` for
///   a connection's first frame. Values above `RP_FRAME_MAX_BODY` are invalid.
/// - `out_frame`: receives the frame; its views point into `buf`.
/// - `out_len`: on `RP_STATUS_OK`, the bytes the frame occupies (advance `buf` by this much);
///   on `RP_STATUS_INCOMPLETE`, the total number of bytes needed before trying again (at least).
///
/// Returns:
/// - `RP_STATUS_OK`: a complete frame was decoded.
/// - `RP_STATUS_INCOMPLETE`: `buf` holds a partial frame; nothing is consumed, `out_frame` is
///   not written.
/// - `RP_STATUS_UNSUPPORTED_FRAMING`: the first byte is not `RP_FRAMING_VERSION`.
/// - `RP_STATUS_TOO_LARGE`: the header announces a body above the cap (decided from the header
///   alone; nothing is allocated).
/// - `RP_STATUS_MALFORMED`: the body is not a valid `Frame` protobuf.
/// - `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT`.
///
/// The three framing errors are fatal for a connection.
///
/// Ownership: `out_frame`'s views borrow `buf`; they are valid while `buf` is unchanged.
/// Never allocates. Thread safety: reentrant.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_decode(
    buf: *const u8,
    len: usize,
    max_body: u32,
    out_frame: *mut rp_frame_view,
    out_len: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: the caller provides `len` readable bytes at `buf` (or NULL, 0).
        let buf = unsafe { slice_arg_named::<ArgBuf>(buf, len) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_frame = unsafe { out_arg_named::<_, ArgOutFrame>(out_frame) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_len = unsafe { out_arg_named::<_, ArgOutLen>(out_len) }?;
        let cap = match max_body {
            0 => wire::MAX_BODY,
            n if n <= wire::MAX_BODY => n,
            n => {
                return Err(Failure::new(
                    rp_status::InvalidArgument,
                    format!("max_body {n} exceeds RP_FRAME_MAX_BODY"),
                ))
            }
        };
        match wire::decode_frame(buf, cap)? {
            Decoded::NeedMore { needed } => {
                out_len.write(needed);
                Err(Failure::new(
                    rp_status::Incomplete,
                    format!(
                        "incomplete frame: {} of at least {needed} bytes buffered",
                        buf.len()
                    ),
                ))
            }
            Decoded::Frame { frame, consumed } => {
                out_frame.write(rp_frame_view::from_view(&frame));
                out_len.write(consumed);
                Ok(())
            }
        }
    })
}

/// Encodes `frame` (header and body) into a caller buffer.
///
/// Parameters:
/// - `frame`: the fields; views are read during the call only. Strings must be UTF-8.
/// - `buf`, `cap`: the output buffer (`buf` may be NULL when `cap` is 0, to ask for the size).
/// - `out_len`: on `RP_STATUS_OK`, the bytes written; on `RP_STATUS_BUFFER_TOO_SMALL`, the bytes
///   needed.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_BUFFER_TOO_SMALL` (nothing written to `buf`),
/// `RP_STATUS_TOO_LARGE` (body above `RP_FRAME_MAX_BODY`), `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: reentrant. Never allocates.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_encode(
    frame: *const rp_frame_view,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `frame` is NULL or a readable rp_frame_view whose views are valid now.
        let view = unsafe { frame.as_ref() }.ok_or_else(super::bytes::null_named::<ArgFrame>)?;
        // SAFETY: as above.
        let view = unsafe { view.to_view() }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_len = unsafe { out_arg_named::<_, ArgOutLen>(out_len) }?;
        // SAFETY: the caller provides `cap` writable bytes at `buf` (or NULL, 0).
        let out = unsafe { slice_out_named::<ArgBuf>(buf, cap) }?;
        match view.encode_into(out) {
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

/// Encodes `frame` (header and body) into a new library-owned message.
///
/// Parameters: `frame` as for `rp_frame_encode`; `out_msg` receives the message on success.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_msg` and frees it with `rp_msg_free`.
/// Thread safety: reentrant.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_encode_msg(
    frame: *const rp_frame_view,
    out_msg: *mut *mut rp_msg,
) -> rp_status {
    boundary(|| {
        // SAFETY: `frame` is NULL or a readable rp_frame_view whose views are valid now.
        let view = unsafe { frame.as_ref() }.ok_or_else(|| Failure::null("frame"))?;
        // SAFETY: as above.
        let view = unsafe { view.to_view() }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_msg = unsafe { out_arg(out_msg, "out_msg") }?;
        let bytes = view.to_bytes()?;
        out_msg.write(box_into_handle(bytes));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::boundary::INJECT_PANIC;

    #[test]
    fn constants_match_the_core() {
        assert_eq!(RP_FRAMING_VERSION, wire::FRAMING_VERSION);
        assert_eq!(RP_FRAME_HEADER_LEN, wire::HEADER_LEN);
        assert_eq!(RP_FRAME_MAX_BODY, wire::MAX_BODY);
        assert_eq!(RP_HELLO_MAX_BODY, wire::HELLO_MAX_BODY);
    }

    #[test]
    fn a_panic_inside_a_real_entry_point_returns_panic_status() {
        let bytes = [1u8, 2, 0, 0, 0, 0x08, 0x01];
        let mut frame = std::mem::MaybeUninit::<rp_frame_view>::uninit();
        let mut len = 0usize;
        INJECT_PANIC.set(true);
        // SAFETY: valid buffer and out-pointers.
        let status = unsafe {
            rp_frame_decode(bytes.as_ptr(), bytes.len(), 0, frame.as_mut_ptr(), &mut len)
        };
        assert_eq!(status, rp_status::Panic);
        assert_eq!(len, 0, "no output written on panic");
        // The same call works once the injected fault is gone.
        // SAFETY: as above.
        let status = unsafe {
            rp_frame_decode(bytes.as_ptr(), bytes.len(), 0, frame.as_mut_ptr(), &mut len)
        };
        assert_eq!(status, rp_status::Ok);
        assert_eq!(len, bytes.len());
    }
}
