//! `rp_push_server_*`: the server side of push for C.

use std::ffi::{c_char, c_void};

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, limit_arg, rp_str, rule_arg, slice_arg, timeout_arg};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::handle::{box_free, box_into_handle, box_mut, box_ref, box_take, castable, lend, opt_out, out_arg};
use super::push_request::{rp_push_request, rp_push_result, rp_push_ticket};
use super::status::rp_status;
use super::tls::{set_client_ca, set_server_cert, PemArg};
use super::push_worker_info::{rp_push_worker_info, rp_push_worker_list};
use crate::push::{
    PushServer, RegistrationDecision, ServerEvent, ServerOptions, WorkerInfo,
};
use crate::transport::{Endpoint, TlsServerOptions};

/// What a registration callback decides.
#[repr(i32)]
pub enum rp_registration_verdict {
    /// Register the worker.
    Accept = 0,
    /// Refuse it; the reason written to the callback's buffer is sent to the worker.
    Reject = 1,
}

/// Decides whether a worker may register. Without one, every registration is accepted.
///
/// Parameters: `user_data` as registered; `worker` — what the worker asks to register as, and
/// its kernel-reported credentials (borrowed: valid only until the callback returns);
/// `reason`, `reason_cap` — a buffer for a NUL-terminated rejection reason.
///
/// Returns an `rp_registration_verdict` as an integer; any other value rejects.
///
/// Called on the thread that calls `rp_push_server_dispatch`, from within it. It may call other
/// librp functions but must not call `rp_push_server_dispatch` or `_free` on this server. The
/// worker waits for the decision (up to the server's handshake timeout).
pub type rp_push_server_registration_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        worker: *const rp_push_worker_info,
        reason: *mut c_char,
        reason_cap: usize,
    ) -> i32,
>;

/// Learns that a worker registered (`connected` true) or went away (`connected` false, with
/// `reason`; its outstanding pushes have failed with `RP_STATUS_CLOSED`).
///
/// `worker` and `reason` are borrowed: valid only until the callback returns. Called on the
/// thread that calls `rp_push_server_dispatch`, from within it, with the same limits as
/// `rp_push_server_registration_callback`.
pub type rp_push_server_worker_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, worker: *const rp_push_worker_info, connected: bool, reason: rp_str),
>;

/// How a push server is set up.
///
/// Methods: `rp_push_server_options_new`, `_set_service`, `_set_allow_other_uids`, `_set_socket_access`,
/// `_set_allow_remote_tcp`, `_set_auth_token`, `_set_handshake_timeout_ms`,
/// `_set_frame_timeout_ms`, `_set_max_connections`, `_set_max_send_buffer`,
/// `_set_registration_callback`, `_set_worker_callback`, `_free`; consumed by
/// `rp_push_server_bind`. Exclusive handle (Send).
pub struct rp_push_server_options {
    _private: [u8; 0],
}

pub(crate) struct ServerOptionsHandle {
    opts: ServerOptions,
    on_registration: Option<ForeignCallback<rp_push_server_registration_callback>>,
    on_worker: Option<ForeignCallback<rp_push_server_worker_callback>>,
}

castable!(rp_push_server_options => ServerOptionsHandle: OwnedBox);

/// A running push server: one event-loop thread serves every worker.
///
/// Methods: `rp_push_server_bind`, `rp_push_server_endpoint`, `rp_push_server_push`,
/// `rp_push_server_push_wait`, `rp_push_server_workers`, `rp_push_server_dispatch`,
/// `rp_push_server_event_fd`, `rp_push_server_disconnect`, `rp_push_server_shutdown`,
/// `rp_push_server_free`.
///
/// Functions taking `const rp_push_server *` are thread-safe. User callbacks never run on the
/// server's own thread: only inside `rp_push_server_dispatch`.
pub struct rp_push_server {
    _private: [u8; 0],
}

pub(crate) struct ServerHandle {
    pub(crate) server: PushServer,
    on_registration: Option<ForeignCallback<rp_push_server_registration_callback>>,
    on_worker: Option<ForeignCallback<rp_push_server_worker_callback>>,
    /// The bound endpoint as text, for `rp_push_server_endpoint`.
    endpoint: String,
}

castable!(rp_push_server => ServerHandle: OwnedBox);

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// Creates server options for `endpoint` (a socket path, `@name`, `tcp://host:port` or
/// `tls://host:port`).
///
/// A socket path is created 0600 in a directory only this user can write (that directory, and
/// only it, is created 0700 when missing and its parent exists); other users' processes are
/// refused unless allowed; a TCP or TLS endpoint must be loopback unless
/// `_set_allow_remote_tcp`. A `tls://` endpoint needs a certificate and key
/// (`_set_tls_cert_pem` or `_set_tls_cert_files`).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT`. Ownership: consumed by `rp_push_server_bind`, or free it with
/// `rp_push_server_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_new(
    endpoint: *const c_char,
    out_options: *mut *mut rp_push_server_options,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated per the API contract.
        let endpoint = unsafe { cstr_arg(endpoint, "endpoint") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_options = unsafe { out_arg(out_options, "out_options") }?;
        let handle = ServerOptionsHandle {
            opts: ServerOptions::new(Endpoint::parse(endpoint)?),
            on_registration: None,
            on_worker: None,
        };
        out_options.write(box_into_handle(handle));
        Ok(())
    })
}

/// Sets the service name workers must ask for (default "librp-push"): 1–64 characters of
/// `[a-z0-9-]`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (a name outside the rule).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_service(
    options: *mut rp_push_server_options,
    service_name: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            let name = cstr_arg(service_name, "service_name")?;
            o.opts.service_name = rule_arg(name, "service_name", crate::wire::names::check_service_name)?.to_owned();
            Ok(())
        }
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
pub unsafe extern "C" fn rp_push_server_options_set_socket_access(
    options: *mut rp_push_server_options,
    mode: u32,
    group: i64,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        o.opts.socket_access = crate::ffi::bytes::socket_access_arg(mode, group)?;
        Ok(())
    })
}

/// Accepts Unix peers of other users when `allow` is true (default false: refused with
/// `PEER_REJECTED`). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_allow_other_uids(
    options: *mut rp_push_server_options,
    allow: bool,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.opts.allow_other_uids = allow;
            Ok(())
        }
    })
}

/// Allows a TCP or TLS endpoint on a non-loopback address. Plain TCP then requires an auth
/// token; TLS requires an auth token or required client certificates
/// (`rp_push_server_options_set_tls_client_ca_pem` with `required`): `rp_push_server_bind`
/// fails with `RP_STATUS_CONFIG` otherwise.
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_allow_remote_tcp(
    options: *mut rp_push_server_options,
    allow: bool,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.opts.allow_remote_tcp = allow;
            Ok(())
        }
    })
}

/// Requires every worker's Hello to carry this token (compared in constant time). `token` may
/// be NULL when `len` is 0 (no token). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_auth_token(
    options: *mut rp_push_server_options,
    token: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.opts.auth_token = slice_arg(token, len, "token")?.to_vec();
            Ok(())
        }
    })
}

/// Sets the certificate chain (leaf first) and private key of a `tls://` endpoint, as PEM text
/// (`CERTIFICATE` blocks; a PKCS#8, PKCS#1 or SEC1 key). Both are copied; they are checked when
/// the server binds (`RP_STATUS_CONFIG` there when they are not usable or do not match).
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_tls_cert_pem(
    options: *mut rp_push_server_options,
    cert_chain_pem: *const u8,
    cert_chain_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::Text { pem: cert_chain_pem, len: cert_chain_len, name: "cert_chain_pem" };
        let key = PemArg::Text { pem: key_pem, len: key_len, name: "key_pem" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_server_cert(|| o.opts.tls.get_or_insert_with(TlsServerOptions::default), chain, key) }
    })
}

/// Like `rp_push_server_options_set_tls_cert_pem`, reading the PEM files at `cert_chain_path`
/// and `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file could not be read),
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_tls_cert_files(
    options: *mut rp_push_server_options,
    cert_chain_path: *const c_char,
    key_path: *const c_char,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::File { path: cert_chain_path, name: "cert_chain_path", what: "certificate chain" };
        let key = PemArg::File { path: key_path, name: "key_path", what: "private key" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_server_cert(|| o.opts.tls.get_or_insert_with(TlsServerOptions::default), chain, key) }
    })
}

/// Asks workers of a `tls://` endpoint for a client certificate that chains to the CA roots
/// `ca_pem` (PEM text, copied): mutual TLS. With `required` a worker without one is refused
/// (`RP_STATUS_PERMISSION_DENIED` at its connect); without, one that presents none gets in and
/// one that presents an invalid one does not. The verified certificate's subject and names
/// reach the registration callback (`rp_push_worker_info_tls_subject`, `_tls_san`). Returns
/// `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_tls_client_ca_pem(
    options: *mut rp_push_server_options,
    ca_pem: *const u8,
    ca_len: usize,
    required: bool,
) -> rp_status {
    boundary(|| {
        let ca = PemArg::Text { pem: ca_pem, len: ca_len, name: "ca_pem" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_client_ca(|| o.opts.tls.get_or_insert_with(TlsServerOptions::default), ca, required) }
    })
}

/// Like `rp_push_server_options_set_tls_client_ca_pem`, reading the PEM file at `ca_path` now.
/// Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read),
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_tls_client_ca_file(
    options: *mut rp_push_server_options,
    ca_path: *const c_char,
    required: bool,
) -> rp_status {
    boundary(|| {
        let ca = PemArg::File { path: ca_path, name: "ca_path", what: "client CA roots" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: as above.
        unsafe { set_client_ca(|| o.opts.tls.get_or_insert_with(TlsServerOptions::default), ca, required) }
    })
}

/// Sets the time a new connection has to say Hello and register (default 10000 ms; 0 = none:
/// only a Hello already there counts, -1 = no limit). Returns `RP_STATUS_OK`,
/// `RP_STATUS_INVALID_ARGUMENT` (a timeout below -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_handshake_timeout_ms(
    options: *mut rp_push_server_options,
    timeout_ms: i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.opts.handshake_timeout = limit_arg(timeout_ms)?;
            Ok(())
        }
    })
}

/// Sets the time a registered worker has to finish a frame once its first bytes arrived
/// (default 30000 ms); a worker stalled mid-frame longer is disconnected, so it cannot pin the
/// memory of a large partial frame. -1 means no limit; 0 gives a partial frame no time.
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below -1),
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_frame_timeout_ms(
    options: *mut rp_push_server_options,
    timeout_ms: i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            // The core reads a zero frame timeout as "no limit".
            o.opts.frame_timeout = match timeout_arg(timeout_ms)? {
                None => std::time::Duration::ZERO,
                Some(t) => t.max(std::time::Duration::from_nanos(1)),
            };
            Ok(())
        }
    })
}

/// Sets the most connections at once (default 4096) and the most from one peer uid (default
/// 2048), so one user cannot take them all; more are refused with RATE_LIMITED and a retry
/// hint (detail `scope` = `peer-uid` for the per-uid limit). Clients that already left are
/// closed first when a limit is reached. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_max_connections(
    options: *mut rp_push_server_options,
    total: usize,
    per_uid: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.opts.max_connections = total;
            o.opts.max_connections_per_uid = per_uid;
            Ok(())
        }
    })
}

/// Sets how many bytes may wait to be sent to one worker before pushes to it fail with
/// `RP_STATUS_AGAIN` (default 8 MiB). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_max_send_buffer(
    options: *mut rp_push_server_options,
    bytes: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.opts.max_send_buffer = bytes;
            Ok(())
        }
    })
}

/// Sets the callback that decides registrations (see `rp_push_server_registration_callback`); the
/// application must then call `rp_push_server_dispatch`. `callback` NULL removes it.
///
/// `user_data_free` (may be NULL) is called once with `user_data`: on replacement, when the
/// options or the server built from them are freed, or at once if `callback` is NULL or this
/// call fails. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_registration_callback(
    options: *mut rp_push_server_options,
    callback: rp_push_server_registration_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    let cb = ForeignCallback::new(callback, user_data, user_data_free);
    boundary(move || {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.on_registration = callback.is_some().then_some(cb);
            o.opts.decide_registrations = o.on_registration.is_some();
            Ok(())
        }
    })
}

/// Sets the callback told of workers registering and leaving (see `rp_push_server_worker_callback`);
/// it runs inside `rp_push_server_dispatch`. `callback` NULL removes it. `user_data_free` as for
/// `rp_push_server_options_set_registration_callback`. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_worker_callback(
    options: *mut rp_push_server_options,
    callback: rp_push_server_worker_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    let cb = ForeignCallback::new(callback, user_data, user_data_free);
    boundary(move || {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.on_worker = callback.is_some().then_some(cb);
            o.opts.events = o.on_worker.is_some();
            Ok(())
        }
    })
}

/// Frees server options (and the user data of their callbacks). NULL is a no-op. Must not be
/// called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_free(options: *mut rp_push_server_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// Binds the endpoint and starts serving on a new thread.
///
/// Parameters: `options` — consumed by this call, even if an error is returned (with their
/// callbacks, which the server then owns); `out_server` — receives the server.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_IO` (for example the address is in use),
/// `RP_STATUS_PERMISSION_DENIED` (an unsafe socket directory, or a non-loopback TCP address
/// not allowed), `RP_STATUS_CONFIG` (remote TCP without a token), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_server`; free it with `rp_push_server_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_bind(
    options: *mut rp_push_server_options,
    out_server: *mut *mut rp_push_server,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options owned by the caller; consumed here on every path.
        let handle = unsafe { box_take(options, "options") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_server = unsafe { out_arg(out_server, "out_server") }?;
        let server = PushServer::bind(handle.opts)?;
        let server = ServerHandle {
            endpoint: server.endpoint().to_string(),
            server,
            on_registration: handle.on_registration,
            on_worker: handle.on_worker,
        };
        out_server.write(box_into_handle(server));
        Ok(())
    })
}

unsafe fn server_ref<'a>(server: *const rp_push_server) -> Result<&'a ServerHandle, Failure> {
    // SAFETY: NULL or a live server per the API contract.
    unsafe { box_ref::<rp_push_server>(server, "server") }
}

/// The endpoint actually bound (for `tcp://127.0.0.1:0`, with the real port), as a string
/// `rp_push_worker_options_new` accepts. Borrowed: valid until the server is freed. Empty if
/// `server` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_endpoint(server: *const rp_push_server) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live server.
        unsafe { server_ref(server) }.map_or(rp_str::from_str(""), |s| rp_str::from_str(&s.endpoint))
    })
}

/// Starts a push and returns at once with its ticket.
///
/// Parameters: `request` — copied (it stays the caller's); `out_ticket` — receives the ticket.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (the server is shut down),
/// `RP_STATUS_NULL_ARGUMENT`. Delivery failures arrive through the ticket.
///
/// Ownership: the caller owns `*out_ticket`; free it with `rp_push_ticket_free` (freeing does
/// not cancel the push). Thread safety: callable from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_push(
    server: *const rp_push_server,
    request: *const rp_push_request,
    out_ticket: *mut *mut rp_push_ticket,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live handles per the API contract.
        let (s, r) = unsafe { (server_ref(server)?, box_ref::<rp_push_request>(request, "request")?) };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_ticket = unsafe { out_arg(out_ticket, "out_ticket") }?;
        let ticket = s.server.push(r.target.clone(), r.spec.clone())?;
        out_ticket.write(box_into_handle(ticket));
        Ok(())
    })
}

/// Pushes and waits up to `timeout_ms` (-1 = no limit) for the worker's answer. Without a
/// deadline of its own the push gets "now + timeout" as its deadline, so the worker drops it
/// when the caller stops waiting.
///
/// Returns `RP_STATUS_OK` (`*out_result` holds the worker's answer — a reply or the worker's
/// failure), `RP_STATUS_TIMEOUT`, `RP_STATUS_CLOSED` (the worker went away before answering, or
/// the server shut down), `RP_STATUS_NO_MEMORY` (the worker's reply did not fit in memory: its
/// connection ended), `RP_STATUS_NOT_FOUND` (no worker matches the target),
/// `RP_STATUS_AGAIN` (the worker is not keeping up), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_result`; free it with `rp_push_result_free`.
/// Thread safety: callable from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_push_wait(
    server: *const rp_push_server,
    request: *const rp_push_request,
    timeout_ms: i32,
    out_result: *mut *mut rp_push_result,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live handles per the API contract.
        let (s, r) = unsafe { (server_ref(server)?, box_ref::<rp_push_request>(request, "request")?) };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_result = unsafe { out_arg(out_result, "out_result") }?;
        let outcome = match timeout_arg(timeout_ms)? {
            Some(t) => s.server.push_wait_ref(&r.target, &r.spec, t)?,
            None => s.server.push(r.target.clone(), r.spec.clone())?.wait(None)?,
        };
        out_result.write(box_into_handle(outcome));
        Ok(())
    })
}

/// A snapshot of the registered workers.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns `*out_list`;
/// free it with `rp_push_worker_list_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_workers(
    server: *const rp_push_server,
    out_list: *mut *mut rp_push_worker_list,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live server.
        let s = unsafe { server_ref(server) }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_list = unsafe { out_arg(out_list, "out_list") }?;
        out_list.write(box_into_handle(s.server.workers()));
        Ok(())
    })
}

/// Runs the registration and worker callbacks for pending server events, on the calling thread.
///
/// Waits up to `timeout_ms` (-1 = no limit) for the first event, then handles those already
/// waiting. `*out_handled` (may be NULL) receives how many were handled.
///
/// Returns `RP_STATUS_OK` (at least one handled), `RP_STATUS_TIMEOUT` (none came),
/// `RP_STATUS_CLOSED` (the server is shut down), `RP_STATUS_INVALID_ARGUMENT` (no callback was
/// set on the options), `RP_STATUS_NULL_ARGUMENT`.
///
/// Thread safety: callable from any one thread at a time per server.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_dispatch(
    server: *const rp_push_server,
    timeout_ms: i32,
    out_handled: *mut usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live server.
        let s = unsafe { server_ref(server) }?;
        let (handled, result) =
            s.server.dispatch(timeout_arg(timeout_ms)?, |info| s.decide(info), |event| s.on_event(event));
        // SAFETY: NULL or valid for a write per the API contract.
        if let Some(out) = unsafe { opt_out(out_handled) } {
            out.write(handled);
        }
        Ok(result?)
    })
}

impl ServerHandle {
    fn on_event(&self, event: ServerEvent) {
        match event {
            ServerEvent::RegistrationRequest { .. } => {} // answered through `decide`
            ServerEvent::WorkerConnected(info) => self.notify(&info, true, ""),
            ServerEvent::WorkerDisconnected { worker, reason } => self.notify(&worker, false, &reason),
        }
    }

    fn decide(&self, info: &WorkerInfo) -> RegistrationDecision {
        let Some(cb) = &self.on_registration else { return RegistrationDecision::Accept };
        let Some(func) = cb.func else { return RegistrationDecision::Accept };
        let mut reason = [0 as c_char; 512];
        // SAFETY: the callback contract: `worker` is borrowed for the call, `reason` holds
        // `reason.len()` writable bytes.
        let verdict = unsafe {
            func(cb.user_data, lend::<rp_push_worker_info>(info), reason.as_mut_ptr(), reason.len())
        };
        // Whatever the callback wrote, the buffer stays NUL-terminated.
        reason[reason.len() - 1] = 0;
        let text = || {
            // SAFETY: NUL-terminated above.
            let s = unsafe { std::ffi::CStr::from_ptr(reason.as_ptr()) };
            let s = s.to_string_lossy().into_owned();
            if s.is_empty() { "rejected by the server".to_owned() } else { s }
        };
        match verdict {
            v if v == rp_registration_verdict::Accept as i32 => RegistrationDecision::Accept,
            v if v == rp_registration_verdict::Reject as i32 => RegistrationDecision::Reject(text()),
            other => RegistrationDecision::Reject(format!(
                "rejected: the registration callback returned {other}, which is not an rp_registration_verdict"
            )),
        }
    }

    fn notify(&self, info: &WorkerInfo, connected: bool, reason: &str) {
        if let Some(cb) = &self.on_worker {
            if let Some(func) = cb.func {
                // SAFETY: the callback contract: `worker` and `reason` are borrowed for the call.
                unsafe { func(cb.user_data, lend::<rp_push_worker_info>(info), connected, rp_str::from_str(reason)) };
            }
        }
    }
}

/// A descriptor readable while server events wait for `rp_push_server_dispatch`, or once the
/// server is shut down (`rp_push_server_dispatch` then returns `RP_STATUS_CLOSED` at once).
/// Level-triggered; owned by the server (never read or close it). -1 if `server` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_event_fd(server: *const rp_push_server) -> i32 {
    // SAFETY: NULL or a live server.
    boundary_or(-1, || unsafe { server_ref(server) }.map_or(-1, |s| super::bytes::descriptor_out(s.server.event_fd())))
}

/// Disconnects a worker; its outstanding pushes fail with `RP_STATUS_CLOSED`.
/// Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (server shut down), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_disconnect(server: *const rp_push_server, worker_id: u64) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live server.
        unsafe { server_ref(server) }?.server.disconnect(worker_id)?;
        Ok(())
    })
}

/// Stops serving: every worker is disconnected, every outstanding push fails with
/// `RP_STATUS_CLOSED`, the socket file is removed. Blocks until the server thread has ended.
/// Idempotent; callable from any thread. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_shutdown(server: *const rp_push_server) {
    boundary_or((), || {
        // SAFETY: NULL or a live server.
        if let Ok(s) = unsafe { server_ref(server) } {
            s.server.shutdown();
        }
    })
}

/// Shuts the server down (see `rp_push_server_shutdown`), releases its callbacks' user data and
/// frees it. NULL is a no-op. Must not be called twice, nor while another thread uses `server`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_free(server: *mut rp_push_server) {
    // SAFETY: NULL or a live server owned by the caller.
    boundary_or((), || unsafe { box_free(server) })
}

