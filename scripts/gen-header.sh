#!/usr/bin/env bash
# Regenerates include/rp.h from src/ffi with the pinned cbindgen (a dev-dependency).
set -euo pipefail
cd "$(dirname "$0")/.."
RP_BLESS_HEADER=1 cargo test --locked --quiet --test header
echo "include/rp.h regenerated"
