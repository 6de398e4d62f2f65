/* Header macros and the loaded library agree on the version. */
#include "rp.h"
#include "check.h"

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    CHECK(rp_version_number() == RP_VERSION);
    CHECK(RP_VERSION == RP_MAKE_VERSION(RP_VERSION_MAJOR, RP_VERSION_MINOR, RP_VERSION_PATCH));
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", RP_VERSION_MAJOR, RP_VERSION_MINOR,
             RP_VERSION_PATCH);
    CHECK(strcmp(rp_version_string(), expected) == 0);
    /* Status names are static, distinct for known codes, and defined for unknown ones. */
    CHECK(strcmp(rp_status_str(RP_STATUS_OK), "ok") == 0);
    CHECK(strcmp(rp_status_str(RP_STATUS_TOO_LARGE), rp_status_str(RP_STATUS_MALFORMED)) != 0);
    CHECK(strcmp(rp_status_str(12345), "unknown status") == 0);
    CHECK(strcmp(rp_status_str(-1), "unknown status") == 0);
    return CHECK_DONE("test_version");
}
