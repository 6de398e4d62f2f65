//! `rp_push_worker_list_*` and `rp_push_worker_info_*`: the registered workers of a push server, for C.

use super::boundary::boundary_or;
use super::bytes::rp_str;
use super::handle::{borrowed_ref, box_free, box_ref, castable, lend, opt_out};
use crate::push::WorkerInfo;

/// The registered workers at one moment. Methods: `rp_push_worker_list_len`, `rp_push_worker_list_get`,
/// `rp_push_worker_list_free`.
pub struct rp_push_worker_list {
    _private: [u8; 0],
}

castable!(rp_push_worker_list => Vec<WorkerInfo>: OwnedBox);

/// One worker: id, registration, kernel-reported credentials, pushes in flight. Always
/// borrowed (from an `rp_push_worker_list` or a callback); never freed on its own.
///
/// Methods: `rp_push_worker_info_id`, `_identity`, `_task_queue`, `_node`, `_namespace_count`,
/// `_namespace`, `_activity_type_count`, `_activity_type`, `_protocol_count`, `_protocol`,
/// `_peer`, `_tls_verified`, `_tls_subject`, `_tls_san_count`, `_tls_san`, `_in_flight`.
pub struct rp_push_worker_info {
    _private: [u8; 0],
}

castable!(rp_push_worker_info => WorkerInfo: Borrowed);

// ---------------------------------------------------------------------------------------------
// Worker lists and infos
// ---------------------------------------------------------------------------------------------

/// Number of workers in the list (0 if NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_list_len(list: *const rp_push_worker_list) -> usize {
    // SAFETY: NULL or a live list.
    boundary_or(0, || unsafe { box_ref::<rp_push_worker_list>(list, "list") }.map_or(0, |l| l.len()))
}

/// The `index`-th worker, or NULL if out of range. Borrowed: valid until the list is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_list_get(list: *const rp_push_worker_list, index: usize) -> *const rp_push_worker_info {
    boundary_or(std::ptr::null(), || {
        // SAFETY: NULL or a live list.
        unsafe { box_ref::<rp_push_worker_list>(list, "list") }
            .ok()
            .and_then(|l| l.get(index))
            .map_or(std::ptr::null(), lend::<rp_push_worker_info>)
    })
}

/// Frees a worker list (and the infos borrowed from it). NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_list_free(list: *mut rp_push_worker_list) {
    // SAFETY: NULL or a live list owned by the caller.
    boundary_or((), || unsafe { box_free(list) })
}

unsafe fn info_ref<'a>(info: *const rp_push_worker_info) -> Option<&'a WorkerInfo> {
    // SAFETY: NULL or a borrowed live WorkerInfo per the API contract.
    unsafe { borrowed_ref::<rp_push_worker_info>(info, "info") }.ok()
}

/// Runs `f` on a worker info, or returns `neutral` for NULL.
unsafe fn with_info<T>(info: *const rp_push_worker_info, neutral: T, f: impl FnOnce(&WorkerInfo) -> T) -> T {
    // SAFETY: forwarded contract.
    unsafe { info_ref(info) }.map_or(neutral, f)
}

fn str_at(items: &[String], index: usize) -> rp_str {
    items.get(index).map_or(rp_str::from_str(""), |s| rp_str::from_str(s))
}

/// The worker's id (0 if NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_id(info: *const rp_push_worker_info) -> u64 {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.id) })
}

/// The identity the worker registered with. Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_identity(info: *const rp_push_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| rp_str::from_str(&i.registration.identity))
    })
}

/// The worker's task queue. Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_task_queue(info: *const rp_push_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| rp_str::from_str(&i.registration.task_queue))
    })
}

/// The worker's node (empty if none). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_node(info: *const rp_push_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| rp_str::from_str(&i.registration.node))
    })
}

/// Number of namespaces the worker registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_namespace_count(info: *const rp_push_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.registration.namespaces.len()) })
}

/// The `index`-th namespace (empty if out of range). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_namespace(info: *const rp_push_worker_info, index: usize) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| str_at(&i.registration.namespaces, index))
    })
}

/// Number of activity types the worker registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_activity_type_count(info: *const rp_push_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.registration.activity_types.len()) })
}

/// The `index`-th activity type (empty if out of range). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_activity_type(info: *const rp_push_worker_info, index: usize) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| str_at(&i.registration.activity_types, index))
    })
}

/// Number of payload protocols the worker serves.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_payload_protocol_count(info: *const rp_push_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.registration.payload_protocols.len()) })
}

/// The `index`-th payload protocol (0 if out of range).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_payload_protocol(info: *const rp_push_worker_info, index: usize) -> u32 {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe {
        with_info(info, 0, |i| i.registration.payload_protocols.get(index).copied().unwrap_or(0))
    })
}

/// The worker's kernel-reported credentials (Unix sockets). Returns false (writing nothing)
/// for TCP workers or NULL `info`; each out pointer may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_peer(
    info: *const rp_push_worker_info,
    out_pid: *mut u32,
    out_uid: *mut u32,
    out_gid: *mut u32,
) -> bool {
    boundary_or(false, || {
        // SAFETY: NULL or a borrowed live info.
        let Some(peer) = (unsafe { info_ref(info) }).and_then(|i| i.peer) else { return false };
        for (out, v) in [(out_pid, peer.pid), (out_uid, peer.uid), (out_gid, peer.gid)] {
            // SAFETY: NULL or valid for a write per the API contract.
            if let Some(out) = unsafe { opt_out(out) } {
                out.write(v);
            }
        }
        true
    })
}

/// Whether the worker proved its identity with a client certificate the server verified
/// (mutual TLS on a `tls://` endpoint); false otherwise or for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_tls_verified(info: *const rp_push_worker_info) -> bool {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(false, || unsafe { with_info(info, false, |i| i.tls_identity.is_some()) })
}

/// The subject of the worker's verified client certificate, as `CN=...,O=...` (empty without
/// one). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_tls_subject(info: *const rp_push_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| i.tls_identity.as_ref().map_or(rp_str::from_str(""), |t| rp_str::from_str(&t.subject)))
    })
}

/// Number of subject alternative names in the worker's verified client certificate (0
/// without one).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_tls_san_count(info: *const rp_push_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.tls_identity.as_ref().map_or(0, |t| t.sans.len())) })
}

/// The `index`-th subject alternative name of the worker's verified client certificate, as
/// `DNS:name`, `IP:address`, `URI:uri` or `email:address` (empty if out of range). Borrowed
/// like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_tls_san(info: *const rp_push_worker_info, index: usize) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| i.tls_identity.as_ref().map_or(rp_str::from_str(""), |t| str_at(&t.sans, index)))
    })
}

/// Pushes sent to the worker and not yet answered, when the info was taken.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_info_in_flight(info: *const rp_push_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.in_flight) })
}
