/* One-way stream of 64-byte messages over one connection, two processes: librp (rp_conn_send
 * of v1 frames, one call per frame, or rp_conn_send_many of 64; the receiver reads with
 * rp_conn_recv, or takes batches of views with rp_conn_recv_views), a raw Unix socket
 * (one write per message, or 64 KiB writes of 1,024 messages each: the limit of the socket;
 * the reader reads in large chunks), and ZeroMQ PUSH/PULL over ipc://.
 * Prints "RESULT name=stream_X msgs_per_sec=..." lines. */
#include "bench.h"

#include <rp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

static size_t count(void) {
    const char *s = getenv("RP_BENCH_STREAM_MESSAGES");
    return s ? (size_t)strtoull(s, NULL, 10) : 1000000;
}

static void report(const char *name, size_t n, uint64_t ns) {
    printf("RESULT name=%s msgs_per_sec=%.0f n=%zu\n", name, (double)n * 1e9 / (double)ns, n);
    fflush(stdout);
}

/* batch: frames per send call (1 = rp_conn_send, else rp_conn_send_many); views: the receiver
 * takes every frame already received in one rp_conn_recv_views call instead of one
 * rp_conn_recv (an owned copy) per frame. */
static int librp_stream(size_t n, size_t batch, int views) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        rp_conn *conn = NULL;
        if (rp_conn_adopt_fd(sv[1], &conn) != RP_STATUS_OK) _exit(1);
        if (views) {
            rp_frame_view got[1024];
            uint64_t bytes = 0;
            for (size_t i = 0; i < n;) {
                size_t k = 0;
                if (rp_conn_recv_views(conn, 10000, got, 1024, &k) != RP_STATUS_OK) _exit(2);
                for (size_t j = 0; j < k; j++) bytes += got[j].payload.len;
                i += k;
            }
            if (bytes != (uint64_t)n * BENCH_MSG) _exit(3);
        } else {
            for (size_t i = 0; i < n; i++) {
                rp_frame *f = NULL;
                if (rp_conn_recv(conn, 10000, &f) != RP_STATUS_OK) _exit(2);
                rp_frame_free(f);
            }
        }
        rp_conn_free(conn);
        _exit(0);
    }
    close(sv[1]);
    rp_conn *conn = NULL;
    if (rp_conn_adopt_fd(sv[0], &conn) != RP_STATUS_OK) return 1;
    uint8_t payload[BENCH_MSG];
    memset(payload, 'x', sizeof payload);
    rp_frame_view frames[64];
    for (size_t k = 0; k < 64; k++) {
        if (rp_frame_view_init(&frames[k]) != RP_STATUS_OK) return 1;
        frames[k].kind = RP_FRAME_KIND_EVENT;
        frames[k].payload_protocol = 0x7001;
        frames[k].payload.ptr = payload;
        frames[k].payload.len = sizeof payload;
    }
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        for (size_t j = 0; j < k; j++) frames[j].request_id = i + j + 1;
        rp_status st = k == 1 ? rp_conn_send(conn, &frames[0]) : rp_conn_send_many(conn, frames, k);
        if (st != RP_STATUS_OK) return 1;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    report(views ? "stream_librp_send_many64_recv_views" : batch == 1 ? "stream_librp_conn" : "stream_librp_conn_send_many64", n,
           bench_now_ns() - t0);
    rp_conn_free(conn);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

/* batched: the sender writes 64 KiB at a time (1,024 messages) instead of one message per
 * write. */
static int raw_stream(size_t n, int batched) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        uint8_t buf[65536];
        size_t got = 0;
        while (got < n * BENCH_MSG) {
            ssize_t r = read(sv[1], buf, sizeof buf);
            if (r <= 0) _exit(1);
            got += (size_t)r;
        }
        _exit(0);
    }
    close(sv[1]);
    static uint8_t msgs[65536];
    memset(msgs, 'x', sizeof msgs);
    size_t per_write = batched ? sizeof msgs / BENCH_MSG : 1;
    for (size_t i = 0; i < n; i += per_write) {
        size_t len = (n - i < per_write ? n - i : per_write) * BENCH_MSG;
        for (size_t off = 0; off < len;) {
            ssize_t w = send(sv[0], msgs + off, len - off, MSG_NOSIGNAL);
            if (w <= 0) return 1;
            off += (size_t)w;
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    report(batched ? "stream_raw_uds_batched" : "stream_raw_uds", n, bench_now_ns() - t0);
    close(sv[0]);
    return 0;
}

static int zmq_stream(size_t n) {
    char dir[] = "/tmp/rp-bench-zs-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256];
    snprintf(ep, sizeof ep, "ipc://%s/s.sock", dir);
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx = zmq_ctx_new();
        void *pull = zmq_socket(ctx, ZMQ_PULL);
        if (zmq_bind(pull, ep) != 0) _exit(1);
        uint8_t buf[BENCH_MSG];
        for (size_t i = 0; i < n; i++)
            if (zmq_recv(pull, buf, sizeof buf, 0) < 0) _exit(2);
        zmq_close(pull);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    if (zmq_connect(push, ep) != 0) return 1;
    uint8_t msg[BENCH_MSG];
    memset(msg, 'x', sizeof msg);
    for (size_t i = 0; i < n; i++)
        if (zmq_send(push, msg, sizeof msg, 0) < 0) return 1;
    int status = 0;
    waitpid(pid, &status, 0);
    report("stream_zmq_push_pull", n, bench_now_ns() - t0);
    zmq_close(push);
    zmq_ctx_term(ctx);
    char path[256];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

int main(void) {
    size_t n = count();
    if (raw_stream(n, 0) || raw_stream(n, 1) || librp_stream(n, 1, 0) || librp_stream(n, 64, 0) || librp_stream(n, 64, 1) || zmq_stream(n)) return 1;
    return 0;
}
