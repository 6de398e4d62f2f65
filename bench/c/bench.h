/* Shared helpers of the round-trip benchmarks: a monotonic clock, percentiles, and the one
 * result line every benchmark prints for bench/run.sh to collect. */
#ifndef RP_BENCH_H
#define RP_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MSG 64
#define BENCH_WARMUP 2000

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bench_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of `n` sorted samples. */
static inline double bench_pct_us(const uint64_t *sorted, size_t n, double p) {
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return (double)sorted[rank - 1] / 1000.0;
}

/* Prints "RESULT name=... p50_us=... p99_us=... n=..." and returns 0. */
static inline int bench_report(const char *name, uint64_t *samples, size_t n) {
    qsort(samples, n, sizeof *samples, bench_cmp);
    printf("RESULT name=%s p50_us=%.2f p99_us=%.2f n=%zu\n", name, bench_pct_us(samples, n, 50),
           bench_pct_us(samples, n, 99), n);
    fflush(stdout);
    return 0;
}

static inline size_t bench_iterations(void) {
    const char *s = getenv("RP_BENCH_ITERATIONS");
    size_t n = s ? (size_t)strtoull(s, NULL, 10) : 20000;
    return n ? n : 20000;
}

/* Runs this program again as `argv0 flag arg [arg2]` (arg2 NULL: none) in place of the
 * calling process (the peer of a round trip). The path is read from /proc/self/exe rather than
 * exec'd through it, so that valgrind --trace-children=yes (bench/rtt_instr.sh), which answers
 * that readlink with the program it runs, follows the peer. Returns only if both execs fail. */
static inline void bench_exec_self2(const char *argv0, const char *flag, const char *arg, const char *arg2) {
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        execl(self, argv0, flag, arg, arg2, (char *)NULL);
    }
    execl("/proc/self/exe", argv0, flag, arg, arg2, (char *)NULL);
}

static inline void bench_exec_self(const char *argv0, const char *flag, const char *arg) {
    bench_exec_self2(argv0, flag, arg, NULL);
}

/* Round trips run before the timed ones: RP_BENCH_WARMUP, default BENCH_WARMUP. Untimed, so
 * bench/rtt_instr.sh varies it to count instructions per round trip without the sort. */
static inline size_t bench_warmup(void) {
    const char *s = getenv("RP_BENCH_WARMUP");
    return s ? (size_t)strtoull(s, NULL, 10) : BENCH_WARMUP;
}

#endif
