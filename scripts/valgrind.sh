#!/usr/bin/env bash
# Runs every C test program of a (Release, unsanitized) build under valgrind memcheck and fails on
# any memory error or on any definitely or indirectly lost byte. Prints the leak summary totals.
# Usage: scripts/valgrind.sh BUILD_DIR   (after `cmake --build BUILD_DIR`)
# No suppressions file is used.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}
vectors=$PWD/tests/vectors
if ! command -v valgrind >/dev/null; then
  echo "valgrind is required (apt-get install valgrind)" >&2
  exit 1
fi
logs=$dir/valgrind
mkdir -p "$logs"
definite=0 indirect=0 errors=0 ran=0
for t in "$dir"/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  name=$(basename "$t")
  # TLS encrypts with *ring*'s AES-GCM assembly, whose results memcheck cannot trace as
  # defined (it reports the ciphertext sent, and branches on the decrypted bytes, as
  # uninitialised): for the TLS tests, definedness is not checked; invalid accesses and leaks are.
  undef=()
  case "$name" in test_tls | test_tls_*) undef=(--undef-value-errors=no) ;; esac
  # Children a test forks or re-executes run natively (--trace-children=no); --child-silent-after-fork
  # keeps the forked copies' output out of the log.
  if ! timeout 600 valgrind "${undef[@]}" --leak-check=full --show-leak-kinds=definite,indirect \
       --errors-for-leak-kinds=definite,indirect --error-exitcode=1 --child-silent-after-fork=yes \
       --log-file="$logs/$name.log" "$t" "$vectors" >"$logs/$name.out" 2>&1; then
    echo "valgrind: $name FAILED (log: $logs/$name.log)" >&2
    cat "$logs/$name.log" >&2
    exit 1
  fi
  # Totals from the main process's summaries (a log without a leak summary freed everything).
  d=$(grep -ho "definitely lost: [0-9,]* bytes" "$logs/$name.log" | tr -dc '0-9\n' | awk '{s+=$1} END {print s+0}')
  i=$(grep -ho "indirectly lost: [0-9,]* bytes" "$logs/$name.log" | tr -dc '0-9\n' | awk '{s+=$1} END {print s+0}')
  e=$(grep -ho "ERROR SUMMARY: [0-9,]* errors" "$logs/$name.log" | tr -dc '0-9\n' | awk '{s+=$1} END {print s+0}')
  definite=$((definite + d)); indirect=$((indirect + i)); errors=$((errors + e)); ran=$((ran + 1))
  echo "valgrind: $name ok"
done
echo "valgrind: $ran programs, $errors errors, definitely lost: $definite bytes, indirectly lost: $indirect bytes, suppressions: 0"
[ "$ran" -gt 0 ] || { echo "no C test programs in $dir" >&2; exit 1; }
