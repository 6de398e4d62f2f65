/* Sessions through the C API over Unix socket pairs: 8 threads making 10,000 calls, both sides
 * calling each other, a stream of 1,000 chunks, a tunnel with half-close, cancel mid-call,
 * deadline expiry, the peer dying with 100 calls pending, a dispatcher answering from another
 * thread, a request with no dispatcher, application errors, deadline and trace propagation.
 *
 * argv[1] is the vectors folder (unused). The process re-executes itself with --child-peer FD
 * to have a peer it can kill. */
#include "rp.h"
#include "check.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTO_ECHO 0x7001u   /* answered with the payload */
#define PROTO_STREAM 0x7002u /* answered with 1,000 chunks, then "done" */
#define PROTO_TUNNEL 0x7003u /* a thread echoes each chunk back until the caller half-closes */
#define PROTO_HOLD 0x7004u   /* kept unanswered in `held` */
#define PROTO_LATER 0x7005u  /* answered by a worker thread */
#define PROTO_FAIL 0x7006u   /* answered with application error 1234 */
#define PROTO_META 0x7007u   /* answered with the deadline and traceparent it saw */

#define STREAM_CHUNKS 1000
#define MAX_HELD 256

static char g_self[4096];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t unix_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* ------------------------------------------------------------------------------------------ */
/* The serving side                                                                            */
/* ------------------------------------------------------------------------------------------ */

typedef struct server {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int expect_odd_ids; /* the peer's parity: 1 when the peer is the connecting side */
    long served;
    long wrong_parity;
    rp_session_request *held[MAX_HELD];
    int held_count;
    rp_session_request *later[MAX_HELD];
    int later_count;
    int stopping;
} server;

static void server_init(server *s, int expect_odd_ids) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->expect_odd_ids = expect_odd_ids;
}

/* A counter the dispatchers update, read under their lock. */
static long counter(server *s, const long *field) {
    pthread_mutex_lock(&s->lock);
    long v = *field;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static void server_destroy(server *s) {
    for (int i = 0; i < s->held_count; i++) rp_session_request_free(s->held[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
}

/* Echoes every chunk of a tunnel, then answers with the number of chunks. */
static void *tunnel_thread(void *arg) {
    rp_session_request *req = (rp_session_request *)arg;
    int n = 0;
    for (;;) {
        rp_msg *chunk = NULL;
        rp_status st = rp_session_request_next_chunk(req, 5000, &chunk);
        if (st != RP_STATUS_OK) {
            CHECK_STATUS(st, RP_STATUS_CLOSED); /* the caller half-closed */
            break;
        }
        CHECK_OK(rp_session_request_send_chunk(req, rp_msg_data(chunk), rp_msg_len(chunk)));
        rp_msg_free(chunk);
        n++;
    }
    char answer[32];
    int len = snprintf(answer, sizeof answer, "%d", n);
    CHECK_OK(rp_session_respond(req, (const uint8_t *)answer, (size_t)len));
    return NULL;
}

static void dispatcher(void *user_data, rp_session_request *req) {
    server *s = (server *)user_data;
    uint64_t id = rp_session_request_id(req);
    pthread_mutex_lock(&s->lock);
    s->served++;
    if ((int)(id % 2) != s->expect_odd_ids) s->wrong_parity++;
    pthread_mutex_unlock(&s->lock);

    rp_bytes p = rp_session_request_payload(req);
    switch (rp_session_request_payload_protocol(req)) {
    case PROTO_ECHO:
        CHECK_OK(rp_session_respond(req, p.ptr, p.len));
        break;
    case PROTO_STREAM:
        for (int i = 0; i < STREAM_CHUNKS; i++) {
            char chunk[32];
            int len = snprintf(chunk, sizeof chunk, "chunk %d", i);
            CHECK_OK(rp_session_request_send_chunk(req, (const uint8_t *)chunk, (size_t)len));
        }
        CHECK_OK(rp_session_respond(req, (const uint8_t *)"done", 4));
        break;
    case PROTO_TUNNEL: {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, tunnel_thread, req) == 0);
        pthread_detach(t);
        break;
    }
    case PROTO_HOLD:
        pthread_mutex_lock(&s->lock);
        if (s->held_count < MAX_HELD) s->held[s->held_count++] = req;
        else rp_session_request_free(req);
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
        break;
    case PROTO_LATER:
        pthread_mutex_lock(&s->lock);
        if (s->later_count < MAX_HELD) s->later[s->later_count++] = req;
        else rp_session_request_free(req);
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
        break;
    case PROTO_FAIL: {
        /* A 4-byte payload is the code to answer with; 1234 otherwise. */
        rp_bytes p = rp_session_request_payload(req);
        int32_t code = 1234;
        if (p.len == sizeof code) memcpy(&code, p.ptr, sizeof code);
        CHECK_OK(rp_session_respond_error(req, code, "application says no"));
        break;
    }
    case PROTO_META: {
        rp_str tp = rp_session_request_traceparent(req);
        char answer[256];
        int len = snprintf(answer, sizeof answer, "deadline=%llu tp=%.*s",
                           (unsigned long long)rp_session_request_deadline_unix_ms(req), (int)tp.len, tp.ptr);
        CHECK_OK(rp_session_respond(req, (const uint8_t *)answer, (size_t)len));
        break;
    }
    default:
        CHECK_OK(rp_session_respond_error(req, RP_STATUS_INVALID_ARGUMENT, "unknown protocol"));
    }
}

/* Answers PROTO_LATER requests on its own thread with "later:" + payload. */
static void *later_worker(void *arg) {
    server *s = (server *)arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->later_count == 0 && !s->stopping) pthread_cond_wait(&s->changed, &s->lock);
        if (s->later_count == 0 && s->stopping) break;
        rp_session_request *req = s->later[--s->later_count];
        pthread_mutex_unlock(&s->lock);
        rp_bytes p = rp_session_request_payload(req);
        uint8_t answer[128];
        memcpy(answer, "later:", 6);
        size_t n = p.len < sizeof answer - 6 ? p.len : sizeof answer - 6;
        if (n) memcpy(answer + 6, p.ptr, n);
        CHECK_OK(rp_session_respond(req, answer, 6 + n));
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Runs rp_session_dispatch until the session ends. */
static void *dispatch_loop(void *arg) {
    rp_session *session = (rp_session *)arg;
    for (;;) {
        rp_status st = rp_session_dispatch(session, 200, NULL);
        if (st == RP_STATUS_OK || st == RP_STATUS_TIMEOUT) continue;
        CHECK_STATUS(st, RP_STATUS_CLOSED);
        break;
    }
    return NULL;
}

/* A connecting session `a` and an accepting session `b` over one socket pair; a server is
 * installed on each side whose pointer is non-NULL. */
static void make_pair(rp_session **a, server *sa, rp_session **b, server *sb) {
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    rp_conn *ca = NULL, *cb = NULL;
    CHECK_OK(rp_conn_adopt_fd(fds[0], &ca));
    CHECK_OK(rp_conn_adopt_fd(fds[1], &cb));
    CHECK_OK(rp_session_new(ca, RP_SESSION_SIDE_CONNECTING, sa ? dispatcher : NULL, sa, NULL, a));
    CHECK_OK(rp_session_new(cb, RP_SESSION_SIDE_ACCEPTING, sb ? dispatcher : NULL, sb, NULL, b));
    CHECK(rp_session_side_of(*a) == RP_SESSION_SIDE_CONNECTING);
    CHECK(rp_session_side_of(*b) == RP_SESSION_SIDE_ACCEPTING);
}

/* ------------------------------------------------------------------------------------------ */
/* Calls from many threads                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct caller_args {
    rp_session *session;
    int thread;
    int calls;
    uint32_t protocol;
    const char *expect_prefix;
    int matched;
} caller_args;

static void *caller(void *arg) {
    caller_args *c = (caller_args *)arg;
    for (int i = 0; i < c->calls; i++) {
        char payload[64], expected[80];
        int len = snprintf(payload, sizeof payload, "t%d-call%d", c->thread, i);
        int elen = snprintf(expected, sizeof expected, "%s%s", c->expect_prefix, payload);
        rp_msg *resp = NULL;
        rp_status st = rp_session_call(c->session, c->protocol, (const uint8_t *)payload, (size_t)len, NULL, 10000, &resp);
        CHECK_OK(st);
        if (st != RP_STATUS_OK) break;
        if (rp_msg_len(resp) == (size_t)elen && memcmp(rp_msg_data(resp), expected, (size_t)elen) == 0) c->matched++;
        rp_msg_free(resp);
    }
    return NULL;
}

static int run_callers(rp_session *session, int threads, int calls_each, uint32_t protocol, const char *prefix,
                       pthread_t *tids, caller_args *args) {
    for (int t = 0; t < threads; t++) {
        args[t] = (caller_args){session, t, calls_each, protocol, prefix, 0};
        CHECK(pthread_create(&tids[t], NULL, caller, &args[t]) == 0);
    }
    return threads;
}

static int join_callers(int threads, pthread_t *tids, caller_args *args) {
    int matched = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        matched += args[t].matched;
    }
    return matched;
}

static void ten_thousand_calls_from_eight_threads(void) {
    server sb;
    server_init(&sb, 1);
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, NULL, &b, &sb);
    pthread_t d1, d2;
    pthread_create(&d1, NULL, dispatch_loop, b);
    pthread_create(&d2, NULL, dispatch_loop, b);

    pthread_t tids[8];
    caller_args args[8];
    double t0 = now_s();
    run_callers(a, 8, 1250, PROTO_ECHO, "", tids, args);
    int matched = join_callers(8, tids, args);
    CHECK(matched == 10000);
    CHECK(counter(&sb, &sb.served) == 10000);
    CHECK(counter(&sb, &sb.wrong_parity) == 0);
    CHECK(rp_session_pending_calls(a) == 0);
    printf("10,000 calls from 8 threads: %.2f s\n", now_s() - t0);

    rp_session_free(a); /* the peer's dispatch loops end with CLOSED */
    pthread_join(d1, NULL);
    pthread_join(d2, NULL);
    rp_session_free(b);
    server_destroy(&sb);
}

static void both_sides_call_each_other(void) {
    server sa, sb;
    server_init(&sa, 0); /* a is called by the accepting side: even ids */
    server_init(&sb, 1);
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, &sa, &b, &sb);
    pthread_t da, db, wa, wb;
    pthread_create(&da, NULL, dispatch_loop, a);
    pthread_create(&db, NULL, dispatch_loop, b);
    pthread_create(&wa, NULL, later_worker, &sa);
    pthread_create(&wb, NULL, later_worker, &sb);

    pthread_t ta[4], tb[4];
    caller_args aa[4], ab[4];
    run_callers(a, 2, 500, PROTO_ECHO, "", ta, aa);
    run_callers(a, 2, 200, PROTO_LATER, "later:", ta + 2, aa + 2);
    run_callers(b, 2, 500, PROTO_ECHO, "", tb, ab);
    run_callers(b, 2, 200, PROTO_LATER, "later:", tb + 2, ab + 2);
    CHECK(join_callers(4, ta, aa) == 1400);
    CHECK(join_callers(4, tb, ab) == 1400);
    CHECK(counter(&sa, &sa.served) == 1400 && counter(&sb, &sb.served) == 1400);
    CHECK(counter(&sa, &sa.wrong_parity) == 0 && counter(&sb, &sb.wrong_parity) == 0);

    for (server *s = &sa; s; s = (s == &sa ? &sb : NULL)) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
    }
    pthread_join(wa, NULL);
    pthread_join(wb, NULL);
    rp_session_close(a);
    pthread_join(da, NULL);
    pthread_join(db, NULL);
    rp_session_free(a);
    rp_session_free(b);
    server_destroy(&sa);
    server_destroy(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* Streams and tunnels                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void stream_and_tunnel(void) {
    server sb;
    server_init(&sb, 1);
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, NULL, &b, &sb);
    pthread_t d;
    pthread_create(&d, NULL, dispatch_loop, b);

    /* A stream of 1,000 chunks, in order, then the final response. */
    rp_session_ticket *call = NULL;
    CHECK_OK(rp_session_call_start(a, PROTO_STREAM, NULL, 0, NULL, &call));
    CHECK(rp_session_ticket_id(call) % 2 == 1);
    int in_order = 0;
    for (int i = 0;; i++) {
        rp_msg *chunk = NULL;
        rp_status st = rp_session_ticket_next_chunk(call, 5000, &chunk);
        if (st != RP_STATUS_OK) {
            CHECK_STATUS(st, RP_STATUS_CLOSED);
            CHECK(i == STREAM_CHUNKS);
            break;
        }
        char expected[32];
        int len = snprintf(expected, sizeof expected, "chunk %d", i);
        if (rp_msg_len(chunk) == (size_t)len && memcmp(rp_msg_data(chunk), expected, (size_t)len) == 0) in_order++;
        rp_msg_free(chunk);
    }
    CHECK(in_order == STREAM_CHUNKS);
    rp_msg *resp = NULL;
    CHECK_OK(rp_session_ticket_wait(call, 5000, &resp));
    CHECK(resp && rp_msg_len(resp) == 4 && memcmp(rp_msg_data(resp), "done", 4) == 0);
    rp_msg_free(resp);
    CHECK(rp_session_ticket_is_done(call));
    CHECK_STATUS(rp_session_ticket_wait(call, 0, &resp), RP_STATUS_INVALID_ARGUMENT); /* taken once */
    rp_session_ticket_free(call);

    /* A tunnel: 10 chunks each way, the caller half-closes, the callee answers. */
    CHECK_OK(rp_session_call_start(a, PROTO_TUNNEL, NULL, 0, NULL, &call));
    for (int i = 0; i < 10; i++) {
        char chunk[16];
        int len = snprintf(chunk, sizeof chunk, "up %d", i);
        CHECK_OK(rp_session_ticket_send_chunk(call, (const uint8_t *)chunk, (size_t)len));
    }
    CHECK_OK(rp_session_ticket_close_write(call));
    CHECK_STATUS(rp_session_ticket_send_chunk(call, (const uint8_t *)"x", 1), RP_STATUS_CLOSED);
    int echoed = 0;
    for (;;) {
        rp_msg *chunk = NULL;
        rp_status st = rp_session_ticket_next_chunk(call, 5000, &chunk);
        if (st != RP_STATUS_OK) {
            CHECK_STATUS(st, RP_STATUS_CLOSED);
            break;
        }
        char expected[16];
        int len = snprintf(expected, sizeof expected, "up %d", echoed);
        CHECK(rp_msg_len(chunk) == (size_t)len && memcmp(rp_msg_data(chunk), expected, (size_t)len) == 0);
        rp_msg_free(chunk);
        echoed++;
    }
    CHECK(echoed == 10);
    CHECK_OK(rp_session_ticket_wait(call, 5000, &resp));
    CHECK(resp && rp_msg_len(resp) == 2 && memcmp(rp_msg_data(resp), "10", 2) == 0);
    rp_msg_free(resp);
    rp_session_ticket_free(call);

    rp_session_free(a);
    pthread_join(d, NULL);
    rp_session_free(b);
    server_destroy(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* Cancel and deadlines                                                                        */
/* ------------------------------------------------------------------------------------------ */

typedef struct waiter_args {
    rp_session_ticket *call;
    rp_status status;
    double returned_at;
} waiter_args;

static void *waiter(void *arg) {
    waiter_args *w = (waiter_args *)arg;
    rp_msg *resp = NULL;
    w->status = rp_session_ticket_wait(w->call, -1, &resp);
    w->returned_at = now_s();
    rp_msg_free(resp);
    return NULL;
}

/* True once the server holds `n` requests, waiting up to `seconds`. */
static int held_within(server *s, int n, double seconds) {
    double until = now_s() + seconds;
    pthread_mutex_lock(&s->lock);
    while (s->held_count < n && now_s() < until) {
        pthread_mutex_unlock(&s->lock);
        usleep(1000);
        pthread_mutex_lock(&s->lock);
    }
    int held = s->held_count >= n;
    pthread_mutex_unlock(&s->lock);
    return held;
}

/* Takes the first request the server holds (it then holds none), under its lock. */
static rp_session_request *take_held(server *s) {
    pthread_mutex_lock(&s->lock);
    rp_session_request *req = s->held[0];
    s->held_count = 0;
    pthread_mutex_unlock(&s->lock);
    return req;
}

/* Waits until the server holds `n` requests. */
static void wait_held(server *s, int n) {
    CHECK(held_within(s, n, 5));
}

static void cancel_and_deadlines(void) {
    server sb;
    server_init(&sb, 1);
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, NULL, &b, &sb);
    pthread_t d;
    pthread_create(&d, NULL, dispatch_loop, b);

    /* Cancel mid-call: the waiter wakes with CANCELLED, the callee sees the cancel. */
    rp_session_ticket *call = NULL;
    CHECK_OK(rp_session_call_start(a, PROTO_HOLD, (const uint8_t *)"x", 1, NULL, &call));
    wait_held(&sb, 1);
    waiter_args w = {call, RP_STATUS_OK, 0};
    pthread_t wt;
    pthread_create(&wt, NULL, waiter, &w);
    usleep(50 * 1000);
    double cancelled_at = now_s();
    rp_session_ticket_cancel(call);
    pthread_join(wt, NULL);
    CHECK_STATUS(w.status, RP_STATUS_CANCELLED);
    CHECK(w.returned_at - cancelled_at < 0.5);
    rp_session_request *held = take_held(&sb);
    for (int i = 0; i < 500 && !rp_session_request_is_cancelled(held); i++) usleep(1000);
    CHECK(rp_session_request_is_cancelled(held));
    CHECK_STATUS(rp_session_respond(held, (const uint8_t *)"late", 4), RP_STATUS_CANCELLED);
    rp_session_ticket_free(call);

    /* Deadline expiry: the caller ends with TIMEOUT at the deadline, and so does the callee. */
    rp_session_call_options *opts = NULL;
    CHECK_OK(rp_session_call_options_new(&opts));
    uint64_t deadline = unix_ms() + 200;
    CHECK_OK(rp_session_call_options_set_deadline_unix_ms(opts, deadline));
    double t0 = now_s();
    CHECK_OK(rp_session_call_start(a, PROTO_HOLD, NULL, 0, opts, &call));
    rp_msg *resp = NULL;
    CHECK_STATUS(rp_session_ticket_wait(call, -1, &resp), RP_STATUS_TIMEOUT);
    double took = now_s() - t0;
    CHECK(took > 0.1 && took < 1.5);
    CHECK(rp_session_ticket_is_done(call));
    rp_session_ticket_free(call);
    /* On a very slow machine the request may arrive after its deadline: the callee then
     * answers TIMEOUT on arrival and never dispatches it, which is also TIMEOUT on both sides. */
    if (held_within(&sb, 1, 0.5)) {
        held = take_held(&sb);
        CHECK(rp_session_request_deadline_unix_ms(held) == deadline);
        CHECK_STATUS(rp_session_request_send_chunk(held, (const uint8_t *)"c", 1), RP_STATUS_TIMEOUT);
        CHECK_STATUS(rp_session_respond(held, (const uint8_t *)"late", 4), RP_STATUS_TIMEOUT);
    }

    /* A synchronous call's timeout becomes its deadline on the other side too. */
    t0 = now_s();
    CHECK_STATUS(rp_session_call(a, PROTO_HOLD, NULL, 0, NULL, 150, &resp), RP_STATUS_TIMEOUT);
    CHECK(now_s() - t0 < 1.5);
    if (held_within(&sb, 1, 0.5)) {
        held = take_held(&sb);
        CHECK(rp_session_request_deadline_unix_ms(held) != 0);
        usleep(20 * 1000);
        CHECK_STATUS(rp_session_respond(held, NULL, 0), RP_STATUS_TIMEOUT);
    }

    /* A deadline already past is refused before anything is sent. */
    CHECK_OK(rp_session_call_options_set_deadline_unix_ms(opts, unix_ms() - 1000));
    CHECK_STATUS(rp_session_call_start(a, PROTO_ECHO, NULL, 0, opts, &call), RP_STATUS_TIMEOUT);

    /* Deadline and trace context travel with the request. */
    deadline = unix_ms() + 60000;
    CHECK_OK(rp_session_call_options_set_deadline_unix_ms(opts, deadline));
    CHECK_OK(rp_session_call_options_set_traceparent(opts, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    CHECK_OK(rp_session_call(a, PROTO_META, NULL, 0, opts, 5000, &resp));
    char expected[256];
    int len = snprintf(expected, sizeof expected, "deadline=%llu tp=%s", (unsigned long long)deadline,
                       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    CHECK(resp && rp_msg_len(resp) == (size_t)len && memcmp(rp_msg_data(resp), expected, (size_t)len) == 0);
    rp_msg_free(resp);
    rp_session_call_options_free(opts);

    /* An application error arrives as RP_STATUS_PEER_ERROR with the peer's code and text. */
    CHECK_STATUS(rp_session_call(a, PROTO_FAIL, NULL, 0, NULL, 5000, &resp), RP_STATUS_PEER_ERROR);
    CHECK_LAST_ERROR_CONTAINS("1234");
    CHECK_LAST_ERROR_CONTAINS("application says no");
    /* An rp_status code arrives as that status. */
    CHECK_STATUS(rp_session_call(a, 0x7fffu, NULL, 0, NULL, 5000, &resp), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("unknown protocol");
    /* So does every other code of the one table (src/status.rs), while a code that describes
     * only a local call (RP_STATUS_PANIC) arrives as RP_STATUS_PEER_ERROR. */
    int32_t code = RP_STATUS_IO;
    CHECK_STATUS(rp_session_call(a, PROTO_FAIL, (const uint8_t *)&code, sizeof code, NULL, 5000, &resp), RP_STATUS_IO);
    code = RP_STATUS_PANIC;
    CHECK_STATUS(rp_session_call(a, PROTO_FAIL, (const uint8_t *)&code, sizeof code, NULL, 5000, &resp),
                 RP_STATUS_PEER_ERROR);
    CHECK_LAST_ERROR_CONTAINS("peer error 90");

    /* Closing locally ends every pending call with CLOSED at once. */
    rp_session_ticket *pending[10];
    for (int i = 0; i < 10; i++) CHECK_OK(rp_session_call_start(a, PROTO_HOLD, NULL, 0, NULL, &pending[i]));
    wait_held(&sb, 10);
    rp_session_close(a);
    for (int i = 0; i < 10; i++) {
        CHECK_STATUS(rp_session_ticket_wait(pending[i], 1000, &resp), RP_STATUS_CLOSED);
        rp_session_ticket_free(pending[i]);
    }
    CHECK_STATUS(rp_session_call(a, PROTO_ECHO, NULL, 0, NULL, 1000, &resp), RP_STATUS_CLOSED);

    pthread_join(d, NULL);
    rp_session_free(a);
    rp_session_free(b);
    server_destroy(&sb); /* held requests answer into a closed session */
}

/* ------------------------------------------------------------------------------------------ */
/* No dispatcher; a dispatcher answering from another thread                                   */
/* ------------------------------------------------------------------------------------------ */

static void no_dispatcher(void) {
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, NULL, &b, NULL);
    rp_msg *resp = NULL;
    CHECK_STATUS(rp_session_call(a, PROTO_ECHO, (const uint8_t *)"hi", 2, NULL, 5000, &resp), RP_STATUS_NOT_FOUND);
    CHECK_LAST_ERROR_CONTAINS("no dispatcher");
    CHECK_STATUS(rp_session_call(b, PROTO_ECHO, (const uint8_t *)"hi", 2, NULL, 5000, &resp), RP_STATUS_NOT_FOUND);
    CHECK_STATUS(rp_session_dispatch(b, 0, NULL), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_session_call(NULL, PROTO_ECHO, NULL, 0, NULL, 0, &resp), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_session_new(NULL, RP_SESSION_SIDE_CONNECTING, NULL, NULL, NULL, &a), RP_STATUS_NULL_ARGUMENT);
    rp_session_free(a);
    rp_session_free(b);
}

/* Serves with poll(2) on rp_session_dispatch_fd instead of a blocking dispatch. */
static void *poll_loop(void *arg) {
    rp_session *session = (rp_session *)arg;
    struct pollfd pfd = {rp_session_dispatch_fd(session), POLLIN, 0};
    CHECK(pfd.fd >= 0);
    for (;;) {
        int n = poll(&pfd, 1, 5000);
        CHECK(n == 1);
        if (n != 1) break;
        size_t handled = 0;
        rp_status st = rp_session_dispatch(session, 0, &handled);
        if (st == RP_STATUS_CLOSED) break;
        CHECK_OK(st); /* readable means a request waits */
        CHECK(handled >= 1);
    }
    return NULL;
}

static void dispatch_driven_by_poll(void) {
    server sb;
    server_init(&sb, 1);
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, NULL, &b, &sb);
    struct pollfd pfd = {rp_session_dispatch_fd(b), POLLIN, 0};
    CHECK(poll(&pfd, 1, 0) == 0); /* nothing waits yet */
    pthread_t d;
    pthread_create(&d, NULL, poll_loop, b);
    pthread_t tids[4];
    caller_args args[4];
    run_callers(a, 4, 250, PROTO_ECHO, "", tids, args);
    CHECK(join_callers(4, tids, args) == 1000);
    rp_session_free(a); /* the peer's descriptor turns readable, dispatch says CLOSED */
    pthread_join(d, NULL);
    CHECK(poll(&pfd, 1, 0) == 1);
    rp_session_free(b);
    server_destroy(&sb);
}

static void dispatcher_answers_from_another_thread(void) {
    server sb;
    server_init(&sb, 1);
    rp_session *a = NULL, *b = NULL;
    make_pair(&a, NULL, &b, &sb);
    pthread_t d, w;
    pthread_create(&d, NULL, dispatch_loop, b);
    pthread_create(&w, NULL, later_worker, &sb);
    pthread_t tids[4];
    caller_args args[4];
    run_callers(a, 4, 100, PROTO_LATER, "later:", tids, args);
    CHECK(join_callers(4, tids, args) == 400);
    pthread_mutex_lock(&sb.lock);
    sb.stopping = 1;
    pthread_cond_broadcast(&sb.changed);
    pthread_mutex_unlock(&sb.lock);
    pthread_join(w, NULL);
    rp_session_free(a);
    pthread_join(d, NULL);
    rp_session_free(b);
    server_destroy(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* rp_session_listener and rp_session_connect                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct connector_args {
    const char *endpoint;
    server *srv;
    rp_session *session;
} connector_args;

static void *connector(void *arg) {
    connector_args *c = (connector_args *)arg;
    CHECK_OK(rp_session_connect(c->endpoint, 5000, dispatcher, c->srv, NULL, &c->session));
    return NULL;
}

static void listener_and_connect(void) {
    char dir[256], ep[320];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof dir, "%s/rp-c-session-%d", tmp, (int)getpid());
    snprintf(ep, sizeof ep, "%s/s.sock", dir);
    rp_session_listener *listener = NULL;
    CHECK_OK(rp_session_listener_bind(ep, &listener));
    rp_str bound = rp_session_listener_endpoint(listener);
    CHECK(bound.len == strlen(ep) && memcmp(bound.ptr, ep, bound.len) == 0);
    rp_session *b = NULL;
    CHECK_STATUS(rp_session_listener_accept(listener, 0, NULL, NULL, NULL, &b), RP_STATUS_TIMEOUT);

    server sa, sb;
    server_init(&sa, 0);
    server_init(&sb, 1);
    connector_args c = {ep, &sa, NULL};
    pthread_t t;
    pthread_create(&t, NULL, connector, &c);
    CHECK_OK(rp_session_listener_accept(listener, 5000, dispatcher, &sb, NULL, &b));
    pthread_join(t, NULL);
    rp_session *a = c.session;
    if (a && b) {
        pthread_t da, db;
        pthread_create(&da, NULL, dispatch_loop, a);
        pthread_create(&db, NULL, dispatch_loop, b);
        rp_msg *resp = NULL;
        CHECK_OK(rp_session_call(a, PROTO_ECHO, (const uint8_t *)"from a", 6, NULL, 5000, &resp));
        CHECK(resp && rp_msg_len(resp) == 6);
        rp_msg_free(resp);
        resp = NULL;
        CHECK_OK(rp_session_call(b, PROTO_ECHO, (const uint8_t *)"from b", 6, NULL, 5000, &resp));
        CHECK(resp && rp_msg_len(resp) == 6);
        rp_msg_free(resp);
        CHECK(counter(&sa, &sa.served) == 1 && counter(&sb, &sb.served) == 1);
        CHECK(counter(&sa, &sa.wrong_parity) == 0 && counter(&sb, &sb.wrong_parity) == 0);
        rp_session_close(a);
        pthread_join(da, NULL);
        pthread_join(db, NULL);
    }
    rp_session_free(a);
    rp_session_free(b);
    CHECK_STATUS(rp_session_connect("/nonexistent/rp-session.sock", 1000, NULL, NULL, NULL, &a), RP_STATUS_IO);
    rp_session_listener_free(listener);
    CHECK(rmdir(dir) == 0); /* the socket file was removed */
    server_destroy(&sa);
    server_destroy(&sb);
}

/* ------------------------------------------------------------------------------------------ */
/* The peer dies with 100 calls pending                                                        */
/* ------------------------------------------------------------------------------------------ */

/* The child: serves PROTO_ECHO, holds everything else, until killed. */
static int child_peer(int fd) {
    server s;
    server_init(&s, 1);
    rp_conn *conn = NULL;
    rp_session *session = NULL;
    if (rp_conn_adopt_fd(fd, &conn) != RP_STATUS_OK) return 3;
    if (rp_session_new(conn, RP_SESSION_SIDE_ACCEPTING, dispatcher, &s, NULL, &session) != RP_STATUS_OK) return 4;
    dispatch_loop(session);
    rp_session_free(session);
    return 0;
}

static void peer_dies_with_100_calls_pending(void) {
    int fds[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 3); /* dup2 clears close-on-exec on the copy */
        execl(g_self, g_self, "--child-peer", "3", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    rp_conn *conn = NULL;
    rp_session *a = NULL;
    CHECK_OK(rp_conn_adopt_fd(fds[0], &conn));
    CHECK_OK(rp_session_new(conn, RP_SESSION_SIDE_CONNECTING, NULL, NULL, NULL, &a));

    rp_session_ticket *calls[100];
    waiter_args w[100];
    pthread_t t[100];
    for (int i = 0; i < 100; i++) CHECK_OK(rp_session_call_start(a, PROTO_HOLD, NULL, 0, NULL, &calls[i]));
    /* Requests are served in order: once this echo is answered, the child holds all 100. */
    rp_msg *resp = NULL;
    CHECK_OK(rp_session_call(a, PROTO_ECHO, (const uint8_t *)"ping", 4, NULL, 10000, &resp));
    rp_msg_free(resp);
    CHECK(rp_session_pending_calls(a) == 100);
    for (int i = 0; i < 100; i++) {
        w[i] = (waiter_args){calls[i], RP_STATUS_OK, 0};
        pthread_create(&t[i], NULL, waiter, &w[i]);
    }
    usleep(50 * 1000);
    double killed_at = now_s();
    kill(pid, SIGKILL);
    int closed = 0;
    double last = killed_at;
    for (int i = 0; i < 100; i++) {
        pthread_join(t[i], NULL);
        if (w[i].status == RP_STATUS_CLOSED) closed++;
        if (w[i].returned_at > last) last = w[i].returned_at;
        rp_session_ticket_free(calls[i]);
    }
    CHECK(closed == 100);
    CHECK(last - killed_at < 1.0);
    printf("peer killed: 100 pending calls ended CLOSED within %.3f s\n", last - killed_at);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFSIGNALED(status));
    rp_session_free(a);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child-peer") == 0) return child_peer(atoi(argv[2]));
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 2;
    g_self[n] = 0;

    no_dispatcher();
    ten_thousand_calls_from_eight_threads();
    both_sides_call_each_other();
    stream_and_tunnel();
    cancel_and_deadlines();
    dispatcher_answers_from_another_thread();
    listener_and_connect();
    dispatch_driven_by_poll();
    peer_dies_with_100_calls_pending();
    return CHECK_DONE("test_session");
}
