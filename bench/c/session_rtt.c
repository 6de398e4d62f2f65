/* librp session round trip through the C API: rp_session_call of 64 bytes to a peer process
 * whose dispatcher answers with them (rp_session_dispatch on its main thread), over a Unix
 * socket pair. The same shape as push_rtt, through the session's reader thread instead. */
#include "bench.h"

#include <rp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void echo(void *user_data, rp_session_request *request) {
    (void)user_data;
    rp_bytes p = rp_session_request_payload(request);
    if (rp_session_respond(request, p.ptr, p.len) != RP_STATUS_OK) {
        /* the caller gave up on this call: nothing to do */
    }
}

static int peer(int fd) {
    rp_conn *conn = NULL;
    rp_session *session = NULL;
    if (rp_conn_adopt_fd(fd, &conn) != RP_STATUS_OK) return 1;
    if (rp_session_new(conn, RP_SESSION_SIDE_ACCEPTING, echo, NULL, NULL, &session) != RP_STATUS_OK) return 1;
    size_t handled = 0;
    while (rp_session_dispatch(session, -1, &handled) == RP_STATUS_OK) {
    }
    rp_session_free(session);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--peer") == 0) return peer(atoi(argv[2]));
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        char arg[16];
        snprintf(arg, sizeof arg, "%d", fds[1]);
        bench_exec_self(argv[0], "--peer", arg);
        _exit(127);
    }
    close(fds[1]);
    rp_conn *conn = NULL;
    rp_session *session = NULL;
    if (rp_conn_adopt_fd(fds[0], &conn) != RP_STATUS_OK) return 1;
    if (rp_session_new(conn, RP_SESSION_SIDE_CONNECTING, NULL, NULL, NULL, &session) != RP_STATUS_OK) return 1;
    uint8_t payload[BENCH_MSG];
    memset(payload, 'x', sizeof payload);
    size_t n = bench_iterations();
    size_t warmup = bench_warmup();
    uint64_t *samples = malloc(n * sizeof *samples);
    for (size_t i = 0; i < warmup + n; i++) {
        uint64_t t0 = bench_now_ns();
        rp_msg *reply = NULL;
        rp_status st = rp_session_call(session, 0x7001, payload, sizeof payload, NULL, 5000, &reply);
        if (st != RP_STATUS_OK) {
            char msg[256];
            rp_last_error_message(msg, sizeof msg);
            fprintf(stderr, "call: %s\n", msg);
            return 1;
        }
        if (i >= warmup) samples[i - warmup] = bench_now_ns() - t0;
        if (rp_msg_len(reply) != BENCH_MSG) return 1;
        rp_msg_free(reply);
    }
    rp_session_free(session); /* closes the connection: the peer's dispatch returns CLOSED */
    waitpid(pid, NULL, 0);
    return bench_report("librp_session_rtt", samples, n);
}
