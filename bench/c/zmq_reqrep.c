/* Baseline: ZeroMQ REQ/REP round trip of 64 bytes over ipc://, two processes. */
#include "bench.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

int main(void) {
    char dir[] = "/tmp/rp-bench-zmq-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256];
    snprintf(ep, sizeof ep, "ipc://%s/zmq.sock", dir);
    size_t n = bench_iterations();
    size_t warmup = bench_warmup();
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx = zmq_ctx_new();
        void *rep = zmq_socket(ctx, ZMQ_REP);
        if (zmq_bind(rep, ep) != 0) _exit(1);
        uint8_t buf[BENCH_MSG];
        for (size_t i = 0; i < warmup + n; i++) {
            int r = zmq_recv(rep, buf, sizeof buf, 0);
            if (r < 0 || zmq_send(rep, buf, (size_t)r, 0) < 0) _exit(1);
        }
        zmq_close(rep);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    if (zmq_connect(req, ep) != 0) return 1;
    uint64_t *samples = malloc(n * sizeof *samples);
    uint8_t msg[BENCH_MSG], back[BENCH_MSG];
    memset(msg, 'x', sizeof msg);
    for (size_t i = 0; i < warmup + n; i++) {
        uint64_t t0 = bench_now_ns();
        if (zmq_send(req, msg, sizeof msg, 0) < 0 || zmq_recv(req, back, sizeof back, 0) < 0) return 1;
        if (i >= warmup) samples[i - warmup] = bench_now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    zmq_close(req);
    zmq_ctx_term(ctx);
    char path[256];
    snprintf(path, sizeof path, "%s/zmq.sock", dir);
    unlink(path);
    rmdir(dir);
    return bench_report("zmq_reqrep", samples, n);
}
