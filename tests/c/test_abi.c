/* The ABI contract in rp.h: a function withdrawn from the header stays exported, so programs
 * linked against an earlier librp.so.0 keep loading and running. Such a program declared it
 * from the old header; this test does the same. */
#include "rp.h"
#include "check.h"

/* Withdrawn in 0.1 (it had no effect); still exported, doing nothing. */
rp_status rp_push_worker_options_set_max_queued(rp_push_worker_options *options, size_t max_queued);

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    rp_push_worker_options *o = NULL;
    CHECK_OK(rp_push_worker_options_new("/tmp/abi.sock", "w", "q", &o));
    CHECK_OK(rp_push_worker_options_set_max_queued(o, 4));
    CHECK_STATUS(rp_push_worker_options_set_max_queued(NULL, 4), RP_STATUS_NULL_ARGUMENT);
    rp_push_worker_options_free(o);
    return CHECK_DONE("test_abi");
}
