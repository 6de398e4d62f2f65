/* Scale: one push server (this process) with N registered workers (in child processes of at
 * most WORKERS_PER_CHILD workers each, every child driving its workers from one poll(2) loop
 * over their pollable descriptors). Measures the server's resident memory per idle worker
 * connection (its RSS after all N registered minus its RSS before, over N; each N runs in a
 * fresh process), and the time of one fan-out round (a 64-byte push to every worker, every
 * reply collected; best and median of ROUNDS rounds), for each N given.
 *
 *   push_scale [N ...]            default: 1 10 100 1000 10000
 * prints "RESULT name=push_scale_N workers=N rss_kib_per_worker=... fanout_ms=...
 * fanout_median_ms=... register_ms=... server_fds=... children=..." lines (fanout_ms is the
 * best round).
 *
 * Descriptors: a connected worker holds 6 (measured by lowering the limit: its socket and
 * duplicates of it, a readiness epoll set, a signal socket pair), so a child of 2,500 workers
 * about 15,000; the server holds one per connection. The soft RLIMIT_NOFILE is raised to the
 * hard limit in the parent and in every child, and the workers are spread over children. The push
 * server accepts at most 4096 connections, 2048 from one uid, by default; all the workers run
 * as this uid, so for N above 2048 both limits are raised with
 * rp_push_server_options_set_max_connections (the RESULT line says so: max_connections=...).
 *
 * RP_BENCH_TRANSPORT=tcp runs the same over loopback TCP, RP_BENCH_TRANSPORT=tls over loopback
 * TLS with the certificates in RP_BENCH_CERTS (server.pem, server.key, ca.pem; tests/tls_certs.sh
 * makes them); the RESULT names then end in _tcp / _tls. */
#include "bench.h"

#include <dirent.h>
#include <poll.h>
#include <rp.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { WORKERS_PER_CHILD = 2500, ROUNDS = 5 };

/* The transport (RP_BENCH_TRANSPORT: unix, tcp or tls) and, for tls, the certificate folder. */
static const char *transport(void) {
    const char *t = getenv("RP_BENCH_TRANSPORT");
    return t && *t ? t : "unix";
}

static int is_tls(void) { return strcmp(transport(), "tls") == 0; }

static void cert_path(char *out, size_t cap, const char *name) {
    const char *dir = getenv("RP_BENCH_CERTS");
    snprintf(out, cap, "%s/%s", dir ? dir : ".", name);
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* Open descriptors of this process (entries of /proc/self/fd, less the directory's own). */
static long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    long count = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') count++;
    closedir(d);
    return count - 1;
}

/* Raises the soft descriptor limit to the hard limit; returns the soft limit now in force. */
static long raise_fd_limit(void) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
    if (r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0) getrlimit(RLIMIT_NOFILE, &r);
    }
    return (long)r.rlim_cur;
}

/* A child: n workers answering every push with its payload, until the server goes away. */
static int workers(const char *ep, int n) {
    raise_fd_limit();
    rp_push_worker **clients = calloc((size_t)n, sizeof *clients);
    struct pollfd *fds = calloc((size_t)n, sizeof *fds);
    if (!clients || !fds) return 1;
    for (int i = 0; i < n; i++) {
        rp_push_worker_options *opts = NULL;
        if (rp_push_worker_options_new(ep, "scale-worker", "scale", &opts) != RP_STATUS_OK) return 1;
        if (rp_push_worker_options_add_payload_protocol(opts, 0x7001) != RP_STATUS_OK) return 1;
        char ca[512];
        cert_path(ca, sizeof ca, "ca.pem");
        if (is_tls() && rp_push_worker_options_set_tls_ca_file(opts, ca) != RP_STATUS_OK) return 1;
        rp_status st = rp_push_worker_connect(opts, &clients[i]);
        if (st != RP_STATUS_OK) {
            fprintf(stderr, "worker %d of this child: connect failed (status %d)\n", i, (int)st);
            return 2;
        }
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
    free(clients);
    free(fds);
    return 0;
}

static size_t registered_workers(rp_push_server *server) {
    rp_push_worker_list *list = NULL;
    size_t count = 0;
    if (rp_push_server_workers(server, &list) == RP_STATUS_OK) count = rp_push_worker_list_len(list);
    rp_push_worker_list_free(list);
    return count;
}

static int run(int n) {
    if (n < 1) return 1;
    char dir[] = "/tmp/rp-scale-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256];
    snprintf(ep, sizeof ep, "%s/push.sock", dir);
    if (strcmp(transport(), "unix") != 0) snprintf(ep, sizeof ep, "%s://127.0.0.1:0", transport());
    rp_push_server_options *opts = NULL;
    rp_push_server *server = NULL;
    if (rp_push_server_options_new(ep, &opts) != RP_STATUS_OK) return 1;
    if (is_tls()) {
        char cert[512], key[512];
        cert_path(cert, sizeof cert, "server.pem");
        cert_path(key, sizeof key, "server.key");
        if (rp_push_server_options_set_tls_cert_files(opts, cert, key) != RP_STATUS_OK) return 1;
    }
    /* The defaults (4096 in all, 2048 per uid) would refuse workers beyond 2048 with
     * RATE_LIMITED: every worker here has this process's uid. */
    size_t max_conn = 4096, max_per_uid = 2048;
    if ((size_t)n > max_per_uid) {
        max_conn = max_per_uid = (size_t)n + 64;
        if (rp_push_server_options_set_max_connections(opts, max_conn, max_per_uid) != RP_STATUS_OK) return 1;
    }
    if (rp_push_server_bind(opts, &server) != RP_STATUS_OK) return 1;
    rp_str bound = rp_push_server_endpoint(server);
    snprintf(ep, sizeof ep, "%.*s", (int)bound.len, bound.ptr);
    long before = rss_kib();
    /* All the children are forked before any worker connects, so none inherits a connection. */
    int children = (n + WORKERS_PER_CHILD - 1) / WORKERS_PER_CHILD;
    pid_t *pids = calloc((size_t)children, sizeof *pids);
    if (!pids) return 1;
    uint64_t t_reg = bench_now_ns();
    for (int c = 0; c < children; c++) {
        int share = n / children + (c < n % children ? 1 : 0);
        pids[c] = fork();
        if (pids[c] < 0) return 1;
        if (pids[c] == 0) _exit(workers(ep, share));
    }
    /* Up to 60 s plus 20 ms per worker for every worker to register. */
    uint64_t deadline = t_reg + (60000ull + 20ull * (uint64_t)n) * 1000000ull;
    size_t registered = 0;
    int early_exit = 0;
    while ((registered = registered_workers(server)) < (size_t)n && bench_now_ns() < deadline && !early_exit) {
        for (int c = 0; c < children; c++) /* a child that already exited failed to connect */
            if (waitpid(pids[c], NULL, WNOHANG) == pids[c]) early_exit = 1;
        usleep(10000);
    }
    double register_ms = (double)(bench_now_ns() - t_reg) / 1e6;
    if (registered < (size_t)n) {
        fprintf(stderr, "only %zu of %d workers registered\n", registered, n);
        return 1;
    }
    long idle = rss_kib();
    long server_fds = open_fds();
    rp_push_worker_list *list = NULL;
    if (rp_push_server_workers(server, &list) != RP_STATUS_OK) return 1;
    uint64_t *ids = calloc((size_t)n, sizeof *ids);
    rp_push_ticket **tickets = calloc((size_t)n, sizeof *tickets);
    if (!ids || !tickets) return 1;
    for (int i = 0; i < n; i++) ids[i] = rp_push_worker_info_id(rp_push_worker_list_get(list, (size_t)i));
    rp_push_worker_list_free(list);
    uint8_t payload[BENCH_MSG];
    memset(payload, 'x', sizeof payload);
    uint64_t took[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < n; i++) {
            rp_push_request *req = NULL;
            if (rp_push_request_new(0x7001, payload, sizeof payload, &req) != RP_STATUS_OK) return 1;
            if (rp_push_request_to_worker(req, ids[i]) != RP_STATUS_OK) return 1;
            rp_status st = rp_push_server_push(server, req, &tickets[i]);
            rp_push_request_free(req);
            if (st != RP_STATUS_OK) {
                fprintf(stderr, "push to worker %d failed (status %d)\n", i, (int)st);
                return 1;
            }
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
        took[round] = bench_now_ns() - t0;
    }
    qsort(took, ROUNDS, sizeof took[0], bench_cmp);
    rp_push_server_free(server); /* the workers see CLOSED and exit */
    int ok = 1;
    for (int c = 0; c < children; c++) {
        int status = 0;
        waitpid(pids[c], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ok = 0;
    }
    rmdir(dir);
    const char *suffix = strcmp(transport(), "tcp") == 0 ? "_tcp" : is_tls() ? "_tls" : "";
    printf("RESULT name=push_scale_%d%s workers=%d rss_kib_per_worker=%.1f fanout_ms=%.2f "
           "fanout_median_ms=%.2f register_ms=%.0f server_fds=%ld children=%d max_connections=%zu/%zu%s\n",
           n, suffix, n, (double)(idle - before) / (double)n, (double)took[0] / 1e6,
           (double)took[ROUNDS / 2] / 1e6, register_ms, server_fds, children, max_conn, max_per_uid,
           (size_t)n > 2048 ? "(raised)" : "(default)");
    fflush(stdout);
    free(ids);
    free(tickets);
    free(pids);
    return ok ? 0 : 1;
}

/* Each N runs in a fresh process, so that no N reuses memory an earlier server freed (the
 * allocator keeps it, and the next RSS difference would come out too small). */
static int run_fresh(int n) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) _exit(run(n));
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    long limit = raise_fd_limit();
    int defaults[] = {1, 10, 100, 1000, 10000};
    fprintf(stderr, "push_scale: descriptor limit %ld, at most %d workers per child\n", limit,
            WORKERS_PER_CHILD);
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (run_fresh(atoi(argv[i])) != 0) return 1;
        return 0;
    }
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (run_fresh(defaults[i]) != 0) return 1;
    return 0;
}
