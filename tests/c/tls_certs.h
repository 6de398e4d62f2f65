/* Certificates for librp's C TLS tests: a temporary folder filled by tests/tls_certs.sh (the
 * openssl command: a CA, another CA, server and client certificates), paths into it, and the
 * files' contents. Include after check.h; POSIX only. */
#ifndef RP_TEST_TLS_CERTS_H
#define RP_TEST_TLS_CERTS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char tls_certs_dir[64];

/* Makes a temporary folder and the certificates in it with tests/tls_certs.sh (next to the
 * vectors folder `vectors`). Returns 1 when they were made, 0 without openssl, -1 when the
 * folder could not be made. */
static inline int tls_certs_make(const char *vectors) {
    snprintf(tls_certs_dir, sizeof tls_certs_dir, "/tmp/rp-c-tls-XXXXXX");
    if (mkdtemp(tls_certs_dir) == NULL) return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh '%s/../tls_certs.sh' '%s' 2>/dev/null", vectors, tls_certs_dir);
    return system(cmd) == 0;
}

/* Writes the path of the certificate folder's file `name` to `out`. */
static inline void tls_cert_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tls_certs_dir, name);
}

/* Reads the certificate folder's file `name` into a new buffer (NUL-terminated; free it);
 * its length in *len. NULL when it cannot be read. */
static inline uint8_t *tls_cert_read(const char *name, size_t *len) {
    char path[512];
    tls_cert_path(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = (uint8_t *)malloc((size_t)n + 1);
    *len = fread(buf, 1, (size_t)n, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* Removes the certificate folder; 0 on success. */
static inline int tls_certs_remove(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tls_certs_dir);
    return system(cmd);
}

#endif
