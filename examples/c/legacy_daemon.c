/* legacy_daemon: a daemon with its own ("legacy") wire that also joins a running-process
 * broker on the same Unix socket endpoint, through rp_mux_poll.
 *
 * One epoll loop, one endpoint. Per connection the daemon buffers what it reads and asks
 * rp_mux_poll what the bytes are:
 *   - its own toy legacy wire: 'L', a length byte, that many bytes -> echoed back as is;
 *   - a v1 consumer frame on protocol 0x7001 -> answered with a RESPONSE echoing the payload;
 *   - a broker identity probe (0xB232) -> the reply librp built is written back.
 *
 * Usage:
 *   legacy_daemon SOCKET_PATH               serve until killed
 *   legacy_daemon --self-test [SOCKET_PATH] serve, and from a child process talk to it with a
 *                                           legacy client and a v1 client at once (plus a probe);
 *                                           exit 0 when every answer was right
 *   legacy_daemon --clients SOCKET_PATH     only the clients of --self-test, against a daemon
 *                                           already serving SOCKET_PATH
 *   legacy_daemon --pipelined-test [N M]    serve, and from a child process open N connections
 *                                           (default 50) that each send M identity probes
 *                                           (default 400) at once before reading any answer;
 *                                           exit 0 when all N x M answers arrived
 *
 * Writing never blocks the loop and never drops a connection because its peer reads slowly:
 * what a send() could not take (EAGAIN) is queued on the connection, the loop waits for
 * EPOLLOUT, and while more than OUT_HIGH_WATER bytes wait the connection's input is left
 * unread (so a client that sends without reading costs a bounded amount of memory).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rp.h"

#define LEGACY_MAGIC 'L'
#define DEMO_PROTOCOL 0x7001u
#define MAX_CONNS 64
#define OUT_HIGH_WATER (256 * 1024) /* stop reading a connection while this much waits */

typedef struct conn {
    int fd, slot;
    unsigned char *buf; /* bytes read, not yet handled */
    size_t len, cap;
    unsigned char *out; /* bytes to write: out[out_pos..out_len] */
    size_t out_pos, out_len, out_cap;
    uint32_t events; /* what the connection is registered for */
    int eof;         /* the peer shut its side: answer what was read, then close */
} conn;

static conn conns[MAX_CONNS];

static void die(const char *what) {
    char msg[256];
    rp_last_error_message(msg, sizeof msg);
    fprintf(stderr, "legacy_daemon: %s (%s; %s)\n", what, strerror(errno), msg);
    exit(1);
}

/* The daemon's own detector: its messages start with the magic byte. */
static int32_t detect_legacy(void *user_data, const uint8_t *buf, size_t len) {
    (void)user_data;
    (void)len;
    return buf[0] == LEGACY_MAGIC ? RP_LEGACY_VERDICT_LEGACY : RP_LEGACY_VERDICT_NOT_LEGACY;
}

/* Blocking write, for the test clients. */
static int write_all(int fd, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes what the socket takes now; returns -1 on a real error (EAGAIN is not one). */
static int flush_out(conn *c) {
    while (c->out_pos < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n <= 0) return -1;
        c->out_pos += (size_t)n;
    }
    c->out_pos = c->out_len = 0;
    return 0;
}

/* Sends `data` in order after what is already queued; what the socket does not take now is
 * queued for EPOLLOUT. Returns -1 on a real error or when out of memory. */
static int send_or_queue(conn *c, const void *data, size_t len) {
    const unsigned char *p = (const unsigned char *)data;
    while (c->out_pos == c->out_len && len > 0) { /* nothing queued: try the socket first */
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    if (len == 0) return 0;
    if (c->out_pos > 0) { /* reuse the space already written */
        memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
        c->out_len -= c->out_pos;
        c->out_pos = 0;
    }
    if (c->out_cap - c->out_len < len) {
        size_t cap = c->out_cap ? c->out_cap : 8192;
        while (cap - c->out_len < len) cap *= 2;
        unsigned char *grown = (unsigned char *)realloc(c->out, cap);
        if (!grown) return -1;
        c->out = grown;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, len);
    c->out_len += len;
    return 0;
}

static size_t queued(const conn *c) { return c->out_len - c->out_pos; }

/* Registers for EPOLLOUT while output waits, and for EPOLLIN unless too much waits. */
static void update_interest(int epfd, conn *c) {
    uint32_t want = (queued(c) > 0 ? EPOLLOUT : 0) | (!c->eof && queued(c) < OUT_HIGH_WATER ? EPOLLIN : 0);
    if (want == c->events) return;
    struct epoll_event ev = {.events = want, .data.fd = c->slot};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = want;
}

static void close_conn(int epfd, conn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* Handles every complete unit buffered on `c` (until too much output waits); returns -1 to
 * close the connection. */
static int handle_buffered(const rp_mux *mux, conn *c) {
    while (queued(c) < OUT_HIGH_WATER) {
        rp_mux_event ev;
        rp_status st = rp_mux_poll(mux, c->buf, c->len, &ev);
        if (st != RP_STATUS_OK) {
            char msg[256];
            rp_last_error_message(msg, sizeof msg);
            fprintf(stderr, "legacy_daemon: closing connection: %s: %s\n", rp_status_str(st), msg);
            return -1;
        }
        size_t consumed = 0;
        switch (ev.kind) {
        case RP_MUX_EVENT_KIND_NEED_MORE_BYTES:
            return 0;
        case RP_MUX_EVENT_KIND_LEGACY: {
            if (c->buf[0] != LEGACY_MAGIC) return -1; /* not our wire either */
            if (c->len < 2 || c->len < 2u + c->buf[1]) return 0;
            consumed = 2u + c->buf[1];
            if (send_or_queue(c, c->buf, consumed) != 0) return -1;
            break;
        }
        case RP_MUX_EVENT_KIND_PROBE_ANSWERED:
            if (send_or_queue(c, ev.reply.ptr, ev.reply.len) != 0) return -1;
            consumed = ev.consumed;
            break;
        case RP_MUX_EVENT_KIND_PAYLOAD: {
            rp_msg *reply = NULL;
            if (rp_frame_encode_response_msg(&ev.frame, ev.frame.payload.ptr, ev.frame.payload.len,
                                             &reply) != RP_STATUS_OK)
                return -1;
            int rc = send_or_queue(c, rp_msg_data(reply), rp_msg_len(reply));
            rp_msg_free(reply);
            if (rc != 0) return -1;
            consumed = ev.consumed;
            break;
        }
        default:
            return -1;
        }
        memmove(c->buf, c->buf + consumed, c->len - consumed);
        c->len -= consumed;
    }
    return 0;
}

static int listen_on(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(fd, 16) != 0) die("listen");
    return fd;
}

/* Runs the epoll loop; returns when `child` (if > 0) has exited, with its exit status. */
static int serve(const rp_mux *mux, int lfd, pid_t child) {
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
    for (;;) {
        if (child > 0) {
            int status;
            if (waitpid(child, &status, WNOHANG) == child) {
                for (int i = 0; i < MAX_CONNS; i++)
                    if (conns[i].fd >= 0) close_conn(epfd, &conns[i]);
                close(epfd);
                return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            }
        }
        struct epoll_event events[16];
        int n = epoll_wait(epfd, events, 16, 50);
        for (int i = 0; i < n; i++) {
            if (events[i].data.fd == -1) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                int slot = 0;
                while (slot < MAX_CONNS && conns[slot].fd >= 0) slot++;
                if (cfd < 0) continue;
                if (slot == MAX_CONNS) {
                    close(cfd);
                    continue;
                }
                conns[slot].fd = cfd;
                conns[slot].slot = slot;
                conns[slot].events = EPOLLIN;
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = slot};
                epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
                continue;
            }
            conn *c = &conns[events[i].data.fd];
            if (c->fd < 0) continue;
            int failed = 0;
            if ((events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && queued(c) > 0) {
                /* The peer read some: write what waits, then handle input held back meanwhile. */
                failed = flush_out(c) != 0 || handle_buffered(mux, c) != 0;
            }
            if (!failed && !c->eof && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
                queued(c) < OUT_HIGH_WATER) {
                for (;;) {
                    if (c->cap - c->len < 4096) {
                        size_t cap = c->cap ? c->cap * 2 : 8192;
                        unsigned char *grown = (unsigned char *)realloc(c->buf, cap);
                        if (!grown) {
                            failed = 1;
                            break;
                        }
                        c->buf = grown;
                        c->cap = cap;
                    }
                    ssize_t got = read(c->fd, c->buf + c->len, c->cap - c->len);
                    if (got > 0) {
                        c->len += (size_t)got;
                        if (c->len >= OUT_HIGH_WATER) break; /* handle before reading more */
                        continue;
                    }
                    if (got < 0 && errno == EINTR) continue;
                    if (got == 0) c->eof = 1; /* answer what was read first */
                    else if (errno != EAGAIN) failed = 1;
                    break;
                }
                if (!failed) failed = handle_buffered(mux, c) != 0;
            }
            if (failed || (c->eof && queued(c) == 0))
                close_conn(epfd, c);
            else
                update_interest(epfd, c);
        }
    }
}

/* ---- self test: a legacy client, a v1 client and a prober, all connected at once ---- */

static int connect_to(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return -1;
    return fd;
}

static int read_exact(int fd, unsigned char *buf, size_t len) {
    size_t have = 0;
    while (have < len) {
        ssize_t n = read(fd, buf + have, len - have);
        if (n <= 0) return -1;
        have += (size_t)n;
    }
    return 0;
}

/* Reads one v1 frame into `buf` and decodes it. */
static int read_frame(int fd, unsigned char *buf, size_t cap, rp_frame_view *out) {
    if (read_exact(fd, buf, RP_FRAME_HEADER_LEN) != 0) return -1;
    size_t body = (size_t)buf[1] | (size_t)buf[2] << 8 | (size_t)buf[3] << 16 | (size_t)buf[4] << 24;
    if (RP_FRAME_HEADER_LEN + body > cap) return -1;
    if (read_exact(fd, buf + RP_FRAME_HEADER_LEN, body) != 0) return -1;
    size_t used;
    return rp_frame_decode(buf, RP_FRAME_HEADER_LEN + body, 0, out, &used) == RP_STATUS_OK ? 0 : -1;
}

static int self_test_client(const char *path) {
    int legacy = connect_to(path), v1 = connect_to(path), prober = connect_to(path);
    if (legacy < 0 || v1 < 0 || prober < 0) return 10;
    unsigned char buf[1024];
    rp_frame_view frame;
    size_t len;

    /* Interleave: half a legacy message, a whole v1 request, then the rest of the legacy one. */
    const unsigned char legacy_msg[] = {LEGACY_MAGIC, 5, 'h', 'e', 'l', 'l', 'o'};
    write_all(legacy, legacy_msg, 3);
    if (rp_frame_view_init(&frame) != RP_STATUS_OK) return 11;
    frame.payload_protocol = DEMO_PROTOCOL;
    frame.request_id = 42;
    frame.payload.ptr = (const uint8_t *)"ping";
    frame.payload.len = 4;
    if (rp_frame_encode(&frame, buf, sizeof buf, &len) != RP_STATUS_OK) return 12;
    write_all(v1, buf, len);
    write_all(legacy, legacy_msg + 3, sizeof legacy_msg - 3);

    unsigned char echo[sizeof legacy_msg];
    if (read_exact(legacy, echo, sizeof echo) != 0 || memcmp(echo, legacy_msg, sizeof echo) != 0)
        return 13;
    if (read_frame(v1, buf, sizeof buf, &frame) != 0) return 14;
    if (frame.kind != RP_FRAME_KIND_RESPONSE || frame.request_id != 42 ||
        frame.payload.len != 4 || memcmp(frame.payload.ptr, "ping", 4) != 0)
        return 15;
    printf("legacy client: echo ok; v1 client: response ok\n");

    /* An identity probe: 32-byte nonce, answered with this daemon's identity. */
    unsigned char nonce[32];
    for (int i = 0; i < 32; i++) nonce[i] = (unsigned char)(i * 7);
    rp_frame_view probe;
    if (rp_frame_view_init(&probe) != RP_STATUS_OK) return 16;
    probe.payload_protocol = RP_PROTOCOL_IDENTITY_PROBE;
    probe.request_id = 7;
    probe.payload.ptr = nonce;
    probe.payload.len = sizeof nonce;
    if (rp_frame_encode(&probe, buf, sizeof buf, &len) != RP_STATUS_OK) return 17;
    write_all(prober, buf, len);
    if (read_frame(prober, buf, sizeof buf, &frame) != 0) return 18;
    if (frame.kind != RP_FRAME_KIND_RESPONSE || frame.request_id != 7 ||
        frame.payload.len <= 32 || memcmp(frame.payload.ptr, nonce, 32) != 0)
        return 19;
    printf("prober: identity reply ok (%zu bytes of identity)\n", frame.payload.len - 32);
    close(legacy);
    close(v1);
    close(prober);
    return 0;
}

/* ---- pipelined test: many connections, each sending all its probes before reading ---- */

static int pipelined_clients(const char *path, int nconns, int nprobes) {
    int *fds = (int *)calloc((size_t)nconns, sizeof(int));
    unsigned char *out = (unsigned char *)malloc((size_t)nprobes * 64);
    unsigned char buf[4096];
    if (!fds || !out) return 20;
    for (int k = 0; k < nconns; k++) {
        if ((fds[k] = connect_to(path)) < 0) return 21;
        size_t used = 0;
        for (int i = 0; i < nprobes; i++) {
            unsigned char nonce[32];
            for (int b = 0; b < 32; b++) nonce[b] = (unsigned char)(k + i + b);
            rp_frame_view probe;
            size_t len;
            if (rp_frame_view_init(&probe) != RP_STATUS_OK) return 22;
            probe.payload_protocol = RP_PROTOCOL_IDENTITY_PROBE;
            probe.request_id = (uint64_t)i + 1;
            probe.payload.ptr = nonce;
            probe.payload.len = sizeof nonce;
            if (rp_frame_encode(&probe, out + used, 64, &len) != RP_STATUS_OK) return 23;
            used += len;
        }
        if (write_all(fds[k], out, used) != 0) return 24;
    }
    /* Only now read: the daemon has had to queue what the sockets would not take. */
    long answers = 0;
    for (int k = 0; k < nconns; k++) {
        for (int i = 0; i < nprobes; i++) {
            rp_frame_view frame;
            if (read_frame(fds[k], buf, sizeof buf, &frame) != 0) break;
            if (frame.kind != RP_FRAME_KIND_RESPONSE || frame.request_id != (uint64_t)i + 1 ||
                frame.payload.len <= 32 || frame.payload.ptr[0] != (unsigned char)(k + i))
                break;
            answers++;
        }
        close(fds[k]);
    }
    free(fds);
    free(out);
    printf("pipelined clients: %ld of %ld answers\n", answers, (long)nconns * nprobes);
    return answers == (long)nconns * nprobes ? 0 : 25;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--clients") == 0) return self_test_client(argv[2]);
    int pipelined = argc > 1 && strcmp(argv[1], "--pipelined-test") == 0;
    int nconns = 50, nprobes = 400;
    if (pipelined && argc == 4) {
        nconns = atoi(argv[2]);
        nprobes = atoi(argv[3]);
        if (nconns < 1 || nconns > MAX_CONNS - 1 || nprobes < 1 || nprobes > 100000) {
            fprintf(stderr, "legacy_daemon: --pipelined-test N M: 1 <= N < %d, 1 <= M <= 100000\n", MAX_CONNS);
            return 2;
        }
    }
    int self_test = pipelined || (argc > 1 && strcmp(argv[1], "--self-test") == 0);
    const char *path = !pipelined && argc > 1 + self_test ? argv[1 + self_test] : NULL;
    char default_path[108];
    if (!path) {
        if (!self_test) {
            fprintf(stderr,
                    "usage: %s SOCKET_PATH | --self-test [SOCKET_PATH] | --clients SOCKET_PATH | "
                    "--pipelined-test [N M]\n",
                    argv[0]);
            return 2;
        }
        snprintf(default_path, sizeof default_path, "/tmp/rp-legacy-daemon-%d.sock", (int)getpid());
        path = default_path;
    }

    rp_daemon_identity *identity = NULL;
    if (rp_daemon_identity_new_current("legacy-demo", path, 0, &identity) != RP_STATUS_OK)
        die("identity");
    const uint32_t served[] = {DEMO_PROTOCOL};
    const rp_mux *mux = NULL;
    if (rp_mux_new(identity, served, 1, detect_legacy, NULL, NULL, &mux) != RP_STATUS_OK)
        die("mux");
    rp_daemon_identity_free(identity);

    int lfd = listen_on(path);
    pid_t child = 0;
    if (self_test) {
        child = fork();
        if (child == 0) {
            close(lfd);
            int child_rc = pipelined ? pipelined_clients(path, nconns, nprobes) : self_test_client(path);
            fflush(stdout);
            _exit(child_rc);
        }
    }
    int rc = serve(mux, lfd, child);
    close(lfd);
    unlink(path);
    rp_mux_free(mux);
    if (self_test) printf("legacy_daemon self-test: %s (%d)\n", rc == 0 ? "ok" : "FAILED", rc);
    return rc;
}
