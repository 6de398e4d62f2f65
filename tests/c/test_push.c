/* Push through the C API on real Unix sockets: handshake, refusal, registration decisions,
 * 10,000 pushes across 10 workers, deadlines, killed workers and servers, the pollable fd, the
 * handler mode, close from another thread, and a malformed frame from the peer.
 *
 * argv[1] is the vectors folder. The process re-executes itself with --child-worker or
 * --child-server to have a peer it can kill. */
#include "rp.h"
#include "check.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTO 0x7001u

static char g_dir[256];
static char g_self[4096];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void endpoint_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s.sock", g_dir, name);
}

static rp_push_server *start_server(const char *name, rp_push_server_options *opts) {
    char ep[512];
    endpoint_path(ep, sizeof ep, name);
    if (!opts) CHECK_OK(rp_push_server_options_new(ep, &opts));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(opts, &server));
    return server;
}

static rp_push_worker *connect_worker(const char *name, const char *queue) {
    char ep[512];
    endpoint_path(ep, sizeof ep, name);
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "c-test-worker", queue, &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    CHECK_OK(rp_push_worker_options_add_namespace(opts, "default"));
    CHECK_OK(rp_push_worker_options_add_activity_type(opts, "echo"));
    CHECK_OK(rp_push_worker_options_set_node(opts, "localhost"));
    rp_push_worker *client = NULL;
    CHECK_OK(rp_push_worker_connect(opts, &client));
    return client;
}

/* Answers every push with "echo:" + payload until the connection ends. */
static void *echo_loop(void *arg) {
    rp_push_worker *client = (rp_push_worker *)arg;
    size_t answered = 0;
    for (;;) {
        rp_push *push = NULL;
        rp_status st = rp_push_worker_recv(client, -1, &push);
        if (st != RP_STATUS_OK) break;
        rp_bytes p = rp_push_payload(push);
        uint8_t reply[256];
        memcpy(reply, "echo:", 5);
        size_t n = p.len < sizeof reply - 5 ? p.len : sizeof reply - 5;
        if (n) memcpy(reply + 5, p.ptr, n);
        st = rp_push_worker_reply(client, rp_push_correlation_id(push), reply, 5 + n);
        rp_push_free(push);
        if (st != RP_STATUS_OK) break;
        answered++;
    }
    return (void *)(uintptr_t)answered;
}

static rp_push_request *request(const void *payload, size_t len) {
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)payload, len, &req));
    return req;
}

static void round_trip_and_workers(void) {
    rp_push_server *server = start_server("rt", NULL);
    rp_str ep = rp_push_server_endpoint(server);
    CHECK(ep.len > 0 && memcmp(ep.ptr, g_dir, strlen(g_dir)) == 0);
    char path[512];
    endpoint_path(path, sizeof path, "rt");
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(g_dir, &st) == 0 && (st.st_mode & 0777) == 0700);

    rp_push_worker *client = connect_worker("rt", "q");
    CHECK(rp_push_worker_id(client) != 0);
    rp_push_worker_list *list = NULL;
    CHECK_OK(rp_push_server_workers(server, &list));
    CHECK(rp_push_worker_list_len(list) == 1);
    const rp_push_worker_info *w = rp_push_worker_list_get(list, 0);
    CHECK(rp_push_worker_info_id(w) == rp_push_worker_id(client));
    rp_str q = rp_push_worker_info_task_queue(w);
    CHECK(q.len == 1 && q.ptr[0] == 'q');
    CHECK(rp_push_worker_info_payload_protocol_count(w) == 1 && rp_push_worker_info_payload_protocol(w, 0) == PROTO);
    CHECK(rp_push_worker_info_namespace_count(w) == 1);
    uint32_t pid = 0, uid = 0;
    CHECK(rp_push_worker_info_peer(w, &pid, &uid, NULL) && pid == (uint32_t)getpid() && uid == getuid());
    CHECK(rp_push_worker_list_get(list, 1) == NULL);
    rp_push_worker_list_free(list);

    pthread_t t;
    pthread_create(&t, NULL, echo_loop, client);
    rp_push_request *req = request("hi", 2);
    CHECK_OK(rp_push_request_set_traceparent(req, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    CHECK_OK(rp_push_request_to_task_queue(req, "q"));
    rp_push_result *res = NULL;
    CHECK_OK(rp_push_server_push_wait(server, req, 5000, &res));
    rp_bytes out = rp_push_result_payload(res);
    CHECK(!rp_push_result_is_failure(res) && out.len == 7 && memcmp(out.ptr, "echo:hi", 7) == 0);
    rp_push_result_free(res);
    /* No worker for a queue: NOT_FOUND, with a reason. */
    CHECK_OK(rp_push_request_to_task_queue(req, "nobody"));
    res = NULL;
    CHECK_STATUS(rp_push_server_push_wait(server, req, 1000, &res), RP_STATUS_NOT_FOUND);
    CHECK(res == NULL);
    CHECK_LAST_ERROR_CONTAINS("nobody");
    rp_push_request_free(req);

    rp_push_worker_close(client);
    pthread_join(t, NULL);
    rp_push_worker_free(client);
    rp_push_server_free(server);
    CHECK(stat(path, &st) != 0); /* socket removed */
}

static void refusal_visible_in_c(void) {
    rp_push_server *server = start_server("refuse", NULL);
    char ep[512];
    endpoint_path(ep, sizeof ep, "refuse");
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "w", "q", &opts));
    CHECK_OK(rp_push_worker_options_set_service(opts, "not-this-one"));
    rp_push_worker *client = NULL;
    CHECK_STATUS(rp_push_worker_connect(opts, &client), RP_STATUS_REFUSED);
    CHECK(client == NULL);
    CHECK_LAST_ERROR_CONTAINS("service is not registered");
    rp_refusal *r = NULL;
    CHECK_OK(rp_last_refusal(&r));
    CHECK(rp_refusal_code(r) == RP_ERROR_CODE_SERVICE_UNKNOWN);
    rp_str reason = rp_refusal_reason(r);
    CHECK(reason.len == strlen("service is not registered"));
    CHECK(rp_refusal_retry_after_ms(r) == 0);
    /* The push server names its role and its service, so the worker can say what it reached. */
    CHECK(rp_refusal_detail_count(r) == 2);
    CHECK_LAST_ERROR_CONTAINS("answers to service \"librp-push\", not \"not-this-one\"");
    rp_refusal_free(r);
    /* A later non-refusal failure clears it. */
    CHECK_STATUS(rp_frame_view_init(NULL), RP_STATUS_NULL_ARGUMENT);
    r = NULL;
    CHECK_STATUS(rp_last_refusal(&r), RP_STATUS_NOT_FOUND);
    rp_push_server_free(server);
}

/* Every server option setter takes its options first and refuses NULL. */
static void server_option_setters(void) {
    CHECK_STATUS(rp_push_server_options_set_frame_timeout_ms(NULL, 100), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_push_server_options_set_handshake_timeout_ms(NULL, 100), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_push_server_options_set_max_send_buffer(NULL, 100), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_push_server_options_set_max_connections(NULL, 10, 5), RP_STATUS_NULL_ARGUMENT);
    char ep[512];
    endpoint_path(ep, sizeof ep, "setters");
    rp_push_server_options *opts = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &opts));
    CHECK_OK(rp_push_server_options_set_frame_timeout_ms(opts, -1)); /* no limit */
    CHECK_OK(rp_push_server_options_set_frame_timeout_ms(opts, 250));
    CHECK_OK(rp_push_server_options_set_handshake_timeout_ms(opts, 250));
    CHECK_OK(rp_push_server_options_set_max_send_buffer(opts, 1 << 20));
    CHECK_OK(rp_push_server_options_set_max_connections(opts, 100, 1));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(opts, &server));
    rp_push_worker *client = connect_worker("setters", "q");
    CHECK(client != NULL);
    /* A second connection from this user is over its share: RATE_LIMITED, scope peer-uid. */
    rp_push_worker_options *wo = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "second", "q", &wo));
    rp_push_worker *second = NULL;
    CHECK_STATUS(rp_push_worker_connect(wo, &second), RP_STATUS_REFUSED);
    rp_refusal *r = NULL;
    CHECK_OK(rp_last_refusal(&r));
    CHECK(rp_refusal_code(r) == RP_ERROR_CODE_RATE_LIMITED && rp_refusal_retry_after_ms(r) == 1000);
    rp_refusal_free(r);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

struct decider {
    int freed;
};

static int32_t decide_registration(void *user_data, const rp_push_worker_info *worker, char *reason, size_t cap) {
    (void)user_data;
    rp_str q = rp_push_worker_info_task_queue(worker);
    if (q.len == 6 && memcmp(q.ptr, "banned", 6) == 0) {
        snprintf(reason, cap, "queue banned is closed");
        return RP_REGISTRATION_VERDICT_REJECT;
    }
    return RP_REGISTRATION_VERDICT_ACCEPT;
}

static void decider_free(void *user_data) { ((struct decider *)user_data)->freed++; }

/* Counted on the dispatching thread, read on the test's; the queue is written before the
 * count that publishes it. */
static _Atomic int connected_events, disconnected_events;
static char disconnected_queue[64]; /* the task queue of the worker that left */
static void on_worker(void *user_data, const rp_push_worker_info *worker, bool connected, rp_str reason) {
    (void)user_data;
    (void)reason;
    if (connected) {
        connected_events++;
    } else {
        rp_str q = rp_push_worker_info_task_queue(worker);
        snprintf(disconnected_queue, sizeof disconnected_queue, "%.*s", (int)q.len, q.ptr);
        disconnected_events++;
    }
}

static _Atomic int g_dispatching;
static void *dispatch_loop(void *arg) {
    rp_push_server *server = (rp_push_server *)arg;
    while (g_dispatching) {
        size_t n = 0;
        rp_status st = rp_push_server_dispatch(server, 50, &n);
        if (st != RP_STATUS_OK && st != RP_STATUS_TIMEOUT) break;
    }
    return NULL;
}

static void registration_decided_by_callback(void) {
    char ep[512];
    endpoint_path(ep, sizeof ep, "decide");
    rp_push_server_options *opts = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &opts));
    struct decider d = {0};
    CHECK_OK(rp_push_server_options_set_registration_callback(opts, decide_registration, &d, decider_free));
    CHECK_OK(rp_push_server_options_set_worker_callback(opts, on_worker, NULL, NULL));
    rp_push_server *server = start_server("decide", opts);
    g_dispatching = 1;
    pthread_t t;
    pthread_create(&t, NULL, dispatch_loop, server);

    rp_push_worker_options *wo = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "w", "banned", &wo));
    rp_push_worker *client = NULL;
    CHECK_STATUS(rp_push_worker_connect(wo, &client), RP_STATUS_REJECTED);
    CHECK_LAST_ERROR_CONTAINS("queue banned is closed");
    rp_push_worker *ok = connect_worker("decide", "good");
    rp_push_worker_free(ok);
    for (int i = 0; i < 100 && disconnected_events == 0; i++) usleep(10000);
    g_dispatching = 0;
    pthread_join(t, NULL);
    CHECK(connected_events == 1 && disconnected_events == 1);
    CHECK(strcmp(disconnected_queue, "good") == 0); /* a departing worker is described */
    CHECK(d.freed == 0);
    rp_push_server_free(server);
    CHECK(d.freed == 1); /* user_data_free ran exactly once, when the server was freed */
}

static void ten_thousand_pushes_ten_workers(void) {
    enum { WORKERS = 10, PUSHES = 10000 };
    rp_push_server *server = start_server("load", NULL);
    rp_push_worker *clients[WORKERS];
    pthread_t threads[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        clients[i] = connect_worker("load", "load");
        pthread_create(&threads[i], NULL, echo_loop, clients[i]);
    }
    rp_push_ticket **tickets = calloc(PUSHES, sizeof *tickets);
    for (uint32_t i = 0; i < PUSHES; i++) {
        rp_push_request *req = request(&i, sizeof i);
        CHECK_OK(rp_push_server_push(server, req, &tickets[i]));
        rp_push_request_free(req);
    }
    int matched = 0;
    uint64_t *ids = calloc(PUSHES, sizeof *ids);
    for (uint32_t i = 0; i < PUSHES; i++) {
        rp_push_result *res = NULL;
        if (rp_push_ticket_wait(tickets[i], 30000, &res) == RP_STATUS_OK) {
            rp_bytes p = rp_push_result_payload(res);
            uint32_t got = 0;
            if (p.len == 9 && memcmp(p.ptr, "echo:", 5) == 0) memcpy(&got, p.ptr + 5, 4);
            if (got == i) matched++;
            rp_push_result_free(res);
        }
        ids[i] = rp_push_ticket_correlation_id(tickets[i]);
        /* The outcome is taken once. */
        rp_push_result *again = NULL;
        if (i == 0) CHECK_STATUS(rp_push_ticket_wait(tickets[i], 0, &again), RP_STATUS_INVALID_ARGUMENT);
        rp_push_ticket_free(tickets[i]);
    }
    CHECK(matched == PUSHES);
    int unique = 1;
    for (uint32_t i = 1; i < PUSHES && unique; i++) unique = ids[i] > ids[i - 1];
    CHECK(unique);
    size_t total = 0, busy = 0;
    for (int i = 0; i < WORKERS; i++) {
        rp_push_worker_close(clients[i]);
        void *n;
        pthread_join(threads[i], &n);
        total += (size_t)(uintptr_t)n;
        busy += (uintptr_t)n > 0;
        rp_push_worker_free(clients[i]);
    }
    CHECK(total == PUSHES);
    CHECK(busy >= 5);
    printf("10,000 pushes over 10 workers: %d matched, %zu workers took work\n", matched, busy);
    free(ids);
    free(tickets);
    rp_push_server_free(server);
}

static void deadline_passes(void) {
    rp_push_server *server = start_server("deadline", NULL);
    rp_push_worker *client = connect_worker("deadline", "slow"); /* never answers */
    rp_push_request *req = request("late", 4);
    double t0 = now_s();
    rp_push_result *res = NULL;
    CHECK_STATUS(rp_push_server_push_wait(server, req, 150, &res), RP_STATUS_TIMEOUT);
    CHECK(now_s() - t0 < 2.0);
    rp_push_request_free(req);
    /* The server withdrew it: the worker's inbox is empty again. */
    usleep(100000);
    rp_push *push = NULL;
    CHECK_STATUS(rp_push_worker_recv(client, 0, &push), RP_STATUS_TIMEOUT);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

static pid_t spawn_self(const char *mode, const char *arg) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(g_self, g_self, mode, arg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void killed_worker_fails_only_its_pushes(void) {
    rp_push_server *server = start_server("killw", NULL);
    rp_push_worker *healthy = connect_worker("killw", "healthy");
    pthread_t t;
    pthread_create(&t, NULL, echo_loop, healthy);
    char ep[512];
    endpoint_path(ep, sizeof ep, "killw");
    pid_t child = spawn_self("--child-worker", ep);
    /* Wait for the child worker to register. */
    int registered = 0;
    for (int i = 0; i < 500 && !registered; i++) {
        rp_push_worker_list *list = NULL;
        CHECK_OK(rp_push_server_workers(server, &list));
        registered = rp_push_worker_list_len(list) == 2;
        rp_push_worker_list_free(list);
        if (!registered) usleep(10000);
    }
    CHECK(registered);
    rp_push_ticket *doomed[5];
    for (int i = 0; i < 5; i++) {
        rp_push_request *req = request("x", 1);
        CHECK_OK(rp_push_request_to_task_queue(req, "doomed"));
        CHECK_OK(rp_push_server_push(server, req, &doomed[i]));
        rp_push_request_free(req);
    }
    usleep(100000);
    kill(child, SIGKILL); /* dies holding pushes */
    waitpid(child, NULL, 0);
    for (int i = 0; i < 5; i++) {
        rp_push_result *res = NULL;
        CHECK_STATUS(rp_push_ticket_wait(doomed[i], 5000, &res), RP_STATUS_CLOSED);
        rp_push_ticket_free(doomed[i]);
    }
    CHECK_LAST_ERROR_CONTAINS("disconnected");
    for (int i = 0; i < 20; i++) {
        rp_push_request *req = request("ok", 2);
        CHECK_OK(rp_push_request_to_task_queue(req, "healthy"));
        rp_push_result *res = NULL;
        CHECK_OK(rp_push_server_push_wait(server, req, 5000, &res));
        rp_push_result_free(res);
        rp_push_request_free(req);
    }
    rp_push_worker_close(healthy);
    pthread_join(t, NULL);
    rp_push_worker_free(healthy);
    rp_push_server_free(server);
}

struct recv_result {
    rp_push_worker *client;
    rp_status status;
    double waited;
};

static void *recv_once(void *arg) {
    struct recv_result *r = (struct recv_result *)arg;
    double t0 = now_s();
    rp_push *push = NULL;
    r->status = rp_push_worker_recv(r->client, 30000, &push);
    r->waited = now_s() - t0;
    rp_push_free(push);
    return NULL;
}

static void killed_server_wakes_recv(void) {
    char ep[512];
    endpoint_path(ep, sizeof ep, "kills");
    pid_t child = spawn_self("--child-server", ep);
    rp_push_worker *client = NULL;
    for (int i = 0; i < 500 && !client; i++) {
        rp_push_worker_options *opts = NULL;
        CHECK_OK(rp_push_worker_options_new(ep, "w", "q", &opts));
        if (rp_push_worker_connect(opts, &client) != RP_STATUS_OK) usleep(10000);
    }
    CHECK(client != NULL);
    if (!client) return;
    struct recv_result r = {client, RP_STATUS_OK, 0};
    pthread_t t;
    pthread_create(&t, NULL, recv_once, &r);
    usleep(100000);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    unlink(ep); /* a killed server leaves its socket file */
    pthread_join(t, NULL);
    CHECK(r.status == RP_STATUS_CLOSED);
    CHECK(r.waited < 2.0);
    rp_push_worker_free(client);
}

static void pollable_fd_with_poll(void) {
    rp_push_server *server = start_server("pollfd", NULL);
    rp_push_worker *client = connect_worker("pollfd", "q");
    struct pollfd pfd = {rp_push_worker_fd(client), POLLIN, 0};
    CHECK(pfd.fd >= 0);
    CHECK(poll(&pfd, 1, 0) == 0);
    rp_push_request *req = request("p", 1);
    rp_push_ticket *ticket = NULL;
    CHECK_OK(rp_push_server_push(server, req, &ticket));
    CHECK(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN));
    rp_push *push = NULL;
    CHECK_OK(rp_push_worker_recv(client, 0, &push));
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 0); /* level-triggered: quiet once drained */
    CHECK_OK(rp_push_worker_reply_error(client, rp_push_correlation_id(push), 1001, "cannot"));
    rp_push_result *res = NULL;
    CHECK_OK(rp_push_ticket_wait(ticket, 5000, &res));
    CHECK(rp_push_result_is_failure(res) && rp_push_result_failure_code(res) == 1001);
    rp_str msg = rp_push_result_failure_message(res);
    CHECK(msg.len == 6 && memcmp(msg.ptr, "cannot", 6) == 0);
    /* Answering twice is refused locally. */
    CHECK_STATUS(rp_push_worker_reply(client, rp_push_correlation_id(push), NULL, 0), RP_STATUS_NOT_FOUND);
    rp_push_result_free(res);
    rp_push_ticket_free(ticket);
    rp_push_free(push);
    rp_push_request_free(req);
    rp_push_server_shutdown(server);
    CHECK(poll(&pfd, 1, 5000) == 1); /* readable once the connection ended */
    CHECK_STATUS(rp_push_worker_recv(client, 0, &push), RP_STATUS_CLOSED);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

struct handler_state {
    int calls;
    int freed;
};

static int32_t handle_push(void *user_data, const rp_push_worker *client, const rp_push *push) {
    struct handler_state *s = (struct handler_state *)user_data;
    s->calls++;
    rp_bytes p = rp_push_payload(push);
    if (p.len == 4 && memcmp(p.ptr, "fail", 4) == 0) return RP_STATUS_PROTOCOL; /* librp answers */
    return rp_push_worker_reply(client, rp_push_correlation_id(push), p.ptr, p.len);
}

static void handler_free(void *user_data) { ((struct handler_state *)user_data)->freed++; }

static void callback_mode(void) {
    rp_push_server *server = start_server("cb", NULL);
    rp_push_worker *client = connect_worker("cb", "q");
    size_t handled = 0;
    CHECK_STATUS(rp_push_worker_dispatch(client, 0, 0, &handled), RP_STATUS_INVALID_ARGUMENT);
    struct handler_state s = {0, 0};
    CHECK_OK(rp_push_worker_set_handler(client, handle_push, &s, handler_free));
    rp_push_ticket *t1 = NULL, *t2 = NULL;
    rp_push_request *ok = request("good", 4), *bad = request("fail", 4);
    CHECK_OK(rp_push_server_push(server, ok, &t1));
    CHECK_OK(rp_push_server_push(server, bad, &t2));
    int calls = 0;
    while (calls < 2) {
        rp_status st = rp_push_worker_dispatch(client, 5000, 0, &handled);
        if (st != RP_STATUS_OK) break;
        calls += (int)handled;
    }
    CHECK(s.calls == 2);
    rp_push_result *r1 = NULL, *r2 = NULL;
    CHECK_OK(rp_push_ticket_wait(t1, 5000, &r1));
    CHECK(!rp_push_result_is_failure(r1) && rp_push_result_payload(r1).len == 4);
    CHECK_OK(rp_push_ticket_wait(t2, 5000, &r2));
    CHECK(rp_push_result_is_failure(r2) && rp_push_result_failure_code(r2) == RP_STATUS_PROTOCOL);
    CHECK_STATUS(rp_push_worker_dispatch(client, 0, 0, &handled), RP_STATUS_TIMEOUT);
    rp_push_result_free(r1);
    rp_push_result_free(r2);
    rp_push_ticket_free(t1);
    rp_push_ticket_free(t2);
    rp_push_request_free(ok);
    rp_push_request_free(bad);
    CHECK(s.freed == 0);
    CHECK_OK(rp_push_worker_set_handler(client, NULL, NULL, NULL)); /* unregister: old freed */
    CHECK(s.freed == 1);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

static void close_from_another_thread(void) {
    rp_push_server *server = start_server("close", NULL);
    rp_push_worker *client = connect_worker("close", "q");
    struct recv_result r = {client, RP_STATUS_OK, 0};
    pthread_t t;
    pthread_create(&t, NULL, recv_once, &r);
    usleep(50000);
    rp_push_worker_close(client);
    pthread_join(t, NULL);
    CHECK(r.status == RP_STATUS_CLOSED && r.waited < 2.0);
    rp_push_worker_free(client);
    rp_push_server_free(server);
}

/* A fake server that completes the handshake from golden bytes, then sends garbage. */
struct fake_server {
    int listen_fd;
    const char *vectors;
};

static void *fake_server_main(void *arg) {
    struct fake_server *fs = (struct fake_server *)arg;
    int fd = accept(fs->listen_fd, NULL, NULL);
    if (fd < 0) return NULL;
    uint8_t buf[4096];
    size_t have = 0;
    int frames = 0;
    while (frames < 2) { /* Hello, then the registration */
        ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
        if (n <= 0) break;
        have += (size_t)n;
        rp_frame_view f;
        size_t used;
        while (rp_frame_decode(buf, have, 0, &f, &used) == RP_STATUS_OK) {
            frames++;
            if (frames == 1) {
                char path[4096];
                snprintf(path, sizeof path, "%s/hello_reply_negotiated.hex", fs->vectors);
                unsigned char *reply = NULL;
                long len = read_hex_file(path, &reply);
                if (len > 0) (void)!send(fd, reply, (size_t)len, MSG_NOSIGNAL);
                free(reply);
            } else {
                static const uint8_t ack_payload[] = {0x08, 0x01, 0x18, 0x05}; /* accepted, id 5 */
                rp_frame_view ack;
                if (rp_frame_view_init(&ack) != RP_STATUS_OK) abort();
                ack.kind = RP_FRAME_KIND_RESPONSE;
                ack.payload_protocol = 0xF0B5;
                ack.request_id = f.request_id;
                ack.payload.ptr = ack_payload;
                ack.payload.len = sizeof ack_payload;
                uint8_t out[64];
                size_t out_len;
                if (rp_frame_encode(&ack, out, sizeof out, &out_len) == RP_STATUS_OK)
                    (void)!send(fd, out, out_len, MSG_NOSIGNAL);
            }
            memmove(buf, buf + used, have - used);
            have -= used;
        }
    }
    static const uint8_t garbage[] = {1, 3, 0, 0, 0, 0xff, 0xff, 0xff};
    (void)!send(fd, garbage, sizeof garbage, MSG_NOSIGNAL);
    usleep(300000);
    close(fd);
    return NULL;
}

static void malformed_frame_from_peer(const char *vectors) {
    char ep[512];
    endpoint_path(ep, sizeof ep, "fake");
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {0};
    addr.sun_family = AF_UNIX;
    CHECK(strlen(ep) < sizeof addr.sun_path);
    memcpy(addr.sun_path, ep, strlen(ep) + 1 < sizeof addr.sun_path ? strlen(ep) + 1 : sizeof addr.sun_path - 1);
    CHECK(bind(lfd, (struct sockaddr *)&addr, sizeof addr) == 0 && listen(lfd, 4) == 0);
    struct fake_server fs = {lfd, vectors};
    pthread_t t;
    pthread_create(&t, NULL, fake_server_main, &fs);
    rp_push_worker *client = connect_worker("fake", "q");
    if (client) {
        rp_push *push = NULL;
        CHECK_STATUS(rp_push_worker_recv(client, 5000, &push), RP_STATUS_CLOSED);
        CHECK_LAST_ERROR_CONTAINS("Frame body");
        rp_push_worker_free(client);
    }
    pthread_join(t, NULL);
    close(lfd);
    unlink(ep);
}

static int child_worker(const char *ep) {
    rp_push_worker_options *opts = NULL;
    if (rp_push_worker_options_new(ep, "doomed-worker", "doomed", &opts) != RP_STATUS_OK) return 1;
    rp_push_worker *client = NULL;
    if (rp_push_worker_connect(opts, &client) != RP_STATUS_OK) return 1;
    rp_push *push = NULL;
    while (rp_push_worker_recv(client, -1, &push) == RP_STATUS_OK) rp_push_free(push); /* never answers */
    rp_push_worker_free(client);
    return 0;
}

static int child_server(const char *ep) {
    rp_push_server_options *opts = NULL;
    if (rp_push_server_options_new(ep, &opts) != RP_STATUS_OK) return 1;
    rp_push_server *server = NULL;
    if (rp_push_server_bind(opts, &server) != RP_STATUS_OK) return 1;
    pause(); /* until killed */
    rp_push_server_free(server);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--child-worker") == 0) return child_worker(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--child-server") == 0) return child_server(argv[2]);
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 2;
    g_self[n] = 0;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/rp-c-push-%d", tmp, (int)getpid());

    round_trip_and_workers();
    refusal_visible_in_c();
    server_option_setters();
    registration_decided_by_callback();
    ten_thousand_pushes_ten_workers();
    deadline_passes();
    killed_worker_fails_only_its_pushes();
    killed_server_wakes_recv();
    pollable_fd_with_poll();
    callback_mode();
    close_from_another_thread();
    malformed_frame_from_peer(argv[1]);
    CHECK(rmdir(g_dir) == 0); /* every socket file was cleaned up */
    return CHECK_DONE("test_push");
}
