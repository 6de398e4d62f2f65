//! `rp_broker_*` and `rp_admin_*`: reach a backend through a broker, and admin requests, for
//! C. The connection that results is in [`super::conn`], the broker server in
//! [`super::broker_server`].

use std::ffi::c_char;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, len_arg, limit_arg, rp_str, rule_arg};
use super::handle::{box_free, box_into_handle, box_mut, box_ref, box_take, castable, out_arg};
use super::conn::rp_conn;
use super::status::rp_status;
use crate::broker::{self, BrokerConnection, BrokerOptions, Conn, Route};
use crate::transport::Endpoint;
use crate::wire::names::{check_service_name, check_version};

/// How `rp_broker_connect` reached the backend (`rp_broker_result_route`).
#[repr(i32)]
pub enum rp_broker_route {
    /// Straight to the cached endpoint, without a Hello.
    HelloSkip = 0,
    /// Hello to the broker, then a new connection to the negotiated `backend_pipe`.
    Negotiated = 1,
    /// Hello to the broker, which handed that same connection to the backend.
    HandedOff = 2,
    /// No route: what `rp_broker_result_route` returns for a NULL result.
    None = -1,
}

/// How to reach a backend through a broker.
///
/// Methods: `rp_broker_options_new`, `_set_cached_endpoint`, `_set_client_version`,
/// `_set_keepalive_secs`, `_set_adopt_handoff`, `_set_timeout_ms`, `_set_honor_disable_env`,
/// `_set_tls`, `_free`; consumed by `rp_broker_connect`.
///
/// Exclusive handle (Send).
pub struct rp_broker_options {
    _private: [u8; 0],
}

castable!(rp_broker_options => BrokerOptions: OwnedBox);

/// The outcome of `rp_broker_connect`: the route taken, the endpoint to cache, the negotiated
/// fields and the connection.
///
/// Methods: `rp_broker_result_route`, `_endpoint`, `_daemon_version`, `_server_capabilities`,
/// `_keepalive_secs`, `_connection_id`, `_take_conn`, `_free`.
///
/// Exclusive handle (Send).
pub struct rp_broker_result {
    _private: [u8; 0],
}

/// What an `rp_broker_result` holds.
pub(crate) struct ResultHandle {
    conn: Option<Conn>,
    route: Route,
    endpoint: String,
    daemon_version: String,
    server_capabilities: u64,
    keepalive_secs: u64,
    connection_id: u64,
}

castable!(rp_broker_result => ResultHandle: OwnedBox);
// ---------------------------------------------------------------------------------------------
// Client options
// ---------------------------------------------------------------------------------------------

/// Creates options for `rp_broker_connect`.
///
/// Parameters: `broker_endpoint` — a socket path or `@name`; `service_name` — the service
/// (1–64 characters of `[a-z0-9-]`); `wanted_version` — the backend version wanted (semver);
/// `own_version` — the caller's own version (hello-skip is tried only when it equals
/// `wanted_version`); `out_options` — receives the options.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (malformed endpoint, a service name or wanted version outside
/// its rule; the message states the rule).
///
/// Ownership: the caller owns `*out_options`; `rp_broker_connect` consumes it, otherwise free it
/// with `rp_broker_options_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_new(
    broker_endpoint: *const c_char,
    service_name: *const c_char,
    wanted_version: *const c_char,
    own_version: *const c_char,
    out_options: *mut *mut rp_broker_options,
) -> rp_status {
    boundary(|| {
        // SAFETY: NUL-terminated strings per the API contract.
        let (endpoint, service, wanted, own) = unsafe {
            (
                cstr_arg(broker_endpoint, "broker_endpoint")?,
                cstr_arg(service_name, "service_name")?,
                cstr_arg(wanted_version, "wanted_version")?,
                cstr_arg(own_version, "own_version")?,
            )
        };
        // SAFETY: NULL or valid for a write per the API contract.
        let out_options = unsafe { out_arg(out_options, "out_options") }?;
        let service = rule_arg(service, "service_name", check_service_name)?;
        let wanted = rule_arg(wanted, "wanted_version", check_version)?;
        let opts = BrokerOptions::new(Endpoint::parse(endpoint)?, service, wanted, own);
        out_options.write(box_into_handle(opts));
        Ok(())
    })
}

/// Sets the backend endpoint remembered from an earlier connect (`rp_broker_result_endpoint`),
/// for hello-skip. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_cached_endpoint(
    options: *mut rp_broker_options,
    endpoint: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.cached_endpoint = Some(Endpoint::parse(cstr_arg(endpoint, "endpoint")?)?);
            Ok(())
        }
    })
}

/// Sets how `tls://` endpoints are verified and the client certificate offered there: the
/// broker's, a cached one, or the `backend_pipe` the broker names (read and copied). Without
/// this call a `tls://` endpoint is verified against the system's CA roots. A connection over
/// TLS is never handed off (its TLS state cannot travel with the descriptor): over a `tls://`
/// broker endpoint no handoff is asked for, whatever `_set_adopt_handoff` says. Returns
/// `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_tls(
    options: *mut rp_broker_options,
    tls: *const super::tls::rp_tls_client_options,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and `tls` is NULL
        // or live, per the API contract.
        unsafe {
            let tls = box_ref::<super::tls::rp_tls_client_options>(tls, "tls")?.clone();
            box_mut(options, "options")?.tls = tls;
            Ok(())
        }
    })
}

/// Sets the informational client version sent in the Hello (≤ 128 bytes). Returns
/// `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
/// `RP_STATUS_INVALID_ARGUMENT` (longer than 128 bytes).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_client_version(
    options: *mut rp_broker_options,
    client_version: *const c_char,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.client_version = len_arg(cstr_arg(client_version, "client_version")?, "client_version", 0, 128)?.to_owned();
            Ok(())
        }
    })
}

/// Sets the proposed keepalive interval (0 = the broker chooses; the reference grants 1800).
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_keepalive_secs(options: *mut rp_broker_options, secs: u64) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.keepalive_secs = secs;
            Ok(())
        }
    })
}

/// Opts in (or out) of adopting a handed-off connection, waiting up to `wait_ms` for the
/// broker's handoff-ready relay (a timeout: 0 = only a relay already there, -1 = no limit; the
/// default is 2000 ms). Any failure falls back to connecting to `backend_pipe`. Returns
/// `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (`wait_ms` below -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_adopt_handoff(
    options: *mut rp_broker_options,
    adopt: bool,
    wait_ms: i32,
) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.adopt_handoff = adopt;
            o.handoff_wait = limit_arg(wait_ms)?;
            Ok(())
        }
    })
}

/// Sets the limit for each connect and for the Hello round trip (default 5000 ms; 0 = do not
/// wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
/// -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_timeout_ms(options: *mut rp_broker_options, timeout_ms: i32) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.timeout = limit_arg(timeout_ms)?;
            Ok(())
        }
    })
}

/// Makes `rp_broker_connect` honour `RUNNING_PROCESS_DISABLE`: `1` fails the connect with
/// `RP_STATUS_DISABLED` (use your direct path), another non-empty value with
/// `RP_STATUS_CONFIG`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_honor_disable_env(options: *mut rp_broker_options, honor: bool) -> rp_status {
    boundary(|| {
        // SAFETY: `options` is NULL or live and used by one thread at a time, and the other
        // pointers are valid as documented, per the API contract.
        unsafe {
            let o = box_mut(options, "options")?;
            o.honor_disable_env = honor;
            Ok(())
        }
    })
}

/// Frees options. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_free(options: *mut rp_broker_options) {
    // SAFETY: NULL or live options owned by the caller.
    boundary_or((), || unsafe { box_free(options) })
}

/// Reads `RUNNING_PROCESS_DISABLE`: `*out_disabled` is true for `1`, false when unset or empty.
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (any other value; the message names it),
/// `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_disabled_by_env(out_disabled: *mut bool) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or valid for a write per the API contract.
        let out_disabled = unsafe { out_arg(out_disabled, "out_disabled") }?;
        let disabled = broker::broker_disabled_by_env()?;
        out_disabled.write(disabled);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Connect and its result
// ---------------------------------------------------------------------------------------------

/// Connects to a backend for a service through the broker.
///
/// Hello-skip to the cached endpoint when the versions match and it accepts the connection;
/// otherwise Hello → Negotiated, then (handoff negotiated and opted in) adopt the handed-off
/// connection, or connect to `backend_pipe`. Handoff failures fall back silently.
///
/// Parameters: `options` — consumed by this call, even if an error is returned; `out_result`
/// — receives the result.
///
/// Returns:
/// - `RP_STATUS_OK`.
/// - `RP_STATUS_REFUSED`: the broker refused; `rp_last_refusal` gives code, reason, retry hint
///   and details.
/// - `RP_STATUS_DISABLED` / `RP_STATUS_CONFIG`: see `rp_broker_options_set_honor_disable_env`.
/// - `RP_STATUS_PROTOCOL`: the broker negotiated an empty `backend_pipe`, or broke the protocol;
///   or a `tls://` endpoint does not speak TLS.
/// - `RP_STATUS_PERMISSION_DENIED`: a `tls://` endpoint's certificate was refused (unknown CA,
///   expired or not yet valid, wrong name); see `rp_broker_options_set_tls`.
/// - `RP_STATUS_TIMEOUT`, `RP_STATUS_IO`, `RP_STATUS_INVALID_ARGUMENT` (a field the broker would
///   refuse), `RP_STATUS_NULL_ARGUMENT`, framing errors.
///
/// Blocks up to the options' timeouts. Ownership: the caller owns `*out_result`; free it with
/// `rp_broker_result_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_connect(
    options: *mut rp_broker_options,
    out_result: *mut *mut rp_broker_result,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or live options owned by the caller; consumed here on every path.
        let opts = unsafe { box_take(options, "options") }?;
        // SAFETY: NULL or valid for a write per the API contract.
        let out_result = unsafe { out_arg(out_result, "out_result") }?;
        let BrokerConnection { conn, route, endpoint, negotiated } = broker::connect(&opts)?;
        let n = negotiated.unwrap_or_default();
        let result = ResultHandle {
            conn: Some(conn),
            route,
            endpoint: endpoint.to_string(),
            daemon_version: n.daemon_version,
            server_capabilities: n.server_capabilities,
            keepalive_secs: n.keepalive_interval_secs,
            connection_id: n.connection_id,
        };
        out_result.write(box_into_handle(result));
        Ok(())
    })
}

/// Borrows a result (NULL-checked).
unsafe fn result_ref<'a>(result: *const rp_broker_result) -> Result<&'a ResultHandle, Failure> {
    // SAFETY: NULL or a live result per the API contract.
    unsafe { box_ref::<rp_broker_result>(result, "result") }
}

/// The route taken (`RP_BROKER_ROUTE_NONE` if `result` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_route(result: *const rp_broker_result) -> rp_broker_route {
    boundary_or(rp_broker_route::None, || {
        // SAFETY: forwarded API contract.
        unsafe { result_ref(result) }.map_or(rp_broker_route::None, |r| match r.route {
            Route::HelloSkip => rp_broker_route::HelloSkip,
            Route::Negotiated => rp_broker_route::Negotiated,
            Route::HandedOff => rp_broker_route::HandedOff,
        })
    })
}

/// The backend endpoint to cache for hello-skip (pass it to
/// `rp_broker_options_set_cached_endpoint` next time). Borrowed: valid until `result` is
/// freed. Empty if `result` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_endpoint(result: *const rp_broker_result) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: forwarded API contract.
        unsafe { result_ref(result) }.map_or(rp_str::from_str(""), |r| rp_str::from_str(&r.endpoint))
    })
}

/// `Negotiated.daemon_version` (empty after hello-skip). Borrowed: valid until `result` is
/// freed. Empty if `result` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_daemon_version(result: *const rp_broker_result) -> rp_str {
    boundary_or(rp_str::from_str(""), || {
        // SAFETY: forwarded API contract.
        unsafe { result_ref(result) }.map_or(rp_str::from_str(""), |r| rp_str::from_str(&r.daemon_version))
    })
}

/// `Negotiated.server_capabilities` (0 after hello-skip or if `result` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_server_capabilities(result: *const rp_broker_result) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { result_ref(result) }.map_or(0, |r| r.server_capabilities))
}

/// `Negotiated.keepalive_interval_secs` (0 after hello-skip or if `result` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_keepalive_secs(result: *const rp_broker_result) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { result_ref(result) }.map_or(0, |r| r.keepalive_secs))
}

/// `Negotiated.connection_id` (0 after hello-skip or if `result` is NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_connection_id(result: *const rp_broker_result) -> u64 {
    // SAFETY: forwarded API contract.
    boundary_or(0, || unsafe { result_ref(result) }.map_or(0, |r| r.connection_id))
}

/// Takes the backend connection out of the result (once).
///
/// Returns `RP_STATUS_OK`, `RP_STATUS_NOT_FOUND` (already taken), `RP_STATUS_NULL_ARGUMENT`.
///
/// Ownership: the caller owns `*out_conn`; free it with `rp_conn_free`. A connection never
/// taken is closed by `rp_broker_result_free`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_take_conn(
    result: *mut rp_broker_result,
    out_conn: *mut *mut rp_conn,
) -> rp_status {
    boundary(|| {
        // SAFETY: NULL or a live, exclusively used result, and `out_conn` NULL or valid for a
        // write, per the API contract.
        let (r, out_conn) = unsafe { (box_mut(result, "result")?, out_arg(out_conn, "out_conn")?) };
        let conn = r.conn.take().ok_or_else(|| Failure::new(rp_status::NotFound, "the connection was already taken"))?;
        out_conn.write(box_into_handle(conn));
        Ok(())
    })
}

/// Frees a result (closing a connection not taken). NULL is a no-op. Must not be called twice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_free(result: *mut rp_broker_result) {
    // SAFETY: NULL or a live result owned by the caller.
    boundary_or((), || unsafe { box_free(result) })
}

