// rp.h compiles alone as C++17 (extern "C", typed enums) and survives being included twice.
#include "rp.h"
#include "rp.h"

#include <type_traits>

static_assert(std::is_same<std::underlying_type<rp_status>::type, int32_t>::value,
              "rp_status is a fixed-width 32-bit enum");

int main(int, char **) {
    rp_frame_view frame{};
    rp_status status = rp_frame_view_init(&frame);
    return (status == RP_STATUS_OK && frame.kind == RP_FRAME_KIND_REQUEST &&
            rp_version_number() == RP_VERSION) ? 0 : 1;
}
