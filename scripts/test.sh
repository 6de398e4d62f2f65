#!/usr/bin/env bash
# The whole test suite: cargo tests (unit, integration, golden vectors, header drift), then the
# C/C++ tests, examples, export/SONAME check and install/consumer test under ctest, in a Debug
# build (ASan + UBSan) and a Release build; then the heavy fault/load tests (bounded counts), and
# the C tests of the Release build once more under valgrind memcheck.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
jobs=$(nproc 2>/dev/null || echo 2)

echo "== cargo test"
cargo test --locked

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

echo "== heavy fault and load tests (release, bounded in time; #[ignore]d in plain cargo test)"
cargo test --locked --release --test hostile --test storm -- --ignored --test-threads=1 --nocapture

echo "== valgrind (Release C tests)"
bash scripts/valgrind.sh build/release
