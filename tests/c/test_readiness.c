/* Every descriptor librp hands out is level-triggered: readable exactly while a receive would
 * return without waiting, also for what librp already took off the socket and buffered. A loop
 * that takes ONE item per wake-up (level-triggered epoll, or poll) must get every item of a
 * burst, and the descriptor must be quiet once nothing is pending (no busy loop).
 *
 * Checked for rp_conn_fd, rp_push_worker_fd, rp_push_server_event_fd and
 * rp_session_dispatch_fd, with bursts of 3 and 100, with epoll and with poll. */
#include "rp.h"
#include "check.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROTO 0x7001u
/* How long one wake-up may take before the loop counts the burst as stuck. */
#define STUCK_MS 2000

enum mode { USE_EPOLL, USE_POLL };

/* Waits up to `ms` for `fd` to be readable; 1 readable, 0 not. `ep` is an epoll set holding
 * `fd` (level-triggered) in USE_EPOLL mode. */
static int readable(enum mode m, int ep, int fd, int ms) {
    if (m == USE_EPOLL) {
        struct epoll_event ev;
        return epoll_wait(ep, &ev, 1, ms) == 1;
    }
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Takes what one wake-up should take: returns how many items it took (0 is allowed: a wake-up
 * for part of a frame), or -1 on failure. */
typedef long (*take_fn)(void *ctx);

/* Runs the event loop over `fd` until `n` items were taken, one take per wake-up; fails when
 * a wake-up does not come (items stuck inside librp) or the descriptor stays readable after. */
static void run_loop(const char *what, enum mode m, int fd, take_fn take, void *ctx, long n) {
    int ep = -1;
    if (m == USE_EPOLL) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    }
    long taken = 0, wakeups = 0;
    while (taken < n) {
        if (!readable(m, ep, fd, STUCK_MS)) {
            fprintf(stderr, "%s (%s): descriptor quiet with %ld of %ld taken\n", what,
                    m == USE_EPOLL ? "epoll" : "poll", taken, n);
            check_failures++;
            break;
        }
        long t = take(ctx);
        CHECK(t >= 0);
        if (t < 0) break;
        taken += t;
        if (++wakeups > 4 * n + 16) {
            fprintf(stderr, "%s: %ld wake-ups for %ld items (busy loop)\n", what, wakeups, n);
            check_failures++;
            break;
        }
    }
    /* Nothing pending: the descriptor is not readable. */
    if (readable(m, ep, fd, 50)) {
        fprintf(stderr, "%s (%s): descriptor readable with nothing pending\n", what,
                m == USE_EPOLL ? "epoll" : "poll");
        check_failures++;
    }
    if (ep >= 0) close(ep);
}

/* ---- conn ---------------------------------------------------------------------------- */

static long take_frame(void *ctx) {
    rp_frame *f = NULL;
    rp_status st = rp_conn_recv((rp_conn *)ctx, 0, &f);
    if (st == RP_STATUS_TIMEOUT) return 0;
    if (st != RP_STATUS_OK) return -1;
    rp_frame_free(f);
    return 1;
}

static void conn_burst(enum mode m, long n) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *conn = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &conn));
    int fd = rp_conn_fd(conn);
    CHECK(fd >= 0);
    CHECK(!readable(USE_POLL, -1, fd, 0));
    /* The whole burst in one write, so one read inside librp takes all of it. */
    static uint8_t burst[100 * 64];
    size_t at = 0;
    for (long i = 0; i < n; i++) {
        rp_frame_view f;
        CHECK_OK(rp_frame_view_init(&f));
        f.payload_protocol = PROTO;
        f.request_id = (uint64_t)i + 1;
        f.payload.ptr = (const uint8_t *)"burst";
        f.payload.len = 5;
        size_t len = 0;
        CHECK_OK(rp_frame_encode(&f, burst + at, sizeof burst - at, &len));
        at += len;
    }
    CHECK(write(sv[1], burst, at) == (ssize_t)at);
    char what[64];
    snprintf(what, sizeof what, "conn burst of %ld", n);
    run_loop(what, m, fd, take_frame, conn, n);
    close(sv[1]);
    rp_conn_free(conn);
}

/* rp_conn_fd asked for while another thread waits in rp_conn_recv does not wait for it, and
 * the descriptor is right once that receive returned. */
static void *recv_one(void *conn) {
    rp_frame *f = NULL;
    rp_status st = rp_conn_recv((rp_conn *)conn, 5000, &f);
    rp_frame_free(f);
    return (void *)(intptr_t)st;
}

static void conn_fd_while_receiving(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *conn = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &conn));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, recv_one, conn) == 0);
    usleep(50000); /* the thread now waits inside rp_conn_recv */
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int fd = rp_conn_fd(conn);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(fd >= 0);
    CHECK((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1000);
    rp_frame_view f;
    CHECK_OK(rp_frame_view_init(&f));
    f.payload_protocol = PROTO;
    uint8_t buf[64];
    size_t len = 0;
    CHECK_OK(rp_frame_encode(&f, buf, sizeof buf, &len));
    CHECK(write(sv[1], buf, len) == (ssize_t)len);
    void *st = NULL;
    pthread_join(t, &st);
    CHECK((intptr_t)st == RP_STATUS_OK);
    CHECK(!readable(USE_POLL, -1, fd, 0));
    close(sv[1]);
    rp_conn_free(conn);
}

/* ---- push client and push server -------------------------------------------------------- */

static char g_dir[] = "/tmp/rp-ready-XXXXXX";

static rp_push_worker *connect_worker(const char *ep) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "ready-worker", "q", &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    rp_push_worker *client = NULL;
    CHECK_OK(rp_push_worker_connect(opts, &client));
    return client;
}

static long take_push(void *ctx) {
    rp_push *p = NULL;
    rp_status st = rp_push_worker_recv((rp_push_worker *)ctx, 0, &p);
    if (st == RP_STATUS_TIMEOUT) return 0;
    if (st != RP_STATUS_OK) return -1;
    rp_push_free(p);
    return 1;
}

static void push_worker_burst(enum mode m, long n) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/client.sock", g_dir);
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &so));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    rp_push_worker *client = connect_worker(ep);
    int fd = rp_push_worker_fd(client);
    CHECK(fd >= 0);
    CHECK(!readable(USE_POLL, -1, fd, 0));
    rp_push_ticket *tickets[100];
    for (long i = 0; i < n; i++) {
        rp_push_request *req = NULL;
        CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"job", 3, &req));
        CHECK_OK(rp_push_server_push(server, req, &tickets[i]));
        rp_push_request_free(req);
    }
    char what[64];
    snprintf(what, sizeof what, "push client burst of %ld", n);
    run_loop(what, m, fd, take_push, client, n);
    for (long i = 0; i < n; i++) rp_push_ticket_free(tickets[i]);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

static void on_worker(void *user_data, const rp_push_worker_info *worker, bool connected, rp_str reason) {
    (void)worker;
    (void)reason;
    if (connected) (*(long *)user_data)++;
}

struct server_ctx {
    rp_push_server *server;
};

static long take_server_events(void *ctx) {
    size_t handled = 0;
    rp_status st = rp_push_server_dispatch(((struct server_ctx *)ctx)->server, 0, &handled);
    if (st == RP_STATUS_TIMEOUT) return 0;
    if (st != RP_STATUS_OK) return -1;
    return (long)handled;
}

static void push_server_burst(enum mode m, long n) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/server.sock", g_dir);
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &so));
    long connected = 0;
    CHECK_OK(rp_push_server_options_set_worker_callback(so, on_worker, &connected, NULL));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    int fd = rp_push_server_event_fd(server);
    CHECK(fd >= 0);
    CHECK(!readable(USE_POLL, -1, fd, 0));
    rp_push_worker *workers[100];
    for (long i = 0; i < n; i++) workers[i] = connect_worker(ep);
    struct server_ctx ctx = {server};
    char what[64];
    snprintf(what, sizeof what, "push server burst of %ld", n);
    run_loop(what, m, fd, take_server_events, &ctx, n);
    CHECK(connected == n);
    for (long i = 0; i < n; i++) rp_push_worker_free(workers[i]);
    rp_push_server_free(server);
}

/* ---- session ---------------------------------------------------------------------------- */

static void answer(void *user_data, rp_session_request *request) {
    (void)user_data;
    CHECK_OK(rp_session_respond(request, (const uint8_t *)"ok", 2));
}

struct session_ctx {
    rp_session *server;
};

static long take_requests(void *ctx) {
    size_t handled = 0;
    rp_status st = rp_session_dispatch(((struct session_ctx *)ctx)->server, 0, &handled);
    if (st == RP_STATUS_TIMEOUT) return 0;
    if (st != RP_STATUS_OK) return -1;
    return (long)handled;
}

static void session_burst(enum mode m, long n) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *ca = NULL, *cb = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &ca));
    CHECK_OK(rp_conn_adopt_fd(sv[1], &cb));
    rp_session *client = NULL, *server = NULL;
    CHECK_OK(rp_session_new(ca, RP_SESSION_SIDE_CONNECTING, NULL, NULL, NULL, &client));
    CHECK_OK(rp_session_new(cb, RP_SESSION_SIDE_ACCEPTING, answer, NULL, NULL, &server));
    int fd = rp_session_dispatch_fd(server);
    CHECK(fd >= 0);
    CHECK(!readable(USE_POLL, -1, fd, 0));
    rp_session_ticket *tickets[100];
    for (long i = 0; i < n; i++)
        CHECK_OK(rp_session_call_start(client, PROTO, (const uint8_t *)"req", 3, NULL, &tickets[i]));
    struct session_ctx ctx = {server};
    char what[64];
    snprintf(what, sizeof what, "session burst of %ld", n);
    run_loop(what, m, fd, take_requests, &ctx, n);
    for (long i = 0; i < n; i++) {
        rp_msg *resp = NULL;
        CHECK_OK(rp_session_ticket_wait(tickets[i], 5000, &resp));
        rp_msg_free(resp);
        rp_session_ticket_free(tickets[i]);
    }
    rp_session_free(client);
    rp_session_free(server);
}

/* ---- an ended handle: readable, and the receive returns CLOSED at once -------------------- */

static void closed_handles_are_readable(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *conn = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &conn));
    int fd = rp_conn_fd(conn);
    CHECK(!readable(USE_POLL, -1, fd, 0));
    rp_conn_close(conn);
    CHECK(readable(USE_POLL, -1, fd, 1000));
    rp_frame *f = NULL;
    CHECK_STATUS(rp_conn_recv(conn, 0, &f), RP_STATUS_CLOSED);
    rp_conn_free(conn);
    close(sv[1]);

    char ep[128];
    snprintf(ep, sizeof ep, "%s/closing.sock", g_dir);
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &so));
    long connected = 0;
    CHECK_OK(rp_push_server_options_set_worker_callback(so, on_worker, &connected, NULL));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    rp_push_worker *client = connect_worker(ep);
    int cfd = rp_push_worker_fd(client);
    int sfd = rp_push_server_event_fd(server);
    size_t handled = 0;
    while (rp_push_server_dispatch(server, 0, &handled) == RP_STATUS_OK) {}
    CHECK(!readable(USE_POLL, -1, cfd, 0));
    CHECK(!readable(USE_POLL, -1, sfd, 0));
    rp_push_worker_close(client);
    CHECK(readable(USE_POLL, -1, cfd, 1000));
    rp_push *p = NULL;
    CHECK_STATUS(rp_push_worker_recv(client, 0, &p), RP_STATUS_CLOSED);
    rp_push_server_shutdown(server);
    /* Events left (the worker's departure) come first, then CLOSED; readable all along. */
    rp_status st = RP_STATUS_OK;
    for (int i = 0; i < 10 && st == RP_STATUS_OK; i++) {
        CHECK(readable(USE_POLL, -1, sfd, 1000));
        st = rp_push_server_dispatch(server, 0, &handled);
    }
    CHECK_STATUS(st, RP_STATUS_CLOSED);
    CHECK(readable(USE_POLL, -1, sfd, 0));
    rp_push_worker_free(client);
    rp_push_server_free(server);

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *ca = NULL, *cb = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &ca));
    CHECK_OK(rp_conn_adopt_fd(sv[1], &cb));
    rp_session *sa = NULL, *sb = NULL;
    CHECK_OK(rp_session_new(ca, RP_SESSION_SIDE_CONNECTING, NULL, NULL, NULL, &sa));
    CHECK_OK(rp_session_new(cb, RP_SESSION_SIDE_ACCEPTING, answer, NULL, NULL, &sb));
    int dfd = rp_session_dispatch_fd(sb);
    CHECK(!readable(USE_POLL, -1, dfd, 0));
    rp_session_close(sb);
    CHECK(readable(USE_POLL, -1, dfd, 1000));
    CHECK_STATUS(rp_session_dispatch(sb, 0, &handled), RP_STATUS_CLOSED);
    rp_session_free(sa);
    rp_session_free(sb);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    CHECK(mkdtemp(g_dir) != NULL);
    conn_fd_while_receiving();
    closed_handles_are_readable();
    const long bursts[] = {3, 100};
    const enum mode modes[] = {USE_EPOLL, USE_POLL};
    for (int b = 0; b < 2; b++) {
        for (int mi = 0; mi < 2; mi++) {
            conn_burst(modes[mi], bursts[b]);
            push_worker_burst(modes[mi], bursts[b]);
            push_server_burst(modes[mi], bursts[b]);
            session_burst(modes[mi], bursts[b]);
        }
    }
    rmdir(g_dir);
    return CHECK_DONE("test_readiness");
}
