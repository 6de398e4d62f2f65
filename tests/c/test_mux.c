/* The endpoint multiplexer through the C API: every case of vectors/mux_cases.json (flattened
 * into vectors/mux_cases.tsv by tests/mux_cases.rs), the golden probe replies, partial frames
 * byte by byte, the response helper, callbacks and argument errors.
 *
 * Usage: test_mux VECTORS_DIR */
#define _GNU_SOURCE /* getline, memmem, realpath */

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rp.h"
#include "check.h"

static const char *vectors_dir;

/* Decodes lowercase hex ("-" is empty) into a new buffer; returns the length. */
static size_t hex_decode(const char *hex, unsigned char **out) {
    size_t n = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2;
    unsigned char *bytes = (unsigned char *)malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned int b = 0;
        sscanf(hex + 2 * i, "%2x", &b);
        bytes[i] = (unsigned char)b;
    }
    *out = bytes;
    return n;
}

static int bytes_equal_hex(const uint8_t *ptr, size_t len, const char *hex) {
    unsigned char *want;
    size_t want_len = hex_decode(hex, &want);
    int equal = want_len == len && (len == 0 || memcmp(ptr, want, len) == 0);
    free(want);
    return equal;
}

static int str_equal(rp_str s, const char *want) {
    if (strcmp(want, "-") == 0) want = "";
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.ptr, want, s.len) == 0);
}

static unsigned char *read_vector(const char *name, long *len) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", vectors_dir, name);
    unsigned char *bytes = NULL;
    *len = read_hex_file(path, &bytes);
    if (*len < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    return bytes;
}

/* ---- the legacy detector of the vectors: empty -> need more; first byte == magic -> legacy */

typedef struct detector_state {
    uint8_t magic;
    int calls;
} detector_state;

static int frees = 0;

static int32_t magic_detector(void *user_data, const uint8_t *buf, size_t len) {
    detector_state *state = (detector_state *)user_data;
    state->calls++;
    if (len == 0) return RP_LEGACY_VERDICT_NEED_MORE;
    return buf[0] == state->magic ? RP_LEGACY_VERDICT_LEGACY : RP_LEGACY_VERDICT_NOT_LEGACY;
}

static void free_detector(void *user_data) {
    frees++;
    free(user_data);
}

static int32_t bogus_detector(void *user_data, const uint8_t *buf, size_t len) {
    (void)user_data;
    (void)buf;
    (void)len;
    return 42;
}

/* The identity of vectors/probe_response_legacy.hex, built field by field. */
static rp_daemon_identity *fixed_identity(int legacy_sha) {
    rp_daemon_identity *id = NULL;
    CHECK_OK(rp_daemon_identity_new(&id));
    CHECK_OK(rp_daemon_identity_set_pid(id, 4242));
    CHECK_OK(rp_daemon_identity_set_exe_path(id, "/opt/rp-demo/bin/rp-demo-backend"));
    CHECK_OK(rp_daemon_identity_set_endpoint(id, "rp-demo-ns", "/tmp/rp-demo/backend.sock"));
    CHECK_OK(rp_daemon_identity_set_started_at_unix_ms(id, 1700000000000ull));
    CHECK_OK(rp_daemon_identity_set_boot_id(id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"));
    CHECK_OK(rp_daemon_identity_set_idle_timeout_secs(id, 600));
    uint8_t hash[32], sha[32];
    for (int i = 0; i < 32; i++) {
        hash[i] = (uint8_t)(0xa0 + i);
        sha[i] = 0x5a;
    }
    CHECK_OK(rp_daemon_identity_set_exe_hash(id, "blake3", hash, sizeof hash));
    if (legacy_sha)
        CHECK_OK(rp_daemon_identity_set_legacy_exe_sha256(id, sha, sizeof sha));
    else
        CHECK_OK(rp_daemon_identity_set_legacy_exe_sha256(id, NULL, 0));
    return id;
}

/* Splits a TSV line in place into at most `max` fields; returns the count. */
static int split_tabs(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        fields[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab) break;
        *tab = 0;
        p = tab + 1;
    }
    char *nl = strchr(fields[n - 1], '\n');
    if (nl) *nl = 0;
    return n;
}

enum { F_NAME, F_MAGIC, F_SERVED, F_INPUT, F_VERDICT, F_CONSUMED, F_REPLY, F_ERROR, F_KIND,
       F_ENVELOPE, F_PROTOCOL, F_REQUEST_ID, F_DEADLINE, F_PAYLOAD, F_TRACEPARENT, F_TRACESTATE,
       F_COUNT };

static const rp_mux *mux_for(const rp_daemon_identity *id, const char *served_list,
                             const char *magic) {
    uint32_t served[16];
    size_t count = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", served_list);
    for (char *tok = strtok(list, ","); tok && count < 16; tok = strtok(NULL, ","))
        served[count++] = (uint32_t)strtoul(tok, NULL, 16);
    const rp_mux *mux = NULL;
    if (strcmp(magic, "-") == 0) {
        CHECK_OK(rp_mux_new(id, served, count, NULL, NULL, NULL, &mux));
    } else {
        detector_state *state = (detector_state *)calloc(1, sizeof *state);
        state->magic = (uint8_t)strtoul(magic, NULL, 16);
        CHECK_OK(rp_mux_new(id, served, count, magic_detector, state, free_detector, &mux));
    }
    return mux;
}

static rp_status expected_error_status(const char *kind, rp_status got) {
    if (strcmp(kind, "UnservedPayloadProtocol") == 0) return RP_STATUS_UNSERVED_PROTOCOL;
    if (strcmp(kind, "UnexpectedFirstPartyFrame") == 0) return RP_STATUS_FIRST_PARTY_FRAME;
    if (strcmp(kind, "MalformedProbe") == 0) return RP_STATUS_MALFORMED_PROBE;
    if (strcmp(kind, "Framing") == 0) {
        /* The reference has one framing error; librp says which rule broke. */
        if (got == RP_STATUS_TOO_LARGE || got == RP_STATUS_MALFORMED ||
            got == RP_STATUS_UNSUPPORTED_FRAMING)
            return got;
        return RP_STATUS_MALFORMED;
    }
    fprintf(stderr, "unknown error kind %s\n", kind);
    return RP_STATUS_PANIC;
}

static int run_case(const rp_daemon_identity *id, char **f) {
    int failures_before = check_failures;
    const rp_mux *mux = mux_for(id, f[F_SERVED], f[F_MAGIC]);
    unsigned char *input;
    size_t len = hex_decode(f[F_INPUT], &input);
    rp_mux_event ev;
    memset(&ev, 0xab, sizeof ev);
    rp_status st = rp_mux_poll(mux, len ? input : NULL, len, &ev);
    const char *verdict = f[F_VERDICT];

    if (strcmp(verdict, "Error") == 0) {
        CHECK_STATUS(st, expected_error_status(f[F_ERROR], st));
        CHECK(rp_last_error_message(NULL, 0) > 0);
    } else {
        CHECK_OK(st);
        if (strcmp(verdict, "NeedMoreBytes") == 0) {
            CHECK(ev.kind == RP_MUX_EVENT_KIND_NEED_MORE_BYTES);
            CHECK(ev.consumed == 0);
        } else if (strcmp(verdict, "Legacy") == 0) {
            CHECK(ev.kind == RP_MUX_EVENT_KIND_LEGACY);
            CHECK(ev.consumed == 0);
        } else if (strcmp(verdict, "ProbeAnswered") == 0) {
            CHECK(ev.kind == RP_MUX_EVENT_KIND_PROBE_ANSWERED);
            CHECK(ev.consumed == strtoull(f[F_CONSUMED], NULL, 10));
            CHECK(bytes_equal_hex(ev.reply.ptr, ev.reply.len, f[F_REPLY]));
        } else if (strcmp(verdict, "Payload") == 0) {
            CHECK(ev.kind == RP_MUX_EVENT_KIND_PAYLOAD);
            CHECK(ev.consumed == strtoull(f[F_CONSUMED], NULL, 10));
            CHECK(ev.frame.kind == atoi(f[F_KIND]));
            CHECK(ev.frame.envelope_version == strtoul(f[F_ENVELOPE], NULL, 10));
            CHECK(ev.frame.payload_protocol == strtoul(f[F_PROTOCOL], NULL, 16));
            CHECK(ev.frame.request_id == strtoull(f[F_REQUEST_ID], NULL, 10));
            CHECK(ev.frame.deadline_unix_ms == strtoull(f[F_DEADLINE], NULL, 10));
            CHECK(bytes_equal_hex(ev.frame.payload.ptr, ev.frame.payload.len, f[F_PAYLOAD]));
            /* Zero copy: the payload view points into the polled buffer. */
            CHECK(ev.frame.payload.ptr >= input && ev.frame.payload.ptr + ev.frame.payload.len <= input + len);
            CHECK(str_equal(ev.frame.traceparent, f[F_TRACEPARENT]));
            CHECK(str_equal(ev.frame.tracestate, f[F_TRACESTATE]));
        } else {
            fprintf(stderr, "unknown verdict %s\n", verdict);
            check_failures++;
        }
        /* Partial frames wait, byte by byte, with nothing consumed. */
        if (ev.consumed > 0) {
            for (size_t n = 0; n < ev.consumed; n++) {
                rp_mux_event part;
                CHECK_OK(rp_mux_poll(mux, input, n, &part));
                CHECK(part.kind == RP_MUX_EVENT_KIND_NEED_MORE_BYTES && part.consumed == 0);
            }
        }
    }
    free(input);
    int frees_before = frees;
    rp_mux_free(mux);
    if (strcmp(f[F_MAGIC], "-") != 0) CHECK(frees == frees_before + 1);
    if (check_failures != failures_before) fprintf(stderr, "  ^ in case \"%s\"\n", f[F_NAME]);
    return 1;
}

static void test_all_cases(void) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mux_cases.tsv", vectors_dir);
    FILE *tsv = fopen(path, "r");
    if (!tsv) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    rp_daemon_identity *id = fixed_identity(1);
    char *line = NULL;
    size_t cap = 0;
    int cases = 0;
    while (getline(&line, &cap, tsv) > 0) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *f[F_COUNT];
        int n = split_tabs(line, f, F_COUNT);
        CHECK(n == F_COUNT);
        if (n == F_COUNT) cases += run_case(id, f);
    }
    free(line);
    fclose(tsv);
    rp_daemon_identity_free(id);
    CHECK(cases >= 20);
    printf("mux cases: %d checked\n", cases);
}

static void test_golden_probe_replies(void) {
    long probe_len, legacy_len, zeros_len;
    unsigned char *probe = read_vector("probe_request.hex", &probe_len);
    unsigned char *legacy = read_vector("probe_response_legacy.hex", &legacy_len);
    unsigned char *zeros = read_vector("probe_response_blake3_only.hex", &zeros_len);
    for (int with_sha = 0; with_sha <= 1; with_sha++) {
        rp_daemon_identity *id = fixed_identity(with_sha);
        const uint32_t served[] = {0x7001};
        const rp_mux *mux = NULL;
        CHECK_OK(rp_mux_new(id, served, 1, NULL, NULL, NULL, &mux));
        rp_daemon_identity_free(id); /* the mux keeps its own copy */
        rp_mux_event ev;
        CHECK_OK(rp_mux_poll(mux, probe, (size_t)probe_len, &ev));
        CHECK(ev.kind == RP_MUX_EVENT_KIND_PROBE_ANSWERED);
        CHECK(ev.consumed == (size_t)probe_len);
        const unsigned char *want = with_sha ? legacy : zeros;
        long want_len = with_sha ? legacy_len : zeros_len;
        CHECK(ev.reply.len == (size_t)want_len && memcmp(ev.reply.ptr, want, ev.reply.len) == 0);
        rp_mux_free(mux);
    }
    free(probe);
    free(legacy);
    free(zeros);
}

static void test_current_process_identity(void) {
    rp_daemon_identity *id = NULL;
    CHECK_OK(rp_daemon_identity_new_current("ns", "/tmp/test_mux.sock",
                                            RP_DAEMON_IDENTITY_LEGACY_SHA256, &id));
    CHECK_STATUS(rp_daemon_identity_new_current("ns", "/tmp/x", 0x80, &id),
                 RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_daemon_identity_new_current(NULL, "/tmp/x", 0, &id), RP_STATUS_NULL_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("endpoint_namespace");
    size_t needed = 0;
    CHECK_STATUS(rp_daemon_identity_encode(id, NULL, 0, &needed), RP_STATUS_BUFFER_TOO_SMALL);
    CHECK(needed > 34 + 32);
    unsigned char *bytes = (unsigned char *)malloc(needed);
    size_t written = 0;
    CHECK_OK(rp_daemon_identity_encode(id, bytes, needed, &written));
    CHECK(written == needed);
    /* The canonical executable path appears in the identity, and so does the endpoint. */
    char exe[PATH_MAX];
    CHECK(realpath("/proc/self/exe", exe) != NULL);
    CHECK(memmem(bytes, written, exe, strlen(exe)) != NULL);
    CHECK(memmem(bytes, written, "/tmp/test_mux.sock", 18) != NULL);
    CHECK(bytes[written - 34] == 0x1a && bytes[written - 33] == 0x20);
    free(bytes);

    long probe_len;
    unsigned char *probe = read_vector("probe_request.hex", &probe_len);
    const rp_mux *mux = NULL;
    CHECK_OK(rp_mux_new(id, NULL, 0, NULL, NULL, NULL, &mux));
    rp_mux_event ev;
    CHECK_OK(rp_mux_poll(mux, probe, (size_t)probe_len, &ev));
    CHECK(ev.kind == RP_MUX_EVENT_KIND_PROBE_ANSWERED);
    /* The reply decodes as a RESPONSE frame whose payload starts with the echoed nonce. */
    rp_frame_view reply;
    size_t reply_len = 0;
    CHECK_OK(rp_frame_decode(ev.reply.ptr, ev.reply.len, 0, &reply, &reply_len));
    CHECK(reply_len == ev.reply.len);
    CHECK(reply.kind == RP_FRAME_KIND_RESPONSE);
    CHECK(reply.payload_protocol == RP_PROTOCOL_IDENTITY_PROBE);
    CHECK(reply.request_id == 0x0706050403020100ull);
    CHECK(reply.payload.len == 32 + written && memcmp(reply.payload.ptr, probe + 13, 32) == 0);
    free(probe);
    rp_mux_free(mux);
    rp_daemon_identity_free(id);
}

static void test_response_helper(void) {
    long req_len, echo_len;
    unsigned char *req = read_vector("consumer_request_traceparent.hex", &req_len);
    unsigned char *echo = read_vector("consumer_response_echo.hex", &echo_len);
    rp_daemon_identity *id = fixed_identity(0);
    const uint32_t served[] = {0x7001};
    const rp_mux *mux = NULL;
    CHECK_OK(rp_mux_new(id, served, 1, NULL, NULL, NULL, &mux));
    rp_mux_event ev;
    CHECK_OK(rp_mux_poll(mux, req, (size_t)req_len, &ev));
    CHECK(ev.kind == RP_MUX_EVENT_KIND_PAYLOAD);

    size_t needed = 0;
    CHECK_STATUS(rp_frame_encode_response(&ev.frame, ev.frame.payload.ptr, ev.frame.payload.len,
                                          NULL, 0, &needed),
                 RP_STATUS_BUFFER_TOO_SMALL);
    CHECK(needed == (size_t)echo_len);
    unsigned char out[256];
    size_t out_len = 0;
    CHECK_OK(rp_frame_encode_response(&ev.frame, ev.frame.payload.ptr, ev.frame.payload.len, out,
                                      sizeof out, &out_len));
    CHECK(out_len == (size_t)echo_len && memcmp(out, echo, out_len) == 0);
    rp_msg *msg = NULL;
    CHECK_OK(rp_frame_encode_response_msg(&ev.frame, ev.frame.payload.ptr, ev.frame.payload.len,
                                          &msg));
    CHECK(rp_msg_len(msg) == (size_t)echo_len &&
          memcmp(rp_msg_data(msg), echo, (size_t)echo_len) == 0);
    rp_msg_free(msg);
    CHECK_STATUS(rp_frame_encode_response(NULL, NULL, 0, out, sizeof out, &out_len),
                 RP_STATUS_NULL_ARGUMENT);
    rp_mux_free(mux);
    rp_daemon_identity_free(id);
    free(req);
    free(echo);
}

static void test_callbacks_and_arguments(void) {
    rp_daemon_identity *id = fixed_identity(0);
    const uint32_t served[] = {0x7001};
    const uint32_t first_party[] = {0x7001, RP_PROTOCOL_HANDOFF};
    const rp_mux *mux = NULL;

    /* A refused protocol still releases user_data, exactly once, from within rp_mux_new. */
    int before = frees;
    detector_state *state = (detector_state *)calloc(1, sizeof *state);
    CHECK_STATUS(rp_mux_new(id, first_party, 2, magic_detector, state, free_detector, &mux),
                 RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("0xD0FF");
    CHECK(mux == NULL);
    CHECK(frees == before + 1);
    CHECK_STATUS(rp_mux_new(NULL, served, 1, NULL, NULL, NULL, &mux), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_mux_new(id, NULL, 1, NULL, NULL, NULL, &mux), RP_STATUS_NULL_ARGUMENT);

    /* A legacy header whose first byte is the v1 framing byte: the detector wins. */
    state = (detector_state *)calloc(1, sizeof *state);
    state->magic = 0x01;
    CHECK_OK(rp_mux_new(id, served, 1, magic_detector, state, free_detector, &mux));
    const unsigned char legacy[] = {0x01, 0x05, 0x00, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o'};
    rp_mux_event ev;
    CHECK_OK(rp_mux_poll(mux, legacy, sizeof legacy, &ev));
    CHECK(ev.kind == RP_MUX_EVENT_KIND_LEGACY && ev.consumed == 0);
    CHECK(state->calls == 1);
    /* Empty buffers never reach the detector. */
    CHECK_OK(rp_mux_poll(mux, NULL, 0, &ev));
    CHECK(ev.kind == RP_MUX_EVENT_KIND_NEED_MORE_BYTES);
    CHECK(state->calls == 1);
    CHECK_STATUS(rp_mux_poll(NULL, legacy, 1, &ev), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_mux_poll(mux, NULL, 1, &ev), RP_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(rp_mux_poll(mux, legacy, 1, NULL), RP_STATUS_NULL_ARGUMENT);
    /* A second reference keeps the mux (and user_data) alive. */
    const rp_mux *again = rp_mux_clone(mux);
    CHECK(again == mux);
    before = frees;
    rp_mux_free(mux);
    CHECK(frees == before);
    CHECK_OK(rp_mux_poll(again, legacy, sizeof legacy, &ev));
    rp_mux_free(again);
    CHECK(frees == before + 1);
    rp_mux_free(NULL);

    /* Values outside rp_legacy_verdict are errors, never trusted. */
    CHECK_OK(rp_mux_new(id, served, 1, bogus_detector, NULL, NULL, &mux));
    CHECK_STATUS(rp_mux_poll(mux, legacy, sizeof legacy, &ev), RP_STATUS_INVALID_ARGUMENT);
    CHECK_LAST_ERROR_CONTAINS("42");
    rp_mux_free(mux);

    /* Identity setters check their arguments. */
    const uint8_t short_sha[16] = {0};
    CHECK_STATUS(rp_daemon_identity_set_legacy_exe_sha256(id, short_sha, 16),
                 RP_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(rp_daemon_identity_set_exe_path(id, "\xff\xfe"), RP_STATUS_INVALID_UTF8);
    CHECK_STATUS(rp_daemon_identity_set_pid(NULL, 1), RP_STATUS_NULL_ARGUMENT);
    rp_daemon_identity_free(id);
    rp_daemon_identity_free(NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
        return 2;
    }
    vectors_dir = argv[1];
    test_all_cases();
    test_golden_probe_replies();
    test_current_process_identity();
    test_response_helper();
    test_callbacks_and_arguments();
    return CHECK_DONE("test_mux");
}
