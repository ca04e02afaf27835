#!/usr/bin/env bash
# How much of the traffic a failing endpoint costs the clients, with and without the proxy's
# resilience features — a measurement, never a test (issue 13's numbers). Four endpoints behind
# one round-robin cluster; the fourth one fails in one of three ways:
#   503      it answers every request with 503
#   refused  nothing listens on its port (connect failure)
#   hang     it answers 5 s late; the route gives up after 1 s (504)
# and the route/cluster uses one of four policies:
#   none     plain round robin
#   retries  retry_policy {retry_on: 5xx,reset,connect-failure, num_retries: 2,
#            per_try_timeout: 0.25s, previous_hosts}, with a retry budget of 1000
#            (circuit_breakers max_retries; BUDGET=default keeps Envoy's 3)
#   od       outlier_detection {consecutive_5xx: 5, max_ejection_percent: 50}
#   both     retries + outlier detection
# For each, a fresh server (our proxy, and Envoy 1.40 from the same bootstrap file) takes
# `wrk -t1 -c10 -d${DURATION}s`; the table shows failed requests (non-2xx, read errors,
# timeouts) out of all, per server.
#
#   bash test/bench/run_failing_endpoint.sh
#
# Environment: BUILD_DIR (default build), DURATION (default 3), BUDGET (large|default), TARGETS ("proxy envoy"),
# FAULTS ("503 refused hang"), POLICIES ("none retries od both"). Everything listens on
# 127.0.0.1, on ports the processes pick. Counts, not timings: the machine may be busy.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
DURATION=${DURATION:-3}
TARGETS=${TARGETS:-"proxy envoy"}
FAULTS=${FAULTS:-"503 refused hang"}
POLICIES=${POLICIES:-"none retries od both"}
PEERS_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/xds-proxy-peers
ENVOY=$(cat "$PEERS_DIR/envoy-path" 2>/dev/null || true)
command -v wrk >/dev/null || { echo "run_failing_endpoint.sh: needs wrk (bash deploy/install-bench-deps.sh)" >&2; exit 2; }
if [[ " $TARGETS " == *" envoy "* ]] && [[ ! -x $ENVOY ]]; then
  echo "run_failing_endpoint.sh: needs Envoy (bash deploy/install-peers.sh)" >&2
  exit 2
fi

echo "==> building in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
[[ -f "$BUILD_DIR/CMakeCache.txt" ]] || cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream >/dev/null
PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"

source "$ROOT/test/bench/bench_lib.sh"
bench_init run_failing_endpoint.sh


start_upstream GOOD1 good-1
start_upstream GOOD2 good-2
start_upstream GOOD3 good-3
declare -A BAD
start_upstream "BAD[503]" bad-503 --status 503
start_upstream "BAD[hang]" bad-hang --delay-ms 5000
BAD[refused]=$(free_port)  # nothing listens there

# bootstrap FAULT POLICY > file
bootstrap() {
  local fault=$1 policy=$2 retry="" od="" budget=""
  if [[ $policy == retries || $policy == both ]]; then
    # Envoy's default retry budget (circuit_breakers max_retries: 3 retries in flight) would
    # refuse most retries at 10 connections; BUDGET=default shows that.
    [[ ${BUDGET:-large} == default ]] || budget="circuit_breakers: {thresholds: [{max_retries: 1000}]}"
    retry=", retry_policy: {retry_on: \"5xx,reset,connect-failure\", num_retries: 2, per_try_timeout: 0.25s, retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}], host_selection_retry_max_attempts: 3}"
  fi
  if [[ $policy == od || $policy == both ]]; then
    od="outlier_detection: {consecutive_5xx: 5, interval: 1s, base_ejection_time: 30s, max_ejection_percent: 50}"
  fi
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
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: "/"}, route: {cluster: service, timeout: 1s$retry}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: service
    type: STATIC
    connect_timeout: 0.25s
    $od
    $budget
    load_assignment:
      cluster_name: service
      endpoints:
      - lb_endpoints:
        - {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $GOOD1}}}}
        - {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $GOOD2}}}}
        - {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $GOOD3}}}}
        - {endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${BAD[$fault]}}}}}
YAML
}

# run TARGET FAULT POLICY: prints "failed total".
run() {
  local target=$1 fault=$2 policy=$3
  bootstrap "$fault" "$policy" >"$RUN_DIR/bootstrap.yaml"
  local cmd=("$PROXY_BIN")
  [[ $target == envoy ]] && cmd=("$ENVOY" --disable-hot-restart)
  start_server "$RUN_DIR/$target.log" "${cmd[@]}" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
    --log-level error
  wrk -t1 -c10 -d"${DURATION}s" --timeout 5s "http://127.0.0.1:$SERVER_PORT/" >"$RUN_DIR/wrk.out"
  stop_server
  awk '
    /requests in/ { total = $1 }
    /Non-2xx or 3xx responses:/ { failed += $5 }
    /Socket errors:/ { gsub(",", ""); failed += $4 + $6 + $8 + $10 }
    END { printf "%d %d\n", failed, total }' "$RUN_DIR/wrk.out"
}

printf '\n%-8s %-8s' fault policy
for target in $TARGETS; do printf ' | %-26s' "$target failed/total"; done
printf '\n'
for fault in $FAULTS; do
  for policy in $POLICIES; do
    printf '%-8s %-8s' "$fault" "$policy"
    for target in $TARGETS; do
      read -r failed total < <(run "$target" "$fault" "$policy")
      printf ' | %-26s' "$(awk -v f="$failed" -v t="$total" \
        'BEGIN { printf "%d/%d (%.2f%%)", f, t, t ? 100 * f / t : 0 }')"
    done
    printf '\n'
  done
done
