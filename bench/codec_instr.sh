#!/usr/bin/env bash
# Instructions per operation of the codec benchmarks (bench/c/codec.c), from callgrind: the
# difference between two runs of different lengths, divided by the difference in iterations, so
# start-up costs cancel out. Prints one "INSTR name=codec_NAME instructions_per_op=N" line per
# case, then a table with ratios against the hand-written C decode.
#
#   bench/codec_instr.sh [--no-build] [--out FILE]
# --no-build uses the library already in build/release; --out also writes the INSTR lines to FILE.
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

if [ "$build" = 1 ]; then bash bench/build.sh codec; else bash bench/build.sh --no-lib codec; fi
out=build/bench

# Instructions of one run of `codec --only NAME --iterations N`.
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$out/codec" --only "$1" --iterations "$2" 2>&1 |
    awk '/Collected/ {print $4}'
}

lines=()
for name in c_handwritten_decode rp_frame_decode rp_mux_poll rp_frame_encode; do
  a=$(count "$name" 10000)
  b=$(count "$name" 20000)
  line="INSTR name=codec_$name instructions_per_op=$(( (b - a) / 10000 ))"
  echo "$line"
  lines+=("$line")
done
if [ -n "$results" ]; then
  printf '%s\n' "${lines[@]}" >> "$results"
fi

printf '%s\n' "${lines[@]}" | awk '
  { split($2, n, "="); split($3, v, "="); name[NR] = n[2]; ins[NR] = v[2] }
  END {
    base = ins[1]
    printf "\n%-30s %9s %17s\n", "codec, 64 B payload", "instr/op", "instr / C decode"
    for (i = 1; i <= NR; i++) printf "%-30s %9d %17.2f\n", name[i], ins[i], ins[i] / base
  }'
