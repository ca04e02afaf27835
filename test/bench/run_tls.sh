#!/usr/bin/env bash
# One side-by-side TLS termination benchmark run (a measurement, never a test; issue 12). Each
# server terminates TLS with the same certificate, TLS version, cipher and key exchange, and
# proxies plaintext HTTP/1.1 to the same demo-upstream, one worker each:
#   proxy   : our proxy (--concurrency 1), DownstreamTlsContext on the filter chain
#   envoy   : Envoy 1.40 (--concurrency 1), the same bootstrap file
#   nginx   : nginx (1 worker, `listen ... ssl`, keepalive upstream pool)
#   haproxy : haproxy (nbthread 1, `bind ... ssl crt`, http-reuse always)
# Two scenarios, every target in turn for ROUNDS rounds:
#   handshake : full TLS handshakes — `openssl s_time -new`, HS_CLIENTS (4) of them at once:
#               each connection is a new one with a full handshake (-new: no session is ever
#               offered, so no resumption, whatever the server allows), then the client's
#               close_notify and close. No request rides on it: with `-www` s_time reads until
#               the server closes, and Envoy holds its side open for delayed_close_timeout (1 s)
#               after a response, which our proxy refuses to configure (one bootstrap for both);
#               the keepalive scenario measures the requests. (wrk and h2load with
#               `Connection: close` resume the TLS session on reconnection: they would measure
#               resumptions, not handshakes.)
#   keepalive : HTTPS requests on kept-alive connections — `wrk -c CONNECTIONS` over https.
# The table per scenario: medians of handshakes (or requests) per second, the server's CPU
# seconds (user + system from /proc), handshakes (requests) per CPU-second, that relative to
# nginx's, and p99 (wrk's; s_time measures none).
#
# TLS: a self-signed certificate made with openssl at run time, ECDSA P-256 (KEY=ecdsa, the
# default; cipher ECDHE-ECDSA-AES128-GCM-SHA256) or RSA-2048 (KEY=rsa; ECDHE-RSA-AES128-GCM-SHA256);
# TLS 1.2 only, key exchange X25519, pinned in every server's config (not the client's). TLS 1.2
# rather than 1.3 because Envoy (BoringSSL) cannot restrict TLS 1.3 ciphers: pinned TLS 1.2 is
# the one setting all four can be made to negotiate identically. Before measuring, the script
# asks each server with `openssl s_client` (offering TLS 1.3 and every cipher) and stops if one
# negotiates anything else. Keep-alive limits are lifted where a server has one (nginx's
# keepalive_requests 1000 would close the connection — and cost a handshake — every 1000
# requests).
#
# With PIN=1 (default, on 2+ cores) the load generators and the upstream share cpu0 and the
# server under test runs alone on cpu1. Needs openssl, wrk, nginx-light and haproxy (bash
# deploy/install-bench-deps.sh) and Envoy (bash deploy/install-peers.sh); never run it while
# builds or tests run.
#
#   bash test/bench/run_tls.sh
#   KEY=rsa SCENARIOS=handshake TARGETS="proxy nginx" bash test/bench/run_tls.sh
#
# Environment: BUILD_DIR (default build-release, a Release tree of its own), DURATION (5s),
# CONNECTIONS (50, keepalive), HS_CLIENTS (4, handshake), ROUNDS (3), PIN (1), KEY (ecdsa|rsa),
# SCENARIOS ("handshake keepalive"), TARGETS ("proxy envoy nginx haproxy").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build-release}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-50}
HS_CLIENTS=${HS_CLIENTS:-4}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
KEY=${KEY:-ecdsa}
SCENARIOS=${SCENARIOS:-"handshake keepalive"}
TARGETS=${TARGETS:-"proxy envoy nginx haproxy"}

source "$ROOT/test/bench/bench_lib.sh"
bench_init run_tls.sh
bench_require openssl "bash deploy/install-bench-deps.sh"
bench_require wrk "bash deploy/install-bench-deps.sh"
bench_require curl "bash deploy/install-deps.sh"
bench_require perl "bash deploy/install-deps.sh"
bench_find_servers
case $KEY in
  ecdsa) CIPHER=ECDHE-ECDSA-AES128-GCM-SHA256 KEY_ARGS=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
  rsa) CIPHER=ECDHE-RSA-AES128-GCM-SHA256 KEY_ARGS=(-newkey rsa:2048) ;;
  *)
    echo "run_tls.sh: KEY must be ecdsa or rsa, not '$KEY'" >&2
    exit 2
    ;;
esac
TLS_VERSION=TLSv1.2
CURVE=X25519
bench_pin
bench_build_release

# The certificate every server presents (haproxy wants chain and key in one file).
TLS_DIR="$RUN_DIR/tls"
mkdir -p "$TLS_DIR"
openssl req -x509 "${KEY_ARGS[@]}" -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.pem" 2>"$TLS_DIR/openssl.log" ||
  { echo "run_tls.sh: openssl req failed:" >&2; cat "$TLS_DIR/openssl.log" >&2; exit 1; }
cat "$TLS_DIR/server.pem" "$TLS_DIR/server.key" >"$TLS_DIR/haproxy.pem"

start_load_process UPSTREAM_PORT upstream "$UPSTREAM_BIN" --port 0 --name upstream-1

# Our proxy and Envoy run this same file.
cat >"$RUN_DIR/bootstrap.yaml" <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: https
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: $TLS_DIR/server.pem}
              private_key: {filename: $TLS_DIR/server.key}
            tls_params:
              tls_minimum_protocol_version: TLSv1_2
              tls_maximum_protocol_version: TLSv1_2
              cipher_suites: [$CIPHER]
              ecdh_curves: [$CURVE]
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_https
          route_config:
            name: demo_routes
            virtual_hosts:
            - name: demo
              domains: ["*"]
              routes:
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
YAML

nginx_http() {
  cat <<CONF
  upstream demo { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; keepalive_requests 1000000000; }
  server {
    listen 127.0.0.1:${PORT[nginx]} ssl;
    keepalive_requests 1000000000;
    ssl_certificate $TLS_DIR/server.pem;
    ssl_certificate_key $TLS_DIR/server.key;
    ssl_protocols $TLS_VERSION;
    ssl_ciphers $CIPHER;
    ssl_ecdh_curve $CURVE;
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
  bind 127.0.0.1:${PORT[haproxy]} ssl crt $TLS_DIR/haproxy.pem ssl-min-ver $TLS_VERSION ssl-max-ver $TLS_VERSION ciphers $CIPHER curves $CURVE
  default_backend demo
backend demo
  server upstream1 127.0.0.1:$UPSTREAM_PORT
CONF
}

# answers PORT: the route answers there over TLS.
answers() {
  curl -kfsS "https://127.0.0.1:$1/service/1"
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

# Every server answers over TLS and negotiates exactly the pinned version, cipher and group,
# although the client offers TLS 1.3 and every cipher.
expected="$TLS_VERSION $CIPHER $CURVE"
for target in $TARGETS; do
  curl -kfsS "https://127.0.0.1:${PORT[$target]}/service/1" >/dev/null ||
    { echo "run_tls.sh: $target (port ${PORT[$target]}) does not answer over TLS" >&2; exit 1; }
  got=$(openssl s_client -connect "127.0.0.1:${PORT[$target]}" </dev/null 2>/dev/null | awk '
    /^New, / { version = $2; sub(/,$/, "", version); cipher = $NF }
    /^Server Temp Key:/ { group = $4; sub(/,$/, "", group) }
    END { print version, cipher, group }')
  [[ $got == "$expected" ]] ||
    { echo "run_tls.sh: $target negotiates '$got', not '$expected'" >&2; exit 1; }
done

secs=${DURATION%s}
# parse_s_time TARGET: the handshakes (connections) of all s_time clients per second; no p99.
parse_s_time() {
  awk -v s="$secs" '/connections in .* real seconds/ { n += $1 } END { printf "%.1f -1\n", n / s }' \
    "$RUN_DIR/load.out"
}

# HS_CLIENTS s_time processes at once on the load CPU (one s_time does one connection at a
# time); fails if one of them does.
s_time_clients() {
  local port=$1 i pids=() rc=0
  for i in $(seq 1 "$HS_CLIENTS"); do
    "${LOAD_CPU[@]}" openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i" || rc=1
  done
  return $rc
}

echo "==> $(nproc) cores; $PIN_NOTE; $ROUNDS rounds of $DURATION; $KEY certificate, $expected"
for scenario in $SCENARIOS; do
  case $scenario in
    handshake) echo "==> handshake: openssl s_time -new (handshake, close) × $HS_CLIENTS clients" ;;
    keepalive) echo "==> keepalive: wrk -t1 -c$CONNECTIONS -d$DURATION --latency https://.../service/1" ;;
    *)
      echo "run_tls.sh: unknown scenario '$scenario' (handshake keepalive)" >&2
      exit 2
      ;;
  esac
  for round in $(seq 1 "$ROUNDS"); do
    for target in $TARGETS; do
      port=${PORT[$target]}
      case $scenario in
        handshake) bench_round handshake "$target" parse_s_time s_time_clients "$port" ;;
        keepalive) bench_round keepalive "$target" parse_wrk wrk -t1 -c"$CONNECTIONS" \
          -d"$DURATION" --latency "https://127.0.0.1:$port/service/1" ;;
      esac
    done
    echo "    round $round done"
  done
  echo
  case $scenario in
    handshake) bench_report handshake handshakes $TARGETS ;;
    keepalive) bench_report keepalive requests $TARGETS ;;
  esac
  echo
done
echo "(medians of $ROUNDS rounds; CPU is the server's alone, its upstream's not counted)"
