//! `rp_conn_*` and `rp_frame_*`: a framed v1 connection and the frames received on it, for C.

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::timeout_arg;
use super::frame::rp_frame_view;
use super::handle::{box_free, box_into_handle, box_ref, castable, out_arg, write_out};
use super::status::rp_status;
use crate::broker::Conn;
use crate::wire::proto::Frame;

/// A framed connection to a backend (or any v1 peer).
///
/// Methods: `rp_conn_send`, `rp_conn_recv`, `rp_conn_fd`, `rp_conn_peer_credentials`,
/// `rp_conn_close`, `rp_conn_free`.
///
/// Functions taking `const rp_conn *` are thread-safe: one thread may wait in `rp_conn_recv`
/// while another sends or calls `rp_conn_close`, which wakes it with `RP_STATUS_CLOSED`.
pub struct rp_conn {
    _private: [u8; 0],
}

castable!(rp_conn => Conn: OwnedBox);

/// One received frame, owned.
///
/// Methods: `rp_frame_view_of`, `rp_frame_free`.
///
/// Exclusive handle (Send).
pub struct rp_frame {
    _private: [u8; 0],
}

castable!(rp_frame => Frame: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

/// Borrows a connection (NULL-checked).
unsafe fn conn_ref<'a>(conn: *const rp_conn) -> Result<&'a Conn, Failure> {
    // SAFETY: NULL or a live connection per the API contract.
    unsafe { box_ref::<rp_conn>(conn, "conn") }
}

/// Sends one frame (its views are read during the call only).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED`, `RP_STATUS_TIMEOUT` (the peer did not read for
/// 30 s), `RP_STATUS_TOO_LARGE`, `RP_STATUS_IO`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`.
///
/// Thread safety: may run concurrently with `rp_conn_recv` and `rp_conn_close`; concurrent
/// sends are serialised.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_send(conn: *const rp_conn, frame: *const rp_frame_view) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let conn = unsafe { conn_ref(conn) }?;
        // SAFETY: NULL or a readable rp_frame_view whose views are valid for the call.
        let view = unsafe { frame.as_ref() }.ok_or_else(|| Failure::null("frame"))?;
        // SAFETY: as above.
        let view = unsafe { view.to_view() }?;
        conn.send(&view)?;
        Ok(())
    })
}

/// Sends `count` frames with one write where the socket allows: the way to stream many small
/// frames without a system call each (their views are read during the call only). The frames go
/// out in order and whole; on failure none may be assumed delivered.
///
/// Returns as `rp_conn_send`; `frames` may be NULL when `count` is 0.
///
/// Thread safety: as `rp_conn_send`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_send_many(
    conn: *const rp_conn,
    frames: *const rp_frame_view,
    count: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let conn = unsafe { conn_ref(conn) }?;
        if frames.is_null() && count > 0 {
            return Err(Failure::null("frames"));
        }
        if count > isize::MAX as usize / std::mem::size_of::<rp_frame_view>() {
            return Err(Failure::new(rp_status::InvalidArgument, "count too large"));
        }
        let c_frames: &[rp_frame_view] = if count == 0 {
            &[]
        } else {
            // SAFETY: `count` readable rp_frame_views at `frames` per the API contract.
            unsafe { std::slice::from_raw_parts(frames, count) }
        };
        // SAFETY: each view's buffers are valid for the call per the API contract.
        conn.send_each(c_frames.iter().map(|f| unsafe { f.to_view() }))
    })
}

/// Receives one frame, waiting up to `timeout_ms` (-1 = no limit, 0 = only what is here).
///
/// Returns `RP_STATUS_OK` with `*out_frame` set; `RP_STATUS_TIMEOUT` (nothing complete in time;
/// partial bytes stay buffered); `RP_STATUS_CLOSED` (the peer closed, or `rp_conn_close`);
/// `RP_STATUS_TOO_LARGE`, `RP_STATUS_UNSUPPORTED_FRAMING`, `RP_STATUS_TRUNCATED`,
/// `RP_STATUS_MALFORMED`; `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_frame`; free it with `rp_frame_free`.
/// Thread safety: may run concurrently with `rp_conn_send` and `rp_conn_close`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_recv(conn: *const rp_conn, timeout_ms: i32, out_frame: *mut *mut rp_frame) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let conn = unsafe { conn_ref(conn) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_frame = unsafe { out_arg(out_frame, "out_frame") }?;
        let frame = conn.recv(timeout_arg(timeout_ms)?)?;
        out_frame.write(box_into_handle(frame));
        Ok(())
    })
}

/// Receives up to `capacity` frames without copying them: waits up to `timeout_ms` (-1 =
/// no limit, 0 = only what is here) for the first, then takes every further frame already
/// received, and writes one view per frame to `views`. The way to read a stream of small frames
/// without a system call, an allocation or a copy per frame.
///
/// Returns `RP_STATUS_OK` with `*out_count` (1..=`capacity`) views written; otherwise as
/// `rp_conn_recv` (`*out_count` is then 0), plus `RP_STATUS_INVALID_ARGUMENT` if `capacity` is 0.
/// A frame that fails to decode after others were returned is reported by the next receive.
///
/// Ownership: the views borrow the connection's read buffer. They stay valid until the next
/// `rp_conn_recv` or `rp_conn_recv_views` on this connection, or `rp_conn_free`; copy what
/// must outlive that.
/// Thread safety: as `rp_conn_recv`, but only one thread should receive while it holds views.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_recv_views(
    conn: *const rp_conn,
    timeout_ms: i32,
    views: *mut rp_frame_view,
    capacity: usize,
    out_count: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let conn = unsafe { conn_ref(conn) }?;
        if views.is_null() || out_count.is_null() {
            return Err(Failure::null("views/out_count"));
        }
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_count, 0) };
        if capacity == 0 {
            return Err(Failure::new(rp_status::InvalidArgument, "capacity is 0"));
        }
        let mut written = 0;
        conn.recv_each(timeout_arg(timeout_ms)?, capacity, |frame| {
            // SAFETY: `views` has room for `capacity` entries per the API contract, and
            // recv_each hands out at most `capacity` frames.
            unsafe { views.add(written).write(rp_frame_view::from_view(&frame)) };
            written += 1;
        })?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_count, written) };
        Ok(())
    })
}

/// A descriptor for poll/epoll loops, readable exactly while `rp_conn_recv` would return without
/// waiting: a frame is here (also one an earlier receive already took off the socket and
/// buffered, or, over TLS, decrypted and held by the connection), or the connection ended. Level-triggered: one `rp_conn_recv` with timeout 0 per
/// wake-up loses nothing, and nothing pending means not readable. It may also be readable for
/// part of a frame (`rp_conn_recv` with timeout 0 then returns `RP_STATUS_TIMEOUT`).
///
/// Not the socket: watch it for readability only; never read, write or close it. Owned by the
/// connection, the same descriptor for its lifetime; made on the first call (which never waits
/// for a receive in progress). -1 if `conn` is NULL or the descriptor could not be made (out of
/// descriptors).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_fd(conn: *const rp_conn) -> i32 {
    // SAFETY: forwarded API contract.
    boundary_or(-1, || unsafe { conn_ref(conn) }.map_or(-1, |c| c.pollable_fd().map_or(-1, super::bytes::descriptor_out)))
}

/// The peer's kernel-reported credentials (Unix sockets).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NOT_FOUND` (none: a TCP connection), or
/// `RP_STATUS_NULL_ARGUMENT` (any of the pointers).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_peer_credentials(
    conn: *const rp_conn,
    out_pid: *mut u32,
    out_uid: *mut u32,
    out_gid: *mut u32,
) -> rp_status {
    boundary(|| {
        // SAFETY: forwarded API contract.
        let conn = unsafe { conn_ref(conn) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let (out_pid, out_uid, out_gid) =
            unsafe { (out_arg(out_pid, "out_pid")?, out_arg(out_uid, "out_uid")?, out_arg(out_gid, "out_gid")?) };
        let p = conn
            .peer_credentials()
            .ok_or_else(|| Failure::new(rp_status::NotFound, "the peer has no kernel-reported credentials"))?;
        out_pid.write(p.pid);
        out_uid.write(p.uid);
        out_gid.write(p.gid);
        Ok(())
    })
}

/// Closes the connection: a blocked `rp_conn_recv` returns `RP_STATUS_CLOSED`, later calls fail
/// the same way. Idempotent; callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_close(conn: *const rp_conn) {
    boundary_or((), || {
        // SAFETY: forwarded API contract.
        if let Ok(c) = unsafe { conn_ref(conn) } {
            c.close();
        }
    })
}

/// Makes a librp connection of a connected Unix stream socket — for example the descriptor
/// `rp_handoff_accept` adopted — so it can send and receive frames with `rp_conn_*`.
///
/// Parameters: `fd` — consumed on every path: the connection owns it afterwards, and it is
/// closed if this call fails (a negative `fd` is only rejected); `out_conn` — receives the
/// connection.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (negative `fd`), `RP_STATUS_IO`,
/// `RP_STATUS_NULL_ARGUMENT` (then `fd` is closed too).
///
/// On Windows `fd` is a connected named-pipe `HANDLE` opened for overlapped I/O, as
/// `(int32_t)(intptr_t)handle` — for example the server end a broker duplicated into this
/// process, whose value its HandoffOffer carries in `handle_value`.
///
/// Ownership: the caller owns `*out_conn`; free it with `rp_conn_free`, which closes `fd`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_adopt_fd(fd: i32, out_conn: *mut *mut rp_conn) -> rp_status {
    boundary(|| {
        if fd < 0 {
            return Err(Failure::new(rp_status::InvalidArgument, format!("fd {fd} is not a descriptor")));
        }
        // SAFETY: the caller hands over ownership of the open descriptor `fd` (API contract);
        // from here it is closed exactly once, by the OwnedFd or the connection owning it.
        #[cfg(unix)]
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: as above, for the pipe HANDLE `fd` (a 32-bit handle value, sign-extended).
        #[cfg(windows)]
        let owned = unsafe {
            <std::os::windows::io::OwnedHandle as std::os::windows::io::FromRawHandle>::from_raw_handle(fd as isize as _)
        };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_conn = unsafe { out_arg(out_conn, "out_conn") }?;
        let conn = crate::broker::Conn::from_unix_fd(owned)?;
        out_conn.write(box_into_handle(conn));
        Ok(())
    })
}

/// Closes and frees a connection. NULL is a no-op. Must not be called twice, nor while another
/// thread still uses `conn`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_conn_free(conn: *mut rp_conn) {
    // SAFETY: NULL or a live connection owned by the caller.
    boundary_or((), || unsafe { box_free(conn) })
}

/// Fills `*out_view` with borrowed views of a received frame, valid until `frame` is freed.
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_view_of(frame: *const rp_frame, out_view: *mut rp_frame_view) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live frame per the API contract.
        let f = unsafe { box_ref::<rp_frame>(frame, "frame") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_view = unsafe { out_arg(out_view, "out_view") }?;
        out_view.write(rp_frame_view::from_view(&f.view()));
        Ok(())
    })
}

/// Frees a received frame. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_free(frame: *mut rp_frame) {
    // SAFETY: NULL or a live frame owned by the caller.
    boundary_or((), || unsafe { box_free(frame) })
}
