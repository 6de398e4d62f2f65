#!/usr/bin/env bash
# The C++ broker client demo: the client example (examples/cpp/broker_client.cpp) reaches the C
# legacy daemon example (examples/c/legacy_daemon.c) through a librp broker
# (broker_client --serve), and a refused Hello fails it with the broker's code.
# Usage: scripts/broker-demo-cpp.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: broker-demo-cpp.sh BUILD_DIR}
dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-broker-cpp.XXXXXX")
chmod 700 "$dir"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build/legacy_daemon" "$dir/backend.sock" &
"$build/broker_client" --serve "$dir/broker.sock" demo "$dir/backend.sock" 1.0.0 &
for _ in $(seq 100); do [ -S "$dir/broker.sock" ] && [ -S "$dir/backend.sock" ] && break; sleep 0.05; done
out=$("$build/broker_client_cpp" "$dir/broker.sock" demo 1.0.0 "hello from C++")
echo "$out"
grep -q "route: negotiated, backend: $dir/backend.sock" <<<"$out"
grep -q "reply: hello from C++" <<<"$out"
# An unknown service is refused: exit 1 and the refusal on stderr.
if err=$("$build/broker_client_cpp" "$dir/broker.sock" nosuch 1.0.0 "x" 2>&1); then
  echo "an unknown service was not refused" >&2
  exit 1
fi
echo "$err"
grep -q "refused: code 2," <<<"$err"
echo "broker demo (C++ client): ok"
