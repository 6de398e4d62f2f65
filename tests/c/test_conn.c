/* rp_conn_adopt_fd: a connected Unix socket (as rp_handoff_accept hands over) becomes a librp
 * connection that sends and receives frames and reports its peer's credentials. */
#include "rp.h"
#include "check.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    rp_conn *conn = NULL;
    CHECK_OK(rp_conn_adopt_fd(sv[0], &conn));
    /* The pollable descriptor is not the socket (it also covers frames librp buffered). */
    CHECK(rp_conn_fd(conn) >= 0 && rp_conn_fd(conn) != sv[0]);
    uint32_t pid = 0, uid = 1, gid = 1;
    CHECK_OK(rp_conn_peer_credentials(conn, &pid, &uid, &gid));
    CHECK(pid == (uint32_t)getpid() && uid == getuid());

    /* A frame sent on the connection arrives intact on the other end... */
    rp_frame_view f;
    CHECK_OK(rp_frame_view_init(&f));
    static const uint8_t hi[] = "adopted";
    f.payload_protocol = 0x7001;
    f.request_id = 9;
    f.payload.ptr = hi;
    f.payload.len = 7;
    CHECK_OK(rp_conn_send(conn, &f));
    uint8_t buf[256];
    ssize_t n = read(sv[1], buf, sizeof buf);
    rp_frame_view got;
    size_t used = 0;
    CHECK(n > 0);
    CHECK_OK(rp_frame_decode(buf, (size_t)n, 0, &got, &used));
    CHECK(got.request_id == 9 && got.payload.len == 7);
    /* ...and one written on the other end is received. */
    CHECK(write(sv[1], buf, (size_t)n) == n);
    rp_frame *back = NULL;
    CHECK_OK(rp_conn_recv(conn, 5000, &back));
    rp_frame_free(back);
    /* Several frames in one call arrive whole and in order. */
    rp_frame_view batch[3];
    for (int i = 0; i < 3; i++) {
        batch[i] = f;
        batch[i].request_id = 100 + (uint64_t)i;
    }
    CHECK_OK(rp_conn_send_many(conn, batch, 3));
    CHECK_OK(rp_conn_send_many(conn, NULL, 0));
    CHECK_STATUS(rp_conn_send_many(conn, NULL, 2), RP_STATUS_NULL_ARGUMENT);
    /* A bad frame anywhere in a batch fails the call and sends none of it. */
    static const char not_utf8[] = {(char)0xff, (char)0xfe};
    rp_frame_view bad_batch[3] = {batch[0], batch[1], batch[2]};
    bad_batch[1].traceparent.ptr = not_utf8;
    bad_batch[1].traceparent.len = sizeof not_utf8;
    CHECK_STATUS(rp_conn_send_many(conn, bad_batch, 3), RP_STATUS_INVALID_UTF8);
    uint8_t many[1024];
    size_t have = 0;
    while (have < 3 * (size_t)n) {
        ssize_t r = read(sv[1], many + have, sizeof many - have);
        CHECK(r > 0);
        if (r <= 0) break;
        have += (size_t)r;
    }
    size_t at = 0;
    for (int i = 0; i < 3; i++) {
        rp_frame_view one;
        size_t used = 0;
        CHECK_OK(rp_frame_decode(many + at, have - at, 0, &one, &used));
        CHECK(one.request_id == 100 + (uint64_t)i && one.payload.len == 7);
        at += used;
    }
    CHECK(at == have);
    /* Nothing of the refused batch followed the good one. */
    CHECK(recv(sv[1], many, sizeof many, MSG_DONTWAIT) < 0);

    /* Frames already received are taken in one call, without a copy, in order; the capacity
     * bounds a call and the rest waits for the next. */
    CHECK(write(sv[1], many, have) == (ssize_t)have);
    rp_frame_view views[8];
    size_t count = 99;
    CHECK_OK(rp_conn_recv_views(conn, 5000, views, 2, &count));
    CHECK(count == 2 && views[0].request_id == 100 && views[1].request_id == 101);
    CHECK(views[1].payload.len == 7 && memcmp(views[1].payload.ptr, "adopted", 7) == 0);
    CHECK_OK(rp_conn_recv_views(conn, 5000, views, 8, &count));
    CHECK(count == 1 && views[0].request_id == 102);
    CHECK_STATUS(rp_conn_recv_views(conn, 0, views, 8, &count), RP_STATUS_TIMEOUT);
    CHECK(count == 0);
    /* A partial frame stays buffered across a timeout and completes later. */
    size_t one_len = have / 3;
    CHECK(write(sv[1], many, 3) == 3);
    CHECK_STATUS(rp_conn_recv_views(conn, 10, views, 8, &count), RP_STATUS_TIMEOUT);
    CHECK(write(sv[1], many + 3, one_len - 3) == (ssize_t)(one_len - 3));
    CHECK_OK(rp_conn_recv_views(conn, 5000, views, 8, &count));
    CHECK(count == 1 && views[0].request_id == 100);
    /* A malformed frame after a good one: the good one now, the error on the next call. */
    static const uint8_t malformed[] = {0x01, 2, 0, 0, 0, 0xff, 0xff};
    CHECK(write(sv[1], many, one_len) == (ssize_t)one_len);
    CHECK(write(sv[1], malformed, sizeof malformed) == (ssize_t)sizeof malformed);
    usleep(20000);
    CHECK_OK(rp_conn_recv_views(conn, 5000, views, 8, &count));
    CHECK(count == 1 && views[0].request_id == 100);
    CHECK_STATUS(rp_conn_recv_views(conn, 5000, views, 8, &count), RP_STATUS_MALFORMED);
    CHECK(count == 0);
    /* Bad arguments. */
    CHECK_STATUS(rp_conn_recv_views(conn, 0, NULL, 8, &count), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_conn_recv_views(conn, 0, views, 8, NULL), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_conn_recv_views(conn, 0, views, 0, &count), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_conn_recv_views(NULL, 0, views, 8, &count), RP_STATUS_NULL_ARGUMENT);

    /* The peer going away is CLOSED. */
    close(sv[1]);
    back = NULL;
    CHECK_STATUS(rp_conn_recv(conn, 5000, &back), RP_STATUS_CLOSED);
    rp_conn_free(conn); /* closes sv[0] */
    CHECK(write(sv[0], "x", 1) == -1);

    /* Bad arguments: a negative fd is refused; a NULL out pointer still consumes the fd. */
    CHECK_STATUS(rp_conn_adopt_fd(-1, &conn), RP_STATUS_INVALID_ARGUMENT);
    int sv2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
    CHECK_STATUS(rp_conn_adopt_fd(sv2[0], NULL), RP_STATUS_NULL_ARGUMENT);
    CHECK(close(sv2[0]) == -1); /* already closed by librp */
    close(sv2[1]);
    return CHECK_DONE("test_conn");
}
