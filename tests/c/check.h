/* Minimal assertion helpers for librp's C tests: each failure prints where and why, and the
 * test exits non-zero. Include after rp.h. */
#ifndef RP_TEST_CHECK_H
#define RP_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

/* Asserts a call returned the expected rp_status, printing the last error otherwise. */
#define CHECK_STATUS(expr, expected)                                                   \
    do {                                                                               \
        rp_status check_got_ = (expr);                                                 \
        if (check_got_ != (expected)) {                                                \
            char check_msg_[512];                                                      \
            rp_last_error_message(check_msg_, sizeof check_msg_);                      \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s); last error: %s\n", \
                    __FILE__, __LINE__, #expr, (int)check_got_, rp_status_str(check_got_), \
                    (int)(expected), rp_status_str(expected), check_msg_);             \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

#define CHECK_OK(expr) CHECK_STATUS(expr, RP_STATUS_OK)

/* Asserts the calling thread's last error message contains `needle`. */
#define CHECK_LAST_ERROR_CONTAINS(needle)                                              \
    do {                                                                               \
        char check_msg_[512];                                                          \
        rp_last_error_message(check_msg_, sizeof check_msg_);                          \
        if (strstr(check_msg_, (needle)) == NULL) {                                    \
            fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                    check_msg_, (needle));                                             \
            check_failures++;                                                          \
        }                                                                              \
    } while (0)

/* Ends a test: prints a one-line summary and returns the process exit code. */
#define CHECK_DONE(name)                                                               \
    (check_failures == 0 ? (printf("%s: all checks passed\n", (name)), 0)              \
                         : (fprintf(stderr, "%s: %d check(s) failed\n", (name), check_failures), 1))

/* Reads a one-line lowercase hex file into a new buffer; returns its length, or -1. */
static inline long read_hex_file(const char *path, unsigned char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = (char *)malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    text[got] = 0;
    while (got > 0 && (text[got - 1] == '\n' || text[got - 1] == '\r')) text[--got] = 0;
    unsigned char *bytes = (unsigned char *)malloc(got / 2 + 1);
    for (size_t i = 0; i + 1 < got; i += 2) {
        unsigned int b;
        if (sscanf(text + i, "%2x", &b) != 1) { free(text); free(bytes); return -1; }
        bytes[i / 2] = (unsigned char)b;
    }
    free(text);
    *out = bytes;
    return (long)(got / 2);
}

#endif
