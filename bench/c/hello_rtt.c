/* Connection setup through a broker, through the C API: rp_broker_connect against a librp
 * broker (connect, Hello, Negotiated, then connect to the backend's endpoint), the backend being
 * a Unix listener in this process that accepts and closes. Reports p50/p99 of the whole setup.
 * (The reference's own budget for a Hello round trip: p50 <= 200 us, p99 <= 1 ms.) */
#include "bench.h"

#include <pthread.h>
#include <rp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int backend_fd;

static void *accept_loop(void *arg) {
    (void)arg;
    for (;;) {
        int c = accept(backend_fd, NULL, NULL);
        if (c < 0) return NULL;
        close(c);
    }
}

int main(void) {
    char dir[] = "/tmp/rp-bench-hello-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char broker_ep[256], backend_ep[256];
    snprintf(broker_ep, sizeof broker_ep, "%s/broker.sock", dir);
    snprintf(backend_ep, sizeof backend_ep, "%s/backend.sock", dir);

    backend_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, backend_ep, strlen(backend_ep) + 1);
    if (bind(backend_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(backend_fd, 512) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, accept_loop, NULL);

    rp_broker_server_options *so = NULL;
    rp_broker_server *broker = NULL;
    if (rp_broker_server_options_new(broker_ep, &so) != RP_STATUS_OK) return 1;
    if (rp_broker_server_options_add_service(so, "bench", backend_ep, "1.0.0") != RP_STATUS_OK) return 1;
    if (rp_broker_server_options_set_rate_limit(so, 1000000, 1000) != RP_STATUS_OK) return 1;
    if (rp_broker_server_bind(so, &broker) != RP_STATUS_OK) return 1;

    size_t n = bench_iterations() / 10;
    if (n < 200) n = 200;
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < 100 + n; i++) {
        uint64_t t0 = bench_now_ns();
        rp_broker_options *opts = NULL;
        rp_broker_result *res = NULL;
        if (rp_broker_options_new(broker_ep, "bench", "1.0.0", "1.0.0", &opts) != RP_STATUS_OK) return 1;
        rp_status st = rp_broker_connect(opts, &res);
        if (st != RP_STATUS_OK) {
            char msg[256];
            rp_last_error_message(msg, sizeof msg);
            fprintf(stderr, "connect: %s\n", msg);
            return 1;
        }
        if (i >= 100) samples[i - 100] = bench_now_ns() - t0;
        rp_broker_result_free(res);
    }
    rp_broker_server_free(broker);
    shutdown(backend_fd, SHUT_RDWR);
    close(backend_fd);
    unlink(backend_ep);
    rmdir(dir);
    return bench_report("broker_connect_setup", samples, n);
}
