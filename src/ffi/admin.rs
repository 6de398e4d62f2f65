//! `rp_admin_request` and `rp_admin_reply_*`: admin requests (0xAD01) to a broker, for C.

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or};
use super::bytes::{cstr_arg, rp_str, timeout_arg};
use super::handle::{box_free, box_into_handle, box_ref, castable, out_arg};
use super::status::rp_status;
use crate::broker::{self};
use crate::transport::Endpoint;
use crate::wire::proto::{AdminReply, AdminRequest};

/// An admin reply (0xAD01): kind, body, exit code, content type.
///
/// Methods: `rp_admin_reply_kind`, `_body`, `_exit_code`, `_free`.
///
/// Exclusive handle (Send).
pub struct rp_admin_reply {
    _private: [u8; 0],
}

castable!(rp_admin_reply => AdminReply: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

/// Sends one admin request (payload protocol 0xAD01) on a new connection to `endpoint` and
/// waits up to `timeout_ms` for the reply (0 = only a reply already there, -1 = no limit).
///
/// Parameters: `verb` — an `AdminVerb` value (STATUS 1, HEALTHZ 4, READYZ 5, SHUTDOWN 21, ...);
/// `service_name` — may be NULL (none).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TIMEOUT`, `RP_STATUS_CLOSED`, `RP_STATUS_IO`,
/// `RP_STATUS_PROTOCOL`, `RP_STATUS_MALFORMED`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
/// -1), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
///
/// Ownership: the caller owns `*out_reply`; free it with `rp_admin_reply_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_admin_request(
    endpoint: *const c_char,
    verb: i32,
    service_name: *const c_char,
    timeout_ms: i32,
    out_reply: *mut *mut rp_admin_reply,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated string per the API contract.
        let endpoint = Endpoint::parse(unsafe { cstr_arg(endpoint, "endpoint") }?)?;
        let service_name = if service_name.is_null() {
            String::new()
        } else {
            // SAFETY: as above.
            unsafe { cstr_arg(service_name, "service_name") }?.to_owned()
        };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_reply = unsafe { out_arg(out_reply, "out_reply") }?;
        let timeout = timeout_arg(timeout_ms)?;
        let request = AdminRequest { verb, service_name, ..AdminRequest::default() };
        let reply = broker::admin_request(&endpoint, &request, timeout)?;
        out_reply.write(box_into_handle(reply));
        Ok(())
    })
}

/// The reply's kind (TEXT 0, JSON 1, OPENMETRICS 2); -1 if `reply` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_admin_reply_kind(reply: *const rp_admin_reply) -> i32 {
    // SAFETY: NULL or a live reply.
    boundary_or(-1, || unsafe { box_ref::<rp_admin_reply>(reply, "reply") }.map_or(-1, |r| r.kind))
}

/// The reply's exit code (0 = success); `UINT32_MAX` if `reply` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_admin_reply_exit_code(reply: *const rp_admin_reply) -> u32 {
    // SAFETY: NULL or a live reply.
    boundary_or(u32::MAX, || unsafe { box_ref::<rp_admin_reply>(reply, "reply") }.map_or(u32::MAX, |r| r.exit_code))
}

/// The reply's body. Borrowed: valid until `reply` is freed. Empty if `reply` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_admin_reply_body(reply: *const rp_admin_reply) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live reply.
        unsafe { box_ref::<rp_admin_reply>(reply, "reply") }.map_or(rp_str::from_str(""), |r| rp_str::from_str(&r.body))
    })
}

/// Frees an admin reply. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_admin_reply_free(reply: *mut rp_admin_reply) {
    // SAFETY: NULL or a live reply owned by the caller.
    boundary_or((), || unsafe { box_free(reply) })
}
