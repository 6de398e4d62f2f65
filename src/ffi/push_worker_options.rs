//! `rp_push_worker_options_*`: how a C worker connects (endpoint, registration, timeouts,
//! token, TLS) and what it does when the connection is lost (reconnect, events).

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::{boundary, boundary_or};
use super::bytes::{cstr_arg, len_arg, limit_arg, rule_arg, slice_arg};
use super::callback::{rp_user_data_free_callback, ForeignCallback};
use super::handle::{box_free, box_into_handle, box_mut, castable, out_arg};
use super::status::rp_status;
use super::tls::{set_ca, set_client_cert, PemArg};
use crate::push::proto::Registration;
use crate::push::{ActivityDescriptor, Dialect, EventHandler, Jitter, ReconnectPolicy, WorkerEventKind, WorkerOptions};

/// How a worker connects and what it registers as.
///
/// Methods: `rp_push_worker_options_new`, `_add_namespace`, `_add_activity_type`, `_set_node`,
/// `_add_payload_protocol`, `_set_service`, `_set_connect_timeout_ms`, `_set_auth_token`,
/// `_set_reconnect`, `_set_reconnect_jitter`, `_set_event_callback`, `_set_tls_ca_pem`,
/// `_set_tls_ca_file`, `_set_tls_server_name`, `_set_tls_client_cert_pem`,
/// `_set_tls_client_cert_files`, `_free`; consumed by `rp_push_worker_connect`.
///
/// Exclusive handle (Send).
pub struct rp_push_worker_options {
    _private: [u8; 0],
}

castable!(rp_push_worker_options => WorkerOptions: OwnedBox);

/// Creates worker options.
///
/// Parameters: `endpoint` — a librp push server's socket path, `@name` (Linux abstract
/// socket), `tcp://host:port` or `tls://host:port` (TLS: see `_set_tls_ca_pem`), or a liminal
/// server's `liminal+tcp://host:port` (the worker then speaks the liminal worker wire; see
/// "liminal endpoints" below); `identity` — who the worker is (1–256 bytes; 1–992 on a liminal
/// endpoint); `task_queue` — the queue of work it takes (0–256 bytes; a liminal server routes
/// pushes by it).
///
/// Limits of a registration (checked by `rp_push_worker_connect`, which returns
/// `RP_STATUS_INVALID_ARGUMENT` naming the limit, and by the server, which rejects the worker
/// with a reason naming it): identity 1–256 bytes; task queue and node at most 256 bytes; at
/// most 64 namespaces and 256 activity types of at most 256 bytes each; at most 64 payload
/// protocols; at most 16 KiB for the whole encoded registration.
///
/// liminal endpoints: the worker connects offering versions 1.0–1.3, registers (namespaces,
/// task queue, node, activity types, identity, and activity descriptors from
/// `rp_push_worker_options_add_activity_descriptor`), answers the server's Pings, keeps TCP
/// keepalive on (30 s idle, 10 s apart, 5 probes), and then works like any worker. What the
/// liminal wire has no room for is refused: `_set_service` and `_add_payload_protocol` return
/// `RP_STATUS_INVALID_ARGUMENT`; on a received push the payload protocol, deadline and trace
/// context read as 0 / empty, and the worker id is 0. A Connect the server refuses is
/// `RP_STATUS_REFUSED` (`rp_last_refusal`: its reason carries liminal's reason code and
/// message); `rp_push_worker_reply_error` sends a refusal record (see there).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (malformed endpoint, identity or task queue outside its length).
///
/// Ownership: the caller owns `*out_options`; `rp_push_worker_connect` consumes it, otherwise
/// free it with `rp_push_worker_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_new(
    endpoint: *const c_char,
    identity: *const c_char,
    task_queue: *const c_char,
    out_options: *mut *mut rp_push_worker_options,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated strings per the API contract.
        let (endpoint, identity, task_queue) = unsafe {
            (cstr_arg(endpoint, "endpoint")?, cstr_arg(identity, "identity")?, cstr_arg(task_queue, "task_queue")?)
        };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_options = unsafe { out_arg(out_options, "out_options") }?;
        let liminal = endpoint.starts_with(crate::push::LIMINAL_SCHEME);
        let most = if liminal { crate::wire::liminal::MAX_IDENTITY } else { crate::push::MAX_REGISTRATION_STRING };
        let identity = len_arg(identity, "identity", 1, most)?;
        let task_queue = len_arg(task_queue, "task_queue", 0, crate::push::MAX_REGISTRATION_STRING)?;
        let registration =
            Registration { identity: identity.to_owned(), task_queue: task_queue.to_owned(), ..Default::default() };
        let opts = WorkerOptions::for_endpoint(endpoint, registration)?;
        out_options.write(box_into_handle(opts));
        Ok(())
    })
}

/// Adds a namespace the worker serves. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_add_namespace(
    options: *mut rp_push_worker_options,
    name: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: a NUL-terminated string per the API contract.
        o.registration.namespaces.push(unsafe { cstr_arg(name, "name") }?.to_owned());
        Ok(())
    })
}

/// Adds an activity type the worker handles. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_add_activity_type(
    options: *mut rp_push_worker_options,
    activity_type: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: a NUL-terminated string per the API contract.
        o.registration.activity_types.push(unsafe { cstr_arg(activity_type, "activity_type") }?.to_owned());
        Ok(())
    })
}

/// Sets the node (host) name the worker reports (at most 256 bytes). Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`, `RP_STATUS_INVALID_ARGUMENT` (too long).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_node(
    options: *mut rp_push_worker_options,
    node: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: a NUL-terminated string per the API contract.
        let node = unsafe { cstr_arg(node, "node") }?;
        o.registration.node = len_arg(node, "node", 0, crate::push::MAX_REGISTRATION_STRING)?.to_owned();
        Ok(())
    })
}

/// Adds a consumer payload protocol the worker serves (consumer or private-use range).
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a first-party or unassigned id, or a
/// liminal endpoint, which has no payload protocols), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_add_payload_protocol(
    options: *mut rp_push_worker_options,
    payload_protocol: u32,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        not_liminal(o, "payload protocols")?;
        crate::wire::registry::check_servable(payload_protocol).map_err(crate::Error::invalid_argument)?;
        o.registration.payload_protocols.push(payload_protocol);
        Ok(())
    })
}

/// Sets the service name sent in the Hello (default "librp-push"): 1–64 characters of
/// `[a-z0-9-]`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (a name outside the rule, or a liminal endpoint, which has no
/// service name).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_service(
    options: *mut rp_push_worker_options,
    service_name: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        not_liminal(o, "a service name")?;
        // SAFETY: a NUL-terminated string per the API contract.
        let name = unsafe { cstr_arg(service_name, "service_name") }?;
        o.service_name = rule_arg(name, "service_name", crate::wire::names::check_service_name)?.to_owned();
        Ok(())
    })
}

/// Refuses a setting the liminal wire has no room for.
fn not_liminal(o: &WorkerOptions, what: &str) -> Result<(), crate::Error> {
    if o.dialect == Dialect::Liminal {
        return Err(crate::Error::invalid_argument(format!("a liminal endpoint has no {what}")));
    }
    Ok(())
}

/// Describes an activity the worker handles, with its input and output JSON schemas, in the
/// registration (liminal endpoints only; at most 256).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (options for a librp endpoint).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_add_activity_descriptor(
    options: *mut rp_push_worker_options,
    name: *const c_char,
    input_schema_json: *const c_char,
    output_schema_json: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: NUL-terminated strings per the API contract.
        let (name, input, output) = unsafe {
            (
                cstr_arg(name, "name")?,
                cstr_arg(input_schema_json, "input_schema_json")?,
                cstr_arg(output_schema_json, "output_schema_json")?,
            )
        };
        if o.dialect != Dialect::Liminal {
            return Err(crate::Error::invalid_argument("activity descriptors are sent to liminal endpoints only").into());
        }
        o.activity_descriptors.push(ActivityDescriptor {
            name: name.to_owned(),
            input_schema_json: input.to_owned(),
            output_schema_json: output.to_owned(),
        });
        Ok(())
    })
}

/// Sets the limit for connecting, the Hello and the registration together (default 5000 ms;
/// 0 = do not wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a
/// timeout below -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_connect_timeout_ms(
    options: *mut rp_push_worker_options,
    timeout_ms: i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        o.connect_timeout = limit_arg(timeout_ms)?;
        Ok(())
    })
}

/// Sets the token sent in the Hello (in the Connect on a liminal endpoint), for servers that
/// require one (TCP). `token` may be NULL
/// when `len` is 0. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_auth_token(
    options: *mut rp_push_worker_options,
    token: *const u8,
    len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: `len` readable bytes at `token` per the API contract.
        o.auth_token = unsafe { slice_arg(token, len, "token") }?.to_vec();
        Ok(())
    })
}

/// Makes the worker reconnect after its connection is lost (off by default).
///
/// On a loss — the server closed the connection or went away, a read failed, a liminal server
/// sent Disconnect, a protocol violation; noticed by the thread in `rp_push_worker_recv` or
/// `_dispatch`, as the worker reads only there — the worker forgets that connection's queued
/// and unanswered pushes (its server fails them at their callers) and a librp thread starts
/// reconnecting: attempt n waits a delay drawn from
/// `min(max_delay_ms, min_delay_ms * 2^(n-1))` (see `rp_push_worker_options_set_reconnect_jitter`),
/// then dials the same endpoint with the same Hello (or Connect) and the same registration,
/// within the connect timeout. Any failure counts as an attempt: nothing listening, a refused
/// Hello (a wrong token), a rejected registration — a server that refuses the worker for good
/// is retried like one that is down, until `max_attempts`. After `max_attempts` failed attempts
/// in a row (0 = never give up) the worker gives up: `rp_push_worker_recv` then returns
/// `RP_STATUS_CLOSED` with the last failure as the last error message. The first connection
/// (`rp_push_worker_connect`) is not retried.
///
/// While reconnecting, `rp_push_worker_recv` keeps waiting (up to its timeout) and returns
/// pushes of the new connection; the descriptor of `rp_push_worker_fd` stays the same and
/// level-triggered; `rp_push_worker_close` ends the backoff and any attempt at once.
///
/// Correlation ids: with reconnecting on, `rp_push_correlation_id` is the worker's own id
/// (counted from 1, never reused for the worker's life), not the server's. A restarted server
/// counts its ids from the start again; the worker's ids keep a late reply to a push of a lost
/// connection from answering a push of the new one: such a reply returns `RP_STATUS_CLOSED`
/// and sends nothing.
///
/// Each transition is logged (component "push-worker") and, with
/// `rp_push_worker_options_set_event_callback`, delivered as an event.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (`min_delay_ms` 0, or above
/// `max_delay_ms`), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_reconnect(
    options: *mut rp_push_worker_options,
    min_delay_ms: u32,
    max_delay_ms: u32,
    max_attempts: u32,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        if min_delay_ms == 0 || min_delay_ms > max_delay_ms {
            return Err(crate::Error::invalid_argument(format!(
                "reconnect delays must be 1 <= min_delay_ms <= max_delay_ms (got {min_delay_ms} and {max_delay_ms})"
            ))
            .into());
        }
        let jitter = o.reconnect.map(|p| p.jitter).unwrap_or_default();
        o.reconnect = Some(ReconnectPolicy {
            min_delay: std::time::Duration::from_millis(min_delay_ms.into()),
            max_delay: std::time::Duration::from_millis(max_delay_ms.into()),
            max_attempts,
            jitter,
        });
        Ok(())
    })
}

/// How the delay before each reconnect attempt is spread around its backoff
/// `b = min(max_delay_ms, min_delay_ms * 2^(n-1))`.
#[repr(i32)]
pub enum rp_reconnect_jitter {
    /// Uniform between `min_delay_ms` and `b` (the default): workers that lost the same server
    /// spread out the most.
    Full = 0,
    /// `b/2` plus a uniform share of the other half (never below `min_delay_ms`).
    Equal = 1,
}

/// An `rp_reconnect_jitter` as an argument: read as an integer and checked.
pub type rp_reconnect_jitter_arg = i32;

/// Sets how reconnect delays are spread: an `rp_reconnect_jitter` (call after
/// `rp_push_worker_options_set_reconnect`). Returns `RP_STATUS_OK`,
/// `RP_STATUS_INVALID_ARGUMENT` (not an `rp_reconnect_jitter`, or reconnecting is off),
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_reconnect_jitter(
    options: *mut rp_push_worker_options,
    jitter: rp_reconnect_jitter_arg,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        let jitter = match jitter {
            0 => Jitter::Full,
            1 => Jitter::Equal,
            j => return Err(crate::Error::invalid_argument(format!("{j} is not an rp_reconnect_jitter")).into()),
        };
        let policy = o.reconnect.as_mut().ok_or_else(|| {
            crate::Error::invalid_argument("reconnecting is off: call rp_push_worker_options_set_reconnect first")
        })?;
        policy.jitter = jitter;
        Ok(())
    })
}

/// A transition of a worker's connection, delivered to its event callback.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum rp_push_worker_event {
    /// Connected and registered: once at connect (`attempt` 0), and after each successful
    /// reconnect attempt (`attempt` is its number).
    Connected = 1,
    /// The connection was lost (`status` `RP_STATUS_CLOSED`, `message` why). Its queued and
    /// unanswered pushes are gone; reconnecting starts.
    Lost = 2,
    /// Attempt `attempt` (from 1) starts after `delay_ms`; `status`/`message` say why the
    /// previous attempt failed (`RP_STATUS_OK` and "" for the first attempt after a loss).
    Reconnecting = 3,
    /// The worker stopped after `attempt` failed attempts; `status`/`message` are the last
    /// failure. The worker is closed: `rp_push_worker_recv` returns `RP_STATUS_CLOSED`.
    GaveUp = 4,
}

/// Receives one transition of a worker's connection.
///
/// Parameters: `user_data` as registered; `event` what happened; `attempt` the reconnect
/// attempt it concerns (0 for the first connection and a loss); `delay_ms` the wait before the
/// attempt (`RP_PUSH_WORKER_EVENT_RECONNECTING`; 0 otherwise); `status` the failure behind it
/// (`RP_STATUS_OK` when none); `message` why, NUL-terminated UTF-8, borrowed: valid only until
/// the callback returns ("" when none).
///
/// Called on the thread that calls `rp_push_worker_recv` (or `rp_push_worker_dispatch`),
/// inside that call, in order, before it returns a push or a status: events that happened while
/// nobody received wait (at most 64, the oldest dropped first) and make `rp_push_worker_fd`
/// readable. No librp lock is held while it runs: it may call any function of the worker except
/// `rp_push_worker_free`. It must not unwind (no C++ exception, no `longjmp`, no Go panic).
/// Every transition is also logged (`rp_log_set`, component "push-worker").
pub type rp_push_worker_event_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        event: rp_push_worker_event,
        attempt: u32,
        delay_ms: u64,
        status: rp_status,
        message: *const c_char,
    ),
>;

/// Sets the callback that receives the worker's connection events (connected, lost,
/// reconnecting, gave up; see `rp_push_worker_event_callback`), replacing any previous one.
/// `callback` NULL unregisters.
///
/// Parameters: `user_data` — passed to `callback`; `user_data_free` — NULL, or called once with
/// `user_data` when librp no longer needs it: on replacement, when the options are freed
/// without connecting, when `rp_push_worker_connect` fails, when the worker is freed (on the
/// freeing thread), or at once if `callback` is NULL.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT` (`options` NULL; `user_data_free` then
/// runs at once).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_event_callback(
    options: *mut rp_push_worker_options,
    callback: rp_push_worker_event_callback,
    user_data: *mut c_void,
    user_data_free: rp_user_data_free_callback,
) -> rp_status {
    let cb = ForeignCallback::new(callback, user_data, user_data_free);
    boundary(move || {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        let Some(func) = callback else {
            o.on_event = None;
            return Ok(());
        };
        let foreign = Arc::new(cb);
        o.on_event = Some(EventHandler::new(move |e| {
            let event = match e.kind {
                WorkerEventKind::Connected => rp_push_worker_event::Connected,
                WorkerEventKind::Lost => rp_push_worker_event::Lost,
                WorkerEventKind::Reconnecting => rp_push_worker_event::Reconnecting,
                WorkerEventKind::GaveUp => rp_push_worker_event::GaveUp,
            };
            let status = e.error.map_or(rp_status::Ok, rp_status::from);
            let message = std::ffi::CString::new(e.message.replace('\0', " ")).unwrap_or_default();
            let delay_ms = u64::try_from(e.delay.as_millis()).unwrap_or(u64::MAX);
            // SAFETY: the callback contract: `message` is borrowed for the call; no librp lock
            // is held (the worker calls handlers outside its locks).
            unsafe { func(foreign.user_data, event, e.attempt, delay_ms, status, message.as_ptr()) }
        }));
        Ok(())
    })
}

/// Sets the CA roots (PEM text, copied) a `tls://` server's certificate must chain to. Without
/// this call the system's CA roots are used (the file `SSL_CERT_FILE` names, or the system CA
/// bundle). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_tls_ca_pem(
    options: *mut rp_push_worker_options,
    ca_pem: *const u8,
    ca_len: usize,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time, and `ca_len` readable
        // bytes at `ca_pem`, per the API contract.
        unsafe { set_ca(&mut box_mut(options, "options")?.tls, PemArg::Text { pem: ca_pem, len: ca_len, name: "ca_pem" }) }
    })
}

/// Like `rp_push_worker_options_set_tls_ca_pem`, reading the PEM file at `ca_path` now. Returns
/// `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read), `RP_STATUS_NULL_ARGUMENT`,
/// `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_tls_ca_file(
    options: *mut rp_push_worker_options,
    ca_path: *const c_char,
) -> rp_status {
    boundary(|| {
        let ca = PemArg::File { path: ca_path, name: "ca_path", what: "CA roots" };
        // SAFETY: NULL or live options, used by one thread at a time, and a NUL-terminated
        // path, per the API contract.
        unsafe { set_ca(&mut box_mut(options, "options")?.tls, ca) }
    })
}

/// Sets the name a `tls://` server's certificate must be valid for (a DNS name or an IP
/// address; default: the host of the endpoint). Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`; a name that is neither fails the connect
/// with `RP_STATUS_INVALID_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_tls_server_name(
    options: *mut rp_push_worker_options,
    server_name: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options, used by one thread at a time per the API contract.
        let o = unsafe { box_mut(options, "options") }?;
        // SAFETY: NUL-terminated per the API contract.
        o.tls.server_name = unsafe { cstr_arg(server_name, "server_name") }?.to_owned();
        Ok(())
    })
}

/// Sets the client certificate chain (leaf first) and private key a worker presents to a
/// `tls://` server that asks for one (mutual TLS), as PEM text (copied). Returns `RP_STATUS_OK`,
/// `RP_STATUS_NULL_ARGUMENT`; unusable or mismatched PEM fails the connect with
/// `RP_STATUS_CONFIG`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_tls_client_cert_pem(
    options: *mut rp_push_worker_options,
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
        unsafe { set_client_cert(&mut box_mut(options, "options")?.tls, chain, key) }
    })
}

/// Like `rp_push_worker_options_set_tls_client_cert_pem`, reading the PEM files at
/// `cert_chain_path` and `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file
/// could not be read), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_set_tls_client_cert_files(
    options: *mut rp_push_worker_options,
    cert_chain_path: *const c_char,
    key_path: *const c_char,
) -> rp_status {
    boundary(|| {
        let chain = PemArg::File { path: cert_chain_path, name: "cert_chain_path", what: "client certificate chain" };
        let key = PemArg::File { path: key_path, name: "key_path", what: "client private key" };
        // SAFETY: NULL or live options, used by one thread at a time, and the other pointers
        // valid as documented, per the API contract.
        unsafe { set_client_cert(&mut box_mut(options, "options")?.tls, chain, key) }
    })
}

/// Frees worker options. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_push_worker_options_free(options: *mut rp_push_worker_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}
