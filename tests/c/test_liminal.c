/* The push worker on a liminal endpoint (liminal+tcp://host:port), through the C API, against a
 * scripted fake liminal server on 127.0.0.1: the exact bytes of the Connect, the WorkerRegister
 * (with its activity-descriptor tail), the PushReply and the refusal record; pushes, a Ping, an
 * unknown frame type, the pollable descriptor and a Disconnect; a refused Connect and a
 * rejected registration; and the options the liminal wire has no room for.
 *
 * The fake server runs in a thread; every step it takes is bounded by a poll timeout, and it
 * records its own failures, which main adds to the count after joining it. */
#include "rp.h"
#include "check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* Every wait of the fake server and of the worker's calls is bounded by this. */
#define STEP_MS 5000

/* Builds bytes from a readable spec: hex digits (spaces ignored) and 'text' inserted as is, so
 * frames read as in the wire notes ("16 00 00000001 ..."). Returns the length; aborts on a
 * malformed spec or one over `cap` (a bug in this file). */
static size_t spec(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
        } else if (*s == '\'') {
            const char *end = strchr(s + 1, '\'');
            if (!end || n + (size_t)(end - s - 1) > cap) abort();
            memcpy(out + n, s + 1, (size_t)(end - s - 1));
            n += (size_t)(end - s - 1);
            s = end + 1;
        } else {
            unsigned int b;
            if (n >= cap || sscanf(s, "%2x", &b) != 1) abort();
            out[n++] = (uint8_t)b;
            s += 2;
        }
    }
    return n;
}

static void print_hex(const char *label, const uint8_t *b, size_t n) {
    fprintf(stderr, "  %s (%zu bytes):", label, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%02x", i % 32 == 0 ? "\n    " : " ", b[i]);
    fprintf(stderr, "\n");
}

/* ---- the fake liminal server ---------------------------------------------------------------- */

enum script {
    SCRIPT_SERVE,          /* connect, register, pushes, Ping, replies, Disconnect */
    SCRIPT_CONNECT_ERROR,  /* ConnectError 0x0006 with a message */
    SCRIPT_REJECT,         /* ConnectAck, then WorkerRegisterAck rejected */
    SCRIPT_REVOKED         /* 1.3 selected, registered, then DisconnectReason grant_revoked */
};

struct fake {
    enum script script;
    int listen_fd;
    uint16_t port;
    int go[2];             /* main -> server: "go on" bytes */
    const char *connect;   /* expected Connect (spec) */
    const char *reg;       /* expected WorkerRegister (spec) */
    int failures;          /* the server thread's own failures */
};

static void fake_fail(struct fake *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fake liminal server: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    f->failures++;
}

/* Waits up to STEP_MS for `fd` to be readable. */
static int wait_readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, STEP_MS) == 1;
}

/* Reads exactly `n` bytes, each read bounded; 0 on timeout, EOF or error. */
static int read_exact(int fd, uint8_t *buf, size_t n) {
    size_t have = 0;
    while (have < n) {
        if (!wait_readable(fd)) return 0;
        ssize_t got = recv(fd, buf + have, n - have, 0);
        if (got <= 0) return 0;
        have += (size_t)got;
    }
    return 1;
}

/* Reads one liminal frame (header and payload) into `buf`; returns its length, 0 on failure. */
static size_t read_frame(struct fake *f, int fd, uint8_t *buf, size_t cap, const char *what) {
    if (!read_exact(fd, buf, 10)) {
        fake_fail(f, "no %s header within %d ms", what, STEP_MS);
        return 0;
    }
    uint32_t len = ((uint32_t)buf[6] << 24) | ((uint32_t)buf[7] << 16) | ((uint32_t)buf[8] << 8) | buf[9];
    if (len > cap - 10) {
        fake_fail(f, "%s announces %u payload bytes", what, len);
        return 0;
    }
    if (!read_exact(fd, buf + 10, len)) {
        fake_fail(f, "no %s payload (%u bytes) within %d ms", what, len, STEP_MS);
        return 0;
    }
    return 10 + (size_t)len;
}

/* Compares a frame received with the spec of what was expected. */
static int expect_bytes(struct fake *f, const char *what, const uint8_t *got, size_t got_len, const char *want_spec) {
    uint8_t want[2048];
    size_t want_len = spec(want_spec, want, sizeof want);
    if (got_len == want_len && memcmp(got, want, want_len) == 0) return 1;
    fake_fail(f, "the worker's %s differs from the expected bytes", what);
    print_hex("got", got, got_len);
    print_hex("expected", want, want_len);
    return 0;
}

static int send_spec(struct fake *f, int fd, const char *s) {
    uint8_t b[2048];
    size_t n = spec(s, b, sizeof b);
    if (send(fd, b, n, MSG_NOSIGNAL) != (ssize_t)n) {
        fake_fail(f, "send failed");
        return 0;
    }
    return 1;
}

static int wait_go(struct fake *f) {
    uint8_t b;
    if (!wait_readable(f->go[0]) || read(f->go[0], &b, 1) != 1) {
        fake_fail(f, "main did not go on within %d ms", STEP_MS);
        return 0;
    }
    return 1;
}

/* Waits (bounded) for the worker to close its end, reading whatever it still sends. */
static void drain_to_eof(int fd) {
    uint8_t b[256];
    while (wait_readable(fd) && recv(fd, b, sizeof b, 0) > 0) {
    }
}

#define PONG "14 00 00000000 00000000"
#define REPLY "16 00 00000001 0000002c 0000000000000002 00000020'{\"activity\":\"reply-of-from-raw\"}'"
#define REFUSAL "16 01 00000001 00000038 0000000000000003 0000002c'{\"code\":\"busy\",\"words\":\"raw worker is busy\"}'"

static void serve(struct fake *f, int fd) {
    uint8_t buf[2048];
    size_t n = read_frame(f, fd, buf, sizeof buf, "Connect");
    if (!n || !expect_bytes(f, "Connect", buf, n, f->connect)) return;
    if (f->script == SCRIPT_CONNECT_ERROR) {
        send_spec(f, fd, "03 00 00000000 00000021 0006 01 0000001a'revocation_binding_missing'");
        return;
    }
    /* 1.2 (1.3 when the script ends with a DisconnectReason), caps 0 */
    if (!send_spec(f, fd, f->script == SCRIPT_REVOKED ? "02 00 00000000 00000008 0001 0003 00000000"
                                                      : "02 00 00000000 00000008 0001 0002 00000000"))
        return;
    n = read_frame(f, fd, buf, sizeof buf, "WorkerRegister");
    if (!n || !expect_bytes(f, "WorkerRegister", buf, n, f->reg)) return;
    if (f->script == SCRIPT_REJECT) {
        send_spec(f, fd, "18 00 00000000 00000013 01 0000000e'identity taken'");
        drain_to_eof(fd); /* the connection stays open until the worker goes */
        return;
    }
    if (!send_spec(f, fd, "18 00 00000000 00000001 00")) return;
    if (f->script == SCRIPT_REVOKED) {
        if (wait_go(f)) send_spec(f, fd, "20 00 00000000 00000014 01 0001 0000000d'grant_revoked'");
        drain_to_eof(fd);
        return;
    }
    if (!wait_go(f)) return;
    /* A Ping, a push, a frame type the worker does not know (skipped by its length), a second
     * push: all in one write. */
    if (!send_spec(f, fd,
                   "13 00 00000000 00000000"
                   "15 00 00000001 00000023 0000000000000002 00000017'{\"activity\":\"from-raw\"}'"
                   "7f 00 00000005 00000003 010203"
                   "15 00 00000001 00000021 0000000000000003 00000015'{\"activity\":\"second\"}'"))
        return;
    /* The Pong, the reply and the refusal, in whatever order the worker's reads made. */
    int pong = 0, reply = 0, refusal = 0;
    for (int i = 0; i < 3; i++) {
        n = read_frame(f, fd, buf, sizeof buf, "Pong or PushReply");
        if (!n) return;
        if (buf[0] == 0x14) pong += expect_bytes(f, "Pong", buf, n, PONG);
        else if (buf[0] == 0x16 && buf[1] == 0) reply += expect_bytes(f, "PushReply", buf, n, REPLY);
        else if (buf[0] == 0x16) refusal += expect_bytes(f, "PushReply (refusal)", buf, n, REFUSAL);
        else {
            fake_fail(f, "unexpected frame type 0x%02x from the worker", buf[0]);
            print_hex("frame", buf, n);
            return;
        }
    }
    if (pong != 1 || reply != 1 || refusal != 1)
        fake_fail(f, "expected one Pong, one reply, one refusal; got %d, %d, %d", pong, reply, refusal);
    if (!wait_go(f)) return;
    if (!send_spec(f, fd, "04 00 00000000 00000000")) return; /* Disconnect */
    drain_to_eof(fd);
}

static void *fake_main(void *arg) {
    struct fake *f = (struct fake *)arg;
    if (!wait_readable(f->listen_fd)) {
        fake_fail(f, "no connection within %d ms", STEP_MS);
        return NULL;
    }
    int fd = accept(f->listen_fd, NULL, NULL);
    if (fd < 0) {
        fake_fail(f, "accept failed");
        return NULL;
    }
    serve(f, fd);
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, pthread_t *t) {
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (f->listen_fd < 0 || bind(f->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(f->listen_fd, 4) != 0 || getsockname(f->listen_fd, (struct sockaddr *)&addr, &alen) != 0 ||
        pipe(f->go) != 0) {
        perror("fake liminal server setup");
        exit(1);
    }
    f->port = ntohs(addr.sin_port);
    f->failures = 0;
    if (pthread_create(t, NULL, fake_main, f) != 0) {
        perror("pthread_create");
        exit(1);
    }
}

static void fake_go(struct fake *f) {
    uint8_t b = 1;
    CHECK(write(f->go[1], &b, 1) == 1);
}

static void fake_finish(struct fake *f, pthread_t t) {
    pthread_join(t, NULL);
    close(f->listen_fd);
    close(f->go[0]);
    close(f->go[1]);
    check_failures += f->failures;
}

static void endpoint_of(const struct fake *f, char *out, size_t cap) {
    snprintf(out, cap, "liminal+tcp://127.0.0.1:%u", (unsigned)f->port);
}

/* The registration seen live from a C-like worker. */
static rp_push_worker_options *live_options(const struct fake *f) {
    char ep[64];
    endpoint_of(f, ep, sizeof ep);
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "raw-c-like-worker", "raw.echo", &opts));
    CHECK_OK(rp_push_worker_options_add_namespace(opts, "raw"));
    CHECK_OK(rp_push_worker_options_add_activity_type(opts, "raw.echo"));
    return opts;
}

#define CONNECT_EMPTY_TOKEN "01 00 00000000 0000000c 0001 0000 0001 0003 00000000"
#define REGISTER_LIVE                                                                              \
    "17 00 00000000 0000003d 00000001 00000003'raw' 00000008'raw.echo' 00"                         \
    " 00000001 00000008'raw.echo' 00000011'raw-c-like-worker'"

/* ---- the cases ------------------------------------------------------------------------------ */

static int readable_now(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void serves_pushes(void) {
    struct fake f;
    memset(&f, 0, sizeof f);
    f.script = SCRIPT_SERVE;
    /* Versions 1.0-1.3 and the token; the registration with a node and one descriptor tail. */
    f.connect = "01 00 00000000 00000011 0001 0000 0001 0003 00000005'tok3n'";
    f.reg = "17 00 00000000 0000007d 00000001 00000003'raw' 00000008'raw.echo' 01 00000002'n1'"
            " 00000001 00000008'raw.echo' 00000011'raw-c-like-worker'"
            " 00000001 00000008'raw.echo' 00000011'{\"type\":\"object\"}' 00000011'{\"type\":\"string\"}'";
    pthread_t t;
    fake_start(&f, &t);
    rp_push_worker_options *opts = live_options(&f);
    CHECK_OK(rp_push_worker_options_set_node(opts, "n1"));
    CHECK_OK(rp_push_worker_options_set_auth_token(opts, (const uint8_t *)"tok3n", 5));
    CHECK_OK(rp_push_worker_options_add_activity_descriptor(opts, "raw.echo", "{\"type\":\"object\"}",
                                                            "{\"type\":\"string\"}"));
    rp_push_worker *w = NULL;
    CHECK_OK(rp_push_worker_connect(opts, &w));
    if (!w) {
        fake_finish(&f, t);
        return;
    }
    CHECK(rp_push_worker_id(w) == 0);
    int fd = rp_push_worker_fd(w);
    CHECK(fd >= 0);
    CHECK(!readable_now(fd)); /* nothing waits yet */
    fake_go(&f);

    struct pollfd p = {fd, POLLIN, 0};
    CHECK(poll(&p, 1, STEP_MS) == 1 && (p.revents & POLLIN));
    rp_push *first = NULL, *second = NULL;
    CHECK_OK(rp_push_worker_recv(w, 0, &first));
    if (first) {
        static const char want[] = "{\"activity\":\"from-raw\"}";
        rp_bytes b = rp_push_payload(first);
        CHECK(b.len == strlen(want) && memcmp(b.ptr, want, b.len) == 0);
        CHECK(rp_push_correlation_id(first) == 2);
        CHECK(rp_push_payload_protocol(first) == 0);
        CHECK(rp_push_deadline_unix_ms(first) == 0);
        CHECK(rp_push_traceparent(first).len == 0);
        CHECK(rp_push_tracestate(first).len == 0);
        /* The second push came in the same read: it waits, and the descriptor says so. */
        CHECK(readable_now(fd));
        static const char reply[] = "{\"activity\":\"reply-of-from-raw\"}";
        CHECK_OK(rp_push_worker_reply(w, 2, (const uint8_t *)reply, strlen(reply)));
        CHECK_STATUS(rp_push_worker_reply(w, 2, NULL, 0), RP_STATUS_NOT_FOUND); /* answered once */
    }
    CHECK_OK(rp_push_worker_recv(w, STEP_MS, &second));
    if (second) {
        CHECK(rp_push_correlation_id(second) == 3);
        CHECK(!readable_now(fd)); /* drained: quiet */
        char words[1026];
        memset(words, 'w', 1025);
        words[1025] = 0;
        CHECK_STATUS(rp_push_worker_reply_error(w, 3, RP_STATUS_AGAIN, words), RP_STATUS_INVALID_ARGUMENT);
        CHECK_LAST_ERROR_CONTAINS("1024");
        /* The push stays unanswered: the refusal still goes out. */
        CHECK_OK(rp_push_worker_reply_error(w, 3, RP_STATUS_AGAIN, "raw worker is busy"));
    }
    fake_go(&f);
    rp_push *none = NULL;
    CHECK_STATUS(rp_push_worker_recv(w, STEP_MS, &none), RP_STATUS_CLOSED);
    CHECK_LAST_ERROR_CONTAINS("disconnected");
    CHECK(readable_now(fd)); /* readable once the connection ended */
    rp_push_free(first);
    rp_push_free(second);
    rp_push_worker_free(w);
    fake_finish(&f, t);
}

static void connect_error_is_refused(void) {
    struct fake f;
    memset(&f, 0, sizeof f);
    f.script = SCRIPT_CONNECT_ERROR;
    f.connect = CONNECT_EMPTY_TOKEN;
    pthread_t t;
    fake_start(&f, &t);
    rp_push_worker *w = NULL;
    CHECK_STATUS(rp_push_worker_connect(live_options(&f), &w), RP_STATUS_REFUSED);
    CHECK(w == NULL);
    rp_refusal *r = NULL;
    CHECK_OK(rp_last_refusal(&r));
    if (r) {
        rp_str reason = rp_refusal_reason(r);
        char text[512];
        snprintf(text, sizeof text, "%.*s", (int)reason.len, reason.ptr);
        if (!strstr(text, "0x0006") || !strstr(text, "revocation_binding_missing")) {
            fprintf(stderr, "%s:%d: refusal reason \"%s\" lacks the code or the message\n", __FILE__, __LINE__, text);
            check_failures++;
        }
        int found = 0;
        for (size_t i = 0; i < rp_refusal_detail_count(r); i++) {
            rp_str k, v;
            CHECK_OK(rp_refusal_detail(r, i, &k, &v));
            if (k.len == 19 && memcmp(k.ptr, "liminal.reason_code", 19) == 0)
                found = v.len == 1 && v.ptr[0] == '6';
        }
        CHECK(found);
        rp_refusal_free(r);
    }
    rp_push_worker_free(w);
    fake_finish(&f, t);
}

static void rejected_registration(void) {
    struct fake f;
    memset(&f, 0, sizeof f);
    f.script = SCRIPT_REJECT;
    f.connect = CONNECT_EMPTY_TOKEN;
    f.reg = REGISTER_LIVE; /* no descriptors: no tail */
    pthread_t t;
    fake_start(&f, &t);
    rp_push_worker *w = NULL;
    CHECK_STATUS(rp_push_worker_connect(live_options(&f), &w), RP_STATUS_REJECTED);
    CHECK_LAST_ERROR_CONTAINS("identity taken");
    CHECK(w == NULL);
    rp_push_worker_free(w);
    fake_finish(&f, t);
}

static void disconnect_reason_ends_recv(void) {
    struct fake f;
    memset(&f, 0, sizeof f);
    f.script = SCRIPT_REVOKED;
    f.connect = CONNECT_EMPTY_TOKEN;
    f.reg = REGISTER_LIVE;
    pthread_t t;
    fake_start(&f, &t);
    rp_push_worker *w = NULL;
    CHECK_OK(rp_push_worker_connect(live_options(&f), &w));
    if (w) {
        fake_go(&f);
        rp_push *none = NULL;
        CHECK_STATUS(rp_push_worker_recv(w, STEP_MS, &none), RP_STATUS_CLOSED);
        CHECK_LAST_ERROR_CONTAINS("grant_revoked (0x0001)");
        rp_push_worker_free(w);
    }
    fake_finish(&f, t);
}

static void options_the_wire_has_no_room_for(void) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new("liminal+tcp://127.0.0.1:1", "w", "q", &opts));
    CHECK_STATUS(rp_push_worker_options_set_service(opts, "other-service"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("liminal");
    CHECK_STATUS(rp_push_worker_options_add_payload_protocol(opts, 0x7001), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("liminal");
    CHECK_OK(rp_push_worker_options_add_activity_descriptor(opts, "a", "{}", "{}"));
    rp_push_worker_options_free(opts);

    opts = NULL;
    CHECK_OK(rp_push_worker_options_new("tcp://127.0.0.1:1", "w", "q", &opts));
    CHECK_STATUS(rp_push_worker_options_add_activity_descriptor(opts, "a", "{}", "{}"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("liminal");
    CHECK_OK(rp_push_worker_options_set_service(opts, "other-service")); /* still fine there */
    rp_push_worker_options_free(opts);

    /* Identity: up to 992 bytes on a liminal endpoint (256 on a librp one). */
    char identity[994];
    memset(identity, 'i', 993);
    identity[993] = 0;
    opts = NULL;
    CHECK_STATUS(rp_push_worker_options_new("liminal+tcp://127.0.0.1:1", identity, "q", &opts),
                 RP_STATUS_INVALID_ARGUMENT);
    CHECK(opts == NULL);
    identity[992] = 0;
    CHECK_OK(rp_push_worker_options_new("liminal+tcp://127.0.0.1:1", identity, "q", &opts));
    rp_push_worker_options_free(opts);
    opts = NULL;
    CHECK_STATUS(rp_push_worker_options_new("tcp://127.0.0.1:1", identity, "q", &opts), RP_STATUS_INVALID_ARGUMENT);
    rp_push_worker_options_free(opts);

    /* A liminal endpoint is host:port over TCP only. */
    opts = NULL;
    CHECK_STATUS(rp_push_worker_options_new("liminal+tcp://no-port", "w", "q", &opts), RP_STATUS_INVALID_ARGUMENT);
    rp_push_worker_options_free(opts);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    options_the_wire_has_no_room_for();
    serves_pushes();
    connect_error_is_refused();
    rejected_registration();
    disconnect_reason_ends_recv();
    return CHECK_DONE("test_liminal");
}
