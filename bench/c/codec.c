/* Codec costs on a 64-byte-payload consumer frame: a hand-written zero-copy C decoder (the
 * baseline), rp_frame_decode, rp_mux_poll and rp_frame_encode through the C API.
 *
 *   codec [--only NAME] [--iterations N]
 * prints "RESULT name=codec_NAME ns_per_op=..." lines. Under callgrind, run it twice with
 * different N and divide the difference in instructions by the difference in N. */
#include "bench.h"

#include <rp.h>
#include <string.h>

/* The baseline: parse header and protobuf fields of a Frame into pointers, no copy. */
typedef struct {
    uint32_t kind, protocol;
    uint64_t request_id, deadline;
    const uint8_t *payload, *traceparent, *tracestate;
    size_t payload_len, traceparent_len, tracestate_len;
} c_frame;

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int c_decode(const uint8_t *buf, size_t len, c_frame *f, size_t *used) {
    if (len < 5 || buf[0] != 1) return -1;
    uint32_t body = (uint32_t)buf[1] | (uint32_t)buf[2] << 8 | (uint32_t)buf[3] << 16 | (uint32_t)buf[4] << 24;
    if (body > 16u << 20 || len < 5 + (size_t)body) return -1;
    const uint8_t *p = buf + 5, *end = p + body;
    memset(f, 0, sizeof *f);
    while (p < end) {
        uint64_t key, v;
        if (varint(&p, end, &key)) return -1;
        if ((key & 7) == 0) {
            if (varint(&p, end, &v)) return -1;
            switch (key >> 3) {
            case 2: f->kind = (uint32_t)v; break;
            case 3: f->protocol = (uint32_t)v; break;
            case 5: f->request_id = v; break;
            case 7: f->deadline = v; break;
            default: break;
            }
        } else if ((key & 7) == 2) {
            if (varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
            switch (key >> 3) {
            case 4: f->payload = p; f->payload_len = (size_t)v; break;
            case 8: f->traceparent = p; f->traceparent_len = (size_t)v; break;
            case 9: f->tracestate = p; f->tracestate_len = (size_t)v; break;
            default: break;
            }
            p += v;
        } else {
            return -1;
        }
    }
    *used = 5 + body;
    return 0;
}

static volatile size_t sink;

int main(int argc, char **argv) {
    const char *only = NULL;
    size_t n = 5000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--only")) only = argv[i + 1];
        if (!strcmp(argv[i], "--iterations")) n = (size_t)strtoull(argv[i + 1], NULL, 10);
    }
    uint8_t payload[64];
    memset(payload, 'x', sizeof payload);
    rp_frame_view frame;
    if (rp_frame_view_init(&frame) != RP_STATUS_OK) return 1;
    frame.payload_protocol = 0x7001;
    frame.request_id = 123456789;
    frame.payload.ptr = payload;
    frame.payload.len = sizeof payload;
    uint8_t wire[256];
    size_t wire_len = 0;
    if (rp_frame_encode(&frame, wire, sizeof wire, &wire_len) != RP_STATUS_OK) return 1;

    rp_daemon_identity *identity = NULL;
    const rp_mux *mux = NULL;
    const uint32_t served[] = {0x7001};
    if (rp_daemon_identity_new_current("bench", "/tmp/bench.sock", 0, &identity) != RP_STATUS_OK) return 1;
    if (rp_mux_new(identity, served, 1, NULL, NULL, NULL, &mux) != RP_STATUS_OK) return 1;
    rp_daemon_identity_free(identity);

    struct { const char *name; int which; } cases[] = {
        {"c_handwritten_decode", 0}, {"rp_frame_decode", 1}, {"rp_mux_poll", 2}, {"rp_frame_encode", 3}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (only && strcmp(only, cases[c].name) != 0) continue;
        uint64_t t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            size_t used = 0;
            switch (cases[c].which) {
            case 0: {
                c_frame f;
                if (c_decode(wire, wire_len, &f, &used)) return 1;
                sink += f.payload_len + used;
                break;
            }
            case 1: {
                rp_frame_view f;
                if (rp_frame_decode(wire, wire_len, 0, &f, &used) != RP_STATUS_OK) return 1;
                sink += f.payload.len + used;
                break;
            }
            case 2: {
                rp_mux_event ev;
                if (rp_mux_poll(mux, wire, wire_len, &ev) != RP_STATUS_OK) return 1;
                sink += ev.consumed;
                break;
            }
            case 3: {
                uint8_t out[256];
                if (rp_frame_encode(&frame, out, sizeof out, &used) != RP_STATUS_OK) return 1;
                sink += used + out[used - 1];
                break;
            }
            }
        }
        double ns = (double)(bench_now_ns() - t0) / (double)n;
        printf("RESULT name=codec_%s ns_per_op=%.1f n=%zu\n", cases[c].name, ns, n);
    }
    rp_mux_free(mux);
    return 0;
}
