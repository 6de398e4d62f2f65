/* Close racing blocked calls through the C API, many times (valgrind and ASan/UBSan builds run
 * it too): a recv blocked forever on one thread is woken by rp_push_worker_close on another,
 * a ticket wait blocked on one thread is ended by rp_push_server_shutdown on another, and a
 * server shutdown races workers blocked in recv. Every blocked call returns RP_STATUS_CLOSED;
 * nothing hangs (ctest TIMEOUT) and nothing leaks (LeakSanitizer / valgrind). */
#include "rp.h"
#include "check.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define ITERATIONS 200

struct recv_arg {
    const rp_push_worker *client;
    rp_status status;
};

static void *recv_forever(void *p) {
    struct recv_arg *a = (struct recv_arg *)p;
    rp_push *push = NULL;
    a->status = rp_push_worker_recv(a->client, -1, &push);
    rp_push_free(push);
    return NULL;
}

struct wait_arg {
    const rp_push_ticket *ticket;
    rp_status status;
    char message[256];
};

static void *wait_forever(void *p) {
    struct wait_arg *a = (struct wait_arg *)p;
    rp_push_result *result = NULL;
    a->status = rp_push_ticket_wait(a->ticket, -1, &result);
    a->message[0] = 0;
    if (a->status != RP_STATUS_OK) rp_last_error_message(a->message, sizeof a->message);
    rp_push_result_free(result);
    return NULL;
}

static void short_random_pause(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    struct timespec ts = {0, (long)((*seed >> 8) % 300) * 1000L};
    if (*seed & 1) nanosleep(&ts, NULL);
}

static rp_push_server *start_server(const char *ep) {
    rp_push_server_options *opts = NULL;
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &opts));
    CHECK_OK(rp_push_server_bind(opts, &server));
    return server;
}

static rp_push_worker *connect_worker(const char *ep) {
    rp_push_worker_options *opts = NULL;
    rp_push_worker *client = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "race-worker", "race", &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, 0x7001));
    CHECK_OK(rp_push_worker_connect(opts, &client));
    return client;
}

int main(void) {
    char ep[128];
    unsigned seed = 12345;
    snprintf(ep, sizeof ep, "@rp-test-race-%ld", (long)getpid());

    /* 1. close vs a recv blocked forever. */
    rp_push_server *server = start_server(ep);
    for (int i = 0; i < ITERATIONS && server; i++) {
        rp_push_worker *client = connect_worker(ep);
        if (!client) break;
        struct recv_arg a = {client, RP_STATUS_OK};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, recv_forever, &a) == 0);
        short_random_pause(&seed);
        rp_push_worker_close(client);
        rp_push_worker_close(client); /* idempotent */
        pthread_join(t, NULL);
        CHECK_STATUS(a.status, RP_STATUS_CLOSED);
        rp_push_worker_free(client);
    }

    /* 2. server shutdown vs a ticket wait blocked forever (the worker never answers). */
    for (int i = 0; i < ITERATIONS / 4 && server; i++) {
        rp_push_worker *client = connect_worker(ep);
        rp_push_request *req = NULL;
        rp_push_ticket *ticket = NULL;
        CHECK_OK(rp_push_request_new(0x7001, (const uint8_t *)"x", 1, &req));
        CHECK_OK(rp_push_server_push(server, req, &ticket));
        rp_push_request_free(req);
        struct wait_arg w = {ticket, RP_STATUS_OK, ""};
        pthread_t t;
        CHECK(pthread_create(&t, NULL, wait_forever, &w) == 0);
        short_random_pause(&seed);
        if (i % 2 == 0) {
            rp_push_server_shutdown(server);
            pthread_join(t, NULL);
            CHECK_STATUS(w.status, RP_STATUS_CLOSED);
            rp_push_server_free(server);
            server = start_server(ep);
        } else {
            /* Losing the worker ends the wait too: CLOSED, or NOT_FOUND when the server saw the
             * worker go before it dispatched the push (pushes start asynchronously). */
            rp_push_worker_close(client);
            pthread_join(t, NULL);
            CHECK(w.status == RP_STATUS_CLOSED || w.status == RP_STATUS_NOT_FOUND);
            if (w.status != RP_STATUS_CLOSED && w.status != RP_STATUS_NOT_FOUND)
                fprintf(stderr, "iteration %d: wait ended with %d: %s\n", i, (int)w.status, w.message);
        }
        rp_push_ticket_free(ticket);
        rp_push_worker_free(client);
    }

    /* 3. server shutdown vs several workers blocked in recv. */
    for (int i = 0; i < ITERATIONS / 10 && server; i++) {
        enum { N = 4 };
        rp_push_worker *clients[N];
        struct recv_arg args[N];
        pthread_t threads[N];
        for (int k = 0; k < N; k++) {
            clients[k] = connect_worker(ep);
            args[k].client = clients[k];
            args[k].status = RP_STATUS_OK;
            CHECK(pthread_create(&threads[k], NULL, recv_forever, &args[k]) == 0);
        }
        short_random_pause(&seed);
        rp_push_server_free(server);
        for (int k = 0; k < N; k++) {
            pthread_join(threads[k], NULL);
            CHECK_STATUS(args[k].status, RP_STATUS_CLOSED);
            rp_push_worker_free(clients[k]);
        }
        server = start_server(ep);
    }
    rp_push_server_free(server);
    return CHECK_DONE("test_race");
}
