#!/bin/bash
# Build rct and run the demo: a secondary and a primary on 127.0.0.1, a
# simulated guest on each side, every checkpoint verified byte for byte.
# Arguments go to 'rctctl demo' (see: scripts/demo.sh --help).
#   scripts/demo.sh --backend tcp --lanes 4
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=${RCT_BUILD_DIR:-$top/build}
"$top/scripts/deps.sh" build
cmake -S "$top" -B "$B/demo" -DCMAKE_BUILD_TYPE=Release -DRCT_BUILD_TESTS=OFF >/dev/null
cmake --build "$B/demo" -j "$(nproc)" >/dev/null
exec "$B/demo/daemon/rctctl" demo "$@"
