//! `rp_daemon_identity_*`: the identity a backend daemon reports in identity-probe replies.

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or, Failure, FfiResult};
use super::bytes::{cstr_arg, slice_arg, slice_out};
use super::handle::{box_free, box_into_handle, box_ref, write_out, Castable, OwnedBox};
use super::status::rp_status;
use crate::mux::{DaemonIdentity, LegacyHash, EXE_HASH_ALGORITHM, LEGACY_SHA256_LEN};

/// Flag for `rp_daemon_identity_new_current`: also compute the SHA-256 of the executable for
/// the legacy slot of probe replies (without it the slot holds 32 zero bytes).
pub const RP_DAEMON_IDENTITY_LEGACY_SHA256: u32 = 1;

/// The identity of a daemon process: pid, canonical executable path, executable hash, boot id,
/// start time, optional idle timeout, the endpoint it serves, and the legacy SHA-256 slot.
///
/// Methods: `rp_daemon_identity_new`, `rp_daemon_identity_new_current`, the
/// `rp_daemon_identity_set_*` setters, `rp_daemon_identity_encode`, `rp_daemon_identity_free`.
/// It is read (copied) by `rp_mux_new`; later changes do not affect a mux already created.
///
/// Exclusive handle (Send): calls taking `rp_daemon_identity *` must be serialised by the caller.
pub struct rp_daemon_identity {
    _private: [u8; 0],
}

impl Castable for rp_daemon_identity {
    type Ownership = OwnedBox;
    type RustType = DaemonIdentity;
}

/// Runs `set` on the identity behind `identity`.
///
/// # Safety
/// `identity` is NULL or a live `rp_daemon_identity` not used concurrently.
unsafe fn with_identity(
    identity: *mut rp_daemon_identity,
    set: impl FnOnce(&mut DaemonIdentity) -> FfiResult,
) -> rp_status {
    boundary(|| {
        // SAFETY: per the contract above, a non-NULL pointer is a live, unshared identity.
        let id = unsafe { identity.cast::<DaemonIdentity>().as_mut() }
            .ok_or_else(|| Failure::null("identity"))?;
        set(id)
    })
}

/// Creates an empty identity to fill field by field (for daemons that know their identity
/// better than `/proc` does): pid 0, empty strings, no idle timeout, `exe_hash_algorithm`
/// "blake3" with an empty hash, and a zero legacy slot.
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: on success the caller owns `*out_identity`; free it with
/// `rp_daemon_identity_free`. `*out_identity` is written only on success.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_new(
    out_identity: *mut *mut rp_daemon_identity,
) -> rp_status {
    boundary(|| {
        if out_identity.is_null() {
            return Err(Failure::null("out_identity"));
        }
        let id = DaemonIdentity {
            exe_hash_algorithm: EXE_HASH_ALGORITHM.to_owned(),
            ..DaemonIdentity::default()
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_identity, box_into_handle::<rp_daemon_identity>(id)) };
        Ok(())
    })
}

/// Builds the identity of the calling process serving the endpoint
/// `endpoint_namespace`:`endpoint_path`, as a strict prober checks it: pid, canonical path of
/// `/proc/self/exe`, its BLAKE3 hash, `/proc/sys/kernel/random/boot_id`, and the process start
/// time. No idle timeout (set one with `rp_daemon_identity_set_idle_timeout_secs`).
///
/// Parameters:
/// - `endpoint_namespace`, `endpoint_path`: NUL-terminated UTF-8; the path is the endpoint
///   probers connect to.
/// - `flags`: 0, or `RP_DAEMON_IDENTITY_LEGACY_SHA256` to fill the legacy slot with the
///   SHA-256 of the executable (zeros otherwise).
/// - `out_identity`: receives the identity on success.
///
/// Returns `RP_STATUS_OK`; `RP_STATUS_IO` when `/proc` cannot be read (Linux only);
/// `RP_STATUS_INVALID_ARGUMENT` for unknown flags; `RP_STATUS_INVALID_UTF8`;
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Reads and hashes the whole executable: call it once at start-up, not per connection.
///
/// Ownership: on success the caller owns `*out_identity`; free it with
/// `rp_daemon_identity_free`. `*out_identity` is written only on success.
/// Thread safety: may be called from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_new_current(
    endpoint_namespace: *const c_char,
    endpoint_path: *const c_char,
    flags: u32,
    out_identity: *mut *mut rp_daemon_identity,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated strings per the API contract.
        let namespace = unsafe { cstr_arg(endpoint_namespace, "endpoint_namespace") }?;
        // SAFETY: as above.
        let path = unsafe { cstr_arg(endpoint_path, "endpoint_path") }?;
        if out_identity.is_null() {
            return Err(Failure::null("out_identity"));
        }
        if flags & !RP_DAEMON_IDENTITY_LEGACY_SHA256 != 0 {
            return Err(Failure::new(
                rp_status::InvalidArgument,
                format!("unknown identity flags 0x{flags:x}"),
            ));
        }
        let legacy = if flags & RP_DAEMON_IDENTITY_LEGACY_SHA256 != 0 {
            LegacyHash::Sha256
        } else {
            LegacyHash::Zeros
        };
        let id = DaemonIdentity::current_process(namespace, path, None, legacy)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_identity, box_into_handle::<rp_daemon_identity>(id)) };
        Ok(())
    })
}

/// Sets the process id.
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_pid(
    identity: *mut rp_daemon_identity,
    pid: u32,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            id.pid = pid;
            Ok(())
        })
    }
}

/// Sets the canonical absolute path of the executable (NUL-terminated UTF-8; copied).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_exe_path(
    identity: *mut rp_daemon_identity,
    exe_path: *const c_char,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            // SAFETY: NUL-terminated string per the API contract.
            id.exe_path = cstr_arg(exe_path, "exe_path")?.to_owned();
            Ok(())
        })
    }
}

/// Sets the endpoint the daemon serves (NUL-terminated UTF-8 strings; copied).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_endpoint(
    identity: *mut rp_daemon_identity,
    endpoint_namespace: *const c_char,
    endpoint_path: *const c_char,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            // SAFETY: NUL-terminated strings per the API contract.
            let namespace = cstr_arg(endpoint_namespace, "endpoint_namespace")?;
            // SAFETY: as above.
            let path = cstr_arg(endpoint_path, "endpoint_path")?;
            id.endpoint_namespace = namespace.to_owned();
            id.endpoint_path = path.to_owned();
            Ok(())
        })
    }
}

/// Sets when the process started, in Unix milliseconds.
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_started_at_unix_ms(
    identity: *mut rp_daemon_identity,
    started_at_unix_ms: u64,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            id.started_at_unix_ms = started_at_unix_ms;
            Ok(())
        })
    }
}

/// Sets the boot id (NUL-terminated UTF-8, as in `/proc/sys/kernel/random/boot_id` without
/// the newline; copied).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_boot_id(
    identity: *mut rp_daemon_identity,
    boot_id: *const c_char,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            // SAFETY: NUL-terminated string per the API contract.
            id.boot_id = cstr_arg(boot_id, "boot_id")?.to_owned();
            Ok(())
        })
    }
}

/// Sets the idle timeout the daemon reports (it is present in replies from now on, even 0).
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_idle_timeout_secs(
    identity: *mut rp_daemon_identity,
    idle_timeout_secs: u32,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            id.idle_timeout_secs = Some(idle_timeout_secs);
            Ok(())
        })
    }
}

/// Removes the idle timeout (the field is then absent from replies).
///
/// Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_clear_idle_timeout(
    identity: *mut rp_daemon_identity,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            id.idle_timeout_secs = None;
            Ok(())
        })
    }
}

/// Sets the executable hash and its algorithm name (strict probers require "blake3" and the
/// 32-byte BLAKE3 of the file). Both are copied.
///
/// Parameters: `algorithm` NUL-terminated UTF-8; `hash`, `hash_len` the digest (`hash` may be
/// NULL when `hash_len` is 0).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_exe_hash(
    identity: *mut rp_daemon_identity,
    algorithm: *const c_char,
    hash: *const u8,
    hash_len: usize,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            // SAFETY: NUL-terminated string and `hash_len` readable bytes per the API contract.
            let algorithm = cstr_arg(algorithm, "algorithm")?;
            // SAFETY: as above.
            let hash = slice_arg(hash, hash_len, "hash")?;
            id.exe_hash_algorithm = algorithm.to_owned();
            id.exe_hash = hash.to_vec();
            Ok(())
        })
    }
}

/// Sets the legacy SHA-256 slot appended to probe replies.
///
/// Parameters: `sha256`, `len`: exactly 32 bytes, or (NULL, 0) for 32 zero bytes.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (another length) or
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_set_legacy_exe_sha256(
    identity: *mut rp_daemon_identity,
    sha256: *const u8,
    len: usize,
) -> rp_status {
    // SAFETY: `identity` is NULL or a live identity owned by the caller.
    unsafe {
        with_identity(identity, |id| {
            // SAFETY: `len` readable bytes per the API contract.
            let bytes = slice_arg(sha256, len, "sha256")?;
            id.legacy_exe_sha256 = match bytes.len() {
                0 => [0; LEGACY_SHA256_LEN],
                LEGACY_SHA256_LEN => bytes.try_into().expect("length checked"),
                n => {
                    return Err(Failure::new(
                        rp_status::InvalidArgument,
                        format!("legacy SHA-256 must be 32 bytes, got {n}"),
                    ))
                }
            };
            Ok(())
        })
    }
}

/// Encodes the identity part of a probe reply (what follows the 32-byte nonce echo): the
/// `DaemonProcess` protobuf, then the legacy slot (`0x1a 0x20` + 32 bytes).
///
/// Parameters: `buf`, `cap` the output buffer (`buf` may be NULL when `cap` is 0, to ask for
/// the size); `out_len` receives the bytes written, or the bytes needed on
/// `RP_STATUS_BUFFER_TOO_SMALL`.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_BUFFER_TOO_SMALL` (nothing written to `buf`) or
/// `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: reads `identity`; may run concurrently with other reads of it.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_encode(
    identity: *const rp_daemon_identity,
    buf: *mut u8,
    cap: usize,
    out_len: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `identity` is NULL or a live identity per the API contract.
        let id = unsafe { box_ref::<rp_daemon_identity>(identity, "identity") }?;
        if out_len.is_null() {
            return Err(Failure::null("out_len"));
        }
        // SAFETY: `cap` writable bytes at `buf` (or NULL, 0) per the API contract.
        let out = unsafe { slice_out(buf, cap, "buf") }?;
        let bytes = id.encode_reply_identity();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_len, bytes.len()) };
        if out.len() < bytes.len() {
            return Err(crate::Error::BufferTooSmall {
                needed: bytes.len(),
                capacity: out.len(),
            }
            .into());
        }
        out[..bytes.len()].copy_from_slice(&bytes);
        Ok(())
    })
}

/// Frees an identity. NULL is a no-op. Must not be called twice with the same value.
/// A mux created from it keeps its own copy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_daemon_identity_free(identity: *mut rp_daemon_identity) {
    boundary_or((), || {
        // SAFETY: `identity` is NULL or a live identity owned by the caller, freed once.
        unsafe { box_free(identity) }
    })
}
