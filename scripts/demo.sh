#!/usr/bin/env bash
# Builds librp and its C examples, then runs them: a push server with two workers, the legacy
# daemon serving three kinds of client on one socket, and the frame codec example.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target push_server push_worker legacy_daemon frame_codec
echo "== push: a server pushing jobs to two workers"
bash scripts/push-demo.sh build/release
echo
echo "== backend endpoint: legacy wire, v1 frames and identity probes on one socket"
./build/release/legacy_daemon --self-test
echo
echo "== codec: two processes exchanging v1 frames"
./build/release/frame_codec
