#!/usr/bin/env bash
# Compiles every ```c and ```cpp block of README.md with -Wall -Wextra -Werror, so the README
# never shows code that a careful user's build rejects.
# Usage: scripts/readme-snippets.sh CC CXX   (run from anywhere)
#
# A block is compiled as a file of its own: its preprocessor lines at the top; the rest at file
# scope when it defines a function (a line at column 0 like "type name(...) {"), otherwise as the body
# of a function.
set -euo pipefail
cc=${1:?usage: readme-snippets.sh CC CXX}
cxx=${2:?usage: readme-snippets.sh CC CXX}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/rp-readme.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# Splits README.md into $dir/snippet_N.c / .cpp.
awk -v dir="$dir" '
  /^```(c|cpp)$/ { lang = substr($0, 4); n++; head = ""; body = ""; fnscope = 0; inblock = 1; next }
  inblock && /^```$/ {
    file = sprintf("%s/snippet_%d.%s", dir, n, lang)
    printf "%s", head > file
    if (fnscope) printf "%s", body > file
    else printf "void readme_snippet_%d(void);\nvoid readme_snippet_%d(void) {\n%s}\n", n, n, body > file
    close(file); inblock = 0; next
  }
  inblock && /^#/ { head = head $0 "\n"; next }
  inblock { if ($0 ~ /^[A-Za-z_][A-Za-z0-9_ *]* [A-Za-z_][A-Za-z0-9_]*\(.*\) \{$/) fnscope = 1; body = body $0 "\n" }
' "$root/README.md"

count=0
for f in "$dir"/snippet_*; do
  [ -e "$f" ] || continue
  case "$f" in
    *.c)
      extra=()
      if grep -q '#include <uv.h>' "$f"; then # libuv's header needs POSIX; skipped without libuv
        if ! pkg-config --exists libuv 2>/dev/null; then
          echo "skipped (no libuv): $(basename "$f")"
          continue
        fi
        read -ra extra <<<"-D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(pkg-config --cflags libuv)"
      fi
      "$cc" -std=c11 -Wall -Wextra -Werror "${extra[@]}" -I"$root/include" -c "$f" -o "$f.o" ;;
    *.cpp) "$cxx" -std=c++17 -Wall -Wextra -Werror -I"$root/include" -I"$root/bindings/cpp/include" -c "$f" -o "$f.o" ;;
  esac || { echo "README snippet failed to compile:" >&2; cat -n "$f" >&2; exit 1; }
  count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "no C or C++ blocks found in README.md" >&2; exit 1; }
echo "README: $count C/C++ blocks compile with -Wall -Wextra -Werror"
