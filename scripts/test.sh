#!/usr/bin/env bash
# The whole test suite: cargo tests (unit, integration, golden vectors, header drift), a build
# check for macOS (clippy for both Apple targets; nothing runs), the Windows leg (MinGW build,
# Rust and C tests under Wine: scripts/windows.sh), then the
# C/C++ tests, examples, export/SONAME check and install/consumer test under ctest, in a Debug
# build (ASan + UBSan) and a Release build; the Debian packages of the Release build, unpacked
# into a scratch root and built against (scripts/package-test.sh); then the heavy fault/load
# tests (bounded counts), the C tests of the Release build once more under valgrind memcheck,
# the Go binding (bindings/go) against a staged install of the Release build (race detector,
# cgocheck2), the demo, and last the ThreadSanitizer leg (scripts/tsan.sh: librp and its
# threaded Rust tests under TSan; the C tests, C++ wrapper tests and examples against an
# instrumented librp).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
jobs=$(nproc 2>/dev/null || echo 2)

echo "== cargo test"
cargo test --locked --workspace

# macOS: librp, the rp tool and the tests compile and pass clippy for both Apple targets. Nothing
# here can run a macOS binary, so this is a build check only (README, "Platforms"). The TLS
# engine's C and assembly are compiled by clang for the target, with scripts/macos-check
# standing in for the few Apple SDK headers they include.
for target in aarch64-apple-darwin x86_64-apple-darwin; do
  echo "== macOS check ($target: cargo clippy, no run)"
  t=${target//-/_}
  env "CC_$t=clang-22" "CFLAGS_$t=-ffreestanding -isystem $PWD/scripts/macos-check" \
    cargo clippy --locked --workspace --all-targets --target "$target" -- -D warnings
done

# Windows: librp cross-compiled with MinGW-w64, its Rust tests and C tests run under Wine
# (scripts/windows.sh; README, "Platforms").
echo "== Windows (scripts/windows.sh: x86_64-pc-windows-gnu under Wine)"
bash scripts/windows.sh

# Interop with the reference implementation (crates.io running-process): its own workspace,
# so librp itself never depends on the reference crate.
echo "== interop (interop/)"
cargo test --locked --manifest-path interop/Cargo.toml
# Live interop with a real liminal server, embedded by its own workspace (AGPL: never linked into librp).
echo "== interop (interop/liminal/)"
cargo test --locked --manifest-path interop/liminal/Cargo.toml

for type in Debug Release; do
  dir="build/$(echo "$type" | tr '[:upper:]' '[:lower:]')"
  echo "== ctest ($type, $dir)"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DRP_REQUIRE_LIBUV=ON -DRP_REQUIRE_GTEST=ON >/dev/null
  cmake --build "$dir" -j "$jobs"
  if [ "$type" = Debug ]; then
    # The sanitizers must really be linked into the C tests.
    nm "$dir/test_errors" | grep __asan_init >/dev/null || { echo "ASan not linked into C tests" >&2; exit 1; }
  fi
  ctest --test-dir "$dir" --output-on-failure --timeout 300 -j "$jobs"
done
# The C push_worker example (just built) against a real liminal server; skipped in the leg above.
RP_EXAMPLES_DIR="$PWD/build/release" cargo test --locked --manifest-path interop/liminal/Cargo.toml --test c_example

echo "== Debian packages (scripts/package-test.sh, from build/release)"
bash scripts/package-test.sh build/release

echo "== heavy fault and load tests (release, bounded in time; #[ignore]d in plain cargo test)"
cargo test --locked --release --test hostile --test storm --test load -- --ignored --test-threads=1 --nocapture

echo "== valgrind (Release C tests)"
bash scripts/valgrind.sh build/release

echo "== go test (bindings/go)"
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "go (1.24 or newer) is required for the Go binding tests" >&2; exit 1; }
stage="$PWD/build/stage"
rm -rf "$stage"
cmake --install build/release --prefix "$stage" >/dev/null
(
  # Only the Go tests load the staged librp: LD_LIBRARY_PATH outranks a program's RUNPATH, so
  # exported further it would swap the Release library into the legs after this one.
  export PKG_CONFIG_PATH="$stage/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export LD_LIBRARY_PATH="$stage/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export RP_EXAMPLES_DIR="$PWD/build/release" # the C push_server the cross-language test drives
  cd bindings/go
  go vet ./...
  go test -race -count=1 ./...
  # Go >= 1.21 checks cgo pointer rules fully only when built with this experiment (it
  # rebuilds the standard library once; GODEBUG=cgocheck=2 is no longer accepted).
  GOEXPERIMENT=cgocheck2 go test -count=1 ./...
  # A collection before every C call that uses a handle: a missing KeepAlive fails loudly.
  go test -tags rpdebug -count=1 ./...
)

echo "== demo (scripts/demo.sh)"
bash scripts/demo.sh

echo "== ThreadSanitizer (scripts/tsan.sh)"
bash scripts/tsan.sh
