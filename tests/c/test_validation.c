/* Values are checked by the call that receives them: an identity, service name, version or
 * payload protocol outside its rule fails there with RP_STATUS_INVALID_ARGUMENT and the rule in
 * the message, not later as a peer's refusal after a connect. */
#include "rp.h"
#include "check.h"

static char *repeat(char c, size_t n) {
    char *s = (char *)malloc(n + 1);
    memset(s, c, n);
    s[n] = 0;
    return s;
}

static void worker_options(void) {
    rp_push_worker_options *o = NULL;
    CHECK_STATUS(rp_push_worker_options_new("/tmp/x.sock", "", "q", &o), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("identity is 0 bytes long: it must be 1-256 bytes");
    CHECK(o == NULL);
    char *long_id = repeat('w', 299);
    CHECK_STATUS(rp_push_worker_options_new("/tmp/x.sock", long_id, "q", &o), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("identity is 299 bytes long: it must be 1-256 bytes");
    CHECK(o == NULL);
    long_id[257] = 0;
    CHECK_STATUS(rp_push_worker_options_new("/tmp/x.sock", "w", long_id, &o), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("task_queue is 257 bytes long: it must be 0-256 bytes");
    CHECK(o == NULL);
    long_id[256] = 0;
    CHECK_OK(rp_push_worker_options_new("/tmp/x.sock", long_id, "", &o)); /* 256 bytes: the limit */
    CHECK(o != NULL);

    CHECK_STATUS(rp_push_worker_options_set_service(o, "Push_Service"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("service_name \"Push_Service\" is invalid: it must be 1-64 characters of [a-z0-9-]");
    CHECK_STATUS(rp_push_worker_options_set_service(o, ""), RP_STATUS_INVALID_ARGUMENT);
    char *long_name = repeat('s', 65);
    CHECK_STATUS(rp_push_worker_options_set_service(o, long_name), RP_STATUS_INVALID_ARGUMENT);
    long_name[64] = 0;
    CHECK_OK(rp_push_worker_options_set_service(o, long_name));
    CHECK_OK(rp_push_worker_options_set_service(o, "push-2"));
    long_id[256] = 'w';
    long_id[257] = 0;
    CHECK_STATUS(rp_push_worker_options_set_node(o, long_id), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("node is 257 bytes long");
    rp_push_worker_options_free(o);
    free(long_id);
    free(long_name);
}

static void broker_options(void) {
    rp_broker_options *o = NULL;
    CHECK_STATUS(rp_broker_options_new("/tmp/b.sock", "Echo", "1.2.3", "1.2.3", &o), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("service_name \"Echo\" is invalid: it must be 1-64 characters of [a-z0-9-]");
    CHECK(o == NULL);
    static const char *bad_versions[] = {"", "1.2", "v1.2.3", "1.2.3-", "1.2.3-RC1", "1.2.3.4"};
    for (size_t i = 0; i < sizeof bad_versions / sizeof *bad_versions; i++) {
        CHECK_STATUS(rp_broker_options_new("/tmp/b.sock", "echo", bad_versions[i], "1.2.3", &o),
                     RP_STATUS_INVALID_ARGUMENT);
        CHECK_LAST_ERROR_CONTAINS("wanted_version");
        CHECK_LAST_ERROR_CONTAINS("MAJOR.MINOR.PATCH");
        CHECK(o == NULL);
    }
    CHECK_OK(rp_broker_options_new("/tmp/b.sock", "echo", "1.2.3-rc.1", "1.2.3", &o));
    char *long_version = repeat('1', 129);
    CHECK_STATUS(rp_broker_options_set_client_version(o, long_version), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("client_version is 129 bytes long: it must be 0-128 bytes");
    long_version[128] = 0;
    CHECK_OK(rp_broker_options_set_client_version(o, long_version));
    rp_broker_options_free(o);
    free(long_version);
}

static void broker_server_options(void) {
    rp_broker_server_options *o = NULL;
    CHECK_OK(rp_broker_server_options_new("/tmp/b.sock", &o));
    CHECK_STATUS(rp_broker_server_options_add_service(o, "my service", "/tmp/e.sock", "1.0.0"),
                 RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("1-64 characters of [a-z0-9-]");
    CHECK_OK(rp_broker_server_options_add_service(o, "echo", "/tmp/e.sock", "1.0.0"));
    CHECK_STATUS(rp_broker_server_options_allow_version(o, "echo", "1.0"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("version \"1.0\" is invalid: it must be MAJOR.MINOR.PATCH");
    CHECK_STATUS(rp_broker_server_options_block_version(o, "echo", "latest"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_broker_server_options_set_min_version(o, "echo", "1"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_OK(rp_broker_server_options_allow_version(o, "echo", "1.0.0"));
    CHECK_OK(rp_broker_server_options_block_version(o, "echo", "0.9.0"));
    CHECK_OK(rp_broker_server_options_set_min_version(o, "echo", "0.5.0"));
    rp_broker_server_options_free(o);

    rp_push_server_options *po = NULL;
    CHECK_OK(rp_push_server_options_new("/tmp/p.sock", &po));
    CHECK_STATUS(rp_push_server_options_set_service(po, "Push"), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("1-64 characters of [a-z0-9-]");
    CHECK_OK(rp_push_server_options_set_service(po, "push"));
    rp_push_server_options_free(po);
}

static void push_requests(void) {
    rp_push_request *r = NULL;
    static const uint32_t refused[] = {0x0000, 0xAD01, 0xB232, 0xD0FF, 0x1234, 0x6FFF};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        CHECK_STATUS(rp_push_request_new(refused[i], (const uint8_t *)"x", 1, &r), RP_STATUS_INVALID_ARGUMENT);
        CHECK_LAST_ERROR_CONTAINS("payload protocol 0x");
        CHECK(r == NULL);
    }
    CHECK_STATUS(rp_push_request_new(0x0000, NULL, 0, &r), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("first-party");
    CHECK_OK(rp_push_request_new(0x7001, (const uint8_t *)"x", 1, &r));
    CHECK_STATUS(rp_push_request_to_protocol(r, 0xAD01), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("first-party");
    CHECK_OK(rp_push_request_to_protocol(r, 0xF00D));
    rp_push_request_free(r);
    CHECK_OK(rp_push_request_new(0x5350, NULL, 0, &r));
    rp_push_request_free(r);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    worker_options();
    broker_options();
    broker_server_options();
    push_requests();
    return CHECK_DONE("test_validation");
}
