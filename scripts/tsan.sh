#!/usr/bin/env bash
# ThreadSanitizer leg of the test command: librp built with -Zsanitizer=thread (nightly Rust,
# -Zbuild-std: the standard library is instrumented too) in its own target dir (target/tsan),
# then
#   1. the Rust tests of the library and its integration tests (those TSan can run, see below),
#   2. the C tests, the C++ wrapper tests and the examples, built with clang -fsanitize=thread
#      (GCC's libtsan lacks __tsan_memcpy/__tsan_memmove/__tsan_memset, which rustc calls),
#      in build/tsan, each loading the instrumented librp of build/tsan/lib.
# Any report fails the run (halt_on_error=1, exit code 66).
# Needs: a nightly toolchain with rust-src (RP_NIGHTLY, default the pinned nightly-2026-05-20)
# and clang (RP_TSAN_CC, default clang-22: the LLVM of that nightly). .ci/run installs both.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
jobs=$(nproc 2>/dev/null || echo 2)
cc=${RP_TSAN_CC:-clang-22}
cxx=${RP_TSAN_CXX:-${cc/clang/clang++}}
command -v "$cc" >/dev/null || { echo "$cc is required for the ThreadSanitizer build" >&2; exit 1; }
nightly=${RP_NIGHTLY:-nightly-2026-05-20}
triple=$(rustc "+$nightly" -vV | sed -n 's/^host: //p')
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
# tsan_cargo SUBCOMMAND ARGS...: the build flags go right after the subcommand, so that ARGS
# may end with `-- TEST-ARGS` (with an explicit --target, RUSTFLAGS stay off build scripts).
tsan_cargo() {
  local sub=$1
  shift
  RUSTFLAGS="-Zsanitizer=thread" CARGO_TARGET_DIR="$PWD/target/tsan" \
    cargo "+$nightly" "$sub" --locked -Zbuild-std --target "$triple" "$@"
}

echo "== tsan: cargo test (lib and integration tests)"
# Left out: the heavy #[ignore]d tests (they run in release above: load and storm have no
# others); tests without threads (header text, golden vectors, allocation counts), where TSan
# has nothing to check; and the two volume tests (a 64 MiB unread stream, a 12 MiB push_wait),
# whose threads and paths the other tests cover with small data and which take a minute or
# more under TSan's debug build. fuzz_corpus is in: its event-loop inputs run the servers' threads.
tsan_cargo test --lib \
  --test broker --test handoff --test handoff_faults --test hostile --test identity_probe \
  --test panic_boundary --test push --test security --test session --test stream \
  --test mux_cases --test fuzz_corpus --test tls --test tls_session \
  -- --skip a_reader_that_falls_64_mib_behind --skip push_wait_delivers_a_push_larger_than_the_socket_buffers

echo "== tsan: C tests, C++ wrapper tests, examples (build/tsan, $cc)"
CC=$cc CXX=$cxx cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRP_TSAN=ON \
  -DRP_TSAN_TOOLCHAIN="$nightly" -DRP_CARGO_TARGET_DIR="$PWD/target/tsan" >/dev/null
cmake --build build/tsan -j "$jobs"
# TSan must really be in both the C tests and librp.
nm build/tsan/test_errors | grep __tsan_init >/dev/null || { echo "TSan not linked into the C tests" >&2; exit 1; }
nm -D build/tsan/lib/librp.so | grep __tsan_func_entry >/dev/null || { echo "librp is not built with TSan" >&2; exit 1; }
# Each program must load this instrumented librp: a librp without TSan hides librp's own
# synchronisation from it, which then reports races that are not there (LD_LIBRARY_PATH outranks
# the programs' RUNPATH, so it is cleared here and the loader's choice checked).
unset LD_LIBRARY_PATH
for prog in build/tsan/test_push build/tsan/cpp_tests build/tsan/push_server; do
  ldd "$prog" | grep -F "$PWD/build/tsan/lib/librp.so" >/dev/null ||
    { echo "$prog does not load build/tsan/lib/librp.so" >&2; ldd "$prog" >&2; exit 1; }
done
# Not run here: the export check and the install/consumer test (not about threads; the consumer
# is not built with TSan, which an instrumented librp needs).
ctest --test-dir build/tsan --output-on-failure --timeout 300 -j "$jobs" -R '^(c|cpp|example)\.'
