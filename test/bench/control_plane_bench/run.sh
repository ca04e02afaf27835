#!/usr/bin/env bash
# Push one snapshot to N connected ADS streams and time it.
#
# Builds control-plane-stub and the load client (Release), starts the control plane on free
# ports (logging at warn, so a thousand ACK lines per round do not dominate), runs
#   control_plane_load_client --streams N ...
# against it, prints the table, and stops the control plane it started.
#
#   test/bench/control_plane_bench/run.sh [load client flags...]
#   e.g. test/bench/control_plane_bench/run.sh --streams 1000 --rounds 10 --endpoints 10
#
# Environment: BUILD_DIR (default build-bench), JOBS (default nproc), LOG_LEVEL (warn).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
JOBS=${JOBS:-$(nproc)}
LOG_LEVEL=${LOG_LEVEL:-warn}
export CCACHE_BASEDIR="$ROOT"

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" --target control-plane-stub control_plane_load_client >/dev/null

WORK=$(mktemp -d)
CP_PID=
cleanup() {
  if [[ -n $CP_PID ]] && kill -0 "$CP_PID" 2>/dev/null; then
    kill -TERM "$CP_PID"
    wait "$CP_PID" || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BUILD_DIR/control_plane_stub/control-plane-stub" \
  --xds-address 127.0.0.1:0 --admin-address 127.0.0.1:0 \
  --port-file "$WORK/ports" --log-level "$LOG_LEVEL" 2>"$WORK/control-plane.log" &
CP_PID=$!
for _ in $(seq 1 200); do
  [[ -s $WORK/ports ]] && break
  sleep 0.05
done
if [[ ! -s $WORK/ports ]]; then
  echo "control-plane-stub did not start:" >&2
  cat "$WORK/control-plane.log" >&2
  exit 1
fi
read -r XDS_FIELD ADMIN_FIELD <"$WORK/ports"
XDS=${XDS_FIELD#xds=}
ADMIN=${ADMIN_FIELD#admin=}
echo "control-plane-stub: xds=$XDS admin=$ADMIN (pid $CP_PID, $(nproc) CPUs)"

"$BUILD_DIR/test/bench/control_plane_bench/control_plane_load_client" \
  --xds "$XDS" --admin "$ADMIN" "$@"

echo "control plane peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$CP_PID/status)," \
  "threads: $(ls /proc/$CP_PID/task | wc -l)"
