//! `rp_broker_server_*`: the broker server for C (a daemon answering Hellos and handing
//! connections to backends).

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, len_arg, limit_arg, rp_str, rule_arg};
use super::handle::{arc_clone_value, box_free, box_into_handle, box_mut, box_ref, box_take, castable, out_arg};
use super::handoff::rp_handoff_store;
use super::status::rp_status;
use crate::broker::{BrokerServer, BrokerServerOptions, BrokerService};
use crate::transport::Endpoint;
use crate::wire::names::{check_service_name, check_version};

/// How a broker server is set up: endpoint, service table, limits.
///
/// Methods: `rp_broker_server_options_new`, `_add_service`, `_allow_version`, `_block_version`,
/// `_set_min_version`, `_set_handoff`, `_set_rate_limit`, `_set_max_connections`,
/// `_set_allow_other_uids`, `_set_socket_access`,
/// `_set_hello_timeout_ms`, `_set_handoff_ack_timeout_ms`, `_free`; consumed by
/// `rp_broker_server_bind`.
///
/// Exclusive handle (Send).
pub struct rp_broker_server_options {
    _private: [u8; 0],
}

castable!(rp_broker_server_options => BrokerServerOptions: OwnedBox);

/// A running broker server (one event-loop thread for every connection).
///
/// Methods: `rp_broker_server_bind`, `rp_broker_server_endpoint`,
/// `rp_broker_server_begin_shutdown`, `rp_broker_server_free`.
///
/// Limits on what a peer sends (each refused with a reason naming it; docs/PROTOCOL.md):
/// the first frame is at most 64 KiB. Hello, refused with PEER_REJECTED: `service_name` 1-64
/// characters of `[a-z0-9-]`, `wanted_version` semver (pre-release `[a-z0-9.]`) of at most 64,
/// `client_version` at most 128 bytes, `client_lib_name` and `client_lib_version` at most 64,
/// `auth_token` and `capability_token` at most 1024, `request_id` and `peer_attestation_nonce`
/// at most 256. AdminRequest, answered with exit code 2: `service_name` at most 64 bytes,
/// `output_path` at most 4096.
///
/// Functions taking `const rp_broker_server *` are thread-safe.
pub struct rp_broker_server {
    _private: [u8; 0],
}

/// What an `rp_broker_server` holds.
pub(crate) struct ServerHandle {
    pub(crate) server: BrokerServer,
    endpoint: String,
}

castable!(rp_broker_server => ServerHandle: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Broker server
// ---------------------------------------------------------------------------------------------

/// Creates broker server options for `endpoint` (a socket path or `@name`; a path socket is
/// made 0600 in a 0700 directory) with an empty service table.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT`.
///
/// Ownership: the caller owns `*out_options`; `rp_broker_server_bind` consumes it, otherwise
/// free it with `rp_broker_server_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_new(
    endpoint: *const c_char,
    out_options: *mut *mut rp_broker_server_options,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated string per the API contract.
        let endpoint = Endpoint::parse(unsafe { cstr_arg(endpoint, "endpoint") }?)?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_options = unsafe { out_arg(out_options, "out_options") }?;
        let opts = BrokerServerOptions::new(endpoint, Vec::new());
        out_options.write(box_into_handle(opts));
        Ok(())
    })
}

/// The service named `service_name` in `options`.
fn service<'a>(o: &'a mut BrokerServerOptions, name: &str) -> Result<&'a mut BrokerService, Failure> {
    o.services
        .iter_mut()
        .find(|s| s.service_name == name)
        .ok_or_else(|| Failure::new(rp_status::NotFound, format!("service {name:?} was not added")))
}

/// Runs one of the per-service version setters: the service must have been added, and
/// `version` must follow the version rule.
///
/// # Safety
/// `options` is NULL or live and used by one thread at a time, and the strings are NULL or
/// NUL-terminated, per the API contract of the setters.
unsafe fn edit_version(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    version: *const c_char,
    edit: impl FnOnce(&mut BrokerService, String),
) -> rp_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        unsafe {
            let o = box_mut(options, "options")?;
            let s = service(o, cstr_arg(service_name, "service_name")?)?;
            edit(s, rule_arg(cstr_arg(version, "version")?, "version", check_version)?.to_owned());
            Ok(())
        }
    })
}

/// Adds (or replaces) a service: Hellos for `service_name` are answered with Negotiated
/// carrying `backend_pipe` and `daemon_version`.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (a name outside 1–64 characters of `[a-z0-9-]`, a
/// `daemon_version` over 64 bytes or a `backend_pipe` over 4096 bytes).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_add_service(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    backend_pipe: *const c_char,
    daemon_version: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            let entry = BrokerService {
                service_name: rule_arg(cstr_arg(service_name, "service_name")?, "service_name", check_service_name)?
                    .to_owned(),
                backend_pipe: len_arg(cstr_arg(backend_pipe, "backend_pipe")?, "backend_pipe", 0, 4096)?.to_owned(),
                daemon_version: len_arg(cstr_arg(daemon_version, "daemon_version")?, "daemon_version", 0, 64)?
                    .to_owned(),
                ..BrokerService::default()
            };
            o.services.retain(|s| s.service_name != entry.service_name);
            o.services.push(entry);
            Ok(())
        }
    })
}

/// Adds `version` to the service's allow list (once the list is non-empty, other wanted
/// versions are refused with VERSION_BLOCKED and a 30000 ms retry hint, as the reference
/// broker does). Returns `RP_STATUS_OK`,
/// `RP_STATUS_NOT_FOUND` (no such service), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (a version outside the rule `MAJOR.MINOR.PATCH[-suffix]`; the
/// message states it).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_allow_version(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    version: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe { edit_version(options, service_name, version, |s, v| s.allowed_versions.push(v)) }
}

/// Blocks `version` for the service (refused with VERSION_BLOCKED). Returns as
/// `rp_broker_server_options_allow_version`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_block_version(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    version: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe { edit_version(options, service_name, version, |s, v| s.blocked_versions.push(v)) }
}

/// Sets the service's minimum version: lower wanted versions are refused with VERSION_BLOCKED
/// and a 30 s retry hint. Returns as `rp_broker_server_options_allow_version`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_min_version(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    version: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe { edit_version(options, service_name, version, |s, v| s.min_version = v) }
}

/// Offers handoff for the service: capable clients get a one-time token, and their
/// connection is passed (by SCM_RIGHTS with the 16 token bytes, then a HandoffOffer; on
/// Windows a duplicated handle named in the offer) to the backend listening on
/// `handoff_endpoint`; the backend's HandoffAck is relayed to the client. Every issued token is
/// also put in `store` when it is not NULL (a backend in this process accepts offers with
/// `rp_handoff_accept` on the same store); the options keep their own reference to `store`.
///
/// Returns as `rp_broker_server_options_allow_version`, plus `RP_STATUS_INVALID_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_handoff(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    handoff_endpoint: *const c_char,
    store: *const rp_handoff_store,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            let s = service(o, cstr_arg(service_name, "service_name")?)?;
            s.handoff_endpoint = Some(Endpoint::parse(cstr_arg(handoff_endpoint, "handoff_endpoint")?)?);
            s.handoff_store = arc_clone_value::<rp_handoff_store>(store);
            Ok(())
        }
    })
}

/// Sets the per-peer-uid Hello rate limit: at most `max_hellos` per `window_ms` (defaults 256
/// per 1000 ms); more are refused with RATE_LIMITED and a retry hint. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_rate_limit(
    options: *mut rp_broker_server_options,
    max_hellos: u32,
    window_ms: u32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.rate_limit = max_hellos.max(1);
            o.rate_window = Duration::from_millis(u64::from(window_ms.max(1)));
            Ok(())
        }
    })
}

/// Accepts peers of other users when `allow` is true (default false: refused with
/// `PEER_REJECTED`). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_allow_other_uids(
    options: *mut rp_broker_server_options,
    allow: bool,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        o.allow_other_uids = allow;
        Ok(())
    })
}

/// Lets one group reach a path socket's file: `mode` its permission bits (0600 by default;
/// 0660 gives the group read-write, which connecting needs; never bits for others), `group` its
/// group id (-1 keeps the process's group). A socket directory librp creates is then 0710 with
/// that group (the group may pass through, not list it); an existing one must let the group
/// pass (0710 or 0750 with that group), or binding fails with `RP_STATUS_PERMISSION_DENIED`. Only
/// root or a member of the group can give a file to it (`RP_STATUS_PERMISSION_DENIED`
/// otherwise, when the server binds). Group members are other users: allow other uids too.
/// Abstract and TCP endpoints have no file and ignore this.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (a mode with
/// bits for others or without owner read-write, a group outside -1..=4294967294).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_socket_access(
    options: *mut rp_broker_server_options,
    mode: u32,
    group: i64,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        o.socket_access = crate::ffi::bytes::socket_access_arg(mode, group)?;
        Ok(())
    })
}

/// Sets the most connections at once (default 4096) and the most from one peer uid (default
/// 2048), so one user cannot take them all; more are refused with RATE_LIMITED and a retry
/// hint (detail `scope` = `peer-uid` for the per-uid limit). Clients that already left are
/// closed first when a limit is reached. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_max_connections(
    options: *mut rp_broker_server_options,
    total: usize,
    per_uid: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.max_connections = total;
            o.max_connections_per_uid = per_uid;
            Ok(())
        }
    })
}

/// Sets how long a connection has to send its first frame (default 5000 ms; 0 = none: only a
/// frame already there counts, -1 = no limit). Returns `RP_STATUS_OK`,
/// `RP_STATUS_INVALID_ARGUMENT` (a timeout below -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_hello_timeout_ms(
    options: *mut rp_broker_server_options,
    timeout_ms: i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.hello_timeout = limit_arg(timeout_ms)?;
            Ok(())
        }
    })
}

/// Sets how long the broker waits for a backend's HandoffAck (default 1500 ms; 0 = do not
/// wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
/// -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_set_handoff_ack_timeout_ms(
    options: *mut rp_broker_server_options,
    timeout_ms: i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.handoff_ack_timeout = limit_arg(timeout_ms)?;
            Ok(())
        }
    })
}

/// Frees server options. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_options_free(options: *mut rp_broker_server_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}

/// Binds the endpoint and starts serving on a new thread.
///
/// Parameters: `options` — consumed by this call, even if an error is returned; `out_server`
/// — receives the server.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a bad service table or a TCP
/// endpoint), `RP_STATUS_PERMISSION_DENIED` (unsafe socket directory), `RP_STATUS_IO` (for
/// example a live server already there), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_server`; free it with `rp_broker_server_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_bind(
    options: *mut rp_broker_server_options,
    out_server: *mut *mut rp_broker_server,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options owned by the caller; consumed here on every path.
        let opts = unsafe { box_take(options, "options") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_server = unsafe { out_arg(out_server, "out_server") }?;
        let server = BrokerServer::bind(opts)?;
        let endpoint = server.endpoint().to_string();
        out_server.write(box_into_handle(ServerHandle { server, endpoint }));
        Ok(())
    })
}

/// The endpoint actually bound. Borrowed: valid until `server` is freed. Empty if NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_endpoint(server: *const rp_broker_server) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live server.
        unsafe { box_ref::<rp_broker_server>(server, "server") }.map_or(rp_str::from_str(""), |s| rp_str::from_str(&s.endpoint))
    })
}

/// From now on every Hello is refused with SHUTTING_DOWN (as after the admin verb SHUTDOWN);
/// the server keeps running until freed. Thread-safe. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_begin_shutdown(server: *const rp_broker_server) {
    boundary_or((), || {
        // SAFETY: NULL or a live server.
        if let Ok(s) = unsafe { box_ref::<rp_broker_server>(server, "server") } {
            s.server.begin_shutdown();
        }
    })
}

/// Stops the server (closing every connection, removing the socket file, waiting for its
/// thread) and frees it. NULL is a no-op. Must not be called twice, nor while another thread
/// uses `server`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_server_free(server: *mut rp_broker_server) {
    // SAFETY: NULL or a live server owned by the caller.
    boundary_or((), || unsafe { box_free(server) })
}
