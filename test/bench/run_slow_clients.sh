#!/usr/bin/env bash
# Slow and idle clients against our proxy and Envoy 1.40 from the same bootstrap file — a
# measurement, never a test (issue 13's numbers). Per server and scenario, a fresh server
# (--concurrency 1) gets CONNECTIONS connections from slow_clients.py for SECONDS seconds:
#   idle          one request each, then silent keep-alive connections (HCM defaults)
#   slowloris     headers that never end, one byte a second (HCM defaults: Envoy has no
#                 request_headers_timeout unless configured)
#   slowloris-rht the same with request_headers_timeout: 2s
# and the table shows the server's RSS growth per connection, how many connections the server
# closed and with which statuses, and whether 20 ordinary requests sent meanwhile succeeded.
#
#   bash test/bench/run_slow_clients.sh
#
# Environment: BUILD_DIR (build), CONNECTIONS (2000), SECONDS_EACH (6), TARGETS ("proxy envoy").
# Memory and counts, not timings. Everything listens on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
CONNECTIONS=${CONNECTIONS:-2000}
SECONDS_EACH=${SECONDS_EACH:-6}
TARGETS=${TARGETS:-"proxy envoy"}
PEERS_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/xds-proxy-peers
ENVOY=$(cat "$PEERS_DIR/envoy-path" 2>/dev/null || true)
if [[ " $TARGETS " == *" envoy "* ]] && [[ ! -x $ENVOY ]]; then
  echo "run_slow_clients.sh: needs Envoy (bash deploy/install-peers.sh)" >&2
  exit 2
fi
[[ $(ulimit -n) -ge $((CONNECTIONS + 200)) ]] || ulimit -n $((CONNECTIONS + 200))

echo "==> building in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] || cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream >/dev/null
PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"

source "$ROOT/test/bench/bench_lib.sh"
bench_init run_slow_clients.sh

start_upstream UPSTREAM_PORT upstream

bootstrap() {
  local hcm_extra=$1
  cat <<YAML
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
          $hcm_extra
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: "/"}, route: {cluster: upstream}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - {name: upstream, type: STATIC, connect_timeout: 1s, load_assignment: {cluster_name: upstream, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UPSTREAM_PORT}}}}]}]}}
YAML
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# run TARGET SCENARIO: prints one table row.
run() {
  local target=$1 scenario=$2 mode=idle extra=""
  [[ $scenario == slowloris* ]] && mode=slowloris
  [[ $scenario == slowloris-rht ]] && extra="request_headers_timeout: 2s"
  bootstrap "$extra" >"$RUN_DIR/bootstrap.yaml"
  local cmd=("$PROXY_BIN")
  [[ $target == envoy ]] && cmd=("$ENVOY" --disable-hot-restart)
  start_server "$RUN_DIR/$target.log" "${cmd[@]}" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
    --log-level error
  local port=$SERVER_PORT pid=$SERVER_PID
  for _ in 1 2 3; do curl -fsS "http://127.0.0.1:$port/" >/dev/null; done
  local before peak ok=0
  before=$(rss_kib "$pid")
  python3 "$ROOT/test/bench/slow_clients.py" --port "$port" --connections "$CONNECTIONS" \
    --seconds "$SECONDS_EACH" --mode "$mode" >"$RUN_DIR/clients.out" &
  local clients=$!
  sleep $((SECONDS_EACH / 2))
  peak=$(rss_kib "$pid")
  for _ in $(seq 1 20); do
    curl -fsS -m 2 "http://127.0.0.1:$port/" >/dev/null 2>&1 && ok=$((ok + 1))
  done
  wait "$clients"
  stop_server
  printf '%-7s %-14s | %8s KiB | %6s B/conn | %5s/20 | %s\n' "$target" "$scenario" "$before" \
    "$(((peak - before) * 1024 / CONNECTIONS))" "$ok" "$(cat "$RUN_DIR/clients.out")"
}

echo
echo "==> $CONNECTIONS connections per scenario, ${SECONDS_EACH}s each (RSS growth at the midpoint)"
printf '%-7s %-14s | %12s | %13s | %8s | %s\n' server scenario "RSS before" "RSS growth" \
  "others ok" "slow clients: opened, closed by server, statuses"
for scenario in idle slowloris slowloris-rht; do
  for target in $TARGETS; do
    run "$target" "$scenario"
  done
done
