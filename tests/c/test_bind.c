/* Binding a socket path creates at most one directory: the socket's own (0700), and only when
 * its parent exists. A path under a missing tree is refused with a clear error and creates
 * nothing. Checked for the session listener and the push server (both bind through librp). */
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

    rmdir(own_dir);
    rmdir(base);
    return CHECK_DONE("test_bind");
}
