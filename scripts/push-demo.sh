#!/usr/bin/env bash
# Runs examples/c/push_server.c and two push_worker.c processes together.
# Usage: scripts/push-demo.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: push-demo.sh BUILD_DIR}
dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-demo.XXXXXX")
chmod 700 "$dir"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
ep="$dir/push.sock"
"$build/push_server" "$ep" 6 2 &
server=$!
"$build/push_worker" "$ep" alice &
w1=$!
"$build/push_worker" "$ep" bob &
w2=$!
wait "$server"
wait "$w1"
wait "$w2"
echo "push demo: ok"
