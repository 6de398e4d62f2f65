//! `rp_refusal`: why a broker or server refused a connection.

use super::boundary::{boundary, boundary_or, Failure, LAST_REFUSAL};
use super::bytes::rp_str;
use super::handle::{box_free, box_into_handle, box_ref, castable, out_arg};
use super::status::rp_status;
use crate::control::Refusal;

/// The protocol's `ErrorCode`: why a server refused (`rp_refusal_code`).
#[repr(i32)]
pub enum rp_error_code {
    /// No code given.
    Unspecified = 0,
    /// The protocol or requested version is not supported.
    VersionUnsupported = 1,
    /// No such service.
    ServiceUnknown = 2,
    /// The backend could not be started.
    BackendSpawnFailed = 3,
    /// Too many requests; see `rp_refusal_retry_after_ms`.
    RateLimited = 4,
    /// The server is shutting down.
    ShuttingDown = 5,
    /// This peer is not allowed (identity, credentials or token).
    PeerRejected = 6,
    /// The server failed internally.
    Internal = 7,
    /// The requested version is blocked by policy.
    VersionBlocked = 8,
    /// The server is short of descriptors.
    FdPressure = 9,
}

/// A server's refusal: code, reason, retry hint and details.
///
/// Methods: `rp_refusal_code`, `rp_refusal_reason`, `rp_refusal_retry_after_ms`,
/// `rp_refusal_detail_count`, `rp_refusal_detail`, `rp_refusal_free`.
///
/// Exclusive handle (Send): owned by the caller, freed with `rp_refusal_free`.
pub struct rp_refusal {
    _private: [u8; 0],
}

castable!(rp_refusal => Refusal: OwnedBox);

/// Copies the refusal behind the most recent failure on the calling thread.
///
/// Call it right after a function returned `RP_STATUS_REFUSED`.
///
/// Returns `RP_STATUS_OK` with `*out_refusal` set, `RP_STATUS_NOT_FOUND` if the most recent
/// failure on this thread was not a refusal, or `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_refusal`; free it with `rp_refusal_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_last_refusal(out_refusal: *mut *mut rp_refusal) -> rp_status {
    // Read before `boundary` records a failure of this very call.
    let last = LAST_REFUSAL.with_borrow(|r| r.clone());
    boundary(|| {
        // SAFETY: NULL or valid for a write per the API contract.
        let out_refusal = unsafe { out_arg(out_refusal, "out_refusal") }?;
        let refusal = last.ok_or_else(|| {
            Failure::new(rp_status::NotFound, "the most recent failure on this thread was not a refusal")
        })?;
        out_refusal.write(box_into_handle(*refusal));
        Ok(())
    })
}

/// The refusal's code, one of `rp_error_code` (other values may come from newer servers).
/// Returns 0 if `refusal` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_refusal_code(refusal: *const rp_refusal) -> i32 {
    // SAFETY: NULL or a live rp_refusal.
    boundary_or(0, || unsafe { box_ref::<rp_refusal>(refusal, "refusal") }.map_or(0, |r| r.code))
}

/// Milliseconds the server asks the client to wait before retrying; 0 = no hint (or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_refusal_retry_after_ms(refusal: *const rp_refusal) -> u64 {
    // SAFETY: NULL or a live rp_refusal.
    boundary_or(0, || unsafe { box_ref::<rp_refusal>(refusal, "refusal") }.map_or(0, |r| r.retry_after_ms))
}

/// The server's reason. Borrowed: valid until `refusal` is freed. Empty if `refusal` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_refusal_reason(refusal: *const rp_refusal) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live rp_refusal.
        unsafe { box_ref::<rp_refusal>(refusal, "refusal") }.map_or(rp_str::from_str(""), |r| rp_str::from_str(&r.reason))
    })
}

/// Number of key/value details the server attached (0 if `refusal` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_refusal_detail_count(refusal: *const rp_refusal) -> usize {
    // SAFETY: NULL or a live rp_refusal.
    boundary_or(0, || unsafe { box_ref::<rp_refusal>(refusal, "refusal") }.map_or(0, |r| r.details.len()))
}

/// The `index`-th detail, in key order.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (index out of range) or
/// `RP_STATUS_NULL_ARGUMENT`. Ownership: `*out_key` and `*out_value` borrow `refusal`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_refusal_detail(
    refusal: *const rp_refusal,
    index: usize,
    out_key: *mut rp_str,
    out_value: *mut rp_str,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live rp_refusal.
        let r = unsafe { box_ref::<rp_refusal>(refusal, "refusal") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let (out_key, out_value) = unsafe { (out_arg(out_key, "out_key")?, out_arg(out_value, "out_value")?) };
        let (k, v) = r.details.iter().nth(index).ok_or_else(|| {
            Failure::new(rp_status::InvalidArgument, format!("detail {index} of {}", r.details.len()))
        })?;
        out_key.write(rp_str::from_str(k));
        out_value.write(rp_str::from_str(v));
        Ok(())
    })
}

/// Frees a refusal. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_refusal_free(refusal: *mut rp_refusal) {
    // SAFETY: NULL or a live rp_refusal owned by the caller.
    boundary_or((), || unsafe { box_free(refusal) })
}
