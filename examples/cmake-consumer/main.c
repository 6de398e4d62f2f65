/* Links an installed librp, checks header and library agree, and round-trips one frame. */
#include <rp.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    if (rp_version_number() != RP_VERSION) {
        fprintf(stderr, "header %d but library %s\n", RP_VERSION, rp_version_string());
        return 1;
    }
    rp_frame_view frame;
    if (rp_frame_view_init(&frame) != RP_STATUS_OK) return 1;
    static const uint8_t payload[] = "hello from a find_package(rp) consumer";
    frame.payload_protocol = 0x7001;
    frame.request_id = 1;
    frame.payload.ptr = payload;
    frame.payload.len = sizeof payload - 1;

    uint8_t wire[128];
    size_t len = 0;
    if (rp_frame_encode(&frame, wire, sizeof wire, &len) != RP_STATUS_OK) return 1;
    rp_frame_view back;
    size_t used = 0;
    if (rp_frame_decode(wire, len, 0, &back, &used) != RP_STATUS_OK || used != len) return 1;
    if (back.payload.len != frame.payload.len ||
        memcmp(back.payload.ptr, payload, back.payload.len) != 0) return 1;
    printf("librp %s: %zu-byte frame round-tripped: %.*s\n", rp_version_string(), len,
           (int)back.payload.len, (const char *)back.payload.ptr);
    return 0;
}
