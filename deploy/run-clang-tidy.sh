#!/usr/bin/env bash
# clang-tidy (Debian 12's, 14) with the repository's .clang-tidy over the product's sources
# (proxy/, xds_client/, control_plane_stub/), using build/compile_commands.json. On demand, not
# part of CI (see .clang-tidy for why). Exits non-zero when a check reports something.
#
#   bash deploy/run-clang-tidy.sh            # BUILD_DIR=build, JOBS=nproc
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
command -v run-clang-tidy >/dev/null || {
  echo "run-clang-tidy.sh: run-clang-tidy is missing: apt-get install clang-tidy" >&2
  exit 1
}
[[ -f $BUILD_DIR/compile_commands.json ]] || cmake -S . -B "$BUILD_DIR" >/dev/null
# The generated protobuf headers must exist for the sources to parse.
cmake --build "$BUILD_DIR" -j"$JOBS" --target xds_protos_generated >/dev/null 2>&1 || true
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run-clang-tidy -p "$BUILD_DIR" -j "$JOBS" -quiet "$ROOT/(proxy|xds_client|control_plane_stub)/.*\.cc\$" \
  2>&1 | tee "$out" | grep -E "warning:|error:" || true
if grep -qE "warning: .*\[(bugprone|performance|clang-analyzer)-" "$out"; then
  echo "run-clang-tidy.sh: findings above" >&2
  exit 1
fi
echo "run-clang-tidy.sh: no findings"
