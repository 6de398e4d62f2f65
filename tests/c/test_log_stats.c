/* The log callback and the statistics calls through the C API, on real Unix sockets: with no
 * callback nothing is written anywhere; with one, a refused connection, two registrations, a
 * push answered, one timed out, a handshake timeout, a protocol violation and a lost worker each
 * give their exact log event and counter; the callback calls back into librp; the broker's
 * stats equal its METRICS admin answer; session calls are counted on both ends.
 *
 * argv[1] is the vectors folder (unused). */
#include "rp.h"
#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROTO 0x7001u

static char g_dir[128];

static void endpoint_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s.sock", g_dir, name);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the log sink: every event, copied ---- */

#define MAX_EVENTS 256
struct event {
    int level;
    char component[32];
    char message[256];
};

struct sink {
    pthread_mutex_t lock;
    struct event events[MAX_EVENTS];
    int count;
    int freed;
    /* Calls back into librp from inside the callback when set. */
    const rp_push_server *server;
    int reentrant_calls;
    uint64_t registered_seen;
};

static void on_log(void *user_data, rp_log_level level, const char *component, const char *message) {
    struct sink *s = (struct sink *)user_data;
    if (s->server && strstr(message, " registered from ") != NULL) {
        /* Back into librp from the push server's own event-loop thread: a stats call, a
         * worker list, the last error, the version. None may deadlock. */
        rp_push_server_stats st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        rp_push_worker_list *list = NULL;
        if (rp_push_server_get_stats(s->server, &st) == RP_STATUS_OK &&
            rp_push_server_workers(s->server, &list) == RP_STATUS_OK && rp_version_string() != NULL) {
            pthread_mutex_lock(&s->lock);
            s->reentrant_calls++;
            s->registered_seen = st.registrations_accepted;
            pthread_mutex_unlock(&s->lock);
        }
        rp_push_worker_list_free(list);
    }
    pthread_mutex_lock(&s->lock);
    if (s->count < MAX_EVENTS) {
        struct event *e = &s->events[s->count++];
        e->level = (int)level;
        snprintf(e->component, sizeof e->component, "%s", component);
        snprintf(e->message, sizeof e->message, "%s", message);
    }
    pthread_mutex_unlock(&s->lock);
}

static void on_free(void *user_data) {
    ((struct sink *)user_data)->freed++;
}

/* True when an event with this level, component and exact message was logged. */
static int logged(struct sink *s, int level, const char *component, const char *message) {
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->count && !found; i++) {
        found = s->events[i].level == level && strcmp(s->events[i].component, component) == 0 &&
                strcmp(s->events[i].message, message) == 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (!found) fprintf(stderr, "not logged: [%d] %s: %s\n", level, component, message);
    return found;
}

/* True when an event with this level and component starts with `prefix`. */
static int logged_prefix(struct sink *s, int level, const char *component, const char *prefix) {
    int found = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->count && !found; i++) {
        found = s->events[i].level == level && strcmp(s->events[i].component, component) == 0 &&
                strncmp(s->events[i].message, prefix, strlen(prefix)) == 0;
    }
    pthread_mutex_unlock(&s->lock);
    if (!found) fprintf(stderr, "not logged: [%d] %s: %s...\n", level, component, prefix);
    return found;
}

static rp_push_server_stats server_stats(const rp_push_server *server) {
    rp_push_server_stats st;
    memset(&st, 0xff, sizeof st);
    st.size = sizeof st;
    CHECK_OK(rp_push_server_get_stats(server, &st));
    CHECK(st.size == sizeof st);
    return st;
}

static rp_push_worker_stats worker_stats(const rp_push_worker *client) {
    rp_push_worker_stats st;
    memset(&st, 0xff, sizeof st);
    st.size = sizeof st;
    CHECK_OK(rp_push_worker_get_stats(client, &st));
    CHECK(st.size == sizeof st);
    return st;
}

static rp_status connect_worker(const char *ep, const char *service, const char *queue, rp_push_worker **out) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "c-test-worker", queue, &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    if (service) CHECK_OK(rp_push_worker_options_set_service(opts, service));
    return rp_push_worker_connect(opts, out);
}

static void *echo_one(void *arg) {
    rp_push_worker *client = (rp_push_worker *)arg;
    rp_push *push = NULL;
    if (rp_push_worker_recv(client, 5000, &push) == RP_STATUS_OK) {
        CHECK_OK(rp_push_worker_reply(client, rp_push_correlation_id(push), (const uint8_t *)"pong", 4));
        rp_push_free(push);
    }
    return NULL;
}

static int raw_connect(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    size_t n = strlen(path);
    CHECK(n < sizeof addr.sun_path);
    memcpy(addr.sun_path, path, n < sizeof addr.sun_path ? n : sizeof addr.sun_path - 1);
    CHECK(connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    return fd;
}

/* Waits up to 5 s for the server's counters to satisfy `cond`. */
#define WAIT_STATS(server, st, cond)                                   \
    do {                                                               \
        for (int i_ = 0; i_ < 500; i_++) {                             \
            st = server_stats(server);                                 \
            if (cond) break;                                           \
            sleep_ms(10);                                              \
        }                                                              \
        CHECK(cond);                                                   \
    } while (0)

static void push_server_events_and_counters(void) {
    static struct sink sink = {.lock = PTHREAD_MUTEX_INITIALIZER};
    char ep[256], msg[1024];
    endpoint_path(ep, sizeof ep, "ls");
    const unsigned pid = (unsigned)getpid(), uid = (unsigned)getuid();

    rp_push_server_options *o = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &o));
    CHECK_OK(rp_push_server_options_set_handshake_timeout_ms(o, 300));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(o, &server));
    sink.server = server;
    CHECK_OK(rp_log_set(RP_LOG_LEVEL_DEBUG, on_log, &sink, on_free));

    /* A refused connection: the wrong service. Connection tokens start at 2. */
    rp_push_worker *refused = NULL;
    CHECK_STATUS(connect_worker(ep, "not-this-one", "q", &refused), RP_STATUS_REFUSED);
    snprintf(msg, sizeof msg, "connection 2 accepted from pid %u uid %u", pid, uid);
    CHECK(logged(&sink, RP_LOG_LEVEL_DEBUG, "push-server", msg));
    snprintf(msg, sizeof msg, "connection 2 from pid %u uid %u refused (SERVICE_UNKNOWN): service is not registered", pid, uid);
    CHECK(logged(&sink, RP_LOG_LEVEL_WARN, "push-server", msg));
    snprintf(msg, sizeof msg, "connecting to %s failed: ", ep);
    CHECK(logged_prefix(&sink, RP_LOG_LEVEL_WARN, "push-worker", msg));

    /* Two registrations. */
    rp_push_worker *echo = NULL, *mute = NULL;
    CHECK_OK(connect_worker(ep, NULL, "echo", &echo));
    CHECK_OK(connect_worker(ep, NULL, "mute", &mute));
    uint64_t echo_id = rp_push_worker_id(echo), mute_id = rp_push_worker_id(mute);
    rp_push_server_stats st;
    WAIT_STATS(server, st, st.registrations_accepted == 2);
    snprintf(msg, sizeof msg, "worker %llu registered from pid %u uid %u: identity \"c-test-worker\", task queue \"echo\"",
             (unsigned long long)echo_id, pid, uid);
    CHECK(logged(&sink, RP_LOG_LEVEL_INFO, "push-server", msg));
    snprintf(msg, sizeof msg, "registered with %s as worker %llu", ep, (unsigned long long)mute_id);
    CHECK(logged(&sink, RP_LOG_LEVEL_INFO, "push-worker", msg));
    pthread_mutex_lock(&sink.lock);
    CHECK(sink.reentrant_calls == 2);
    CHECK(sink.registered_seen >= 1);
    pthread_mutex_unlock(&sink.lock);

    /* A push answered (correlation id 1). */
    pthread_t t;
    pthread_create(&t, NULL, echo_one, echo);
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"ping", 4, &req));
    CHECK_OK(rp_push_request_to_task_queue(req, "echo"));
    rp_push_result *res = NULL;
    CHECK_OK(rp_push_server_push_wait(server, req, 5000, &res));
    rp_push_result_free(res);
    pthread_join(t, NULL);

    /* A push timed out (correlation id 2): the mute worker never answers. */
    CHECK_OK(rp_push_request_to_task_queue(req, "mute"));
    res = NULL;
    CHECK_STATUS(rp_push_server_push_wait(server, req, 100, &res), RP_STATUS_TIMEOUT);
    snprintf(msg, sizeof msg, "push 2 to worker %llu passed its deadline without a reply", (unsigned long long)mute_id);
    CHECK(logged(&sink, RP_LOG_LEVEL_WARN, "push-server", msg));

    /* A push with nobody to take it (correlation id 3): never sent. */
    CHECK_OK(rp_push_request_to_task_queue(req, "nobody"));
    CHECK_STATUS(rp_push_server_push_wait(server, req, 100, &res), RP_STATUS_NOT_FOUND);
    rp_push_request_free(req);

    /* The mute worker reads its push and the server's cancel, then leaves. */
    rp_push *push = NULL;
    sleep_ms(100); /* the cancel follows the timeout at once */
    CHECK_STATUS(rp_push_worker_recv(mute, 300, &push), RP_STATUS_TIMEOUT);
    rp_push_worker_stats ws = worker_stats(mute);
    CHECK(ws.pushes_received == 1 && ws.cancels_received == 1 && ws.pushes_queued == 0 && ws.replies_sent == 0);
    CHECK(ws.bytes_in > 0 && ws.bytes_out == 0);
    rp_push_worker_free(mute);
    snprintf(msg, sizeof msg, "worker %llu: connection ended: closed locally", (unsigned long long)mute_id);
    CHECK(logged(&sink, RP_LOG_LEVEL_INFO, "push-worker", msg));

    /* A connection that never says Hello (token 5) meets the handshake timeout. */
    endpoint_path(ep, sizeof ep, "ls");
    int raw = raw_connect(ep);
    WAIT_STATS(server, st, st.handshake_timeouts == 1 && st.workers_lost == 1);
    close(raw);
    snprintf(msg, sizeof msg, "connection 5 from pid %u uid %u closed: handshake not completed in time", pid, uid);
    CHECK(logged(&sink, RP_LOG_LEVEL_WARN, "push-server", msg));
    snprintf(msg, sizeof msg, "worker %llu lost: ", (unsigned long long)mute_id);
    CHECK(logged_prefix(&sink, RP_LOG_LEVEL_WARN, "push-server", msg));

    /* A connection (token 6) whose first frame is not a Hello: a protocol violation. */
    rp_frame_view f;
    CHECK_OK(rp_frame_view_init(&f));
    f.kind = RP_FRAME_KIND_REQUEST;
    f.payload_protocol = PROTO;
    f.request_id = 1;
    uint8_t wire[64];
    size_t wire_len = 0;
    CHECK_OK(rp_frame_encode(&f, wire, sizeof wire, &wire_len));
    raw = raw_connect(ep);
    CHECK(write(raw, wire, wire_len) == (ssize_t)wire_len);
    WAIT_STATS(server, st, st.protocol_violations == 1);
    close(raw);
    snprintf(msg, sizeof msg,
             "connection 6 from pid %u uid %u closed: protocol violation: expected a Hello, got payload protocol 0x7001",
             pid, uid);
    CHECK(logged(&sink, RP_LOG_LEVEL_WARN, "push-server", msg));

    ws = worker_stats(echo);
    CHECK(ws.pushes_received == 1 && ws.replies_sent == 1 && ws.failures_sent == 0 && ws.cancels_received == 0);
    CHECK(ws.pushes_outstanding == 0 && ws.bytes_in > 0 && ws.bytes_out > 0);

    WAIT_STATS(server, st, st.connections_open == 1);
    CHECK(st.connections_accepted == 5);
    CHECK(st.workers_registered == 1 && st.registrations_accepted == 2 && st.registrations_rejected == 0);
    CHECK(st.workers_lost == 1 && st.handshake_timeouts == 1 && st.protocol_violations == 1);
    CHECK(st.pushes_sent == 2 && st.pushes_answered == 1 && st.pushes_timed_out == 1);
    CHECK(st.pushes_failed == 0 && st.pushes_lost == 0 && st.pushes_in_flight == 0 && st.pushes_unsent == 1);
    CHECK(st.refused_service_unknown == 1 && st.refused_peer_rejected == 0 && st.refused_rate_limited == 0);
    CHECK(st.refused_version_unsupported == 0 && st.refused_shutting_down == 0 && st.refused_other == 0);
    CHECK(st.bytes_in > 0 && st.bytes_out > 0);

    /* A size from an older, shorter header: only what fits is written. */
    rp_push_server_stats small;
    memset(&small, 0xee, sizeof small);
    small.size = 2 * sizeof(uint64_t);
    CHECK_OK(rp_push_server_get_stats(server, &small));
    CHECK(small.size == 2 * sizeof(uint64_t) && small.connections_accepted == 5);
    CHECK(small.connections_open == 0xeeeeeeeeeeeeeeeeull);
    small.size = 0;
    CHECK_STATUS(rp_push_server_get_stats(server, &small), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_push_server_get_stats(NULL, &small), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_push_server_get_stats(server, NULL), RP_STATUS_NULL_ARGUMENT);

    /* Clearing the callback frees its user data once; nothing more is delivered. */
    CHECK_STATUS(rp_log_set(5, on_log, &sink, on_free), RP_STATUS_INVALID_ARGUMENT);
    CHECK(sink.freed == 0);
    CHECK_OK(rp_log_set(RP_LOG_LEVEL_OFF, NULL, NULL, NULL));
    CHECK(sink.freed == 1);
    pthread_mutex_lock(&sink.lock);
    int before = sink.count;
    pthread_mutex_unlock(&sink.lock);
    rp_push_worker_free(echo);
    rp_push_server_free(server);
    CHECK(sink.count == before);
}

/* The broker's stats and its METRICS admin verb report the same numbers. */
static void broker_stats_match_metrics(void) {
    static struct sink sink = {.lock = PTHREAD_MUTEX_INITIALIZER};
    char ep[256], msg[1024];
    endpoint_path(ep, sizeof ep, "broker");
    rp_broker_server_options *o = NULL;
    CHECK_OK(rp_broker_server_options_new(ep, &o));
    CHECK_OK(rp_broker_server_options_add_service(o, "echo", "/nonexistent/backend.sock", "1.2.3"));
    rp_broker_server *broker = NULL;
    CHECK_OK(rp_broker_server_bind(o, &broker));
    CHECK_OK(rp_log_set(RP_LOG_LEVEL_INFO, on_log, &sink, on_free));

    for (int i = 0; i < 3; i++) {
        rp_broker_options *bo = NULL;
        CHECK_OK(rp_broker_options_new(ep, i == 2 ? "nope" : "echo", "1.2.3", "1.0.0", &bo));
        rp_broker_result *r = NULL;
        rp_status st = rp_broker_connect(bo, &r);
        /* Negotiated, then the backend (absent) cannot be reached. */
        CHECK(i == 2 ? st == RP_STATUS_REFUSED : st != RP_STATUS_REFUSED);
        rp_broker_result_free(r);
    }
    snprintf(msg, sizeof msg, "connection 4 from pid %u uid %u refused (SERVICE_UNKNOWN): service is not registered (service \"nope\")",
             (unsigned)getpid(), (unsigned)getuid());
    CHECK(logged(&sink, RP_LOG_LEVEL_WARN, "broker", msg));
    snprintf(msg, sizeof msg, "connection 2 from pid %u uid %u negotiated service \"echo\" version \"1.2.3\"",
             (unsigned)getpid(), (unsigned)getuid());
    CHECK(logged(&sink, RP_LOG_LEVEL_INFO, "broker", msg));

    rp_admin_reply *reply = NULL;
    CHECK_OK(rp_admin_request(ep, 9 /* METRICS */, NULL, 2000, &reply));
    CHECK(rp_admin_reply_kind(reply) == 2 /* OPENMETRICS */ && rp_admin_reply_exit_code(reply) == 0);
    rp_str body = rp_admin_reply_body(reply);
    char text[4096];
    snprintf(text, sizeof text, "%.*s", (int)body.len, body.ptr);
    rp_admin_reply_free(reply);

    rp_broker_server_stats bs;
    memset(&bs, 0, sizeof bs);
    bs.size = sizeof bs;
    CHECK_OK(rp_broker_server_get_stats(broker, &bs));
    CHECK(bs.size == sizeof bs);
    CHECK(bs.connections_accepted == 4 && bs.hellos_negotiated == 2 && bs.refused_service_unknown == 1);
    CHECK(bs.admin_requests == 1 && bs.handoffs_started == 0 && bs.refused_peer_rejected == 0);

    const char *want[] = {
        "# TYPE running_process_broker_v1_hello_total counter\n",
        "running_process_broker_v1_hello_total{outcome=\"negotiated\"} 2\n",
        "running_process_broker_v1_hello_total{outcome=\"service_unknown\"} 1\n",
        "running_process_broker_v1_hello_total{outcome=\"rate_limited\"} 0\n",
        "librp_broker_connections_accepted_total 4\n",
        "librp_broker_admin_requests_total 1\n",
        "librp_broker_handoffs_total{outcome=\"started\"} 0\n",
        "# TYPE running_process_broker_v1_uptime_seconds gauge\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(text, want[i]) == NULL) {
            fprintf(stderr, "METRICS lacks %s in:\n%s\n", want[i], text);
            CHECK(0);
        }
    }
    CHECK(strlen(text) > 6 && strcmp(text + strlen(text) - 6, "# EOF\n") == 0);

    CHECK_OK(rp_log_set(RP_LOG_LEVEL_OFF, NULL, NULL, NULL));
    CHECK(sink.freed == 1);
    rp_broker_server_free(broker);
}

/* Session counters on both ends of one call. */
static void serve(void *user_data, rp_session_request *request) {
    (void)user_data;
    rp_bytes p = rp_session_request_payload(request);
    CHECK_OK(rp_session_respond(request, p.ptr, p.len)); /* consumes the request */
}

struct accept_args {
    rp_session_listener *listener;
    rp_session *session;
};

static void *accept_one(void *arg) {
    struct accept_args *a = (struct accept_args *)arg;
    CHECK_OK(rp_session_listener_accept(a->listener, 5000, serve, NULL, NULL, &a->session));
    return NULL;
}

static void session_counters(void) {
    char ep[512];
    endpoint_path(ep, sizeof ep, "session");
    struct accept_args a = {NULL, NULL};
    CHECK_OK(rp_session_listener_bind(ep, &a.listener));
    pthread_t t;
    pthread_create(&t, NULL, accept_one, &a);
    rp_session *client = NULL;
    CHECK_OK(rp_session_connect(ep, 5000, NULL, NULL, NULL, &client));
    pthread_join(t, NULL);

    rp_msg *resp = NULL;
    /* Started, then served by dispatch on this same thread, then taken. */
    rp_session_ticket *call = NULL;
    size_t handled = 0;
    CHECK_OK(rp_session_call_start(client, PROTO, (const uint8_t *)"hi", 2, NULL, &call));
    CHECK_OK(rp_session_dispatch(a.session, 2000, &handled));
    CHECK(handled == 1);
    CHECK_OK(rp_session_ticket_wait(call, 2000, &resp));
    rp_msg_free(resp);
    rp_session_ticket_free(call);

    /* A call nobody dispatches times out (and the peer is sent a CANCEL). */
    CHECK_STATUS(rp_session_call(client, PROTO, (const uint8_t *)"slow", 4, NULL, 50, &resp), RP_STATUS_TIMEOUT);

    rp_session_stats ss;
    memset(&ss, 0, sizeof ss);
    ss.size = sizeof ss;
    CHECK_OK(rp_session_get_stats(client, &ss));
    CHECK(ss.size == sizeof ss);
    CHECK(ss.calls_started == 2 && ss.calls_succeeded == 1 && ss.calls_failed == 1 && ss.calls_timed_out == 1);
    CHECK(ss.calls_pending == 0 && ss.requests_received == 0);
    for (int i = 0; i < 500; i++) {
        memset(&ss, 0, sizeof ss);
        ss.size = sizeof ss;
        CHECK_OK(rp_session_get_stats(a.session, &ss));
        if (ss.requests_received == 2 && ss.requests_queued == 0) break;
        sleep_ms(10);
    }
    CHECK(ss.requests_received == 2 && ss.requests_answered == 1 && ss.requests_queued == 0 && ss.calls_started == 0);

    rp_session_free(client);
    rp_session_free(a.session);
    rp_session_listener_free(a.listener);
}

/* With no callback set, librp writes nothing to stdout or stderr, even as it refuses a
 * connection and a push times out; and a callback set with RP_LOG_LEVEL_OFF is never called
 * (its user data is freed at once). */
static void silent_without_callback(void) {
    static struct sink sink = {.lock = PTHREAD_MUTEX_INITIALIZER};
    CHECK_OK(rp_log_set(RP_LOG_LEVEL_OFF, on_log, &sink, on_free));
    CHECK(sink.freed == 1);

    char path[512];
    snprintf(path, sizeof path, "%s/stdio.txt", g_dir);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 1);
    dup2(fd, 2);

    char ep[512];
    endpoint_path(ep, sizeof ep, "quiet");
    rp_push_server_options *o = NULL;
    rp_push_server *server = NULL;
    rp_push_worker *refused = NULL, *mute = NULL;
    rp_status s1 = rp_push_server_options_new(ep, &o);
    rp_status s2 = rp_push_server_bind(o, &server);
    rp_status s3 = connect_worker(ep, "wrong", "q", &refused);
    rp_status s4 = connect_worker(ep, NULL, "q", &mute);
    rp_push_request *req = NULL;
    rp_status s5 = rp_push_request_new(PROTO, (const uint8_t *)"x", 1, &req);
    rp_status s6 = rp_push_request_to_task_queue(req, "q");
    rp_push_result *res = NULL;
    rp_status s7 = rp_push_server_push_wait(server, req, 50, &res);
    rp_push_request_free(req);
    rp_push_worker_free(mute);
    rp_push_server_free(server);

    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    struct stat sb;
    CHECK(fstat(fd, &sb) == 0 && sb.st_size == 0);
    close(fd);
    unlink(path);
    CHECK(s1 == RP_STATUS_OK && s2 == RP_STATUS_OK && s3 == RP_STATUS_REFUSED && s4 == RP_STATUS_OK);
    CHECK(s5 == RP_STATUS_OK && s6 == RP_STATUS_OK && s7 == RP_STATUS_TIMEOUT);
    CHECK(sink.count == 0);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/rp-c-logstats-%d", tmp, (int)getpid());
    mkdir(g_dir, 0700);

    silent_without_callback();
    push_server_events_and_counters();
    broker_stats_match_metrics();
    session_counters();
    rmdir(g_dir);
    return CHECK_DONE("test_log_stats");
}
