/* session_echo: two processes on one connection calling each other with rp_session_*.
 *
 * The parent makes a socket pair and forks. The parent is the connecting side, the child the
 * accepting side. Each side starts three calls to the other ("hello 0..2 from parent/child"),
 * serves the other side's three calls with an echo dispatcher, then prints the answers it got.
 * Both exit by themselves; the exit code is 0 when every answer matched.
 *
 *   ./session_echo
 */
#include "rp.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ECHO_PROTOCOL 0xF100u /* a private-use consumer protocol */
#define CALLS 3

/* Answers every request with "echo: " + its payload. Runs inside rp_session_dispatch. */
static void echo(void *user_data, rp_session_request *request) {
    int *served = (int *)user_data;
    rp_bytes in = rp_session_request_payload(request);
    char out[256];
    int len = snprintf(out, sizeof out, "echo: %.*s", (int)in.len, (const char *)in.ptr);
    /* rp_session_respond consumes the request, whatever it returns. */
    if (rp_session_respond(request, (const uint8_t *)out, (size_t)len) == RP_STATUS_OK) (*served)++;
}

static void print_error(const char *who, const char *what, rp_status st) {
    char msg[256];
    rp_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: %s: %s (%s)\n", who, what, rp_status_str(st), msg);
}

/* One side: call the peer CALLS times, serve its CALLS calls, print the answers. */
static int run_side(const char *who, int fd, rp_session_side side) {
    rp_conn *conn = NULL;
    rp_status st = rp_conn_adopt_fd(fd, &conn);
    if (st != RP_STATUS_OK) return print_error(who, "adopt", st), 1;
    int served = 0;
    rp_session *session = NULL;
    st = rp_session_new(conn, side, echo, &served, NULL, &session);
    if (st != RP_STATUS_OK) return print_error(who, "session", st), 1;

    rp_session_ticket *calls[CALLS] = {NULL};
    for (int i = 0; i < CALLS; i++) {
        char text[64];
        int len = snprintf(text, sizeof text, "hello %d from the %s", i, who);
        st = rp_session_call_start(session, ECHO_PROTOCOL, (const uint8_t *)text, (size_t)len, NULL, &calls[i]);
        if (st != RP_STATUS_OK) print_error(who, "call", st);
    }
    while (served < CALLS) {
        st = rp_session_dispatch(session, 5000, NULL);
        if (st != RP_STATUS_OK) {
            print_error(who, "dispatch", st);
            break;
        }
    }
    int failures = served == CALLS ? 0 : 1;
    for (int i = 0; i < CALLS; i++) {
        rp_msg *answer = NULL;
        st = calls[i] ? rp_session_ticket_wait(calls[i], 5000, &answer) : RP_STATUS_CLOSED;
        if (st == RP_STATUS_OK) {
            printf("%s got call %llu answered: %.*s\n", who, (unsigned long long)rp_session_ticket_id(calls[i]),
                   (int)rp_msg_len(answer), (const char *)rp_msg_data(answer));
            rp_msg_free(answer);
        } else {
            print_error(who, "wait", st);
            failures++;
        }
        rp_session_ticket_free(calls[i]);
    }
    rp_session_free(session);
    return failures == 0 ? 0 : 1;
}

int main(void) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return perror("socketpair"), 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return perror("fork"), 1;
    if (pid == 0) {
        close(fds[0]);
        return run_side("child", fds[1], RP_SESSION_SIDE_ACCEPTING);
    }
    close(fds[1]);
    int rc = run_side("parent", fds[0], RP_SESSION_SIDE_CONNECTING);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
    printf("session_echo: %s\n", rc == 0 ? "both sides answered every call" : "FAILED");
    return rc;
}
