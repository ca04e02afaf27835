#!/usr/bin/env bash
# The main job: build (Release), start two demo upstreams on free ports, and run the proxy in
# the foreground with deploy/examples/static-demo.yaml routing /service/1 and /service/2 to
# them. Ctrl-C stops everything this script started (and nothing else).
#
# Environment: BUILD_DIR (default build), LISTEN_PORT (10000), ADMIN_PORT (9901),
# CONCURRENCY (default: the proxy's, one worker per core).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
LISTEN_PORT=${LISTEN_PORT:-10000}
ADMIN_PORT=${ADMIN_PORT:-9901}

echo "==> building (Release) in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream

PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"
if [[ -z $PROXY_BIN || ! -x $UPSTREAM_BIN ]]; then
  echo "run-demo.sh: build did not produce the proxy and demo-upstream binaries" >&2
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

# The example bootstrap with the real upstream ports (and the chosen listener/admin ports).
sed -e "s/port_value: 8081 } # demo-upstream-1/port_value: ${upstream_ports[0]} } # demo-upstream-1/" \
    -e "s/port_value: 8082 } # demo-upstream-2/port_value: ${upstream_ports[1]} } # demo-upstream-2/" \
    -e "s/port_value: 10000 }/port_value: $LISTEN_PORT }/" \
    -e "s/port_value: 9901 }/port_value: $ADMIN_PORT }/" \
    deploy/examples/static-demo.yaml >"$RUN_DIR/bootstrap.yaml"

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

==> the proxy is serving on 127.0.0.1:$LISTEN_PORT (admin on 127.0.0.1:$ADMIN_PORT)

    curl http://127.0.0.1:$LISTEN_PORT/service/1      # answered by upstream-1
    curl http://127.0.0.1:$LISTEN_PORT/service/2      # answered by upstream-2
    curl http://127.0.0.1:$LISTEN_PORT/nothing -i     # 404: no route
    curl http://127.0.0.1:$ADMIN_PORT/stats | grep -E 'downstream_rq|upstream_rq'
    curl http://127.0.0.1:$ADMIN_PORT/config_dump

    Ctrl-C stops the proxy and both upstreams.

MSG

# A proxy that exits on its own ends the demo with its exit code.
set +e
wait "$PROXY_PID"
code=$?
set -e
exit "$code"
