/*
 * A stand-in bcryptprimitives.dll for running librp's Windows builds under Wine 8.0.
 *
 * Rust's standard library (1.78 and later) takes its random bytes from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8.0 does not provide, so every Rust executable fails to
 * load there. This DLL exports ProcessPrng and answers it from advapi32's RtlGenRandom
 * (exported as SystemFunction036). scripts/windows.sh builds it and puts it next to the test
 * executables; it is never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
