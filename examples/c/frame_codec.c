/*
 * frame_codec: two processes talk v1 frames over a Unix socket pair using only librp's codec.
 *
 * The client sends three REQUEST frames (one with a deadline and W3C trace context), written in
 * awkward 7-byte pieces. The server decodes them incrementally from its own read buffer with
 * rp_frame_decode (no copies), answers each with a RESPONSE echoing request id, protocol and
 * trace context, and the client decodes the answers. Finally the server shows what a foreign
 * first byte does.
 */
#include <rp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROTO_DEMO 0x7001u

static void die(const char *what, rp_status status) {
    char msg[256];
    rp_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: %s (%s)\n", what, rp_status_str(status), msg);
    exit(1);
}

static int send_all(int fd, const uint8_t *buf, size_t len, size_t piece) {
    while (len > 0) {
        size_t n = len < piece ? len : piece;
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads until `on_frame` has seen `want` frames; returns -1 on EOF or a framing error. */
typedef void (*frame_fn)(int fd, const rp_frame_view *frame);
static int read_frames(int fd, int want, frame_fn on_frame) {
    uint8_t buf[4096];
    size_t have = 0;
    int seen = 0;
    while (seen < want) {
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        have += (size_t)r;
        for (;;) {
            rp_frame_view frame;
            size_t used = 0;
            rp_status st = rp_frame_decode(buf, have, 0, &frame, &used);
            if (st == RP_STATUS_INCOMPLETE) break; /* wait for more bytes */
            if (st != RP_STATUS_OK) die("decode", st);
            on_frame(fd, &frame);
            seen++;
            memmove(buf, buf + used, have - used); /* frame is done with: drop its bytes */
            have -= used;
        }
    }
    return 0;
}

static void server_on_request(int fd, const rp_frame_view *req) {
    printf("server: request id=%llu protocol=0x%04x payload=\"%.*s\"%s%.*s\n",
           (unsigned long long)req->request_id, req->payload_protocol, (int)req->payload.len,
           (const char *)req->payload.ptr, req->traceparent.len ? " traceparent=" : "",
           (int)req->traceparent.len, req->traceparent.ptr);
    rp_frame_view resp = *req; /* same id, protocol, trace context; the views stay valid here */
    resp.kind = RP_FRAME_KIND_RESPONSE;
    resp.deadline_unix_ms = 0;
    rp_msg *msg = NULL;
    rp_status st = rp_frame_encode_msg(&resp, &msg);
    if (st != RP_STATUS_OK) die("encode response", st);
    if (send_all(fd, rp_msg_data(msg), rp_msg_len(msg), 1 << 16) != 0) perror("send");
    rp_msg_free(msg);
}

static void client_on_response(int fd, const rp_frame_view *resp) {
    (void)fd;
    printf("client: response id=%llu kind=%d payload=\"%.*s\"\n",
           (unsigned long long)resp->request_id, resp->kind, (int)resp->payload.len,
           (const char *)resp->payload.ptr);
}

static int client(int fd) {
    const char *words[] = {"ping", "encode me", "traced"};
    for (int i = 0; i < 3; i++) {
        rp_frame_view frame;
        rp_status st = rp_frame_view_init(&frame);
        if (st != RP_STATUS_OK) die("init", st);
        frame.payload_protocol = PROTO_DEMO;
        frame.request_id = (uint64_t)(i + 1);
        frame.payload.ptr = (const uint8_t *)words[i];
        frame.payload.len = strlen(words[i]);
        if (i == 2) {
            static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            frame.traceparent.ptr = tp;
            frame.traceparent.len = sizeof tp - 1;
            frame.deadline_unix_ms = 1700000000123ull;
        }
        uint8_t wire[256];
        size_t len = 0;
        st = rp_frame_encode(&frame, wire, sizeof wire, &len);
        if (st != RP_STATUS_OK) die("encode", st);
        if (send_all(fd, wire, len, 7) != 0) return 1;
    }
    return read_frames(fd, 3, client_on_response) == 0 ? 0 : 1;
}

int main(void) {
    printf("librp %s frame codec demo\n", rp_version_string());
    fflush(stdout); /* before fork, so the child does not print it again */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        perror("socketpair");
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        close(sv[0]);
        int rc = client(sv[1]);
        close(sv[1]);
        fflush(stdout);
        _exit(rc);
    }
    close(sv[1]);
    int rc = read_frames(sv[0], 3, server_on_request);
    fflush(stdout);
    int status = 0;
    waitpid(pid, &status, 0);
    close(sv[0]);
    if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "demo failed\n");
        return 1;
    }

    /* What a peer speaking something else looks like: fatal for the connection, with a reason. */
    static const uint8_t http[] = "GET / HTTP/1.1\r\n";
    rp_frame_view frame;
    size_t used;
    rp_status st = rp_frame_decode(http, sizeof http - 1, 0, &frame, &used);
    char why[256];
    rp_last_error_message(why, sizeof why);
    printf("server: foreign bytes -> %s: %s\n", rp_status_str(st), why);
    return st == RP_STATUS_UNSUPPORTED_FRAMING ? 0 : 1;
}
