#!/usr/bin/env bash
# Runs xds_interop_test.js: installs its npm dependencies (package.json, no lockfile) into a
# cache under the build tree on first use, then drives xds_client_probe against a Node.js
# management server that uses the upstream Envoy protos.
#
# usage: run_xds_interop.sh PROBE_BINARY CACHE_DIR
# Exit 77 (ctest SKIP_RETURN_CODE) only when node or npm is missing.
set -euo pipefail

probe=$1
cache=$2
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP: node and npm are required for the interop test (deploy/install-deps.sh installs them)"
  exit 77
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$cache"
# Reinstall when package.json changed; npm install is skipped otherwise (it is slow).
if ! cmp -s "$here/package.json" "$cache/package.json" ||
  [[ ! -f "$cache/node_modules/@grpc/grpc-js-xds/package.json" ]]; then
  cp "$here/package.json" "$cache/package.json"
  rm -rf "$cache/node_modules"
  echo "installing npm dependencies into $cache"
  (cd "$cache" && npm install --no-package-lock --no-audit --no-fund --loglevel=error)
fi

export NODE_PATH="$cache/node_modules"
exec node "$here/xds_interop_test.js" --probe "$probe" \
  --deps "$cache/node_modules/@grpc/grpc-js-xds/deps"
