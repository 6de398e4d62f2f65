/* The log callback's C side: librp calls rpg_log_tramp on whichever thread logs, and it
 * forwards to the exported Go function rpgoLog (logstats.go). */
#include <rp.h>
#include <stdint.h>

#include "_cgo_export.h"

static void rpg_log_tramp(void *user_data, rp_log_level level, const char *component, const char *message) {
    rpgoLog((uintptr_t)user_data, (int32_t)level, (char *)component, (char *)message);
}

static void rpg_log_free(void *user_data) {
    rpgoFreeHandle((uintptr_t)user_data);
}

int32_t rpg_log_set(int32_t max_level, uintptr_t handle) {
    if (handle == 0) return rp_log_set(max_level, NULL, NULL, NULL);
    return rp_log_set(max_level, rpg_log_tramp, (void *)handle, rpg_log_free);
}
