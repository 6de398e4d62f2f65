#!/usr/bin/env bash
# Round trips: builds librp (Release), the C round-trip benchmarks and bench/rust's
# reference_rtt, runs raw Unix-socket ping-pong, librp push (over a Unix socket, and over
# loopback TCP and TLS, with throwaway certificates from tests/tls_certs.sh), librp session,
# ZeroMQ REQ/REP, nng REQ/REP and the reference crate's round trips (FrameClient::request, and
# write_frame / read_frame through a BufWriter / BufReader) pinned to one CPU (taskset -c 0),
# interleaved, RP_BENCH_RUNS times (default 5), and prints each run's p50/p99 with ratios
# against the raw baseline of the same run, then the median of the runs; then a stream of
# pushes over the Unix socket, TCP and TLS (push_rtt --stream), with TLS against TCP.
# RP_BENCH_ITERATIONS sets the samples per run (default 20000); RP_BENCH_CPU the CPU (default 0).
# Needs libzmq3-dev and libnng-dev (bench/run.sh installs them when missing).
# Instructions per round trip of the same programs: bench/rtt_instr.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
runs=${RP_BENCH_RUNS:-5}
cpu=${RP_BENCH_CPU:-0}

bash bench/build.sh uds_pingpong push_rtt session_rtt zmq_reqrep nng_reqrep
(cd bench/rust && CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} nice -n 10 cargo build --release -q --bin reference_rtt)
out=build/bench
ref=bench/rust/target/release/reference_rtt
certs="$out/tls-certs"
rm -rf "$certs" && mkdir -p "$certs" && sh tests/tls_certs.sh "$certs"

results="$out/push_rtt_results.txt"
: > "$results"
for r in $(seq 1 "$runs"); do
  for b in uds_pingpong push_rtt push_rtt_tcp push_rtt_tls session_rtt zmq_reqrep nng_reqrep reference_frameclient reference_bufio; do
    case "$b" in
      reference_*) cmd=("$ref" "${b#reference_}") ;;
      push_rtt_tcp) cmd=("$out/push_rtt" tcp) ;;
      push_rtt_tls) cmd=("$out/push_rtt" tls "$certs") ;;
      *) cmd=("$out/$b") ;;
    esac
    line=$(timeout 300 taskset -c "$cpu" "${cmd[@]}" | grep '^RESULT') || { echo "benchmark $b failed (run $r)" >&2; exit 1; }
    echo "$r $line" >> "$results"
  done
done

python3 - "$results" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    run, _, rest = line.partition(" ")
    f = dict(kv.split("=") for kv in rest.split()[1:])
    runs.setdefault(run, {})[f["name"]] = (float(f["p50_us"]), float(f["p99_us"]))
names = ("raw_uds_pingpong", "librp_push_rtt", "librp_push_rtt_tcp", "librp_push_rtt_tls", "librp_session_rtt",
         "zmq_reqrep", "nng_reqrep",
         "reference_frameclient", "reference_bufio")
print(f"{'run':<4} {'benchmark':<21} {'p50 us':>8} {'p99 us':>8} {'p50/raw':>8} {'p99/raw':>8}")
agg = {n: [] for n in names}
zmq_x = {"librp_push_rtt": [], "librp_session_rtt": []}
for run, rows in runs.items():
    base = rows["raw_uds_pingpong"]
    for n in names:
        p50, p99 = rows[n]
        agg[n].append((p50, p99, p50 / base[0], p99 / base[1]))
        print(f"{run:<4} {n:<21} {p50:>8.2f} {p99:>8.2f} {p50/base[0]:>8.2f} {p99/base[1]:>8.2f}")
    for n in zmq_x:
        zmq_x[n].append(rows["zmq_reqrep"][0] / rows[n][0])
print("median of runs:")
for n in names:
    cols = list(zip(*agg[n]))
    print(f"     {n:<21} " + " ".join(f"{statistics.median(c):>8.2f}" for c in cols))
for n, xs in zmq_x.items():
    print(f"     {n} vs ZeroMQ REQ/REP p50: {statistics.median(xs):.2f}x faster")
raw_x = [rows["zmq_reqrep"][0] / rows["raw_uds_pingpong"][0] for rows in runs.values()]
print(f"     (the raw ping-pong itself: {statistics.median(raw_x):.2f}x faster than ZeroMQ)")
for q in (0, 1):
    xs = [rows["librp_push_rtt_tls"][q] / rows["librp_push_rtt_tcp"][q] for rows in runs.values()]
    print(f"     librp_push_rtt_tls {('p50', 'p99')[q]} / librp_push_rtt_tcp {('p50', 'p99')[q]}: {statistics.median(xs):.2f}")
for n in ("librp_push_rtt", "librp_session_rtt"):
    for ref in ("reference_frameclient", "reference_bufio"):
        xs = [rows[n][0] / rows[ref][0] for rows in runs.values()]
        print(f"     {n} p50 / {ref} p50: {statistics.median(xs):.2f}")
PY

# A stream of pushes over each transport (asynchronous, up to 256 unanswered), same runs.
streams="$out/push_stream_results.txt"
: > "$streams"
for r in $(seq 1 "$runs"); do
  for t in unix tcp tls; do
    case "$t" in tls) args=(tls "$certs") ;; *) args=("$t") ;; esac
    line=$(timeout 300 taskset -c "$cpu" "$out/push_rtt" --stream "${args[@]}" | grep '^RESULT') ||
      { echo "push stream over $t failed (run $r)" >&2; exit 1; }
    echo "$r $line" >> "$streams"
  done
done
python3 - "$streams" <<'PY'
import sys, statistics
rates = {}
for line in open(sys.argv[1]):
    run, _, rest = line.partition(" ")
    f = dict(kv.split("=") for kv in rest.split()[1:])
    rates.setdefault(f["name"], {})[run] = float(f["msgs_per_sec"])
print(f"{'push stream, 64 B, median of runs':<34} {'k pushes/s':>10}")
for n, by_run in rates.items():
    print(f"     {n:<29} {statistics.median(by_run.values()) / 1000:>10.0f}")
xs = [rates["librp_push_stream_tls"][r] / rates["librp_push_stream_tcp"][r] for r in rates["librp_push_stream_tls"]]
print(f"     librp_push_stream_tls / librp_push_stream_tcp: {statistics.median(xs):.2f}")
PY
