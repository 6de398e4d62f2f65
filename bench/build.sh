#!/usr/bin/env bash
# Builds librp (Release) and the named C benchmark programs of bench/c into build/bench, with
# the libraries each one links. Shared by bench/run.sh, bench/push_rtt.sh and
# bench/codec_instr.sh.
#
#   bench/build.sh [--no-lib] NAME...     (--no-lib: use the librp already in build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ "${1:-}" = --no-lib ]; then
  shift
else
  cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build/release --target rp_cargo >/dev/null
fi
out=build/bench
mkdir -p "$out"
cflags=(-O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Iinclude -Ibench/c)
librp=(-Lbuild/release/lib -lrp -Wl,-rpath,"$PWD/build/release/lib")
for name in "$@"; do
  case "$name" in
    uds_pingpong) libs=() ;;
    push_rtt | session_rtt | push_scale | codec) libs=("${librp[@]}") ;;
    hello_rtt) libs=("${librp[@]}" -lpthread) ;;
    stream) libs=("${librp[@]}" -lzmq) ;;
    zmq_reqrep) libs=(-lzmq) ;;
    nng_reqrep) libs=(-lnng -lpthread) ;;
    *) echo "bench/build.sh: unknown benchmark $name" >&2; exit 2 ;;
  esac
  cc "${cflags[@]}" "bench/c/$name.c" "${libs[@]}" -o "$out/$name"
done
