/* Scale: one push server (this process) with N registered workers (a child process, all
 * driven by one poll(2) loop over the clients' pollable descriptors). Measures the server's
 * resident memory per idle worker connection, and the time for one fan-out round (a 64-byte
 * push to every worker, every reply collected), for each N given.
 *
 *   push_scale [N ...]            default: 1 10 100 1000
 * prints "RESULT name=push_scale_N workers=N rss_kib_per_worker=... fanout_ms=..." lines. */
#include "bench.h"

#include <poll.h>
#include <rp.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

static void raise_fd_limit(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < 8192) {
        r.rlim_cur = r.rlim_max < 8192 ? r.rlim_max : 8192;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

/* The child: N workers answering every push with its payload, until the server goes away. */
static int workers(const char *ep, int n) {
    rp_push_worker **clients = calloc((size_t)n, sizeof *clients);
    struct pollfd *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++) {
        rp_push_worker_options *opts = NULL;
        if (rp_push_worker_options_new(ep, "scale-worker", "scale", &opts) != RP_STATUS_OK) return 1;
        if (rp_push_worker_options_add_payload_protocol(opts, 0x7001) != RP_STATUS_OK) return 1;
        if (rp_push_worker_connect(opts, &clients[i]) != RP_STATUS_OK) return 2;
        fds[i].fd = rp_push_worker_fd(clients[i]);
        fds[i].events = POLLIN;
    }
    int open = n;
    while (open > 0) {
        if (poll(fds, (nfds_t)n, -1) < 0) continue;
        for (int i = 0; i < n; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & POLLIN)) continue;
            rp_push *push = NULL;
            rp_status st;
            while ((st = rp_push_worker_recv(clients[i], 0, &push)) == RP_STATUS_OK) {
                rp_bytes p = rp_push_payload(push);
                if (rp_push_worker_reply(clients[i], rp_push_correlation_id(push), p.ptr, p.len) != RP_STATUS_OK)
                    fprintf(stderr, "reply failed\n");
                rp_push_free(push);
            }
            if (st == RP_STATUS_CLOSED) {
                fds[i].fd = -1;
                open--;
            }
        }
    }
    for (int i = 0; i < n; i++) rp_push_worker_free(clients[i]);
    return 0;
}

static int run(int n) {
    char dir[] = "/tmp/rp-scale-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256];
    snprintf(ep, sizeof ep, "%s/push.sock", dir);
    rp_push_server_options *opts = NULL;
    rp_push_server *server = NULL;
    if (rp_push_server_options_new(ep, &opts) != RP_STATUS_OK) return 1;
    if (rp_push_server_bind(opts, &server) != RP_STATUS_OK) return 1;
    long before = rss_kib();
    pid_t pid = fork();
    if (pid == 0) _exit(workers(ep, n));
    size_t registered = 0;
    for (int i = 0; i < 6000 && registered < (size_t)n; i++) {
        rp_push_worker_list *list = NULL;
        if (rp_push_server_workers(server, &list) == RP_STATUS_OK) registered = rp_push_worker_list_len(list);
        rp_push_worker_list_free(list);
        if (registered < (size_t)n) usleep(10000);
    }
    if (registered < (size_t)n) {
        fprintf(stderr, "only %zu of %d workers registered\n", registered, n);
        return 1;
    }
    long idle = rss_kib();
    rp_push_worker_list *list = NULL;
    if (rp_push_server_workers(server, &list) != RP_STATUS_OK) return 1;
    uint64_t *ids = calloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = rp_push_worker_info_id(rp_push_worker_list_get(list, (size_t)i));
    rp_push_worker_list_free(list);
    rp_push_ticket **tickets = calloc((size_t)n, sizeof *tickets);
    uint8_t payload[BENCH_MSG];
    memset(payload, 'x', sizeof payload);
    enum { ROUNDS = 5 };
    uint64_t best = UINT64_MAX;
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < n; i++) {
            rp_push_request *req = NULL;
            if (rp_push_request_new(0x7001, payload, sizeof payload, &req) != RP_STATUS_OK) return 1;
            if (rp_push_request_to_worker(req, ids[i]) != RP_STATUS_OK) return 1;
            if (rp_push_server_push(server, req, &tickets[i]) != RP_STATUS_OK) return 1;
            rp_push_request_free(req);
        }
        for (int i = 0; i < n; i++) {
            rp_push_result *res = NULL;
            if (rp_push_ticket_wait(tickets[i], 30000, &res) != RP_STATUS_OK) {
                fprintf(stderr, "push to worker %d failed\n", i);
                return 1;
            }
            rp_push_result_free(res);
            rp_push_ticket_free(tickets[i]);
        }
        uint64_t took = bench_now_ns() - t0;
        if (took < best) best = took;
    }
    rp_push_server_free(server); /* the workers see CLOSED and exit */
    int status = 0;
    waitpid(pid, &status, 0);
    rmdir(dir);
    printf("RESULT name=push_scale_%d workers=%d rss_kib_per_worker=%.1f fanout_ms=%.2f\n", n, n,
           (double)(idle - before) / (double)n, (double)best / 1e6);
    fflush(stdout);
    free(ids);
    free(tickets);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    raise_fd_limit();
    int defaults[] = {1, 10, 100, 1000};
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (run(atoi(argv[i])) != 0) return 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (run(defaults[i]) != 0) return 1;
    return 0;
}
