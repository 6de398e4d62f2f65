/* Reconnecting push worker through the C API: the server PROCESS is SIGKILLed while the worker
 * holds a push and started again on the same socket path; the worker is back within its
 * backoff, the new server's pushes are all answered, the late reply to the held push returns
 * RP_STATUS_CLOSED and sends nothing; the events arrive in order; giving up ends recv with
 * RP_STATUS_CLOSED; close during the backoff returns at once.
 *
 * argv[1] is the vectors folder. The process re-executes itself with --child-server EP MODE to
 * have a server it can kill: MODE "hold" pushes one push and waits to be killed; MODE "echo"
 * pushes p0..p4, checks each reply, and exits with the number of wrong answers. */
#include "rp.h"
#include "check.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROTO 0x7001u
#define MAX_EVENTS 256

static char g_dir[256];
static char g_self[4096];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the server process ---------------------------------------------------------------- */

static int wait_for_worker(rp_push_server *server) {
    for (int i = 0; i < 2000; i++) {
        rp_push_worker_list *list = NULL;
        if (rp_push_server_workers(server, &list) != RP_STATUS_OK) return 0;
        size_t n = rp_push_worker_list_len(list);
        rp_push_worker_list_free(list);
        if (n > 0) return 1;
        usleep(5000);
    }
    return 0;
}

static int child_server(const char *ep, const char *mode) {
    rp_push_server_options *opts = NULL;
    if (rp_push_server_options_new(ep, &opts) != RP_STATUS_OK) return 100;
    rp_push_server *server = NULL;
    if (rp_push_server_bind(opts, &server) != RP_STATUS_OK) return 101;
    if (!wait_for_worker(server)) return 102;
    if (strcmp(mode, "hold") == 0) {
        rp_push_request *req = NULL;
        rp_push_ticket *ticket = NULL;
        if (rp_push_request_new(PROTO, (const uint8_t *)"held", 4, &req) != RP_STATUS_OK) return 103;
        if (rp_push_server_push(server, req, &ticket) != RP_STATUS_OK) return 104;
        pause(); /* until killed */
        return 0;
    }
    int wrong = 0;
    for (int i = 0; i < 5; i++) {
        char payload[8], want[16];
        snprintf(payload, sizeof payload, "p%d", i);
        snprintf(want, sizeof want, "echo:p%d", i);
        rp_push_request *req = NULL;
        if (rp_push_request_new(PROTO, (const uint8_t *)payload, strlen(payload), &req) != RP_STATUS_OK) return 105;
        rp_push_result *res = NULL;
        if (rp_push_server_push_wait(server, req, 10000, &res) == RP_STATUS_OK) {
            rp_bytes out = rp_push_result_payload(res);
            wrong += rp_push_result_is_failure(res) || out.len != strlen(want) || memcmp(out.ptr, want, out.len) != 0;
            rp_push_result_free(res);
        } else {
            wrong++;
        }
        rp_push_request_free(req);
    }
    rp_push_server_stats stats;
    stats.size = sizeof stats;
    if (rp_push_server_get_stats(server, &stats) != RP_STATUS_OK || stats.protocol_violations != 0) wrong++;
    rp_push_server_free(server);
    return wrong;
}

static pid_t spawn_server(const char *ep, const char *mode) {
    pid_t pid = fork();
    if (pid == 0) {
        execl(g_self, g_self, "--child-server", ep, mode, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits up to `seconds` for `pid`; its exit status, or -1 (then it is killed). */
static int wait_exit(pid_t pid, double seconds) {
    double end = now_s() + seconds;
    int status = 0;
    while (now_s() < end) {
        if (waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* ---- events ----------------------------------------------------------------------------- */

struct recorded {
    rp_push_worker_event event;
    uint32_t attempt;
    uint64_t delay_ms;
    rp_status status;
    char message[160];
};

struct recorder {
    pthread_mutex_t lock;
    size_t count;
    struct recorded events[MAX_EVENTS];
    int freed;
};

static void record(void *user_data, rp_push_worker_event event, uint32_t attempt, uint64_t delay_ms, rp_status status,
                   const char *message) {
    struct recorder *r = (struct recorder *)user_data;
    pthread_mutex_lock(&r->lock);
    if (r->count < MAX_EVENTS) {
        struct recorded *e = &r->events[r->count++];
        e->event = event;
        e->attempt = attempt;
        e->delay_ms = delay_ms;
        e->status = status;
        snprintf(e->message, sizeof e->message, "%s", message);
    }
    pthread_mutex_unlock(&r->lock);
}

static void recorder_free(void *user_data) {
    ((struct recorder *)user_data)->freed++;
}

static size_t count_of(struct recorder *r, rp_push_worker_event event) {
    pthread_mutex_lock(&r->lock);
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++) n += r->events[i].event == event;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Waits up to `seconds` until `r` holds at least `n` events of kind `event`, receiving on
 * `worker` meanwhile when it is not NULL (a worker notices a lost connection in recv; a push that
 * arrives is dropped). Returns how many there are. */
static size_t wait_for_events(struct recorder *r, rp_push_worker_event event, size_t n, rp_push_worker *worker,
                              double seconds) {
    double start = now_s();
    while (count_of(r, event) < n && now_s() - start < seconds) {
        rp_push *none = NULL;
        if (!worker) {
            usleep(2000);
        } else if (rp_push_worker_recv(worker, 20, &none) == RP_STATUS_OK) {
            rp_push_free(none);
        }
    }
    return count_of(r, event);
}

static rp_push_worker_options *options(const char *ep, uint32_t min_ms, uint32_t max_ms, uint32_t attempts,
                                       struct recorder *r) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "c-reconnect", "q", &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    CHECK_OK(rp_push_worker_options_set_connect_timeout_ms(opts, 2000));
    CHECK_OK(rp_push_worker_options_set_reconnect(opts, min_ms, max_ms, attempts));
    CHECK_OK(rp_push_worker_options_set_reconnect_jitter(opts, RP_RECONNECT_JITTER_EQUAL));
    CHECK_OK(rp_push_worker_options_set_event_callback(opts, record, r, recorder_free));
    return opts;
}

/* ---- the worker side -------------------------------------------------------------------- */

struct answerer {
    rp_push_worker *worker;
    int answered;
};

/* Answers five pushes with "echo:" + payload, each recv waiting up to 15 s (across the
 * reconnection). */
static void *answer_five(void *arg) {
    struct answerer *a = (struct answerer *)arg;
    for (int i = 0; i < 5; i++) {
        rp_push *push = NULL;
        if (rp_push_worker_recv(a->worker, 15000, &push) != RP_STATUS_OK) break;
        rp_bytes p = rp_push_payload(push);
        uint8_t reply[64];
        memcpy(reply, "echo:", 5);
        size_t n = p.len < sizeof reply - 5 ? p.len : sizeof reply - 5;
        memcpy(reply + 5, p.ptr, n);
        rp_status st = rp_push_worker_reply(a->worker, rp_push_correlation_id(push), reply, 5 + n);
        rp_push_free(push);
        if (st != RP_STATUS_OK) break;
        a->answered++;
    }
    return NULL;
}

static void killed_and_restarted(void) {
    char ep[512];
    snprintf(ep, sizeof ep, "%s/kill.sock", g_dir);
    static struct recorder r = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, 0};
    pid_t first = spawn_server(ep, "hold");
    rp_push_worker *worker = NULL;
    int failed_connects = 0; /* each consumed its options: their user_data_free ran */
    for (int i = 0; i < 500 && !worker; i++) {
        if (rp_push_worker_connect(options(ep, 20, 200, 0, &r), &worker) != RP_STATUS_OK) {
            failed_connects++;
            usleep(10000);
        }
    }
    CHECK(worker != NULL);
    if (!worker) {
        wait_exit(first, 0);
        return;
    }
    int fd = rp_push_worker_fd(worker);
    rp_push *held = NULL;
    CHECK_OK(rp_push_worker_recv(worker, 10000, &held));
    uint64_t held_id = rp_push_correlation_id(held);

    kill(first, SIGKILL); /* the push is in flight */
    waitpid(first, NULL, 0);
    double restarted = now_s();
    struct answerer a = {worker, 0};
    pthread_t t;
    pthread_create(&t, NULL, answer_five, &a);
    pid_t second = spawn_server(ep, "echo");
    CHECK(wait_exit(second, 30) == 0); /* its five pushes answered, each with its own reply */
    pthread_join(t, NULL);
    CHECK(a.answered == 5);
    CHECK(now_s() - restarted < 10.0);

    /* The held push came on the lost connection: its late reply is refused and sends nothing. */
    CHECK_STATUS(rp_push_worker_reply(worker, held_id, (const uint8_t *)"late", 4), RP_STATUS_CLOSED);
    CHECK_LAST_ERROR_CONTAINS("lost");
    rp_push_free(held);
    rp_push_worker_stats stats;
    stats.size = sizeof stats;
    CHECK_OK(rp_push_worker_get_stats(worker, &stats));
    CHECK(stats.replies_sent == 5);
    CHECK(stats.reconnects == 1);
    CHECK(rp_push_worker_fd(worker) == fd);

    pthread_mutex_lock(&r.lock);
    CHECK(r.count >= 4);
    CHECK(r.events[0].event == RP_PUSH_WORKER_EVENT_CONNECTED && r.events[0].attempt == 0);
    CHECK(r.events[1].event == RP_PUSH_WORKER_EVENT_LOST && r.events[1].status == RP_STATUS_CLOSED);
    CHECK(r.events[2].event == RP_PUSH_WORKER_EVENT_RECONNECTING && r.events[2].attempt == 1);
    CHECK(r.events[2].delay_ms >= 20 && r.events[2].delay_ms <= 200);
    size_t last_connected = 0;
    for (size_t i = 0; i < r.count; i++) {
        if (r.events[i].event == RP_PUSH_WORKER_EVENT_CONNECTED) last_connected = i;
    }
    CHECK(last_connected >= 3 && r.events[last_connected].attempt >= 1);
    pthread_mutex_unlock(&r.lock);
    rp_push_worker_close(worker);
    rp_push_worker_free(worker);
    CHECK(r.freed == failed_connects + 1);
    unlink(ep); /* the last server exited cleanly, a killed one leaves its file */
}

/* Binds a push server at `<g_dir>/<name>.sock` and connects a reconnecting worker to it
 * (options() with the backoff given). Returns 0 when either failed (and frees what was made). */
static int start_in_process(const char *name, uint32_t min_ms, uint32_t max_ms, uint32_t attempts, struct recorder *r,
                            rp_push_server **server, rp_push_worker **worker) {
    char ep[512];
    snprintf(ep, sizeof ep, "%s/%s.sock", g_dir, name);
    rp_push_server_options *sopts = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &sopts));
    CHECK_OK(rp_push_server_bind(sopts, server));
    if (!*server) return 0;
    CHECK_OK(rp_push_worker_connect(options(ep, min_ms, max_ms, attempts, r), worker));
    if (!*worker) {
        rp_push_server_free(*server);
        return 0;
    }
    return 1;
}

static void gives_up(void) {
    static struct recorder r = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, 0};
    rp_push_server *server = NULL;
    rp_push_worker *worker = NULL;
    if (!start_in_process("giveup", 5, 20, 3, &r, &server, &worker)) return;
    rp_push_server_free(server);
    double start = now_s();
    rp_push *push = NULL;
    rp_status st;
    do {
        st = rp_push_worker_recv(worker, 1000, &push);
    } while (st == RP_STATUS_TIMEOUT && now_s() - start < 10.0);
    CHECK(st == RP_STATUS_CLOSED);
    CHECK_LAST_ERROR_CONTAINS("gave up reconnecting");
    CHECK(count_of(&r, RP_PUSH_WORKER_EVENT_RECONNECTING) == 3);
    CHECK(count_of(&r, RP_PUSH_WORKER_EVENT_GAVE_UP) == 1);
    pthread_mutex_lock(&r.lock);
    struct recorded *last = &r.events[r.count - 1];
    CHECK(last->event == RP_PUSH_WORKER_EVENT_GAVE_UP && last->attempt == 3 && last->status != RP_STATUS_OK);
    pthread_mutex_unlock(&r.lock);
    struct pollfd pfd = {rp_push_worker_fd(worker), POLLIN, 0};
    CHECK(poll(&pfd, 1, 0) == 1); /* ended: readable */
    rp_push_worker_free(worker);
}

static void *recv_forever(void *arg) {
    rp_push *push = NULL;
    return (void *)(intptr_t)rp_push_worker_recv((rp_push_worker *)arg, -1, &push);
}

static void close_during_backoff(void) {
    static struct recorder r = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, 0};
    rp_push_server *server = NULL;
    rp_push_worker *worker = NULL;
    if (!start_in_process("close", 30000, 60000, 0, &r, &server, &worker)) return;
    pthread_t t;
    pthread_create(&t, NULL, recv_forever, worker);
    rp_push_server_free(server);
    CHECK(wait_for_events(&r, RP_PUSH_WORKER_EVENT_RECONNECTING, 1, NULL, 5.0) == 1);
    double closing = now_s();
    rp_push_worker_close(worker);
    void *status = NULL;
    pthread_join(t, &status);
    CHECK((rp_status)(intptr_t)status == RP_STATUS_CLOSED);
    CHECK(now_s() - closing < 2.0); /* against a 30 s backoff; generous for valgrind */
    rp_push_worker_free(worker);
}

/* In process: the server drops the worker's connection while it holds a push. The push fails at
 * its caller with RP_STATUS_CLOSED; the worker registers again; its late reply sends nothing. */
static void in_flight_push_fails_at_its_caller(void) {
    static struct recorder r = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, 0};
    rp_push_server *server = NULL;
    rp_push_worker *worker = NULL;
    if (!start_in_process("inflight", 5, 50, 0, &r, &server, &worker)) return;
    uint64_t first_id = rp_push_worker_id(worker);
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"held", 4, &req));
    rp_push_ticket *ticket = NULL;
    CHECK_OK(rp_push_server_push(server, req, &ticket));
    rp_push *held = NULL;
    CHECK_OK(rp_push_worker_recv(worker, 5000, &held));
    CHECK_OK(rp_push_server_disconnect(server, first_id));
    rp_push_result *res = NULL;
    CHECK_STATUS(rp_push_ticket_wait(ticket, 5000, &res), RP_STATUS_CLOSED);
    rp_push_ticket_free(ticket);

    /* The worker sees the loss on its next receive and comes back. */
    CHECK(wait_for_events(&r, RP_PUSH_WORKER_EVENT_CONNECTED, 2, worker, 5.0) == 2);
    CHECK(rp_push_worker_id(worker) != first_id);
    CHECK_STATUS(rp_push_worker_reply(worker, rp_push_correlation_id(held), (const uint8_t *)"late", 4),
                 RP_STATUS_CLOSED);
    CHECK_STATUS(rp_push_worker_reply_error(worker, rp_push_correlation_id(held), 1001, "late"), RP_STATUS_CLOSED);
    rp_push_free(held);

    /* The next push is answered on the new connection. */
    struct answerer a = {worker, 0};
    pthread_t t;
    pthread_create(&t, NULL, answer_five, &a);
    CHECK_OK(rp_push_request_to_worker(req, rp_push_worker_id(worker)));
    CHECK_OK(rp_push_server_push_wait(server, req, 5000, &res));
    if (res) {
        rp_bytes out = rp_push_result_payload(res);
        CHECK(out.len == 9 && memcmp(out.ptr, "echo:held", 9) == 0);
        rp_push_result_free(res);
    }
    rp_push_request_free(req);
    rp_push_server_stats stats;
    stats.size = sizeof stats;
    CHECK_OK(rp_push_server_get_stats(server, &stats));
    CHECK(stats.pushes_lost == 1 && stats.pushes_answered == 1 && stats.protocol_violations == 0);
    rp_push_worker_close(worker); /* ends answer_five */
    pthread_join(t, NULL);
    CHECK(a.answered == 1);
    rp_push_worker_free(worker);
    rp_push_server_free(server);
}

static void bad_arguments(void) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new("/nonexistent.sock", "w", "q", &opts));
    CHECK_STATUS(rp_push_worker_options_set_reconnect_jitter(opts, RP_RECONNECT_JITTER_FULL), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_push_worker_options_set_reconnect(opts, 0, 100, 0), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_push_worker_options_set_reconnect(opts, 200, 100, 0), RP_STATUS_INVALID_ARGUMENT);
    CHECK_OK(rp_push_worker_options_set_reconnect(opts, 100, 100, 0));
    CHECK_STATUS(rp_push_worker_options_set_reconnect_jitter(opts, 7), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_push_worker_options_set_reconnect(NULL, 1, 2, 0), RP_STATUS_NULL_ARGUMENT);
    static struct recorder r = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}, 0};
    CHECK_OK(rp_push_worker_options_set_event_callback(opts, record, &r, recorder_free));
    CHECK_OK(rp_push_worker_options_set_event_callback(opts, NULL, NULL, NULL));
    CHECK(r.freed == 1); /* replaced */
    CHECK_OK(rp_push_worker_options_set_event_callback(opts, record, &r, recorder_free));
    rp_push_worker_options_free(opts);
    CHECK(r.freed == 2); /* freed with the options */
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--child-server") == 0) return child_server(argv[2], argv[3]);
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 2;
    g_self[n] = 0;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/rp-c-reconnect-%d", tmp, (int)getpid());
    CHECK(mkdir(g_dir, 0700) == 0);

    bad_arguments();
    killed_and_restarted();
    in_flight_push_fails_at_its_caller();
    gives_up();
    close_during_backoff();
    CHECK(rmdir(g_dir) == 0); /* every socket file was cleaned up */
    return CHECK_DONE("test_reconnect");
}
