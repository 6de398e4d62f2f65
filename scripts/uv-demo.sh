#!/usr/bin/env bash
# Runs examples/c/libuv/uv_worker.c against real peers: examples/c/push_server.c pushes jobs to
# it, and it forwards each to examples/c/legacy_daemon.c reached through a librp broker
# (broker_client --serve), answering each push with the backend's reply.
# Usage: scripts/uv-demo.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: uv-demo.sh BUILD_DIR}
dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-uv-demo.XXXXXX")
chmod 700 "$dir"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build/legacy_daemon" "$dir/backend.sock" &
"$build/broker_client" --serve "$dir/broker.sock" demo "$dir/backend.sock" 1.0.0 &
"$build/push_server" "$dir/push.sock" 4 1 >"$dir/server.out" &
server=$!
for _ in $(seq 100); do
  [ -S "$dir/broker.sock" ] && [ -S "$dir/backend.sock" ] && [ -S "$dir/push.sock" ] && break
  sleep 0.05
done
"$build/uv_worker" "$dir/push.sock" "$dir/broker.sock" demo 1.0.0 &
worker=$!
wait "$server" || { cat "$dir/server.out"; echo "push_server failed" >&2; exit 1; }
wait "$worker"
cat "$dir/server.out"
grep -q "4 of 4 jobs answered" "$dir/server.out"
grep -q 'job 1 -> "job 1: make this loud"' "$dir/server.out"
echo "uv demo: ok"
