/* Connection handoff, backend side, through the C API: golden acks, accepted / wrong /
 * replayed / expired / short tokens, and 10,000 descriptor handoffs with the process's
 * open-descriptor count unchanged.
 *
 * Usage: test_handoff VECTORS_DIR */
#define _GNU_SOURCE /* nanosleep, socketpair, CMSG_* */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rp.h"
#include "check.h"

static const char *vectors_dir;

/* Offset of the 16 token bytes inside vectors/handoff_offer.hex (header 5, frame fields 8,
 * then the HandoffOffer's token tag and length). */
#define OFFER_TOKEN_OFFSET 15

static unsigned char *read_vector(const char *name, long *len) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", vectors_dir, name);
    unsigned char *bytes = NULL;
    *len = read_hex_file(path, &bytes);
    if (*len < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    return bytes;
}

static int open_fd_count(void) {
    DIR *dir = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(dir) != NULL) n++;
    closedir(dir);
    return n;
}

/* Sends `fd` by SCM_RIGHTS with the `len` bytes at `data` as the message's data. */
static void send_fd_with(int sock, const unsigned char *data, size_t len, int fd) {
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    CHECK(sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Plays the broker: sends `fd` with the 16 token bytes alone, then the offer `sideband` names
 * (the token bytes sent are `sideband`, normally the offer's own). */
static void send_offer_with_token(int sock, const uint8_t *sideband, const unsigned char *offer,
                                  size_t len, int fd) {
    send_fd_with(sock, sideband, RP_HANDOFF_TOKEN_LEN, fd);
    CHECK(write(sock, offer, len) == (ssize_t)len);
}

/* Plays the broker: `fd` with the offer's own 16 token bytes, then the offer. */
static void send_offer_with_fd(int sock, const unsigned char *offer, size_t len, int fd) {
    send_offer_with_token(sock, offer + OFFER_TOKEN_OFFSET, offer, len, fd);
}

/* Plays an earlier librp broker: `fd` with the first byte of `offer`, then the rest. */
static void send_offer_earlier_layout(int sock, const unsigned char *offer, size_t len, int fd) {
    send_fd_with(sock, offer, 1, fd);
    CHECK(write(sock, offer + 1, len - 1) == (ssize_t)(len - 1));
}

/* Reads exactly `len` bytes of the ack and compares them with `want` (if not NULL). */
static void expect_ack(int sock, const unsigned char *want, size_t len) {
    unsigned char buf[256];
    size_t have = 0;
    while (have < 5) {
        ssize_t n = read(sock, buf + have, sizeof buf - have);
        if (n <= 0) break;
        have += (size_t)n;
    }
    CHECK(have >= 5);
    size_t total = 5 + (size_t)(buf[1] | buf[2] << 8 | buf[3] << 16 | (uint32_t)buf[4] << 24);
    while (have < total) {
        ssize_t n = read(sock, buf + have, sizeof buf - have);
        if (n <= 0) break;
        have += (size_t)n;
    }
    CHECK(have == total);
    if (want) CHECK(total == len && memcmp(buf, want, len) == 0);
    rp_frame_view ack;
    size_t used = 0;
    CHECK_OK(rp_frame_decode(buf, have, 0, &ack, &used));
    CHECK(ack.kind == RP_FRAME_KIND_RESPONSE && ack.payload_protocol == RP_PROTOCOL_HANDOFF);
}

static void test_serve_offer_golden_acks(void) {
    long offer_len, accepted_len, rejected_len;
    unsigned char *offer = read_vector("handoff_offer.hex", &offer_len);
    unsigned char *accepted = read_vector("handoff_ack_accepted.hex", &accepted_len);
    unsigned char *rejected = read_vector("handoff_ack_rejected.hex", &rejected_len);
    const rp_handoff_store *store = NULL;
    CHECK_OK(rp_handoff_store_new(0, 0, &store));
    CHECK_OK(rp_handoff_store_insert(store, offer + OFFER_TOKEN_OFFSET, 16));
    CHECK_STATUS(rp_handoff_store_insert(store, offer, 15), RP_STATUS_INVALID_ARGUMENT);

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    for (int round = 0; round < 2; round++) {
        CHECK(write(sv[0], offer, (size_t)offer_len) == offer_len);
        bool ok = false;
        uint64_t correlation = 0;
        CHECK_OK(rp_handoff_serve_offer(store, sv[1], 1000, &ok, &correlation));
        CHECK(correlation == 77);
        /* First round accepted; the replay is rejected with a well-formed ack. */
        CHECK(ok == (round == 0));
        if (round == 0)
            expect_ack(sv[0], accepted, (size_t)accepted_len);
        else
            expect_ack(sv[0], rejected, (size_t)rejected_len);
    }
    /* Nothing sent: the deadline passes. */
    bool ok = false;
    CHECK_STATUS(rp_handoff_serve_offer(store, sv[1], 20, &ok, NULL), RP_STATUS_TIMEOUT);
    /* Peer closed: closed, not a hang. */
    close(sv[0]);
    CHECK_STATUS(rp_handoff_serve_offer(store, sv[1], 1000, &ok, NULL), RP_STATUS_CLOSED);
    close(sv[1]);
    CHECK_STATUS(rp_handoff_serve_offer(NULL, 0, 0, &ok, NULL), RP_STATUS_NULL_ARGUMENT);
    rp_handoff_store_free(store);
    free(offer);
    free(accepted);
    free(rejected);
}

static void test_accept_outcomes_and_leaks(void) {
    long offer_len;
    unsigned char *offer = read_vector("handoff_offer.hex", &offer_len);
    const rp_handoff_store *store = NULL, *expiring = NULL;
    CHECK_OK(rp_handoff_store_new(0, 0, &store));
    CHECK_OK(rp_handoff_store_new(4, 1, &expiring));
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    int before = open_fd_count();

    /* Accepted: the adopted descriptor is the client's connection, close-on-exec. */
    uint8_t token[RP_HANDOFF_TOKEN_LEN];
    CHECK_OK(rp_handoff_store_issue(store, token, sizeof token));
    CHECK_STATUS(rp_handoff_store_issue(store, token, 8), RP_STATUS_BUFFER_TOO_SMALL);
    memcpy(offer + OFFER_TOKEN_OFFSET, token, sizeof token);
    int conn[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
    send_offer_with_fd(sv[0], offer, (size_t)offer_len, conn[1]);
    close(conn[1]);
    int adopted = -1;
    CHECK_OK(rp_handoff_accept(store, sv[1], 1000, &adopted));
    expect_ack(sv[0], NULL, 0);
    CHECK(adopted >= 0 && (fcntl(adopted, F_GETFD) & FD_CLOEXEC));
    CHECK(write(adopted, "hi", 2) == 2);
    char got[2] = {0};
    CHECK(read(conn[0], got, 2) == 2 && memcmp(got, "hi", 2) == 0);
    close(adopted);
    close(conn[0]);

    /* Replayed, wrong, expired: rejected, ack written, received descriptor closed. */
    uint8_t expired[RP_HANDOFF_TOKEN_LEN];
    CHECK_OK(rp_handoff_store_issue(expiring, expired, sizeof expired));
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    uint8_t wrong[RP_HANDOFF_TOKEN_LEN];
    memset(wrong, 0x42, sizeof wrong);
    struct {
        const rp_handoff_store *store;
        const uint8_t *token;
        const char *reason;
    } rejections[] = {
        {store, token, "handoff token is not pending"},
        {store, wrong, "handoff token is not pending"},
        {expiring, expired, "handoff token expired"}};
    for (size_t i = 0; i < sizeof rejections / sizeof rejections[0]; i++) {
        memcpy(offer + OFFER_TOKEN_OFFSET, rejections[i].token, RP_HANDOFF_TOKEN_LEN);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
        send_offer_with_fd(sv[0], offer, (size_t)offer_len, conn[1]);
        close(conn[1]);
        adopted = -1;
        CHECK_STATUS(rp_handoff_accept(rejections[i].store, sv[1], 1000, &adopted),
                     RP_STATUS_REJECTED);
        CHECK_LAST_ERROR_CONTAINS(rejections[i].reason);
        CHECK(adopted == -1);
        expect_ack(sv[0], NULL, 0);
        /* The backend's copy was closed: the client sees end of stream. */
        char byte;
        CHECK(read(conn[0], &byte, 1) == 0);
        close(conn[0]);
    }

    /* The token sent with the descriptor is pending but is not the offer's: a mismatch, as
     * running-process's backend answers it; rejected with an ack, the descriptor closed, no
     * token consumed. */
    CHECK_OK(rp_handoff_store_issue(store, token, sizeof token));
    uint8_t sent[RP_HANDOFF_TOKEN_LEN];
    CHECK_OK(rp_handoff_store_issue(store, sent, sizeof sent));
    memcpy(offer + OFFER_TOKEN_OFFSET, token, sizeof token);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
    send_offer_with_token(sv[0], sent, offer, (size_t)offer_len, conn[1]);
    close(conn[1]);
    adopted = -1;
    CHECK_STATUS(rp_handoff_accept(store, sv[1], 1000, &adopted), RP_STATUS_REJECTED);
    CHECK_LAST_ERROR_CONTAINS("handoff token mismatch");
    CHECK(adopted == -1);
    expect_ack(sv[0], NULL, 0);
    {
        char byte;
        CHECK(read(conn[0], &byte, 1) == 0);
    }
    close(conn[0]);

    /* The earlier layout (the descriptor with the offer's first byte) is still taken. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
    send_offer_earlier_layout(sv[0], offer, (size_t)offer_len, conn[1]);
    close(conn[1]);
    CHECK_OK(rp_handoff_accept(store, sv[1], 1000, &adopted));
    expect_ack(sv[0], NULL, 0);
    close(adopted);
    close(conn[0]);

    /* A short token (8 bytes, which cannot ride as the 16 token bytes): a hand-built offer
     * frame, in the earlier layout. */
    const unsigned char short_offer_payload[] = {0x12, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x20, 0x05};
    rp_frame_view frame;
    CHECK_OK(rp_frame_view_init(&frame));
    frame.payload_protocol = RP_PROTOCOL_HANDOFF;
    frame.request_id = 5;
    frame.payload.ptr = short_offer_payload;
    frame.payload.len = sizeof short_offer_payload;
    unsigned char short_offer[64];
    size_t short_len = 0;
    CHECK_OK(rp_frame_encode(&frame, short_offer, sizeof short_offer, &short_len));
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
    send_offer_earlier_layout(sv[0], short_offer, short_len, conn[1]);
    close(conn[1]);
    CHECK_STATUS(rp_handoff_accept(store, sv[1], 1000, &adopted), RP_STATUS_REJECTED);
    CHECK_LAST_ERROR_CONTAINS("handoff token length was 8 bytes; expected 16");
    expect_ack(sv[0], NULL, 0);
    close(conn[0]);

    /* 10,000 accepted handoffs. */
    int accepted = 0;
    for (int i = 0; i < 10000; i++) {
        CHECK_OK(rp_handoff_store_issue(store, token, sizeof token));
        memcpy(offer + OFFER_TOKEN_OFFSET, token, sizeof token);
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
        send_offer_with_fd(sv[0], offer, (size_t)offer_len, conn[1]);
        close(conn[1]);
        adopted = -1;
        if (rp_handoff_accept(store, sv[1], 1000, &adopted) == RP_STATUS_OK) {
            accepted++;
            close(adopted);
        }
        expect_ack(sv[0], NULL, 0);
        close(conn[0]);
    }
    CHECK(accepted == 10000);
    CHECK(open_fd_count() == before);

    /* The descriptor with 16 token bytes and no offer before the deadline: a timeout, the
     * descriptor closed. */
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, conn) == 0);
    send_fd_with(sv[0], token, sizeof token, conn[1]);
    close(conn[1]);
    CHECK_STATUS(rp_handoff_accept(store, sv[1], 50, &adopted), RP_STATUS_TIMEOUT);
    {
        char byte;
        CHECK(read(conn[0], &byte, 1) == 0);
    }
    close(conn[0]);

    /* No handoff pending: the deadline passes. */
    CHECK_STATUS(rp_handoff_accept(store, sv[1], 20, &adopted), RP_STATUS_TIMEOUT);
    close(sv[0]);
    close(sv[1]);
    rp_handoff_store_free(store);
    rp_handoff_store_free(expiring);
    rp_handoff_store_free(NULL);
    free(offer);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    vectors_dir = argv[1];
    test_serve_offer_golden_acks();
    test_accept_outcomes_and_leaks();
    return CHECK_DONE("test_handoff");
}
