#!/usr/bin/env bash
# Fuzz campaign: builds the cargo-fuzz targets (nightly, ASan) and runs each one in turn, one
# process at a time, for SECS seconds (default 240), starting from the committed corpus in
# fuzz/corpus/<target>/. New inputs go to a scratch corpus (WORK, default /tmp/rp-fuzz), crashes
# to WORK/artifacts/<target>/. Prints one line per target: executions, exec/s, edges covered
# (libFuzzer "cov"), features, corpus size, peak RSS, crashes. FUZZ_TIMEOUT sets the seconds one input
# may take (default 1; the session_router, push_loop and broker_loop targets, which start threads and servers,
# want more on a busy machine).
#   scripts/fuzz.sh [SECS] [TARGET...]
# Afterwards, to fold new coverage into the committed corpus (keeps only inputs that add edges):
#   fuzz/target/x86_64-unknown-linux-gnu/release/<t> -merge=1 fuzz/corpus/<t> WORK/<t>
# Line coverage of source files reached by a target's committed corpus (cargo fuzz coverage,
# then llvm-cov of the nightly's LLVM: LLVM_COV, default llvm-cov-22):
#   scripts/fuzz.sh coverage <target> src/push/server.rs [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${1:-}" = coverage ]; then
  t=$2
  shift 2
  cargo +nightly fuzz coverage "$t" "fuzz/corpus/$t" >/dev/null 2>&1
  triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
  "${LLVM_COV:-llvm-cov-22}" report "target/$triple/coverage/$triple/release/$t" \
    -instr-profile="fuzz/coverage/$t/coverage.profdata" "$@" | awk -v t="$t" \
    '$1 ~ /\.rs$/ { printf "%s: %s lines %s, %s covered\n", t, $1, $8, $10 }'
  exit 0
fi
secs=${1:-240}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(frame_decode frame_reader mux_poll push_server push_worker liminal_worker handoff c_api broker_hello session_router push_loop broker_loop)
work=${WORK:-/tmp/rp-fuzz}
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is required: cargo install cargo-fuzz" >&2; exit 1; }
cargo +nightly fuzz build -O >/dev/null
bin=fuzz/target/x86_64-unknown-linux-gnu/release
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$work/artifacts/$t"
  log="$work/$t.log"
  set +e
  "$bin/$t" "$work/$t" "fuzz/corpus/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout="${FUZZ_TIMEOUT:-1}" \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1
  rc=$?
  set -e
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
  cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
  crashes=$(find "$work/artifacts/$t" -type f | wc -l)
  echo "$t: ${secs}s, ${execs:-?} execs, ${rate:-?} exec/s, cov ${cov:-?} edges, ft ${ft:-?}, corpus ${corp:-?}, peak RSS ${rss:-?} MB, crashes/timeouts/OOMs $crashes (exit $rc)"
  [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || status=1
done
exit $status
