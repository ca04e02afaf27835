#!/usr/bin/env bash
# One side-by-side HTTP/1.1 benchmark run (a measurement, never a test):
#   direct : wrk -> demo-upstream
#   proxy  : wrk -> proxy (--concurrency 1) -> demo-upstream
#   nginx  : wrk -> nginx (1 worker, keepalive upstream pool) -> demo-upstream
# and prints requests/s, the ratio to the direct run, and requests per CPU-second of the proxy
# and of nginx (from /proc utime+stime), the number DESIGN.md cares about.
#
# Everything listens on 127.0.0.1; the upstream and the proxy pick free ports themselves.
# Needs wrk and nginx-light: bash deploy/install-bench-deps.sh.
#
# Environment: BUILD_DIR (default build), DURATION (10s), CONNECTIONS (32), THREADS (1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}

for tool in wrk nginx curl perl; do
  if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x /usr/sbin/$tool ]]; then
    echo "run_wrk.sh: '$tool' is missing; run: bash deploy/install-bench-deps.sh" >&2
    exit 1
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "==> building (Release) in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream >/dev/null
PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"

RUN_DIR=$(mktemp -d /tmp/proxy-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT

# Wait (bounded) for a regex in a file written by a process that must stay alive.
wait_for() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 1 200); do
    grep -qE "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; return 1; }
    sleep 0.05
  done
  echo "run_wrk.sh: timed out waiting for '$pattern' in $file" >&2
  return 1
}

# A currently free port on 127.0.0.1, for nginx (whose config needs a number).
free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

# Total CPU time (user + system, all threads) of a PID, in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Run wrk against a URL; print requests/s.
run_wrk() {
  local url=$1
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$RUN_DIR/wrk.out"
  awk '/^Requests\/sec:/ { print $2 }' "$RUN_DIR/wrk.out"
}

# 1. The upstream.
"$UPSTREAM_BIN" --port 0 --name upstream-1 >"$RUN_DIR/upstream.log" 2>&1 &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
wait_for "$RUN_DIR/upstream.log" "listening on 127\.0\.0\.1:[0-9]+" "$UPSTREAM_PID"
UPSTREAM_PORT=$(grep -oE "[0-9]+$" <(grep -m1 "listening on" "$RUN_DIR/upstream.log"))

# 2. The proxy: the demo bootstrap with the listener and admin on free ports.
sed -e "s/port_value: 8081 } # demo-upstream-1/port_value: $UPSTREAM_PORT } # demo-upstream-1/" \
    -e "s/port_value: 8082 } # demo-upstream-2/port_value: $UPSTREAM_PORT } # demo-upstream-2/" \
    -e "s/port_value: 10000 }/port_value: 0 }/" \
    -e "s/port_value: 9901 }/port_value: 0 }/" \
    deploy/examples/static-demo.yaml >"$RUN_DIR/bootstrap.yaml"
"$PROXY_BIN" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 --log-level warning \
  --admin-address-path "$RUN_DIR/admin_address" >"$RUN_DIR/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_for "$RUN_DIR/admin_address" ":[0-9]+" "$PROXY_PID"
ADMIN=$(cat "$RUN_DIR/admin_address")
for _ in $(seq 1 200); do
  curl -fsS "http://$ADMIN/ready" >/dev/null 2>&1 && break
  sleep 0.05
done
PROXY_PORT=$(curl -fsS "http://$ADMIN/listeners?format=json" |
  grep -oE '"port_value": *[0-9]+' | head -n1 | grep -oE '[0-9]+$')

# 3. nginx: one worker, HTTP/1.1 keep-alive pool to the upstream, no access log.
NGINX_PORT=$(free_port)
mkdir -p "$RUN_DIR/nginx"
cat >"$RUN_DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $RUN_DIR/nginx/nginx.pid;
error_log $RUN_DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $RUN_DIR/nginx/body;
  proxy_temp_path $RUN_DIR/nginx/proxy;
  upstream demo { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$NGINX" -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf" >"$RUN_DIR/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in $(seq 1 200); do
  curl -fsS "http://127.0.0.1:$NGINX_PORT/service/1" >/dev/null 2>&1 && break
  sleep 0.05
done
# The one worker does the work; the master only supervises.
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n1)

# Sanity: all three answer.
for url in "http://127.0.0.1:$UPSTREAM_PORT/service/1" "http://127.0.0.1:$PROXY_PORT/service/1" \
  "http://127.0.0.1:$NGINX_PORT/service/1"; do
  curl -fsS "$url" >/dev/null || { echo "run_wrk.sh: $url does not answer" >&2; exit 1; }
done

TICKS=$(getconf CLK_TCK)
echo "==> wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores shared by wrk, server(s), upstream"

direct_rps=$(run_wrk "http://127.0.0.1:$UPSTREAM_PORT/service/1")

before=$(cpu_ticks "$PROXY_PID")
proxy_rps=$(run_wrk "http://127.0.0.1:$PROXY_PORT/service/1")
proxy_cpu=$(awk -v a="$before" -v b="$(cpu_ticks "$PROXY_PID")" -v t="$TICKS" 'BEGIN { print (b - a) / t }')
cp "$RUN_DIR/wrk.out" "$RUN_DIR/wrk-proxy.out"

before=$(cpu_ticks "$NGINX_WORKER")
nginx_rps=$(run_wrk "http://127.0.0.1:$NGINX_PORT/service/1")
nginx_cpu=$(awk -v a="$before" -v b="$(cpu_ticks "$NGINX_WORKER")" -v t="$TICKS" 'BEGIN { print (b - a) / t }')

secs=${DURATION%s}
awk -v d="$direct_rps" -v p="$proxy_rps" -v n="$nginx_rps" -v pc="$proxy_cpu" -v nc="$nginx_cpu" \
  -v s="$secs" 'BEGIN {
  printf "\n%-8s %12s %10s %12s %16s\n", "target", "requests/s", "vs direct", "CPU seconds", "requests/CPU-s"
  printf "%-8s %12.0f %10s %12s %16s\n", "direct", d, "1.00", "-", "-"
  printf "%-8s %12.0f %10.2f %12.2f %16.0f\n", "proxy", p, p / d, pc, (pc > 0 ? p * s / pc : 0)
  printf "%-8s %12.0f %10.2f %12.2f %16.0f\n", "nginx", n, n / d, nc, (nc > 0 ? n * s / nc : 0)
  printf "\nproxy / nginx: %.2f (requests/s)\n", p / n
}'
echo
echo "proxy latency (wrk --latency):"
sed -n '/Latency Distribution/,/99%/p' "$RUN_DIR/wrk-proxy.out"
