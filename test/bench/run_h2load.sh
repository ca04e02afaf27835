#!/usr/bin/env bash
# One side-by-side HTTP/2 benchmark run (a measurement, never a test; issue 11): h2load
# (nghttp2-client) speaking plaintext HTTP/2 with prior knowledge (h2c) to each server, one
# worker each, every target in turn for ROUNDS rounds:
#   proxy   : our proxy (--concurrency 1; codec_type AUTO detects the preface)
#   envoy   : Envoy 1.40 (--concurrency 1), the same bootstrap file
#   nginx   : nginx (1 worker, `listen ... http2`: h2c with prior knowledge; grpc_pass)
#   haproxy : haproxy (nbthread 1, `bind ... proto h2`; the gRPC server `proto h2`)
#   direct  : h2load straight to the gRPC server (grpc scenario only: demo-upstream speaks
#             HTTP/1.1 alone, so the other scenarios have no direct row)
# Scenarios:
#   c1m100 : GET /service/1, 1 connection × 100 concurrent streams (h2load -c1 -m100)
#   c50m10 : GET /service/1, 50 connections × 10 streams each (h2load -c50 -m10)
#            — both proxied as HTTP/1.1 to demo-upstream (keep-alive pools), as run_wrk.sh
#   grpc   : gRPC unary calls, proxy.test.TestService/Unary with a 5-byte payload, POSTed by
#            h2load as a gRPC-framed body with content-type application/grpc and te: trailers,
#            GRPC_CONNECTIONS (10) × GRPC_STREAMS (10); upstream HTTP/2 to a real gRPC C++ server
#            (grpc-test-server, test/integration/grpc/). h2load counts HTTP statuses only, so
#            before measuring each server is asked once with nghttp, which must see grpc-status 0.
# The table per scenario: medians of requests/s, the server's CPU seconds (user + system from
# /proc), requests per CPU-second, that relative to nginx's, and p99 (from h2load --log-file).
#
# Keep-alive limits are lifted where a server has one (nginx's keepalive_requests, 1000 by
# default, ends an HTTP/2 connection with GOAWAY after 1000 streams, and h2load does not
# reconnect). Each server keeps its default HTTP/2 settings otherwise (concurrent streams:
# nginx 128, haproxy 100, Envoy and ours unlimited; all ≥ the streams asked for). nginx speaks
# HTTP/2 to a gRPC upstream one stream per connection (its keepalive pool); the others multiplex.
#
# With PIN=1 (default, on 2+ cores) h2load and the upstreams share cpu0 and the server under test
# runs alone on cpu1. Needs h2load and nghttp (nghttp2-client), nginx-light and haproxy (bash
# deploy/install-bench-deps.sh) and Envoy (bash deploy/install-peers.sh); never run it while
# builds or tests run.
#
#   bash test/bench/run_h2load.sh
#   SCENARIOS=grpc TARGETS="proxy envoy" ROUNDS=5 bash test/bench/run_h2load.sh
#
# Environment: BUILD_DIR (default build-release, a Release tree of its own), DURATION (5s),
# ROUNDS (3), PIN (1), GRPC_CONNECTIONS (10), GRPC_STREAMS (10), SCENARIOS ("c1m100 c50m10
# grpc"), TARGETS ("proxy envoy nginx haproxy").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build-release}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
GRPC_CONNECTIONS=${GRPC_CONNECTIONS:-10}
GRPC_STREAMS=${GRPC_STREAMS:-10}
SCENARIOS=${SCENARIOS:-"c1m100 c50m10 grpc"}
TARGETS=${TARGETS:-"proxy envoy nginx haproxy"}

source "$ROOT/test/bench/bench_lib.sh"
bench_init run_h2load.sh
bench_require h2load "bash deploy/install-bench-deps.sh"
bench_require nghttp "bash deploy/install-bench-deps.sh"
bench_require curl "bash deploy/install-deps.sh"
bench_require perl "bash deploy/install-deps.sh"
bench_find_servers
for scenario in $SCENARIOS; do
  case $scenario in
    c1m100 | c50m10 | grpc) ;;
    *)
      echo "run_h2load.sh: unknown scenario '$scenario' (c1m100 c50m10 grpc)" >&2
      exit 2
      ;;
  esac
done
bench_pin
bench_build_release grpc-test-server
GRPC_SERVER_BIN="$BUILD_DIR/test/integration/grpc/grpc-test-server"

start_load_process UPSTREAM_PORT upstream "$UPSTREAM_BIN" --port 0 --name upstream-1
start_load_process "PORT[direct]" direct "$GRPC_SERVER_BIN"
GRPC_PORT=${PORT[direct]}
GRPC_PATH=/proxy.test.TestService/Unary
# One gRPC message: not compressed, 7 bytes long, EchoRequest{payload: "hello"}.
printf '\x00\x00\x00\x00\x07\x0a\x05hello' >"$RUN_DIR/unary.bin"
GRPC_HEADERS=(-H "content-type: application/grpc" -H "te: trailers")

# Our proxy and Envoy run this same file: /proxy.test.TestService/ to the gRPC server over
# HTTP/2, everything else to demo-upstream over HTTP/1.1.
cat >"$RUN_DIR/bootstrap.yaml" <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: h2c
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_h2c
          codec_type: AUTO
          route_config:
            name: bench_routes
            virtual_hosts:
            - name: bench
              domains: ["*"]
              routes:
              - match: {prefix: "/proxy.test.TestService/"}
                route: {cluster: grpc}
              - match: {prefix: "/"}
                route: {cluster: service1}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: service1
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: service1
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UPSTREAM_PORT}}}
  - name: grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: grpc
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $GRPC_PORT}}}
YAML

nginx_http() {
  cat <<CONF
  upstream demo { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; keepalive_requests 1000000000; }
  upstream grpc { server 127.0.0.1:$GRPC_PORT; keepalive 64; keepalive_requests 1000000000; }
  server {
    listen 127.0.0.1:${PORT[nginx]} http2;
    keepalive_requests 1000000000;
    location /proxy.test.TestService/ {
      grpc_pass grpc://grpc;
    }
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
  bind 127.0.0.1:${PORT[haproxy]} proto h2
  use_backend grpc if { path_beg /proxy.test.TestService/ }
  default_backend demo
backend demo
  server upstream1 127.0.0.1:$UPSTREAM_PORT
backend grpc
  server grpc1 127.0.0.1:$GRPC_PORT proto h2
CONF
}

# answers PORT: the route answers there over h2c.
answers() {
  curl -fsS --http2-prior-knowledge "http://127.0.0.1:$1/service/1"
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

# Every server answers h2c, and a gRPC call through it ends with grpc-status 0.
for target in $TARGETS; do
  version=$(curl -sS -o /dev/null -w '%{http_version} %{http_code}' --http2-prior-knowledge \
    "http://127.0.0.1:${PORT[$target]}/service/1" || true)
  [[ $version == "2 200" ]] ||
    { echo "run_h2load.sh: $target (port ${PORT[$target]}) does not answer h2c GET with 200 ('$version')" >&2; exit 1; }
done
for target in direct $TARGETS; do
  nghttp -v -d "$RUN_DIR/unary.bin" "${GRPC_HEADERS[@]}" \
    "http://127.0.0.1:${PORT[$target]}$GRPC_PATH" >"$RUN_DIR/nghttp.out" 2>&1 || true
  grep -qE "grpc-status: 0$" "$RUN_DIR/nghttp.out" || {
    echo "run_h2load.sh: a gRPC call through $target does not end with grpc-status 0:" \
      "$(grep -oE "(:status|grpc-status|grpc-message): .*" "$RUN_DIR/nghttp.out" | paste -sd' ')" >&2
    exit 1
  }
done

# parse_h2load TARGET: requests/s and the p99 of h2load's per-request log (ms); complains when a
# request failed or did not answer 2xx.
parse_h2load() {
  if ! grep -qE "^requests: .* 0 failed, 0 errored, 0 timeout" "$RUN_DIR/load.out" ||
    ! grep -qE "^status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx" "$RUN_DIR/load.out"; then
    echo "$BENCH_NAME: $1 had errors:" >&2
    grep -E "^(requests|status codes):" "$RUN_DIR/load.out" >&2
  fi
  local p99
  p99=$(awk '{ print $3 }' "$RUN_DIR/h2load.log" | sort -n |
    awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", v[i] / 1000 }')
  echo "$(awk '/^finished in/ { print $4 }' "$RUN_DIR/load.out") $p99"
}

echo "==> h2load -t1 -D $DURATION (h2c), $ROUNDS rounds, $(nproc) cores; $PIN_NOTE"
for scenario in $SCENARIOS; do
  rows=$TARGETS
  case $scenario in
    c1m100) args=(-c1 -m100) path=/service/1 ;;
    c50m10) args=(-c50 -m10) path=/service/1 ;;
    grpc)
      args=(-c"$GRPC_CONNECTIONS" -m"$GRPC_STREAMS" -d "$RUN_DIR/unary.bin" "${GRPC_HEADERS[@]}")
      path=$GRPC_PATH
      rows="direct $TARGETS"
      ;;
  esac
  echo "==> $scenario: h2load ${args[*]//$RUN_DIR\//} http://.../${path#/}"
  for round in $(seq 1 "$ROUNDS"); do
    for target in $rows; do
      rm -f "$RUN_DIR/h2load.log"
      bench_round "$scenario" "$target" parse_h2load h2load -t1 "${args[@]}" -D "$DURATION" \
        --log-file="$RUN_DIR/h2load.log" "http://127.0.0.1:${PORT[$target]}$path"
    done
    echo "    round $round done"
  done
  echo
  bench_report "$scenario" requests $rows
  echo
done
echo "(medians of $ROUNDS rounds; the direct row's CPU is the gRPC server's)"
