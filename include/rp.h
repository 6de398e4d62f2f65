/*
 * rp.h -- librp: the running-process v1 broker protocol for C, C++ and Go.
 *
 * Conventions
 * -----------
 * - Every symbol starts with rp_ / RP_. Handles are opaque; each owned handle type has a
 *   matching _free function (NULL is a no-op; freeing twice is undefined behaviour).
 * - Fallible functions return rp_status (RP_STATUS_OK = 0) and write results through out_*
 *   parameters, only on success unless the function says otherwise. After a non-OK status,
 *   rp_last_error_message() describes the failure on the calling thread. RP_NODISCARD marks
 *   the calls whose status a correct program must read (they can fail at run time on a value,
 *   the peer or the system); the others fail only on a NULL argument.
 * - Inputs are borrowed for the duration of the call and copied if kept. Outputs that outlive
 *   the call are owned by a handle with its own _free. Borrowed views (rp_bytes, rp_str,
 *   rp_frame_view) say exactly until when they are valid.
 * - Strings passed in are NUL-terminated UTF-8; rp_str views are UTF-8 and NOT NUL-terminated.
 * - No panic crosses this boundary: an internal bug returns RP_STATUS_PANIC.
 * - librp never writes to stdout/stderr and never installs signal handlers.
 * - Logs and statistics: librp is silent until rp_log_set installs a log callback (the one
 *   callback that may also run on librp's own threads); rp_*_get_stats fill plain structs.
 *
 * Event loops
 * -----------
 * Every descriptor librp hands out (rp_conn_fd, rp_push_worker_fd, rp_push_server_event_fd,
 * rp_session_dispatch_fd) is level-triggered: readable exactly while the matching receive with
 * timeout 0 would return without waiting (something is ready, also when librp already took it
 * off the socket and holds it, or the handle ended) and not readable otherwise. One receive per
 * wake-up loses nothing. Watch these descriptors for readability only; never read, write or
 * close them: the handle owns them.
 * On Windows each of them is an event HANDLE instead, in the same int32_t (Windows keeps handle
 * values within 32 bits; convert with (HANDLE)(intptr_t)fd): wait on it with
 * WaitForSingleObject / WaitForMultipleObjects. It is set exactly while the descriptor would
 * be readable, and reset when that is drained (a manual-reset event: waiting never resets it).
 * librp sets it as soon as data comes (it keeps a zero-byte read in flight on the pipe or
 * socket); while it is set, librp looks every millisecond to reset it once drained.
 *
 * Timeouts
 * --------
 * Every timeout_ms argument and every *_timeout_ms option (and wait_ms) follows one rule:
 * 0 = do not wait (try once: take only what is already there), -1 = no limit, > 0 = at most
 * that many milliseconds. Any other value (-2, ...) fails with RP_STATUS_INVALID_ARGUMENT,
 * whose message states the rule. A call waiting without limit still returns when the peer ends
 * the connection or the handle is closed from another thread (its _close or _shutdown). A
 * wait on a ticket or a served request can also be ended alone, leaving the push, call or
 * request going on: rp_push_ticket_interrupt, rp_session_ticket_interrupt and
 * rp_session_request_interrupt make that wait return RP_STATUS_INTERRUPTED.
 *
 * Thread safety
 * -------------
 * Functions taking `const rp_x *` may run concurrently on the same handle. Functions taking
 * `rp_x *` must be serialised by the caller for that handle, from any thread. Handles may move
 * between threads unless their type says otherwise.
 *
 * Callbacks
 * ---------
 * Every callback takes `void *user_data` first: the pointer given when it was registered. Each
 * registration also takes `user_data_free` (may be NULL), which librp calls exactly once with
 * `user_data` when it no longer needs it: when the callback is replaced or removed, when the
 * handle that owns it is freed, or at once when the registering call fails (each registering
 * function says when). A callback runs only on the application's own thread, inside the call
 * named here, never on a thread of librp's:
 *   rp_legacy_detect_callback (given to rp_mux_new)             inside rp_mux_poll
 *   rp_push_worker_handler_callback (rp_push_worker_set_handler)       inside rp_push_worker_dispatch
 *   rp_push_server_registration_callback, rp_push_server_worker_callback
 *     (rp_push_server_options_set_*_callback)                   inside rp_push_server_dispatch
 *   rp_session_request_callback (rp_session_new, rp_session_connect,
 *     rp_session_listener_accept)                               inside rp_session_dispatch
 * The one exception is the process-wide log callback (rp_log_set): it runs on whichever thread
 * saw the event, librp's own threads included, with no librp lock held (see rp_log_set).
 * Handles and views passed to a callback are borrowed: valid only until it returns (except the
 * rp_session_request, which the callback owns). A callback must never free the handle that
 * runs it; each callback type lists what else it may and may not call.
 *
 * Call sequences
 * --------------
 * Daemon (a backend that keeps its own wire): rp_daemon_identity_new_current -> rp_mux_new;
 *   for the bytes buffered on each connection, rp_mux_poll -> write event.reply back (probe),
 *   serve event.frame (payload; answer with rp_frame_encode_response) or read your own wire
 *   (legacy), then drop event.consumed bytes; handed-off connections: rp_handoff_store_new,
 *   rp_handoff_accept.
 * Worker: rp_push_worker_options_new (+ _add_payload_protocol, ...) -> rp_push_worker_connect ->
 *   rp_push_worker_recv -> rp_push_payload -> rp_push_worker_reply -> rp_push_free, repeated
 *   (or rp_push_worker_set_handler + rp_push_worker_dispatch) -> rp_push_worker_free.
 * Push server: rp_push_server_options_new -> rp_push_server_bind; per job rp_push_request_new
 *   (+ _to_worker, ...) -> rp_push_server_push_wait -> rp_push_result_payload ->
 *   rp_push_result_free (or rp_push_server_push -> rp_push_ticket_wait); rp_push_server_free.
 * Tool: rp_broker_options_new -> rp_broker_connect -> rp_broker_result_take_conn ->
 *   rp_broker_result_free; rp_conn_send / rp_conn_recv -> rp_conn_free.
 * Both ends of a connection: rp_session_new over an rp_conn (or rp_session_connect,
 *   rp_session_listener_accept) -> rp_session_call and rp_session_dispatch -> rp_session_free.
 * Broker: rp_broker_server_options_new (+ _add_service) -> rp_broker_server_bind -> ... ->
 *   rp_broker_server_free.
 *
 * TLS
 * ---
 * A push server and its workers also speak over tls://host:port (TLS 1.3/1.2). The server
 * presents a certificate and key (rp_push_server_options_set_tls_cert_pem / _files) and may
 * ask workers for certificates (_set_tls_client_ca_pem / _file: mutual TLS; the verified
 * identity is in rp_push_worker_info_tls_subject / _tls_san). A worker verifies the server
 * against given CA roots or the system's (rp_push_worker_options_set_tls_ca_pem / _file) and
 * the endpoint's host name (_set_tls_server_name), and may present a certificate
 * (_set_tls_client_cert_pem / _files). A refused certificate is RP_STATUS_PERMISSION_DENIED,
 * TLS against plain TCP RP_STATUS_PROTOCOL (a plain worker at a TLS server: RP_STATUS_REFUSED),
 * each with a message saying which. Sessions take tls:// too, with their TLS settings in one
 * object: rp_session_listener_bind_tls (rp_tls_server_options) and rp_session_connect_tls
 * (rp_tls_client_options); the peer's certificate is in rp_session_tls_subject / _tls_san. The
 * broker client verifies tls:// endpoints with rp_broker_options_set_tls and never asks for a
 * handoff over TLS. rp_conn_fd stays level-triggered over TLS (readable while decrypted bytes
 * wait). The broker server and the identity probe refuse tls:// (RP_STATUS_INVALID_ARGUMENT).
 *
 * ABI contract
 * ------------
 * The values of constants and status codes never change and codes are never reused; functions
 * are only added to the library. A function withdrawn from this header stays exported, doing
 * what it did or nothing, so that programs linked earlier keep loading. The shared library's
 * SONAME changes when this contract is broken, so a program never loads a library whose ABI
 * differs from the one it was linked against. While the major version is 0, a minor release
 * may break the contract, so the SONAME carries major.minor: librp.so.0.2 for every 0.2.x
 * release (0.1.x was librp.so.0). From 1.0 on it is librp.so.MAJOR.
 */


#ifndef RP_H
#define RP_H

/* Generated by cbindgen from src/ffi. Do not edit: run scripts/gen-header.sh. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Builds a version number comparable with rp_version_number(). */
#define RP_MAKE_VERSION(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
/** The version of this header as one number. */
#define RP_VERSION RP_MAKE_VERSION(RP_VERSION_MAJOR, RP_VERSION_MINOR, RP_VERSION_PATCH)

#if defined(__cplusplus) && __cplusplus >= 201703L
#define RP_NODISCARD [[nodiscard]]
#elif defined(__GNUC__) || defined(__clang__)
#define RP_NODISCARD __attribute__((warn_unused_result))
#else
#define RP_NODISCARD
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RP_DEPRECATED(msg) __attribute__((deprecated(msg)))
#elif defined(_MSC_VER)
#define RP_DEPRECATED(msg) __declspec(deprecated(msg))
#else
#define RP_DEPRECATED(msg)
#endif


/**
 * The framing version byte that starts every frame.
 */
#define RP_FRAMING_VERSION 1

/**
 * Bytes of the frame header (framing version + u32 little-endian body length).
 */
#define RP_FRAME_HEADER_LEN 5

/**
 * The largest frame body librp accepts or produces: 16 MiB.
 */
#define RP_FRAME_MAX_BODY 16777216

/**
 * The largest body accepted for the first (Hello) frame of a connection: 64 KiB.
 */
#define RP_HELLO_MAX_BODY 65536

/**
 * Bytes in a handoff token.
 */
#define RP_HANDOFF_TOKEN_LEN 16

/**
 * Flag for `rp_daemon_identity_new_current`: also compute the SHA-256 of the executable for
 * the legacy slot of probe replies (without it the slot holds 32 zero bytes).
 */
#define RP_DAEMON_IDENTITY_LEGACY_SHA256 1

/**
 * Control plane: Hello / HelloReply (0x0000).
 */
#define RP_PROTOCOL_CONTROL 0

/**
 * Admin verbs (0xAD01).
 */
#define RP_PROTOCOL_ADMIN 44289

/**
 * Backend-handle identity probe (0xB232).
 */
#define RP_PROTOCOL_IDENTITY_PROBE 45618

/**
 * Broker/backend connection handoff (0xD0FF).
 */
#define RP_PROTOCOL_HANDOFF 53503

/**
 * SESSION data plane (0x5350).
 */
#define RP_PROTOCOL_SESSION 21328

/**
 * First id of the registered consumer range (0x7000).
 */
#define RP_PROTOCOL_CONSUMER_FIRST 28672

/**
 * Last id of the registered consumer range (0x7EFF).
 */
#define RP_PROTOCOL_CONSUMER_LAST 32511

/**
 * First id of the private-use range (0xF000).
 */
#define RP_PROTOCOL_PRIVATE_USE_FIRST 61440

/**
 * Last id of the private-use range (0xFFFF).
 */
#define RP_PROTOCOL_PRIVATE_USE_LAST 65535

/**
 * Major version of the headers (`RP_VERSION_MAJOR`).
 */
#define RP_VERSION_MAJOR 0

/**
 * Minor version of the headers (`RP_VERSION_MINOR`).
 */
#define RP_VERSION_MINOR 2

/**
 * Patch version of the headers (`RP_VERSION_PATCH`).
 */
#define RP_VERSION_PATCH 0

/**
 * The result of a fallible librp call: 0 is success, every other value is a stable code.
 *
 * Codes are grouped by family (1–9 expected outcomes, 10–19 caller errors, 20–29 protocol
 * errors, 30–39 refusals, 40–49 system errors, 90–99 internal). Values never change and are
 * never reused. After a non-OK status, `rp_last_error_message` describes the failure.
 */
enum rp_status
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Success.
   */
  RP_STATUS_OK = 0,
  /**
   * Nothing can be done right now without blocking; try again later.
   */
  RP_STATUS_AGAIN = 1,
  /**
   * A deadline or timeout passed before the operation completed.
   */
  RP_STATUS_TIMEOUT = 2,
  /**
   * The connection or handle is closed (cleanly, by either side).
   */
  RP_STATUS_CLOSED = 3,
  /**
   * The buffer holds part of a frame; more bytes are needed. Nothing was consumed.
   */
  RP_STATUS_INCOMPLETE = 4,
  /**
   * A caller-provided output buffer is too small; the needed size was reported.
   */
  RP_STATUS_BUFFER_TOO_SMALL = 5,
  /**
   * The broker path is disabled by `RUNNING_PROCESS_DISABLE=1`; use your direct path.
   */
  RP_STATUS_DISABLED = 6,
  /**
   * The call was cancelled (by `rp_session_ticket_cancel`, or by the peer for a request being
   * served).
   */
  RP_STATUS_CANCELLED = 7,
  /**
   * A wait was interrupted by `rp_push_ticket_interrupt`, `rp_session_ticket_interrupt` or
   * `rp_session_request_interrupt`; the push, call or request goes on: wait again.
   */
  RP_STATUS_INTERRUPTED = 8,
  /**
   * A required pointer argument was NULL.
   */
  RP_STATUS_NULL_ARGUMENT = 10,
  /**
   * An argument is out of range or inconsistent.
   */
  RP_STATUS_INVALID_ARGUMENT = 11,
  /**
   * A string argument or field is not valid UTF-8.
   */
  RP_STATUS_INVALID_UTF8 = 12,
  /**
   * The named worker, queue or item does not exist.
   */
  RP_STATUS_NOT_FOUND = 13,
  /**
   * The peer or the bytes broke a rule of the protocol; also a TLS peer where plain TCP was
   * expected or the reverse, or a broken TLS stream (the message says which).
   */
  RP_STATUS_PROTOCOL = 20,
  /**
   * The first byte of a frame is not the v1 framing version.
   */
  RP_STATUS_UNSUPPORTED_FRAMING = 21,
  /**
   * A frame or message exceeds its size cap.
   */
  RP_STATUS_TOO_LARGE = 22,
  /**
   * The peer closed the stream in the middle of a frame.
   */
  RP_STATUS_TRUNCATED = 23,
  /**
   * A frame body or payload is not valid protobuf for its message.
   */
  RP_STATUS_MALFORMED = 24,
  /**
   * A frame arrived for a payload protocol the endpoint does not serve; fatal for the
   * connection.
   */
  RP_STATUS_UNSERVED_PROTOCOL = 25,
  /**
   * A first-party frame (control, admin, handoff) arrived on an endpoint that does not accept
   * it; fatal for the connection.
   */
  RP_STATUS_FIRST_PARTY_FRAME = 26,
  /**
   * An identity probe broke its rules (kind, encoding, nonce length); fatal for the connection.
   */
  RP_STATUS_MALFORMED_PROBE = 27,
  /**
   * The broker or server refused the request (its code and retry hint are readable).
   */
  RP_STATUS_REFUSED = 30,
  /**
   * The peer rejected a registration or handoff (its reason is readable).
   */
  RP_STATUS_REJECTED = 31,
  /**
   * The operation is not permitted: a peer of another user, an unsafe socket directory, or
   * the system refused access (EACCES/EPERM on a connect, a bind or a file); on TLS, a
   * certificate was refused (unknown CA, expired or not yet valid, wrong name, a client
   * certificate required and missing or untrusted; the message says which).
   */
  RP_STATUS_PERMISSION_DENIED = 32,
  /**
   * The peer answered a session call with an application error (code 1000 or more, or one
   * librp does not know); `rp_last_error_message` shows "peer error CODE: MESSAGE".
   */
  RP_STATUS_PEER_ERROR = 33,
  /**
   * An operating-system call failed.
   */
  RP_STATUS_IO = 40,
  /**
   * The configuration (environment or options) is invalid.
   */
  RP_STATUS_CONFIG = 41,
  /**
   * Memory for what a peer sent (a frame, a payload, a message) could not be allocated: the
   * connection ended, the process lives on.
   */
  RP_STATUS_NO_MEMORY = 42,
  /**
   * A bug inside librp was caught at the boundary; only `_free` is valid on the handle now.
   */
  RP_STATUS_PANIC = 90,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_status rp_status;
#else
typedef int32_t rp_status;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * How `rp_broker_connect` reached the backend (`rp_broker_result_route`).
 */
enum rp_broker_route
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Straight to the cached endpoint, without a Hello.
   */
  RP_BROKER_ROUTE_HELLO_SKIP = 0,
  /**
   * Hello to the broker, then a new connection to the negotiated `backend_pipe`.
   */
  RP_BROKER_ROUTE_NEGOTIATED = 1,
  /**
   * Hello to the broker, which handed that same connection to the backend.
   */
  RP_BROKER_ROUTE_HANDED_OFF = 2,
  /**
   * No route: what `rp_broker_result_route` returns for a NULL result.
   */
  RP_BROKER_ROUTE_NONE = -1,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_broker_route rp_broker_route;
#else
typedef int32_t rp_broker_route;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * How much a log event matters; `rp_log_set` delivers the events at or below (more severe
 * than or equal to) the level it is given.
 */
enum rp_log_level
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * No events (only as `rp_log_set`'s `max_level`).
   */
  RP_LOG_LEVEL_OFF = 0,
  /**
   * Something failed that librp cannot recover from on its own.
   */
  RP_LOG_LEVEL_ERROR = 1,
  /**
   * A peer was refused or misbehaved (protocol violation), a timeout passed, a worker was
   * lost, a registration was rejected.
   */
  RP_LOG_LEVEL_WARN = 2,
  /**
   * A connection, Hello or registration was accepted; a connection ended normally.
   */
  RP_LOG_LEVEL_INFO = 3,
  /**
   * Details for tracing a problem.
   */
  RP_LOG_LEVEL_DEBUG = 4,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_log_level rp_log_level;
#else
typedef int32_t rp_log_level;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What `rp_mux_poll` found at the front of the buffer (`rp_mux_event.kind`).
 */
enum rp_mux_event_kind
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Too few bytes to decide: read more and poll again. `consumed` is 0.
   */
  RP_MUX_EVENT_KIND_NEED_MORE_BYTES = 0,
  /**
   * The daemon's own wire: handle the bytes with the daemon's code. `consumed` is 0 (the
   * mux does not know the extent of legacy messages).
   */
  RP_MUX_EVENT_KIND_LEGACY = 1,
  /**
   * An identity probe: write `reply` back on the connection, then advance by `consumed`.
   */
  RP_MUX_EVENT_KIND_PROBE_ANSWERED = 2,
  /**
   * A frame of a served consumer protocol in `frame`: handle it, then advance by
   * `consumed`.
   */
  RP_MUX_EVENT_KIND_PAYLOAD = 3,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_mux_event_kind rp_mux_event_kind;
#else
typedef int32_t rp_mux_event_kind;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * A transition of a worker's connection, delivered to its event callback.
 */
enum rp_push_worker_event
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Connected and registered: once at connect (`attempt` 0), and after each successful
   * reconnect attempt (`attempt` is its number).
   */
  RP_PUSH_WORKER_EVENT_CONNECTED = 1,
  /**
   * The connection was lost (`status` `RP_STATUS_CLOSED`, `message` why). Its queued and
   * unanswered pushes are gone; reconnecting starts.
   */
  RP_PUSH_WORKER_EVENT_LOST = 2,
  /**
   * Attempt `attempt` (from 1) starts after `delay_ms`; `status`/`message` say why the
   * previous attempt failed (`RP_STATUS_OK` and "" for the first attempt after a loss).
   */
  RP_PUSH_WORKER_EVENT_RECONNECTING = 3,
  /**
   * The worker stopped after `attempt` failed attempts; `status`/`message` are the last
   * failure. The worker is closed: `rp_push_worker_recv` returns `RP_STATUS_CLOSED`.
   */
  RP_PUSH_WORKER_EVENT_GAVE_UP = 4,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_push_worker_event rp_push_worker_event;
#else
typedef int32_t rp_push_worker_event;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Where a payload-protocol id sits in the registry.
 */
enum rp_protocol_class
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * 0x0000, 0xAD01, 0xB232, 0xD0FF: owned by the broker; never a consumer protocol.
   */
  RP_PROTOCOL_CLASS_FIRST_PARTY = 0,
  /**
   * 0x5350, the SESSION data plane.
   */
  RP_PROTOCOL_CLASS_SESSION = 1,
  /**
   * 0x7000–0x7EFF: registered consumer protocols.
   */
  RP_PROTOCOL_CLASS_CONSUMER = 2,
  /**
   * 0xF000–0xFFFF: private use.
   */
  RP_PROTOCOL_CLASS_PRIVATE_USE = 3,
  /**
   * Any other id.
   */
  RP_PROTOCOL_CLASS_UNASSIGNED = 4,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_protocol_class rp_protocol_class;
#else
typedef int32_t rp_protocol_class;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Which end of the connection a session is; it decides the parity of its request ids.
 */
enum rp_session_side
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * The side that connected: its calls use odd request ids.
   */
  RP_SESSION_SIDE_CONNECTING = 0,
  /**
   * The side that accepted the connection: its calls use even request ids.
   */
  RP_SESSION_SIDE_ACCEPTING = 1,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_session_side rp_session_side;
#else
typedef int32_t rp_session_side;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Frame kinds (`rp_frame_view.kind`).
 */
enum rp_frame_kind
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * A request; answered by a RESPONSE with the same request id.
   */
  RP_FRAME_KIND_REQUEST = 0,
  /**
   * The answer to a REQUEST.
   */
  RP_FRAME_KIND_RESPONSE = 1,
  /**
   * A server-to-client push, or one chunk of a stream.
   */
  RP_FRAME_KIND_EVENT = 2,
  /**
   * Cancels the request with the same request id.
   */
  RP_FRAME_KIND_CANCEL = 3,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_frame_kind rp_frame_kind;
#else
typedef int32_t rp_frame_kind;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Payload encodings (`rp_frame_view.payload_encoding`).
 */
enum rp_payload_encoding
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * The payload is not compressed.
   */
  RP_PAYLOAD_ENCODING_NONE = 0,
  /**
   * zstd-compressed payload.
   */
  RP_PAYLOAD_ENCODING_ZSTD = 1,
  /**
   * Snappy-compressed payload.
   */
  RP_PAYLOAD_ENCODING_SNAPPY = 2,
  /**
   * LZ4-compressed payload.
   */
  RP_PAYLOAD_ENCODING_LZ4 = 3,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_payload_encoding rp_payload_encoding;
#else
typedef int32_t rp_payload_encoding;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What a legacy detector says about the buffered bytes (the return value of an
 * `rp_legacy_detect_callback`).
 */
enum rp_legacy_verdict
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Not the daemon's own wire: the mux goes on to classify the bytes as v1.
   */
  RP_LEGACY_VERDICT_NOT_LEGACY = 0,
  /**
   * The daemon's own wire: `rp_mux_poll` reports `RP_MUX_EVENT_KIND_LEGACY`.
   */
  RP_LEGACY_VERDICT_LEGACY = 1,
  /**
   * Cannot tell yet: `rp_mux_poll` reports `RP_MUX_EVENT_KIND_NEED_MORE_BYTES`.
   */
  RP_LEGACY_VERDICT_NEED_MORE = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_legacy_verdict rp_legacy_verdict;
#else
typedef int32_t rp_legacy_verdict;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * The protocol's `ErrorCode`: why a server refused (`rp_refusal_code`).
 */
enum rp_error_code
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * No code given.
   */
  RP_ERROR_CODE_UNSPECIFIED = 0,
  /**
   * The protocol or requested version is not supported.
   */
  RP_ERROR_CODE_VERSION_UNSUPPORTED = 1,
  /**
   * No such service.
   */
  RP_ERROR_CODE_SERVICE_UNKNOWN = 2,
  /**
   * The backend could not be started.
   */
  RP_ERROR_CODE_BACKEND_SPAWN_FAILED = 3,
  /**
   * Too many requests; see `rp_refusal_retry_after_ms`.
   */
  RP_ERROR_CODE_RATE_LIMITED = 4,
  /**
   * The server is shutting down.
   */
  RP_ERROR_CODE_SHUTTING_DOWN = 5,
  /**
   * This peer is not allowed (identity, credentials or token).
   */
  RP_ERROR_CODE_PEER_REJECTED = 6,
  /**
   * The server failed internally.
   */
  RP_ERROR_CODE_INTERNAL = 7,
  /**
   * The requested version is blocked by policy.
   */
  RP_ERROR_CODE_VERSION_BLOCKED = 8,
  /**
   * The server is short of descriptors.
   */
  RP_ERROR_CODE_FD_PRESSURE = 9,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_error_code rp_error_code;
#else
typedef int32_t rp_error_code;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * What a registration callback decides.
 */
enum rp_registration_verdict
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Register the worker.
   */
  RP_REGISTRATION_VERDICT_ACCEPT = 0,
  /**
   * Refuse it; the reason written to the callback's buffer is sent to the worker.
   */
  RP_REGISTRATION_VERDICT_REJECT = 1,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_registration_verdict rp_registration_verdict;
#else
typedef int32_t rp_registration_verdict;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * How the delay before each reconnect attempt is spread around its backoff
 * `b = min(max_delay_ms, min_delay_ms * 2^(n-1))`.
 */
enum rp_reconnect_jitter
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Uniform between `min_delay_ms` and `b` (the default): workers that lost the same server
   * spread out the most.
   */
  RP_RECONNECT_JITTER_FULL = 0,
  /**
   * `b/2` plus a uniform share of the other half (never below `min_delay_ms`).
   */
  RP_RECONNECT_JITTER_EQUAL = 1,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum rp_reconnect_jitter rp_reconnect_jitter;
#else
typedef int32_t rp_reconnect_jitter;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * An admin reply (0xAD01): kind, body, exit code, content type.
 *
 * Methods: `rp_admin_reply_kind`, `_body`, `_exit_code`, `_free`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_admin_reply rp_admin_reply;

/**
 * How to reach a backend through a broker.
 *
 * Methods: `rp_broker_options_new`, `_set_cached_endpoint`, `_set_client_version`,
 * `_set_keepalive_secs`, `_set_adopt_handoff`, `_set_timeout_ms`, `_set_honor_disable_env`,
 * `_set_tls`, `_free`; consumed by `rp_broker_connect`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_broker_options rp_broker_options;

/**
 * The outcome of `rp_broker_connect`: the route taken, the endpoint to cache, the negotiated
 * fields and the connection.
 *
 * Methods: `rp_broker_result_route`, `_endpoint`, `_daemon_version`, `_server_capabilities`,
 * `_keepalive_secs`, `_connection_id`, `_take_conn`, `_free`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_broker_result rp_broker_result;

/**
 * A running broker server (one event-loop thread for every connection).
 *
 * Methods: `rp_broker_server_bind`, `rp_broker_server_endpoint`,
 * `rp_broker_server_begin_shutdown`, `rp_broker_server_free`.
 *
 * Limits on what a peer sends (each refused with a reason naming it; docs/PROTOCOL.md):
 * the first frame is at most 64 KiB. Hello, refused with PEER_REJECTED: `service_name` 1-64
 * characters of `[a-z0-9-]`, `wanted_version` semver (pre-release `[a-z0-9.]`) of at most 64,
 * `client_version` at most 128 bytes, `client_lib_name` and `client_lib_version` at most 64,
 * `auth_token` and `capability_token` at most 1024, `request_id` and `peer_attestation_nonce`
 * at most 256. AdminRequest, answered with exit code 2: `service_name` at most 64 bytes,
 * `output_path` at most 4096.
 *
 * Functions taking `const rp_broker_server *` are thread-safe.
 */
typedef struct rp_broker_server rp_broker_server;

/**
 * How a broker server is set up: endpoint, service table, limits.
 *
 * Methods: `rp_broker_server_options_new`, `_add_service`, `_allow_version`, `_block_version`,
 * `_set_min_version`, `_set_handoff`, `_set_rate_limit`, `_set_max_connections`,
 * `_set_allow_other_uids`, `_set_socket_access`,
 * `_set_hello_timeout_ms`, `_set_handoff_ack_timeout_ms`, `_free`; consumed by
 * `rp_broker_server_bind`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_broker_server_options rp_broker_server_options;

/**
 * A framed connection to a backend (or any v1 peer).
 *
 * Methods: `rp_conn_send`, `rp_conn_recv`, `rp_conn_fd`, `rp_conn_peer_credentials`,
 * `rp_conn_close`, `rp_conn_free`.
 *
 * Functions taking `const rp_conn *` are thread-safe: one thread may wait in `rp_conn_recv`
 * while another sends or calls `rp_conn_close`, which wakes it with `RP_STATUS_CLOSED`.
 */
typedef struct rp_conn rp_conn;

/**
 * The identity of a daemon process: pid, canonical executable path, executable hash, boot id,
 * start time, optional idle timeout, the endpoint it serves, and the legacy SHA-256 slot.
 *
 * Methods: `rp_daemon_identity_new`, `rp_daemon_identity_new_current`, the
 * `rp_daemon_identity_set_*` setters, `rp_daemon_identity_encode`, `rp_daemon_identity_free`.
 * It is read (copied) by `rp_mux_new`; later changes do not affect a mux already created.
 *
 * Exclusive handle (Send): calls taking `rp_daemon_identity *` must be serialised by the caller.
 */
typedef struct rp_daemon_identity rp_daemon_identity;

/**
 * One received frame, owned.
 *
 * Methods: `rp_frame_view_of`, `rp_frame_free`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_frame rp_frame;

/**
 * A bounded store of one-time handoff tokens: each token is 128 random bits, lives for a time
 * to live, is accepted at most once, and is compared in constant time. Tokens are never
 * printed or put in error messages.
 *
 * Methods: `rp_handoff_store_new`, `rp_handoff_store_issue`, `rp_handoff_store_insert`,
 * `rp_handoff_serve_offer`, `rp_handoff_accept`, `rp_handoff_store_free`.
 *
 * Shared handle (Send + Sync): every function may run concurrently with the same store.
 */
typedef struct rp_handoff_store rp_handoff_store;

/**
 * A byte buffer owned by librp (an encoded frame, a received payload, ...).
 *
 * Methods: `rp_msg_data`, `rp_msg_len`, `rp_msg_free`.
 *
 * Exclusive handle (Send): the caller owns it and frees it with `rp_msg_free`.
 */
typedef struct rp_msg rp_msg;

/**
 * The multiplexer of one backend endpoint: classifies the bytes a daemon buffered on a
 * connection as need-more, legacy, an identity probe (answered), or a consumer frame, without
 * reading, writing or consuming anything.
 *
 * Methods: `rp_mux_new`, `rp_mux_poll`, `rp_mux_clone`, `rp_mux_free`.
 *
 * Shared handle (Send + Sync): immutable after creation; `rp_mux_poll` may run on many
 * threads at once with the same mux. Under the hood, an `Arc` of the Rust mux.
 */
typedef struct rp_mux rp_mux;

/**
 * One push received by a worker: correlation id, payload protocol, payload, deadline and trace
 * context.
 *
 * Methods: `rp_push_correlation_id`, `rp_push_payload_protocol`, `rp_push_payload`,
 * `rp_push_deadline_unix_ms`, `rp_push_traceparent`, `rp_push_tracestate`, `rp_push_free`.
 *
 * Exclusive handle (Send). Its views are valid until it is freed; reading them copies nothing.
 */
typedef struct rp_push rp_push;

/**
 * One job to push: payload protocol, payload, target, deadline and trace context.
 *
 * Methods: `rp_push_request_new`, `_set_deadline_unix_ms`, `_set_traceparent`,
 * `_set_tracestate`, `_to_worker`, `_to_task_queue`, `_to_protocol`, `_free`.
 * Exclusive handle (Send). Pushing copies it, so one request may be pushed many times.
 */
typedef struct rp_push_request rp_push_request;

/**
 * A worker's answer: a reply payload, or the worker's failure (code and message).
 *
 * Methods: `rp_push_result_is_failure`, `rp_push_result_payload`,
 * `rp_push_result_failure_code`, `rp_push_result_failure_message`, `rp_push_result_free`.
 */
typedef struct rp_push_result rp_push_result;

/**
 * A running push server: one event-loop thread serves every worker.
 *
 * Methods: `rp_push_server_bind`, `rp_push_server_endpoint`, `rp_push_server_push`,
 * `rp_push_server_push_wait`, `rp_push_server_workers`, `rp_push_server_dispatch`,
 * `rp_push_server_event_fd`, `rp_push_server_disconnect`, `rp_push_server_shutdown`,
 * `rp_push_server_free`.
 *
 * Functions taking `const rp_push_server *` are thread-safe. User callbacks never run on the
 * server's own thread: only inside `rp_push_server_dispatch`.
 */
typedef struct rp_push_server rp_push_server;

/**
 * How a push server is set up.
 *
 * Methods: `rp_push_server_options_new`, `_set_service`, `_set_allow_other_uids`, `_set_socket_access`,
 * `_set_allow_remote_tcp`, `_set_auth_token`, `_set_handshake_timeout_ms`,
 * `_set_frame_timeout_ms`, `_set_max_connections`, `_set_max_send_buffer`,
 * `_set_registration_callback`, `_set_worker_callback`, `_free`; consumed by
 * `rp_push_server_bind`. Exclusive handle (Send).
 */
typedef struct rp_push_server_options rp_push_server_options;

/**
 * An in-flight push. Methods: `rp_push_ticket_correlation_id`, `rp_push_ticket_is_done`,
 * `rp_push_ticket_wait`, `rp_push_ticket_free`. Thread-safe through `const`.
 */
typedef struct rp_push_ticket rp_push_ticket;

/**
 * A worker's connection to a push server.
 *
 * Methods: `rp_push_worker_connect`, `rp_push_worker_recv`, `rp_push_worker_reply`,
 * `rp_push_worker_reply_error`, `rp_push_worker_fd`, `rp_push_worker_set_handler`,
 * `rp_push_worker_dispatch`, `rp_push_worker_id`, `rp_push_worker_close`,
 * `rp_push_worker_free`.
 *
 * Functions taking `const rp_push_worker *` are thread-safe: one thread may wait in
 * `rp_push_worker_recv` while others reply or close. There is no background thread: the thread
 * that receives reads the socket itself (and so notices a lost connection). The one exception
 * is reconnecting (`rp_push_worker_options_set_reconnect`): while the connection is down, a
 * librp thread backs off and dials; it ends once connected again, given up, or closed.
 *
 * Flow control: the worker reads from the server only inside `rp_push_worker_recv` /
 * `_dispatch`, so it holds at most the pushes that arrived in one read. While the worker does
 * not receive, the server's buffer for it fills and further pushes to it fail with
 * `RP_STATUS_AGAIN` on the server side: nothing is dropped silently and memory stays bounded.
 */
typedef struct rp_push_worker rp_push_worker;

/**
 * One worker: id, registration, kernel-reported credentials, pushes in flight. Always
 * borrowed (from an `rp_push_worker_list` or a callback); never freed on its own.
 *
 * Methods: `rp_push_worker_info_id`, `_identity`, `_task_queue`, `_node`, `_namespace_count`,
 * `_namespace`, `_activity_type_count`, `_activity_type`, `_protocol_count`, `_protocol`,
 * `_peer`, `_tls_verified`, `_tls_subject`, `_tls_san_count`, `_tls_san`, `_in_flight`.
 */
typedef struct rp_push_worker_info rp_push_worker_info;

/**
 * The registered workers at one moment. Methods: `rp_push_worker_list_len`, `rp_push_worker_list_get`,
 * `rp_push_worker_list_free`.
 */
typedef struct rp_push_worker_list rp_push_worker_list;

/**
 * How a worker connects and what it registers as.
 *
 * Methods: `rp_push_worker_options_new`, `_add_namespace`, `_add_activity_type`, `_set_node`,
 * `_add_payload_protocol`, `_set_service`, `_set_connect_timeout_ms`, `_set_auth_token`,
 * `_set_reconnect`, `_set_reconnect_jitter`, `_set_event_callback`, `_set_tls_ca_pem`,
 * `_set_tls_ca_file`, `_set_tls_server_name`, `_set_tls_client_cert_pem`,
 * `_set_tls_client_cert_files`, `_free`; consumed by `rp_push_worker_connect`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_push_worker_options rp_push_worker_options;

/**
 * A server's refusal: code, reason, retry hint and details.
 *
 * Methods: `rp_refusal_code`, `rp_refusal_reason`, `rp_refusal_retry_after_ms`,
 * `rp_refusal_detail_count`, `rp_refusal_detail`, `rp_refusal_free`.
 *
 * Exclusive handle (Send): owned by the caller, freed with `rp_refusal_free`.
 */
typedef struct rp_refusal rp_refusal;

/**
 * One multiplexed session over a connection: calls in both directions, streams and tunnels.
 *
 * Methods: `rp_session_new`, `rp_session_connect`, `rp_session_listener_accept`,
 * `rp_session_call`, `rp_session_call_start`,
 * `rp_session_dispatch`, `rp_session_dispatch_fd`, `rp_session_side_of`, `rp_session_pending_calls`,
 * `rp_session_close`, `rp_session_free`.
 *
 * Under the hood it owns the connection and two threads: the reader, the only reader of the
 * connection, which routes each incoming frame to its call, stream or request queue, and an
 * answerer that writes librp's own error answers ("no dispatcher", deadline passed); neither
 * ever runs user code. Functions taking `const rp_session *` are thread-safe.
 */
typedef struct rp_session rp_session;

/**
 * Deadline and trace context of a call. Methods: `rp_session_call_options_new`,
 * `_set_deadline_unix_ms`, `_set_traceparent`, `_set_tracestate`, `_free`. Exclusive handle
 * (Send); calls copy it, so one options value may serve many calls.
 */
typedef struct rp_session_call_options rp_session_call_options;

/**
 * A listening socket whose connections become sessions on the accepting side.
 *
 * Methods: `rp_session_listener_bind`, `rp_session_listener_endpoint`,
 * `rp_session_listener_accept`, `rp_session_listener_close`, `rp_session_listener_free`.
 * Functions taking `const rp_session_listener *` are thread-safe.
 */
typedef struct rp_session_listener rp_session_listener;

/**
 * One of the peer's requests, given to the dispatcher callback.
 *
 * Methods: `rp_session_request_id`, `_protocol`, `_payload`, `_deadline_unix_ms`,
 * `_traceparent`, `_tracestate`, `_is_cancelled`, `_next_chunk`, `_send_chunk`,
 * `_close_write`, and to end it `rp_session_respond`, `rp_session_respond_error`,
 * `rp_session_request_free`. Thread-safe through `const` until it is ended.
 */
typedef struct rp_session_request rp_session_request;

/**
 * One call this side made, started by `rp_session_call_start`: wait for its response, read the chunks the peer
 * streams, write chunks of a tunnel, half-close, cancel.
 *
 * Methods: `rp_session_ticket_id`, `_is_done`, `_wait`, `_next_chunk`, `_send_chunk`,
 * `_close_write`, `_cancel`, `_free`. Thread-safe through `const`: one thread may wait while
 * another cancels.
 */
typedef struct rp_session_ticket rp_session_ticket;

/**
 * How a `tls://` server is verified and what the client presents: CA roots, the server name,
 * a client certificate for mutual TLS.
 *
 * Methods: `rp_tls_client_options_new`, `_set_ca_pem`, `_set_ca_file`, `_set_server_name`,
 * `_set_client_cert_pem`, `_set_client_cert_files`, `_free`; read (copied) by
 * `rp_session_connect_tls` and `rp_broker_options_set_tls`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_tls_client_options rp_tls_client_options;

/**
 * What a `tls://` listener presents and asks of its clients: certificate chain and key, and
 * optionally client CA roots (mutual TLS).
 *
 * Methods: `rp_tls_server_options_new`, `_set_cert_pem`, `_set_cert_files`,
 * `_set_client_ca_pem`, `_set_client_ca_file`, `_free`; read (copied) by
 * `rp_session_listener_bind_tls`.
 *
 * Exclusive handle (Send).
 */
typedef struct rp_tls_server_options rp_tls_server_options;

/**
 * A borrowed UTF-8 string: not NUL-terminated, no interior NUL guaranteed. `ptr` may be NULL
 * when `len` is 0. Print it with `printf("%.*s", (int)s.len, s.ptr)`.
 */
typedef struct rp_str {
  /**
   * First byte.
   */
  const char *ptr;
  /**
   * Length in bytes.
   */
  size_t len;
} rp_str;

/**
 * A borrowed byte range. `ptr` may be NULL when `len` is 0.
 *
 * Who owns the bytes and until when they live is stated wherever an `rp_bytes` appears.
 */
typedef struct rp_bytes {
  /**
   * First byte.
   */
  const uint8_t *ptr;
  /**
   * Number of bytes.
   */
  size_t len;
} rp_bytes;

/**
 * One v1 frame, with its byte fields borrowed.
 *
 * As an output (`rp_frame_decode`) its views point into the caller's buffer and stay valid
 * while that buffer is unchanged. As an input (`rp_frame_encode*`) the views are read during
 * the call only. Start from `rp_frame_view_init` so fields added later get their defaults.
 */
typedef struct rp_frame_view {
  /**
   * Envelope version; 1 for every frame librp builds.
   */
  uint32_t envelope_version;
  /**
   * One of `rp_frame_kind` (other values are carried as-is).
   */
  int32_t kind;
  /**
   * Payload protocol id (see `RP_PROTOCOL_*`).
   */
  uint32_t payload_protocol;
  /**
   * One of `rp_payload_encoding`.
   */
  int32_t payload_encoding;
  /**
   * Correlation id.
   */
  uint64_t request_id;
  /**
   * Absolute deadline in Unix milliseconds; 0 = none.
   */
  uint64_t deadline_unix_ms;
  /**
   * Payload bytes.
   */
  struct rp_bytes payload;
  /**
   * W3C traceparent; empty = none.
   */
  struct rp_str traceparent;
  /**
   * W3C tracestate; empty = none.
   */
  struct rp_str tracestate;
} rp_frame_view;

/**
 * Receives one log event.
 *
 * Parameters: `user_data` as registered; `level` — an `rp_log_level` (ERROR to DEBUG);
 * `component` — which part of librp speaks: `"push-server"`, `"push-worker"`, `"broker"`,
 * `"session"`; `message` — one line of UTF-8 text without a trailing newline. `component` and
 * `message` are NUL-terminated and borrowed: valid only until the callback returns.
 *
 * Called on the thread that noticed the event: the push server's or the broker server's
 * event-loop thread, a session's reader thread, or the application's own thread inside a
 * librp call (a connect, a push, a receive...). Several threads may call it at once, so it must
 * be thread-safe. No librp lock is held while it runs: it may call any librp function,
 * including `rp_log_set`; a librp call it makes may log in turn (so it runs nested). It must
 * return normally: it must not unwind (no C++ exception, no `longjmp`, no Go panic) out of
 * the callback — that aborts the process.
 */
typedef void (*rp_log_callback)(void *user_data,
                                rp_log_level level,
                                const char *component,
                                const char *message);

/**
 * `void (*user_data_free)(void *user_data)`.
 */
typedef void (*rp_user_data_free_callback)(void *user_data);

/**
 * Decides whether the bytes buffered on a connection belong to the daemon's own ("legacy")
 * wire.
 *
 * Parameters: `user_data` as given to `rp_mux_new`; `buf`, `len` the buffered bytes (never
 * empty: an empty buffer is answered without asking).
 *
 * Returns one of `rp_legacy_verdict`. Any other value makes `rp_mux_poll` fail with
 * `RP_STATUS_INVALID_ARGUMENT`.
 *
 * Called on the thread that calls `rp_mux_poll`, from within `rp_mux_poll`; when several
 * threads poll the same mux, it runs concurrently on each of them, so it must be thread-safe.
 * `buf` is borrowed: valid only until the callback returns. It must not free the mux.
 */
typedef int32_t (*rp_legacy_detect_callback)(void *user_data, const uint8_t *buf, size_t len);

/**
 * The verdict of one `rp_mux_poll`.
 */
typedef struct rp_mux_event {
  /**
   * One of `rp_mux_event_kind`.
   */
  rp_mux_event_kind kind;
  /**
   * Bytes to advance past once the event is handled (0 for need-more and legacy).
   */
  size_t consumed;
  /**
   * For `RP_MUX_EVENT_KIND_PAYLOAD`: the frame; its views point into the polled buffer and
   * are valid while that buffer is unchanged. Defaults (as `rp_frame_view_init`) otherwise.
   */
  struct rp_frame_view frame;
  /**
   * For `RP_MUX_EVENT_KIND_PROBE_ANSWERED`: the complete reply frame to write back. Owned by
   * librp, in a per-thread buffer: valid until the next `rp_mux_poll` on the same thread
   * (with any mux) or until the thread exits; copy it to keep it longer. `{NULL, 0}`
   * otherwise.
   */
  struct rp_bytes reply;
} rp_mux_event;

/**
 * Receives one transition of a worker's connection.
 *
 * Parameters: `user_data` as registered; `event` what happened; `attempt` the reconnect
 * attempt it concerns (0 for the first connection and a loss); `delay_ms` the wait before the
 * attempt (`RP_PUSH_WORKER_EVENT_RECONNECTING`; 0 otherwise); `status` the failure behind it
 * (`RP_STATUS_OK` when none); `message` why, NUL-terminated UTF-8, borrowed: valid only until
 * the callback returns ("" when none).
 *
 * Called on the thread that calls `rp_push_worker_recv` (or `rp_push_worker_dispatch`),
 * inside that call, in order, before it returns a push or a status: events that happened while
 * nobody received wait (at most 64, the oldest dropped first) and make `rp_push_worker_fd`
 * readable. No librp lock is held while it runs: it may call any function of the worker except
 * `rp_push_worker_free`. It must not unwind (no C++ exception, no `longjmp`, no Go panic).
 * Every transition is also logged (`rp_log_set`, component "push-worker").
 */
typedef void (*rp_push_worker_event_callback)(void *user_data,
                                              rp_push_worker_event event,
                                              uint32_t attempt,
                                              uint64_t delay_ms,
                                              rp_status status,
                                              const char *message);

/**
 * Handles one push inside `rp_push_worker_dispatch`.
 *
 * Parameters: `user_data` as registered; `worker` the worker (borrowed: valid for this call,
 * never freed here); `push` the push (borrowed: valid only until the callback returns — copy
 * what you keep, and remember `rp_push_correlation_id` to reply later).
 *
 * Returns `RP_STATUS_OK` (an `rp_status` value as an integer), or another status when the job
 * failed: if the push is still unanswered, librp then replies with a failure carrying that
 * status as its code.
 *
 * Called on the thread that calls `rp_push_worker_dispatch`, from within it. It may call
 * `rp_push_worker_reply` / `_reply_error` (now, or later from any thread) and other librp
 * functions; it must not call `rp_push_worker_dispatch`, `_set_handler` or `_free` on `worker`.
 */
typedef int32_t (*rp_push_worker_handler_callback)(void *user_data,
                                                   const struct rp_push_worker *worker,
                                                   const struct rp_push *push);

/**
 * Decides whether a worker may register. Without one, every registration is accepted.
 *
 * Parameters: `user_data` as registered; `worker` — what the worker asks to register as, and
 * its kernel-reported credentials (borrowed: valid only until the callback returns);
 * `reason`, `reason_cap` — a buffer for a NUL-terminated rejection reason.
 *
 * Returns an `rp_registration_verdict` as an integer; any other value rejects.
 *
 * Called on the thread that calls `rp_push_server_dispatch`, from within it. It may call other
 * librp functions but must not call `rp_push_server_dispatch` or `_free` on this server. The
 * worker waits for the decision (up to the server's handshake timeout).
 */
typedef int32_t (*rp_push_server_registration_callback)(void *user_data,
                                                        const struct rp_push_worker_info *worker,
                                                        char *reason,
                                                        size_t reason_cap);

/**
 * Learns that a worker registered (`connected` true) or went away (`connected` false, with
 * `reason`; its outstanding pushes have failed with `RP_STATUS_CLOSED`).
 *
 * `worker` and `reason` are borrowed: valid only until the callback returns. Called on the
 * thread that calls `rp_push_server_dispatch`, from within it, with the same limits as
 * `rp_push_server_registration_callback`.
 */
typedef void (*rp_push_server_worker_callback)(void *user_data,
                                               const struct rp_push_worker_info *worker,
                                               bool connected,
                                               struct rp_str reason);

/**
 * Serves one of the peer's requests.
 *
 * Parameters: `user_data` as registered; `request` — the request, **owned by the callback**
 * (unlike other handles passed to callbacks, because the answer may come later from another
 * thread): hand it to exactly one of `rp_session_respond`, `rp_session_respond_error` or
 * `rp_session_request_free`, now or later, from any thread. Its fields (payload, trace
 * context) stay valid until then.
 *
 * Called on the thread that calls `rp_session_dispatch`, from within it. It may call any librp
 * function, including `rp_session_call` on the same session (the answer is read by the
 * session's reader, not by this thread), but must not call `rp_session_free` on the session.
 * While it runs, this `rp_session_dispatch` serves no other request; answer slow requests from
 * another thread, or call `rp_session_dispatch` from several threads.
 */
typedef void (*rp_session_request_callback)(void *user_data, struct rp_session_request *request);

/**
 * What a push server did since it was bound. Read with `rp_push_server_get_stats`.
 *
 * Pushes add up: `pushes_sent = pushes_answered + pushes_failed + pushes_timed_out +
 * pushes_lost + pushes_in_flight`.
 */
typedef struct rp_push_server_stats {
  /**
   * Set to `sizeof(rp_push_server_stats)` before the call; librp writes back the bytes filled.
   */
  uint64_t size;
  /**
   * Connections accepted (before any check).
   */
  uint64_t connections_accepted;
  /**
   * Connections open now (handshaking, registered, or closing).
   */
  uint64_t connections_open;
  /**
   * Workers registered now.
   */
  uint64_t workers_registered;
  /**
   * Registrations accepted.
   */
  uint64_t registrations_accepted;
  /**
   * Registrations rejected (invalid, or by the registration callback).
   */
  uint64_t registrations_rejected;
  /**
   * Registered workers that went away before the server shut down (closed by the worker,
   * a failure, a protocol violation, a stall, or `rp_push_server_disconnect`).
   */
  uint64_t workers_lost;
  /**
   * Connections closed for not finishing Hello and registration within the handshake timeout.
   */
  uint64_t handshake_timeouts;
  /**
   * Connections closed for a protocol violation (an unexpected or malformed frame).
   */
  uint64_t protocol_violations;
  /**
   * Pushes waiting for their reply now.
   */
  uint64_t pushes_in_flight;
  /**
   * Pushes written to a worker.
   */
  uint64_t pushes_sent;
  /**
   * Pushes answered with a reply payload.
   */
  uint64_t pushes_answered;
  /**
   * Pushes answered with the worker's failure.
   */
  uint64_t pushes_failed;
  /**
   * Pushes that passed their deadline without a reply.
   */
  uint64_t pushes_timed_out;
  /**
   * Pushes whose worker disconnected (or the server shut down) before replying.
   */
  uint64_t pushes_lost;
  /**
   * Pushes never written: no matching worker, its send buffer full, its deadline already
   * passed, or too large.
   */
  uint64_t pushes_unsent;
  /**
   * Bytes read from workers.
   */
  uint64_t bytes_in;
  /**
   * Bytes written to workers.
   */
  uint64_t bytes_out;
  /**
   * Connections refused with PEER_REJECTED (another user's process, a wrong auth token,
   * invalid Hello fields).
   */
  uint64_t refused_peer_rejected;
  /**
   * Connections refused with RATE_LIMITED (too many connections, in all or from one user).
   */
  uint64_t refused_rate_limited;
  /**
   * Connections refused with SERVICE_UNKNOWN (the Hello asked for another service).
   */
  uint64_t refused_service_unknown;
  /**
   * Connections refused with VERSION_UNSUPPORTED (protocol or framing version).
   */
  uint64_t refused_version_unsupported;
  /**
   * Connections refused with SHUTTING_DOWN.
   */
  uint64_t refused_shutting_down;
  /**
   * Connections refused with any other code.
   */
  uint64_t refused_other;
} rp_push_server_stats;

/**
 * What one push worker (`rp_push_worker`) did since it connected. Read with
 * `rp_push_worker_get_stats`.
 */
typedef struct rp_push_worker_stats {
  /**
   * Set to `sizeof(rp_push_worker_stats)` before the call; librp writes back the bytes filled.
   */
  uint64_t size;
  /**
   * Pushes received from the server.
   */
  uint64_t pushes_received;
  /**
   * Pushes received and not yet taken by `rp_push_worker_recv` now.
   */
  uint64_t pushes_queued;
  /**
   * Pushes taken and not yet answered now.
   */
  uint64_t pushes_outstanding;
  /**
   * Replies sent with a payload (`rp_push_worker_reply`).
   */
  uint64_t replies_sent;
  /**
   * Replies sent with a failure (`rp_push_worker_reply_error`).
   */
  uint64_t failures_sent;
  /**
   * Pushes the server cancelled (their deadline passed).
   */
  uint64_t cancels_received;
  /**
   * Bytes read from the server after the registration.
   */
  uint64_t bytes_in;
  /**
   * Bytes of replies written to the server.
   */
  uint64_t bytes_out;
  /**
   * Times the worker connected and registered again after losing its connection
   * (`rp_push_worker_options_set_reconnect`).
   */
  uint64_t reconnects;
} rp_push_worker_stats;

/**
 * What a broker server did since it was bound. Read with `rp_broker_server_get_stats`; the
 * METRICS admin verb (`rp_admin_request`) reports the same numbers in OpenMetrics text.
 */
typedef struct rp_broker_server_stats {
  /**
   * Set to `sizeof(rp_broker_server_stats)` before the call; librp writes back the bytes filled.
   */
  uint64_t size;
  /**
   * Connections accepted (before any check).
   */
  uint64_t connections_accepted;
  /**
   * Connections open now (excluding those handed to a backend).
   */
  uint64_t connections_open;
  /**
   * Hellos answered with Negotiated.
   */
  uint64_t hellos_negotiated;
  /**
   * Admin requests answered (including the one asking for these numbers).
   */
  uint64_t admin_requests;
  /**
   * Connections closed for not sending their first frame within the Hello timeout.
   */
  uint64_t hello_timeouts;
  /**
   * Handoffs started (the client was offered one and its connection passed on).
   */
  uint64_t handoffs_started;
  /**
   * Handoffs the backend accepted.
   */
  uint64_t handoffs_accepted;
  /**
   * Handoffs that failed or the backend declined (the client was told to reconnect).
   */
  uint64_t handoffs_failed;
  /**
   * Hellos refused with PEER_REJECTED (another user's process, invalid Hello fields).
   */
  uint64_t refused_peer_rejected;
  /**
   * Hellos refused with RATE_LIMITED (Hello rate, or too many connections).
   */
  uint64_t refused_rate_limited;
  /**
   * Hellos refused with SERVICE_UNKNOWN.
   */
  uint64_t refused_service_unknown;
  /**
   * Hellos refused with VERSION_UNSUPPORTED.
   */
  uint64_t refused_version_unsupported;
  /**
   * Hellos refused with VERSION_BLOCKED.
   */
  uint64_t refused_version_blocked;
  /**
   * Hellos refused with SHUTTING_DOWN.
   */
  uint64_t refused_shutting_down;
  /**
   * Hellos refused with any other code.
   */
  uint64_t refused_other;
} rp_broker_server_stats;

/**
 * What one session did since it started. Read with `rp_session_get_stats`.
 */
typedef struct rp_session_stats {
  /**
   * Set to `sizeof(rp_session_stats)` before the call; librp writes back the bytes filled.
   */
  uint64_t size;
  /**
   * Calls this side started.
   */
  uint64_t calls_started;
  /**
   * Calls answered with a response payload.
   */
  uint64_t calls_succeeded;
  /**
   * Calls that ended otherwise (the peer's error, timeout, cancel, the session ended).
   */
  uint64_t calls_failed;
  /**
   * Of the failed calls, those whose deadline or wait limit passed.
   */
  uint64_t calls_timed_out;
  /**
   * Calls waiting for their outcome now.
   */
  uint64_t calls_pending;
  /**
   * Requests received from the peer.
   */
  uint64_t requests_received;
  /**
   * Requests answered by the application (`rp_session_respond`, `_respond_error`).
   */
  uint64_t requests_answered;
  /**
   * Requests answered by librp itself (no dispatcher, queue full, freed unanswered,
   * deadline passed on arrival).
   */
  uint64_t requests_auto_answered;
  /**
   * Requests waiting to be dispatched now.
   */
  uint64_t requests_queued;
} rp_session_stats;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Copies the text of the calling thread's most recent failure into `buf`.
 *
 * Semantics are those of `snprintf`: at most `cap - 1` bytes are copied and the result is
 * always NUL-terminated when `cap > 0`. `buf` may be NULL when `cap` is 0, to ask for the length.
 *
 * Returns the full length of the message in bytes, excluding the NUL (0 if no failure has been
 * recorded on this thread). The message is only meaningful right after a call on this thread
 * returned a status other than `RP_STATUS_OK`; successful calls do not clear it.
 *
 * Thread safety: reads thread-local state; may be called from any thread.
 */
size_t rp_last_error_message(char *buf, size_t cap);

/**
 * Creates options for `rp_broker_connect`.
 *
 * Parameters: `broker_endpoint` — a socket path or `@name`; `service_name` — the service
 * (1–64 characters of `[a-z0-9-]`); `wanted_version` — the backend version wanted (semver);
 * `own_version` — the caller's own version (hello-skip is tried only when it equals
 * `wanted_version`); `out_options` — receives the options.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (malformed endpoint, a service name or wanted version outside
 * its rule; the message states the rule).
 *
 * Ownership: the caller owns `*out_options`; `rp_broker_connect` consumes it, otherwise free it
 * with `rp_broker_options_free`.
 */
RP_NODISCARD
rp_status rp_broker_options_new(const char *broker_endpoint,
                                const char *service_name,
                                const char *wanted_version,
                                const char *own_version,
                                struct rp_broker_options **out_options);

/**
 * Sets the backend endpoint remembered from an earlier connect (`rp_broker_result_endpoint`),
 * for hello-skip. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_options_set_cached_endpoint(struct rp_broker_options *options,
                                                const char *endpoint);

/**
 * Sets how `tls://` endpoints are verified and the client certificate offered there: the
 * broker's, a cached one, or the `backend_pipe` the broker names (read and copied). Without
 * this call a `tls://` endpoint is verified against the system's CA roots. A connection over
 * TLS is never handed off (its TLS state cannot travel with the descriptor): over a `tls://`
 * broker endpoint no handoff is asked for, whatever `_set_adopt_handoff` says. Returns
 * `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_options_set_tls(struct rp_broker_options *options,
                                    const struct rp_tls_client_options *tls);

/**
 * Sets the informational client version sent in the Hello (≤ 128 bytes). Returns
 * `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (longer than 128 bytes).
 */
RP_NODISCARD
rp_status rp_broker_options_set_client_version(struct rp_broker_options *options,
                                               const char *client_version);

/**
 * Sets the proposed keepalive interval (0 = the broker chooses; the reference grants 1800).
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_broker_options_set_keepalive_secs(struct rp_broker_options *options, uint64_t secs);

/**
 * Opts in (or out) of adopting a handed-off connection, waiting up to `wait_ms` for the
 * broker's handoff-ready relay (a timeout: 0 = only a relay already there, -1 = no limit; the
 * default is 2000 ms). Any failure falls back to connecting to `backend_pipe`. Returns
 * `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (`wait_ms` below -1), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_options_set_adopt_handoff(struct rp_broker_options *options,
                                              bool adopt,
                                              int32_t wait_ms);

/**
 * Sets the limit for each connect and for the Hello round trip (default 5000 ms; 0 = do not
 * wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
 * -1), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_options_set_timeout_ms(struct rp_broker_options *options,
                                           int32_t timeout_ms);

/**
 * Makes `rp_broker_connect` honour `RUNNING_PROCESS_DISABLE`: `1` fails the connect with
 * `RP_STATUS_DISABLED` (use your direct path), another non-empty value with
 * `RP_STATUS_CONFIG`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_broker_options_set_honor_disable_env(struct rp_broker_options *options, bool honor);

/**
 * Frees options. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_broker_options_free(struct rp_broker_options *options);

/**
 * Reads `RUNNING_PROCESS_DISABLE`: `*out_disabled` is true for `1`, false when unset or empty.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (any other value; the message names it),
 * `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD rp_status rp_broker_disabled_by_env(bool *out_disabled);

/**
 * Connects to a backend for a service through the broker.
 *
 * Hello-skip to the cached endpoint when the versions match and it accepts the connection;
 * otherwise Hello → Negotiated, then (handoff negotiated and opted in) adopt the handed-off
 * connection, or connect to `backend_pipe`. Handoff failures fall back silently.
 *
 * Parameters: `options` — consumed by this call, even if an error is returned; `out_result`
 * — receives the result.
 *
 * Returns:
 * - `RP_STATUS_OK`.
 * - `RP_STATUS_REFUSED`: the broker refused; `rp_last_refusal` gives code, reason, retry hint
 *   and details.
 * - `RP_STATUS_DISABLED` / `RP_STATUS_CONFIG`: see `rp_broker_options_set_honor_disable_env`.
 * - `RP_STATUS_PROTOCOL`: the broker negotiated an empty `backend_pipe`, or broke the protocol;
 *   or a `tls://` endpoint does not speak TLS.
 * - `RP_STATUS_PERMISSION_DENIED`: a `tls://` endpoint's certificate was refused (unknown CA,
 *   expired or not yet valid, wrong name); see `rp_broker_options_set_tls`.
 * - `RP_STATUS_TIMEOUT`, `RP_STATUS_IO`, `RP_STATUS_INVALID_ARGUMENT` (a field the broker would
 *   refuse), `RP_STATUS_NULL_ARGUMENT`, framing errors.
 *
 * Blocks up to the options' timeouts. Ownership: the caller owns `*out_result`; free it with
 * `rp_broker_result_free`.
 */
RP_NODISCARD
rp_status rp_broker_connect(struct rp_broker_options *options,
                            struct rp_broker_result **out_result);

/**
 * The route taken (`RP_BROKER_ROUTE_NONE` if `result` is NULL).
 */
rp_broker_route rp_broker_result_route(const struct rp_broker_result *result);

/**
 * The backend endpoint to cache for hello-skip (pass it to
 * `rp_broker_options_set_cached_endpoint` next time). Borrowed: valid until `result` is
 * freed. Empty if `result` is NULL.
 */
struct rp_str rp_broker_result_endpoint(const struct rp_broker_result *result);

/**
 * `Negotiated.daemon_version` (empty after hello-skip). Borrowed: valid until `result` is
 * freed. Empty if `result` is NULL.
 */
struct rp_str rp_broker_result_daemon_version(const struct rp_broker_result *result);

/**
 * `Negotiated.server_capabilities` (0 after hello-skip or if `result` is NULL).
 */
uint64_t rp_broker_result_server_capabilities(const struct rp_broker_result *result);

/**
 * `Negotiated.keepalive_interval_secs` (0 after hello-skip or if `result` is NULL).
 */
uint64_t rp_broker_result_keepalive_secs(const struct rp_broker_result *result);

/**
 * `Negotiated.connection_id` (0 after hello-skip or if `result` is NULL).
 */
uint64_t rp_broker_result_connection_id(const struct rp_broker_result *result);

/**
 * Takes the backend connection out of the result (once).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NOT_FOUND` (already taken), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_conn`; free it with `rp_conn_free`. A connection never
 * taken is closed by `rp_broker_result_free`.
 */
RP_NODISCARD
rp_status rp_broker_result_take_conn(struct rp_broker_result *result,
                                     struct rp_conn **out_conn);

/**
 * Frees a result (closing a connection not taken). NULL is a no-op. Must not be called twice.
 */
void rp_broker_result_free(struct rp_broker_result *result);

/**
 * Sends one frame (its views are read during the call only).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED`, `RP_STATUS_TIMEOUT` (the peer did not read for
 * 30 s), `RP_STATUS_TOO_LARGE`, `RP_STATUS_IO`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`.
 *
 * Thread safety: may run concurrently with `rp_conn_recv` and `rp_conn_close`; concurrent
 * sends are serialised.
 */
RP_NODISCARD rp_status rp_conn_send(const struct rp_conn *conn, const struct rp_frame_view *frame);

/**
 * Sends `count` frames with one write where the socket allows: the way to stream many small
 * frames without a system call each (their views are read during the call only). The frames go
 * out in order and whole; on failure none may be assumed delivered.
 *
 * Returns as `rp_conn_send`; `frames` may be NULL when `count` is 0.
 *
 * Thread safety: as `rp_conn_send`.
 */
RP_NODISCARD
rp_status rp_conn_send_many(const struct rp_conn *conn,
                            const struct rp_frame_view *frames,
                            size_t count);

/**
 * Receives one frame, waiting up to `timeout_ms` (-1 = no limit, 0 = only what is here).
 *
 * Returns `RP_STATUS_OK` with `*out_frame` set; `RP_STATUS_TIMEOUT` (nothing complete in time;
 * partial bytes stay buffered); `RP_STATUS_CLOSED` (the peer closed, or `rp_conn_close`);
 * `RP_STATUS_TOO_LARGE`, `RP_STATUS_UNSUPPORTED_FRAMING`, `RP_STATUS_TRUNCATED`,
 * `RP_STATUS_MALFORMED`; `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_frame`; free it with `rp_frame_free`.
 * Thread safety: may run concurrently with `rp_conn_send` and `rp_conn_close`.
 */
RP_NODISCARD
rp_status rp_conn_recv(const struct rp_conn *conn,
                       int32_t timeout_ms,
                       struct rp_frame **out_frame);

/**
 * Receives up to `capacity` frames without copying them: waits up to `timeout_ms` (-1 =
 * no limit, 0 = only what is here) for the first, then takes every further frame already
 * received, and writes one view per frame to `views`. The way to read a stream of small frames
 * without a system call, an allocation or a copy per frame.
 *
 * Returns `RP_STATUS_OK` with `*out_count` (1..=`capacity`) views written; otherwise as
 * `rp_conn_recv` (`*out_count` is then 0), plus `RP_STATUS_INVALID_ARGUMENT` if `capacity` is 0.
 * A frame that fails to decode after others were returned is reported by the next receive.
 *
 * Ownership: the views borrow the connection's read buffer. They stay valid until the next
 * `rp_conn_recv` or `rp_conn_recv_views` on this connection, or `rp_conn_free`; copy what
 * must outlive that.
 * Thread safety: as `rp_conn_recv`, but only one thread should receive while it holds views.
 */
RP_NODISCARD
rp_status rp_conn_recv_views(const struct rp_conn *conn,
                             int32_t timeout_ms,
                             struct rp_frame_view *views,
                             size_t capacity,
                             size_t *out_count);

/**
 * A descriptor for poll/epoll loops, readable exactly while `rp_conn_recv` would return without
 * waiting: a frame is here (also one an earlier receive already took off the socket and
 * buffered, or, over TLS, decrypted and held by the connection), or the connection ended. Level-triggered: one `rp_conn_recv` with timeout 0 per
 * wake-up loses nothing, and nothing pending means not readable. It may also be readable for
 * part of a frame (`rp_conn_recv` with timeout 0 then returns `RP_STATUS_TIMEOUT`).
 *
 * Not the socket: watch it for readability only; never read, write or close it. Owned by the
 * connection, the same descriptor for its lifetime; made on the first call (which never waits
 * for a receive in progress). -1 if `conn` is NULL or the descriptor could not be made (out of
 * descriptors).
 */
int32_t rp_conn_fd(const struct rp_conn *conn);

/**
 * The peer's kernel-reported credentials (Unix sockets).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NOT_FOUND` (none: a TCP connection), or
 * `RP_STATUS_NULL_ARGUMENT` (any of the pointers).
 */
RP_NODISCARD
rp_status rp_conn_peer_credentials(const struct rp_conn *conn,
                                   uint32_t *out_pid,
                                   uint32_t *out_uid,
                                   uint32_t *out_gid);

/**
 * Closes the connection: a blocked `rp_conn_recv` returns `RP_STATUS_CLOSED`, later calls fail
 * the same way. Idempotent; callable from any thread. NULL is a no-op.
 */
void rp_conn_close(const struct rp_conn *conn);

/**
 * Makes a librp connection of a connected Unix stream socket — for example the descriptor
 * `rp_handoff_accept` adopted — so it can send and receive frames with `rp_conn_*`.
 *
 * Parameters: `fd` — consumed on every path: the connection owns it afterwards, and it is
 * closed if this call fails (a negative `fd` is only rejected); `out_conn` — receives the
 * connection.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (negative `fd`), `RP_STATUS_IO`,
 * `RP_STATUS_NULL_ARGUMENT` (then `fd` is closed too).
 *
 * On Windows `fd` is a connected named-pipe `HANDLE` opened for overlapped I/O, as
 * `(int32_t)(intptr_t)handle` — for example the server end a broker duplicated into this
 * process, whose value its HandoffOffer carries in `handle_value`.
 *
 * Ownership: the caller owns `*out_conn`; free it with `rp_conn_free`, which closes `fd`.
 */
RP_NODISCARD rp_status rp_conn_adopt_fd(int32_t fd, struct rp_conn **out_conn);

/**
 * Closes and frees a connection. NULL is a no-op. Must not be called twice, nor while another
 * thread still uses `conn`.
 */
void rp_conn_free(struct rp_conn *conn);

/**
 * Fills `*out_view` with borrowed views of a received frame, valid until `frame` is freed.
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_frame_view_of(const struct rp_frame *frame,
                           struct rp_frame_view *out_view);

/**
 * Frees a received frame. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_frame_free(struct rp_frame *frame);

/**
 * Sends one admin request (payload protocol 0xAD01) on a new connection to `endpoint` and
 * waits up to `timeout_ms` for the reply (0 = only a reply already there, -1 = no limit).
 *
 * Parameters: `verb` — an `AdminVerb` value (STATUS 1, HEALTHZ 4, READYZ 5, SHUTDOWN 21, ...);
 * `service_name` — may be NULL (none).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_TIMEOUT`, `RP_STATUS_CLOSED`, `RP_STATUS_IO`,
 * `RP_STATUS_PROTOCOL`, `RP_STATUS_MALFORMED`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
 * -1), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 *
 * Ownership: the caller owns `*out_reply`; free it with `rp_admin_reply_free`.
 */
RP_NODISCARD
rp_status rp_admin_request(const char *endpoint,
                           int32_t verb,
                           const char *service_name,
                           int32_t timeout_ms,
                           struct rp_admin_reply **out_reply);

/**
 * The reply's kind (TEXT 0, JSON 1, OPENMETRICS 2); -1 if `reply` is NULL.
 */
int32_t rp_admin_reply_kind(const struct rp_admin_reply *reply);

/**
 * The reply's exit code (0 = success); `UINT32_MAX` if `reply` is NULL.
 */
uint32_t rp_admin_reply_exit_code(const struct rp_admin_reply *reply);

/**
 * The reply's body. Borrowed: valid until `reply` is freed. Empty if `reply` is NULL.
 */
struct rp_str rp_admin_reply_body(const struct rp_admin_reply *reply);

/**
 * Frees an admin reply. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_admin_reply_free(struct rp_admin_reply *reply);

/**
 * Creates broker server options for `endpoint` (a socket path or `@name`; a path socket is
 * made 0600 in a 0700 directory) with an empty service table.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_options`; `rp_broker_server_bind` consumes it, otherwise
 * free it with `rp_broker_server_options_free`.
 */
RP_NODISCARD
rp_status rp_broker_server_options_new(const char *endpoint,
                                       struct rp_broker_server_options **out_options);

/**
 * Adds (or replaces) a service: Hellos for `service_name` are answered with Negotiated
 * carrying `backend_pipe` and `daemon_version`.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (a name outside 1–64 characters of `[a-z0-9-]`, a
 * `daemon_version` over 64 bytes or a `backend_pipe` over 4096 bytes).
 */
RP_NODISCARD
rp_status rp_broker_server_options_add_service(struct rp_broker_server_options *options,
                                               const char *service_name,
                                               const char *backend_pipe,
                                               const char *daemon_version);

/**
 * Adds `version` to the service's allow list (once the list is non-empty, other wanted
 * versions are refused with VERSION_BLOCKED and a 30000 ms retry hint, as the reference
 * broker does). Returns `RP_STATUS_OK`,
 * `RP_STATUS_NOT_FOUND` (no such service), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (a version outside the rule `MAJOR.MINOR.PATCH[-suffix]`; the
 * message states it).
 */
RP_NODISCARD
rp_status rp_broker_server_options_allow_version(struct rp_broker_server_options *options,
                                                 const char *service_name,
                                                 const char *version);

/**
 * Blocks `version` for the service (refused with VERSION_BLOCKED). Returns as
 * `rp_broker_server_options_allow_version`.
 */
RP_NODISCARD
rp_status rp_broker_server_options_block_version(struct rp_broker_server_options *options,
                                                 const char *service_name,
                                                 const char *version);

/**
 * Sets the service's minimum version: lower wanted versions are refused with VERSION_BLOCKED
 * and a 30 s retry hint. Returns as `rp_broker_server_options_allow_version`.
 */
RP_NODISCARD
rp_status rp_broker_server_options_set_min_version(struct rp_broker_server_options *options,
                                                   const char *service_name,
                                                   const char *version);

/**
 * Offers handoff for the service: capable clients get a one-time token, and their
 * connection is passed (by SCM_RIGHTS with the 16 token bytes, then a HandoffOffer; on
 * Windows a duplicated handle named in the offer) to the backend listening on
 * `handoff_endpoint`; the backend's HandoffAck is relayed to the client. Every issued token is
 * also put in `store` when it is not NULL (a backend in this process accepts offers with
 * `rp_handoff_accept` on the same store); the options keep their own reference to `store`.
 *
 * Returns as `rp_broker_server_options_allow_version`, plus `RP_STATUS_INVALID_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_server_options_set_handoff(struct rp_broker_server_options *options,
                                               const char *service_name,
                                               const char *handoff_endpoint,
                                               const struct rp_handoff_store *store);

/**
 * Sets the per-peer-uid Hello rate limit: at most `max_hellos` per `window_ms` (defaults 256
 * per 1000 ms); more are refused with RATE_LIMITED and a retry hint. Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_broker_server_options_set_rate_limit(struct rp_broker_server_options *options,
                                                  uint32_t max_hellos,
                                                  uint32_t window_ms);

/**
 * Accepts peers of other users when `allow` is true (default false: refused with
 * `PEER_REJECTED`). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_broker_server_options_set_allow_other_uids(struct rp_broker_server_options *options,
                                                        bool allow);

/**
 * Lets one group reach a path socket's file: `mode` its permission bits (0600 by default;
 * 0660 gives the group read-write, which connecting needs; never bits for others), `group` its
 * group id (-1 keeps the process's group). A socket directory librp creates is then 0710 with
 * that group (the group may pass through, not list it); an existing one must let the group
 * pass (0710 or 0750 with that group), or binding fails with `RP_STATUS_PERMISSION_DENIED`. Only
 * root or a member of the group can give a file to it (`RP_STATUS_PERMISSION_DENIED`
 * otherwise, when the server binds). Group members are other users: allow other uids too.
 * Abstract and TCP endpoints have no file and ignore this.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (a mode with
 * bits for others or without owner read-write, a group outside -1..=4294967294).
 */
RP_NODISCARD
rp_status rp_broker_server_options_set_socket_access(struct rp_broker_server_options *options,
                                                     uint32_t mode,
                                                     int64_t group);

/**
 * Sets the most connections at once (default 4096) and the most from one peer uid (default
 * 2048), so one user cannot take them all; more are refused with RATE_LIMITED and a retry
 * hint (detail `scope` = `peer-uid` for the per-uid limit). Clients that already left are
 * closed first when a limit is reached. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_broker_server_options_set_max_connections(struct rp_broker_server_options *options,
                                                       size_t total,
                                                       size_t per_uid);

/**
 * Sets how long a connection has to send its first frame (default 5000 ms; 0 = none: only a
 * frame already there counts, -1 = no limit). Returns `RP_STATUS_OK`,
 * `RP_STATUS_INVALID_ARGUMENT` (a timeout below -1), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_server_options_set_hello_timeout_ms(struct rp_broker_server_options *options,
                                                        int32_t timeout_ms);

/**
 * Sets how long the broker waits for a backend's HandoffAck (default 1500 ms; 0 = do not
 * wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below
 * -1), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_broker_server_options_set_handoff_ack_timeout_ms(struct rp_broker_server_options *options,
                                                              int32_t timeout_ms);

/**
 * Frees server options. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_broker_server_options_free(struct rp_broker_server_options *options);

/**
 * Binds the endpoint and starts serving on a new thread.
 *
 * Parameters: `options` — consumed by this call, even if an error is returned; `out_server`
 * — receives the server.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a bad service table or a TCP
 * endpoint), `RP_STATUS_PERMISSION_DENIED` (unsafe socket directory), `RP_STATUS_IO` (for
 * example a live server already there), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_server`; free it with `rp_broker_server_free`.
 */
RP_NODISCARD
rp_status rp_broker_server_bind(struct rp_broker_server_options *options,
                                struct rp_broker_server **out_server);

/**
 * The endpoint actually bound. Borrowed: valid until `server` is freed. Empty if NULL.
 */
struct rp_str rp_broker_server_endpoint(const struct rp_broker_server *server);

/**
 * From now on every Hello is refused with SHUTTING_DOWN (as after the admin verb SHUTDOWN);
 * the server keeps running until freed. Thread-safe. NULL is a no-op.
 */
void rp_broker_server_begin_shutdown(const struct rp_broker_server *server);

/**
 * Stops the server (closing every connection, removing the socket file, waiting for its
 * thread) and frees it. NULL is a no-op. Must not be called twice, nor while another thread
 * uses `server`.
 */
void rp_broker_server_free(struct rp_broker_server *server);

/**
 * The bytes of a message.
 *
 * Returns a pointer to `rp_msg_len(msg)` bytes, valid until `msg` is freed; NULL if `msg` is NULL.
 *
 * Thread safety: may be called concurrently with other reads of the same `msg`.
 */
const uint8_t *rp_msg_data(const struct rp_msg *msg);

/**
 * The length of a message in bytes; 0 if `msg` is NULL.
 *
 * Thread safety: may be called concurrently with other reads of the same `msg`.
 */
size_t rp_msg_len(const struct rp_msg *msg);

/**
 * Frees a message. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_msg_free(struct rp_msg *msg);

/**
 * Sets every field of `frame` to its default: envelope version 1, kind REQUEST, protocol 0,
 * no payload, request id 0, no encoding, no deadline, no trace context.
 *
 * Returns `RP_STATUS_OK`, or `RP_STATUS_NULL_ARGUMENT` if `frame` is NULL.
 */
rp_status rp_frame_view_init(struct rp_frame_view *frame);

/**
 * Decodes the frame at the front of `buf` without copying it.
 *
 * Parameters:
 * - `buf`, `len`: the bytes received so far (`buf` may be NULL when `len` is 0).
 * - `max_body`: the body cap in force; 0 means `RP_FRAME_MAX_BODY`. Use `RP_HELLO_MAX_BODY` for
 *   a connection's first frame. Values above `RP_FRAME_MAX_BODY` are invalid.
 * - `out_frame`: receives the frame; its views point into `buf`.
 * - `out_len`: on `RP_STATUS_OK`, the bytes the frame occupies (advance `buf` by this much);
 *   on `RP_STATUS_INCOMPLETE`, the total number of bytes needed before trying again (at least).
 *
 * Returns:
 * - `RP_STATUS_OK`: a complete frame was decoded.
 * - `RP_STATUS_INCOMPLETE`: `buf` holds a partial frame; nothing is consumed, `out_frame` is
 *   not written.
 * - `RP_STATUS_UNSUPPORTED_FRAMING`: the first byte is not `RP_FRAMING_VERSION`.
 * - `RP_STATUS_TOO_LARGE`: the header announces a body above the cap (decided from the header
 *   alone; nothing is allocated).
 * - `RP_STATUS_MALFORMED`: the body is not a valid `Frame` protobuf.
 * - `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT`.
 *
 * The three framing errors are fatal for a connection.
 *
 * Ownership: `out_frame`'s views borrow `buf`; they are valid while `buf` is unchanged.
 * Never allocates. Thread safety: reentrant.
 */
RP_NODISCARD
rp_status rp_frame_decode(const uint8_t *buf,
                          size_t len,
                          uint32_t max_body,
                          struct rp_frame_view *out_frame,
                          size_t *out_len);

/**
 * Encodes `frame` (header and body) into a caller buffer.
 *
 * Parameters:
 * - `frame`: the fields; views are read during the call only. Strings must be UTF-8.
 * - `buf`, `cap`: the output buffer (`buf` may be NULL when `cap` is 0, to ask for the size).
 * - `out_len`: on `RP_STATUS_OK`, the bytes written; on `RP_STATUS_BUFFER_TOO_SMALL`, the bytes
 *   needed.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_BUFFER_TOO_SMALL` (nothing written to `buf`),
 * `RP_STATUS_TOO_LARGE` (body above `RP_FRAME_MAX_BODY`), `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: reentrant. Never allocates.
 */
RP_NODISCARD
rp_status rp_frame_encode(const struct rp_frame_view *frame,
                          uint8_t *buf,
                          size_t cap,
                          size_t *out_len);

/**
 * Encodes `frame` (header and body) into a new library-owned message.
 *
 * Parameters: `frame` as for `rp_frame_encode`; `out_msg` receives the message on success.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_msg` and frees it with `rp_msg_free`.
 * Thread safety: reentrant.
 */
RP_NODISCARD
rp_status rp_frame_encode_msg(const struct rp_frame_view *frame,
                              struct rp_msg **out_msg);

/**
 * Creates a token store.
 *
 * Parameters: `max_pending` the most tokens pending at once (0 = 1024); `ttl_ms` the time to
 * live of each token in milliseconds (0 = 30000); `out_store` receives the store on success.
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: on success the caller owns `*out_store` (written only on success); free it with
 * `rp_handoff_store_free`.
 */
RP_NODISCARD
rp_status rp_handoff_store_new(uint32_t max_pending,
                               uint32_t ttl_ms,
                               const struct rp_handoff_store **out_store);

/**
 * Issues a fresh random token (from the OS random source) and stores it.
 *
 * Parameters: `out_token`, `cap`: receives the `RP_HANDOFF_TOKEN_LEN` token bytes; `cap` must
 * be at least `RP_HANDOFF_TOKEN_LEN`.
 *
 * Returns `RP_STATUS_OK`; `RP_STATUS_AGAIN` when the store is full of unexpired tokens;
 * `RP_STATUS_BUFFER_TOO_SMALL`; `RP_STATUS_IO`; `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: may run concurrently with any other call on the store.
 */
RP_NODISCARD
rp_status rp_handoff_store_issue(const struct rp_handoff_store *store,
                                 uint8_t *out_token,
                                 size_t cap);

/**
 * Adds a token issued elsewhere (for example one agreed with the broker).
 *
 * Parameters: `token`, `len`: exactly `RP_HANDOFF_TOKEN_LEN` bytes (copied).
 *
 * Returns `RP_STATUS_OK`; `RP_STATUS_AGAIN` when the store is full; `RP_STATUS_INVALID_ARGUMENT`
 * for another length; `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: may run concurrently with any other call on the store.
 */
RP_NODISCARD
rp_status rp_handoff_store_insert(const struct rp_handoff_store *store,
                                  const uint8_t *token,
                                  size_t len);

/**
 * Serves one handoff offer on a framed control connection: reads exactly one HandoffOffer
 * frame from `fd`, checks request id = correlation id, checks and consumes the token, and
 * writes the HandoffAck (accepted, or rejected with the reason: always a well-formed ack).
 *
 * Parameters: `store`; `fd` a connected stream socket (blocking or not; its mode and options
 * are not changed); `timeout_ms` the deadline for the whole exchange (-1 = none, 0 = do not
 * wait); `out_accepted` receives whether the token was accepted; `out_correlation_id` (may be NULL)
 * receives the offer's correlation id.
 *
 * Returns `RP_STATUS_OK` when an ack was written (check `*out_accepted`; after a rejection
 * `rp_last_error_message` is not set); `RP_STATUS_TIMEOUT`; `RP_STATUS_CLOSED`,
 * `RP_STATUS_TRUNCATED`; `RP_STATUS_PROTOCOL` / `RP_STATUS_MALFORMED` /
 * `RP_STATUS_UNSUPPORTED_FRAMING` / `RP_STATUS_TOO_LARGE` when the frame is not a valid
 * offer (no ack is written); `RP_STATUS_IO`; `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_ARGUMENT`.
 *
 * Thread safety: may run concurrently with other calls on the store; `fd` must not be read
 * by anyone else meanwhile.
 */
RP_NODISCARD
rp_status rp_handoff_serve_offer(const struct rp_handoff_store *store,
                                 int32_t fd,
                                 int32_t timeout_ms,
                                 bool *out_accepted,
                                 uint64_t *out_correlation_id);

/**
 * Receives a handed-off connection on the Unix stream socket `fd`: the connection's
 * descriptor by `SCM_RIGHTS` with the 16 token bytes alone as the message's data, then a
 * HandoffOffer frame carrying that token (as librp's and running-process's brokers send it;
 * the descriptor with the offer's first bytes, as earlier librp brokers sent it, is taken
 * too); answers the offer with a HandoffAck on `fd`; on acceptance gives the adopted
 * descriptor to the caller.
 *
 * Parameters: `store`; `fd` the Unix socket the broker hands connections over; `timeout_ms`
 * the deadline for the whole exchange (-1 = none, 0 = do not wait); `out_fd` receives the
 * adopted connection (close-on-exec) on `RP_STATUS_OK` only.
 *
 * Returns `RP_STATUS_OK`; `RP_STATUS_REJECTED` when the token was refused, judged as
 * running-process's backend judges it (the token sent with the descriptor not pending, or
 * expired; the offer presenting another token, or one not 16 bytes long; request id !=
 * correlation id): the ack said so, the received descriptor was closed, and
 * `rp_last_error_message` gives the reason; `RP_STATUS_TIMEOUT`; `RP_STATUS_CLOSED`;
 * `RP_STATUS_PROTOCOL` (no descriptor, several descriptors, a truncated control message, not
 * an offer: no ack then); `RP_STATUS_MALFORMED`; `RP_STATUS_IO`;
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT`. On every failure, every
 * descriptor received is closed.
 *
 * On Windows there is no `SCM_RIGHTS`: `fd` is the pipe (`HANDLE`) the broker's offer comes
 * on, the offer's `handle_value` is the connection's pipe handle as the broker duplicated it
 * into this process (`DuplicateHandle`), and `*out_fd` receives that handle, adopted, as
 * `(int32_t)(intptr_t)handle` (close it with `CloseHandle`, or give it to `rp_conn_adopt_fd`).
 * An offer whose `handle_value` is not a pipe handle here fails with `RP_STATUS_PROTOCOL`
 * before any ack.
 *
 * Ownership: the caller owns `*out_fd` and closes it with `close()`.
 * Thread safety: may run concurrently with other calls on the store; `fd` must not be read
 * by anyone else meanwhile.
 */
RP_NODISCARD
rp_status rp_handoff_accept(const struct rp_handoff_store *store,
                            int32_t fd,
                            int32_t timeout_ms,
                            int32_t *out_fd);

/**
 * Drops one reference to a token store. NULL is a no-op. Must not be called twice with the
 * same reference.
 */
void rp_handoff_store_free(const struct rp_handoff_store *store);

/**
 * Creates an empty identity to fill field by field (for daemons that know their identity
 * better than `/proc` does): pid 0, empty strings, no idle timeout, `exe_hash_algorithm`
 * "blake3" with an empty hash, and a zero legacy slot.
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: on success the caller owns `*out_identity`; free it with
 * `rp_daemon_identity_free`. `*out_identity` is written only on success.
 */
RP_NODISCARD rp_status rp_daemon_identity_new(struct rp_daemon_identity **out_identity);

/**
 * Builds the identity of the calling process serving the endpoint
 * `endpoint_namespace`:`endpoint_path`, as a strict prober checks it: pid, canonical path of
 * `/proc/self/exe`, its BLAKE3 hash, `/proc/sys/kernel/random/boot_id`, and the process start
 * time. No idle timeout (set one with `rp_daemon_identity_set_idle_timeout_secs`).
 *
 * Parameters:
 * - `endpoint_namespace`, `endpoint_path`: NUL-terminated UTF-8; the path is the endpoint
 *   probers connect to.
 * - `flags`: 0, or `RP_DAEMON_IDENTITY_LEGACY_SHA256` to fill the legacy slot with the
 *   SHA-256 of the executable (zeros otherwise).
 * - `out_identity`: receives the identity on success.
 *
 * Returns `RP_STATUS_OK`; `RP_STATUS_IO` when `/proc` cannot be read (Linux only);
 * `RP_STATUS_INVALID_ARGUMENT` for unknown flags; `RP_STATUS_INVALID_UTF8`;
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Reads and hashes the whole executable: call it once at start-up, not per connection.
 *
 * Ownership: on success the caller owns `*out_identity`; free it with
 * `rp_daemon_identity_free`. `*out_identity` is written only on success.
 * Thread safety: may be called from any thread.
 */
RP_NODISCARD
rp_status rp_daemon_identity_new_current(const char *endpoint_namespace,
                                         const char *endpoint_path,
                                         uint32_t flags,
                                         struct rp_daemon_identity **out_identity);

/**
 * Sets the process id.
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_daemon_identity_set_pid(struct rp_daemon_identity *identity, uint32_t pid);

/**
 * Sets the canonical absolute path of the executable (NUL-terminated UTF-8; copied).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_daemon_identity_set_exe_path(struct rp_daemon_identity *identity,
                                          const char *exe_path);

/**
 * Sets the endpoint the daemon serves (NUL-terminated UTF-8 strings; copied).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_daemon_identity_set_endpoint(struct rp_daemon_identity *identity,
                                          const char *endpoint_namespace,
                                          const char *endpoint_path);

/**
 * Sets when the process started, in Unix milliseconds.
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_daemon_identity_set_started_at_unix_ms(struct rp_daemon_identity *identity,
                                                    uint64_t started_at_unix_ms);

/**
 * Sets the boot id (NUL-terminated UTF-8, as in `/proc/sys/kernel/random/boot_id` without
 * the newline; copied).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_daemon_identity_set_boot_id(struct rp_daemon_identity *identity,
                                         const char *boot_id);

/**
 * Sets the idle timeout the daemon reports (it is present in replies from now on, even 0).
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_daemon_identity_set_idle_timeout_secs(struct rp_daemon_identity *identity,
                                                   uint32_t idle_timeout_secs);

/**
 * Removes the idle timeout (the field is then absent from replies).
 *
 * Returns `RP_STATUS_OK` or `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_daemon_identity_clear_idle_timeout(struct rp_daemon_identity *identity);

/**
 * Sets the executable hash and its algorithm name (strict probers require "blake3" and the
 * 32-byte BLAKE3 of the file). Both are copied.
 *
 * Parameters: `algorithm` NUL-terminated UTF-8; `hash`, `hash_len` the digest (`hash` may be
 * NULL when `hash_len` is 0).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_UTF8` or `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_daemon_identity_set_exe_hash(struct rp_daemon_identity *identity,
                                          const char *algorithm,
                                          const uint8_t *hash,
                                          size_t hash_len);

/**
 * Sets the legacy SHA-256 slot appended to probe replies.
 *
 * Parameters: `sha256`, `len`: exactly 32 bytes, or (NULL, 0) for 32 zero bytes.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (another length) or
 * `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_daemon_identity_set_legacy_exe_sha256(struct rp_daemon_identity *identity,
                                                   const uint8_t *sha256,
                                                   size_t len);

/**
 * Encodes the identity part of a probe reply (what follows the 32-byte nonce echo): the
 * `DaemonProcess` protobuf, then the legacy slot (`0x1a 0x20` + 32 bytes).
 *
 * Parameters: `buf`, `cap` the output buffer (`buf` may be NULL when `cap` is 0, to ask for
 * the size); `out_len` receives the bytes written, or the bytes needed on
 * `RP_STATUS_BUFFER_TOO_SMALL`.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_BUFFER_TOO_SMALL` (nothing written to `buf`) or
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: reads `identity`; may run concurrently with other reads of it.
 */
RP_NODISCARD
rp_status rp_daemon_identity_encode(const struct rp_daemon_identity *identity,
                                    uint8_t *buf,
                                    size_t cap,
                                    size_t *out_len);

/**
 * Frees an identity. NULL is a no-op. Must not be called twice with the same value.
 * A mux created from it keeps its own copy.
 */
void rp_daemon_identity_free(struct rp_daemon_identity *identity);

/**
 * Sets the process-wide log callback, or clears it (`callback` NULL).
 *
 * librp is silent by default: with no callback set, nothing is formatted and a log point
 * costs one atomic load; librp never writes to stdout or stderr either way.
 *
 * Parameters: `max_level` — the most verbose `rp_log_level` delivered (`RP_LOG_LEVEL_WARN`
 * delivers ERROR and WARN; `RP_LOG_LEVEL_OFF` delivers nothing); `callback`; `user_data`,
 * passed to every call; `user_data_free` (may be NULL), called exactly once with `user_data`
 * when this callback is replaced or cleared by a later `rp_log_set` — after the last call of
 * the callback in progress on any thread has returned (so possibly on that thread, just after
 * `rp_log_set` returned). With a NULL `callback` or `RP_LOG_LEVEL_OFF` the log is cleared and
 * this call's own `user_data_free(user_data)` runs before it returns.
 *
 * Returns `RP_STATUS_OK`, or `RP_STATUS_INVALID_ARGUMENT` when `max_level` is not an
 * `rp_log_level` (then nothing changes and `user_data_free` is not called: `user_data` stays
 * the caller's).
 *
 * Thread safety: may be called from any thread, at any time, including from inside the
 * callback.
 */
RP_NODISCARD
rp_status rp_log_set(int32_t max_level,
                     rp_log_callback callback,
                     void *user_data,
                     rp_user_data_free_callback user_data_free);

/**
 * Creates a mux.
 *
 * Parameters:
 * - `identity`: answered to identity probes; read (copied) during the call, not consumed.
 * - `served`, `served_count`: the consumer payload protocols this endpoint serves (`served`
 *   may be NULL when `served_count` is 0). Each must be in the consumer range
 *   (0x7000–0x7EFF), the private-use range (0xF000–0xFFFF), or SESSION (0x5350).
 * - `detect`: the legacy detector, or NULL for a daemon without a legacy wire (then any
 *   first byte other than `RP_FRAMING_VERSION` is reported as legacy).
 * - `user_data`: passed to `detect` and `user_data_free`.
 * - `user_data_free`: NULL, or called once with `user_data` when librp no longer needs it.
 * - `out_mux`: receives the mux on success.
 *
 * Returns `RP_STATUS_OK`; `RP_STATUS_INVALID_ARGUMENT` for a protocol that cannot be served
 * (a first-party id, or outside the ranges above); `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: `user_data` passes to librp on every path, even if an error is returned:
 * `user_data_free` is called exactly once, either from within `rp_mux_new` when it fails, or
 * from within the `rp_mux_free` that drops the last reference. On success the caller owns
 * `*out_mux` (written only on success); free it with `rp_mux_free`.
 *
 * Thread safety: `detect` may then be called concurrently from every thread that polls.
 */
RP_NODISCARD
rp_status rp_mux_new(const struct rp_daemon_identity *identity,
                     const uint32_t *served,
                     size_t served_count,
                     rp_legacy_detect_callback detect,
                     void *user_data,
                     rp_user_data_free_callback user_data_free,
                     const struct rp_mux **out_mux);

/**
 * Classifies the front of the bytes buffered on one connection. Never reads or writes a
 * socket and never consumes: the event says what the bytes are and how many to advance past.
 * Handles at most one frame per call; poll again after advancing.
 *
 * Parameters: `mux`; `buf`, `len` the buffered bytes (`buf` may be NULL when `len` is 0);
 * `out_event` receives the verdict on `RP_STATUS_OK` (not written otherwise).
 *
 * Returns:
 * - `RP_STATUS_OK`: see `out_event->kind`.
 * - Connection-fatal verdicts (close the connection): `RP_STATUS_UNSERVED_PROTOCOL` (a frame
 *   of a consumer protocol this mux does not serve), `RP_STATUS_FIRST_PARTY_FRAME` (control,
 *   admin or handoff frame), `RP_STATUS_MALFORMED_PROBE` (probe not a REQUEST, compressed, or
 *   nonce not 32 bytes), `RP_STATUS_TOO_LARGE` (announced body above 16 MiB, decided from the
 *   header alone), `RP_STATUS_MALFORMED` (undecodable frame body).
 * - `RP_STATUS_INVALID_ARGUMENT`: the legacy detector returned a value outside
 *   `rp_legacy_verdict`.
 * - `RP_STATUS_NULL_ARGUMENT`.
 *
 * `rp_last_error_message` describes every failure.
 *
 * Ownership: `out_event->frame` borrows `buf` (valid while `buf` is unchanged);
 * `out_event->reply` is owned by librp, valid until the next `rp_mux_poll` on this thread.
 *
 * Allocation: none for need-more, legacy and payload verdicts; a probe answer allocates.
 *
 * Thread safety: may run concurrently on many threads with the same mux. The legacy detector
 * runs on the calling thread, from within this call.
 */
RP_NODISCARD
rp_status rp_mux_poll(const struct rp_mux *mux,
                      const uint8_t *buf,
                      size_t len,
                      struct rp_mux_event *out_event);

/**
 * Adds a reference to a mux (for another owner, another thread, or a C++ copy).
 *
 * Returns `mux` itself, or NULL if `mux` is NULL. Each reference is freed with `rp_mux_free`.
 *
 * Thread safety: may run concurrently with any other call on the mux.
 */
const struct rp_mux *rp_mux_clone(const struct rp_mux *mux);

/**
 * Drops one reference to a mux; the last one frees it and calls the detector's
 * `user_data_free`. NULL is a no-op. Must not be called twice with the same reference, nor
 * while a poll with this reference runs.
 */
void rp_mux_free(const struct rp_mux *mux);

/**
 * Encodes the RESPONSE frame answering `request` (typically `rp_mux_event.frame`) into a
 * caller buffer: envelope version 1, kind RESPONSE, the request's payload protocol, request
 * id, traceparent and tracestate, `payload` uncompressed, no deadline.
 *
 * Parameters: `request` (read during the call); `payload`, `payload_len` (`payload` may be
 * NULL when `payload_len` is 0); `buf`, `cap` the output buffer (`buf` may be NULL when `cap`
 * is 0, to ask for the size); `out_len` receives the bytes written, or the bytes needed on
 * `RP_STATUS_BUFFER_TOO_SMALL`.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_BUFFER_TOO_SMALL` (nothing written to `buf`),
 * `RP_STATUS_TOO_LARGE`, `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: reentrant. Never allocates.
 */
RP_NODISCARD
rp_status rp_frame_encode_response(const struct rp_frame_view *request,
                                   const uint8_t *payload,
                                   size_t payload_len,
                                   uint8_t *buf,
                                   size_t cap,
                                   size_t *out_len);

/**
 * Encodes the RESPONSE frame answering `request` (as `rp_frame_encode_response`) into a new
 * library-owned message.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: on success the caller owns `*out_msg` (written only on success) and frees it
 * with `rp_msg_free`. Thread safety: reentrant.
 */
RP_NODISCARD
rp_status rp_frame_encode_response_msg(const struct rp_frame_view *request,
                                       const uint8_t *payload,
                                       size_t payload_len,
                                       struct rp_msg **out_msg);

/**
 * Creates worker options.
 *
 * Parameters: `endpoint` — a librp push server's socket path, `@name` (Linux abstract
 * socket), `tcp://host:port` or `tls://host:port` (TLS: see `_set_tls_ca_pem`), or a liminal
 * server's `liminal+tcp://host:port` (the worker then speaks the liminal worker wire; see
 * "liminal endpoints" below); `identity` — who the worker is (1–256 bytes; 1–992 on a liminal
 * endpoint); `task_queue` — the queue of work it takes (0–256 bytes; a liminal server routes
 * pushes by it).
 *
 * Limits of a registration (checked by `rp_push_worker_connect`, which returns
 * `RP_STATUS_INVALID_ARGUMENT` naming the limit, and by the server, which rejects the worker
 * with a reason naming it): identity 1–256 bytes; task queue and node at most 256 bytes; at
 * most 64 namespaces and 256 activity types of at most 256 bytes each; at most 64 payload
 * protocols; at most 16 KiB for the whole encoded registration.
 *
 * liminal endpoints: the worker connects offering versions 1.0–1.3, registers (namespaces,
 * task queue, node, activity types, identity, and activity descriptors from
 * `rp_push_worker_options_add_activity_descriptor`), answers the server's Pings, keeps TCP
 * keepalive on (30 s idle, 10 s apart, 5 probes), and then works like any worker. What the
 * liminal wire has no room for is refused: `_set_service` and `_add_payload_protocol` return
 * `RP_STATUS_INVALID_ARGUMENT`; on a received push the payload protocol, deadline and trace
 * context read as 0 / empty, and the worker id is 0. A Connect the server refuses is
 * `RP_STATUS_REFUSED` (`rp_last_refusal`: its reason carries liminal's reason code and
 * message); `rp_push_worker_reply_error` sends a refusal record (see there).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (malformed endpoint, identity or task queue outside its length).
 *
 * Ownership: the caller owns `*out_options`; `rp_push_worker_connect` consumes it, otherwise
 * free it with `rp_push_worker_options_free`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_new(const char *endpoint,
                                     const char *identity,
                                     const char *task_queue,
                                     struct rp_push_worker_options **out_options);

/**
 * Adds a namespace the worker serves. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_add_namespace(struct rp_push_worker_options *options,
                                               const char *name);

/**
 * Adds an activity type the worker handles. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_add_activity_type(struct rp_push_worker_options *options,
                                                   const char *activity_type);

/**
 * Sets the node (host) name the worker reports (at most 256 bytes). Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`, `RP_STATUS_INVALID_ARGUMENT` (too long).
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_node(struct rp_push_worker_options *options,
                                          const char *node);

/**
 * Adds a consumer payload protocol the worker serves (consumer or private-use range).
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a first-party or unassigned id, or a
 * liminal endpoint, which has no payload protocols), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_add_payload_protocol(struct rp_push_worker_options *options,
                                                      uint32_t payload_protocol);

/**
 * Sets the service name sent in the Hello (default "librp-push"): 1–64 characters of
 * `[a-z0-9-]`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (a name outside the rule, or a liminal endpoint, which has no
 * service name).
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_service(struct rp_push_worker_options *options,
                                             const char *service_name);

/**
 * Describes an activity the worker handles, with its input and output JSON schemas, in the
 * registration (liminal endpoints only; at most 256).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (options for a librp endpoint).
 */
RP_NODISCARD
rp_status rp_push_worker_options_add_activity_descriptor(struct rp_push_worker_options *options,
                                                         const char *name,
                                                         const char *input_schema_json,
                                                         const char *output_schema_json);

/**
 * Sets the limit for connecting, the Hello and the registration together (default 5000 ms;
 * 0 = do not wait, -1 = no limit). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a
 * timeout below -1), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_connect_timeout_ms(struct rp_push_worker_options *options,
                                                        int32_t timeout_ms);

/**
 * Sets the token sent in the Hello (in the Connect on a liminal endpoint), for servers that
 * require one (TCP). `token` may be NULL
 * when `len` is 0. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_auth_token(struct rp_push_worker_options *options,
                                                const uint8_t *token,
                                                size_t len);

/**
 * Makes the worker reconnect after its connection is lost (off by default).
 *
 * On a loss — the server closed the connection or went away, a read failed, a liminal server
 * sent Disconnect, a protocol violation; noticed by the thread in `rp_push_worker_recv` or
 * `_dispatch`, as the worker reads only there — the worker forgets that connection's queued
 * and unanswered pushes (its server fails them at their callers) and a librp thread starts
 * reconnecting: attempt n waits a delay drawn from
 * `min(max_delay_ms, min_delay_ms * 2^(n-1))` (see `rp_push_worker_options_set_reconnect_jitter`),
 * then dials the same endpoint with the same Hello (or Connect) and the same registration,
 * within the connect timeout. Any failure counts as an attempt: nothing listening, a refused
 * Hello (a wrong token), a rejected registration — a server that refuses the worker for good
 * is retried like one that is down, until `max_attempts`. After `max_attempts` failed attempts
 * in a row (0 = never give up) the worker gives up: `rp_push_worker_recv` then returns
 * `RP_STATUS_CLOSED` with the last failure as the last error message. The first connection
 * (`rp_push_worker_connect`) is not retried.
 *
 * While reconnecting, `rp_push_worker_recv` keeps waiting (up to its timeout) and returns
 * pushes of the new connection; the descriptor of `rp_push_worker_fd` stays the same and
 * level-triggered; `rp_push_worker_close` ends the backoff and any attempt at once.
 *
 * Correlation ids: with reconnecting on, `rp_push_correlation_id` is the worker's own id
 * (counted from 1, never reused for the worker's life), not the server's. A restarted server
 * counts its ids from the start again; the worker's ids keep a late reply to a push of a lost
 * connection from answering a push of the new one: such a reply returns `RP_STATUS_CLOSED`
 * and sends nothing.
 *
 * Each transition is logged (component "push-worker") and, with
 * `rp_push_worker_options_set_event_callback`, delivered as an event.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (`min_delay_ms` 0, or above
 * `max_delay_ms`), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_reconnect(struct rp_push_worker_options *options,
                                               uint32_t min_delay_ms,
                                               uint32_t max_delay_ms,
                                               uint32_t max_attempts);

/**
 * Sets how reconnect delays are spread: an `rp_reconnect_jitter` (call after
 * `rp_push_worker_options_set_reconnect`). Returns `RP_STATUS_OK`,
 * `RP_STATUS_INVALID_ARGUMENT` (not an `rp_reconnect_jitter`, or reconnecting is off),
 * `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_reconnect_jitter(struct rp_push_worker_options *options,
                                                      rp_reconnect_jitter jitter);

/**
 * Sets the callback that receives the worker's connection events (connected, lost,
 * reconnecting, gave up; see `rp_push_worker_event_callback`), replacing any previous one.
 * `callback` NULL unregisters.
 *
 * Parameters: `user_data` — passed to `callback`; `user_data_free` — NULL, or called once with
 * `user_data` when librp no longer needs it: on replacement, when the options are freed
 * without connecting, when `rp_push_worker_connect` fails, when the worker is freed (on the
 * freeing thread), or at once if `callback` is NULL.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT` (`options` NULL; `user_data_free` then
 * runs at once).
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_event_callback(struct rp_push_worker_options *options,
                                                    rp_push_worker_event_callback callback,
                                                    void *user_data,
                                                    rp_user_data_free_callback user_data_free);

/**
 * Sets the CA roots (PEM text, copied) a `tls://` server's certificate must chain to. Without
 * this call the system's CA roots are used (the file `SSL_CERT_FILE` names, or the system CA
 * bundle). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_tls_ca_pem(struct rp_push_worker_options *options,
                                                const uint8_t *ca_pem,
                                                size_t ca_len);

/**
 * Like `rp_push_worker_options_set_tls_ca_pem`, reading the PEM file at `ca_path` now. Returns
 * `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read), `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_tls_ca_file(struct rp_push_worker_options *options,
                                                 const char *ca_path);

/**
 * Sets the name a `tls://` server's certificate must be valid for (a DNS name or an IP
 * address; default: the host of the endpoint). Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`; a name that is neither fails the connect
 * with `RP_STATUS_INVALID_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_tls_server_name(struct rp_push_worker_options *options,
                                                     const char *server_name);

/**
 * Sets the client certificate chain (leaf first) and private key a worker presents to a
 * `tls://` server that asks for one (mutual TLS), as PEM text (copied). Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`; unusable or mismatched PEM fails the connect with
 * `RP_STATUS_CONFIG`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_tls_client_cert_pem(struct rp_push_worker_options *options,
                                                         const uint8_t *cert_chain_pem,
                                                         size_t cert_chain_len,
                                                         const uint8_t *key_pem,
                                                         size_t key_len);

/**
 * Like `rp_push_worker_options_set_tls_client_cert_pem`, reading the PEM files at
 * `cert_chain_path` and `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file
 * could not be read), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_worker_options_set_tls_client_cert_files(struct rp_push_worker_options *options,
                                                           const char *cert_chain_path,
                                                           const char *key_path);

/**
 * Frees worker options. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_push_worker_options_free(struct rp_push_worker_options *options);

/**
 * Connects to the push server, says Hello and registers; pushes start arriving once this
 * returns.
 *
 * Parameters: `options` — consumed by this call, even if an error is returned;
 * `out_worker` — receives the worker on success.
 *
 * Returns:
 * - `RP_STATUS_OK`.
 * - `RP_STATUS_REFUSED`: the server refused the Hello; `rp_last_refusal` gives its code,
 *   reason and retry hint.
 * - `RP_STATUS_REJECTED`: the server declined the registration; the last error message holds
 *   its reason.
 * - `RP_STATUS_TIMEOUT`: no answer (or no finished TLS handshake) within the connect timeout.
 * - `RP_STATUS_IO`: the endpoint could not be reached.
 * - `RP_STATUS_PERMISSION_DENIED` (`tls://`): a certificate was refused; the last error
 *   message says why: the server's certificate is from an unknown CA, expired or not valid
 *   yet, or not valid for the server name (wrong name); or the server requires a client
 *   certificate and none (or one it does not trust) was given.
 * - `RP_STATUS_PROTOCOL` (`tls://`): the server does not speak TLS (a plain `tcp://`
 *   endpoint). The reverse, a `tcp://` worker at a TLS endpoint, is `RP_STATUS_REFUSED` with
 *   a reason saying to connect with `tls://`.
 * - `RP_STATUS_CONFIG` (`tls://`): unusable TLS options (PEM text without a certificate, a
 *   key that does not match, no system CA roots).
 * - `RP_STATUS_INVALID_ARGUMENT`: the registration is over a limit (see
 *   `rp_push_worker_options_new`); the last error message names it. Nothing was sent. Also
 *   TLS options on an endpoint that is not `tls://`.
 * - `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_PROTOCOL`, `RP_STATUS_MALFORMED`, framing errors.
 *
 * Blocks up to the connect timeout. Ownership: the caller owns `*out_worker`; free it with
 * `rp_push_worker_free`.
 */
RP_NODISCARD
rp_status rp_push_worker_connect(struct rp_push_worker_options *options,
                                 struct rp_push_worker **out_worker);

/**
 * The id the server gave this worker (0 on a liminal endpoint, which has none, and if `worker`
 * is NULL). A worker that reconnected has the id of its latest registration.
 */
uint64_t rp_push_worker_id(const struct rp_push_worker *worker);

/**
 * Waits for the next push.
 *
 * Parameters: `timeout_ms` — -1 waits without limit, 0 only takes a push already here;
 * `out_push` — receives the push on success.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_TIMEOUT` (none came), `RP_STATUS_CLOSED` (the server went
 * away, the connection broke a protocol rule, or `rp_push_worker_close` was called — the last
 * error message says which), `RP_STATUS_NO_MEMORY` (a push did not fit in memory: the
 * connection ended, later calls return the same), `RP_STATUS_NULL_ARGUMENT`.
 *
 * A reconnecting worker (`rp_push_worker_options_set_reconnect`) keeps waiting through a lost
 * connection and returns pushes of the next one; it returns `RP_STATUS_CLOSED` only after
 * `rp_push_worker_close` or once it gave up (the last error message then holds the last
 * failure). Pending connection events run the event callback here first.
 *
 * Ownership: the caller owns `*out_push`; free it with `rp_push_free`.
 * Thread safety: may run concurrently with every other `const rp_push_worker *` function.
 */
RP_NODISCARD
rp_status rp_push_worker_recv(const struct rp_push_worker *worker,
                              int32_t timeout_ms,
                              struct rp_push **out_push);

/**
 * Replies to a push with a payload.
 *
 * Parameters: `correlation_id` — from `rp_push_correlation_id`; `payload`, `len` — the reply
 * (copied; `payload` may be NULL when `len` is 0).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NOT_FOUND` (no such push, already answered, or withdrawn
 * by the server after its deadline), `RP_STATUS_CLOSED` (also, on a reconnecting worker, for a
 * push that came on a connection since lost: nothing is sent, its server already failed it),
 * `RP_STATUS_TIMEOUT` (the server did not take the bytes within the send timeout),
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: may be called from any thread, also while another thread waits in recv.
 */
RP_NODISCARD
rp_status rp_push_worker_reply(const struct rp_push_worker *worker,
                               uint64_t correlation_id,
                               const uint8_t *payload,
                               size_t len);

/**
 * Replies to a push with a failure: the worker could not do the job.
 *
 * Parameters: `code` — an `rp_status` or an application code above 1000; `message` — why
 * (NUL-terminated UTF-8, at most 4096 bytes; a server ends the connection of a worker that
 * sends a longer one).
 *
 * On a liminal endpoint the failure goes out as a refusal record
 * `{"code":"…","words":"<message>"}` (the message at most 1024 bytes there), its code picked
 * from `code`: `RP_STATUS_AGAIN` → "busy"; `RP_STATUS_INVALID_ARGUMENT`, `RP_STATUS_NOT_FOUND`
 * and the wire errors (`RP_STATUS_PROTOCOL` … `RP_STATUS_MALFORMED_PROBE`) → "invalid";
 * `RP_STATUS_TIMEOUT`, `_CLOSED`, `_DISABLED`, `_CANCELLED`, `_INTERRUPTED`, `_REFUSED`,
 * `_REJECTED`, `_PERMISSION_DENIED`, `_IO` → "unavailable"; anything else, application codes
 * included → "internal".
 *
 * Returns as `rp_push_worker_reply`, plus `RP_STATUS_INVALID_UTF8`, and
 * `RP_STATUS_INVALID_ARGUMENT` for a message over 4096 bytes (1024 on a liminal endpoint; the
 * push stays unanswered). Thread safety: may be called from any thread.
 */
RP_NODISCARD
rp_status rp_push_worker_reply_error(const struct rp_push_worker *worker,
                                     uint64_t correlation_id,
                                     int32_t code,
                                     const char *message);

/**
 * A file descriptor that is readable while a push is waiting or the connection has ended, for
 * `poll`/`epoll`/libuv/Go loops: when it is readable, `rp_push_worker_recv` with timeout 0
 * returns a push or `RP_STATUS_CLOSED`. Level-triggered. With an event callback it is also
 * readable while events wait (recv runs the callback, then may return `RP_STATUS_TIMEOUT`).
 * A reconnecting worker keeps the same descriptor across its connections.
 *
 * Returns the descriptor, or -1 if `worker` is NULL. Owned by the worker: never read from,
 * write to or close it; it is valid until `rp_push_worker_free`.
 */
int32_t rp_push_worker_fd(const struct rp_push_worker *worker);

/**
 * Registers the handler `rp_push_worker_dispatch` runs for each push, replacing any previous
 * one (whose `user_data_free` then runs). `handler` NULL unregisters.
 *
 * Parameters: `user_data` — passed to `handler`; `user_data_free` — NULL, or called once with
 * `user_data` when librp no longer needs it (on replacement, on unregistering, when the worker
 * is freed, or at once if `handler` is NULL or this call fails).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 * Thread safety: not concurrently with `rp_push_worker_dispatch` on the same worker.
 */
RP_NODISCARD
rp_status rp_push_worker_set_handler(struct rp_push_worker *worker,
                                     rp_push_worker_handler_callback handler,
                                     void *user_data,
                                     rp_user_data_free_callback user_data_free);

/**
 * Receives pushes and runs the handler for each, on the calling thread.
 *
 * Waits up to `timeout_ms` (-1 = no limit) for the first push, then handles those already
 * waiting, at most `max_pushes` in all (0 = no limit). `*out_handled` (may be NULL) receives
 * how many were handled.
 *
 * Returns `RP_STATUS_OK` (at least one handled), `RP_STATUS_TIMEOUT` (none came),
 * `RP_STATUS_CLOSED`, `RP_STATUS_INVALID_ARGUMENT` (no handler registered),
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: may run concurrently with recv/reply/close; not with `_set_handler`/`_free`.
 */
RP_NODISCARD
rp_status rp_push_worker_dispatch(const struct rp_push_worker *worker,
                                  int32_t timeout_ms,
                                  size_t max_pushes,
                                  size_t *out_handled);

/**
 * Closes the connection: threads blocked in recv or dispatch return `RP_STATUS_CLOSED`, and
 * so do later calls. Idempotent; callable from any thread. NULL is a no-op.
 */
void rp_push_worker_close(const struct rp_push_worker *worker);

/**
 * Closes the connection, releases the handler's user data and frees the worker. NULL is a no-op. Must not be called twice, nor while another
 * thread still uses `worker`.
 */
void rp_push_worker_free(struct rp_push_worker *worker);

/**
 * The push's correlation id: pass it to `rp_push_worker_reply`. 0 if `push` is NULL. The
 * server's id of the push, or on a reconnecting worker the worker's own id (see
 * `rp_push_worker_options_set_reconnect`).
 */
uint64_t rp_push_correlation_id(const struct rp_push *push);

/**
 * The consumer payload protocol of the push's payload. 0 if `push` is NULL.
 */
uint32_t rp_push_payload_protocol(const struct rp_push *push);

/**
 * The push's payload. Borrowed: valid until `push` is freed (or, inside a handler, until it
 * returns). Empty if `push` is NULL.
 */
struct rp_bytes rp_push_payload(const struct rp_push *push);

/**
 * The push's absolute deadline in Unix milliseconds; 0 = none (or NULL).
 */
uint64_t rp_push_deadline_unix_ms(const struct rp_push *push);

/**
 * The push's W3C traceparent (empty = none). Borrowed like `rp_push_payload`.
 */
struct rp_str rp_push_traceparent(const struct rp_push *push);

/**
 * The push's W3C tracestate (empty = none). Borrowed like `rp_push_payload`.
 */
struct rp_str rp_push_tracestate(const struct rp_push *push);

/**
 * Frees a push. NULL is a no-op. Must not be called twice with the same value; never call it on
 * the push a handler receives.
 */
void rp_push_free(struct rp_push *push);

/**
 * Creates server options for `endpoint` (a socket path, `@name`, `tcp://host:port` or
 * `tls://host:port`).
 *
 * A socket path is created 0600 in a directory only this user can write (that directory, and
 * only it, is created 0700 when missing and its parent exists); other users' processes are
 * refused unless allowed; a TCP or TLS endpoint must be loopback unless
 * `_set_allow_remote_tcp`. A `tls://` endpoint needs a certificate and key
 * (`_set_tls_cert_pem` or `_set_tls_cert_files`).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT`. Ownership: consumed by `rp_push_server_bind`, or free it with
 * `rp_push_server_options_free`.
 */
RP_NODISCARD
rp_status rp_push_server_options_new(const char *endpoint,
                                     struct rp_push_server_options **out_options);

/**
 * Sets the service name workers must ask for (default "librp-push"): 1–64 characters of
 * `[a-z0-9-]`. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_INVALID_ARGUMENT` (a name outside the rule).
 */
RP_NODISCARD
rp_status rp_push_server_options_set_service(struct rp_push_server_options *options,
                                             const char *service_name);

/**
 * Lets one group reach a path socket's file: `mode` its permission bits (0600 by default;
 * 0660 gives the group read-write, which connecting needs; never bits for others), `group` its
 * group id (-1 keeps the process's group). A socket directory librp creates is then 0710 with
 * that group (the group may pass through, not list it); an existing one must let the group
 * pass (0710 or 0750 with that group), or binding fails with `RP_STATUS_PERMISSION_DENIED`. Only
 * root or a member of the group can give a file to it (`RP_STATUS_PERMISSION_DENIED`
 * otherwise, when the server binds). Group members are other users: allow other uids too.
 * Abstract and TCP endpoints have no file and ignore this.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (a mode with
 * bits for others or without owner read-write, a group outside -1..=4294967294).
 */
RP_NODISCARD
rp_status rp_push_server_options_set_socket_access(struct rp_push_server_options *options,
                                                   uint32_t mode,
                                                   int64_t group);

/**
 * Accepts Unix peers of other users when `allow` is true (default false: refused with
 * `PEER_REJECTED`). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_push_server_options_set_allow_other_uids(struct rp_push_server_options *options,
                                                      bool allow);

/**
 * Allows a TCP or TLS endpoint on a non-loopback address. Plain TCP then requires an auth
 * token; TLS requires an auth token or required client certificates
 * (`rp_push_server_options_set_tls_client_ca_pem` with `required`): `rp_push_server_bind`
 * fails with `RP_STATUS_CONFIG` otherwise.
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_push_server_options_set_allow_remote_tcp(struct rp_push_server_options *options,
                                                      bool allow);

/**
 * Requires every worker's Hello to carry this token (compared in constant time). `token` may
 * be NULL when `len` is 0 (no token). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_auth_token(struct rp_push_server_options *options,
                                                const uint8_t *token,
                                                size_t len);

/**
 * Sets the certificate chain (leaf first) and private key of a `tls://` endpoint, as PEM text
 * (`CERTIFICATE` blocks; a PKCS#8, PKCS#1 or SEC1 key). Both are copied; they are checked when
 * the server binds (`RP_STATUS_CONFIG` there when they are not usable or do not match).
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_tls_cert_pem(struct rp_push_server_options *options,
                                                  const uint8_t *cert_chain_pem,
                                                  size_t cert_chain_len,
                                                  const uint8_t *key_pem,
                                                  size_t key_len);

/**
 * Like `rp_push_server_options_set_tls_cert_pem`, reading the PEM files at `cert_chain_path`
 * and `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file could not be read),
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_tls_cert_files(struct rp_push_server_options *options,
                                                    const char *cert_chain_path,
                                                    const char *key_path);

/**
 * Asks workers of a `tls://` endpoint for a client certificate that chains to the CA roots
 * `ca_pem` (PEM text, copied): mutual TLS. With `required` a worker without one is refused
 * (`RP_STATUS_PERMISSION_DENIED` at its connect); without, one that presents none gets in and
 * one that presents an invalid one does not. The verified certificate's subject and names
 * reach the registration callback (`rp_push_worker_info_tls_subject`, `_tls_san`). Returns
 * `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_tls_client_ca_pem(struct rp_push_server_options *options,
                                                       const uint8_t *ca_pem,
                                                       size_t ca_len,
                                                       bool required);

/**
 * Like `rp_push_server_options_set_tls_client_ca_pem`, reading the PEM file at `ca_path` now.
 * Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read),
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_tls_client_ca_file(struct rp_push_server_options *options,
                                                        const char *ca_path,
                                                        bool required);

/**
 * Sets the time a new connection has to say Hello and register (default 10000 ms; 0 = none:
 * only a Hello already there counts, -1 = no limit). Returns `RP_STATUS_OK`,
 * `RP_STATUS_INVALID_ARGUMENT` (a timeout below -1), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_handshake_timeout_ms(struct rp_push_server_options *options,
                                                          int32_t timeout_ms);

/**
 * Sets the time a registered worker has to finish a frame once its first bytes arrived
 * (default 30000 ms); a worker stalled mid-frame longer is disconnected, so it cannot pin the
 * memory of a large partial frame. -1 means no limit; 0 gives a partial frame no time.
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a timeout below -1),
 * `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_frame_timeout_ms(struct rp_push_server_options *options,
                                                      int32_t timeout_ms);

/**
 * Sets the most connections at once (default 4096) and the most from one peer uid (default
 * 2048), so one user cannot take them all; more are refused with RATE_LIMITED and a retry
 * hint (detail `scope` = `peer-uid` for the per-uid limit). Clients that already left are
 * closed first when a limit is reached. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_push_server_options_set_max_connections(struct rp_push_server_options *options,
                                                     size_t total,
                                                     size_t per_uid);

/**
 * Sets how many bytes may wait to be sent to one worker before pushes to it fail with
 * `RP_STATUS_AGAIN` (default 8 MiB). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_push_server_options_set_max_send_buffer(struct rp_push_server_options *options,
                                                     size_t bytes);

/**
 * Sets the callback that decides registrations (see `rp_push_server_registration_callback`); the
 * application must then call `rp_push_server_dispatch`. `callback` NULL removes it.
 *
 * `user_data_free` (may be NULL) is called once with `user_data`: on replacement, when the
 * options or the server built from them are freed, or at once if `callback` is NULL or this
 * call fails. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_registration_callback(struct rp_push_server_options *options,
                                                           rp_push_server_registration_callback callback,
                                                           void *user_data,
                                                           rp_user_data_free_callback user_data_free);

/**
 * Sets the callback told of workers registering and leaving (see `rp_push_server_worker_callback`);
 * it runs inside `rp_push_server_dispatch`. `callback` NULL removes it. `user_data_free` as for
 * `rp_push_server_options_set_registration_callback`. Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_options_set_worker_callback(struct rp_push_server_options *options,
                                                     rp_push_server_worker_callback callback,
                                                     void *user_data,
                                                     rp_user_data_free_callback user_data_free);

/**
 * Frees server options (and the user data of their callbacks). NULL is a no-op. Must not be
 * called twice with the same value.
 */
void rp_push_server_options_free(struct rp_push_server_options *options);

/**
 * Binds the endpoint and starts serving on a new thread.
 *
 * Parameters: `options` — consumed by this call, even if an error is returned (with their
 * callbacks, which the server then owns); `out_server` — receives the server.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_IO` (for example the address is in use),
 * `RP_STATUS_PERMISSION_DENIED` (an unsafe socket directory, or a non-loopback TCP address
 * not allowed), `RP_STATUS_CONFIG` (remote TCP without a token), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_server`; free it with `rp_push_server_free`.
 */
RP_NODISCARD
rp_status rp_push_server_bind(struct rp_push_server_options *options,
                              struct rp_push_server **out_server);

/**
 * The endpoint actually bound (for `tcp://127.0.0.1:0`, with the real port), as a string
 * `rp_push_worker_options_new` accepts. Borrowed: valid until the server is freed. Empty if
 * `server` is NULL.
 */
struct rp_str rp_push_server_endpoint(const struct rp_push_server *server);

/**
 * Starts a push and returns at once with its ticket.
 *
 * Parameters: `request` — copied (it stays the caller's); `out_ticket` — receives the ticket.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (the server is shut down),
 * `RP_STATUS_NULL_ARGUMENT`. Delivery failures arrive through the ticket.
 *
 * Ownership: the caller owns `*out_ticket`; free it with `rp_push_ticket_free` (freeing does
 * not cancel the push). Thread safety: callable from any thread.
 */
RP_NODISCARD
rp_status rp_push_server_push(const struct rp_push_server *server,
                              const struct rp_push_request *request,
                              struct rp_push_ticket **out_ticket);

/**
 * Pushes and waits up to `timeout_ms` (-1 = no limit) for the worker's answer. Without a
 * deadline of its own the push gets "now + timeout" as its deadline, so the worker drops it
 * when the caller stops waiting.
 *
 * Returns `RP_STATUS_OK` (`*out_result` holds the worker's answer — a reply or the worker's
 * failure), `RP_STATUS_TIMEOUT`, `RP_STATUS_CLOSED` (the worker went away before answering, or
 * the server shut down), `RP_STATUS_NO_MEMORY` (the worker's reply did not fit in memory: its
 * connection ended), `RP_STATUS_NOT_FOUND` (no worker matches the target),
 * `RP_STATUS_AGAIN` (the worker is not keeping up), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_result`; free it with `rp_push_result_free`.
 * Thread safety: callable from any thread.
 */
RP_NODISCARD
rp_status rp_push_server_push_wait(const struct rp_push_server *server,
                                   const struct rp_push_request *request,
                                   int32_t timeout_ms,
                                   struct rp_push_result **out_result);

/**
 * A snapshot of the registered workers.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns `*out_list`;
 * free it with `rp_push_worker_list_free`.
 */
RP_NODISCARD
rp_status rp_push_server_workers(const struct rp_push_server *server,
                                 struct rp_push_worker_list **out_list);

/**
 * Runs the registration and worker callbacks for pending server events, on the calling thread.
 *
 * Waits up to `timeout_ms` (-1 = no limit) for the first event, then handles those already
 * waiting. `*out_handled` (may be NULL) receives how many were handled.
 *
 * Returns `RP_STATUS_OK` (at least one handled), `RP_STATUS_TIMEOUT` (none came),
 * `RP_STATUS_CLOSED` (the server is shut down), `RP_STATUS_INVALID_ARGUMENT` (no callback was
 * set on the options), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: callable from any one thread at a time per server.
 */
RP_NODISCARD
rp_status rp_push_server_dispatch(const struct rp_push_server *server,
                                  int32_t timeout_ms,
                                  size_t *out_handled);

/**
 * A descriptor readable while server events wait for `rp_push_server_dispatch`, or once the
 * server is shut down (`rp_push_server_dispatch` then returns `RP_STATUS_CLOSED` at once).
 * Level-triggered; owned by the server (never read or close it). -1 if `server` is NULL.
 */
int32_t rp_push_server_event_fd(const struct rp_push_server *server);

/**
 * Disconnects a worker; its outstanding pushes fail with `RP_STATUS_CLOSED`.
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (server shut down), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_server_disconnect(const struct rp_push_server *server,
                                    uint64_t worker_id);

/**
 * Stops serving: every worker is disconnected, every outstanding push fails with
 * `RP_STATUS_CLOSED`, the socket file is removed. Blocks until the server thread has ended.
 * Idempotent; callable from any thread. NULL is a no-op.
 */
void rp_push_server_shutdown(const struct rp_push_server *server);

/**
 * Shuts the server down (see `rp_push_server_shutdown`), releases its callbacks' user data and
 * frees it. NULL is a no-op. Must not be called twice, nor while another thread uses `server`.
 */
void rp_push_server_free(struct rp_push_server *server);

/**
 * Creates a push request; by default it goes to any worker serving `payload_protocol`.
 *
 * Parameters: `payload_protocol` — a consumer (0x7000–0x7EFF) or private-use (0xF000–0xFFFF)
 * id, or SESSION (0x5350); `payload`, `len` — copied (`payload` may be NULL when `len` is 0).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_TOO_LARGE` (beyond what one frame carries),
 * `RP_STATUS_INVALID_ARGUMENT` (a first-party or unassigned `payload_protocol`),
 * `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns `*out_request`; free it with
 * `rp_push_request_free`.
 */
RP_NODISCARD
rp_status rp_push_request_new(uint32_t payload_protocol,
                              const uint8_t *payload,
                              size_t len,
                              struct rp_push_request **out_request);

/**
 * Sets the absolute deadline (Unix milliseconds; 0 = none). Past it the push fails with
 * `RP_STATUS_TIMEOUT` and the worker is told to drop it. Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_push_request_set_deadline_unix_ms(struct rp_push_request *request, uint64_t deadline);

/**
 * Sets the W3C traceparent (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
 * (the push then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
 */
RP_NODISCARD
rp_status rp_push_request_set_traceparent(struct rp_push_request *request,
                                          const char *traceparent);

/**
 * Sets the W3C tracestate (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
 * (the push then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
 */
RP_NODISCARD
rp_status rp_push_request_set_tracestate(struct rp_push_request *request,
                                         const char *tracestate);

/**
 * Sends the push to one worker by id. Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_push_request_to_worker(struct rp_push_request *request, uint64_t worker_id);

/**
 * Sends the push to the least busy worker registered for `task_queue`. Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_push_request_to_task_queue(struct rp_push_request *request,
                                        const char *task_queue);

/**
 * Sends the push to the least busy worker serving `payload_protocol` (the default target uses
 * the request's own protocol). Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (a
 * first-party or unassigned id), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_push_request_to_protocol(struct rp_push_request *request,
                                      uint32_t payload_protocol);

/**
 * Frees a push request. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_push_request_free(struct rp_push_request *request);

/**
 * The push's correlation id (0 if `ticket` is NULL).
 */
uint64_t rp_push_ticket_correlation_id(const struct rp_push_ticket *ticket);

/**
 * True once the push has an outcome (`rp_push_ticket_wait` then returns at once).
 */
bool rp_push_ticket_is_done(const struct rp_push_ticket *ticket);

/**
 * Waits up to `timeout_ms` (-1 = no limit, 0 = do not wait) for the push's outcome and takes it.
 *
 * Returns `RP_STATUS_OK` (`*out_result` holds the worker's answer), `RP_STATUS_TIMEOUT` (no
 * outcome yet — or the push's own deadline passed; `rp_push_ticket_is_done` tells which),
 * `RP_STATUS_CLOSED`, `RP_STATUS_NOT_FOUND`, `RP_STATUS_AGAIN` (see `rp_push_server_push_wait`),
 * `RP_STATUS_INTERRUPTED` (`rp_push_ticket_interrupt`; the push goes on),
 * `RP_STATUS_INVALID_ARGUMENT` (the outcome was already taken), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_result`; free it with `rp_push_result_free`.
 * Thread safety: callable from any thread.
 */
RP_NODISCARD
rp_status rp_push_ticket_wait(const struct rp_push_ticket *ticket,
                              int32_t timeout_ms,
                              struct rp_push_result **out_result);

/**
 * Ends one `rp_push_ticket_wait` on this ticket with `RP_STATUS_INTERRUPTED`: the one blocked
 * now, or the next one if none is. The push goes on and its outcome stays for a later wait.
 * This is how an event loop or another thread stops a wait without a timeout early.
 * Callable from any thread. NULL is a no-op.
 */
void rp_push_ticket_interrupt(const struct rp_push_ticket *ticket);

/**
 * Frees a ticket; the push itself goes on. NULL is a no-op. Must not be called twice.
 */
void rp_push_ticket_free(struct rp_push_ticket *ticket);

/**
 * True when the worker answered with a failure (see `rp_push_result_failure_code`).
 */
bool rp_push_result_is_failure(const struct rp_push_result *result);

/**
 * The worker's reply payload (empty for a failure). Borrowed: valid until the result is freed.
 */
struct rp_bytes rp_push_result_payload(const struct rp_push_result *result);

/**
 * The worker's failure code (0 when the worker replied normally).
 */
int32_t rp_push_result_failure_code(const struct rp_push_result *result);

/**
 * The worker's failure message (empty when it replied normally). Borrowed: valid until the
 * result is freed.
 */
struct rp_str rp_push_result_failure_message(const struct rp_push_result *result);

/**
 * Frees a result. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_push_result_free(struct rp_push_result *result);

/**
 * Number of workers in the list (0 if NULL).
 */
size_t rp_push_worker_list_len(const struct rp_push_worker_list *list);

/**
 * The `index`-th worker, or NULL if out of range. Borrowed: valid until the list is freed.
 */
const struct rp_push_worker_info *rp_push_worker_list_get(const struct rp_push_worker_list *list,
                                                          size_t index);

/**
 * Frees a worker list (and the infos borrowed from it). NULL is a no-op.
 */
void rp_push_worker_list_free(struct rp_push_worker_list *list);

/**
 * The worker's id (0 if NULL).
 */
uint64_t rp_push_worker_info_id(const struct rp_push_worker_info *info);

/**
 * The identity the worker registered with. Borrowed like `info`.
 */
struct rp_str rp_push_worker_info_identity(const struct rp_push_worker_info *info);

/**
 * The worker's task queue. Borrowed like `info`.
 */
struct rp_str rp_push_worker_info_task_queue(const struct rp_push_worker_info *info);

/**
 * The worker's node (empty if none). Borrowed like `info`.
 */
struct rp_str rp_push_worker_info_node(const struct rp_push_worker_info *info);

/**
 * Number of namespaces the worker registered.
 */
size_t rp_push_worker_info_namespace_count(const struct rp_push_worker_info *info);

/**
 * The `index`-th namespace (empty if out of range). Borrowed like `info`.
 */
struct rp_str rp_push_worker_info_namespace(const struct rp_push_worker_info *info, size_t index);

/**
 * Number of activity types the worker registered.
 */
size_t rp_push_worker_info_activity_type_count(const struct rp_push_worker_info *info);

/**
 * The `index`-th activity type (empty if out of range). Borrowed like `info`.
 */
struct rp_str rp_push_worker_info_activity_type(const struct rp_push_worker_info *info,
                                                size_t index);

/**
 * Number of payload protocols the worker serves.
 */
size_t rp_push_worker_info_payload_protocol_count(const struct rp_push_worker_info *info);

/**
 * The `index`-th payload protocol (0 if out of range).
 */
uint32_t rp_push_worker_info_payload_protocol(const struct rp_push_worker_info *info, size_t index);

/**
 * The worker's kernel-reported credentials (Unix sockets). Returns false (writing nothing)
 * for TCP workers or NULL `info`; each out pointer may be NULL.
 */
bool rp_push_worker_info_peer(const struct rp_push_worker_info *info,
                              uint32_t *out_pid,
                              uint32_t *out_uid,
                              uint32_t *out_gid);

/**
 * Whether the worker proved its identity with a client certificate the server verified
 * (mutual TLS on a `tls://` endpoint); false otherwise or for NULL.
 */
bool rp_push_worker_info_tls_verified(const struct rp_push_worker_info *info);

/**
 * The subject of the worker's verified client certificate, as `CN=...,O=...` (empty without
 * one). Borrowed like `info`.
 */
struct rp_str rp_push_worker_info_tls_subject(const struct rp_push_worker_info *info);

/**
 * Number of subject alternative names in the worker's verified client certificate (0
 * without one).
 */
size_t rp_push_worker_info_tls_san_count(const struct rp_push_worker_info *info);

/**
 * The `index`-th subject alternative name of the worker's verified client certificate, as
 * `DNS:name`, `IP:address`, `URI:uri` or `email:address` (empty if out of range). Borrowed
 * like `info`.
 */
struct rp_str rp_push_worker_info_tls_san(const struct rp_push_worker_info *info, size_t index);

/**
 * Pushes sent to the worker and not yet answered, when the info was taken.
 */
size_t rp_push_worker_info_in_flight(const struct rp_push_worker_info *info);

/**
 * Copies the refusal behind the most recent failure on the calling thread.
 *
 * Call it right after a function returned `RP_STATUS_REFUSED`.
 *
 * Returns `RP_STATUS_OK` with `*out_refusal` set, `RP_STATUS_NOT_FOUND` if the most recent
 * failure on this thread was not a refusal, or `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_refusal`; free it with `rp_refusal_free`.
 */
RP_NODISCARD rp_status rp_last_refusal(struct rp_refusal **out_refusal);

/**
 * The refusal's code, one of `rp_error_code` (other values may come from newer servers).
 * Returns 0 if `refusal` is NULL.
 */
int32_t rp_refusal_code(const struct rp_refusal *refusal);

/**
 * Milliseconds the server asks the client to wait before retrying; 0 = no hint (or NULL).
 */
uint64_t rp_refusal_retry_after_ms(const struct rp_refusal *refusal);

/**
 * The server's reason. Borrowed: valid until `refusal` is freed. Empty if `refusal` is NULL.
 */
struct rp_str rp_refusal_reason(const struct rp_refusal *refusal);

/**
 * Number of key/value details the server attached (0 if `refusal` is NULL).
 */
size_t rp_refusal_detail_count(const struct rp_refusal *refusal);

/**
 * The `index`-th detail, in key order.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (index out of range) or
 * `RP_STATUS_NULL_ARGUMENT`. Ownership: `*out_key` and `*out_value` borrow `refusal`.
 */
RP_NODISCARD
rp_status rp_refusal_detail(const struct rp_refusal *refusal,
                            size_t index,
                            struct rp_str *out_key,
                            struct rp_str *out_value);

/**
 * Frees a refusal. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_refusal_free(struct rp_refusal *refusal);

/**
 * Classifies a payload-protocol id. A backend may serve `RP_PROTOCOL_CLASS_CONSUMER`,
 * `RP_PROTOCOL_CLASS_PRIVATE_USE` and `RP_PROTOCOL_CLASS_SESSION` ids, nothing else.
 *
 * Thread safety: may be called from any thread.
 */
rp_protocol_class rp_protocol_classify(uint32_t id);

/**
 * Starts a session over a connection.
 *
 * Parameters: `conn` — consumed by this call, even if an error is returned; from now on only
 * the session reads it (from `rp_broker_result_take_conn`, `rp_conn_adopt_fd` after your own
 * `accept`, or a handoff); `side` — `RP_SESSION_SIDE_CONNECTING` for the end that connected,
 * `RP_SESSION_SIDE_ACCEPTING` for the end that accepted (both ends must differ);
 * `dispatcher` — serves the peer's requests (see `rp_session_request_callback`) when the
 * application calls `rp_session_dispatch`; NULL: the session serves no requests, and each one
 * is answered at once with the error code 13 (`RP_STATUS_NOT_FOUND`, "no dispatcher");
 * `user_data_free` (may be NULL) — called once with `user_data` when the session is freed, or
 * at once if `dispatcher` is NULL or this call fails; `out_session` — receives the session.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_INVALID_ARGUMENT` (unknown `side`), `RP_STATUS_IO`
 * (no thread could be started), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
 */
RP_NODISCARD
rp_status rp_session_new(struct rp_conn *conn,
                         rp_session_side side,
                         rp_session_request_callback dispatcher,
                         void *user_data,
                         rp_user_data_free_callback user_data_free,
                         struct rp_session **out_session);

/**
 * Connects to `endpoint` and starts a session there as the connecting side (odd request
 * ids). The peer is typically an `rp_session_listener`; no Hello is exchanged.
 *
 * Parameters: `endpoint` — a socket path, `@abstract` name, or `tcp://host:port`
 * (`tls://host:port` needs `rp_session_connect_tls`); `timeout_ms` — limit for connecting (see the timeout rule); `dispatcher`, `user_data`,
 * `user_data_free` and `out_session` as for `rp_session_new`.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_IO` (nothing listens there), `RP_STATUS_TIMEOUT`,
 * `RP_STATUS_INVALID_ARGUMENT` (a malformed endpoint), `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
 */
RP_NODISCARD
rp_status rp_session_connect(const char *endpoint,
                             int32_t timeout_ms,
                             rp_session_request_callback dispatcher,
                             void *user_data,
                             rp_user_data_free_callback user_data_free,
                             struct rp_session **out_session);

/**
 * Like `rp_session_connect`, for a `tls://host:port` endpoint: connects, runs the TLS
 * handshake (both within `timeout_ms`) and starts a session as the connecting side.
 *
 * Parameters: `tls` — how the server is verified and the client certificate offered (read
 * and copied; NULL: the system's CA roots, the endpoint's host as the name, no client
 * certificate); the others as for `rp_session_connect`.
 *
 * Returns `RP_STATUS_OK`; `RP_STATUS_PERMISSION_DENIED` (the server's certificate was refused:
 * unknown CA, expired or not yet valid, wrong name; the last error message says which);
 * `RP_STATUS_PROTOCOL` (the server does not speak TLS); `RP_STATUS_CONFIG` (unusable TLS
 * options); `RP_STATUS_INVALID_ARGUMENT` (an endpoint that is not `tls://` with TLS options
 * set, or a malformed one); `RP_STATUS_IO`, `RP_STATUS_TIMEOUT`, `RP_STATUS_INVALID_UTF8`,
 * `RP_STATUS_NULL_ARGUMENT`. A server that requires a client certificate and got none refuses
 * after the handshake: the first call then fails with `RP_STATUS_PERMISSION_DENIED` or
 * `RP_STATUS_CLOSED`.
 *
 * Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
 */
RP_NODISCARD
rp_status rp_session_connect_tls(const char *endpoint,
                                 int32_t timeout_ms,
                                 const struct rp_tls_client_options *tls,
                                 rp_session_request_callback dispatcher,
                                 void *user_data,
                                 rp_user_data_free_callback user_data_free,
                                 struct rp_session **out_session);

/**
 * The subject of the peer's verified certificate when the session runs over TLS (the
 * server's on the connecting side; the client's under mutual TLS on the accepting side), as
 * `CN=...,O=...`; empty over Unix sockets and TCP, without a client certificate, or if NULL.
 * Borrowed: valid until the session is freed.
 */
struct rp_str rp_session_tls_subject(const struct rp_session *session);

/**
 * Number of subject alternative names in the peer's verified certificate (0 without one).
 */
size_t rp_session_tls_san_count(const struct rp_session *session);

/**
 * The `index`-th subject alternative name of the peer's verified certificate, as `DNS:name`,
 * `IP:address`, `URI:uri` or `email:address` (empty if out of range). Borrowed: valid until
 * the session is freed.
 */
struct rp_str rp_session_tls_san(const struct rp_session *session, size_t index);

/**
 * Binds a listener for sessions.
 *
 * Parameters: `endpoint` — a socket path (created 0600 in a directory only this user can
 * write; that directory, and only it, is created 0700 when missing and its parent exists), an
 * `@abstract` name, or a loopback `tcp://host:port` (port 0 picks one; `tls://host:port`
 * needs `rp_session_listener_bind_tls`). Unix peers of another user are refused; on TCP any
 * local process may connect. `out_listener` receives the
 * listener.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_IO` (for example the address is in use),
 * `RP_STATUS_PERMISSION_DENIED` (an unsafe socket directory, or a non-loopback TCP address),
 * `RP_STATUS_CONFIG` (a `tls://` endpoint: no certificate given), `RP_STATUS_INVALID_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_listener`; free it with `rp_session_listener_free`.
 */
RP_NODISCARD
rp_status rp_session_listener_bind(const char *endpoint,
                                   struct rp_session_listener **out_listener);

/**
 * Like `rp_session_listener_bind`, for a `tls://host:port` endpoint (port 0 picks one):
 * connections are TLS, and `rp_session_listener_accept` returns each once its handshake is
 * done (a client whose handshake fails, or does not finish within 10 s, is closed and waited
 * past).
 *
 * Parameters: `tls` — the certificate chain and key presented, and optionally client CA roots
 * (mutual TLS; see `rp_tls_server_options_set_client_ca_pem`); read and copied. A loopback
 * address is required unless client certificates are required.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (unusable certificate or key), `RP_STATUS_IO`,
 * `RP_STATUS_PERMISSION_DENIED` (an address other than loopback without required client
 * certificates), `RP_STATUS_INVALID_ARGUMENT` (an endpoint that is not `tls://`),
 * `RP_STATUS_INVALID_UTF8`, `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_listener`; free it with `rp_session_listener_free`.
 */
RP_NODISCARD
rp_status rp_session_listener_bind_tls(const char *endpoint,
                                       const struct rp_tls_server_options *tls,
                                       struct rp_session_listener **out_listener);

/**
 * The endpoint actually bound (for `tcp://127.0.0.1:0`, with the real port), as a string
 * `rp_session_connect` accepts. Borrowed: valid until the listener is freed. Empty if NULL.
 */
struct rp_str rp_session_listener_endpoint(const struct rp_session_listener *listener);

/**
 * Waits up to `timeout_ms` (-1 = no limit, 0 = only one already waiting) for a
 * connection and starts a session on it as the accepting side (even request ids).
 *
 * Parameters: `dispatcher`, `user_data`, `user_data_free` and `out_session` as for
 * `rp_session_new` (`user_data_free` also runs at once when no connection came).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_TIMEOUT` (no connection in time), `RP_STATUS_CLOSED`
 * (`rp_session_listener_close` was called, also while this call waited), `RP_STATUS_IO`,
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_session`; free it with `rp_session_free`.
 * Thread safety: callable from several threads at once; each connection goes to one.
 */
RP_NODISCARD
rp_status rp_session_listener_accept(const struct rp_session_listener *listener,
                                     int32_t timeout_ms,
                                     rp_session_request_callback dispatcher,
                                     void *user_data,
                                     rp_user_data_free_callback user_data_free,
                                     struct rp_session **out_session);

/**
 * Stops accepting: every `rp_session_listener_accept` waiting now (on any thread) returns
 * `RP_STATUS_CLOSED` at once, and so do later ones. Sessions accepted before go on; free the
 * listener as usual. Idempotent; callable from any thread. NULL is a no-op.
 */
void rp_session_listener_close(const struct rp_session_listener *listener);

/**
 * Frees a listener (a socket file it created is removed); sessions accepted from it go on.
 * NULL is a no-op. Must not be called twice, nor while another thread uses `listener` (close
 * it with `rp_session_listener_close` first to wake a thread waiting in accept).
 */
void rp_session_listener_free(struct rp_session_listener *listener);

/**
 * Calls the peer and waits up to `timeout_ms` (-1 = no limit) for its response.
 *
 * Parameters: `payload_protocol` — the consumer protocol of `payload` (carried to the peer,
 * not read by librp); `payload`, `len` — copied (`payload` may be NULL when `len` is 0);
 * `options` — deadline and trace context, or NULL for none. Without a deadline of its own the
 * call gets "now + timeout" as its deadline, so the peer stops when the caller does.
 *
 * Returns `RP_STATUS_OK` (`*out_response` holds the answer), `RP_STATUS_TIMEOUT` (the wait or
 * the deadline passed; the peer was sent a CANCEL, or the peer reported the deadline),
 * `RP_STATUS_CLOSED` (the connection ended), `RP_STATUS_NO_MEMORY` (what the peer sent did not
 * fit in memory: the session ended), `RP_STATUS_CANCELLED`, the peer's error as a
 * status (`RP_STATUS_NOT_FOUND` when the peer has no dispatcher, `RP_STATUS_PEER_ERROR` for an
 * application code; `rp_last_error_message` has the peer's message),
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_response`; free it with `rp_msg_free`.
 * Thread safety: callable from any number of threads at once.
 */
RP_NODISCARD
rp_status rp_session_call(const struct rp_session *session,
                          uint32_t payload_protocol,
                          const uint8_t *payload,
                          size_t len,
                          const struct rp_session_call_options *options,
                          int32_t timeout_ms,
                          struct rp_msg **out_response);

/**
 * Starts a call and returns at once with its ticket; use it for asynchronous calls, streams
 * (the peer answers with chunks, then a response) and tunnels (both sides send chunks).
 *
 * Parameters as for `rp_session_call`; the deadline in `options` (if any) is the only limit.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED`, `RP_STATUS_TIMEOUT` (the deadline had already
 * passed), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_ticket`; free it with `rp_session_ticket_free` (which cancels
 * the call if it has no outcome yet). Thread safety: callable from any number of threads.
 */
RP_NODISCARD
rp_status rp_session_call_start(const struct rp_session *session,
                                uint32_t payload_protocol,
                                const uint8_t *payload,
                                size_t len,
                                const struct rp_session_call_options *options,
                                struct rp_session_ticket **out_ticket);

/**
 * Runs the dispatcher callback for the peer's requests, on the calling thread.
 *
 * Waits up to `timeout_ms` (-1 = no limit) for the first request, then serves those
 * already waiting. `*out_handled` (may be NULL) receives how many were served. Requests whose
 * deadline passed while they waited are answered with `RP_STATUS_TIMEOUT` and not served.
 *
 * Returns `RP_STATUS_OK` (at least one served), `RP_STATUS_TIMEOUT` (none came),
 * `RP_STATUS_CLOSED` (the session ended), `RP_STATUS_INVALID_ARGUMENT` (the session has no
 * dispatcher), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Thread safety: callable from any number of threads at once; each request goes to one.
 */
RP_NODISCARD
rp_status rp_session_dispatch(const struct rp_session *session,
                              int32_t timeout_ms,
                              size_t *out_handled);

/**
 * A descriptor readable while a request waits for `rp_session_dispatch` or the session has
 * ended, for poll/epoll loops: when it is readable, call `rp_session_dispatch` with timeout 0.
 * Level-triggered; owned by the session: never read from or close it. -1 if `session` is NULL.
 */
int32_t rp_session_dispatch_fd(const struct rp_session *session);

/**
 * The side the session was created as (`RP_SESSION_SIDE_CONNECTING` if `session` is NULL).
 */
rp_session_side rp_session_side_of(const struct rp_session *session);

/**
 * Number of this side's calls waiting for a response (0 if `session` is NULL).
 */
size_t rp_session_pending_calls(const struct rp_session *session);

/**
 * Closes the connection: every waiting call, stream read and `rp_session_dispatch` returns
 * `RP_STATUS_CLOSED` at once, and later calls fail the same way. Idempotent; callable from
 * any thread. NULL is a no-op.
 */
void rp_session_close(const struct rp_session *session);

/**
 * Closes the session (see `rp_session_close`), waits for its reader thread to end, releases
 * the dispatcher's user data and frees it. Calls and requests still held stay valid and fail
 * with `RP_STATUS_CLOSED`; free them as usual. NULL is a no-op. Must not be called twice, nor
 * while another thread uses `session`, nor from the dispatcher callback.
 */
void rp_session_free(struct rp_session *session);

/**
 * Creates call options with no deadline and no trace context.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`. Ownership: the caller owns
 * `*out_options`; free it with `rp_session_call_options_free`.
 */
RP_NODISCARD rp_status rp_session_call_options_new(struct rp_session_call_options **out_options);

/**
 * Sets the absolute deadline in Unix milliseconds (0 = none). It travels in the frame; past
 * it the call ends with `RP_STATUS_TIMEOUT` on both sides. Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`.
 */
rp_status rp_session_call_options_set_deadline_unix_ms(struct rp_session_call_options *options,
                                                       uint64_t deadline_unix_ms);

/**
 * Sets the W3C traceparent (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
 * (the call then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
 */
RP_NODISCARD
rp_status rp_session_call_options_set_traceparent(struct rp_session_call_options *options,
                                                  const char *traceparent);

/**
 * Sets the W3C tracestate (copied). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`. Traceparent and tracestate together are at most 8192 bytes
 * (the call then fails with `RP_STATUS_INVALID_ARGUMENT`; a receiver ends a connection carrying more).
 */
RP_NODISCARD
rp_status rp_session_call_options_set_tracestate(struct rp_session_call_options *options,
                                                 const char *tracestate);

/**
 * Frees call options. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_session_call_options_free(struct rp_session_call_options *options);

/**
 * The call's request id (odd on the connecting side, even on the accepting side); 0 if NULL.
 */
uint64_t rp_session_ticket_id(const struct rp_session_ticket *ticket);

/**
 * True once the call has an outcome (`rp_session_ticket_wait` then returns at once); false if
 * NULL.
 */
bool rp_session_ticket_is_done(const struct rp_session_ticket *ticket);

/**
 * Waits up to `timeout_ms` (-1 = no limit, 0 = do not wait) for the call's response and takes it.
 *
 * Returns `RP_STATUS_OK` (`*out_response` holds the answer), `RP_STATUS_TIMEOUT` (the wait
 * ended first and the call goes on — `rp_session_ticket_is_done` is false — or the call's
 * deadline passed and it ended), `RP_STATUS_CLOSED`, `RP_STATUS_CANCELLED`,
 * `RP_STATUS_INTERRUPTED` (`rp_session_ticket_interrupt`; the call goes on), the peer's error
 * as a status (see `rp_session_call`), `RP_STATUS_INVALID_ARGUMENT` (the outcome was already
 * taken), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_response`; free it with `rp_msg_free`.
 * Thread safety: callable from any thread, concurrently with the other call functions.
 */
RP_NODISCARD
rp_status rp_session_ticket_wait(const struct rp_session_ticket *ticket,
                                 int32_t timeout_ms,
                                 struct rp_msg **out_response);

/**
 * Reads the next chunk the peer streamed on this call, waiting up to `timeout_ms` (-1 = no
 * limit, 0 = do not wait). Chunks arrive in the order the peer sent them.
 *
 * Returns `RP_STATUS_OK` (`*out_chunk` holds the chunk), `RP_STATUS_CLOSED` (the stream has
 * ended: the peer half-closed or sent its response — take it with `rp_session_ticket_wait` — or
 * the connection ended, which `rp_session_ticket_wait` then reports as `RP_STATUS_CLOSED` too),
 * `RP_STATUS_TIMEOUT`, `RP_STATUS_CANCELLED`, `RP_STATUS_INTERRUPTED`
 * (`rp_session_ticket_interrupt`), the call's error, `RP_STATUS_TOO_LARGE` (more
 * than 64 MiB of chunks were left unread: the call ended and the peer was sent a CANCEL),
 * `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_chunk`; free it with `rp_msg_free`.
 * Thread safety: callable from any thread; concurrent readers each get different chunks.
 */
RP_NODISCARD
rp_status rp_session_ticket_next_chunk(const struct rp_session_ticket *ticket,
                                       int32_t timeout_ms,
                                       struct rp_msg **out_chunk);

/**
 * Sends one chunk to the peer on this call (a tunnel; the peer reads it with
 * `rp_session_request_next_chunk`). `chunk`, `len` are copied.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (the call ended, this side already half-closed,
 * or the connection ended), `RP_STATUS_CANCELLED`, `RP_STATUS_TIMEOUT` (the peer did not read
 * for 30 s), `RP_STATUS_NULL_ARGUMENT`. Thread safety: callable from any thread.
 */
RP_NODISCARD
rp_status rp_session_ticket_send_chunk(const struct rp_session_ticket *ticket,
                                       const uint8_t *chunk,
                                       size_t len);

/**
 * Half-closes the call's tunnel: tells the peer this side sends no more chunks (its
 * `rp_session_request_next_chunk` then returns `RP_STATUS_CLOSED`). The response still comes.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (already half-closed, or the call or connection
 * ended), `RP_STATUS_CANCELLED`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD rp_status rp_session_ticket_close_write(const struct rp_session_ticket *ticket);

/**
 * Cancels the call: waiters in `rp_session_ticket_wait` / `_next_chunk` return
 * `RP_STATUS_CANCELLED` at once and the peer is sent a CANCEL (its request reports
 * `rp_session_request_is_cancelled`). Does nothing once the call has an outcome.
 * Callable from any thread. NULL is a no-op.
 */
void rp_session_ticket_cancel(const struct rp_session_ticket *ticket);

/**
 * Ends one `rp_session_ticket_wait` or `_next_chunk` on this call with
 * `RP_STATUS_INTERRUPTED`: the one blocked now (a wait that is reading the connection itself
 * notices within 20 ms), or the next one if none is. The call goes on; wait again for it.
 * Callable from any thread. NULL is a no-op.
 */
void rp_session_ticket_interrupt(const struct rp_session_ticket *ticket);

/**
 * Frees a ticket, cancelling the call first if it has no outcome yet. NULL is a no-op. Must not be
 * called twice, nor while another thread uses `ticket`.
 */
void rp_session_ticket_free(struct rp_session_ticket *ticket);

/**
 * The request id the caller chose (0 if NULL).
 */
uint64_t rp_session_request_id(const struct rp_session_request *request);

/**
 * The consumer protocol the caller named for the payload (0 if NULL).
 */
uint32_t rp_session_request_payload_protocol(const struct rp_session_request *request);

/**
 * The request's bytes. Borrowed: valid until the request is ended (responded or freed).
 */
struct rp_bytes rp_session_request_payload(const struct rp_session_request *request);

/**
 * The request's absolute deadline in Unix milliseconds (0 = none, or NULL).
 */
uint64_t rp_session_request_deadline_unix_ms(const struct rp_session_request *request);

/**
 * The W3C traceparent (empty if none). Borrowed: valid until the request is ended.
 */
struct rp_str rp_session_request_traceparent(const struct rp_session_request *request);

/**
 * The W3C tracestate (empty if none). Borrowed: valid until the request is ended.
 */
struct rp_str rp_session_request_tracestate(const struct rp_session_request *request);

/**
 * True once the caller cancelled the request or the connection ended (an answer is then not
 * sent); false if NULL. Poll it in long handlers.
 */
bool rp_session_request_is_cancelled(const struct rp_session_request *request);

/**
 * Ends one `rp_session_request_next_chunk` on this request with `RP_STATUS_INTERRUPTED`: the
 * one blocked now (a wait that is reading the connection itself notices within 20 ms), or the
 * next one if none is. The request goes on. Callable from any thread. NULL is a no-op.
 */
void rp_session_request_interrupt(const struct rp_session_request *request);

/**
 * Reads the next chunk the caller sent on this request (a tunnel), waiting up to `timeout_ms`
 * (-1 = no limit, 0 = do not wait).
 *
 * Returns `RP_STATUS_OK` (`*out_chunk` holds it), `RP_STATUS_CLOSED` (the caller half-closed,
 * or the connection ended), `RP_STATUS_TIMEOUT` (the wait or the request's deadline),
 * `RP_STATUS_CANCELLED`, `RP_STATUS_INTERRUPTED` (`rp_session_request_interrupt`; the request
 * goes on), `RP_STATUS_TOO_LARGE` (more than 64 MiB of the caller's chunks were left unread:
 * the request ended and the caller was told), `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_chunk`; free it with `rp_msg_free`.
 */
RP_NODISCARD
rp_status rp_session_request_next_chunk(const struct rp_session_request *request,
                                        int32_t timeout_ms,
                                        struct rp_msg **out_chunk);

/**
 * Streams one chunk to the caller (an EVENT frame; the caller reads it with
 * `rp_session_ticket_next_chunk`) before the final answer. `chunk`, `len` are copied.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CLOSED` (this side half-closed, or the connection
 * ended), `RP_STATUS_CANCELLED`, `RP_STATUS_TIMEOUT` (the request's deadline passed, or the
 * caller did not read for 30 s), `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_session_request_send_chunk(const struct rp_session_request *request,
                                        const uint8_t *chunk,
                                        size_t len);

/**
 * Half-closes this side of the request's stream: the caller's `rp_session_ticket_next_chunk`
 * returns `RP_STATUS_CLOSED` after the chunks already sent. The answer is still due.
 * Returns as `rp_session_request_send_chunk`.
 */
RP_NODISCARD rp_status rp_session_request_close_write(const struct rp_session_request *request);

/**
 * Answers a request with a payload, ending it. Consumes `request`, even if an error is
 * returned. `payload`, `len` are copied (`payload` may be NULL when `len` is 0).
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_CANCELLED` (the caller cancelled; nothing was sent),
 * `RP_STATUS_TIMEOUT` (the request's deadline passed: the caller was sent the
 * `RP_STATUS_TIMEOUT` error instead), `RP_STATUS_CLOSED` (the connection ended),
 * `RP_STATUS_NULL_ARGUMENT` (a NULL `payload` with a non-zero `len`: the caller is sent the
 * `RP_STATUS_CLOSED` error).
 *
 * Thread safety: callable from any thread.
 */
RP_NODISCARD
rp_status rp_session_respond(struct rp_session_request *request,
                             const uint8_t *payload,
                             size_t len);

/**
 * Answers a request with an error, ending it: the caller's call returns the status `code`
 * (when it is an `rp_status`, for example `RP_STATUS_NOT_FOUND`, other than `RP_STATUS_OK`,
 * `_INCOMPLETE`, `_NULL_ARGUMENT` and `_PANIC`, which describe only a local call) or
 * `RP_STATUS_PEER_ERROR` (for those and an application code of 1000 or more), with `message`
 * as its last error text.
 * Consumes `request`, even if an error is returned. `message` is copied (NULL = ""); it is at
 * most 4096 bytes (a session ends when its peer sends a longer one).
 *
 * Returns as `rp_session_respond` (plus `RP_STATUS_INVALID_UTF8` for `message`, and
 * `RP_STATUS_INVALID_ARGUMENT` for a message over 4096 bytes: the caller then gets the
 * `RP_STATUS_CLOSED` error of a request dropped without an answer).
 */
RP_NODISCARD
rp_status rp_session_respond_error(struct rp_session_request *request,
                                   int32_t code,
                                   const char *message);

/**
 * Frees a request; if it was not answered, the caller is sent the `RP_STATUS_CLOSED` error
 * ("dropped without answering"). NULL is a no-op. Must not be called twice, nor after
 * `rp_session_respond` / `_respond_error` (which already freed it).
 */
void rp_session_request_free(struct rp_session_request *request);

/**
 * Reads what a push server did since it was bound.
 *
 * Parameters: `server`; `out_stats` — set `out_stats->size = sizeof(rp_push_server_stats)`
 * first. On success the fields that fit in `size` are filled and `size` is set to the bytes
 * filled.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
 * smaller than the first counter). Thread safety: may be called from any thread, at any
 * time; the counters are read one by one, not as one atomic snapshot. Costs a few locks:
 * cheap enough to call every second, not on every push.
 */
RP_NODISCARD
rp_status rp_push_server_get_stats(const struct rp_push_server *server,
                                   struct rp_push_server_stats *out_stats);

/**
 * Reads what a push worker did since it connected.
 *
 * Parameters: `worker`; `out_stats` — set `out_stats->size = sizeof(rp_push_worker_stats)`
 * first. On success the fields that fit in `size` are filled and `size` is set to the bytes
 * filled.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
 * too small). Thread safety: may be called from any thread, also while another receives.
 */
RP_NODISCARD
rp_status rp_push_worker_get_stats(const struct rp_push_worker *worker,
                                   struct rp_push_worker_stats *out_stats);

/**
 * Reads what a broker server did since it was bound (the METRICS admin verb answers the
 * same numbers).
 *
 * Parameters: `server`; `out_stats` — set `out_stats->size = sizeof(rp_broker_server_stats)`
 * first. On success the fields that fit in `size` are filled and `size` is set to the bytes
 * filled.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
 * too small). Thread safety: may be called from any thread.
 */
RP_NODISCARD
rp_status rp_broker_server_get_stats(const struct rp_broker_server *server,
                                     struct rp_broker_server_stats *out_stats);

/**
 * Reads what a session did since it started.
 *
 * Parameters: `session`; `out_stats` — set `out_stats->size = sizeof(rp_session_stats)`
 * first. On success the fields that fit in `size` are filled and `size` is set to the bytes
 * filled.
 *
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_ARGUMENT` (`size`
 * too small). Thread safety: may be called from any thread.
 */
RP_NODISCARD
rp_status rp_session_get_stats(const struct rp_session *session,
                               struct rp_session_stats *out_stats);

/**
 * Creates empty TLS client options: the system's CA roots (the file `SSL_CERT_FILE` names, or
 * the system CA bundle), the endpoint's host as the server name, no client certificate.
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_options`; free it with `rp_tls_client_options_free`.
 */
RP_NODISCARD rp_status rp_tls_client_options_new(struct rp_tls_client_options **out_options);

/**
 * Sets the CA roots (PEM text, copied) the server's certificate must chain to. Returns
 * `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`; PEM without a certificate fails the connect with
 * `RP_STATUS_CONFIG`.
 */
RP_NODISCARD
rp_status rp_tls_client_options_set_ca_pem(struct rp_tls_client_options *options,
                                           const uint8_t *ca_pem,
                                           size_t ca_len);

/**
 * Like `rp_tls_client_options_set_ca_pem`, reading the PEM file at `ca_path` now. Returns
 * `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read), `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_tls_client_options_set_ca_file(struct rp_tls_client_options *options,
                                            const char *ca_path);

/**
 * Sets the name the server's certificate must be valid for (a DNS name or an IP address;
 * default: the host of the endpoint). Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`,
 * `RP_STATUS_INVALID_UTF8`; a name that is neither fails the connect with
 * `RP_STATUS_INVALID_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_tls_client_options_set_server_name(struct rp_tls_client_options *options,
                                                const char *server_name);

/**
 * Sets the client certificate chain (leaf first) and private key presented to a server that
 * asks for one (mutual TLS), as PEM text (copied). Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`; unusable or mismatched PEM fails the connect with
 * `RP_STATUS_CONFIG`.
 */
RP_NODISCARD
rp_status rp_tls_client_options_set_client_cert_pem(struct rp_tls_client_options *options,
                                                    const uint8_t *cert_chain_pem,
                                                    size_t cert_chain_len,
                                                    const uint8_t *key_pem,
                                                    size_t key_len);

/**
 * Like `rp_tls_client_options_set_client_cert_pem`, reading the PEM files at
 * `cert_chain_path` and `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file
 * could not be read), `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_tls_client_options_set_client_cert_files(struct rp_tls_client_options *options,
                                                      const char *cert_chain_path,
                                                      const char *key_path);

/**
 * Frees TLS client options. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_tls_client_options_free(struct rp_tls_client_options *options);

/**
 * Creates empty TLS server options; a certificate and key must be set before they are used.
 * Returns `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 *
 * Ownership: the caller owns `*out_options`; free it with `rp_tls_server_options_free`.
 */
RP_NODISCARD rp_status rp_tls_server_options_new(struct rp_tls_server_options **out_options);

/**
 * Sets the certificate chain (leaf first) and private key the server presents, as PEM text
 * (`CERTIFICATE` blocks; a PKCS#8, PKCS#1 or SEC1 key), copied; checked when a listener binds
 * with them (`RP_STATUS_CONFIG` there when unusable or mismatched). Returns `RP_STATUS_OK`,
 * `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_tls_server_options_set_cert_pem(struct rp_tls_server_options *options,
                                             const uint8_t *cert_chain_pem,
                                             size_t cert_chain_len,
                                             const uint8_t *key_pem,
                                             size_t key_len);

/**
 * Like `rp_tls_server_options_set_cert_pem`, reading the PEM files at `cert_chain_path` and
 * `key_path` now. Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (a file could not be read),
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_tls_server_options_set_cert_files(struct rp_tls_server_options *options,
                                               const char *cert_chain_path,
                                               const char *key_path);

/**
 * Asks clients for a certificate that chains to the CA roots `ca_pem` (PEM text, copied):
 * mutual TLS. With `required` a client without one is refused (`RP_STATUS_PERMISSION_DENIED`
 * on its side), and the listener may then bind an address other than loopback; without, a
 * client that presents none gets in and one that presents an invalid one does not. Returns
 * `RP_STATUS_OK`, `RP_STATUS_NULL_ARGUMENT`.
 */
RP_NODISCARD
rp_status rp_tls_server_options_set_client_ca_pem(struct rp_tls_server_options *options,
                                                  const uint8_t *ca_pem,
                                                  size_t ca_len,
                                                  bool required);

/**
 * Like `rp_tls_server_options_set_client_ca_pem`, reading the PEM file at `ca_path` now.
 * Returns `RP_STATUS_OK`, `RP_STATUS_CONFIG` (the file could not be read),
 * `RP_STATUS_NULL_ARGUMENT`, `RP_STATUS_INVALID_UTF8`.
 */
RP_NODISCARD
rp_status rp_tls_server_options_set_client_ca_file(struct rp_tls_server_options *options,
                                                   const char *ca_path,
                                                   bool required);

/**
 * Frees TLS server options. NULL is a no-op. Must not be called twice with the same value.
 */
void rp_tls_server_options_free(struct rp_tls_server_options *options);

/**
 * A static, human-readable name for a status code.
 *
 * Parameters: `status` — any integer; unknown values give "unknown status".
 *
 * Returns a NUL-terminated string with static lifetime. Never free it.
 *
 * Thread safety: may be called from any thread at any time.
 */
const char *rp_status_str(int32_t status);

/**
 * The version of the loaded library as "MAJOR.MINOR.PATCH".
 *
 * Returns a static NUL-terminated string; never free it. Compare with the `RP_VERSION_*`
 * macros to detect a header/library mismatch.
 *
 * Thread safety: may be called from any thread.
 */
const char *rp_version_string(void);

/**
 * The version of the loaded library as one number, `RP_MAKE_VERSION(major, minor, patch)`
 * (`major * 10000 + minor * 100 + patch`); equals `RP_VERSION` when header and library agree.
 *
 * Thread safety: may be called from any thread.
 */
uint32_t rp_version_number(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* RP_H */
