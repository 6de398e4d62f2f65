/* librp push round trip through the C API: the server pushes 64 bytes to a worker process,
 * the worker replies with them, and the server has the reply (rp_push_server_push_wait).
 *
 *   push_rtt                over a Unix socket (librp_push_rtt)
 *   push_rtt tcp            over loopback TCP (librp_push_rtt_tcp)
 *   push_rtt tls CERTDIR    over loopback TLS (librp_push_rtt_tls), with CERTDIR's
 *                           server.pem, server.key and ca.pem (tests/tls_certs.sh makes them)
 *
 * With --stream first (push_rtt --stream tls CERTDIR, say), a stream instead: asynchronous
 * pushes (rp_push_server_push) with up to 256 unanswered, RP_BENCH_STREAM_PUSHES of them
 * (default 200,000), reported as pushes answered per second (librp_push_stream_...). */
#include "bench.h"

#include <rp.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int worker(const char *ep, const char *ca) {
    rp_push_worker_options *opts = NULL;
    if (rp_push_worker_options_new(ep, "bench-worker", "bench", &opts) != RP_STATUS_OK) return 1;
    if (rp_push_worker_options_add_payload_protocol(opts, 0x7001) != RP_STATUS_OK) return 1;
    if (ca && rp_push_worker_options_set_tls_ca_file(opts, ca) != RP_STATUS_OK) return 1;
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

/* Pushes `n` jobs with up to WINDOW unanswered; pushes answered per second. */
#define WINDOW 256
static int stream(rp_push_server *server, rp_push_request *req, const char *name) {
    const char *s = getenv("RP_BENCH_STREAM_PUSHES");
    size_t n = s ? (size_t)strtoull(s, NULL, 10) : 200000;
    rp_push_ticket *ring[WINDOW] = {0};
    uint64_t t0 = bench_now_ns();
    for (size_t i = 0; i < n + WINDOW; i++) {
        rp_push_ticket **slot = &ring[i % WINDOW];
        if (*slot) {
            rp_push_result *res = NULL;
            if (rp_push_ticket_wait(*slot, 5000, &res) != RP_STATUS_OK) {
                char why[512];
                rp_last_error_message(why, sizeof why);
                fprintf(stderr, "push %zu failed: %s\n", i - WINDOW, why);
                return 1;
            }
            rp_push_result_free(res);
            rp_push_ticket_free(*slot);
            *slot = NULL;
        }
        if (i < n && rp_push_server_push(server, req, slot) != RP_STATUS_OK) return 1;
    }
    uint64_t ns = bench_now_ns() - t0;
    printf("RESULT name=%s msgs_per_sec=%.0f n=%zu\n", name, (double)n * 1e9 / (double)ns, n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "--worker") == 0) return worker(argv[2], argc >= 4 ? argv[3] : NULL);
    const char *self = argv[0];
    int streaming = argc >= 2 && strcmp(argv[1], "--stream") == 0;
    if (streaming) {
        argv++;
        argc--;
    }
    const char *mode = argc >= 2 ? argv[1] : "unix";
    const char *name = "librp_push_rtt";
    char dir[] = "/tmp/rp-bench-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char ep[256], cert[512], key[512], ca[512];
    snprintf(ep, sizeof ep, "%s/push.sock", dir);
    if (strcmp(mode, "tcp") == 0) {
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:0");
        name = "librp_push_rtt_tcp";
    } else if (strcmp(mode, "tls") == 0 && argc >= 3) {
        snprintf(ep, sizeof ep, "tls://127.0.0.1:0");
        snprintf(cert, sizeof cert, "%s/server.pem", argv[2]);
        snprintf(key, sizeof key, "%s/server.key", argv[2]);
        snprintf(ca, sizeof ca, "%s/ca.pem", argv[2]);
        name = "librp_push_rtt_tls";
    } else if (strcmp(mode, "unix") != 0) {
        fprintf(stderr, "usage: push_rtt [unix | tcp | tls CERTDIR]\n");
        return 2;
    }
    int tls = strcmp(name, "librp_push_rtt_tls") == 0;
    rp_push_server_options *opts = NULL;
    rp_push_server *server = NULL;
    if (rp_push_server_options_new(ep, &opts) != RP_STATUS_OK) return 1;
    if (tls && rp_push_server_options_set_tls_cert_files(opts, cert, key) != RP_STATUS_OK) return 1;
    if (rp_push_server_bind(opts, &server) != RP_STATUS_OK) return 1;
    rp_str bound = rp_push_server_endpoint(server);
    snprintf(ep, sizeof ep, "%.*s", (int)bound.len, bound.ptr);
    pid_t pid = fork();
    if (pid == 0) {
        bench_exec_self2(self, "--worker", ep, tls ? ca : NULL);
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
    if (streaming) {
        char stream_name[64];
        snprintf(stream_name, sizeof stream_name, "librp_push_stream%s", name + strlen("librp_push_rtt"));
        int failed = stream(server, req, stream_name);
        rp_push_request_free(req);
        rp_push_server_free(server);
        waitpid(pid, NULL, 0);
        rmdir(dir);
        return failed;
    }
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
    return bench_report(name, samples, n);
}
