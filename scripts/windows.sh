#!/usr/bin/env bash
# The Windows leg: librp cross-compiled for x86_64-pc-windows-gnu (MinGW-w64) and run under Wine.
#   1. clippy for the Windows target (librp, the rp tool, every test);
#   2. the workspace's Rust tests with Wine as cargo's runner: librp's unit tests,
#      tests/push.rs (server and workers over named pipes and TCP), tests/session.rs and
#      tests/stream.rs (over named-pipe pairs), tests/broker.rs, tests/broker_server.rs,
#      tests/log_stats.rs and tests/handoff_pipes.rs (over named pipes; DuplicateHandle handoffs
#      within one process and into another), tests/reconnect.rs (a server process killed and
#      restarted on the same pipe name and TCP port), tests/hostile.rs and tests/security.rs
#      (raw peers on named pipes), tests/tls.rs and tests/tls_session.rs (tls://),
#      tests/liminal.rs, tests/identity_probe.rs, the rp tool's push, TLS and decode tests
#      (tools/rp/tests/cli.rs), the golden vectors, the mux cases, the header and allocation
#      checks; test files that are Unix-specific (descriptor passing, /proc, rlimits, socket
#      files and uids) are `#![cfg(unix)]`, single tests `cfg(unix)` or `ignore`d on Windows,
#      each with its reason;
#   3. rp.dll with its import library (librp.dll.a) and the static library (librp.a) from
#      cargo; C tests built with x86_64-w64-mingw32-gcc against rp.dll (tests/c/windows/test_push.c,
#      tests/c/test_errors.c, tests/c/test_version.c) and against librp.a (test_version), run
#      under Wine;
#   4. the CMake build for Windows (cmake/toolchains/mingw-w64-x86_64.cmake) installed to a
#      staging prefix, and the find_package(rp) consumers (examples/cmake-consumer*: rp::rp,
#      rp::rp_static, rp::cpp) built against it with the same toolchain and run under Wine;
#   5. the C++ wrapper's tests: tests/cpp/windows (push over named pipes and TCP) and those of
#      tests/cpp that need no sockets (GoogleTest built from its sources);
#   6. the Go binding built for windows/amd64 with cgo and MinGW, and its tests run under Wine
#      (local endpoints are named pipes; the Unix-only tests are left out by build tags).
# Needs wine (Wine 8.0: Debian's wine64), gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64 (its
# POSIX-threads g++), cmake and ninja, GoogleTest's sources (googletest), Go and
# `rustup target add x86_64-pc-windows-gnu`. Wine runs in a throwaway prefix, silent
# (WINEDEBUG=-all), and its server is stopped at the end.
#
# Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8.0 lacks:
# scripts/windows/bcryptprimitives.c is a stand-in built here and put next to each executable
# (never shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

target=x86_64-pc-windows-gnu
for tool in wine wineserver x86_64-w64-mingw32-gcc x86_64-w64-mingw32-g++-posix cmake ninja; do
  command -v "$tool" >/dev/null || { echo "$tool is required (wine64, gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64, cmake, ninja-build)" >&2; exit 1; }
done
rustup target list --installed 2>/dev/null | grep -qx "$target" || {
  echo "the Rust target $target is required: rustup target add $target" >&2
  exit 1
}

out="$PWD/target/$target/debug"
wine_dir="$PWD/target/$target/wine"
mkdir -p "$wine_dir"

prefix=$(mktemp -d "${TMPDIR:-/tmp}/rp-wine.XXXXXX")
export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
stop_wine() {
  wineserver -k 2>/dev/null || true
  rm -rf "$prefix"
}
trap stop_wine EXIT

echo "== Windows: ProcessPrng stand-in for Wine (scripts/windows/bcryptprimitives.c)"
x86_64-w64-mingw32-gcc -O2 -shared -o "$wine_dir/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c scripts/windows/bcryptprimitives.def -ladvapi32
export RP_WINE_PRNG_DLL="$wine_dir/bcryptprimitives.dll"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PWD/scripts/windows/runner.sh"

echo "== Windows: clippy ($target)"
cargo clippy --locked --target "$target" --workspace --all-targets -- -D warnings

echo "== Windows: Rust tests under Wine"
# One Wine server for the whole leg, stopped by stop_wine. Debian's wineserver otherwise quits
# (with Wine's services) the moment its last program ends, and the next program, started a few
# milliseconds later, can race that shutdown: the likely cause of a test program that once
# ended at once, silently, with status 1 (scripts/windows/runner.sh now names that case).
wineserver -p
wine wineboot -i >/dev/null 2>&1 || true
# The rp tool's tests run rp.exe from $out: the stand-in goes next to it too.
mkdir -p "$out"
cp "$RP_WINE_PRNG_DLL" "$out/"
timeout 600 cargo test --locked --target "$target" --workspace

echo "== Windows: interop with the reference crate under Wine (interop/, named pipes)"
# The reference (running-process) as client, broker, backend and strict prober against librp,
# over named pipes, handoffs by DuplicateHandle. The strict prober compares boot ids, which
# Windows keeps in the registry value below; a fresh Wine prefix has none (each process would
# then make up its own), so the prefix gets one, as a Windows host has.
wine reg add 'HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters' \
  /v BootId /t REG_DWORD /d 7 /f >/dev/null 2>&1
cargo clippy --locked --target "$target" --manifest-path interop/Cargo.toml --all-targets -- -D warnings
cargo test --locked --target "$target" --manifest-path interop/Cargo.toml --no-run
timeout 300 cargo test --locked --target "$target" --manifest-path interop/Cargo.toml

echo "== Windows: C tests against rp.dll and librp.a, under Wine"
cargo build --locked --target "$target" --lib
for f in rp.dll librp.dll.a librp.a; do
  [ -f "$out/$f" ] || { echo "missing $out/$f" >&2; exit 1; }
done
# rp.dll exports librp's functions and nothing else.
others=$(x86_64-w64-mingw32-objdump -p "$out/rp.dll" | sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' |
  grep -E '^\s*\[ *[0-9]+\]' | awk '{print $NF}' | grep -v '^rp_' || true)
[ -z "$others" ] || { echo "rp.dll exports more than rp_*: $others" >&2; exit 1; }
ctest_dir="$out/ctest"
mkdir -p "$ctest_dir"
cp "$out/rp.dll" "$RP_WINE_PRNG_DLL" "$ctest_dir/"
cc=(x86_64-w64-mingw32-gcc -std=c11 -Wall -Wextra -Werror -Iinclude -Itests/c)
# The static library needs the system libraries Rust's std and librp import.
static_libs=(-lws2_32 -lbcrypt -ladvapi32 -lntdll -luserenv -lkernel32 -lsynchronization)
"${cc[@]}" tests/c/windows/test_push.c -o "$ctest_dir/test_windows_push.exe" -L"$out" -lrp
for t in test_errors test_version; do
  "${cc[@]}" "tests/c/$t.c" -o "$ctest_dir/$t.exe" -L"$out" -lrp
done
"${cc[@]}" tests/c/test_version.c -o "$ctest_dir/test_version_static.exe" "$out/librp.a" "${static_libs[@]}"
for t in test_windows_push test_errors test_version test_version_static; do
  echo "-- $t"
  (cd "$ctest_dir" && timeout 120 wine "./$t.exe" >/dev/null)
done

echo "== Windows: CMake cross build and install (cmake/toolchains/mingw-w64-x86_64.cmake), find_package(rp) consumers under Wine"
# Debug: cargo's dev profile, already built above. The install must hold the DLL in bin/, its
# import library and the static library in lib/, and the CMake package; the consumer projects
# (examples/cmake-consumer*) find it with the same toolchain file and run under Wine.
toolchain="$PWD/cmake/toolchains/mingw-w64-x86_64.cmake"
cmake_dir="$PWD/build/windows"
stage="$cmake_dir/stage"
rm -rf "$stage" "$cmake_dir/consumer" "$cmake_dir/consumer_cpp"
cmake -S . -B "$cmake_dir/rp" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$cmake_dir/rp"
cmake --install "$cmake_dir/rp" --prefix "$stage" >/dev/null
for f in bin/rp.dll bin/rp.exe lib/librp.dll.a lib/librp.a include/rp.h include/rp/rp.hpp \
         lib/cmake/rp/rpConfig.cmake lib/cmake/rp/rpConfigVersion.cmake lib/cmake/rp/rpTargets.cmake \
         lib/pkgconfig/rp.pc; do
  [ -f "$stage/$f" ] || { echo "the Windows install is missing $f" >&2; exit 1; }
done
grep -q 'IMPORTED_IMPLIB "${rp_LIB_DIR}/librp.dll.a"' "$stage/lib/cmake/rp/rpTargets.cmake" ||
  { echo "rpTargets.cmake: rp::rp has no import library" >&2; exit 1; }
cmake -S examples/cmake-consumer -B "$cmake_dir/consumer" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$stage" >/dev/null
cmake --build "$cmake_dir/consumer"
# The C++ consumer carries its C++ runtime (MinGW's libstdc++ DLLs are not beside it).
cmake -S examples/cmake-consumer-cpp -B "$cmake_dir/consumer_cpp" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$stage" "-DCMAKE_EXE_LINKER_FLAGS=-static-libgcc -static-libstdc++" >/dev/null
cmake --build "$cmake_dir/consumer_cpp"
for d in "$cmake_dir/consumer" "$cmake_dir/consumer_cpp"; do
  cp "$stage/bin/rp.dll" "$RP_WINE_PRNG_DLL" "$d/"
done
for exe in consumer/consumer consumer/consumer_static consumer_cpp/consumer_cpp; do
  echo "-- $exe"
  (cd "$cmake_dir/$(dirname "$exe")" && timeout 120 wine "./$(basename "$exe").exe")
done
cp "$RP_WINE_PRNG_DLL" "$stage/bin/"
echo "-- bin/rp.exe --version"
(cd "$stage/bin" && timeout 120 wine ./rp.exe --version)

echo "== Windows: C++ wrapper tests (tests/cpp/windows, and the tests/cpp ones without sockets) against rp.dll, under Wine"
# GoogleTest from its sources (Debian: googletest), built once with MinGW's POSIX-threads g++
# (GoogleTest needs std::mutex); the program is linked -static so that it needs no MinGW DLL.
gtest_src=${GTEST_SRC:-/usr/src/googletest/googletest}
[ -f "$gtest_src/src/gtest-all.cc" ] || { echo "GoogleTest sources are required in $gtest_src (googletest)" >&2; exit 1; }
cxx=(x86_64-w64-mingw32-g++-posix -std=c++17 -isystem "$gtest_src/include")
gtest_dir="$wine_dir/gtest"
mkdir -p "$gtest_dir"
for f in gtest-all gtest_main; do
  [ -f "$gtest_dir/$f.o" ] || "${cxx[@]}" -O1 -I"$gtest_src" -c "$gtest_src/src/$f.cc" -o "$gtest_dir/$f.o"
done
# tests/cpp/windows: push round trips over named pipes and TCP. Of tests/cpp, the others bind
# Unix socket paths or use fork and socket pairs.
"${cxx[@]}" -Wall -Wextra -Werror -Iinclude -Ibindings/cpp/include tests/cpp/windows/test_push_hpp.cpp \
  tests/cpp/test_validation_hpp.cpp tests/cpp/test_hygiene_hpp.cpp tests/cpp/double_include.cpp \
  "$gtest_dir/gtest-all.o" "$gtest_dir/gtest_main.o" -static "$out/librp.dll.a" -o "$ctest_dir/cpp_tests.exe"
(cd "$ctest_dir" && timeout 120 wine ./cpp_tests.exe >/dev/null)

echo "== Windows: Go binding (bindings/go) for windows/amd64 with cgo and MinGW, its tests under Wine"
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "go (1.24 or newer) is required for the Go binding build" >&2; exit 1; }
# Against the Windows install above, found through its rp.pc.
go_env=(env GOOS=windows GOARCH=amd64 CGO_ENABLED=1 CC=x86_64-w64-mingw32-gcc PKG_CONFIG_PATH="$stage/lib/pkgconfig")
go_dir="$wine_dir/go"
mkdir -p "$go_dir"
(cd bindings/go && "${go_env[@]}" go build ./... && "${go_env[@]}" go vet . &&
  "${go_env[@]}" go test -c -o "$go_dir/rp.test.exe" .)
cp "$stage/bin/rp.dll" "$RP_WINE_PRNG_DLL" "$go_dir/"
# Local endpoints are named pipes there; the Unix-only tests are left out by build tags.
(cd "$go_dir" && timeout 300 wine ./rp.test.exe -test.timeout 240s)

echo "== Windows leg: ok"
