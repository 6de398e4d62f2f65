#!/usr/bin/env bash
# The whole test suite: cargo tests (unit, integration, golden vectors, header drift), then the
# C/C++ tests, examples, export/SONAME check and install/consumer test under ctest, in a Debug
# build (ASan + UBSan) and a Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
jobs=$(nproc 2>/dev/null || echo 2)

echo "== cargo test"
cargo test --locked --workspace

# Interop with the reference implementation (crates.io running-process): its own workspace,
# so librp itself never depends on the reference crate.
echo "== interop (interop/)"
cargo test --locked --manifest-path interop/Cargo.toml

for type in Debug Release; do
  dir="build/$(echo "$type" | tr '[:upper:]' '[:lower:]')"
  echo "== ctest ($type, $dir)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" >/dev/null
  cmake --build "$dir" -j "$jobs"
  if [ "$type" = Debug ]; then
    # The sanitizers must really be linked into the C tests.
    nm "$dir/test_errors" | grep -q __asan_init || { echo "ASan not linked into C tests" >&2; exit 1; }
  fi
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j "$jobs"
done
