/* Baseline: nng REQ/REP round trip of 64 bytes over ipc://, two processes. */
#include "bench.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    char dir[] = "/tmp/rp-bench-nng-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256];
    snprintf(ep, sizeof ep, "ipc://%s/nng.sock", dir);
    size_t n = bench_iterations();
    size_t warmup = bench_warmup();
    pid_t pid = fork();
    if (pid == 0) {
        nng_socket rep;
        if (nng_rep0_open(&rep) != 0 || nng_listen(rep, ep, NULL, 0) != 0) _exit(1);
        for (size_t i = 0; i < warmup + n; i++) {
            char *buf = NULL;
            size_t len = 0;
            if (nng_recv(rep, &buf, &len, NNG_FLAG_ALLOC) != 0) _exit(1);
            if (nng_send(rep, buf, len, NNG_FLAG_ALLOC) != 0) _exit(1);
        }
        nng_msleep(100);
        nng_close(rep);
        _exit(0);
    }
    nng_socket req;
    if (nng_req0_open(&req) != 0) return 1;
    int rv;
    for (int tries = 0; (rv = nng_dial(req, ep, NULL, 0)) != 0 && tries < 200; tries++) nng_msleep(10);
    if (rv != 0) return 1;
    uint64_t *samples = malloc(n * sizeof *samples);
    uint8_t msg[BENCH_MSG];
    memset(msg, 'x', sizeof msg);
    for (size_t i = 0; i < warmup + n; i++) {
        uint64_t t0 = bench_now_ns();
        char *back = NULL;
        size_t len = 0;
        if (nng_send(req, msg, sizeof msg, 0) != 0 || nng_recv(req, &back, &len, NNG_FLAG_ALLOC) != 0) return 1;
        nng_free(back, len);
        if (i >= warmup) samples[i - warmup] = bench_now_ns() - t0;
    }
    waitpid(pid, NULL, 0);
    nng_close(req);
    rmdir(dir);
    return bench_report("nng_reqrep", samples, n);
}
