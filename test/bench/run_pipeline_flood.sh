#!/usr/bin/env bash
# The pipelining memory attack of the hardening issue, as a measurement (never a test): for a
# direct_response route and an upstream route, with 1 and with 100 connections, a fresh proxy
# (--concurrency 1) is flooded for FLOOD_SECONDS with pipelined GETs that are never read;
# pipeline-flood prints the proxy's VmRSS before, at the peak, after reading every response
# back, and SETTLE_SECONDS after the connections closed.
#
#   bash test/bench/run_pipeline_flood.sh
#   PROXY_BIN=/path/to/other/proxy bash test/bench/run_pipeline_flood.sh   # compare a build
#
# Environment: BUILD_DIR (default build), PROXY_BIN (default: the one in BUILD_DIR),
# FLOOD_SECONDS (5), SETTLE_SECONDS (3), READ (1: read every response back before closing;
# 0: close at once, for a proxy that buffers gigabytes; default 1, except for upstream:100,
# whose millions of queued requests are each an upstream round trip: minutes to read back),
# CASES (default "direct:1 direct:100 upstream:1 upstream:100"). Everything listens on
# 127.0.0.1, on ports the processes pick.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
FLOOD_SECONDS=${FLOOD_SECONDS:-5}
SETTLE_SECONDS=${SETTLE_SECONDS:-3}
READ=${READ:-}
CASES=${CASES:-"direct:1 direct:100 upstream:1 upstream:100"}

echo "==> building in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] || cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream pipeline-flood >/dev/null
PROXY_BIN=${PROXY_BIN:-$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)}
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"
FLOOD_BIN="$BUILD_DIR/test/integration/pipeline-flood"

source "$ROOT/test/bench/bench_lib.sh"
bench_init run_pipeline_flood.sh

start_upstream UPSTREAM_PORT upstream

cat >"$RUN_DIR/bootstrap.yaml" <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {path: "/direct"}, direct_response: {status: 200, body: {inline_string: "hello\n"}}}
              - {match: {prefix: "/"}, route: {cluster: upstream}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - {name: upstream, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: upstream, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UPSTREAM_PORT}}}}]}]}}
YAML

for case in $CASES; do
  route=${case%%:*}
  connections=${case##*:}
  path=/direct
  [[ $route == upstream ]] && path=/upstream
  start_server "$RUN_DIR/proxy.log" "$PROXY_BIN" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
    --log-level warning --drain-time-s 1
  PROXY_PID=$SERVER_PID
  PROXY_PORT=$SERVER_PORT
  curl -fsS "http://127.0.0.1:$PROXY_PORT$path" >/dev/null

  echo
  echo "==> $route route ($path), $connections connection(s), proxy $PROXY_BIN"
  "$FLOOD_BIN" --port "$PROXY_PORT" --pid "$PROXY_PID" --connections "$connections" \
    --seconds "$FLOOD_SECONDS" --settle-seconds "$SETTLE_SECONDS" --path "$path" \
    $([[ ${READ:-$([[ $case == upstream:100 ]] && echo 0 || echo 1)} == 1 ]] && echo --read)
  stop_server
done
