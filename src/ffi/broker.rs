//! `rp_broker_*`, `rp_conn_*`, `rp_admin_*`, `rp_broker_server_*`: reach a backend through a
//! broker, the framed connection that results, admin requests, and a broker server, for C.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use super::boundary::{boundary, boundary_or, Failure};
use super::bytes::{cstr_arg, len_arg, limit_arg, rp_str, rule_arg, timeout_arg};
use super::frame::rp_frame_view;
use super::handle::{arc_clone, box_free, box_into_handle, box_ref, write_out, Castable, OwnedBox};
use super::handoff::rp_handoff_store;
use super::status::rp_status;
use crate::broker::{self, BrokerServer, BrokerServerOptions, Conn, ConnectOptions, Connected, Route, ServiceEntry};
use crate::transport::Endpoint;
use crate::wire::names::{check_service_name, check_version};
use crate::wire::proto::{AdminReply, AdminRequest, Frame};

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
/// `_free`; consumed by `rp_broker_connect`.
///
/// Exclusive handle (Send).
pub struct rp_broker_options {
    _private: [u8; 0],
}

impl Castable for rp_broker_options {
    type Ownership = OwnedBox;
    type RustType = ConnectOptions;
}

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

impl Castable for rp_broker_result {
    type Ownership = OwnedBox;
    type RustType = ResultHandle;
}

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

impl Castable for rp_conn {
    type Ownership = OwnedBox;
    type RustType = Conn;
}

/// One received frame, owned.
///
/// Methods: `rp_frame_view_of`, `rp_frame_free`.
///
/// Exclusive handle (Send).
pub struct rp_frame {
    _private: [u8; 0],
}

impl Castable for rp_frame {
    type Ownership = OwnedBox;
    type RustType = Frame;
}

/// An admin reply (0xAD01): kind, body, exit code, content type.
///
/// Methods: `rp_admin_reply_kind`, `_body`, `_exit_code`, `_free`.
///
/// Exclusive handle (Send).
pub struct rp_admin_reply {
    _private: [u8; 0],
}

impl Castable for rp_admin_reply {
    type Ownership = OwnedBox;
    type RustType = AdminReply;
}

/// How a broker server is set up: endpoint, service table, limits.
///
/// Methods: `rp_broker_server_options_new`, `_add_service`, `_allow_version`, `_block_version`,
/// `_set_min_version`, `_set_handoff`, `_set_rate_limit`, `_set_max_connections`,
/// `_set_hello_timeout_ms`, `_set_handoff_ack_timeout_ms`, `_free`; consumed by
/// `rp_broker_server_bind`.
///
/// Exclusive handle (Send).
pub struct rp_broker_server_options {
    _private: [u8; 0],
}

impl Castable for rp_broker_server_options {
    type Ownership = OwnedBox;
    type RustType = BrokerServerOptions;
}

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

impl Castable for rp_broker_server {
    type Ownership = OwnedBox;
    type RustType = ServerHandle;
}

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
        if out_options.is_null() {
            return Err(Failure::null("out_options"));
        }
        let service = rule_arg(service, "service_name", check_service_name)?;
        let wanted = rule_arg(wanted, "wanted_version", check_version)?;
        let opts = ConnectOptions::new(Endpoint::parse(endpoint)?, service, wanted, own);
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_options, box_into_handle::<rp_broker_options>(opts)) };
        Ok(())
    })
}

/// Runs `edit` on the options behind `options`.
unsafe fn edit_options(
    options: *mut rp_broker_options,
    edit: impl FnOnce(&mut ConnectOptions) -> Result<(), Failure>,
) -> rp_status {
    boundary(|| {
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: a live, exclusively used rp_broker_options per the API contract.
        edit(unsafe { &mut *options.cast::<ConnectOptions>() })
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.cached_endpoint = Some(Endpoint::parse(cstr_arg(endpoint, "endpoint")?)?);
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.client_version = len_arg(cstr_arg(client_version, "client_version")?, "client_version", 0, 128)?.to_owned();
            Ok(())
        })
    }
}

/// Sets the proposed keepalive interval (0 = the broker chooses; the reference grants 1800).
/// Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_keepalive_secs(options: *mut rp_broker_options, secs: u64) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.keepalive_secs = secs;
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.adopt_handoff = adopt;
            o.handoff_wait = limit_arg(wait_ms)?;
            Ok(())
        })
    }
}

/// Sets the limit for each connect and for the Hello round trip (default 5000 ms; 0 = do not
/// wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
/// -1), `RP_STATUS_NULL_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_timeout_ms(options: *mut rp_broker_options, timeout_ms: i32) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.timeout = limit_arg(timeout_ms)?;
            Ok(())
        })
    }
}

/// Makes `rp_broker_connect` honour `RUNNING_PROCESS_DISABLE`: `1` fails the connect with
/// `RP_STATUS_DISABLED` (use your direct path), another non-empty value with
/// `RP_STATUS_CONFIG`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_options_set_honor_disable_env(options: *mut rp_broker_options, honor: bool) -> rp_status {
    // SAFETY: forwarded API contract.
    unsafe {
        edit_options(options, |o| {
            o.honor_disable_env = honor;
            Ok(())
        })
    }
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
        if out_disabled.is_null() {
            return Err(Failure::null("out_disabled"));
        }
        let disabled = broker::broker_disabled_by_env()?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_disabled, disabled) };
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
/// - `RP_STATUS_PROTOCOL`: the broker negotiated an empty `backend_pipe`, or broke the protocol.
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
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live options owned by the caller; consumed here on every path.
        let opts = *unsafe { Box::from_raw(options.cast::<ConnectOptions>()) };
        if out_result.is_null() {
            return Err(Failure::null("out_result"));
        }
        let Connected { conn, route, endpoint, negotiated } = broker::connect(&opts)?;
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
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_result, box_into_handle::<rp_broker_result>(result)) };
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
        if result.is_null() || out_conn.is_null() {
            return Err(Failure::null("result/out_conn"));
        }
        // SAFETY: a live, exclusively used result per the API contract.
        let r = unsafe { &mut *result.cast::<ResultHandle>() };
        let conn = r.conn.take().ok_or_else(|| Failure::new(rp_status::NotFound, "the connection was already taken"))?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_conn, box_into_handle::<rp_conn>(conn)) };
        Ok(())
    })
}

/// Frees a result (closing a connection not taken). NULL is a no-op. Must not be called twice.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_broker_result_free(result: *mut rp_broker_result) {
    // SAFETY: NULL or a live result owned by the caller.
    boundary_or((), || unsafe { box_free(result) })
}

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
        if out_frame.is_null() {
            return Err(Failure::null("out_frame"));
        }
        let frame = conn.recv(timeout_arg(timeout_ms)?)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_frame, box_into_handle::<rp_frame>(frame)) };
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
/// buffered), or the connection ended. Level-triggered: one `rp_conn_recv` with timeout 0 per
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
    boundary_or(-1, || unsafe { conn_ref(conn) }.map_or(-1, |c| c.pollable_fd().unwrap_or(-1)))
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
        if out_pid.is_null() || out_uid.is_null() || out_gid.is_null() {
            return Err(Failure::null("out_pid/out_uid/out_gid"));
        }
        let p = conn
            .peer_credentials()
            .ok_or_else(|| Failure::new(rp_status::NotFound, "the peer has no kernel-reported credentials"))?;
        // SAFETY: all checked non-NULL.
        unsafe {
            write_out(out_pid, p.pid);
            write_out(out_uid, p.uid);
            write_out(out_gid, p.gid);
        }
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
        let owned = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if out_conn.is_null() {
            return Err(Failure::null("out_conn"));
        }
        let conn = crate::broker::Conn::from_unix_fd(owned)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_conn, box_into_handle::<rp_conn>(conn)) };
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
        if out_view.is_null() {
            return Err(Failure::null("out_view"));
        }
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_view, rp_frame_view::from_view(&f.view())) };
        Ok(())
    })
}

/// Frees a received frame. NULL is a no-op. Must not be called twice with the same value.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rp_frame_free(frame: *mut rp_frame) {
    // SAFETY: NULL or a live frame owned by the caller.
    boundary_or((), || unsafe { box_free(frame) })
}

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
        if out_reply.is_null() {
            return Err(Failure::null("out_reply"));
        }
        let timeout = timeout_arg(timeout_ms)?;
        let request = AdminRequest { verb, service_name, ..AdminRequest::default() };
        let reply = broker::admin_request(&endpoint, &request, timeout)?;
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_reply, box_into_handle::<rp_admin_reply>(reply)) };
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
        if out_options.is_null() {
            return Err(Failure::null("out_options"));
        }
        let opts = BrokerServerOptions::new(endpoint, Vec::new());
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_options, box_into_handle::<rp_broker_server_options>(opts)) };
        Ok(())
    })
}

/// Runs `edit` on the server options behind `options`.
unsafe fn edit_server_options(
    options: *mut rp_broker_server_options,
    edit: impl FnOnce(&mut BrokerServerOptions) -> Result<(), Failure>,
) -> rp_status {
    boundary(|| {
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live, exclusively used options per the API contract.
        edit(unsafe { &mut *options.cast::<BrokerServerOptions>() })
    })
}

/// Runs `edit` on the service named `service_name`.
unsafe fn edit_service(
    options: *mut rp_broker_server_options,
    service_name: *const c_char,
    edit: impl FnOnce(&mut ServiceEntry) -> Result<(), Failure>,
) -> rp_status {
    boundary(|| {
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live, exclusively used options per the API contract.
        let o = unsafe { &mut *options.cast::<BrokerServerOptions>() };
        // SAFETY: NUL-terminated per the API contract.
        let name = unsafe { cstr_arg(service_name, "service_name") }?;
        let service = o
            .services
            .iter_mut()
            .find(|s| s.service_name == name)
            .ok_or_else(|| Failure::new(rp_status::NotFound, format!("service {name:?} was not added")))?;
        edit(service)
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            let entry = ServiceEntry {
                service_name: rule_arg(cstr_arg(service_name, "service_name")?, "service_name", check_service_name)?
                    .to_owned(),
                backend_pipe: len_arg(cstr_arg(backend_pipe, "backend_pipe")?, "backend_pipe", 0, 4096)?.to_owned(),
                daemon_version: len_arg(cstr_arg(daemon_version, "daemon_version")?, "daemon_version", 0, 64)?
                    .to_owned(),
                ..ServiceEntry::default()
            };
            o.services.retain(|s| s.service_name != entry.service_name);
            o.services.push(entry);
            Ok(())
        })
    }
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
    unsafe {
        edit_service(options, service_name, |s| {
            s.allowed_versions.push(rule_arg(cstr_arg(version, "version")?, "version", check_version)?.to_owned());
            Ok(())
        })
    }
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
    unsafe {
        edit_service(options, service_name, |s| {
            s.blocked_versions.push(rule_arg(cstr_arg(version, "version")?, "version", check_version)?.to_owned());
            Ok(())
        })
    }
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
    unsafe {
        edit_service(options, service_name, |s| {
            s.min_version = rule_arg(cstr_arg(version, "version")?, "version", check_version)?.to_owned();
            Ok(())
        })
    }
}

/// Offers handoff for the service: capable clients get a one-time token, and their
/// connection is passed (SCM_RIGHTS, with a HandoffOffer) to the backend listening on
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_service(options, service_name, |s| {
            s.handoff_endpoint = Some(Endpoint::parse(cstr_arg(handoff_endpoint, "handoff_endpoint")?)?);
            s.handoff_store = if store.is_null() {
                None
            } else {
                arc_clone::<rp_handoff_store>(store, "store")?;
                // SAFETY: the reference just added is owned by the Arc rebuilt here.
                Some(Arc::from_raw(store.cast::<crate::handoff::TokenStore>()))
            };
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.rate_limit = max_hellos.max(1);
            o.rate_window = Duration::from_millis(u64::from(window_ms.max(1)));
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.max_connections = total;
            o.max_connections_per_uid = per_uid;
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.hello_timeout = limit_arg(timeout_ms)?;
            Ok(())
        })
    }
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
    // SAFETY: forwarded API contract.
    unsafe {
        edit_server_options(options, |o| {
            o.handoff_ack_timeout = limit_arg(timeout_ms)?;
            Ok(())
        })
    }
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
        if options.is_null() {
            return Err(Failure::null("options"));
        }
        // SAFETY: live options owned by the caller; consumed here on every path.
        let opts = *unsafe { Box::from_raw(options.cast::<BrokerServerOptions>()) };
        if out_server.is_null() {
            return Err(Failure::null("out_server"));
        }
        let server = BrokerServer::bind(opts)?;
        let endpoint = server.endpoint().to_string();
        // SAFETY: checked non-NULL.
        unsafe { write_out(out_server, box_into_handle::<rp_broker_server>(ServerHandle { server, endpoint })) };
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
