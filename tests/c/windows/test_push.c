/* Push through the C API on Windows (built with MinGW against rp.dll, run under Wine by
 * scripts/windows.sh; not part of the CMake build, which globs tests/c/test_*.c): a server on a named pipe and one on loopback TCP, a worker on each
 * answering from its own thread, push_wait round trips, and the worker's event HANDLE
 * (rp_push_worker_fd), set exactly while a push waits. */
#include <windows.h>

#include <stdint.h>

#include "rp.h"
#include "check.h"

#define PROTO 0x7001u

static rp_push_server *start_server(const char *endpoint) {
    rp_push_server_options *opts = NULL;
    CHECK_OK(rp_push_server_options_new(endpoint, &opts));
    rp_push_server *server = NULL;
    CHECK_OK(rp_push_server_bind(opts, &server));
    return server;
}

static rp_push_worker *connect_worker(const char *endpoint) {
    rp_push_worker_options *opts = NULL;
    CHECK_OK(rp_push_worker_options_new(endpoint, "c-windows-worker", "q", &opts));
    CHECK_OK(rp_push_worker_options_add_payload_protocol(opts, PROTO));
    CHECK_OK(rp_push_worker_options_add_namespace(opts, "default"));
    rp_push_worker *worker = NULL;
    CHECK_OK(rp_push_worker_connect(opts, &worker));
    return worker;
}

/* Answers every push with "echo:" + payload until the connection ends. */
static DWORD WINAPI echo_loop(LPVOID arg) {
    rp_push_worker *worker = (rp_push_worker *)arg;
    for (;;) {
        rp_push *push = NULL;
        if (rp_push_worker_recv(worker, -1, &push) != RP_STATUS_OK) break;
        rp_bytes p = rp_push_payload(push);
        uint8_t reply[256];
        memcpy(reply, "echo:", 5);
        size_t n = p.len < sizeof reply - 5 ? p.len : sizeof reply - 5;
        if (n) memcpy(reply + 5, p.ptr, n);
        rp_status st = rp_push_worker_reply(worker, rp_push_correlation_id(push), reply, 5 + n);
        rp_push_free(push);
        if (st != RP_STATUS_OK) break;
    }
    return 0;
}

static void push_and_check(rp_push_server *server, const char *payload) {
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)payload, strlen(payload), &req));
    CHECK_OK(rp_push_request_to_task_queue(req, "q"));
    rp_push_result *result = NULL;
    CHECK_OK(rp_push_server_push_wait(server, req, 5000, &result));
    if (result) {
        CHECK(!rp_push_result_is_failure(result));
        rp_bytes r = rp_push_result_payload(result);
        CHECK(r.len == 5 + strlen(payload) && memcmp(r.ptr, "echo:", 5) == 0 &&
              memcmp(r.ptr + 5, payload, strlen(payload)) == 0);
    }
    rp_push_result_free(result);
    rp_push_request_free(req);
}

static void round_trips(const char *endpoint) {
    rp_push_server *server = start_server(endpoint);
    rp_str bound = rp_push_server_endpoint(server);
    char ep[256];
    snprintf(ep, sizeof ep, "%.*s", (int)bound.len, bound.ptr);
    rp_push_worker *worker = connect_worker(ep);
    HANDLE answering = CreateThread(NULL, 0, echo_loop, worker, 0, NULL);
    CHECK(answering != NULL);
    for (int i = 0; i < 100; i++) {
        char payload[32];
        snprintf(payload, sizeof payload, "p%d", i);
        push_and_check(server, payload);
    }
    rp_push_worker_close(worker);
    CHECK(WaitForSingleObject(answering, 5000) == WAIT_OBJECT_0);
    CloseHandle(answering);
    rp_push_worker_free(worker);
    rp_push_server_free(server);
}

/* Whether `event` is reset within `ms` (librp resets it once what set it was taken). */
static int reset_within(HANDLE event, DWORD ms) {
    for (DWORD waited = 0; waited <= ms; waited++) {
        if (WaitForSingleObject(event, 0) == WAIT_TIMEOUT) return 1;
        Sleep(1);
    }
    return 0;
}

static void answer_one(rp_push_worker *worker) {
    rp_push *push = NULL;
    CHECK_OK(rp_push_worker_recv(worker, 0, &push));
    CHECK_OK(rp_push_worker_reply(worker, rp_push_correlation_id(push), (const uint8_t *)"y", 1));
    rp_push_free(push);
}

static void worker_event_is_set_while_a_push_waits(void) {
    char name[128];
    snprintf(name, sizeof name, "\\\\.\\pipe\\rp-c-windows-event-%lu", (unsigned long)GetCurrentProcessId());
    rp_push_server *server = start_server(name);
    rp_push_worker *worker = connect_worker(name);
    HANDLE event = (HANDLE)(intptr_t)rp_push_worker_fd(worker);
    CHECK(WaitForSingleObject(event, 0) == WAIT_TIMEOUT);
    rp_push_request *req = NULL;
    CHECK_OK(rp_push_request_new(PROTO, (const uint8_t *)"x", 1, &req));
    rp_push_ticket *ticket = NULL;
    CHECK_OK(rp_push_server_push(server, req, &ticket));
    CHECK(WaitForSingleObject(event, 5000) == WAIT_OBJECT_0);
    answer_one(worker);
    /* Level-triggered: reset once the only push was taken, set again by the next one, which
     * comes while librp waits on the pipe (a wait on the event alone must see it). */
    CHECK(reset_within(event, 5000));
    rp_push_result *result = NULL;
    CHECK_OK(rp_push_ticket_wait(ticket, 5000, &result));
    rp_push_result_free(result);
    rp_push_ticket_free(ticket);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(rp_push_server_push(server, req, &ticket));
        CHECK(WaitForSingleObject(event, 5000) == WAIT_OBJECT_0);
        answer_one(worker);
        CHECK(reset_within(event, 5000));
        CHECK_OK(rp_push_ticket_wait(ticket, 5000, &result));
        rp_push_result_free(result);
        rp_push_ticket_free(ticket);
    }
    rp_push_request_free(req);
    rp_push_worker_free(worker);
    rp_push_server_free(server);
}

int main(void) {
    char pipe[128];
    snprintf(pipe, sizeof pipe, "rp-c-windows-%lu", (unsigned long)GetCurrentProcessId());
    round_trips(pipe);
    round_trips("tcp://127.0.0.1:0");
    worker_event_is_set_while_a_push_waits();
    if (check_failures) {
        fprintf(stderr, "windows/test_push: %d check(s) failed\n", check_failures);
        return 1;
    }
    printf("windows/test_push: ok\n");
    return 0;
}
