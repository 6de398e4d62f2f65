#!/usr/bin/env bash
# Cargo's runner for x86_64-pc-windows-gnu (CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER): runs a
# Windows executable under Wine, with the ProcessPrng stand-in (RP_WINE_PRNG_DLL, built by
# scripts/windows.sh) next to it.
#
# Rust test programs exit with 0 or 101 and print "running N tests" before anything else. One
# that exits with another status having printed nothing never ran: Wine failed to start it (seen
# once in CI, silently, with status 1). That case, and only that one, is said on stderr and run
# once more with Wine's error messages on; every other outcome is the program's own.
set -euo pipefail
exe=$1
shift
dir=$(dirname "$exe")
if [ -n "${RP_WINE_PRNG_DLL:-}" ] && ! cmp -s "$RP_WINE_PRNG_DLL" "$dir/bcryptprimitives.dll"; then
    cp "$RP_WINE_PRNG_DLL" "$dir/bcryptprimitives.dll"
fi
seen=$(mktemp "${TMPDIR:-/tmp}/rp-runner.XXXXXX")
trap 'rm -f "$seen"' EXIT
status=0
wine "$exe" "$@" | tee "$seen" || status=$?
if [ "$status" -eq 0 ] || [ "$status" -eq 101 ] || [ -s "$seen" ]; then
    exit "$status"
fi
echo "runner: Wine ended $(basename "$exe") with status $status before it printed anything;" \
     "running it once more with Wine's error messages on (WINEDEBUG=-all,err+all)" >&2
WINEDEBUG=-all,err+all wine "$exe" "$@"
