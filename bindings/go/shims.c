#define _GNU_SOURCE /* pipe2 */
/* See shims.h. Each helper runs entirely on one OS thread, so the thread-local error text and
 * refusal that librp leaves behind are read by the thread that produced them. */
#include "shims.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#endif

#include "_cgo_export.h"

/* The id of a panic stashed by a Go callback on this thread, reported by the helper that ran
 * the callback (callbacks run only on the thread of the librp call that invokes them). */
static __thread uint64_t rpg_tls_panic;

void rpg_err_clear(rpg_err *e) {
    memset(e, 0, sizeof *e);
}

#ifdef _WIN32
/* Windows: the wake is a manual-reset event (both "ends" are the same handle, as int32_t:
 * Windows keeps handle values within 32 bits), and the handles librp gives out are events too,
 * so one WaitForMultipleObjects watches both. */
int32_t rpg_wake_open(int32_t *read_fd, int32_t *write_fd) {
    HANDLE h = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (h == NULL) return (int32_t)GetLastError();
    *read_fd = (int32_t)(intptr_t)h;
    *write_fd = (int32_t)(intptr_t)h;
    return 0;
}

void rpg_wake_fire(int32_t write_fd) {
    SetEvent((HANDLE)(intptr_t)write_fd);
}

void rpg_wake_close(int32_t read_fd, int32_t write_fd) {
    (void)write_fd;
    CloseHandle((HANDLE)(intptr_t)read_fd);
}

int32_t rpg_wait_readable(int32_t fd, int32_t wake, int32_t timeout_ms) {
    HANDLE hs[2] = {(HANDLE)(intptr_t)fd, (HANDLE)(intptr_t)wake};
    /* WaitForMultipleObjects reports the lowest index set: a ready handle wins over a wake. */
    DWORD r = WaitForMultipleObjects(2, hs, FALSE, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
    if (r == WAIT_OBJECT_0) return 1;
    if (r == WAIT_OBJECT_0 + 1) return 2;
    if (r == WAIT_TIMEOUT) return 0;
    return -1;
}
#else
int32_t rpg_wake_open(int32_t *read_fd, int32_t *write_fd) {
    int p[2];
#ifdef __linux__
    if (pipe2(p, O_CLOEXEC) != 0) return errno;
#else
    if (pipe(p) != 0) return errno;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
#endif
    *read_fd = p[0];
    *write_fd = p[1];
    return 0;
}

void rpg_wake_fire(int32_t write_fd) {
    ssize_t n;
    do n = write(write_fd, "x", 1); while (n < 0 && errno == EINTR);
}

void rpg_wake_close(int32_t read_fd, int32_t write_fd) {
    close(read_fd);
    close(write_fd);
}

static int64_t rpg_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int32_t rpg_wait_readable(int32_t fd, int32_t wake, int32_t timeout_ms) {
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = wake, .events = POLLIN}};
    int64_t end = timeout_ms < 0 ? 0 : rpg_now_ms() + timeout_ms;
    for (;;) {
        int n = poll(p, 2, timeout_ms);
        if (n > 0) {
            if (p[0].revents != 0) return 1;
            if (p[1].revents != 0) return 2;
        }
        if (n == 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
        if (timeout_ms >= 0) {
            int64_t left = end - rpg_now_ms();
            timeout_ms = left > 0 ? (int32_t)left : 0;
        }
    }
}
#endif

static int32_t rpg_fail(int32_t st, rpg_err *e) {
    e->status = st;
    size_t n = rp_last_error_message(NULL, 0);
    e->msg = malloc(n + 1);
    if (e->msg != NULL) {
        rp_last_error_message(e->msg, n + 1);
        e->msg_len = n;
    }
    if (st == RP_STATUS_REFUSED) {
        rp_refusal *r = NULL;
        if (rp_last_refusal(&r) == RP_STATUS_OK) e->refusal = r;
    }
    return st;
}

void rpg_take_error(int32_t st, rpg_err *e) {
    rpg_err_clear(e);
    rpg_fail(st, e);
}

#define RPG_TRY(expr)                                                                      \
    do {                                                                                   \
        int32_t st_ = (int32_t)(expr);                                                     \
        if (st_ != RP_STATUS_OK) return rpg_fail(st_, e);                                  \
    } while (0)

#define RPG_RETURN(expr)                                                                   \
    do {                                                                                   \
        int32_t st_ = (int32_t)(expr);                                                     \
        return st_ == RP_STATUS_OK ? st_ : rpg_fail(st_, e);                               \
    } while (0)

/* --- callbacks ------------------------------------------------------------------------- */

static void rpg_free_handle(void *user_data) {
    rpgoFreeHandle((uintptr_t)user_data);
}

static void rpg_note_panic(uint64_t id) {
    if (id != 0 && rpg_tls_panic == 0) rpg_tls_panic = id;
}

static int32_t rpg_push_handler_tramp(void *user_data, const rp_push_worker *client,
                                      const rp_push *push) {
    uint64_t panic_id = 0;
    int32_t st = rpgoPushHandler((uintptr_t)user_data, (rp_push_worker *)client, (rp_push *)push,
                                 &panic_id);
    rpg_note_panic(panic_id);
    return st;
}

static int32_t rpg_registration_tramp(void *user_data, const rp_push_worker_info *worker, char *reason,
                                      size_t reason_cap) {
    uint64_t panic_id = 0;
    int32_t v = rpgoRegistration((uintptr_t)user_data, (rp_push_worker_info *)worker, reason,
                                 reason_cap, &panic_id);
    rpg_note_panic(panic_id);
    return v;
}

static void rpg_worker_tramp(void *user_data, const rp_push_worker_info *worker, bool connected,
                             rp_str reason) {
    uint64_t panic_id = 0;
    rpgoWorkerEvent((uintptr_t)user_data, (rp_push_worker_info *)worker, connected, (char *)reason.ptr,
                    reason.len, &panic_id);
    rpg_note_panic(panic_id);
}

static int32_t rpg_detect_tramp(void *user_data, const uint8_t *buf, size_t len) {
    uint64_t panic_id = 0;
    int32_t v = rpgoDetect((uintptr_t)user_data, (uint8_t *)buf, len, &panic_id);
    rpg_note_panic(panic_id);
    return v;
}

/* Runs before/after a librp call that may invoke callbacks. */
static void rpg_panic_begin(void) { rpg_tls_panic = 0; }
static void rpg_panic_end(rpg_err *e) {
    e->panic_id = rpg_tls_panic;
    rpg_tls_panic = 0;
}

/* --- frames ---------------------------------------------------------------------------- */

static void rpg_view_from(rp_frame_view *v, const rpg_frame *f, const uint8_t *payload,
                          const char *tp, const char *ts) {
    v->envelope_version = f->envelope_version;
    v->kind = f->kind;
    v->payload_protocol = f->payload_protocol;
    v->payload_encoding = f->payload_encoding;
    v->request_id = f->request_id;
    v->deadline_unix_ms = f->deadline_unix_ms;
    v->payload.ptr = payload;
    v->payload.len = f->payload_len;
    v->traceparent.ptr = tp;
    v->traceparent.len = f->traceparent_len;
    v->tracestate.ptr = ts;
    v->tracestate.len = f->tracestate_len;
}

static size_t rpg_off(const void *base, const void *p, size_t len) {
    if (p == NULL || len == 0) return 0;
    return (size_t)((const uint8_t *)p - (const uint8_t *)base);
}

static void rpg_frame_from(rpg_frame *f, const rp_frame_view *v, const uint8_t *base) {
    f->envelope_version = v->envelope_version;
    f->kind = v->kind;
    f->payload_protocol = v->payload_protocol;
    f->payload_encoding = v->payload_encoding;
    f->request_id = v->request_id;
    f->deadline_unix_ms = v->deadline_unix_ms;
    f->payload_off = rpg_off(base, v->payload.ptr, v->payload.len);
    f->payload_len = v->payload.len;
    f->traceparent_off = rpg_off(base, v->traceparent.ptr, v->traceparent.len);
    f->traceparent_len = v->traceparent.len;
    f->tracestate_off = rpg_off(base, v->tracestate.ptr, v->tracestate.len);
    f->tracestate_len = v->tracestate.len;
}

int32_t rpg_frame_encode(const rpg_frame *f, const uint8_t *payload, const char *traceparent,
                         const char *tracestate, uint8_t *buf, size_t cap, size_t *out_len,
                         rpg_err *e) {
    rp_frame_view v;
    rpg_view_from(&v, f, payload, traceparent, tracestate);
    RPG_RETURN(rp_frame_encode(&v, buf, cap, out_len));
}

int32_t rpg_frame_decode(const uint8_t *buf, size_t len, uint32_t max_body, rpg_frame *out,
                         size_t *out_len, rpg_err *e) {
    rp_frame_view v;
    RPG_TRY(rp_frame_decode(buf, len, max_body, &v, out_len));
    rpg_frame_from(out, &v, buf);
    return RP_STATUS_OK;
}

int32_t rpg_frame_encode_response(const rpg_frame *req, const char *traceparent,
                                  const char *tracestate, const uint8_t *payload, size_t len,
                                  uint8_t *buf, size_t cap, size_t *out_len, rpg_err *e) {
    rp_frame_view v;
    rpg_view_from(&v, req, NULL, traceparent, tracestate);
    v.payload.len = 0;
    RPG_RETURN(rp_frame_encode_response(&v, payload, len, buf, cap, out_len));
}

/* --- push client ----------------------------------------------------------------------- */

static void rpg_worker_conn_event_tramp(void *user_data, rp_push_worker_event event, uint32_t attempt,
                                        uint64_t delay_ms, rp_status status, const char *message) {
    uint64_t panic_id = 0;
    rpgoWorkerConnEvent((uintptr_t)user_data, (int32_t)event, attempt, delay_ms, (int32_t)status, (char *)message,
                        &panic_id);
    rpg_note_panic(panic_id);
}

int32_t rpg_worker_options_set_event_callback(rp_push_worker_options *o, uintptr_t handle) {
    return rp_push_worker_options_set_event_callback(o, rpg_worker_conn_event_tramp, (void *)handle,
                                                     rpg_free_handle);
}

int32_t rpg_client_recv(const rp_push_worker *c, int32_t timeout_ms, rp_push **out, rpg_err *e) {
    /* The worker's event callback runs inside the receive. */
    rpg_panic_begin();
    int32_t st = rp_push_worker_recv(c, timeout_ms, out);
    rpg_panic_end(e);
    RPG_RETURN(st);
}

int32_t rpg_client_reply(const rp_push_worker *c, uint64_t id, const uint8_t *payload, size_t len,
                         rpg_err *e) {
    RPG_RETURN(rp_push_worker_reply(c, id, payload, len));
}

int32_t rpg_client_reply_error(const rp_push_worker *c, uint64_t id, int32_t code,
                               const char *message, rpg_err *e) {
    RPG_RETURN(rp_push_worker_reply_error(c, id, code, message));
}

int32_t rpg_client_set_handler(rp_push_worker *c, uintptr_t handle, rpg_err *e) {
    if (handle == 0) RPG_RETURN(rp_push_worker_set_handler(c, NULL, NULL, NULL));
    RPG_RETURN(rp_push_worker_set_handler(c, rpg_push_handler_tramp, (void *)handle,
                                          rpg_free_handle));
}

int32_t rpg_client_dispatch(const rp_push_worker *c, int32_t timeout_ms, size_t max,
                            size_t *out_handled, rpg_err *e) {
    rpg_panic_begin();
    int32_t st = rp_push_worker_dispatch(c, timeout_ms, max, out_handled);
    rpg_panic_end(e);
    RPG_RETURN(st);
}

/* --- push server ----------------------------------------------------------------------- */

int32_t rpg_server_options_set_callbacks(rp_push_server_options *o, uintptr_t registration,
                                         uintptr_t worker) {
    int32_t st = RP_STATUS_OK;
    if (registration)
        st = rp_push_server_options_set_registration_callback(o, rpg_registration_tramp,
                                                              (void *)registration, rpg_free_handle);
    if (worker) {
        int32_t st2 =
            rp_push_server_options_set_worker_callback(o, rpg_worker_tramp, (void *)worker, rpg_free_handle);
        if (st == RP_STATUS_OK) st = st2;
    }
    return st;
}

int32_t rpg_server_push(const rp_push_server *s, const rpg_request_cfg *cfg, const uint8_t *payload,
                        size_t len, rp_push_ticket **out, rpg_err *e) {
    rp_push_request *r = NULL;
    RPG_TRY(rp_push_request_new(cfg->payload_protocol, payload, len, &r));
    int32_t st = RP_STATUS_OK;
    if (cfg->deadline_unix_ms != 0) st = rp_push_request_set_deadline_unix_ms(r, cfg->deadline_unix_ms);
    if (st == RP_STATUS_OK && cfg->traceparent != NULL)
        st = rp_push_request_set_traceparent(r, cfg->traceparent);
    if (st == RP_STATUS_OK && cfg->tracestate != NULL)
        st = rp_push_request_set_tracestate(r, cfg->tracestate);
    if (st == RP_STATUS_OK && cfg->to_worker != 0) st = rp_push_request_to_worker(r, cfg->to_worker);
    if (st == RP_STATUS_OK && cfg->to_task_queue != NULL)
        st = rp_push_request_to_task_queue(r, cfg->to_task_queue);
    if (st == RP_STATUS_OK && cfg->to_protocol != 0)
        st = rp_push_request_to_protocol(r, cfg->to_protocol);
    if (st == RP_STATUS_OK) st = rp_push_server_push(s, r, out);
    if (st != RP_STATUS_OK) rpg_fail(st, e);
    rp_push_request_free(r);
    return st;
}

int32_t rpg_ticket_wait(const rp_push_ticket *t, int32_t timeout_ms, rp_push_result **out,
                        rpg_err *e) {
    RPG_RETURN(rp_push_ticket_wait(t, timeout_ms, out));
}

int32_t rpg_server_dispatch(const rp_push_server *s, int32_t timeout_ms, size_t *out_handled,
                            rpg_err *e) {
    rpg_panic_begin();
    int32_t st = rp_push_server_dispatch(s, timeout_ms, out_handled);
    rpg_panic_end(e);
    RPG_RETURN(st);
}

/* --- identity -------------------------------------------------------------------------- */

int32_t rpg_identity_encode(const rp_daemon_identity *id, uint8_t *buf, size_t cap,
                            size_t *out_len, rpg_err *e) {
    RPG_RETURN(rp_daemon_identity_encode(id, buf, cap, out_len));
}

/* --- mux ------------------------------------------------------------------------------- */

int32_t rpg_mux_new(const rp_daemon_identity *id, const uint32_t *served, size_t n,
                    uintptr_t detect_handle, const rp_mux **out, rpg_err *e) {
    if (detect_handle == 0) RPG_RETURN(rp_mux_new(id, served, n, NULL, NULL, NULL, out));
    /* user_data passes to librp on every path (freed from within rp_mux_new on failure). */
    RPG_RETURN(rp_mux_new(id, served, n, rpg_detect_tramp, (void *)detect_handle, rpg_free_handle,
                          out));
}

int32_t rpg_mux_poll(const rp_mux *mux, const uint8_t *buf, size_t len, rpg_mux_result *out,
                     rpg_err *e) {
    rp_mux_event ev;
    rpg_panic_begin();
    int32_t st = rp_mux_poll(mux, buf, len, &ev);
    rpg_panic_end(e);
    RPG_TRY(st);
    out->kind = ev.kind;
    out->consumed = ev.consumed;
    rpg_frame_from(&out->frame, &ev.frame, buf);
    out->reply = NULL;
    out->reply_len = 0;
    /* The reply lives in a per-thread buffer; copy it before this thread runs anything else. */
    if (ev.reply.len != 0) {
        out->reply = malloc(ev.reply.len);
        if (out->reply == NULL) return RP_STATUS_IO;
        memcpy(out->reply, ev.reply.ptr, ev.reply.len);
        out->reply_len = ev.reply.len;
    }
    return RP_STATUS_OK;
}

/* --- connections ------------------------------------------------------------------------ */

int32_t rpg_conn_send(const rp_conn *c, const rpg_frame *f, const uint8_t *payload,
                      const char *traceparent, const char *tracestate, rpg_err *e) {
    rp_frame_view v;
    rpg_view_from(&v, f, payload, traceparent, tracestate);
    RPG_RETURN(rp_conn_send(c, &v));
}

int32_t rpg_conn_recv(const rp_conn *c, int32_t timeout_ms, rp_frame **out, rp_frame_view *view,
                      rpg_err *e) {
    RPG_TRY(rp_conn_recv(c, timeout_ms, out));
    int32_t st = rp_frame_view_of(*out, view);
    if (st != RP_STATUS_OK) {
        rpg_fail(st, e);
        rp_frame_free(*out);
        *out = NULL;
    }
    return st;
}

/* --- sessions ---------------------------------------------------------------------------- */

static void rpg_session_request_tramp(void *user_data, rp_session_request *request) {
    uint64_t panic_id = 0;
    rpgoSessionRequest((uintptr_t)user_data, request, &panic_id);
    rpg_note_panic(panic_id);
}

int32_t rpg_session_new(rp_conn *conn, int32_t side, uintptr_t handle, rp_session **out, rpg_err *e) {
    rpg_err_clear(e);
    if (handle == 0) RPG_RETURN(rp_session_new(conn, side, NULL, NULL, NULL, out));
    RPG_RETURN(rp_session_new(conn, side, rpg_session_request_tramp, (void *)handle, rpg_free_handle, out));
}

int32_t rpg_session_call_start(const rp_session *s, uint32_t protocol, const uint8_t *payload, size_t len,
                               rp_session_ticket **out, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_call_start(s, protocol, payload, len, NULL, out));
}

int32_t rpg_session_ticket_wait(const rp_session_ticket *t, int32_t timeout_ms, rp_msg **out, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_ticket_wait(t, timeout_ms, out));
}

int32_t rpg_session_dispatch(const rp_session *s, int32_t timeout_ms, size_t *handled, rpg_err *e) {
    rpg_err_clear(e);
    rpg_panic_begin();
    int32_t st = rp_session_dispatch(s, timeout_ms, handled);
    rpg_panic_end(e);
    return st == RP_STATUS_OK ? st : rpg_fail(st, e);
}

int32_t rpg_session_respond(rp_session_request *r, const uint8_t *payload, size_t len, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_respond(r, payload, len));
}

int32_t rpg_session_respond_error(rp_session_request *r, int32_t code, const char *message, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_respond_error(r, code, message));
}

int32_t rpg_session_ticket_next_chunk(const rp_session_ticket *t, int32_t timeout_ms, rp_msg **out, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_ticket_next_chunk(t, timeout_ms, out));
}

int32_t rpg_session_ticket_send_chunk(const rp_session_ticket *t, const uint8_t *chunk, size_t len, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_ticket_send_chunk(t, chunk, len));
}

int32_t rpg_session_ticket_close_write(const rp_session_ticket *t, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_ticket_close_write(t));
}

int32_t rpg_session_request_next_chunk(const rp_session_request *r, int32_t timeout_ms, rp_msg **out, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_request_next_chunk(r, timeout_ms, out));
}

int32_t rpg_session_request_send_chunk(const rp_session_request *r, const uint8_t *chunk, size_t len, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_request_send_chunk(r, chunk, len));
}

int32_t rpg_session_request_close_write(const rp_session_request *r, rpg_err *e) {
    rpg_err_clear(e);
    RPG_RETURN(rp_session_request_close_write(r));
}
