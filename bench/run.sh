#!/usr/bin/env bash
# Builds and runs librp's benchmarks with their same-run baselines, and prints a table of
# medians, p99s and ratios. Each round-trip benchmark runs with both processes pinned to one
# CPU (taskset -c 0: on this VM a cross-CPU wake-up costs ~95 us and makes runs bimodal) and
# unpinned. RP_BENCH_ITERATIONS sets the samples per run (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need=()
[ -f /usr/include/zmq.h ] || need+=(libzmq3-dev)
[ -f /usr/include/nng/nng.h ] || need+=(libnng-dev)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

bash bench/build.sh uds_pingpong push_rtt session_rtt zmq_reqrep nng_reqrep push_scale hello_rtt stream codec
out=build/bench

results="$out/results.txt"
: > "$results"
for placement in pinned unpinned; do
  for b in uds_pingpong push_rtt session_rtt zmq_reqrep nng_reqrep; do
    if [ "$placement" = pinned ]; then run=(taskset -c 0 "$out/$b"); else run=("$out/$b"); fi
    line=$(timeout 300 "${run[@]}" | grep '^RESULT') || { echo "benchmark $b ($placement) failed" >&2; exit 1; }
    echo "$placement $line" | tee -a "$results"
  done
done

# Connection setup through a broker (Hello, Negotiated, connect to the backend).
echo
for placement in pinned unpinned; do
  if [ "$placement" = pinned ]; then run=(taskset -c 0 "$out/hello_rtt"); else run=("$out/hello_rtt"); fi
  echo "$placement $("${run[@]}" | grep '^RESULT')" | tee -a "$out/hello.txt"
done

# One-way stream of 64 B messages over one connection (pinned and unpinned), three rounds of
# 1,000,000 messages each: ZeroMQ's rate moves by a third from run to run, so the table takes
# the median of the rounds and the ratio of medians.
echo
: > "$out/stream.txt"
for round in 1 2 3; do
  for placement in pinned unpinned; do
    if [ "$placement" = pinned ]; then run=(taskset -c 0 "$out/stream"); else run=("$out/stream"); fi
    "${run[@]}" | sed "s/^/$placement /" | tee -a "$out/stream.txt"
  done
done
python3 - "$out/stream.txt" <<'PY'
import sys, statistics
rates = {}
for line in open(sys.argv[1]):
    placement, _, rest = line.partition(" ")
    f = dict(kv.split("=") for kv in rest.split()[1:])
    rates.setdefault((placement, f["name"]), []).append(float(f["msgs_per_sec"]))
print(f"{'stream, 64 B, median of rounds':<40} {'placement':<9} {'M msg/s':>8} {'/ ZeroMQ':>9} {'/ raw batched':>14}")
for placement in ("pinned", "unpinned"):
    zmq = statistics.median(rates[(placement, "stream_zmq_push_pull")])
    raw = statistics.median(rates[(placement, "stream_raw_uds_batched")])
    for (p, name), xs in rates.items():
        if p == placement:
            m = statistics.median(xs)
            print(f"{name:<40} {placement:<9} {m / 1e6:>8.2f} {m / zmq:>9.2f} {m / raw:>14.2f}")
PY

# Scale: one push server with 1, 10, 100 and 1,000 registered workers.
echo
"$out/push_scale" | tee "$out/scale.txt"

# Codec: wall clock (pinned), and instructions per operation from callgrind (they do not drift
# with machine load): the difference between two runs of different lengths, per iteration.
codec_results="$out/codec.txt"
: > "$codec_results"
taskset -c 0 "$out/codec" | tee -a "$codec_results"
if command -v valgrind >/dev/null; then
  bench/codec_instr.sh --no-build --out "$codec_results" | grep '^INSTR'
fi

echo
python3 - "$results" <<'PY'
import sys, re
rows = {}
for line in open(sys.argv[1]):
    placement, _, rest = line.partition(" ")
    f = dict(kv.split("=") for kv in rest.split()[1:])
    rows[(placement, f["name"])] = (float(f["p50_us"]), float(f["p99_us"]))
print(f"{'round trip, 64 B':<22} {'placement':<9} {'p50 us':>8} {'p99 us':>8} {'p50 / raw':>10} {'p99 / raw':>10}")
for placement in ("pinned", "unpinned"):
    base = rows[(placement, "raw_uds_pingpong")]
    for name in ("raw_uds_pingpong", "librp_push_rtt", "librp_session_rtt", "zmq_reqrep", "nng_reqrep"):
        p50, p99 = rows[(placement, name)]
        print(f"{name:<22} {placement:<9} {p50:>8.2f} {p99:>8.2f} {p50/base[0]:>10.2f} {p99/base[1]:>10.2f}")
    push, zmq = rows[(placement, "librp_push_rtt")], rows[(placement, "zmq_reqrep")]
    print(f"  librp push vs ZeroMQ REQ/REP ({placement}): p50 {zmq[0]/push[0]:.2f}x faster")
PY
echo
python3 - "$codec_results" <<'PY'
import sys
ns, ins = {}, {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=") for kv in line.split()[1:])
    if line.startswith("RESULT"):
        ns[f["name"]] = float(f["ns_per_op"])
    elif line.startswith("INSTR"):
        ins[f["name"]] = int(f["instructions_per_op"])
base = "codec_c_handwritten_decode"
print(f"{'codec, 64 B payload':<30} {'ns/op':>8} {'instr/op':>9} {'instr / C decode':>17}")
for name in ("codec_c_handwritten_decode", "codec_rp_frame_decode", "codec_rp_mux_poll", "codec_rp_frame_encode"):
    i = ins.get(name)
    ratio = f"{i / ins[base]:.2f}" if i and base in ins else "-"
    print(f"{name:<30} {ns.get(name, 0):>8.1f} {i if i else '-':>9} {ratio:>17}")
PY

# The latency plot (docs/latency.png) of the round trips above, then the criterion benchmarks
# of the codec and mux against the reference crate, and the Rust-API push round trip.
echo
bash bench/plot.sh "$results" docs/latency.png
echo
bash bench/criterion.sh
