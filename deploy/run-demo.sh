#!/usr/bin/env bash
# The main job: build (Release), start the reference management server (control-plane-stub)
# serving control_plane_stub/examples/demo-snapshot.yaml, two demo upstreams on free ports, and
# the proxy, whose bootstrap (deploy/examples/dynamic-demo.yaml) has only dynamic_resources: it
# gets its listener, routes, clusters and endpoints over ADS. Prints the requests to try and the
# one command that pushes a changed snapshot (the endpoints swapped) to see a live update.
# Ctrl-C stops everything this script started (and nothing else).
#
# Environment: BUILD_DIR (default build), LISTEN_PORT (10000), ADMIN_PORT (9901), XDS_PORT
# (18000), CONTROL_PLANE_ADMIN_PORT (18001), CONCURRENCY (default: the proxy's, one worker per
# core), DEMO_TLS=1: the xDS stream over mutual TLS (certificates made by
# deploy/make-demo-certs.sh; control-plane-stub requires the proxy's client certificate; the
# proxy's bootstrap is deploy/examples/dynamic-demo-mtls.yaml).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
LISTEN_PORT=${LISTEN_PORT:-10000}
ADMIN_PORT=${ADMIN_PORT:-9901}
XDS_PORT=${XDS_PORT:-18000}
CONTROL_PLANE_ADMIN_PORT=${CONTROL_PLANE_ADMIN_PORT:-18001}
DEMO_TLS=${DEMO_TLS:-0}

echo "==> building (Release) in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream control-plane-stub

PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"
CONTROL_PLANE_BIN="$BUILD_DIR/control_plane_stub/control-plane-stub"
if [[ -z $PROXY_BIN || ! -x $UPSTREAM_BIN || ! -x $CONTROL_PLANE_BIN ]]; then
  echo "run-demo.sh: build did not produce the proxy, demo-upstream and control-plane-stub" \
    "binaries" >&2
  exit 1
fi

RUN_DIR=$(mktemp -d /tmp/proxy-demo.XXXXXX)
PIDS=()
cleanup() {
  trap - INT TERM EXIT
  # Only the PIDs this script started: SIGTERM lets the proxy drain, then they are gone.
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'echo; echo "==> stopping"; exit 0' INT TERM

# Wait (bounded) until `file` contains a line matching `pattern`; the started process has to
# still be alive meanwhile.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 1 200); do
    if grep -qE "$pattern" "$file" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-demo.sh: process $pid exited; its output:" >&2
      cat "$file" >&2
      return 1
    fi
    sleep 0.05
  done
  echo "run-demo.sh: timed out waiting for '$pattern' in $file" >&2
  return 1
}

# Each upstream binds 127.0.0.1:0 and prints "listening on 127.0.0.1:N": no port guessing.
upstream_ports=()
for i in 1 2; do
  "$UPSTREAM_BIN" --port 0 --name "upstream-$i" >"$RUN_DIR/upstream-$i.log" 2>&1 &
  PIDS+=($!)
  wait_for_line "$RUN_DIR/upstream-$i.log" "listening on 127\.0\.0\.1:[0-9]+" "$!"
  port=$(grep -oE "listening on 127\.0\.0\.1:[0-9]+" "$RUN_DIR/upstream-$i.log" | head -n1 |
    sed 's/.*://')
  upstream_ports+=("$port")
  echo "==> upstream-$i listening on 127.0.0.1:$port"
done

# The example snapshot with the real upstream ports (and the chosen listener port), and the
# changed snapshot the user pushes: version 2, the two upstreams swapped.
demo_snapshot() {
  local version=$1 port1=$2 port2=$3
  sed -e "s/^version: \"1\"/version: \"$version\"/" \
    -e "s/port_value: 8081 } # demo-upstream-1/port_value: $port1 } # demo-upstream-1/" \
    -e "s/port_value: 8082 } # demo-upstream-2/port_value: $port2 } # demo-upstream-2/" \
    -e "s/port_value: 10000 }/port_value: $LISTEN_PORT }/" \
    control_plane_stub/examples/demo-snapshot.yaml
}
demo_snapshot 1 "${upstream_ports[0]}" "${upstream_ports[1]}" >"$RUN_DIR/snapshot.yaml"
demo_snapshot 2 "${upstream_ports[1]}" "${upstream_ports[0]}" >"$RUN_DIR/snapshot-swapped.yaml"

tls_args=()
bootstrap_example=deploy/examples/dynamic-demo.yaml
if [[ $DEMO_TLS == 1 ]]; then
  bash deploy/make-demo-certs.sh "$RUN_DIR/certs"
  tls_args=(--tls-cert "$RUN_DIR/certs/server.pem" --tls-key "$RUN_DIR/certs/server.key"
    --tls-client-ca "$RUN_DIR/certs/ca.pem")
  bootstrap_example=deploy/examples/dynamic-demo-mtls.yaml
fi
echo "==> starting control-plane-stub (xDS on 127.0.0.1:$XDS_PORT$([[ $DEMO_TLS == 1 ]] &&
  echo ' over mutual TLS'), admin API on 127.0.0.1:$CONTROL_PLANE_ADMIN_PORT)"
"$CONTROL_PLANE_BIN" --xds-address "127.0.0.1:$XDS_PORT" \
  --admin-address "127.0.0.1:$CONTROL_PLANE_ADMIN_PORT" --snapshot "$RUN_DIR/snapshot.yaml" \
  --port-file "$RUN_DIR/control-plane.ports" "${tls_args[@]}" >"$RUN_DIR/control-plane.log" 2>&1 &
PIDS+=($!)
wait_for_line "$RUN_DIR/control-plane.ports" "xds=" "$!" ||
  { cat "$RUN_DIR/control-plane.log" >&2; exit 1; }

# The dynamic bootstrap, pointed at the control plane (and the chosen admin port).
sed -e "s/port_value: 18000 }/port_value: $XDS_PORT }/" \
    -e "s/127.0.0.1:18000 # control-plane-stub/127.0.0.1:$XDS_PORT/" \
    -e "s/port_value: 9901 }/port_value: $ADMIN_PORT }/" \
    -e "s|CERTS_DIR|$RUN_DIR/certs|g" \
    "$bootstrap_example" >"$RUN_DIR/bootstrap.yaml"

proxy_args=(-c "$RUN_DIR/bootstrap.yaml" --log-level info --drain-time-s 5
  --admin-address-path "$RUN_DIR/admin_address")
if [[ -n ${CONCURRENCY:-} ]]; then
  proxy_args+=(--concurrency "$CONCURRENCY")
fi
echo "==> starting: $PROXY_BIN ${proxy_args[*]}"
# In the background only so that this script can print the URLs once the proxy is ready; its
# logs still go to this terminal.
"$PROXY_BIN" "${proxy_args[@]}" &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
ready=0
for _ in $(seq 1 200); do
  if ! kill -0 "$PROXY_PID" 2>/dev/null; then
    break
  fi
  if curl -fsS "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.05
done
if [[ $ready -ne 1 ]]; then
  echo "run-demo.sh: the proxy did not become ready (see its log above)" >&2
  exit 1
fi

cat <<MSG

==> the proxy is serving on 127.0.0.1:$LISTEN_PORT (admin on 127.0.0.1:$ADMIN_PORT), configured
    over xDS by control-plane-stub (its log: $RUN_DIR/control-plane.log)

    curl http://127.0.0.1:$LISTEN_PORT/service/1      # answered by upstream-1
    curl http://127.0.0.1:$LISTEN_PORT/service/2      # answered by upstream-2
    curl http://127.0.0.1:$LISTEN_PORT/nothing -i     # 404: no route
    curl http://127.0.0.1:$ADMIN_PORT/stats | grep -E 'downstream_rq|upstream_rq'
    curl http://127.0.0.1:$ADMIN_PORT/config_dump     # what the proxy got over xDS
    curl http://127.0.0.1:$CONTROL_PLANE_ADMIN_PORT/v1/status    # the control plane: ACKs, NACKs

    Push a new snapshot (version 2: the upstreams swapped), live, without a restart:

    curl -X PUT --data-binary @$RUN_DIR/snapshot-swapped.yaml http://127.0.0.1:$CONTROL_PLANE_ADMIN_PORT/v1/snapshot

    then /service/1 is answered by upstream-2 and /service/2 by upstream-1.

    Ctrl-C stops the proxy, the control plane and both upstreams.

MSG

# A proxy that exits on its own ends the demo with its exit code.
set +e
wait "$PROXY_PID"
code=$?
set -e
exit "$code"
