/* Bad input through the C API gets a status and a readable message, never a crash. */
#include "rp.h"
#include "check.h"

static void null_arguments(void) {
    rp_frame_view frame;
    size_t len = 0;
    static const uint8_t one[] = {1};
    CHECK_STATUS(rp_frame_view_init(NULL), RP_STATUS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("frame");
    CHECK_STATUS(rp_frame_decode(NULL, 5, 0, &frame, &len), RP_STATUS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("buf");
    CHECK_STATUS(rp_frame_decode(one, 1, 0, NULL, &len), RP_STATUS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("out_frame");
    CHECK_STATUS(rp_frame_decode(one, 1, 0, &frame, NULL), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_frame_encode(NULL, NULL, 0, &len), RP_STATUS_NULL_ARGUMENT);
    CHECK_OK(rp_frame_view_init(&frame));
    CHECK_STATUS(rp_frame_encode(&frame, NULL, 0, NULL), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_frame_encode(&frame, NULL, 10, &len), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_frame_encode_msg(&frame, NULL), RP_STATUS_NULL_ARGUMENT);
    frame.payload.ptr = NULL;
    frame.payload.len = 3;
    rp_msg *msg = NULL;
    CHECK_STATUS(rp_frame_encode_msg(&frame, &msg), RP_STATUS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("frame.payload");
    CHECK(msg == NULL);
    /* NULL handles are no-ops / neutral values. */
    rp_msg_free(NULL);
    CHECK(rp_msg_len(NULL) == 0);
    CHECK(rp_msg_data(NULL) == NULL);
}

static void hostile_headers(void) {
    rp_frame_view frame;
    size_t len = 0;
    /* A 0xFFFFFFFF length is refused from the header alone: nothing else is read or allocated. */
    static const uint8_t huge[] = {1, 0xff, 0xff, 0xff, 0xff};
    CHECK_STATUS(rp_frame_decode(huge, sizeof huge, 0, &frame, &len), RP_STATUS_TOO_LARGE);
    CHECK_LAST_ERROR_CONTAINS("4294967295");
    /* 16 MiB + 1. */
    static const uint8_t over[] = {1, 0x01, 0x00, 0x00, 0x01};
    CHECK_STATUS(rp_frame_decode(over, sizeof over, 0, &frame, &len), RP_STATUS_TOO_LARGE);
    /* The Hello cap: 64 KiB + 1 is fine on a normal frame but not on a first frame. */
    static const uint8_t hello_over[] = {1, 0x01, 0x00, 0x01, 0x00};
    CHECK_STATUS(rp_frame_decode(hello_over, sizeof hello_over, RP_HELLO_MAX_BODY, &frame, &len),
                 RP_STATUS_TOO_LARGE);
    CHECK_STATUS(rp_frame_decode(hello_over, sizeof hello_over, 0, &frame, &len),
                 RP_STATUS_INCOMPLETE);
    CHECK(len == 5 + 65537);
    CHECK_STATUS(rp_frame_decode(hello_over, sizeof hello_over, RP_FRAME_MAX_BODY + 1, &frame, &len),
                 RP_STATUS_INVALID_ARGUMENT);
    /* A foreign first byte is fatal at once, even before a full header. */
    static const uint8_t http[] = {'G', 'E'};
    CHECK_STATUS(rp_frame_decode(http, sizeof http, 0, &frame, &len), RP_STATUS_UNSUPPORTED_FRAMING);
    CHECK_LAST_ERROR_CONTAINS("unsupported framing version 0x47");
}

static void truncated_and_malformed(void) {
    rp_frame_view frame;
    CHECK_OK(rp_frame_view_init(&frame));
    static const uint8_t payload[] = "0123456789";
    frame.payload_protocol = 0x7001;
    frame.payload.ptr = payload;
    frame.payload.len = 10;
    uint8_t wire[64];
    size_t wire_len = 0;
    CHECK_OK(rp_frame_encode(&frame, wire, sizeof wire, &wire_len));
    /* Every strict prefix is incomplete: a status and a message, never a frame. */
    for (size_t cut = 0; cut < wire_len; cut++) {
        rp_frame_view out;
        size_t needed = 0;
        CHECK_STATUS(rp_frame_decode(wire, cut, 0, &out, &needed), RP_STATUS_INCOMPLETE);
        CHECK(needed > cut && needed <= wire_len);
    }
    CHECK_LAST_ERROR_CONTAINS("incomplete frame");

    /* A complete frame whose body is not protobuf. */
    static const uint8_t garbage[] = {1, 3, 0, 0, 0, 0xff, 0xff, 0xff};
    rp_frame_view out;
    size_t used = 0;
    CHECK_STATUS(rp_frame_decode(garbage, sizeof garbage, 0, &out, &used), RP_STATUS_MALFORMED);
    CHECK_LAST_ERROR_CONTAINS("invalid varint");
    /* A body whose payload length runs past the frame. */
    static const uint8_t overrun[] = {1, 3, 0, 0, 0, 0x22, 0x05, 0x01};
    CHECK_STATUS(rp_frame_decode(overrun, sizeof overrun, 0, &out, &used), RP_STATUS_MALFORMED);
    /* A traceparent that is not UTF-8, on decode and on encode. */
    static const uint8_t bad_utf8[] = {1, 3, 0, 0, 0, 0x42, 0x01, 0xff};
    CHECK_STATUS(rp_frame_decode(bad_utf8, sizeof bad_utf8, 0, &out, &used), RP_STATUS_MALFORMED);
    CHECK_LAST_ERROR_CONTAINS("UTF-8");
    static const char not_utf8[] = "\xc3\x28";
    frame.traceparent.ptr = not_utf8;
    frame.traceparent.len = 2;
    CHECK_STATUS(rp_frame_encode(&frame, wire, sizeof wire, &wire_len), RP_STATUS_INVALID_UTF8);
    CHECK_LAST_ERROR_CONTAINS("traceparent");
}

static void last_error_semantics(void) {
    rp_frame_view frame;
    size_t len;
    static const uint8_t http[] = {'G'};
    CHECK_STATUS(rp_frame_decode(http, 1, 0, &frame, &len), RP_STATUS_UNSUPPORTED_FRAMING);
    size_t full = rp_last_error_message(NULL, 0);
    CHECK(full > 10);
    char tiny[4] = {'x', 'x', 'x', 'x'};
    CHECK(rp_last_error_message(tiny, sizeof tiny) == full);
    CHECK(tiny[3] == '\0' && strlen(tiny) == 3);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    null_arguments();
    hostile_headers();
    truncated_and_malformed();
    last_error_semantics();
    return CHECK_DONE("test_errors");
}
