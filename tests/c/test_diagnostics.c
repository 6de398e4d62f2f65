/* Diagnostics that point at the cause: EACCES/EPERM is
 * RP_STATUS_PERMISSION_DENIED, and a worker or broker client that reached the wrong kind of
 * server is told what the peer is. */
#include "rp.h"
#include "check.h"

#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[256];

static rp_status connect_worker(const char *ep, rp_push_worker **out) {
    rp_push_worker_options *o = NULL;
    CHECK_OK(rp_push_worker_options_new(ep, "diag-worker", "q", &o));
    CHECK_OK(rp_push_worker_options_set_connect_timeout_ms(o, 3000));
    return rp_push_worker_connect(o, out);
}

static rp_status connect_broker(const char *ep, const char *service, const char *version) {
    rp_broker_options *o = NULL;
    CHECK_OK(rp_broker_options_new(ep, service, version, version, &o));
    CHECK_OK(rp_broker_options_set_timeout_ms(o, 3000));
    rp_broker_result *r = NULL;
    rp_status st = rp_broker_connect(o, &r);
    rp_broker_result_free(r);
    return st;
}

static rp_push_server *bind_push_server(const char *ep, const char *service) {
    rp_push_server_options *o = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &o));
    if (service) CHECK_OK(rp_push_server_options_set_service(o, service));
    rp_push_server *s = NULL;
    CHECK_OK(rp_push_server_bind(o, &s));
    return s;
}

/* Runs as a user the permission bits apply to (root is not one: the caller drops to nobody). */
static int permission_checks(void) {
    char dir[] = "/tmp/rpdiagXXXXXX";
    if (mkdtemp(dir) == NULL) return 2;
    char ep[512];

    /* bind: the socket's directory exists but is not writable. */
    CHECK(chmod(dir, 0500) == 0);
    snprintf(ep, sizeof ep, "%s/ro.sock", dir);
    rp_push_server_options *o = NULL;
    CHECK_OK(rp_push_server_options_new(ep, &o));
    rp_push_server *s = NULL;
    CHECK_STATUS(rp_push_server_bind(o, &s), RP_STATUS_PERMISSION_DENIED);
    CHECK_LAST_ERROR_CONTAINS("ro.sock");
    CHECK(s == NULL);
    CHECK(chmod(dir, 0700) == 0);

    /* connect: the socket file is there, but its mode lets nobody connect. */
    snprintf(ep, sizeof ep, "%s/locked.sock", dir);
    s = bind_push_server(ep, NULL);
    CHECK(chmod(ep, 0) == 0);
    rp_push_worker *c = NULL;
    CHECK_STATUS(connect_worker(ep, &c), RP_STATUS_PERMISSION_DENIED);
    CHECK_LAST_ERROR_CONTAINS("locked.sock");
    CHECK_STATUS(connect_broker(ep, "echo", "1.0.0"), RP_STATUS_PERMISSION_DENIED);
    rp_push_server_free(s);
    rmdir(dir);
    return check_failures;
}

static void permission_denied(void) {
    pid_t pid = fork();
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
            fprintf(stderr, "test_diagnostics: cannot drop root to uid 65534 for the permission checks\n");
            _exit(3);
        }
        _exit(permission_checks() == 0 ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A worker pointed at a broker, or at a push server for another service. */
static void worker_told_what_the_peer_is(void) {
    char ep[512], backend[512];
    snprintf(ep, sizeof ep, "%s/broker.sock", g_dir);
    snprintf(backend, sizeof backend, "%s/backend.sock", g_dir);
    rp_broker_server_options *bo = NULL;
    CHECK_OK(rp_broker_server_options_new(ep, &bo));
    CHECK_OK(rp_broker_server_options_add_service(bo, "echo", backend, "1.0.0"));
    rp_broker_server *broker = NULL;
    CHECK_OK(rp_broker_server_bind(bo, &broker));

    rp_push_worker *c = NULL;
    CHECK_STATUS(connect_worker(ep, &c), RP_STATUS_REFUSED);
    CHECK_LAST_ERROR_CONTAINS("refused (SERVICE_UNKNOWN)");
    CHECK_LAST_ERROR_CONTAINS("broker.sock is not a librp push server");
    rp_refusal *refusal = NULL;
    CHECK_OK(rp_last_refusal(&refusal)); /* the refusal itself stays readable */
    CHECK(rp_refusal_code(refusal) == RP_ERROR_CODE_SERVICE_UNKNOWN);
    rp_refusal_free(refusal);
    rp_broker_server_free(broker);

    snprintf(ep, sizeof ep, "%s/other.sock", g_dir);
    rp_push_server *s = bind_push_server(ep, "other-push");
    CHECK_STATUS(connect_worker(ep, &c), RP_STATUS_REFUSED);
    CHECK_LAST_ERROR_CONTAINS("answers to service \"other-push\", not \"librp-push\"");
    rp_push_server_free(s);
}

/* A broker client pointed at a push server. */
static void broker_client_told_what_the_peer_is(void) {
    char ep[512];
    snprintf(ep, sizeof ep, "%s/push.sock", g_dir);
    rp_push_server *s = bind_push_server(ep, NULL);
    /* The push server's own service: it negotiates, but names no backend. */
    CHECK_STATUS(connect_broker(ep, "librp-push", "1.0.0"), RP_STATUS_PROTOCOL);
    CHECK_LAST_ERROR_CONTAINS("push.sock is not a broker");
    /* Another service: the push server refuses and says what it is. */
    CHECK_STATUS(connect_broker(ep, "echo", "1.0.0"), RP_STATUS_REFUSED);
    CHECK_LAST_ERROR_CONTAINS("is a librp push server, not a broker");
    rp_push_server_free(s);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    snprintf(g_dir, sizeof g_dir, "/tmp/rpdiagXXXXXX");
    if (mkdtemp(g_dir) == NULL) return 2;
    permission_denied();
    worker_told_what_the_peer_is();
    broker_client_told_what_the_peer_is();
    rmdir(g_dir);
    return CHECK_DONE("test_diagnostics");
}
