/* Binding a socket path creates at most one directory: the socket's own (0700), and only when
 * its parent exists. A path under a missing tree is refused with a clear error and creates
 * nothing. Checked for the session listener and the push server (both bind through librp).
 * A push server or broker can open its socket to one group (mode 0660 and a group; the
 * directory librp creates is then 0710 with that group); modes that give others anything are
 * refused. (tests/security.rs checks that a member of the group gets in and others do not.) */
#include "rp.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char base[] = "/tmp/rp-bind-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    char deep[256], deep_top[256], own[256], own_dir[256];
    snprintf(deep_top, sizeof deep_top, "%s/missing", base);
    snprintf(deep, sizeof deep, "%s/missing/deeper/x.sock", base);
    snprintf(own_dir, sizeof own_dir, "%s/own", base);
    snprintf(own, sizeof own, "%s/own/x.sock", base);

    /* Two missing levels: refused, nothing created, the message says why. */
    rp_session_listener *l = NULL;
    CHECK_STATUS(rp_session_listener_bind(deep, &l), RP_STATUS_IO);
    CHECK(l == NULL);
    CHECK_LAST_ERROR_CONTAINS("parent directory does not exist");
    CHECK(!exists(deep_top));

    rp_push_server_options *po = NULL;
    CHECK_OK(rp_push_server_options_new(deep, &po));
    rp_push_server *server = NULL;
    CHECK_STATUS(rp_push_server_bind(po, &server), RP_STATUS_IO);
    CHECK_LAST_ERROR_CONTAINS("parent directory does not exist");
    CHECK(!exists(deep_top));

    /* One missing level: the socket's own directory is created, owner-only. */
    CHECK_OK(rp_session_listener_bind(own, &l));
    struct stat st;
    CHECK(lstat(own_dir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK((st.st_mode & 0777) == 0700);
    CHECK(lstat(own, &st) == 0 && S_ISSOCK(st.st_mode));
    rp_session_listener_free(l);
    CHECK(!exists(own));

    /* Socket access: this process's own group, mode 0660, on a push server and a broker. */
    char grp_dir[256], grp[256], bgrp_dir[256], bgrp[256];
    snprintf(grp_dir, sizeof grp_dir, "%s/grp", base);
    snprintf(grp, sizeof grp, "%s/grp/p.sock", base);
    snprintf(bgrp_dir, sizeof bgrp_dir, "%s/bgrp", base);
    snprintf(bgrp, sizeof bgrp, "%s/bgrp/b.sock", base);
    CHECK_OK(rp_push_server_options_new(grp, &po));
    CHECK_STATUS(rp_push_server_options_set_socket_access(po, 0666, -1), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("others nothing");
    CHECK_STATUS(rp_push_server_options_set_socket_access(po, 0460, -1), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_push_server_options_set_socket_access(po, 0660, -2), RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_push_server_options_set_socket_access(NULL, 0660, -1), RP_STATUS_NULL_ARGUMENT);
    CHECK_OK(rp_push_server_options_set_socket_access(po, 0660, (int64_t)getgid()));
    rp_push_server_options_set_allow_other_uids(po, true);
    CHECK_OK(rp_push_server_bind(po, &server));
    CHECK(lstat(grp, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0660 && st.st_gid == getgid());
    CHECK(lstat(grp_dir, &st) == 0 && (st.st_mode & 0777) == 0710 && st.st_gid == getgid());
    rp_push_server_free(server);

    rp_broker_server_options *bo = NULL;
    CHECK_OK(rp_broker_server_options_new(bgrp, &bo));
    CHECK_STATUS(rp_broker_server_options_set_socket_access(bo, 0606, -1), RP_STATUS_INVALID_ARGUMENT);
    CHECK_OK(rp_broker_server_options_set_socket_access(bo, 0660, (int64_t)getgid()));
    rp_broker_server_options_set_allow_other_uids(bo, true);
    rp_broker_server *broker = NULL;
    CHECK_OK(rp_broker_server_bind(bo, &broker));
    CHECK(lstat(bgrp, &st) == 0 && (st.st_mode & 0777) == 0660 && st.st_gid == getgid());
    rp_broker_server_free(broker);

    rmdir(grp_dir);
    rmdir(bgrp_dir);
    rmdir(own_dir);
    rmdir(base);
    return CHECK_DONE("test_bind");
}
