/* Broker through the C API on real Unix sockets: every route (hello-skip, negotiated, handed
 * off), each refusal code with its retry hint, a dead cached endpoint, handoff fallbacks
 * (refused ack, timeout), a silent client, a Hello over 64 KiB, a lying peer_pid, admin
 * requests, close from another thread, RUNNING_PROCESS_DISABLE, and argument checks.
 *
 * argv[1] is the vectors folder. The backend (an echo server on protocol 0x7001) and its
 * handoff socket are threads of this process. */
#define _GNU_SOURCE
#include "rp.h"
#include "check.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PROTO 0x7001u

static char g_dir[256];
static char g_backend[512];
static char g_handoff[512];
static const rp_handoff_store *_Atomic g_backend_store; /* the store the backend checks tokens with */
static _Atomic int g_handoff_silent;            /* 1: take the descriptor, never answer */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listen_on(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "listen %s failed\n", path);
        exit(1);
    }
    return fd;
}

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    return fd;
}

static int write_all(int fd, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, void *data, size_t len) {
    unsigned char *p = data;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one whole frame into a malloc'd buffer; returns its length or -1. */
static long read_frame_bytes(int fd, unsigned char **out) {
    unsigned char header[5];
    if (read_all(fd, header, 5) != 0) return -1;
    uint32_t body = (uint32_t)header[1] | (uint32_t)header[2] << 8 | (uint32_t)header[3] << 16 |
                    (uint32_t)header[4] << 24;
    if (body > 1u << 20) return -1;
    unsigned char *buf = malloc(5 + (size_t)body);
    memcpy(buf, header, 5);
    if (read_all(fd, buf + 5, body) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 5 + (long)body;
}

/* Echoes every frame (RESPONSE with the same payload) until the peer goes away. */
static void *echo_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    for (;;) {
        unsigned char *buf = NULL;
        long len = read_frame_bytes(fd, &buf);
        if (len < 0) break;
        rp_frame_view req;
        size_t used = 0;
        rp_msg *reply = NULL;
        int ok = rp_frame_decode(buf, (size_t)len, RP_FRAME_MAX_BODY, &req, &used) == RP_STATUS_OK &&
                 rp_frame_encode_response_msg(&req, req.payload.ptr, req.payload.len, &reply) == RP_STATUS_OK;
        if (ok) ok = write_all(fd, rp_msg_data(reply), rp_msg_len(reply)) == 0;
        rp_msg_free(reply);
        free(buf);
        if (!ok) break;
    }
    close(fd);
    return NULL;
}

static void spawn_detached(void *(*fn)(void *), int fd) {
    pthread_t t;
    pthread_create(&t, NULL, fn, (void *)(intptr_t)fd);
    pthread_detach(t);
}

static void *backend_accept_main(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) return NULL;
        spawn_detached(echo_main, fd);
    }
}

/* The backend's handoff socket: adopt each handed-off connection and echo on it. */
static void *handoff_accept_main(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) return NULL;
        if (g_handoff_silent) {
            usleep(800 * 1000);
            close(fd);
            continue;
        }
        int32_t adopted = -1;
        if (rp_handoff_accept(g_backend_store, fd, 3000, &adopted) == RP_STATUS_OK) spawn_detached(echo_main, adopted);
        close(fd);
    }
}

static rp_broker_server *start_broker(const char *name, const rp_handoff_store *handoff_store, uint32_t rate) {
    char ep[512];
    snprintf(ep, sizeof ep, "%s/%s.sock", g_dir, name);
    rp_broker_server_options *o = NULL;
    CHECK_OK(rp_broker_server_options_new(ep, &o));
    CHECK_OK(rp_broker_server_options_add_service(o, "echo", g_backend, "1.2.3"));
    CHECK_OK(rp_broker_server_options_block_version(o, "echo", "1.0.0"));
    CHECK_OK(rp_broker_server_options_set_min_version(o, "echo", "0.5.0"));
    CHECK_OK(rp_broker_server_options_add_service(o, "picky", g_backend, "2.0.0"));
    CHECK_OK(rp_broker_server_options_allow_version(o, "picky", "2.0.0"));
    CHECK_OK(rp_broker_server_options_add_service(o, "echo-ho", g_backend, "1.2.3"));
    CHECK_OK(rp_broker_server_options_set_handoff(o, "echo-ho", g_handoff, handoff_store));
    CHECK_OK(rp_broker_server_options_set_handoff_ack_timeout_ms(o, 1500));
    CHECK_OK(rp_broker_server_options_set_hello_timeout_ms(o, 3000));
    if (rate) CHECK_OK(rp_broker_server_options_set_rate_limit(o, rate, 60000));
    CHECK_OK(rp_broker_server_options_set_max_connections(o, 4096, 2048));
    CHECK_STATUS(rp_broker_server_options_set_max_connections(NULL, 1, 1), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_broker_server_options_allow_version(o, "nope", "1.0.0"), RP_STATUS_NOT_FOUND);
    rp_broker_server *server = NULL;
    CHECK_OK(rp_broker_server_bind(o, &server));
    return server;
}

static const char *broker_ep(const rp_broker_server *b, char *buf, size_t cap) {
    rp_str s = rp_broker_server_endpoint(b);
    snprintf(buf, cap, "%.*s", (int)s.len, s.ptr);
    return buf;
}

/* Connects; returns the status and fills *out_result on success. */
static rp_status try_connect(const rp_broker_server *b, const char *service, const char *wanted, const char *own,
                             const char *cached, int adopt, int wait_ms, rp_broker_result **out_result) {
    char ep[512];
    rp_broker_options *o = NULL;
    CHECK_OK(rp_broker_options_new(broker_ep(b, ep, sizeof ep), service, wanted, own, &o));
    if (cached) CHECK_OK(rp_broker_options_set_cached_endpoint(o, cached));
    CHECK_OK(rp_broker_options_set_client_version(o, "c-test/1"));
    if (adopt) CHECK_OK(rp_broker_options_set_adopt_handoff(o, true, wait_ms));
    CHECK_OK(rp_broker_options_set_timeout_ms(o, 3000));
    return rp_broker_connect(o, out_result);
}

static void check_echo(rp_broker_result *r, const char *text) {
    rp_conn *conn = NULL;
    CHECK_OK(rp_broker_result_take_conn(r, &conn));
    CHECK_STATUS(rp_broker_result_take_conn(r, &conn), RP_STATUS_NOT_FOUND);
    rp_frame_view f;
    CHECK_OK(rp_frame_view_init(&f));
    f.payload_protocol = PROTO;
    f.request_id = 42;
    f.payload.ptr = (const uint8_t *)text;
    f.payload.len = strlen(text);
    CHECK_OK(rp_conn_send(conn, &f));
    rp_frame *got = NULL;
    CHECK_OK(rp_conn_recv(conn, 3000, &got));
    rp_frame_view v;
    CHECK_OK(rp_frame_view_of(got, &v));
    CHECK(v.kind == RP_FRAME_KIND_RESPONSE && v.request_id == 42 && v.payload_protocol == PROTO);
    CHECK(v.payload.len == strlen(text) && memcmp(v.payload.ptr, text, v.payload.len) == 0);
    rp_frame_free(got);
    CHECK(rp_conn_fd(conn) >= 0);
    CHECK_STATUS(rp_conn_recv(conn, 0, &got), RP_STATUS_TIMEOUT);
    rp_conn_free(conn);
}

static void expect_refusal(const rp_broker_server *b, const char *service, const char *wanted, int32_t code,
                           int want_retry) {
    rp_broker_result *r = NULL;
    CHECK_STATUS(try_connect(b, service, wanted, "9.9.9", NULL, 0, 0, &r), RP_STATUS_REFUSED);
    rp_refusal *refusal = NULL;
    CHECK_OK(rp_last_refusal(&refusal));
    CHECK(rp_refusal_code(refusal) == code);
    if (want_retry) CHECK(rp_refusal_retry_after_ms(refusal) > 0);
    if (rp_refusal_code(refusal) != code) fprintf(stderr, "  service %s wanted %s: code %d\n", service, wanted, rp_refusal_code(refusal));
    rp_refusal_free(refusal);
}

/* Sends raw bytes as the first thing on a new broker connection; returns the reply frame. */
static long raw_exchange(const rp_broker_server *b, const unsigned char *data, size_t len, unsigned char **reply) {
    char ep[512];
    int fd = connect_to(broker_ep(b, ep, sizeof ep));
    CHECK(fd >= 0);
    write_all(fd, data, len);
    long n = read_frame_bytes(fd, reply);
    close(fd);
    return n;
}

static int contains(const unsigned char *hay, long n, const char *needle) {
    return n > 0 && memmem(hay, (size_t)n, needle, strlen(needle)) != NULL;
}

struct closer {
    rp_conn *conn;
    rp_status status;
};

static void *blocked_recv_main(void *arg) {
    struct closer *c = arg;
    rp_frame *f = NULL;
    c->status = rp_conn_recv(c->conn, -1, &f);
    return NULL;
}

int main(int argc, char **argv) {
    const char *vectors = argc > 1 ? argv[1] : "tests/vectors";
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/rp-c-broker-%d", tmp, (int)getpid());
    mkdir(g_dir, 0700);
    snprintf(g_backend, sizeof g_backend, "%s/backend.sock", g_dir);
    snprintf(g_handoff, sizeof g_handoff, "%s/handoff.sock", g_dir);
    int backend_fd = listen_on(g_backend);
    int handoff_fd = listen_on(g_handoff);
    spawn_detached(backend_accept_main, backend_fd);
    spawn_detached(handoff_accept_main, handoff_fd);

    const rp_handoff_store *shared_store = NULL, *other_store = NULL;
    CHECK_OK(rp_handoff_store_new(0, 0, &shared_store));
    CHECK_OK(rp_handoff_store_new(0, 0, &other_store));
    g_backend_store = shared_store;
    rp_broker_server *broker = start_broker("broker", shared_store, 0);

    /* Negotiated. */
    rp_broker_result *r = NULL;
    CHECK_OK(try_connect(broker, "echo", "1.2.3", "1.2.3", NULL, 0, 0, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_NEGOTIATED);
    rp_str ep = rp_broker_result_endpoint(r);
    CHECK(ep.len == strlen(g_backend) && memcmp(ep.ptr, g_backend, ep.len) == 0);
    rp_str dv = rp_broker_result_daemon_version(r);
    CHECK(dv.len == 5 && memcmp(dv.ptr, "1.2.3", 5) == 0);
    CHECK(rp_broker_result_keepalive_secs(r) == 1800);
    CHECK(rp_broker_result_connection_id(r) >= 1);
    {
        rp_conn *conn = NULL;
        uint32_t pid = 0, uid = 0, gid = 0;
        CHECK_OK(rp_broker_result_take_conn(r, &conn));
        CHECK_OK(rp_conn_peer_credentials(conn, &pid, &uid, &gid));
        CHECK(pid == (uint32_t)getpid() && uid == (uint32_t)geteuid());
        rp_conn_free(conn);
    }
    rp_broker_result_free(r);

    /* Hello-skip to the cached endpoint, and echo through it. */
    r = NULL;
    CHECK_OK(try_connect(broker, "echo", "1.2.3", "1.2.3", g_backend, 0, 0, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_HELLO_SKIP);
    CHECK(rp_broker_result_connection_id(r) == 0);
    check_echo(r, "hello-skip");
    rp_broker_result_free(r);

    /* Versions differ: the cache is not used. */
    r = NULL;
    CHECK_OK(try_connect(broker, "echo", "1.2.3", "1.2.4", g_backend, 0, 0, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_NEGOTIATED);
    check_echo(r, "negotiated");
    rp_broker_result_free(r);

    /* A dead cached endpoint falls back to Hello. */
    {
        char dead[600];
        snprintf(dead, sizeof dead, "%s/dead.sock", g_dir);
        r = NULL;
        CHECK_OK(try_connect(broker, "echo", "1.2.3", "1.2.3", dead, 0, 0, &r));
        CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_NEGOTIATED);
        check_echo(r, "after dead cache");
        rp_broker_result_free(r);
    }

    /* Refusals, each with its code. */
    expect_refusal(broker, "nosuch", "1.2.3", RP_ERROR_CODE_SERVICE_UNKNOWN, 0);
    expect_refusal(broker, "echo", "1.0.0", RP_ERROR_CODE_VERSION_BLOCKED, 0);
    expect_refusal(broker, "echo", "0.4.0", RP_ERROR_CODE_VERSION_BLOCKED, 1);
    expect_refusal(broker, "picky", "1.2.3", RP_ERROR_CODE_VERSION_BLOCKED, 1); /* allow list: as the reference */

    /* Handoff accepted: the Hello connection becomes the backend connection. */
    r = NULL;
    CHECK_OK(try_connect(broker, "echo-ho", "1.2.3", "1.2.3", NULL, 1, 2000, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_HANDED_OFF);
    CHECK((rp_broker_result_server_capabilities(r) & 1) == 1);
    check_echo(r, "handed off");
    rp_broker_result_free(r);

    /* Not opted in: negotiated, even though the service offers handoff. */
    r = NULL;
    CHECK_OK(try_connect(broker, "echo-ho", "1.2.3", "1.2.3", NULL, 0, 0, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_NEGOTIATED);
    rp_broker_result_free(r);

    /* Refused ack (the backend does not know the token): falls back to backend_pipe. */
    g_backend_store = other_store;
    r = NULL;
    CHECK_OK(try_connect(broker, "echo-ho", "1.2.3", "1.2.3", NULL, 1, 2000, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_NEGOTIATED);
    check_echo(r, "refused ack");
    rp_broker_result_free(r);
    g_backend_store = shared_store;

    /* No relay in time (the backend never answers): falls back after the client's wait. */
    g_handoff_silent = 1;
    double t0 = now_s();
    r = NULL;
    CHECK_OK(try_connect(broker, "echo-ho", "1.2.3", "1.2.3", NULL, 1, 300, &r));
    CHECK(rp_broker_result_route(r) == RP_BROKER_ROUTE_NEGOTIATED);
    CHECK(now_s() - t0 < 1.2);
    check_echo(r, "timeout");
    rp_broker_result_free(r);
    g_handoff_silent = 0;

    /* A silent client does not stall others. */
    {
        char bep[512];
        int silent = connect_to(broker_ep(broker, bep, sizeof bep));
        CHECK(silent >= 0);
        t0 = now_s();
        r = NULL;
        CHECK_OK(try_connect(broker, "echo", "1.2.3", "1.2.3", NULL, 0, 0, &r));
        CHECK(now_s() - t0 < 1.0);
        rp_broker_result_free(r);
        close(silent);
    }

    /* A lying peer_pid (the vector carries pid 4242) is refused with PEER_REJECTED. */
    {
        char path[600];
        unsigned char *hello = NULL, *reply = NULL;
        snprintf(path, sizeof path, "%s/hello_request.hex", vectors);
        long n = read_hex_file(path, &hello);
        CHECK(n > 0);
        long m = raw_exchange(broker, hello, (size_t)n, &reply);
        CHECK(contains(reply, m, "peer_pid does not match verified peer"));
        CHECK(contains(reply, m, "\x20\x06")); /* Refused.code = PEER_REJECTED */
        free(hello);
        free(reply);
    }

    /* A Hello over 64 KiB is refused before it is read. */
    {
        size_t body = 70000;
        unsigned char *big = calloc(1, 5 + body);
        big[0] = 1;
        big[1] = (unsigned char)(body & 0xff);
        big[2] = (unsigned char)((body >> 8) & 0xff);
        big[3] = (unsigned char)((body >> 16) & 0xff);
        unsigned char *reply = NULL;
        long m = raw_exchange(broker, big, 5, &reply);
        CHECK(contains(reply, m, "exceeds"));
        free(big);
        free(reply);
    }

    /* A foreign framing byte gets the reference's refusal, byte for byte. */
    {
        char path[600];
        unsigned char *want = NULL, *reply = NULL;
        snprintf(path, sizeof path, "%s/hello_reply_refused_bad_framing.hex", vectors);
        long n = read_hex_file(path, &want);
        long m = raw_exchange(broker, (const unsigned char *)"GET / HTTP/1.1\r\n\r\n", 18, &reply);
        CHECK(n > 0 && m == n && memcmp(want, reply, (size_t)n) == 0);
        free(want);
        free(reply);
    }

    /* Admin. */
    {
        char bep[512];
        rp_admin_reply *reply = NULL;
        CHECK_OK(rp_admin_request(broker_ep(broker, bep, sizeof bep), 4 /* HEALTHZ */, NULL, 2000, &reply));
        CHECK(rp_admin_reply_exit_code(reply) == 0);
        rp_str body = rp_admin_reply_body(reply);
        CHECK(body.len == 2 && memcmp(body.ptr, "ok", 2) == 0);
        rp_admin_reply_free(reply);
    }

    /* Close from another thread wakes a blocked receive. */
    {
        r = NULL;
        CHECK_OK(try_connect(broker, "echo", "1.2.3", "1.2.3", NULL, 0, 0, &r));
        struct closer c = {NULL, RP_STATUS_OK};
        CHECK_OK(rp_broker_result_take_conn(r, &c.conn));
        pthread_t t;
        pthread_create(&t, NULL, blocked_recv_main, &c);
        usleep(100 * 1000);
        rp_conn_close(c.conn);
        pthread_join(t, NULL);
        CHECK(c.status == RP_STATUS_CLOSED);
        rp_frame_view f;
        CHECK_OK(rp_frame_view_init(&f));
        CHECK_STATUS(rp_conn_send(c.conn, &f), RP_STATUS_CLOSED);
        rp_conn_free(c.conn);
        rp_broker_result_free(r);
    }

    /* Rate limit per peer uid, with a retry hint. */
    {
        rp_broker_server *limited = start_broker("limited", NULL, 2);
        for (int i = 0; i < 2; i++) {
            r = NULL;
            CHECK_OK(try_connect(limited, "echo", "1.2.3", "1.2.3", NULL, 0, 0, &r));
            rp_broker_result_free(r);
        }
        expect_refusal(limited, "echo", "1.2.3", RP_ERROR_CODE_RATE_LIMITED, 1);
        rp_broker_server_free(limited);
    }

    /* Shutting down. */
    rp_broker_server_begin_shutdown(broker);
    expect_refusal(broker, "echo", "1.2.3", RP_ERROR_CODE_SHUTTING_DOWN, 1);

    /* RUNNING_PROCESS_DISABLE, for callers that honour it. */
    {
        char bep[512];
        bool disabled = false;
        setenv("RUNNING_PROCESS_DISABLE", "1", 1);
        CHECK_OK(rp_broker_disabled_by_env(&disabled));
        CHECK(disabled);
        rp_broker_options *o = NULL;
        CHECK_OK(rp_broker_options_new(broker_ep(broker, bep, sizeof bep), "echo", "1.2.3", "1.2.3", &o));
        CHECK_OK(rp_broker_options_set_honor_disable_env(o, true));
        r = NULL;
        CHECK_STATUS(rp_broker_connect(o, &r), RP_STATUS_DISABLED);
        setenv("RUNNING_PROCESS_DISABLE", "yes", 1);
        CHECK_STATUS(rp_broker_disabled_by_env(&disabled), RP_STATUS_CONFIG);
        CHECK_LAST_ERROR_CONTAINS("RUNNING_PROCESS_DISABLE");
        o = NULL;
        CHECK_OK(rp_broker_options_new(bep, "echo", "1.2.3", "1.2.3", &o));
        CHECK_OK(rp_broker_options_set_honor_disable_env(o, true));
        CHECK_STATUS(rp_broker_connect(o, &r), RP_STATUS_CONFIG);
        unsetenv("RUNNING_PROCESS_DISABLE");
    }

    /* Arguments. */
    {
        rp_broker_options *o = NULL;
        CHECK_STATUS(rp_broker_options_new(NULL, "echo", "1.2.3", "1.2.3", &o), RP_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(rp_broker_options_new("/x.sock", "ech\xff", "1.2.3", "1.2.3", &o), RP_STATUS_INVALID_UTF8);
        CHECK_STATUS(rp_broker_connect(NULL, NULL), RP_STATUS_NULL_ARGUMENT);
        CHECK_STATUS(rp_conn_send(NULL, NULL), RP_STATUS_NULL_ARGUMENT);
        CHECK(rp_conn_fd(NULL) == -1);
        rp_conn_close(NULL);
        rp_conn_free(NULL);
        rp_broker_result_free(NULL);
        rp_broker_server_free(NULL);
    }

    rp_broker_server_free(broker);
    rp_handoff_store_free(shared_store);
    rp_handoff_store_free(other_store);
    shutdown(backend_fd, SHUT_RDWR);
    shutdown(handoff_fd, SHUT_RDWR);
    usleep(50 * 1000);
    unlink(g_backend);
    unlink(g_handoff);
    rmdir(g_dir);
    CHECK_DONE("test_broker");
}
