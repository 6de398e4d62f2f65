#!/usr/bin/env bash
# Codec and mux benchmarks of bench/rust (librp's Rust API, librp's C API called from Rust, and
# the reference crate, in the same run): criterion wall-clock medians, callgrind instructions
# per operation, allocations per mux poll; then the push round trip through the Rust API next to
# bench/c/push_rtt.c. Prints a table with the ratios and keeps it in build/bench/criterion.txt.
#
# The criterion run is repeated (RP_CRITERION_ROUNDS, default 3) and each figure is the lowest
# of its per-round medians, which load from other work on the shared CPUs can only raise; the
# round trips likewise. Bounded: about a minute per round plus ~1.5 min of callgrind, after the
# build. Run bench/run.sh first (it builds build/bench/push_rtt), else the round trips are
# skipped.
#
#   bash bench/criterion.sh     # RP_CRITERION_ARGS replaces the criterion options below
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
root=$PWD
out=$root/build/bench
mkdir -p "$out"
raw=$out/criterion-raw.txt
: > "$raw"
rounds=${RP_CRITERION_ROUNDS:-3}

cd bench/rust
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} nice -n 10 cargo bench --bench codec --no-run -q
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} nice -n 10 cargo build --release --bins -q

# Pinned like the C codec benchmark in bench/run.sh; criterion's own report goes to a log.
read -r -a args <<< "${RP_CRITERION_ARGS:---warm-up-time 1 --measurement-time 3 --nresamples 20000 --noplot}"
for round in $(seq "$rounds"); do
  rm -rf target/criterion
  taskset -c 0 cargo bench -q --bench codec -- "${args[@]}" > "$out/criterion-progress.log" 2>&1
  for f in target/criterion/*/*/new/estimates.json; do
    name=${f#target/criterion/}; name=${name%/new/estimates.json}
    median=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"])' "$f")
    echo "CRIT round=$round name=$name median_ns=$median"
  done | tee -a "$raw"
done

./target/release/mux_alloc | tee -a "$raw"

# Instructions per operation (callgrind; unaffected by load): the difference of two run lengths.
if command -v valgrind >/dev/null; then
  count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null ./target/release/ops "$1" "$2" 2>&1 | awk '/Collected/ {print $4}'; }
  for op in encode/rust encode/c_api encode/reference decode/rust decode/c_api decode/reference \
            mux_poll/rust mux_poll/rust_detector mux_poll/c_api mux_poll/reference; do
    a=$(count "$op" 10000); b=$(count "$op" 20000)
    echo "INSTR name=$op instructions_per_op=$(( (b - a) / 10000 ))" | tee -a "$raw"
  done
fi

# Round trip: the C program and the Rust program alternately, pinned and unpinned.
if [ -x "$out/push_rtt" ]; then
  for round in $(seq "$rounds"); do
    for placement in pinned unpinned; do
      pin=(); [ "$placement" = pinned ] && pin=(taskset -c 0)
      for b in "$out/push_rtt" ./target/release/push_rtt; do
        line=$(timeout 300 "${pin[@]}" "$b" | grep '^RESULT') || { echo "$b ($placement) failed" >&2; exit 1; }
        echo "$placement $line" | tee -a "$raw"
      done
    done
  done
else
  echo "no $out/push_rtt: run bench/run.sh for the round-trip rows" >&2
fi

cd "$root"
echo
python3 - "$raw" <<'PY' | tee "$out/criterion.txt"
import sys
crit, instr, allocs, rtt = {}, {}, {}, {}
for line in open(sys.argv[1]):
    w = line.split()
    if w[0] in ("CRIT", "INSTR", "ALLOC"):
        f = dict(kv.split("=") for kv in w[1:])
        if w[0] == "CRIT":
            crit.setdefault(f["name"], []).append(float(f["median_ns"]))
        elif w[0] == "INSTR":
            instr[f["name"]] = int(f["instructions_per_op"])
        else:
            allocs[f["name"]] = f["allocations_per_op"]
    elif len(w) > 1 and w[1] == "RESULT":
        f = dict(kv.split("=") for kv in w[2:])
        old = rtt.get((w[0], f["name"]), (float("inf"), float("inf")))
        rtt[(w[0], f["name"])] = (min(old[0], float(f["p50_us"])), min(old[1], float(f["p99_us"])))

def ns(name):
    return min(crit[name]) if name in crit else None
def ratio(x, y):
    return f"{x / y:.2f}" if x and y else "-"
cols = ("rust", "c_api", "reference")
head = "64 B payload"
print(f"{head:<10} {'median ns/op':^26} {'instructions/op':^20} {'Rust/ref':^11} {'C/ref':^11} {'C/Rust':^11} {'allocs/op':>9}")
print(f"{'':<10} {'Rust':>8} {'C API':>8} {'ref':>8} {'Rust':>6} {'C API':>6} {'ref':>6} "
      f"{'ns':>5} {'ins':>5} {'ns':>5} {'ins':>5} {'ns':>5} {'ins':>5} {'R/C/ref':>9}")
for group in ("encode", "decode", "mux_poll"):
    t = [ns(f"{group}/{fn}") for fn in cols]
    i = [instr.get(f"{group}/{fn}") for fn in cols]
    a = "/".join(str(allocs.get(f"{group}/{fn}", "-")) for fn in cols) if group == "mux_poll" else "-"
    pairs = ((0, 2), (1, 2), (1, 0))
    rs = " ".join(f"{ratio(t[x], t[y]):>5} {ratio(i[x], i[y]):>5}" for x, y in pairs)
    print(f"{group:<10} " + " ".join(f"{x:>8.1f}" if x else f"{'-':>8}" for x in t) + " "
          + " ".join(f"{x or '-':>6}" for x in i) + f" {rs} {a:>9}")
d, di = ns("mux_poll/rust_detector"), instr.get("mux_poll/rust_detector")
if d:
    print(f"mux_poll, Rust API with a legacy detector (a boxed closure answering not-legacy): "
          f"{d:.1f} ns, {di or '-'} instructions")
print(f"ns: lowest median of {max((len(v) for v in crit.values()), default=0)} criterion round(s), pinned to CPU 0; "
      "instructions: callgrind; allocations: counting global allocator")
print("targets: mux poll <= 0.35x the reference; encode <= 0.5x the reference; C API within 5 % of the Rust API; "
      "0 allocations per mux poll")
if rtt:
    print()
    print(f"{'push round trip, 64 B':<24} {'placement':<9} {'p50 us':>8} {'p99 us':>8}")
    for placement in ("pinned", "unpinned"):
        for name, label in (("librp_push_rtt", "C API (push_rtt.c)"), ("librp_push_rtt_rust", "Rust API (push_rtt.rs)")):
            if (placement, name) in rtt:
                p50, p99 = rtt[(placement, name)]
                print(f"{label:<24} {placement:<9} {p50:>8.2f} {p99:>8.2f}")
        c, r = rtt.get((placement, "librp_push_rtt")), rtt.get((placement, "librp_push_rtt_rust"))
        if c and r:
            print(f"  C / Rust ({placement}): p50 {c[0] / r[0]:.2f}, p99 {c[1] / r[1]:.2f}")
    print("(lowest p50 and lowest p99 of the rounds)")
PY
