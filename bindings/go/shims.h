/* C side of the Go binding, only what Go cannot do as well itself: trampolines that route
 * librp callbacks to the exported Go functions in callbacks.go (and the calls that install
 * them or run them), helpers for the per-message paths (receive, reply, push, wait, frames,
 * session calls) that call an rp_* function and capture the calling thread's error text (and
 * refusal) in the same cgo call, and the wake pipe of a cancellable wait. Other librp calls
 * (options, setters, identity, handoff) are made straight from Go inside onThread
 * (callbacks.go). Declarations only: callbacks.go uses //export. */
#ifndef RP_GO_SHIMS_H
#define RP_GO_SHIMS_H

#include <rp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The outcome of one shim call. On failure `msg` is malloc'd (the Go side frees it) and
 * `refusal` is set for RP_STATUS_REFUSED. `panic_id` is non-zero when a Go callback run inside
 * the call panicked (the Go caller re-panics with the stashed value). */
typedef struct rpg_err {
    int32_t status;
    char *msg;
    size_t msg_len;
    rp_refusal *refusal;
    uint64_t panic_id;
} rpg_err;

/* Frame fields without pointers: byte fields are offsets into the buffer the frame was decoded
 * from (decode/poll), or lengths of separately passed arguments (encode). */
typedef struct rpg_frame {
    uint32_t envelope_version;
    int32_t kind;
    uint32_t payload_protocol;
    int32_t payload_encoding;
    uint64_t request_id;
    uint64_t deadline_unix_ms;
    size_t payload_off, payload_len;
    size_t traceparent_off, traceparent_len;
    size_t tracestate_off, tracestate_len;
} rpg_frame;

typedef struct rpg_mux_result {
    int32_t kind;
    size_t consumed;
    rpg_frame frame;
    uint8_t *reply; /* malloc'd copy of the probe reply, freed by the Go side */
    size_t reply_len;
} rpg_mux_result;

/* Every pointer in this config is C memory (allocated by the Go side with C.malloc). */
typedef struct rpg_request_cfg {
    uint32_t payload_protocol;
    uint64_t deadline_unix_ms;
    const char *traceparent, *tracestate, *to_task_queue; /* NULL = unset */
    uint64_t to_worker;                                    /* 0 = unset */
    uint32_t to_protocol;                                  /* 0 = unset */
} rpg_request_cfg;

void rpg_err_clear(rpg_err *e);
/* Fills e with status st and the calling thread's error text and refusal (see onThread). */
void rpg_take_error(int32_t st, rpg_err *e);

/* The wake of one blocking wait (see waitReady in callbacks.go): a pipe whose read end
 * rpg_wait_readable watches beside the handle's descriptor and whose write end the Go side's
 * context.AfterFunc writes once the context ends. rpg_wake_open returns 0 or an errno. */
int32_t rpg_wake_open(int32_t *read_fd, int32_t *write_fd);
void rpg_wake_fire(int32_t write_fd);
void rpg_wake_close(int32_t read_fd, int32_t write_fd);
/* Waits up to timeout_ms (-1 = no limit) until fd (1) or wake (2) is readable; 0 when the time
 * passed, -1 when poll failed. fd is checked first: a ready handle wins over a wake. */
int32_t rpg_wait_readable(int32_t fd, int32_t wake, int32_t timeout_ms);

int32_t rpg_frame_encode(const rpg_frame *f, const uint8_t *payload, const char *traceparent,
                         const char *tracestate, uint8_t *buf, size_t cap, size_t *out_len,
                         rpg_err *e);
int32_t rpg_frame_decode(const uint8_t *buf, size_t len, uint32_t max_body, rpg_frame *out,
                         size_t *out_len, rpg_err *e);
int32_t rpg_frame_encode_response(const rpg_frame *req, const char *traceparent,
                                  const char *tracestate, const uint8_t *payload, size_t len,
                                  uint8_t *buf, size_t cap, size_t *out_len, rpg_err *e);

/* Sets the worker's event callback (a cgo.Handle value); librp owns the handle from this call
 * on, on every path. */
int32_t rpg_worker_options_set_event_callback(rp_push_worker_options *o, uintptr_t handle);
int32_t rpg_client_recv(const rp_push_worker *c, int32_t timeout_ms, rp_push **out, rpg_err *e);
int32_t rpg_client_reply(const rp_push_worker *c, uint64_t id, const uint8_t *payload, size_t len,
                         rpg_err *e);
int32_t rpg_client_reply_error(const rp_push_worker *c, uint64_t id, int32_t code,
                               const char *message, rpg_err *e);
int32_t rpg_client_set_handler(rp_push_worker *c, uintptr_t handle, rpg_err *e);
int32_t rpg_client_dispatch(const rp_push_worker *c, int32_t timeout_ms, size_t max,
                            size_t *out_handled, rpg_err *e);

/* Sets the registration and worker callbacks (cgo.Handle values, 0 = none) on o; librp owns
 * both handles from this call on, on every path. */
int32_t rpg_server_options_set_callbacks(rp_push_server_options *o, uintptr_t registration,
                                         uintptr_t worker);
int32_t rpg_server_push(const rp_push_server *s, const rpg_request_cfg *cfg, const uint8_t *payload,
                        size_t len, rp_push_ticket **out, rpg_err *e);
int32_t rpg_ticket_wait(const rp_push_ticket *t, int32_t timeout_ms, rp_push_result **out,
                        rpg_err *e);
int32_t rpg_server_dispatch(const rp_push_server *s, int32_t timeout_ms, size_t *out_handled,
                            rpg_err *e);

int32_t rpg_identity_encode(const rp_daemon_identity *id, uint8_t *buf, size_t cap,
                            size_t *out_len, rpg_err *e);

int32_t rpg_mux_new(const rp_daemon_identity *id, const uint32_t *served, size_t n,
                    uintptr_t detect_handle, const rp_mux **out, rpg_err *e);
int32_t rpg_mux_poll(const rp_mux *mux, const uint8_t *buf, size_t len, rpg_mux_result *out,
                     rpg_err *e);


/* --- connections ------------------------------------------------------------------------ */

int32_t rpg_conn_send(const rp_conn *c, const rpg_frame *f, const uint8_t *payload,
                      const char *traceparent, const char *tracestate, rpg_err *e);
/* On success *out is the received frame (free it with rp_frame_free) and *view its fields. */
int32_t rpg_conn_recv(const rp_conn *c, int32_t timeout_ms, rp_frame **out, rp_frame_view *view,
                      rpg_err *e);

/* Sessions. `handle` 0 = no dispatcher. Messages come back as rp_msg (the Go side copies and
 * frees them). */
int32_t rpg_session_new(rp_conn *conn, int32_t side, uintptr_t handle, rp_session **out, rpg_err *e);
int32_t rpg_session_call_start(const rp_session *s, uint32_t protocol, const uint8_t *payload, size_t len,
                               rp_session_ticket **out, rpg_err *e);
int32_t rpg_session_ticket_wait(const rp_session_ticket *t, int32_t timeout_ms, rp_msg **out, rpg_err *e);
int32_t rpg_session_dispatch(const rp_session *s, int32_t timeout_ms, size_t *handled, rpg_err *e);
int32_t rpg_session_respond(rp_session_request *r, const uint8_t *payload, size_t len, rpg_err *e);
int32_t rpg_session_respond_error(rp_session_request *r, int32_t code, const char *message, rpg_err *e);

int32_t rpg_session_ticket_next_chunk(const rp_session_ticket *t, int32_t timeout_ms, rp_msg **out, rpg_err *e);
int32_t rpg_session_ticket_send_chunk(const rp_session_ticket *t, const uint8_t *chunk, size_t len, rpg_err *e);
int32_t rpg_session_ticket_close_write(const rp_session_ticket *t, rpg_err *e);
int32_t rpg_session_request_next_chunk(const rp_session_request *r, int32_t timeout_ms, rp_msg **out, rpg_err *e);
int32_t rpg_session_request_send_chunk(const rp_session_request *r, const uint8_t *chunk, size_t len, rpg_err *e);
int32_t rpg_session_request_close_write(const rp_session_request *r, rpg_err *e);

#endif
