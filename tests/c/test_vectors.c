/* Every golden vector decodes through the C API and re-encodes to identical bytes, into a
 * caller buffer and into a library-owned message. argv[1] is the vectors folder. */
#include "rp.h"
#include "check.h"

#include <dirent.h>

static void round_trip(const char *name, const unsigned char *bytes, size_t len) {
    rp_frame_view frame;
    size_t used = 0;
    CHECK_OK(rp_frame_decode(bytes, len, 0, &frame, &used));
    CHECK(used == len);
    /* Views point into the input buffer. */
    if (frame.payload.len > 0) {
        CHECK(frame.payload.ptr >= bytes && frame.payload.ptr + frame.payload.len <= bytes + len);
    }

    /* Size query, then a too-small buffer, then an exact one. */
    size_t needed = 0;
    CHECK_STATUS(rp_frame_encode(&frame, NULL, 0, &needed), RP_STATUS_BUFFER_TOO_SMALL);
    CHECK(needed == len);
    unsigned char *out = (unsigned char *)malloc(len);
    size_t short_len = 0;
    CHECK_STATUS(rp_frame_encode(&frame, out, len - 1, &short_len), RP_STATUS_BUFFER_TOO_SMALL);
    CHECK(short_len == len);
    size_t written = 0;
    CHECK_OK(rp_frame_encode(&frame, out, len, &written));
    CHECK(written == len);
    if (memcmp(out, bytes, len) != 0) {
        fprintf(stderr, "%s: caller-buffer encoding differs\n", name);
        check_failures++;
    }
    free(out);

    rp_msg *msg = NULL;
    CHECK_OK(rp_frame_encode_msg(&frame, &msg));
    CHECK(msg != NULL);
    CHECK(rp_msg_len(msg) == len);
    if (msg && memcmp(rp_msg_data(msg), bytes, len) != 0) {
        fprintf(stderr, "%s: rp_msg encoding differs\n", name);
        check_failures++;
    }
    rp_msg_free(msg);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    CHECK(dir != NULL);
    if (!dir) return CHECK_DONE("test_vectors");
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t n = strlen(entry->d_name);
        if (n < 5 || strcmp(entry->d_name + n - 4, ".hex") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], entry->d_name);
        unsigned char *bytes = NULL;
        long len = read_hex_file(path, &bytes);
        CHECK(len > 0);
        if (len > 0) {
            round_trip(entry->d_name, bytes, (size_t)len);
            count++;
        }
        free(bytes);
    }
    closedir(dir);
    printf("%d vectors round-tripped\n", count);
    CHECK(count >= 21);
    return CHECK_DONE("test_vectors");
}
