#!/usr/bin/env bash
# Runs examples/c/broker_client.c against a librp broker (broker_client --serve) whose backend
# is examples/c/legacy_daemon.c: first through the Hello, then by hello-skip from the cache.
# Usage: scripts/broker-demo.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: broker-demo.sh BUILD_DIR}
dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-broker-demo.XXXXXX")
chmod 700 "$dir"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build/legacy_daemon" "$dir/backend.sock" &
"$build/broker_client" --serve "$dir/broker.sock" demo "$dir/backend.sock" 1.0.0 &
for _ in $(seq 100); do [ -S "$dir/broker.sock" ] && [ -S "$dir/backend.sock" ] && break; sleep 0.05; done
out=$("$build/broker_client" --cache "$dir/cache" "$dir/broker.sock" demo 1.0.0 "hi there")
echo "$out"
grep -q "route: negotiated" <<<"$out"
grep -q "reply: hi there" <<<"$out"
out=$("$build/broker_client" --cache "$dir/cache" "$dir/broker.sock" demo 1.0.0 "again")
echo "$out"
grep -q "route: hello-skip" <<<"$out"
grep -q "reply: again" <<<"$out"
echo "broker demo: ok"
