/*
 * push_server: pushes jobs to registered workers and prints their replies.
 *
 *   push_server ENDPOINT [JOBS] [WORKERS]
 *
 * Binds ENDPOINT (a socket path, @name or tcp://127.0.0.1:PORT), waits for WORKERS workers
 * (default 1) to register — reported by the worker callback, which runs inside
 * rp_push_server_dispatch on this thread — then pushes JOBS jobs (default 5) to the task queue
 * "uppercase" (each to the least busy worker) with a 5 s deadline each, prints every reply, and
 * shuts down, which tells the workers to stop.
 */
#include <rp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROTO 0x7001u

static void fail(const char *what, rp_status st) {
    char msg[512];
    rp_last_error_message(msg, sizeof msg);
    fprintf(stderr, "push_server: %s: %s (%s)\n", what, rp_status_str(st), msg);
    exit(1);
}

static int workers_seen = 0;

static void on_worker(void *user_data, const rp_push_worker_info *w, bool connected, rp_str reason) {
    (void)user_data;
    rp_str id = rp_push_worker_info_identity(w), q = rp_push_worker_info_task_queue(w);
    if (connected) {
        uint32_t pid = 0;
        rp_push_worker_info_peer(w, &pid, NULL, NULL);
        printf("server: worker %llu registered: %.*s (queue %.*s, pid %u)\n",
               (unsigned long long)rp_push_worker_info_id(w), (int)id.len, id.ptr, (int)q.len, q.ptr, pid);
        workers_seen++;
    } else {
        printf("server: worker %llu left: %.*s\n", (unsigned long long)rp_push_worker_info_id(w),
               (int)reason.len, reason.ptr);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ENDPOINT [JOBS]\n", argv[0]);
        return 2;
    }
    int jobs = argc > 2 ? atoi(argv[2]) : 5;
    int wanted = argc > 3 ? atoi(argv[3]) : 1;
    rp_push_server_options *opts = NULL;
    rp_status st = rp_push_server_options_new(argv[1], &opts);
    if (st != RP_STATUS_OK) fail("options", st);
    st = rp_push_server_options_set_worker_callback(opts, on_worker, NULL, NULL);
    if (st != RP_STATUS_OK) fail("worker callback", st);
    rp_push_server *server = NULL;
    st = rp_push_server_bind(opts, &server); /* consumes opts */
    if (st != RP_STATUS_OK) fail("bind", st);
    rp_str ep = rp_push_server_endpoint(server);
    printf("server: listening on %.*s\n", (int)ep.len, ep.ptr);
    fflush(stdout);

    /* Wait (up to 10 s) for the workers; the callback runs inside dispatch. */
    for (int i = 0; i < 100 && workers_seen < wanted; i++) {
        size_t handled;
        st = rp_push_server_dispatch(server, 100, &handled);
        if (st != RP_STATUS_OK && st != RP_STATUS_TIMEOUT) fail("dispatch", st);
    }
    if (workers_seen < wanted) {
        fprintf(stderr, "push_server: %d of %d workers registered within 10 s\n", workers_seen, wanted);
        rp_push_server_free(server);
        return 1;
    }

    int answered = 0;
    for (int i = 1; i <= jobs; i++) {
        char job[64];
        int len = snprintf(job, sizeof job, "job %d: make this loud", i);
        rp_push_request *req = NULL;
        st = rp_push_request_new(PROTO, (const uint8_t *)job, (size_t)len, &req);
        if (st == RP_STATUS_OK) st = rp_push_request_to_task_queue(req, "uppercase");
        if (st != RP_STATUS_OK) fail("request", st);
        rp_push_result *res = NULL;
        st = rp_push_server_push_wait(server, req, 5000, &res);
        rp_push_request_free(req);
        if (st != RP_STATUS_OK) {
            char msg[256];
            rp_last_error_message(msg, sizeof msg);
            printf("server: job %d failed: %s (%s)\n", i, rp_status_str(st), msg);
            continue;
        }
        rp_bytes reply = rp_push_result_payload(res);
        printf("server: job %d -> \"%.*s\"\n", i, (int)reply.len, (const char *)reply.ptr);
        answered++;
        rp_push_result_free(res);
    }
    printf("server: %d of %d jobs answered; shutting down\n", answered, jobs);
    fflush(stdout);
    rp_push_server_free(server);
    return answered == jobs ? 0 : 1;
}
