/* One timeout rule for every call and every *_timeout_ms option: 0 = do not wait (try once),
 * -1 = no limit, > 0 = milliseconds, anything else RP_STATUS_INVALID_ARGUMENT with the rule in
 * the message. For each call taking a timeout: -2 is refused, 0 returns at once, -1 waits until
 * a peer or a close from another thread wakes it (rp_session_listener_accept included: its
 * rp_session_listener_close wakes every waiting thread). A ticket's or a served request's wait
 * can also be ended alone by its _interrupt call. */
#include "rp.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROTO 0x7001u
/* "At once": well below any default wait librp had (1 s and more). */
#define AT_ONCE_MS 300.0
/* How long the waker waits before it wakes a call waiting without limit. */
#define WAKE_AFTER_MS 100

static char g_dir[] = "/tmp/rp-timeouts-XXXXXX";

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* -2 is refused, and the message states the rule. */
#define EXPECT_BAD_TIMEOUT(call)                                                           \
    do {                                                                                   \
        CHECK_STATUS(call, RP_STATUS_INVALID_ARGUMENT);                                    \
        CHECK_LAST_ERROR_CONTAINS("-1 (no limit)");                                        \
    } while (0)

/* The call returns `status` without waiting. */
#define EXPECT_AT_ONCE(call, status)                                                       \
    do {                                                                                   \
        double t0_ = now_ms();                                                             \
        CHECK_STATUS(call, status);                                                        \
        double took_ = now_ms() - t0_;                                                     \
        if (took_ >= AT_ONCE_MS) {                                                         \
            fprintf(stderr, "%s:%d: %s took %.0f ms with timeout 0\n", __FILE__, __LINE__, \
                    #call, took_);                                                         \
            check_failures++;                                                              \
        }                                                                                  \
    } while (0)

/* Runs `fn(arg)` on another thread after WAKE_AFTER_MS, to wake a call waiting without limit. */
struct waker {
    void (*fn)(void *);
    void *arg;
    pthread_t thread;
    double started;
};

static void *waker_main(void *p) {
    struct waker *w = (struct waker *)p;
    usleep(WAKE_AFTER_MS * 1000);
    w->fn(w->arg);
    return NULL;
}

static void wake_later(struct waker *w, void (*fn)(void *), void *arg) {
    w->fn = fn;
    w->arg = arg;
    w->started = now_ms();
    CHECK(pthread_create(&w->thread, NULL, waker_main, w) == 0);
}

/* After the waiting call returned: it did wait for the waker. */
#define woken(w) woken_at((w), __LINE__)
static void woken_at(struct waker *w, int line) {
    double took = now_ms() - w->started;
    if (took < WAKE_AFTER_MS * 0.8) {
        fprintf(stderr, "%s:%d: returned after %.0f ms, before the waker woke it\n", __FILE__, line, took);
        check_failures++;
    }
    pthread_join(w->thread, NULL);
}

/* ---- conn ---------------------------------------------------------------------------- */

static void close_conn(void *c) { rp_conn_close((rp_conn *)c); }

static void write_frame(void *fdp) {
    rp_frame_view f;
    if (rp_frame_view_init(&f) != RP_STATUS_OK) return;
    f.payload_protocol = PROTO;
    uint8_t buf[64];
    size_t len = 0;
    if (rp_frame_encode(&f, buf, sizeof buf, &len) == RP_STATUS_OK)
        CHECK(write(*(int *)fdp, buf, len) == (ssize_t)len);
}

static void conn_calls(void) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *conn = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &conn));
    rp_frame *f = NULL;
    rp_frame_view views[4];
    size_t count = 0;
    EXPECT_BAD_TIMEOUT(rp_conn_recv(conn, -2, &f));
    EXPECT_BAD_TIMEOUT(rp_conn_recv(conn, INT32_MIN, &f));
    EXPECT_BAD_TIMEOUT(rp_conn_recv_views(conn, -2, views, 4, &count));
    EXPECT_AT_ONCE(rp_conn_recv(conn, 0, &f), RP_STATUS_TIMEOUT);
    EXPECT_AT_ONCE(rp_conn_recv_views(conn, 0, views, 4, &count), RP_STATUS_TIMEOUT);
    struct waker w;
    /* -1 waits for the peer... */
    wake_later(&w, write_frame, &sv[1]);
    CHECK_OK(rp_conn_recv_views(conn, -1, views, 4, &count));
    woken(&w);
    CHECK(count == 1);
    /* ...or for a close from another thread. */
    wake_later(&w, close_conn, conn);
    CHECK_STATUS(rp_conn_recv(conn, -1, &f), RP_STATUS_CLOSED);
    woken(&w);
    rp_conn_free(conn);
    close(sv[1]);
}

/* ---- admin request --------------------------------------------------------------------- */

/* A Unix listener that accepts and reads but never answers; `peer` closes after the wake. */
struct silent_peer {
    int listener;
    int peer;
};

static void silent_listen(struct silent_peer *s, const char *path) {
    s->listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    CHECK(bind(s->listener, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(s->listener, 16) == 0);
    s->peer = -1;
}

static void accept_then_close(void *p) {
    struct silent_peer *s = (struct silent_peer *)p;
    int c = accept(s->listener, NULL, NULL);
    if (c < 0) return;
    char buf[256];
    (void)!recv(c, buf, sizeof buf, 0); /* take the request, so the close is a clean end */
    close(c);
}

static void admin_calls(void) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/silent.sock", g_dir);
    struct silent_peer s;
    silent_listen(&s, ep);
    rp_admin_reply *r = NULL;
    EXPECT_BAD_TIMEOUT(rp_admin_request(ep, 4, NULL, -2, &r));
    /* 0 no longer means 5 s: the reply is not there, so TIMEOUT at once. */
    EXPECT_AT_ONCE(rp_admin_request(ep, 4, NULL, 0, &r), RP_STATUS_TIMEOUT);
    /* -1 waits until the peer ends the connection (no 5 s cap). The connection of the call
     * above waits in the backlog: take it first. */
    accept_then_close(&s);
    struct waker w;
    wake_later(&w, accept_then_close, &s);
    CHECK_STATUS(rp_admin_request(ep, 4, NULL, -1, &r), RP_STATUS_CLOSED);
    woken(&w);
    close(s.listener);
    unlink(ep);

    /* Options with a timeout: the broker connect gives up at once with 0. */
    snprintf(ep, sizeof ep, "%s/silent-broker.sock", g_dir);
    silent_listen(&s, ep);
    rp_broker_options *o = NULL;
    CHECK_OK(rp_broker_options_new(ep, "demo", "1.0.0", "1.0.0", &o));
    EXPECT_BAD_TIMEOUT(rp_broker_options_set_timeout_ms(o, -2));
    EXPECT_BAD_TIMEOUT(rp_broker_options_set_adopt_handoff(o, true, -2));
    CHECK_OK(rp_broker_options_set_timeout_ms(o, -1));
    CHECK_OK(rp_broker_options_set_adopt_handoff(o, true, -1));
    CHECK_OK(rp_broker_options_set_adopt_handoff(o, false, 0));
    CHECK_OK(rp_broker_options_set_timeout_ms(o, 0));
    rp_broker_result *res = NULL;
    EXPECT_AT_ONCE(rp_broker_connect(o, &res), RP_STATUS_TIMEOUT);
    close(s.listener);
    unlink(ep);

    rp_broker_server_options *bo = NULL;
    snprintf(ep, sizeof ep, "%s/broker.sock", g_dir);
    CHECK_OK(rp_broker_server_options_new(ep, &bo));
    EXPECT_BAD_TIMEOUT(rp_broker_server_options_set_hello_timeout_ms(bo, -2));
    EXPECT_BAD_TIMEOUT(rp_broker_server_options_set_handoff_ack_timeout_ms(bo, -2));
    CHECK_OK(rp_broker_server_options_set_hello_timeout_ms(bo, -1));
    CHECK_OK(rp_broker_server_options_set_handoff_ack_timeout_ms(bo, 0));
    rp_broker_server_options_free(bo);
}

/* ---- handoff --------------------------------------------------------------------------- */

static void shut_fd(void *fdp) { shutdown(*(int *)fdp, SHUT_RDWR); }

static void handoff_calls(void) {
    const rp_handoff_store *store = NULL;
    CHECK_OK(rp_handoff_store_new(0, 0, &store));
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    bool accepted = false;
    uint64_t corr = 0;
    int32_t out_fd = -1;
    EXPECT_BAD_TIMEOUT(rp_handoff_serve_offer(store, sv[0], -2, &accepted, &corr));
    EXPECT_BAD_TIMEOUT(rp_handoff_accept(store, sv[0], -2, &out_fd));
    EXPECT_AT_ONCE(rp_handoff_serve_offer(store, sv[0], 0, &accepted, &corr), RP_STATUS_TIMEOUT);
    EXPECT_AT_ONCE(rp_handoff_accept(store, sv[0], 0, &out_fd), RP_STATUS_TIMEOUT);
    /* -1 waits until the peer ends the connection. */
    struct waker w;
    wake_later(&w, shut_fd, &sv[1]);
    rp_status st = rp_handoff_serve_offer(store, sv[0], -1, &accepted, &corr);
    woken(&w);
    CHECK(st != RP_STATUS_OK && st != RP_STATUS_TIMEOUT && st != RP_STATUS_INVALID_ARGUMENT);
    close(sv[0]);
    close(sv[1]);
    rp_handoff_store_free(store);
}

/* ---- push ------------------------------------------------------------------------------ */

static rp_push_worker *connect_worker(const char *ep, int32_t connect_timeout_ms, rp_status expect) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "timeouts-worker", "q", &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    EXPECT_BAD_TIMEOUT(rp_push_worker_options_set_connect_timeout_ms(opts, -2));
    CHECK_OK(rp_push_worker_options_set_connect_timeout_ms(opts, connect_timeout_ms));
    rp_push_worker *client = NULL;
    if (connect_timeout_ms == 0)
        EXPECT_AT_ONCE(rp_push_worker_connect(opts, &client), expect);
    else
        CHECK_STATUS(rp_push_worker_connect(opts, &client), expect);
    return client;
}

static int32_t ignore_push(void *user_data, const rp_push_worker *client, const rp_push *push) {
    (void)user_data;
    (void)client;
    (void)push;
    return RP_STATUS_OK;
}

static void on_worker(void *user_data, const rp_push_worker_info *worker, bool connected, rp_str reason) {
    (void)worker;
    (void)reason;
    if (!connected) (*(int *)user_data)++;
}

static void close_client(void *c) { rp_push_worker_close((const rp_push_worker *)c); }
static void shutdown_server(void *s) { rp_push_server_shutdown((const rp_push_server *)s); }

static void push_calls(void) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/push.sock", g_dir);
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &so));
    EXPECT_BAD_TIMEOUT(rp_push_server_options_set_handshake_timeout_ms(so, -2));
    EXPECT_BAD_TIMEOUT(rp_push_server_options_set_frame_timeout_ms(so, -2));
    CHECK_OK(rp_push_server_options_set_handshake_timeout_ms(so, -1));
    CHECK_OK(rp_push_server_options_set_frame_timeout_ms(so, -1));
    int gone = 0;
    CHECK_OK(rp_push_server_options_set_worker_callback(so, on_worker, &gone, NULL));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    rp_push_worker *client = connect_worker(ep, -1, RP_STATUS_OK);
    CHECK_OK(rp_push_worker_set_handler(client, ignore_push, NULL, NULL));

    rp_push *p = NULL;
    size_t handled = 0;
    EXPECT_BAD_TIMEOUT(rp_push_worker_recv(client, -2, &p));
    EXPECT_BAD_TIMEOUT(rp_push_worker_dispatch(client, -2, 0, &handled));
    EXPECT_AT_ONCE(rp_push_worker_recv(client, 0, &p), RP_STATUS_TIMEOUT);
    EXPECT_AT_ONCE(rp_push_worker_dispatch(client, 0, 0, &handled), RP_STATUS_TIMEOUT);

    EXPECT_BAD_TIMEOUT(rp_push_server_dispatch(server, -2, &handled));
    while (rp_push_server_dispatch(server, 0, &handled) == RP_STATUS_OK) {}
    EXPECT_AT_ONCE(rp_push_server_dispatch(server, 0, &handled), RP_STATUS_TIMEOUT);

    /* A push the worker never answers: 0 returns at once, -1 waits until the worker leaves. */
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"job", 3, &req));
    rp_push_result *result = NULL;
    EXPECT_BAD_TIMEOUT(rp_push_server_push_wait(server, req, -2, &result));
    rp_push_ticket *ticket = NULL;
    CHECK_OK(rp_push_server_push(server, req, &ticket));
    EXPECT_BAD_TIMEOUT(rp_push_ticket_wait(ticket, -2, &result));
    EXPECT_AT_ONCE(rp_push_ticket_wait(ticket, 0, &result), RP_STATUS_TIMEOUT);
    EXPECT_AT_ONCE(rp_push_server_push_wait(server, req, 0, &result), RP_STATUS_TIMEOUT);
    struct waker w;
    wake_later(&w, close_client, client);
    CHECK_STATUS(rp_push_ticket_wait(ticket, -1, &result), RP_STATUS_CLOSED);
    woken(&w);
    rp_push_ticket_free(ticket);
    rp_push_worker_free(client);

    /* A worker's recv waiting without limit is woken by a close from another thread. */
    client = connect_worker(ep, 5000, RP_STATUS_OK);
    wake_later(&w, close_client, client);
    CHECK_STATUS(rp_push_worker_recv(client, -1, &p), RP_STATUS_CLOSED);
    woken(&w);
    rp_push_worker_free(client);

    /* A push waited for without limit: woken when the worker leaves without answering. */
    client = connect_worker(ep, 5000, RP_STATUS_OK);
    wake_later(&w, close_client, client);
    CHECK_STATUS(rp_push_server_push_wait(server, req, -1, &result), RP_STATUS_CLOSED);
    woken(&w);
    rp_push_worker_free(client);

    /* A worker's dispatch waiting without limit is woken by its close. */
    client = connect_worker(ep, 5000, RP_STATUS_OK);
    CHECK_OK(rp_push_worker_set_handler(client, ignore_push, NULL, NULL));
    wake_later(&w, close_client, client);
    CHECK_STATUS(rp_push_worker_dispatch(client, -1, 0, &handled), RP_STATUS_CLOSED);
    woken(&w);
    rp_push_worker_free(client);

    /* The server's dispatch waiting without limit is woken by a shutdown (once the workers'
     * departures, which come on their own time, were handled). */
    while (gone < 4 && rp_push_server_dispatch(server, 2000, &handled) == RP_STATUS_OK) {}
    CHECK(gone == 4);
    wake_later(&w, shutdown_server, server);
    CHECK_STATUS(rp_push_server_dispatch(server, -1, &handled), RP_STATUS_CLOSED);
    woken(&w);
    rp_push_request_free(req);
    rp_push_server_free(server);

    /* A connect timeout of 0 does not wait for the registration (it was 1 ms). */
    char silent[128];
    snprintf(silent, sizeof silent, "%s/silent-push.sock", g_dir);
    struct silent_peer s;
    silent_listen(&s, silent);
    client = connect_worker(silent, 0, RP_STATUS_TIMEOUT);
    CHECK(client == NULL);
    close(s.listener);
    unlink(silent);
}

/* ---- session --------------------------------------------------------------------------- */

static rp_session_request *g_request = NULL;

static void keep_request(void *user_data, rp_session_request *request) {
    (void)user_data;
    if (g_request) rp_session_request_free(g_request);
    g_request = request;
}

static void close_session(void *s) { rp_session_close((const rp_session *)s); }

static void session_calls(void) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/session.sock", g_dir);
    rp_session_listener *l = NULL;
    CHECK_OK(rp_session_listener_bind(ep, &l));
    rp_session *a = NULL, *b = NULL;
    EXPECT_BAD_TIMEOUT(rp_session_connect(ep, -2, NULL, NULL, NULL, &a));
    EXPECT_BAD_TIMEOUT(rp_session_listener_accept(l, -2, keep_request, NULL, NULL, &b));
    EXPECT_AT_ONCE(rp_session_listener_accept(l, 0, keep_request, NULL, NULL, &b), RP_STATUS_TIMEOUT);
    /* A Unix connect needs no wait: 0 connects. */
    EXPECT_AT_ONCE(rp_session_connect(ep, 0, NULL, NULL, NULL, &a), RP_STATUS_OK);
    CHECK_OK(rp_session_listener_accept(l, -1, keep_request, NULL, NULL, &b));

    rp_msg *m = NULL;
    size_t handled = 0;
    EXPECT_BAD_TIMEOUT(rp_session_call(a, PROTO, (const uint8_t *)"x", 1, NULL, -2, &m));
    EXPECT_BAD_TIMEOUT(rp_session_dispatch(b, -2, &handled));
    EXPECT_AT_ONCE(rp_session_dispatch(b, 0, &handled), RP_STATUS_TIMEOUT);
    EXPECT_AT_ONCE(rp_session_call(a, PROTO, (const uint8_t *)"x", 1, NULL, 0, &m), RP_STATUS_TIMEOUT);

    rp_session_ticket *t = NULL;
    CHECK_OK(rp_session_call_start(a, PROTO, (const uint8_t *)"y", 1, NULL, &t));
    EXPECT_BAD_TIMEOUT(rp_session_ticket_wait(t, -2, &m));
    EXPECT_BAD_TIMEOUT(rp_session_ticket_next_chunk(t, -2, &m));
    EXPECT_AT_ONCE(rp_session_ticket_wait(t, 0, &m), RP_STATUS_TIMEOUT);
    EXPECT_AT_ONCE(rp_session_ticket_next_chunk(t, 0, &m), RP_STATUS_TIMEOUT);
    /* The served side: its request's stream reads follow the rule too. */
    while (g_request == NULL && rp_session_dispatch(b, 1000, &handled) == RP_STATUS_OK) {}
    CHECK(g_request != NULL);
    if (g_request) {
        EXPECT_BAD_TIMEOUT(rp_session_request_next_chunk(g_request, -2, &m));
        EXPECT_AT_ONCE(rp_session_request_next_chunk(g_request, 0, &m), RP_STATUS_TIMEOUT);
        rp_session_request_free(g_request);
        g_request = NULL;
    }
    /* -1 waits until a close from another thread (a call the peer has not served: freeing
     * the request above answered the first one). */
    rp_session_ticket_free(t);
    CHECK_OK(rp_session_call_start(a, PROTO, (const uint8_t *)"z", 1, NULL, &t));
    struct waker w;
    wake_later(&w, close_session, a);
    CHECK_STATUS(rp_session_ticket_wait(t, -1, &m), RP_STATUS_CLOSED);
    woken(&w);
    rp_session_ticket_free(t);
    rp_session_free(a);
    rp_session_free(b);
    /* A fresh pair (the first ended with the close): dispatch waits until its own close. */
    CHECK_OK(rp_session_connect(ep, -1, NULL, NULL, NULL, &a));
    CHECK_OK(rp_session_listener_accept(l, -1, keep_request, NULL, NULL, &b));
    wake_later(&w, close_session, b);
    CHECK_STATUS(rp_session_dispatch(b, -1, &handled), RP_STATUS_CLOSED);
    woken(&w);
    rp_session_free(a);
    rp_session_free(b);
    /* And a call waits without limit until its session is closed. */
    CHECK_OK(rp_session_connect(ep, -1, NULL, NULL, NULL, &a));
    CHECK_OK(rp_session_listener_accept(l, -1, keep_request, NULL, NULL, &b));
    wake_later(&w, close_session, a);
    CHECK_STATUS(rp_session_call(a, PROTO, (const uint8_t *)"w", 1, NULL, -1, &m), RP_STATUS_CLOSED);
    woken(&w);
    rp_session_free(a);
    rp_session_free(b);
    rp_session_listener_free(l);
}

/* ---- a listener's accept is woken by its close ---------------------------------------- */

static void close_listener(void *l) { rp_session_listener_close((const rp_session_listener *)l); }

static void *accept_forever(void *l) {
    rp_session *s = NULL;
    return (void *)(intptr_t)rp_session_listener_accept((const rp_session_listener *)l, -1, NULL, NULL, NULL, &s);
}

static void listener_close_wakes_accept(void) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/closing.sock", g_dir);
    rp_session_listener *l = NULL;
    CHECK_OK(rp_session_listener_bind(ep, &l));
    /* Two threads wait without limit; a close from a third wakes both. */
    pthread_t other;
    CHECK(pthread_create(&other, NULL, accept_forever, l) == 0);
    struct waker w;
    wake_later(&w, close_listener, l);
    rp_session *s = NULL;
    CHECK_STATUS(rp_session_listener_accept(l, -1, NULL, NULL, NULL, &s), RP_STATUS_CLOSED);
    CHECK(s == NULL);
    woken(&w);
    void *other_status = NULL;
    pthread_join(other, &other_status);
    CHECK((intptr_t)other_status == RP_STATUS_CLOSED);
    /* Later accepts fail at once; closing again is harmless; NULL is a no-op. */
    EXPECT_AT_ONCE(rp_session_listener_accept(l, -1, NULL, NULL, NULL, &s), RP_STATUS_CLOSED);
    rp_session_listener_close(l);
    rp_session_listener_close(NULL);
    rp_session_listener_free(l);

    /* The same for a TCP listener. */
    CHECK_OK(rp_session_listener_bind("tcp://127.0.0.1:0", &l));
    wake_later(&w, close_listener, l);
    CHECK_STATUS(rp_session_listener_accept(l, -1, NULL, NULL, NULL, &s), RP_STATUS_CLOSED);
    woken(&w);
    rp_session_listener_free(l);
}

/* ---- interrupts ---------------------------------------------------------------------------- */

/* An interrupt ends one wait on a ticket or a served request, and nothing else: the push, call
 * or request goes on and its outcome comes to a later wait. With no wait blocked, the next one
 * takes the interrupt at once. */

static void interrupt_push_ticket(void *t) { rp_push_ticket_interrupt((const rp_push_ticket *)t); }
static void interrupt_session_ticket(void *t) { rp_session_ticket_interrupt((const rp_session_ticket *)t); }
static void interrupt_request(void *r) { rp_session_request_interrupt((const rp_session_request *)r); }

static void push_interrupts(void) {
    char ep[128];
    snprintf(ep, sizeof ep, "%s/interrupt.sock", g_dir);
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &so));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    rp_push_worker *client = connect_worker(ep, 5000, RP_STATUS_OK);

    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"job", 3, &req));
    rp_push_ticket *ticket = NULL;
    CHECK_OK(rp_push_server_push(server, req, &ticket));
    rp_push *p = NULL;
    CHECK_OK(rp_push_worker_recv(client, 5000, &p));

    rp_push_result *result = NULL;
    rp_push_ticket_interrupt(ticket);
    EXPECT_AT_ONCE(rp_push_ticket_wait(ticket, -1, &result), RP_STATUS_INTERRUPTED);
    EXPECT_AT_ONCE(rp_push_ticket_wait(ticket, 0, &result), RP_STATUS_TIMEOUT);
    struct waker w;
    wake_later(&w, interrupt_push_ticket, ticket);
    CHECK_STATUS(rp_push_ticket_wait(ticket, -1, &result), RP_STATUS_INTERRUPTED);
    woken(&w);
    CHECK(!rp_push_ticket_is_done(ticket));

    /* The push went on: its answer comes to the next wait. */
    CHECK_OK(rp_push_worker_reply(client, rp_push_correlation_id(p), (const uint8_t *)"done", 4));
    CHECK_OK(rp_push_ticket_wait(ticket, 5000, &result));
    rp_bytes answer = rp_push_result_payload(result);
    CHECK(answer.len == 4 && memcmp(answer.ptr, "done", 4) == 0);
    rp_push_result_free(result);
    rp_push_ticket_interrupt(NULL);

    rp_push_free(p);
    rp_push_ticket_free(ticket);
    rp_push_request_free(req);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

static rp_session_request *_Atomic g_held;
static void hold_request(void *user_data, rp_session_request *req) {
    (void)user_data;
    g_held = req;
}

static void *serve_until_closed(void *arg) {
    rp_session *session = (rp_session *)arg;
    rp_status st;
    while ((st = rp_session_dispatch(session, 200, NULL)) == RP_STATUS_OK || st == RP_STATUS_TIMEOUT) {}
    return NULL;
}

static void session_interrupts(void) {
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    rp_conn *ca = NULL, *cb = NULL;
    CHECK_OK(rp_conn_adopt_fd(fds[0], &ca));
    CHECK_OK(rp_conn_adopt_fd(fds[1], &cb));
    rp_session *a = NULL, *b = NULL;
    CHECK_OK(rp_session_new(ca, RP_SESSION_SIDE_CONNECTING, NULL, NULL, NULL, &a));
    CHECK_OK(rp_session_new(cb, RP_SESSION_SIDE_ACCEPTING, hold_request, NULL, NULL, &b));
    pthread_t server_thread;
    CHECK(pthread_create(&server_thread, NULL, serve_until_closed, b) == 0);

    rp_session_ticket *call = NULL;
    CHECK_OK(rp_session_call_start(a, PROTO, (const uint8_t *)"x", 1, NULL, &call));
    for (int i = 0; i < 500 && g_held == NULL; i++) usleep(10 * 1000);
    rp_session_request *held = g_held;
    CHECK(held != NULL);
    if (held == NULL) return;

    /* The caller's waits: one taken at once, the blocked ones woken. */
    rp_msg *msg = NULL;
    rp_session_ticket_interrupt(call);
    EXPECT_AT_ONCE(rp_session_ticket_wait(call, -1, &msg), RP_STATUS_INTERRUPTED);
    struct waker w;
    wake_later(&w, interrupt_session_ticket, call);
    CHECK_STATUS(rp_session_ticket_next_chunk(call, -1, &msg), RP_STATUS_INTERRUPTED);
    woken(&w);
    wake_later(&w, interrupt_session_ticket, call);
    CHECK_STATUS(rp_session_ticket_wait(call, -1, &msg), RP_STATUS_INTERRUPTED);
    woken(&w);
    CHECK(!rp_session_ticket_is_done(call));

    /* The served request's wait for the caller's chunks. */
    wake_later(&w, interrupt_request, held);
    CHECK_STATUS(rp_session_request_next_chunk(held, -1, &msg), RP_STATUS_INTERRUPTED);
    woken(&w);
    CHECK(!rp_session_request_is_cancelled(held));

    /* Both went on: a chunk, then the answer, come through. */
    CHECK_OK(rp_session_ticket_send_chunk(call, (const uint8_t *)"c", 1));
    CHECK_OK(rp_session_request_next_chunk(held, 5000, &msg));
    CHECK(rp_msg_len(msg) == 1 && rp_msg_data(msg)[0] == 'c');
    rp_msg_free(msg);
    CHECK_OK(rp_session_respond(held, (const uint8_t *)"done", 4));
    CHECK_OK(rp_session_ticket_wait(call, 5000, &msg));
    CHECK(rp_msg_len(msg) == 4 && memcmp(rp_msg_data(msg), "done", 4) == 0);
    rp_msg_free(msg);
    rp_session_ticket_interrupt(NULL);
    rp_session_request_interrupt(NULL);

    rp_session_ticket_free(call);
    rp_session_free(a);
    pthread_join(server_thread, NULL);
    rp_session_free(b);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    CHECK(mkdtemp(g_dir) != NULL);
    conn_calls();
    admin_calls();
    handoff_calls();
    push_calls();
    session_calls();
    listener_close_wakes_accept();
    push_interrupts();
    session_interrupts();
    rmdir(g_dir);
    return CHECK_DONE("test_timeouts");
}
