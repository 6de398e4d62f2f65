#!/usr/bin/env bash
# Instructions per round trip of the round-trip benchmarks, per side, from callgrind: raw
# Unix-socket ping-pong, librp push, librp session (bench/c) and the reference crate's
# FrameClient and BufWriter/BufReader loops (bench/rust reference_rtt).
#
# Each program runs twice under `valgrind --tool=callgrind --trace-children=yes` with 1,000
# timed round trips and RP_BENCH_WARMUP=2000, then 12000, untimed ones before them; each
# process's instruction count of the second run minus the first, divided by 10,000, is that
# side's instructions per round trip (start-up, the sort of the samples and the report are the
# same in both runs and cancel out). The client is the process the benchmark starts as (the
# pushing server, the session caller, FrameClient); the peer is the process it starts (the
# echo, the push worker, the session dispatcher). Threads count with their process. The counts
# are exact for a given build and do not depend on the machine's load.
#
# Prints one "INSTR name=NAME client=N peer=N" line per benchmark, then a table with the
# client side against the raw ping-pong's client.
#
#   bench/rtt_instr.sh [--no-build] [--out FILE]
# --no-build uses the programs already built (build/bench, bench/rust/target/release);
# --out also appends the INSTR lines to FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

build=1
results=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --out) results="$2"; shift ;;
    *) echo "usage: $0 [--no-build] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

if [ "$build" = 1 ]; then
  bash bench/build.sh uds_pingpong push_rtt session_rtt
  (cd bench/rust && CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} nice -n 10 cargo build --release -q --bin reference_rtt)
fi
out=build/bench
ref=bench/rust/target/release/reference_rtt
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# "CLIENT PEER": instructions of each side over one run with RP_BENCH_WARMUP=$1 (the client
# is the first process valgrind reports; every other process is the peer).
count() {
  local warmup=$1; shift
  RP_BENCH_ITERATIONS=1000 RP_BENCH_WARMUP=$warmup \
    timeout 600 valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null "$@" > "$log" 2>&1 ||
    { echo "callgrind run of $* failed:" >&2; cat "$log" >&2; exit 1; }
  awk '
    match($0, /^==[0-9]+==/) { pid = substr($0, 3, RLENGTH - 4); if (client == "") client = pid }
    / Collected : / { if (pid == client) c += $NF; else p += $NF }
    END { print c + 0, p + 0 }' "$log"
}

lines=()
for name in raw_uds_pingpong librp_push_rtt librp_session_rtt reference_frameclient reference_bufio; do
  case "$name" in
    raw_uds_pingpong) cmd=("$out/uds_pingpong") ;;
    librp_push_rtt) cmd=("$out/push_rtt") ;;
    librp_session_rtt) cmd=("$out/session_rtt") ;;
    reference_*) cmd=("$ref" "${name#reference_}") ;;
  esac
  short=$(count 2000 "${cmd[@]}")
  long=$(count 12000 "${cmd[@]}")
  read -r c1 p1 <<< "$short"
  read -r c2 p2 <<< "$long"
  line="INSTR name=$name client=$(( (c2 - c1) / 10000 )) peer=$(( (p2 - p1) / 10000 ))"
  echo "$line"
  lines+=("$line")
done
if [ -n "$results" ]; then
  printf '%s\n' "${lines[@]}" >> "$results"
fi

printf '%s\n' "${lines[@]}" | awk '
  { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    name[NR] = f["name"]; c[NR] = f["client"]; p[NR] = f["peer"] }
  END {
    printf "\n%-24s %9s %9s %9s %13s\n", "round trip, 64 B", "client", "peer", "both", "client / raw"
    for (i = 1; i <= NR; i++)
      printf "%-24s %9d %9d %9d %13.2f\n", name[i], c[i], p[i], c[i] + p[i], c[i] / c[1]
  }'
