/*
 * uv_worker: a push worker and a broker connection driven by one libuv loop.
 *
 *   uv_worker PUSH_ENDPOINT BROKER_ENDPOINT SERVICE VERSION
 *
 * Registers with the push server at PUSH_ENDPOINT (task queue "uppercase", protocol 0x7001)
 * and reaches SERVICE through the broker at BROKER_ENDPOINT (an rp_conn to its backend). Each
 * push is forwarded to the backend as a REQUEST whose request id is the push's correlation
 * id; the backend's RESPONSE is the push's reply. Both descriptors (rp_push_worker_fd and
 * rp_conn_fd) are watched with uv_poll_t for UV_READABLE; every wakeup drains what a receive
 * with timeout 0 returns, so no frame stays buffered inside librp. Exits 0 when the push server
 * closes the connection, 1 on any failure or after 20 s.
 *
 * scripts/uv-demo.sh runs it against examples/c/push_server.c, a librp broker
 * (broker_client --serve) and examples/c/legacy_daemon.c as the backend.
 */
#include <rp.h>
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>

#define PROTO 0x7001u

typedef struct app {
    rp_push_worker *worker;
    rp_conn *backend;
    uv_poll_t worker_watch, backend_watch;
    uv_timer_t limit;
    int forwarded, answered, exit_code;
} app;

static void report(const char *what, rp_status st) {
    char msg[512];
    rp_last_error_message(msg, sizeof msg);
    fprintf(stderr, "uv_worker: %s: %s (%s)\n", what, rp_status_str(st), msg);
}

/* Stops watching everything; uv_run returns once the handles are closed. */
static void finish(app *a, int exit_code) {
    a->exit_code = exit_code;
    if (!uv_is_closing((uv_handle_t *)&a->worker_watch)) uv_close((uv_handle_t *)&a->worker_watch, NULL);
    if (!uv_is_closing((uv_handle_t *)&a->backend_watch)) uv_close((uv_handle_t *)&a->backend_watch, NULL);
    if (!uv_is_closing((uv_handle_t *)&a->limit)) uv_close((uv_handle_t *)&a->limit, NULL);
}

/* The worker's descriptor is readable: forward every push waiting to the backend. */
static void on_worker_readable(uv_poll_t *watch, int status, int events) {
    app *a = watch->data;
    (void)events;
    if (status < 0) {
        finish(a, 1);
        return;
    }
    for (;;) {
        rp_push *push = NULL;
        rp_status st = rp_push_worker_recv(a->worker, 0, &push);
        if (st == RP_STATUS_TIMEOUT) return; /* drained */
        if (st == RP_STATUS_CLOSED) {
            printf("uv_worker: the push server closed the connection after %d answers\n", a->answered);
            finish(a, a->answered == a->forwarded ? 0 : 1);
            return;
        }
        if (st != RP_STATUS_OK) {
            report("receive a push", st);
            finish(a, 1);
            return;
        }
        rp_frame_view request;
        st = rp_frame_view_init(&request);
        request.kind = RP_FRAME_KIND_REQUEST;
        request.payload_protocol = PROTO;
        request.request_id = rp_push_correlation_id(push);
        request.payload = rp_push_payload(push);
        if (st == RP_STATUS_OK) st = rp_conn_send(a->backend, &request);
        rp_push_free(push);
        if (st != RP_STATUS_OK) {
            report("forward to the backend", st);
            finish(a, 1);
            return;
        }
        a->forwarded++;
    }
}

/* The backend's descriptor is readable: every RESPONSE answers the push it names. */
static void on_backend_readable(uv_poll_t *watch, int status, int events) {
    app *a = watch->data;
    (void)events;
    if (status < 0) {
        finish(a, 1);
        return;
    }
    for (;;) {
        rp_frame *frame = NULL;
        rp_status st = rp_conn_recv(a->backend, 0, &frame);
        if (st == RP_STATUS_TIMEOUT) return; /* drained */
        if (st != RP_STATUS_OK) {
            report("receive from the backend", st);
            finish(a, 1);
            return;
        }
        rp_frame_view answer;
        st = rp_frame_view_of(frame, &answer);
        if (st == RP_STATUS_OK) {
            printf("uv_worker: push %llu answered by the backend: %.*s\n", (unsigned long long)answer.request_id,
                   (int)answer.payload.len, (const char *)answer.payload.ptr);
            st = rp_push_worker_reply(a->worker, answer.request_id, answer.payload.ptr, answer.payload.len);
        }
        rp_frame_free(frame);
        if (st != RP_STATUS_OK) {
            report("reply", st);
            finish(a, 1);
            return;
        }
        a->answered++;
    }
}

static void on_limit(uv_timer_t *timer) {
    fprintf(stderr, "uv_worker: still running after 20 s\n");
    finish(timer->data, 1);
}

static rp_status connect_worker(const char *endpoint, rp_push_worker **out) {
    rp_push_worker_options *opts = NULL;
    rp_status st = rp_push_worker_options_new(endpoint, "uv-worker", "uppercase", &opts);
    if (st != RP_STATUS_OK) return st;
    st = rp_push_worker_options_add_payload_protocol(opts, PROTO);
    if (st != RP_STATUS_OK) {
        rp_push_worker_options_free(opts);
        return st;
    }
    return rp_push_worker_connect(opts, out); /* consumes opts */
}

static rp_status connect_backend(const char *broker, const char *service, const char *version, rp_conn **out) {
    rp_broker_options *opts = NULL;
    rp_status st = rp_broker_options_new(broker, service, version, version, &opts);
    if (st != RP_STATUS_OK) return st;
    rp_broker_result *result = NULL;
    st = rp_broker_connect(opts, &result); /* consumes opts */
    if (st != RP_STATUS_OK) return st;
    st = rp_broker_result_take_conn(result, out);
    rp_broker_result_free(result);
    return st;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s PUSH_ENDPOINT BROKER_ENDPOINT SERVICE VERSION\n", argv[0]);
        return 2;
    }
    app a = {0};
    rp_status st = connect_backend(argv[2], argv[3], argv[4], &a.backend);
    if (st != RP_STATUS_OK) {
        report("reach the backend through the broker", st);
        return 1;
    }
    st = connect_worker(argv[1], &a.worker);
    if (st != RP_STATUS_OK) {
        report("register with the push server", st);
        rp_conn_free(a.backend);
        return 1;
    }
    printf("uv_worker: registered as worker %llu; backend reached\n",
           (unsigned long long)rp_push_worker_id(a.worker));
    fflush(stdout);

    uv_loop_t *loop = uv_default_loop();
    a.worker_watch.data = a.backend_watch.data = a.limit.data = &a;
    if (uv_poll_init(loop, &a.worker_watch, rp_push_worker_fd(a.worker)) != 0 ||
        uv_poll_init(loop, &a.backend_watch, rp_conn_fd(a.backend)) != 0 || uv_timer_init(loop, &a.limit) != 0) {
        fprintf(stderr, "uv_worker: cannot watch the descriptors\n");
        return 1;
    }
    uv_poll_start(&a.worker_watch, UV_READABLE, on_worker_readable);
    uv_poll_start(&a.backend_watch, UV_READABLE, on_backend_readable);
    uv_timer_start(&a.limit, on_limit, 20000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);

    rp_push_worker_free(a.worker);
    rp_conn_free(a.backend);
    printf("uv_worker: %d pushes forwarded, %d answered\n", a.forwarded, a.answered);
    return a.exit_code;
}
