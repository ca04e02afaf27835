#!/usr/bin/env bash
# One side-by-side HTTP/1.1 benchmark run (a measurement, never a test). The same route to the
# same upstream through each server, one worker each:
#   direct  : wrk -> demo-upstream                      (the ceiling)
#   proxy   : wrk -> our proxy (--concurrency 1)        -> demo-upstream
#   envoy   : wrk -> Envoy 1.40 (--concurrency 1)       -> demo-upstream  (same bootstrap file)
#   nginx   : wrk -> nginx (1 worker, keepalive pool)   -> demo-upstream
#   haproxy : wrk -> haproxy (nbthread 1, http-reuse)   -> demo-upstream
# For ROUNDS rounds, every target in turn; prints the medians: requests/s, CPU seconds of the
# server (user + system of all its threads, from /proc), requests per CPU-second (what a
# proxy that scales by adding workers is judged by), that number relative to nginx's, and
# wrk's p99 latency.
#
# With PIN=1 (default, on 2+ cores) wrk and the upstream share cpu0 and the server under test
# runs alone on cpu1, so the servers compete with nothing but the kernel's work for them.
# Everything listens on 127.0.0.1; the upstream, the proxy and Envoy pick free ports themselves.
# Needs wrk, nginx-light and haproxy (bash deploy/install-bench-deps.sh) and Envoy
# (bash deploy/install-peers.sh); never run it while builds or tests run.
#
#   bash test/bench/run_wrk.sh
#   TARGETS="proxy nginx" ROUNDS=5 DURATION=10s bash test/bench/run_wrk.sh
#   RESPONSE_BYTES=16384 bash test/bench/run_wrk.sh     # a 16 KiB body instead of the greeting
#   ENVOY_HEADERS=0 bash test/bench/run_wrk.sh          # our proxy and Envoy without the headers
#       Envoy adds by default (HCM generate_request_id: false, router suppress_envoy_headers:
#       true): no x-request-id, x-envoy-expected-rq-timeout-ms, x-envoy-upstream-service-time,
#       what those bytes cost each of them (nginx and haproxy add none of them)
#
# Environment: BUILD_DIR (default build-release, a Release tree of its own), DURATION (5s),
# CONNECTIONS (50), THREADS (1), ROUNDS (3), PIN (1), TARGETS ("proxy envoy nginx haproxy"),
# RESPONSE_BYTES (unset: the upstream's ~40-byte greeting; N: an N-byte body), ENVOY_HEADERS (1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build-release}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
RESPONSE_BYTES=${RESPONSE_BYTES:-}
ENVOY_HEADERS=${ENVOY_HEADERS:-1}
TARGETS=${TARGETS:-"proxy envoy nginx haproxy"}
source "$ROOT/test/bench/bench_lib.sh"
bench_init run_wrk.sh
bench_require wrk "bash deploy/install-bench-deps.sh"
bench_require curl "bash deploy/install-deps.sh"
bench_require perl "bash deploy/install-deps.sh"
bench_find_servers
bench_pin
bench_build_release

# The upstream, shared by every target (and hit directly for the "direct" row).
start_load_process "PORT[direct]" direct "$UPSTREAM_BIN" --port 0 --name upstream-1 \
  ${RESPONSE_BYTES:+--response-bytes "$RESPONSE_BYTES"}

# The demo bootstrap with the upstream's port, the listener and admin on port 0: our proxy and
# Envoy run the same file.
sed -e "s/port_value: 8081 } # demo-upstream-1/port_value: ${PORT[direct]} } # demo-upstream-1/" \
  -e "s/port_value: 8082 } # demo-upstream-2/port_value: ${PORT[direct]} } # demo-upstream-2/" \
  -e "s/port_value: 10000 }/port_value: 0 }/" \
  -e "s/port_value: 9901 }/port_value: 0 }/" \
  deploy/examples/static-demo.yaml >"$RUN_DIR/bootstrap.yaml"
if [[ $ENVOY_HEADERS == 0 ]]; then
  sed -i -e 's/^\( *\)stat_prefix: ingress_http$/&\n\1generate_request_id: false/' \
    -e 's/^\( *\)"@type": type.googleapis.com\/envoy.extensions.filters.http.router.v3.Router$/&\n\1suppress_envoy_headers: true/' \
    "$RUN_DIR/bootstrap.yaml"
  grep -q "suppress_envoy_headers: true" "$RUN_DIR/bootstrap.yaml" &&
    grep -q "generate_request_id: false" "$RUN_DIR/bootstrap.yaml" ||
    { echo "run_wrk.sh: ENVOY_HEADERS=0 could not edit the demo bootstrap" >&2; exit 1; }
fi

nginx_http() {
  cat <<CONF
  upstream demo { server 127.0.0.1:${PORT[direct]}; keepalive 64; }
  server {
    listen 127.0.0.1:${PORT[nginx]};
    location / {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
CONF
}

haproxy_sections() {
  cat <<CONF
frontend ingress
  bind 127.0.0.1:${PORT[haproxy]}
  default_backend demo
backend demo
  server upstream1 127.0.0.1:${PORT[direct]}
CONF
}

# answers PORT: the route answers there.
answers() {
  curl -fsS "http://127.0.0.1:$1/service/1"
}

for target in $TARGETS; do
  case $target in
    proxy) start_admin_server proxy "$PROXY_BIN" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
      --log-level warning ;;
    envoy) start_admin_server envoy "$ENVOY" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
      --log-level warning --disable-hot-restart ;;
    nginx) start_nginx nginx_http answers ;;
    haproxy) start_haproxy haproxy_sections answers ;;
  esac
done

ALL="direct $TARGETS"
for target in $ALL; do
  curl -fsS "http://127.0.0.1:${PORT[$target]}/service/1" >/dev/null ||
    { echo "run_wrk.sh: $target (port ${PORT[$target]}) does not answer" >&2; exit 1; }
done

echo "==> wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds, $(nproc) cores; $PIN_NOTE;" \
  "response body: ${RESPONSE_BYTES:-greeting, ~40} bytes"

for round in $(seq 1 "$ROUNDS"); do
  for target in $ALL; do
    bench_round wrk "$target" parse_wrk wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
      --latency "http://127.0.0.1:${PORT[$target]}/service/1"
  done
  echo "    round $round done"
done

echo
bench_report wrk requests $ALL
echo
echo "(medians of $ROUNDS rounds; the direct row's CPU is the upstream's)"
