#!/usr/bin/env bash
# The librp demo: builds everything on this machine, then runs a scripted scenario with real
# processes on Unix sockets in a private temp dir and prints what happens:
#   1. a broker (`rp broker`) in front of the C legacy daemon example;
#   2. the daemon answering a legacy client and a v1 client at once, and a raw identity probe;
#   3. `rp probe --verify` checking the daemon's identity against /proc like a strict prober;
#   4. `rp hello` asking the broker for the daemon's service;
#   5. a C++ client reaching the daemon through the broker;
#   6. a push server pushing jobs to a Go worker and a C worker and collecting the replies.
# Every process it starts is stopped at the end; it exits non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH:/usr/local/go/bin"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "build: librp, the C and C++ examples, the rp tool, the Go worker"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release >/dev/null
cargo build --locked --release -p rp-cli --quiet
stage="$root/build/stage"
rm -rf "$stage" && cmake --install build/release --prefix "$stage" >/dev/null
(cd bindings/go && PKG_CONFIG_PATH="$stage/lib/pkgconfig" go build -o "$root/build/release/rp-go-worker" ./cmd/rp-go-worker)
export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
bin=build/release
rp=target/release/rp
echo "built: $bin/legacy_daemon, $bin/broker_client_cpp, $bin/push_server, $bin/push_worker, $bin/rp-go-worker, $rp"

dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-demo.XXXXXX")
chmod 700 "$dir"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
wait_for() { for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.025; done; echo "no socket at $1" >&2; return 1; }

step "1. a broker in front of the C legacy daemon"
"$bin/legacy_daemon" "$dir/backend.sock" & pids+=($!)
"$rp" broker "$dir/broker.sock" --service legacy-demo="$dir/backend.sock"@1.0.0 2>"$dir/broker.log" & pids+=($!)
wait_for "$dir/backend.sock"
wait_for "$dir/broker.sock"
echo "legacy daemon on $dir/backend.sock; broker on $dir/broker.sock"

step "2. one socket, three kinds of client: the daemon's own wire, v1 frames, an identity probe"
"$bin/legacy_daemon" --clients "$dir/backend.sock"

step "3. rp probe --verify: who answers the daemon's endpoint, checked against /proc"
"$rp" probe --verify "$dir/backend.sock"

step "4. rp hello: the broker negotiates the daemon's service"
"$rp" hello "$dir/broker.sock" legacy-demo 1.0.0

step "5. a C++ client reaches the daemon through the broker"
"$bin/broker_client_cpp" "$dir/broker.sock" legacy-demo 1.0.0 "hello from C++"

step "6. a push server pushes jobs to a Go worker and a C worker"
"$bin/push_server" "$dir/push.sock" 6 2 & server=$!
"$bin/rp-go-worker" "$dir/push.sock" go-worker & go_worker=$!
"$bin/push_worker" "$dir/push.sock" c-worker & c_worker=$!
pids+=("$server" "$go_worker" "$c_worker")
wait "$server"
wait "$go_worker"
wait "$c_worker"

step "what the broker logged"
cat "$dir/broker.log"

step "demo: every step succeeded"
