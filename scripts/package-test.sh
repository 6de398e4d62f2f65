#!/usr/bin/env bash
# Debian packages of a release build, checked the way a user gets them:
#   scripts/package-test.sh [BUILD_DIR]   (default build/release, already built)
# 1. CPack makes librpX.Y (runtime), librp-dev, librp-tools and librp-dbg in BUILD_DIR/packages;
# 2. their fields and file lists are checked (names, dependencies between them, who owns what);
# 3. they are unpacked with dpkg-deb -x into a scratch root (no root privileges, nothing is
#    installed on this machine), and against that root:
#    - examples/cmake-consumer and examples/cmake-consumer-cpp are built with find_package(rp)
#      and run, the static one included;
#    - a program is built with `pkg-config --cflags --libs rp` and run, and a fully static one
#      with `cc -static ... pkg-config --static --cflags --libs rp`;
#    - examples/go-consumer, a module outside this one, is vendored (`go mod vendor` through its
#      `replace` line) and built with cgo and pkg-config, then run;
#    - rp (librp-tools) runs; gdb finds the debug info of librp.so in librp-dbg.
# Needs cpack, dpkg-deb, dpkg-shlibdeps (dpkg-dev), file, readelf, pkg-config, cc; go and gdb
# optional (their steps say so when skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build/release}" && pwd)
out="$build/packages"
root="$build/package-root"
work="$build/package-consumers"
rm -rf "$out" "$root" "$work"
mkdir -p "$out" "$root" "$work"

fail() { echo "package-test: $*" >&2; exit 1; }

echo "== cpack ($build)"
# (CPack warns that the .debug files have no SONAME: they are not libraries to register.)
cpack --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 || { cat "$out/cpack.log" >&2; fail "cpack failed"; }
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")
soversion=$(echo "$version" | awk -F. '$1 == 0 { print $1 "." $2; next } { print $1 }')
runtime="librp$soversion"
deb() { # deb PACKAGE: the one .deb of that package
  local f
  f=$(ls "$out/$1"_*.deb 2>/dev/null) || fail "no package $1 in $out"
  [ "$(echo "$f" | wc -l)" = 1 ] || fail "more than one $1 package: $f"
  echo "$f"
}
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
expect_field() { # expect_field PACKAGE FIELD REGEX
  local v
  v=$(field "$1" "$2")
  [[ "$v" =~ $3 ]] || fail "$1: $2 is '$v', expected /$3/"
}
files() { dpkg-deb -c "$(deb "$1")" | awk '{ print $6 }' | sed 's|^\./|/|' | grep -v '/$' | sort; }

for p in "$runtime" librp-dev librp-tools librp-dbg; do
  f=$(deb "$p")
  printf '%-45s %9s bytes  Installed-Size %5s KiB  Depends: %s\n' "$(basename "$f")" "$(stat -c %s "$f")" \
    "$(field "$p" Installed-Size)" "$(field "$p" Depends)"
  expect_field "$p" Version "^$version\$"
  expect_field "$p" Maintainer '.+ <.+@.+>'
  expect_field "$p" Description '.+'
done
expect_field "$runtime" Section '^libs$'
expect_field "$runtime" Depends 'libc6'
expect_field librp-dev Depends "(^|, )$runtime \\(= $version\\)"
expect_field librp-dbg Depends "(^|, )$runtime \\(= $version\\)"
expect_field librp-tools Depends 'libc6'
if [[ "$(field librp-tools Depends)" =~ librp ]]; then fail "librp-tools depends on librp (rp links librp statically)"; fi
dpkg-deb --ctrl-tarfile "$(deb "$runtime")" | tar -t | grep -qx './shlibs' || fail "$runtime has no shlibs file"

# Who owns what.
[ "$(files "$runtime")" = "$(printf '/usr/lib/librp.so.%s\n/usr/lib/librp.so.%s' "$soversion" "$version")" ] ||
  fail "$runtime holds: $(files "$runtime" | tr '\n' ' ')"
[ "$(files librp-tools)" = /usr/bin/rp ] || fail "librp-tools holds: $(files librp-tools | tr '\n' ' ')"
for f in /usr/include/rp.h /usr/include/rp/rp.hpp /usr/lib/librp.so /usr/lib/librp.a \
         /usr/lib/cmake/rp/rpConfig.cmake /usr/lib/cmake/rp/rpConfigVersion.cmake \
         /usr/lib/cmake/rp/rpTargets.cmake /usr/lib/pkgconfig/rp.pc; do
  files librp-dev | grep -qx "$f" || fail "librp-dev lacks $f"
done
[ "$(files librp-dev | wc -l)" = 8 ] || fail "librp-dev holds more: $(files librp-dev | tr '\n' ' ')"
files librp-dbg | grep -qvE '^/usr/lib/debug/\.build-id/[0-9a-f]{2}/[0-9a-f]+\.debug$' &&
  fail "librp-dbg holds more than build-id debug files: $(files librp-dbg | tr '\n' ' ')"
[ "$(files librp-dbg | wc -l)" = 2 ] || fail "librp-dbg should hold 2 debug files: $(files librp-dbg | tr '\n' ' ')"

echo "== dpkg-deb -x into $root"
for p in "$runtime" librp-dev librp-tools librp-dbg; do dpkg-deb -x "$(deb "$p")" "$root"; done
lib="$root/usr/lib"
du -b "$lib/librp.so.$version" "$lib/librp.a" "$root/usr/bin/rp" "$root"/usr/lib/debug/.build-id/*/*.debug

echo "== find_package(rp) consumers against $root/usr"
for c in cmake-consumer cmake-consumer-cpp; do
  cmake -S "examples/$c" -B "$work/$c" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        "-DCMAKE_PREFIX_PATH=$root/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >/dev/null
  cmake --build "$work/$c" >/dev/null
done
# Each must link the unpacked librp, not one elsewhere on the machine.
ldd "$work/cmake-consumer/consumer" | grep -qF "$lib/librp.so.$soversion" ||
  { ldd "$work/cmake-consumer/consumer" >&2; fail "consumer does not load $lib/librp.so.$soversion"; }
"$work/cmake-consumer/consumer"
"$work/cmake-consumer/consumer_static"
"$work/cmake-consumer-cpp/consumer_cpp"

echo "== pkg-config consumers against $root/usr"
export PKG_CONFIG_PATH="$lib/pkgconfig"
export PKG_CONFIG_LIBDIR="$lib/pkgconfig" # this root's rp.pc, never the machine's
dyn=$(pkg-config --cflags --libs rp)
static=$(pkg-config --static --cflags --libs rp)
echo "pkg-config --cflags --libs rp: $dyn"
echo "pkg-config --static --cflags --libs rp: $static"
# shellcheck disable=SC2086 # word splitting of the pkg-config flags is wanted
cc -std=c11 -Wall -Wextra -Werror examples/cmake-consumer/main.c $dyn -Wl,-rpath,"$lib" -o "$work/pc_consumer"
"$work/pc_consumer"
# shellcheck disable=SC2086
cc -static -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Itests/c tests/c/test_version.c \
   $static -o "$work/pc_static" 2>"$work/pc_static.log" || { cat "$work/pc_static.log" >&2; fail "cc -static failed"; }
if readelf -l -d "$work/pc_static" 2>/dev/null | grep -qE 'INTERP|NEEDED'; then fail "pc_static is not fully static"; fi
"$work/pc_static"

echo "== Go consumer (examples/go-consumer, vendored) against $root/usr"
[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
if command -v go >/dev/null; then
  cp -r examples/go-consumer "$work/go-consumer"
  (
    cd "$work/go-consumer"
    go mod edit -replace "github.com/librp/rp/bindings/go=$OLDPWD/bindings/go"
    go mod vendor
    [ -f vendor/github.com/librp/rp/bindings/go/shims.c ] || fail "go mod vendor left out the cgo sources"
    GOFLAGS=-mod=vendor CGO_ENABLED=1 go build -o goconsumer .
    LD_LIBRARY_PATH="$lib" ./goconsumer
  )
else
  echo "go not installed: the Go consumer is not built"
fi

echo "== rp (librp-tools)"
"$root/usr/bin/rp" --version
decoded=$("$root/usr/bin/rp" decode "$(tr -d ' \n' <tests/vectors/consumer_request_deadline.hex)")
grep -q 'deadline_unix_ms  1700000000123' <<<"$decoded" || { echo "$decoded" >&2; fail "rp decode printed the wrong fields"; }

echo "== debug info (librp-dbg)"
if command -v gdb >/dev/null; then
  line=$(gdb -nx -batch -ex "set debug-file-directory $root/usr/lib/debug" -ex "file $lib/librp.so.$version" \
             -ex 'info line rp_version_number' 2>&1 | tail -1)
  echo "$line"
  [[ "$line" =~ ^Line\ [0-9]+\ of\ \"src/ffi/ ]] || fail "gdb found no line info for librp in librp-dbg"
else
  echo "gdb not installed: the debug files' build ids are checked by install.consumer only"
fi
echo "package-test: ok ($(cd "$out" && ls ./*.deb | tr '\n' ' '))"
