/* Baseline: 64-byte ping-pong between two processes over a Unix socket pair, one write per
 * message, reads buffered (the echo side parses whole messages out of large reads). */
#include "bench.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_exact(int fd, uint8_t *p, size_t n) {
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void echo(int fd) {
    uint8_t buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - have);
        if (r <= 0) return;
        have += (size_t)r;
        size_t whole = have - have % BENCH_MSG;
        if (whole && write_all(fd, buf, whole) != 0) return;
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
}

int main(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        echo(sv[1]);
        _exit(0);
    }
    close(sv[1]);
    size_t n = bench_iterations();
    size_t warmup = bench_warmup();
    uint64_t *samples = malloc(n * sizeof *samples);
    uint8_t msg[BENCH_MSG], back[BENCH_MSG];
    memset(msg, 'x', sizeof msg);
    for (size_t i = 0; i < warmup + n; i++) {
        uint64_t t0 = bench_now_ns();
        if (write_all(sv[0], msg, sizeof msg) || read_exact(sv[0], back, sizeof back)) return 1;
        if (i >= warmup) samples[i - warmup] = bench_now_ns() - t0;
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    return bench_report("raw_uds_pingpong", samples, n);
}
