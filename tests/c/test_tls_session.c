/* Sessions and the broker client over tls:// through the C API: a session listener with
 * certificate files and required client certificates, a call round trip, the peer identity
 * both sides see, and the failures (unknown CA, no client certificate, TLS options on a plain
 * endpoint) with their status and message.
 *
 * The certificates are made at run time by tests/tls_certs.sh with the openssl command; without
 * openssl the test says so and passes.
 *
 * argv[1] is the vectors folder. */
#include "rp.h"
#include "check.h"
#include "tls_certs.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define ECHO 0x7101u

/* Echoes every request's payload. */
static void echo(void *user_data, rp_session_request *request) {
    (void)user_data;
    rp_bytes p = rp_session_request_payload(request);
    CHECK_OK(rp_session_respond(request, p.ptr, p.len));
}

/* What the accepting side saw of its client. */
static char g_subject[256];
static char g_san[256];

static void *serve(void *arg) {
    rp_session_listener *listener = (rp_session_listener *)arg;
    for (;;) {
        rp_session *session = NULL;
        if (rp_session_listener_accept(listener, -1, echo, NULL, NULL, &session) != RP_STATUS_OK) return NULL;
        rp_str subject = rp_session_tls_subject(session);
        snprintf(g_subject, sizeof g_subject, "%.*s", (int)subject.len, subject.ptr);
        if (rp_session_tls_san_count(session) > 0) {
            rp_str san = rp_session_tls_san(session, 0);
            snprintf(g_san, sizeof g_san, "%.*s", (int)san.len, san.ptr);
        }
        for (;;) {
            size_t n = 0;
            rp_status st = rp_session_dispatch(session, 50, &n);
            if (st != RP_STATUS_OK && st != RP_STATUS_TIMEOUT) break;
        }
        rp_session_free(session);
    }
}

static rp_tls_client_options *client_tls(const char *ca_name, int with_cert) {
    char ca[512], cert[512], key[512];
    tls_cert_path(ca, sizeof ca, ca_name);
    tls_cert_path(cert, sizeof cert, "client.pem");
    tls_cert_path(key, sizeof key, "client.key");
    rp_tls_client_options *tls = NULL;
    CHECK_OK(rp_tls_client_options_new(&tls));
    CHECK_OK(rp_tls_client_options_set_ca_file(tls, ca));
    if (with_cert) CHECK_OK(rp_tls_client_options_set_client_cert_files(tls, cert, key));
    return tls;
}

static void sessions_over_tls(void) {
    char cert[512], key[512], ca[512];
    tls_cert_path(cert, sizeof cert, "server.pem");
    tls_cert_path(key, sizeof key, "server.key");
    tls_cert_path(ca, sizeof ca, "ca.pem");
    rp_tls_server_options *so = NULL;
    CHECK_OK(rp_tls_server_options_new(&so));
    CHECK_OK(rp_tls_server_options_set_cert_files(so, cert, key));
    CHECK_OK(rp_tls_server_options_set_client_ca_file(so, ca, true));
    rp_session_listener *listener = NULL;
    CHECK_OK(rp_session_listener_bind_tls("tls://127.0.0.1:0", so, &listener));
    rp_tls_server_options_free(so);
    rp_str ep = rp_session_listener_endpoint(listener);
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%.*s", (int)ep.len, ep.ptr);
    CHECK(strncmp(endpoint, "tls://127.0.0.1:", 16) == 0);
    pthread_t server;
    pthread_create(&server, NULL, serve, listener);

    /* A call round trip with mutual TLS; each side sees the other's certificate. */
    rp_tls_client_options *tls = client_tls("ca.pem", 1);
    rp_session *session = NULL;
    CHECK_OK(rp_session_connect_tls(endpoint, 5000, tls, NULL, NULL, NULL, &session));
    rp_tls_client_options_free(tls);
    rp_msg *reply = NULL;
    CHECK_OK(rp_session_call(session, ECHO, (const uint8_t *)"over tls", 8, NULL, 5000, &reply));
    CHECK(reply != NULL && rp_msg_len(reply) == 8 && memcmp(rp_msg_data(reply), "over tls", 8) == 0);
    rp_msg_free(reply);
    rp_str subject = rp_session_tls_subject(session);
    CHECK(subject.len == 14 && memcmp(subject.ptr, "CN=push server", 14) == 0);
    rp_session_free(session);

    /* The server's certificate from an unknown CA. */
    tls = client_tls("other_ca.pem", 1);
    session = NULL;
    CHECK_STATUS(rp_session_connect_tls(endpoint, 5000, tls, NULL, NULL, NULL, &session), RP_STATUS_PERMISSION_DENIED);
    CHECK_LAST_ERROR_CONTAINS("unknown CA");
    CHECK(session == NULL);

    /* The broker client verifies a tls:// endpoint with the same options. */
    rp_broker_options *bo = NULL;
    CHECK_OK(rp_broker_options_new(endpoint, "svc", "1.0.0", "1.0.0", &bo));
    CHECK_STATUS(rp_broker_options_set_tls(bo, NULL), RP_STATUS_NULL_ARGUMENT);
    CHECK_OK(rp_broker_options_set_tls(bo, tls));
    rp_tls_client_options_free(tls);
    rp_broker_result *result = NULL;
    CHECK_STATUS(rp_broker_connect(bo, &result), RP_STATUS_PERMISSION_DENIED);
    CHECK(result == NULL);

    /* No client certificate: refused once the server has seen the handshake through. */
    tls = client_tls("ca.pem", 0);
    session = NULL;
    rp_status st = rp_session_connect_tls(endpoint, 5000, tls, NULL, NULL, NULL, &session);
    if (st == RP_STATUS_OK) {
        st = rp_session_call(session, ECHO, (const uint8_t *)"x", 1, NULL, 5000, &reply);
        rp_session_free(session);
    }
    CHECK(st == RP_STATUS_PERMISSION_DENIED || st == RP_STATUS_CLOSED);

    /* TLS options on a plain endpoint. */
    session = NULL;
    CHECK_STATUS(rp_session_connect_tls("tcp://127.0.0.1:1", 1000, tls, NULL, NULL, NULL, &session), RP_STATUS_INVALID_ARGUMENT);
    rp_tls_client_options_free(tls);

    rp_session_listener_close(listener);
    pthread_join(server, NULL);
    rp_session_listener_free(listener);
    CHECK(strcmp(g_subject, "CN=c-worker,O=librp tests") == 0);
    CHECK(strcmp(g_san, "DNS:c-worker.example") == 0);
}

static void bad_options(void) {
    rp_tls_server_options *so = NULL;
    CHECK_OK(rp_tls_server_options_new(&so));
    CHECK_STATUS(rp_tls_server_options_set_cert_files(so, "/nonexistent/cert.pem", "/nonexistent/key.pem"), RP_STATUS_CONFIG);
    CHECK_LAST_ERROR_CONTAINS("/nonexistent/cert.pem");
    rp_session_listener *listener = NULL;
    CHECK_STATUS(rp_session_listener_bind_tls("tls://127.0.0.1:0", so, &listener), RP_STATUS_CONFIG); /* no certificate */
    CHECK_STATUS(rp_session_listener_bind_tls("tls://127.0.0.1:0", NULL, &listener), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_session_listener_bind("tls://127.0.0.1:0", &listener), RP_STATUS_CONFIG);
    CHECK(listener == NULL);
    rp_tls_server_options_free(so);
    rp_tls_client_options *tls = NULL;
    CHECK_OK(rp_tls_client_options_new(&tls));
    CHECK_STATUS(rp_tls_client_options_set_ca_file(tls, "/nonexistent/ca.pem"), RP_STATUS_CONFIG);
    CHECK_STATUS(rp_tls_client_options_set_server_name(NULL, "x"), RP_STATUS_NULL_ARGUMENT);
    rp_tls_client_options_free(tls);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_tls_session VECTORS_DIR\n");
        return 2;
    }
    int made = tls_certs_make(argv[1]);
    if (made < 0) return 1;
    bad_options();
    if (made) {
        sessions_over_tls();
    } else {
        printf("test_tls_session: openssl not found: the certificate tests were skipped\n");
    }
    CHECK(tls_certs_remove() == 0);
    return CHECK_DONE("test_tls_session");
}
