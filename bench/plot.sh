#!/usr/bin/env bash
# Plots the round-trip results of bench/run.sh (build/bench/results.txt: lines
# "pinned|unpinned RESULT name=... p50_us=... p99_us=... n=...") as docs/latency.png: p50 and
# p99 per stack, pinned and unpinned side by side, on a log scale. Uses gnuplot (installs
# gnuplot-nox from Debian when missing).
#
#   bash bench/plot.sh [RESULTS] [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
results=${1:-build/bench/results.txt}
png=${2:-docs/latency.png}
[ -s "$results" ] || { echo "no results in $results: run bench/run.sh first" >&2; exit 1; }
if ! command -v gnuplot >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
fi

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
# One data file per placement: label, p50, p99, samples; stacks in a fixed order.
for placement in pinned unpinned; do
  awk -v want="$placement" '
    BEGIN {
      split("raw_uds_pingpong librp_push_rtt librp_session_rtt zmq_reqrep nng_reqrep", order, " ")
      label["raw_uds_pingpong"] = "raw Unix socket"; label["librp_push_rtt"] = "librp push"
      label["librp_session_rtt"] = "librp session"; label["zmq_reqrep"] = "ZeroMQ REQ/REP"
      label["nng_reqrep"] = "nng REQ/REP"
    }
    $1 == want && $2 == "RESULT" {
      delete f
      for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      p50[f["name"]] = f["p50_us"]; p99[f["name"]] = f["p99_us"]; n = f["n"]
    }
    END {
      for (i = 1; i <= 5; i++) if (order[i] in p50) printf "\"%s\" %s %s\n", label[order[i]], p50[order[i]], p99[order[i]]
      print n > "/dev/stderr"
    }' "$results" > "$data/$placement.dat" 2> "$data/$placement.n"
done

when=$(date -u -r "$results" +%Y-%m-%d)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo | sed 's/ \+/ /g')
machine="$(nproc)-vCPU VM ($cpu)"
samples=$(cat "$data/pinned.n")
# One y range for both panels: a power of ten, with room above the largest p99 for its label.
ymax=$(awk '{ if ($NF > m) m = $NF } END { y = 1; while (y < 1.5 * m) y *= 10; print y }' "$data/pinned.dat" "$data/unpinned.dat")
mkdir -p "$(dirname "$png")"
gnuplot <<EOF
set terminal pngcairo size 1400,650 font "DejaVu Sans,11" noenhanced
set output "$png"
set multiplot layout 1,2 title "librp round-trip latency, 64 B payload, $samples samples per run: $machine, $when" font ",13"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xrange [-0.6:$(( $(wc -l < "$data/pinned.dat") ))-0.4]
set logscale y
set yrange [1:$ymax]
set ylabel "round trip (µs, log scale)"
set grid ytics mytics
set key top left
set xtics rotate by -20 offset -1,0
set datafile separator whitespace
do for [p in "pinned unpinned"] {
  file = "$data/".p.".dat"
  set title (p eq "pinned" ? "pinned: both processes on CPU 0 (taskset -c 0)" : "unpinned: scheduler's choice of the 2 CPUs")
  plot file using 2:xtic(1) title "p50" lc rgb "#3465a4", \
       "" using 3 title "p99" lc rgb "#cc0000", \
       "" using (\$0-1.0/6):2:(sprintf("%.1f", \$2)) with labels offset 0,0.7 font ",9" notitle, \
       "" using (\$0+1.0/6):3:(sprintf("%.1f", \$3)) with labels offset 0,0.7 font ",9" notitle
}
unset multiplot
EOF
echo "wrote $png"
