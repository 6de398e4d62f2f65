#!/usr/bin/env bash
# Builds librp and runs the C example: two processes exchanging v1 frames through the C API.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target frame_codec
./build/release/frame_codec
