#!/bin/sh
# Cargo's runner for x86_64-pc-windows-gnu (CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER): runs a
# Windows executable under Wine, with the ProcessPrng stand-in (RP_WINE_PRNG_DLL, built by
# scripts/windows.sh) next to it.
set -eu
exe=$1
shift
dir=$(dirname "$exe")
if [ -n "${RP_WINE_PRNG_DLL:-}" ] && ! cmp -s "$RP_WINE_PRNG_DLL" "$dir/bcryptprimitives.dll"; then
    cp "$RP_WINE_PRNG_DLL" "$dir/bcryptprimitives.dll"
fi
exec wine "$exe" "$@"
