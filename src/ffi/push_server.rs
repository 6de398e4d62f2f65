//! `rp_push_server_*`: the server side of push for C.

use std::ffi::{c_char, c_void};

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, limit_arg, rp_bytes, rp_str, rule_arg, slice_arg, timeout_arg};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::handle::{box_free, box_into_handle, box_ref, write_out, Castable, OwnedBox};
use super::status::rp_status;
use crate::push::{
    PushOutcome, PushServer, PushSpec, RegistrationDecision, ServerEvent, ServerOptions, Target, Ticket, WorkerInfo,
};
use crate::transport::Endpoint;

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
pub type rp_push_registration_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        worker: *const rp_worker_info,
        reason: *mut c_char,
        reason_cap: usize,
    ) -> i32,
>;

/// Learns that a worker registered (`connected` true) or went away (`connected` false, with
/// `reason`; its outstanding pushes have failed with `RP_STATUS_CLOSED`).
///
/// `worker` and `reason` are borrowed: valid only until the callback returns. Called on the
/// thread that calls `rp_push_server_dispatch`, from within it, with the same limits as
/// `rp_push_registration_callback`.
pub type rp_push_worker_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, worker: *const rp_worker_info, connected: bool, reason: rp_str),
>;

/// How a push server is set up.
///
/// Methods: `rp_push_server_options_new`, `_set_service`, `_set_allow_other_uids`,
/// `_set_allow_remote_tcp`, `_set_auth_token`, `_set_handshake_timeout_ms`,
/// `_set_frame_timeout_ms`, `_set_max_connections`, `_set_max_send_buffer`,
/// `_set_registration_callback`, `_set_worker_callback`, `_free`; consumed by
/// `rp_push_server_bind`. Exclusive handle (Send).
pub struct rp_push_server_options {
    _private: [u8; 0],
}

pub(crate) struct ServerOptionsHandle {
    opts: ServerOptions,
    on_registration: Option<ForeignCallback<rp_push_registration_callback>>,
    on_worker: Option<ForeignCallback<rp_push_worker_callback>>,
}

impl Castable for rp_push_server_options {
    type Ownership = OwnedBox;
    type RustType = ServerOptionsHandle;
}

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
    on_registration: Option<ForeignCallback<rp_push_registration_callback>>,
    on_worker: Option<ForeignCallback<rp_push_worker_callback>>,
    /// The bound endpoint as text, for `rp_push_server_endpoint`.
    endpoint: String,
}

impl Castable for rp_push_server {
    type Ownership = OwnedBox;
    type RustType = ServerHandle;
}

/// One job to push: payload protocol, payload, target, deadline and trace context.
///
/// Methods: `rp_push_request_new`, `_set_deadline_unix_ms`, `_set_traceparent`,
/// `_set_tracestate`, `_to_worker`, `_to_task_queue`, `_to_protocol`, `_free`.
/// Exclusive handle (Send). Pushing copies it, so one request may be pushed many times.
pub struct rp_push_request {
    _private: [u8; 0],
}

pub(crate) struct PushRequest {
    target: Target,
    spec: PushSpec,
}

impl Castable for rp_push_request {
    type Ownership = OwnedBox;
    type RustType = PushRequest;
}

/// An in-flight push. Methods: `rp_push_ticket_correlation_id`, `rp_push_ticket_is_done`,
/// `rp_push_ticket_wait`, `rp_push_ticket_free`. Thread-safe through `const`.
pub struct rp_push_ticket {
    _private: [u8; 0],
}

impl Castable for rp_push_ticket {
    type Ownership = OwnedBox;
    type RustType = Ticket;
}

/// A worker's answer: a reply payload, or the worker's failure (code and message).
///
/// Methods: `rp_push_result_is_failure`, `rp_push_result_payload`,
/// `rp_push_result_failure_code`, `rp_push_result_failure_message`, `rp_push_result_free`.
pub struct rp_push_result {
    _private: [u8; 0],
}

impl Castable for rp_push_result {
    type Ownership = OwnedBox;
    type RustType = PushOutcome;
}

/// The registered workers at one moment. Methods: `rp_worker_list_len`, `rp_worker_list_get`,
/// `rp_worker_list_free`.
pub struct rp_worker_list {
    _private: [u8; 0],
}

impl Castable for rp_worker_list {
    type Ownership = OwnedBox;
    type RustType = Vec<WorkerInfo>;
}

/// One worker: id, registration, kernel-reported credentials, pushes in flight. Always
/// borrowed (from an `rp_worker_list` or a callback); never freed on its own.
///
/// Methods: `rp_worker_info_id`, `_identity`, `_task_queue`, `_node`, `_namespace_count`,
/// `_namespace`, `_activity_type_count`, `_activity_type`, `_protocol_count`, `_protocol`,
/// `_peer`, `_in_flight`.
pub struct rp_worker_info {
    _private: [u8; 0],
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// Creates server options for `endpoint` (a socket path, `@name`, or `tcp://host:port`).
///
/// A socket path is created 0600 in a directory only this user can write (that directory, and
/// only it, is created 0700 when missing and its parent exists); other users' processes are
/// refused unless allowed; a TCP endpoint must be loopback unless `_set_allow_remote_tcp`
/// (which requires an auth token).
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
        if out_options.is_null() {
            return Err(Failure::null("out_options"));
        }
        let handle = ServerOptionsHandle {
            opts: ServerOptions::new(Endpoint::parse(endpoint)?),
            on_registration: None,
            on_worker: None,
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_options, box_into_handle::<rp_push_server_options>(handle)) };
        Ok(())
    })
}

unsafe fn edit_server_options(
    options: *mut rp_push_server_options,
    edit: impl FnOnce(&mut ServerOptionsHandle) -> Result<(), Failure>,
) -> rp_status {
    boundary(|| {
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live, exclusively used options per the API contract.
        edit(unsafe { &mut *options.cast::<ServerOptionsHandle>() })
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            let name = cstr_arg(service_name, "service_name")?;
            o.opts.service_name = rule_arg(name, "service_name", crate::wire::names::check_service_name)?.to_owned();
            Ok(())
        })
    }
}

/// Accepts Unix peers of other users when `allow` is true (default false: refused with
/// `PEER_REJECTED`). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_allow_other_uids(
    options: *mut rp_push_server_options,
    allow: bool,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.opts.allow_other_uids = allow;
            Ok(())
        })
    }
}

/// Allows a TCP endpoint on a non-loopback address (an auth token is then required).
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_allow_remote_tcp(
    options: *mut rp_push_server_options,
    allow: bool,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.opts.allow_remote_tcp = allow;
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.opts.auth_token = slice_arg(token, len, "token")?.to_vec();
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.opts.handshake_timeout = limit_arg(timeout_ms)?;
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            // The core reads a zero frame timeout as "no limit".
            o.opts.frame_timeout = match timeout_arg(timeout_ms)? {
                None => std::time::Duration::ZERO,
                Some(t) => t.max(std::time::Duration::from_nanos(1)),
            };
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.opts.max_connections = total;
            o.opts.max_connections_per_uid = per_uid;
            Ok(())
        })
    }
}

/// Sets how many bytes may wait to be sent to one worker before pushes to it fail with
/// `RP_STATUS_AGAIN` (default 8 MiB). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_max_send_buffer(
    options: *mut rp_push_server_options,
    bytes: usize,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.opts.max_send_buffer = bytes;
            Ok(())
        })
    }
}

/// Sets the callback that decides registrations (see `rp_push_registration_callback`); the
/// application must then call `rp_push_server_dispatch`. `callback` NULL removes it.
///
/// `user_data_free` (may be NULL) is called once with `user_data`: on replacement, when the
/// options or the server built from them are freed, or at once if `callback` is NULL or this
/// call fails. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_registration_callback(
    options: *mut rp_push_server_options,
    callback: rp_push_registration_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    let cb = ForeignCallback::new(callback, user_data, user_data_free);
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, move |o| {
            o.on_registration = callback.is_some().then_some(cb);
            o.opts.decide_registrations = o.on_registration.is_some();
            Ok(())
        })
    }
}

/// Sets the callback told of workers registering and leaving (see `rp_push_worker_callback`);
/// it runs inside `rp_push_server_dispatch`. `callback` NULL removes it. `user_data_free` as for
/// `rp_push_server_options_set_registration_callback`. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_options_set_worker_callback(
    options: *mut rp_push_server_options,
    callback: rp_push_worker_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    let cb = ForeignCallback::new(callback, user_data, user_data_free);
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, move |o| {
            o.on_worker = callback.is_some().then_some(cb);
            o.opts.events = o.on_worker.is_some();
            Ok(())
        })
    }
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
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live options owned by the caller; consumed here on every path.
        let handle = *unsafe { Box::from_raw(options.cast::<ServerOptionsHandle>()) };
        if out_server.is_null() {
            return Err(Failure::null("out_server"));
        }
        let server = PushServer::bind(handle.opts)?;
        let server = ServerHandle {
            endpoint: server.endpoint().to_string(),
            server,
            on_registration: handle.on_registration,
            on_worker: handle.on_worker,
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_server, box_into_handle::<rp_push_server>(server)) };
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
        if out_ticket.is_null() {
            return Err(Failure::null("out_ticket"));
        }
        let ticket = s.server.push(r.target.clone(), r.spec.clone())?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_ticket, box_into_handle::<rp_push_ticket>(ticket)) };
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
        if out_result.is_null() {
            return Err(Failure::null("out_result"));
        }
        let outcome = match timeout_arg(timeout_ms)? {
            Some(t) => s.server.push_wait_ref(&r.target, &r.spec, t)?,
            None => s.server.push(r.target.clone(), r.spec.clone())?.wait(None)?,
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_result, box_into_handle::<rp_push_result>(outcome)) };
        Ok(())
    })
}

/// A snapshot of the registered workers.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns `*out_list`;
/// free it with `rp_worker_list_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_server_workers(
    server: *const rp_push_server,
    out_list: *mut *mut rp_worker_list,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live server.
        let s = unsafe { server_ref(server) }?;
        if out_list.is_null() {
            return Err(Failure::null("out_list"));
        }
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_list, box_into_handle::<rp_worker_list>(s.server.workers())) };
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
        let first_wait = timeout_arg(timeout_ms)?;
        let mut handled = 0usize;
        let result = loop {
            let wait = if handled == 0 { first_wait } else { Some(std::time::Duration::ZERO) };
            match s.server.next_event(wait) {
                Ok(event) => {
                    s.handle_event(event);
                    handled += 1;
                }
                Err(e) if handled > 0 && e.kind() == crate::ErrorKind::Timeout => break Ok(()),
                Err(e) => break Err(Failure::from(e)),
            }
        };
        if !out_handled.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { write_out(out_handled, handled) };
        }
        result
    })
}

impl ServerHandle {
    fn handle_event(&self, event: ServerEvent) {
        match event {
            ServerEvent::RegistrationRequest { worker_id, registration, peer } => {
                let info = WorkerInfo { id: worker_id, registration, peer, in_flight: 0 };
                let decision = self.decide(&info);
                let _ = self.server.decide(worker_id, decision);
            }
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
            func(cb.user_data, (info as *const WorkerInfo).cast(), reason.as_mut_ptr(), reason.len())
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
                unsafe { func(cb.user_data, (info as *const WorkerInfo).cast(), connected, rp_str::from_str(reason)) };
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
    boundary_or(-1, || unsafe { server_ref(server) }.map_or(-1, |s| s.server.event_fd()))
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

// ---------------------------------------------------------------------------------------------
// Requests, tickets, results
// ---------------------------------------------------------------------------------------------

/// Creates a push request; by default it goes to any worker serving `payload_protocol`.
///
/// Parameters: `payload_protocol` — a consumer (0x7000–0x7EFF) or private-use (0xF000–0xFFFF)
/// id, or SESSION (0x5350); `payload`, `len` — copied (`payload` may be NULL when `len` is 0).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE` (beyond what one frame carries),
/// `RP_STATUS_INVALID_ARGUMENT` (a first-party or unassigned `payload_protocol`),
/// `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns `*out_request`; free it with
/// `rp_push_request_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_new(
    payload_protocol: u32,
    payload: *const u8,
    len: usize,
    out_request: *mut *mut rp_push_request,
) -> rp_status {
    boundary(|| {
        // SAFETY: `len` readable bytes at `payload` per the API contract.
        let payload = unsafe { slice_arg(payload, len, "payload") }?;
        if out_request.is_null() {
            return Err(Failure::null("out_request"));
        }
        crate::wire::registry::check_servable(payload_protocol).map_err(crate::Error::invalid_argument)?;
        // Leave room for the envelope and the Push wrapper inside the frame cap.
        if payload.len() > crate::wire::MAX_BODY as usize - 1024 {
            return Err(Failure::new(
                rp_status::TooLarge,
                format!("payload of {} bytes does not fit in one frame", payload.len()),
            ));
        }
        let request = PushRequest {
            target: Target::Protocol(payload_protocol),
            spec: PushSpec { payload_protocol, payload: payload.to_vec(), ..PushSpec::default() },
        };
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_request, box_into_handle::<rp_push_request>(request)) };
        Ok(())
    })
}

unsafe fn edit_request(
    request: *mut rp_push_request,
    edit: impl FnOnce(&mut PushRequest) -> Result<(), Failure>,
) -> rp_status {
    boundary(|| {
        if request.is_null() {
            return Err(Failure::null("request"));
        }
        // SAFETY: a live, exclusively used request per the API contract.
        edit(unsafe { &mut *request.cast::<PushRequest>() })
    })
}

/// Sets the absolute deadline (Unix milliseconds; 0 = none). Past it the push fails with
/// `RP_STATUS_TIMEOUT` and the worker is told to drop it. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_set_deadline_unix_ms(request: *mut rp_push_request, deadline: u64) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_request(request, |r| {
            r.spec.deadline_unix_ms = deadline;
            Ok(())
        })
    }
}

/// Sets the W3C traceparent (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
/// (the push then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_set_traceparent(
    request: *mut rp_push_request,
    traceparent: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_request(request, |r| {
            r.spec.traceparent = cstr_arg(traceparent, "traceparent")?.to_owned();
            Ok(())
        })
    }
}

/// Sets the W3C tracestate (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
/// (the push then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_set_tracestate(
    request: *mut rp_push_request,
    tracestate: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_request(request, |r| {
            r.spec.tracestate = cstr_arg(tracestate, "tracestate")?.to_owned();
            Ok(())
        })
    }
}

/// Sends the push to one worker by id. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_to_worker(request: *mut rp_push_request, worker_id: u64) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_request(request, |r| {
            r.target = Target::Worker(worker_id);
            Ok(())
        })
    }
}

/// Sends the push to the least busy worker registered for `task_queue`. Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_to_task_queue(
    request: *mut rp_push_request,
    task_queue: *const c_char,
) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_request(request, |r| {
            r.target = Target::TaskQueue(cstr_arg(task_queue, "task_queue")?.to_owned());
            Ok(())
        })
    }
}

/// Sends the push to the least busy worker serving `payload_protocol` (the default target uses
/// the request's own protocol). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a
/// first-party or unassigned id), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_to_protocol(request: *mut rp_push_request, payload_protocol: u32) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_request(request, |r| {
            crate::wire::registry::check_servable(payload_protocol).map_err(crate::Error::invalid_argument)?;
            r.target = Target::Protocol(payload_protocol);
            Ok(())
        })
    }
}

/// Frees a push request. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_request_free(request: *mut rp_push_request) {
    // SAFETY: NULL or a live request owned by the caller.
    boundary_or((), || unsafe { box_free(request) })
}

/// The push's correlation id (0 if `ticket` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_correlation_id(ticket: *const rp_push_ticket) -> u64 {
    boundary_or(0, || {
        // SAFETY: NULL or a live ticket.
        unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") }.map_or(0, |t| t.correlation_id())
    })
}

/// True once the push has an outcome (`rp_push_ticket_wait` then returns at once).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_is_done(ticket: *const rp_push_ticket) -> bool {
    boundary_or(false, || {
        // SAFETY: NULL or a live ticket.
        unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") }.is_ok_and(|t| t.is_done())
    })
}

/// Waits up to `timeout_ms` (-1 = no limit, 0 = do not wait) for the push's outcome and takes it.
///
/// Returns `RP_STATUS_OK` (`*out_result` holds the worker's answer), `RP_STATUS_TIMEOUT` (no
/// outcome yet — or the push's own deadline passed; `rp_push_ticket_is_done` tells which),
/// `RP_STATUS_CLOSED`, `RP_STATUS_NOT_FOUND`, `RP_STATUS_AGAIN` (see `rp_push_server_push_wait`),
/// `RP_STATUS_INVALID_ARGUMENT` (the outcome was already taken), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_result`; free it with `rp_push_result_free`.
/// Thread safety: callable from any thread.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_wait(
    ticket: *const rp_push_ticket,
    timeout_ms: i32,
    out_result: *mut *mut rp_push_result,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live ticket.
        let t = unsafe { box_ref::<rp_push_ticket>(ticket, "ticket") }?;
        if out_result.is_null() {
            return Err(Failure::null("out_result"));
        }
        let outcome = t.wait(timeout_arg(timeout_ms)?)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_result, box_into_handle::<rp_push_result>(outcome)) };
        Ok(())
    })
}

/// Frees a ticket; the push itself goes on. NULL is a no-op. Must not be called twice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_ticket_free(ticket: *mut rp_push_ticket) {
    // SAFETY: NULL or a live ticket owned by the caller.
    boundary_or((), || unsafe { box_free(ticket) })
}

unsafe fn result_ref<'a>(result: *const rp_push_result) -> Option<&'a PushOutcome> {
    // SAFETY: NULL or a live result per the API contract.
    unsafe { box_ref::<rp_push_result>(result, "result") }.ok()
}

/// True when the worker answered with a failure (see `rp_push_result_failure_code`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_is_failure(result: *const rp_push_result) -> bool {
    boundary_or(false, || {
        // SAFETY: NULL or a live result.
        matches!(unsafe { result_ref(result) }, Some(PushOutcome::WorkerFailure { .. }))
    })
}

/// The worker's reply payload (empty for a failure). Borrowed: valid until the result is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_payload(result: *const rp_push_result) -> rp_bytes {
    boundary_or(rp_bytes::from_slice(&[]), || {
        // SAFETY: NULL or a live result.
        match unsafe { result_ref(result) } {
            Some(PushOutcome::Reply(p)) => rp_bytes::from_slice(p),
            _ => rp_bytes::from_slice(&[]),
        }
    })
}

/// The worker's failure code (0 when the worker replied normally).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_failure_code(result: *const rp_push_result) -> i32 {
    boundary_or(0, || {
        // SAFETY: NULL or a live result.
        match unsafe { result_ref(result) } {
            Some(PushOutcome::WorkerFailure { code, .. }) => *code,
            _ => 0,
        }
    })
}

/// The worker's failure message (empty when it replied normally). Borrowed: valid until the
/// result is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_failure_message(result: *const rp_push_result) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: NULL or a live result.
        match unsafe { result_ref(result) } {
            Some(PushOutcome::WorkerFailure { message, .. }) => rp_str::from_str(message),
            _ => rp_str::from_str(""),
        }
    })
}

/// Frees a result. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_result_free(result: *mut rp_push_result) {
    // SAFETY: NULL or a live result owned by the caller.
    boundary_or((), || unsafe { box_free(result) })
}

// ---------------------------------------------------------------------------------------------
// Worker lists and infos
// ---------------------------------------------------------------------------------------------

/// Number of workers in the list (0 if NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_list_len(list: *const rp_worker_list) -> usize {
    // SAFETY: NULL or a live list.
    boundary_or(0, || unsafe { box_ref::<rp_worker_list>(list, "list") }.map_or(0, |l| l.len()))
}

/// The `index`-th worker, or NULL if out of range. Borrowed: valid until the list is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_list_get(list: *const rp_worker_list, index: usize) -> *const rp_worker_info {
    boundary_or(std::ptr::null(), || {
        // SAFETY: NULL or a live list.
        unsafe { box_ref::<rp_worker_list>(list, "list") }
            .ok()
            .and_then(|l| l.get(index))
            .map_or(std::ptr::null(), |w| (w as *const WorkerInfo).cast())
    })
}

/// Frees a worker list (and the infos borrowed from it). NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_list_free(list: *mut rp_worker_list) {
    // SAFETY: NULL or a live list owned by the caller.
    boundary_or((), || unsafe { box_free(list) })
}

unsafe fn info_ref<'a>(info: *const rp_worker_info) -> Option<&'a WorkerInfo> {
    // SAFETY: NULL or a borrowed live WorkerInfo per the API contract.
    unsafe { info.cast::<WorkerInfo>().as_ref() }
}

/// Runs `f` on a worker info, or returns `neutral` for NULL.
unsafe fn with_info<T>(info: *const rp_worker_info, neutral: T, f: impl FnOnce(&WorkerInfo) -> T) -> T {
    // SAFETY: forwarded contract.
    unsafe { info_ref(info) }.map_or(neutral, f)
}

fn str_at(items: &[String], index: usize) -> rp_str {
    items.get(index).map_or(rp_str::from_str(""), |s| rp_str::from_str(s))
}

/// The worker's id (0 if NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_id(info: *const rp_worker_info) -> u64 {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.id) })
}

/// The identity the worker registered with. Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_identity(info: *const rp_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| rp_str::from_str(&i.registration.identity))
    })
}

/// The worker's task queue. Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_task_queue(info: *const rp_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| rp_str::from_str(&i.registration.task_queue))
    })
}

/// The worker's node (empty if none). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_node(info: *const rp_worker_info) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| rp_str::from_str(&i.registration.node))
    })
}

/// Number of namespaces the worker registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_namespace_count(info: *const rp_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.registration.namespaces.len()) })
}

/// The `index`-th namespace (empty if out of range). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_namespace(info: *const rp_worker_info, index: usize) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| str_at(&i.registration.namespaces, index))
    })
}

/// Number of activity types the worker registered.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_activity_type_count(info: *const rp_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.registration.activity_types.len()) })
}

/// The `index`-th activity type (empty if out of range). Borrowed like `info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_activity_type(info: *const rp_worker_info, index: usize) -> rp_str {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(rp_str::from_str(""), || unsafe {
        with_info(info, rp_str::from_str(""), |i| str_at(&i.registration.activity_types, index))
    })
}

/// Number of payload protocols the worker serves.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_protocol_count(info: *const rp_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.registration.payload_protocols.len()) })
}

/// The `index`-th payload protocol (0 if out of range).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_protocol(info: *const rp_worker_info, index: usize) -> u32 {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe {
        with_info(info, 0, |i| i.registration.payload_protocols.get(index).copied().unwrap_or(0))
    })
}

/// The worker's kernel-reported credentials (Unix sockets). Returns false (writing nothing)
/// for TCP workers or NULL `info`; each out pointer may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_peer(
    info: *const rp_worker_info,
    out_pid: *mut u32,
    out_uid: *mut u32,
    out_gid: *mut u32,
) -> bool {
    boundary_or(false, || {
        // SAFETY: NULL or a borrowed live info.
        let Some(peer) = (unsafe { info_ref(info) }).and_then(|i| i.peer) else { return false };
        for (out, v) in [(out_pid, peer.pid), (out_uid, peer.uid), (out_gid, peer.gid)] {
            if !out.is_null() {
                // SAFETY: non-NULL out pointer provided by the caller.
                unsafe { write_out(out, v) };
            }
        }
        true
    })
}

/// Pushes sent to the worker and not yet answered, when the info was taken.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_worker_info_in_flight(info: *const rp_worker_info) -> usize {
    // SAFETY: NULL or a borrowed live info.
    boundary_or(0, || unsafe { with_info(info, 0, |i| i.in_flight) })
}
