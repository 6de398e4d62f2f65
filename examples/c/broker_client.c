/* broker_client: reach a service's backend through a running-process broker and exchange one
 * frame with it; or run a librp broker for a backend.
 *
 * Usage:
 *   broker_client BROKER SERVICE VERSION [TEXT]
 *       Connect through the broker at BROKER to SERVICE (wanting VERSION), send TEXT (default
 *       "hello") as a REQUEST on payload protocol 0x7001, print the route and the reply.
 *       Run it twice with --cache FILE first to see the second run skip the Hello:
 *   broker_client --cache FILE BROKER SERVICE VERSION [TEXT]
 *   broker_client --serve BROKER SERVICE BACKEND VERSION
 *       Run a librp broker at BROKER that sends SERVICE clients to BACKEND, until killed.
 *
 * Against the legacy daemon example (which echoes v1 frames on 0x7001):
 *   legacy_daemon /tmp/rp/backend.sock &
 *   broker_client --serve /tmp/rp/broker.sock demo /tmp/rp/backend.sock 1.0.0 &
 *   broker_client /tmp/rp/broker.sock demo 1.0.0 "hi there"
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rp.h"

#define DEMO_PROTOCOL 0x7001u

static int fail(const char *what, rp_status status) {
    char msg[512];
    rp_last_error_message(msg, sizeof msg);
    fprintf(stderr, "broker_client: %s: %s (%s)\n", what, rp_status_str(status), msg);
    if (status == RP_STATUS_REFUSED) {
        rp_refusal *r = NULL;
        if (rp_last_refusal(&r) == RP_STATUS_OK) {
            rp_str reason = rp_refusal_reason(r);
            fprintf(stderr, "broker_client: refusal code %d, retry after %llu ms: %.*s\n", rp_refusal_code(r),
                    (unsigned long long)rp_refusal_retry_after_ms(r), (int)reason.len, reason.ptr);
            rp_refusal_free(r);
        }
    }
    return 1;
}

static int serve(const char *broker, const char *service, const char *backend, const char *version) {
    rp_broker_server_options *o = NULL;
    rp_status s = rp_broker_server_options_new(broker, &o);
    if (s == RP_STATUS_OK) s = rp_broker_server_options_add_service(o, service, backend, version);
    if (s != RP_STATUS_OK) {
        rp_broker_server_options_free(o);
        return fail("options", s);
    }
    rp_broker_server *server = NULL;
    s = rp_broker_server_bind(o, &server);
    if (s != RP_STATUS_OK) return fail("bind", s);
    printf("broker: serving %s -> %s at %s\n", service, backend, broker);
    fflush(stdout);
    for (;;) pause();
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "--serve") == 0) return serve(argv[2], argv[3], argv[4], argv[5]);
    const char *cache_file = NULL;
    if (argc > 2 && strcmp(argv[1], "--cache") == 0) {
        cache_file = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc < 4) {
        fprintf(stderr, "usage: broker_client [--cache FILE] BROKER SERVICE VERSION [TEXT]\n"
                        "       broker_client --serve BROKER SERVICE BACKEND VERSION\n");
        return 2;
    }
    const char *text = argc > 4 ? argv[4] : "hello";

    rp_broker_options *opts = NULL;
    rp_status s = rp_broker_options_new(argv[1], argv[2], argv[3], argv[3], &opts);
    if (s != RP_STATUS_OK) return fail("options", s);
    char cached[1024] = "";
    FILE *f = cache_file ? fopen(cache_file, "r") : NULL;
    if (f) {
        if (fgets(cached, sizeof cached, f) && cached[0] &&
            rp_broker_options_set_cached_endpoint(opts, cached) != RP_STATUS_OK)
            fprintf(stderr, "broker_client: ignoring the cached endpoint %s\n", cached);
        fclose(f);
    }
    s = rp_broker_options_set_adopt_handoff(opts, true, 0);
    if (s != RP_STATUS_OK) {
        rp_broker_options_free(opts);
        return fail("options", s);
    }
    rp_broker_result *result = NULL;
    s = rp_broker_connect(opts, &result); /* consumes opts */
    if (s != RP_STATUS_OK) return fail("connect", s);

    static const char *routes[] = {"hello-skip", "negotiated", "handed off"};
    int route = rp_broker_result_route(result);
    rp_str endpoint = rp_broker_result_endpoint(result);
    printf("route: %s, backend: %.*s\n", route >= 0 && route <= 2 ? routes[route] : "?", (int)endpoint.len, endpoint.ptr);
    if (cache_file && (f = fopen(cache_file, "w")) != NULL) {
        fprintf(f, "%.*s", (int)endpoint.len, endpoint.ptr);
        fclose(f);
    }

    rp_conn *conn = NULL;
    s = rp_broker_result_take_conn(result, &conn);
    rp_broker_result_free(result);
    if (s != RP_STATUS_OK) return fail("take connection", s);
    rp_frame_view frame;
    s = rp_frame_view_init(&frame);
    frame.payload_protocol = DEMO_PROTOCOL;
    frame.request_id = 1;
    frame.payload.ptr = (const uint8_t *)text;
    frame.payload.len = strlen(text);
    if (s == RP_STATUS_OK) s = rp_conn_send(conn, &frame);
    rp_frame *reply = NULL;
    if (s == RP_STATUS_OK) s = rp_conn_recv(conn, 5000, &reply);
    if (s != RP_STATUS_OK) {
        rp_conn_free(conn);
        return fail("exchange", s);
    }
    rp_frame_view got;
    if (rp_frame_view_of(reply, &got) != RP_STATUS_OK) {
        rp_frame_free(reply);
        rp_conn_free(conn);
        return fail("frame view", RP_STATUS_NULL_ARGUMENT);
    }
    printf("reply: %.*s\n", (int)got.payload.len, (const char *)got.payload.ptr);
    int ok = got.payload.len == strlen(text) && memcmp(got.payload.ptr, text, got.payload.len) == 0;
    rp_frame_free(reply);
    rp_conn_free(conn);
    return ok ? 0 : 1;
}
