/* rp.h compiles alone as strict C11 and survives being included twice. */
#include "rp.h"
#include "rp.h"

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    rp_frame_view frame;
    rp_status status = rp_frame_view_init(&frame);
    return (status == RP_STATUS_OK && frame.envelope_version == 1 &&
            rp_version_number() == RP_VERSION) ? 0 : 1;
}
