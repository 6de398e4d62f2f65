/* librp push round trip through the C API: the server pushes 64 bytes to a worker process,
 * the worker replies with them, and the server has the reply (rp_push_server_push_wait). */
#include "bench.h"

#include <rp.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int worker(const char *ep) {
    rp_push_worker_options *opts = NULL;
    if (rp_push_worker_options_new(ep, "bench-worker", "bench", &opts) != RP_STATUS_OK) return 1;
    if (rp_push_worker_options_add_payload_protocol(opts, 0x7001) != RP_STATUS_OK) return 1;
    rp_push_worker *client = NULL;
    if (rp_push_worker_connect(opts, &client) != RP_STATUS_OK) return 1;
    rp_push *push = NULL;
    while (rp_push_worker_recv(client, -1, &push) == RP_STATUS_OK) {
        rp_bytes p = rp_push_payload(push);
        rp_status st = rp_push_worker_reply(client, rp_push_correlation_id(push), p.ptr, p.len);
        rp_push_free(push);
        if (st != RP_STATUS_OK) break;
    }
    rp_push_worker_free(client);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--worker") == 0) return worker(argv[2]);
    char dir[] = "/tmp/rp-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256];
    snprintf(ep, sizeof ep, "%s/push.sock", dir);
    rp_push_server_options *opts = NULL;
    rp_push_server *server = NULL;
    if (rp_push_server_options_new(ep, &opts) != RP_STATUS_OK) return 1;
    if (rp_push_server_bind(opts, &server) != RP_STATUS_OK) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        bench_exec_self(argv[0], "--worker", ep);
        _exit(127);
    }
    int ready = 0;
    for (int i = 0; i < 500 && !ready; i++) {
        rp_push_worker_list *list = NULL;
        if (rp_push_server_workers(server, &list) == RP_STATUS_OK) ready = rp_push_worker_list_len(list) > 0;
        rp_push_worker_list_free(list);
        if (!ready) usleep(10000);
    }
    if (!ready) {
        fprintf(stderr, "the worker did not register within 5 s\n");
        return 1;
    }
    uint8_t payload[BENCH_MSG];
    memset(payload, 'x', sizeof payload);
    rp_push_request *req = NULL;
    if (rp_push_request_new(0x7001, payload, sizeof payload, &req) != RP_STATUS_OK) return 1;
    size_t n = bench_iterations();
    size_t warmup = bench_warmup();
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < warmup + n; i++) {
        uint64_t t0 = bench_now_ns();
        rp_push_result *res = NULL;
        rp_status st = rp_push_server_push_wait(server, req, 5000, &res);
        if (st != RP_STATUS_OK) {
            char why[512];
            rp_last_error_message(why, sizeof why);
            fprintf(stderr, "push_wait %zu failed: status %d: %s\n", i, (int)st, why);
            return 1;
        }
        if (i >= warmup) samples[i - warmup] = bench_now_ns() - t0;
        if (rp_push_result_payload(res).len != BENCH_MSG) return 1;
        rp_push_result_free(res);
    }
    rp_push_request_free(req);
    rp_push_server_free(server); /* closes the worker's connection: it exits */
    waitpid(pid, NULL, 0);
    rmdir(dir);
    return bench_report("librp_push_rtt", samples, n);
}
