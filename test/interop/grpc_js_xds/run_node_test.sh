#!/usr/bin/env bash
# Runs one Node.js interop test: installs the npm dependencies of test/interop/package.json (the
# versions the xds_client interop test uses; no lockfile) into CACHE_DIR on first use, then
# runs SCRIPT with NODE_PATH pointing there. Tests sharing a cache serialise the install with a
# lock (ctest -j runs them in parallel).
#
# usage: run_node_test.sh CACHE_DIR SCRIPT [ARGS...]
# Exit 77 (ctest SKIP_RETURN_CODE) only when node or npm is missing.
set -euo pipefail

cache=$1
script=$2
shift 2
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP: node and npm are required for the interop tests (deploy/install-deps.sh installs them)"
  exit 77
fi

package_json=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/package.json
mkdir -p "$cache"
(
  flock 9
  # Reinstall when package.json changed (npm install is slow); the copy that says what is
  # installed is written only after a complete install.
  if ! cmp -s "$package_json" "$cache/installed.package.json"; then
    rm -rf "$cache/node_modules" "$cache/installed.package.json"
    cp "$package_json" "$cache/package.json"
    echo "installing npm dependencies into $cache"
    (cd "$cache" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
    cp "$package_json" "$cache/installed.package.json"
  fi
) 9>"$cache/.install.lock"

export NODE_PATH="$cache/node_modules"
exec node "$script" --deps "$cache/node_modules/@grpc/grpc-js-xds/deps" "$@"
