/* Push over tls:// through the C API: certificates from files and from memory, mutual TLS with
 * the client identity seen by the registration callback, and the failures (unknown CA, wrong
 * name, client certificate missing, plain client on a TLS port and the reverse) with their
 * status and message.
 *
 * The certificates are made at run time by tests/tls_certs.sh with the openssl command (a
 * throwaway CA, server and client certificates in a temporary folder); without openssl the
 * test says so and passes.
 *
 * argv[1] is the vectors folder. */
#include "rp.h"
#include "check.h"
#include "tls_certs.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define PROTO 0x7001u

/* What the registration callback saw of the worker's certificate. */
static char g_subject[256];
static char g_san[256];
static _Atomic int g_verified = -1;

static int32_t decide(void *user_data, const rp_push_worker_info *worker, char *reason, size_t cap) {
    (void)user_data;
    (void)reason;
    (void)cap;
    rp_str subject = rp_push_worker_info_tls_subject(worker);
    snprintf(g_subject, sizeof g_subject, "%.*s", (int)subject.len, subject.ptr);
    if (rp_push_worker_info_tls_san_count(worker) > 0) {
        rp_str san = rp_push_worker_info_tls_san(worker, 0);
        snprintf(g_san, sizeof g_san, "%.*s", (int)san.len, san.ptr);
    }
    g_verified = rp_push_worker_info_tls_verified(worker);
    return RP_REGISTRATION_VERDICT_ACCEPT;
}

static _Atomic int g_dispatching;
static void *dispatch_loop(void *arg) {
    rp_push_server *server = (rp_push_server *)arg;
    while (g_dispatching) {
        size_t n = 0;
        rp_status st = rp_push_server_dispatch(server, 50, &n);
        if (st != RP_STATUS_OK && st != RP_STATUS_TIMEOUT) break;
    }
    return NULL;
}

static void *echo_loop(void *arg) {
    rp_push_worker *worker = (rp_push_worker *)arg;
    for (;;) {
        rp_push *push = NULL;
        if (rp_push_worker_recv(worker, -1, &push) != RP_STATUS_OK) break;
        rp_bytes p = rp_push_payload(push);
        rp_status st = rp_push_worker_reply(worker, rp_push_correlation_id(push), p.ptr, p.len);
        rp_push_free(push);
        if (st != RP_STATUS_OK) break;
    }
    return NULL;
}

static rp_push_worker_options *worker_options(const char *endpoint) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(endpoint, "c-tls-worker", "q", &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    CHECK_OK(rp_push_worker_options_set_connect_timeout_ms(opts, 3000));
    return opts;
}

/* Connects with `opts` expecting `status` and a message with `words`. */
static void connect_fails(rp_push_worker_options *opts, rp_status status, const char *words) {
    rp_push_worker *worker = NULL;
    CHECK_STATUS(rp_push_worker_connect(opts, &worker), status);
    CHECK(worker == NULL);
    CHECK_LAST_ERROR_CONTAINS(words);
}

static void mutual_tls(void) {
    char cert[512], key[512], client_ca[512], ep_text[256];
    tls_cert_path(cert, sizeof cert, "server.pem");
    tls_cert_path(key, sizeof key, "server.key");
    tls_cert_path(client_ca, sizeof client_ca, "ca.pem");
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new("tls://127.0.0.1:0", &so));
    CHECK_OK(rp_push_server_options_set_tls_cert_files(so, cert, key));
    CHECK_OK(rp_push_server_options_set_tls_client_ca_file(so, client_ca, true));
    CHECK_OK(rp_push_server_options_set_registration_callback(so, decide, NULL, NULL));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    rp_str ep = rp_push_server_endpoint(server);
    snprintf(ep_text, sizeof ep_text, "%.*s", (int)ep.len, ep.ptr);
    CHECK(strncmp(ep_text, "tls://127.0.0.1:", 16) == 0);
    g_dispatching = 1;
    pthread_t dispatcher;
    pthread_create(&dispatcher, NULL, dispatch_loop, server);

    size_t ca_len = 0, other_len = 0;
    uint8_t *ca = tls_cert_read("ca.pem", &ca_len);
    uint8_t *other = tls_cert_read("other_ca.pem", &other_len);
    CHECK(ca != NULL && other != NULL);
    char client_cert[512], client_key[512];
    tls_cert_path(client_cert, sizeof client_cert, "client.pem");
    tls_cert_path(client_key, sizeof client_key, "client.key");

    /* CA roots from memory, client certificate from files: in, and seen by the callback. */
    rp_push_worker_options *wo = worker_options(ep_text);
    CHECK_OK(rp_push_worker_options_set_tls_ca_pem(wo, ca, ca_len));
    CHECK_OK(rp_push_worker_options_set_tls_client_cert_files(wo, client_cert, client_key));
    rp_push_worker *worker = NULL;
    CHECK_OK(rp_push_worker_connect(wo, &worker));
    pthread_t echo;
    pthread_create(&echo, NULL, echo_loop, worker);
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"over tls", 8, &req));
    CHECK_OK(rp_push_request_to_task_queue(req, "q"));
    rp_push_result *res = NULL;
    CHECK_OK(rp_push_server_push_wait(server, req, 5000, &res));
    rp_bytes out = rp_push_result_payload(res);
    CHECK(out.len == 8 && memcmp(out.ptr, "over tls", 8) == 0);
    rp_push_result_free(res);
    rp_push_request_free(req);
    rp_push_worker_list *list = NULL;
    CHECK_OK(rp_push_server_workers(server, &list));
    const rp_push_worker_info *info = rp_push_worker_list_get(list, 0);
    CHECK(rp_push_worker_info_tls_verified(info));
    CHECK(!rp_push_worker_info_peer(info, NULL, NULL, NULL)); /* no kernel credentials over TCP */
    CHECK(rp_push_worker_info_tls_san_count(info) == 1);
    rp_push_worker_list_free(list);
    rp_push_worker_close(worker);
    pthread_join(echo, NULL);
    rp_push_worker_free(worker);

    /* The client certificate as PEM text from memory works the same. */
    size_t cert_len = 0, key_len = 0;
    uint8_t *cert_pem = tls_cert_read("client.pem", &cert_len);
    uint8_t *key_pem = tls_cert_read("client.key", &key_len);
    wo = worker_options(ep_text);
    CHECK_OK(rp_push_worker_options_set_tls_ca_pem(wo, ca, ca_len));
    CHECK_OK(rp_push_worker_options_set_tls_client_cert_pem(wo, cert_pem, cert_len, key_pem, key_len));
    worker = NULL;
    CHECK_OK(rp_push_worker_connect(wo, &worker));
    rp_push_worker_free(worker);
    free(cert_pem);
    free(key_pem);

    /* No client certificate: refused, and told why. */
    wo = worker_options(ep_text);
    CHECK_OK(rp_push_worker_options_set_tls_ca_pem(wo, ca, ca_len));
    connect_fails(wo, RP_STATUS_PERMISSION_DENIED, "client certificate");

    /* A server certificate from a CA the worker does not trust. */
    wo = worker_options(ep_text);
    CHECK_OK(rp_push_worker_options_set_tls_ca_pem(wo, other, other_len));
    connect_fails(wo, RP_STATUS_PERMISSION_DENIED, "unknown CA");

    /* A name the certificate is not for. */
    wo = worker_options(ep_text);
    CHECK_OK(rp_push_worker_options_set_tls_ca_pem(wo, ca, ca_len));
    CHECK_OK(rp_push_worker_options_set_tls_server_name(wo, "elsewhere.example"));
    connect_fails(wo, RP_STATUS_PERMISSION_DENIED, "wrong name");

    /* A plain TCP worker at the TLS port is told to use tls://. */
    char plain[256];
    snprintf(plain, sizeof plain, "tcp://%s", ep_text + 6);
    connect_fails(worker_options(plain), RP_STATUS_REFUSED, "connect with tls://");

    g_dispatching = 0;
    pthread_join(dispatcher, NULL);
    /* What the registration callback saw (on the dispatching thread, joined above). */
    CHECK(g_verified == 1);
    CHECK(strcmp(g_subject, "CN=c-worker,O=librp tests") == 0);
    CHECK(strcmp(g_san, "DNS:c-worker.example") == 0);
    rp_push_server_free(server);
    free(ca);
    free(other);
}

static void tls_worker_on_a_plain_port(void) {
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new("tcp://127.0.0.1:0", &so));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(so, &server));
    rp_str ep = rp_push_server_endpoint(server);
    char tls[256], ca[512];
    snprintf(tls, sizeof tls, "tls://%.*s", (int)ep.len - 6, ep.ptr + 6);
    tls_cert_path(ca, sizeof ca, "ca.pem");
    rp_push_worker_options *wo = worker_options(tls);
    CHECK_OK(rp_push_worker_options_set_tls_ca_file(wo, ca));
    connect_fails(wo, RP_STATUS_PROTOCOL, "does not speak TLS");
    rp_push_server_free(server);
}

static void bad_options(void) {
    rp_push_server_options *so = NULL;
    CHECK_OK(rp_push_server_options_new("tls://127.0.0.1:0", &so));
    CHECK_STATUS(rp_push_server_options_set_tls_cert_files(so, "/nonexistent/cert.pem", "/nonexistent/key.pem"), RP_STATUS_CONFIG);
    CHECK_LAST_ERROR_CONTAINS("/nonexistent/cert.pem");
    CHECK_STATUS(rp_push_server_options_set_tls_cert_pem(so, NULL, 1, NULL, 0), RP_STATUS_NULL_ARGUMENT);
    rp_push_server *server = NULL;
    CHECK_STATUS(rp_push_server_bind(so, &server), RP_STATUS_CONFIG); /* no certificate */
    CHECK(server == NULL);

    /* TLS options on a plain endpoint. */
    rp_push_worker_options *wo = worker_options("tcp://127.0.0.1:1");
    CHECK_OK(rp_push_worker_options_set_tls_server_name(wo, "x.example"));
    connect_fails(wo, RP_STATUS_INVALID_ARGUMENT, "tls://");
    wo = worker_options("tls://127.0.0.1:1");
    CHECK_STATUS(rp_push_worker_options_set_tls_ca_file(wo, "/nonexistent/ca.pem"), RP_STATUS_CONFIG);
    CHECK_STATUS(rp_push_worker_options_set_tls_server_name(NULL, "x"), RP_STATUS_NULL_ARGUMENT);
    rp_push_worker_options_free(wo);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tls VECTORS_DIR\n");
        return 2;
    }
    int made = tls_certs_make(argv[1]);
    if (made < 0) return 1;
    bad_options();
    if (made) {
        mutual_tls();
        tls_worker_on_a_plain_port();
    } else {
        printf("test_tls: openssl not found: the certificate tests were skipped\n");
    }
    CHECK(tls_certs_remove() == 0);
    return CHECK_DONE("test_tls");
}
