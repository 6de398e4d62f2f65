/*
 * push_worker: registers with a push server and answers each push with its payload in upper
 * case, driven by its own poll(2) loop on the client's pollable descriptor.
 *
 *   push_worker ENDPOINT [NAME]
 *
 * ENDPOINT is a librp push server's (socket path, @name, tcp://host:port) or a liminal
 * server's (liminal+tcp://host:port).
 *
 * Exits 0 when the server closes the connection.
 */
#include <rp.h>

#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Builds the options and connects; rp_push_worker_connect consumes them on every path. */
static rp_status connect_worker(const char *endpoint, const char *name, rp_push_worker **out) {
    rp_push_worker_options *opts = NULL;
    rp_status st = rp_push_worker_options_new(endpoint, name, "uppercase", &opts);
    if (st != RP_STATUS_OK) return st;
    /* Payload protocols are a librp push server's; a liminal server (liminal+tcp://) has none. */
    if (strncmp(endpoint, "liminal+tcp://", strlen("liminal+tcp://")) != 0)
        st = rp_push_worker_options_add_payload_protocol(opts, 0x7001);
    if (st == RP_STATUS_OK) st = rp_push_worker_options_add_activity_type(opts, "uppercase");
    if (st != RP_STATUS_OK) {
        rp_push_worker_options_free(opts);
        return st;
    }
    return rp_push_worker_connect(opts, out);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s ENDPOINT [NAME]\n", argv[0]);
        return 2;
    }
    const char *name = argc > 2 ? argv[2] : "upper-worker";
    rp_push_worker *client = NULL;
    rp_status st = RP_STATUS_IO;
    /* Retry for up to 5 s while the server is starting (RP_STATUS_IO: nothing listens yet). */
    for (int attempt = 0; st == RP_STATUS_IO && attempt < 100; attempt++) {
        if (attempt > 0) usleep(50000);
        st = connect_worker(argv[1], name, &client);
    }
    if (st != RP_STATUS_OK) {
        char msg[512];
        rp_last_error_message(msg, sizeof msg);
        fprintf(stderr, "push_worker: connect: %s (%s)\n", rp_status_str(st), msg);
        return 1;
    }
    printf("worker %s: registered as worker %llu\n", name,
           (unsigned long long)rp_push_worker_id(client));
    fflush(stdout);

    struct pollfd pfd = {rp_push_worker_fd(client), POLLIN, 0};
    for (;;) {
        if (poll(&pfd, 1, -1) < 0) continue; /* a real daemon polls its other fds here too */
        rp_push *push = NULL;
        st = rp_push_worker_recv(client, 0, &push);
        if (st == RP_STATUS_TIMEOUT) continue;
        if (st != RP_STATUS_OK) break; /* CLOSED: the server went away */
        rp_bytes in = rp_push_payload(push);
        char *out = malloc(in.len + 1);
        for (size_t i = 0; i < in.len; i++) out[i] = (char)toupper(in.ptr[i]);
        printf("worker %s: push %llu \"%.*s\"\n", name,
               (unsigned long long)rp_push_correlation_id(push), (int)in.len, (const char *)in.ptr);
        fflush(stdout);
        st = rp_push_worker_reply(client, rp_push_correlation_id(push), (const uint8_t *)out, in.len);
        free(out);
        rp_push_free(push);
        if (st != RP_STATUS_OK) break;
    }
    char why[256];
    rp_last_error_message(why, sizeof why);
    printf("worker %s: done (%s)\n", name, why);
    rp_push_worker_free(client);
    return st == RP_STATUS_CLOSED ? 0 : 1;
}
