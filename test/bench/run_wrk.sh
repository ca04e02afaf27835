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
#
# Environment: BUILD_DIR (default build-release, a Release tree of its own), DURATION (5s),
# CONNECTIONS (50), THREADS (1), ROUNDS (3), PIN (1), TARGETS ("proxy envoy nginx haproxy").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build-release}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-1}
TARGETS=${TARGETS:-"proxy envoy nginx haproxy"}
PEERS_DIR=${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xds-proxy-peers}

need() {
  echo "run_wrk.sh: $1 is missing; run: $2" >&2
  exit 1
}
command -v wrk >/dev/null || need wrk "bash deploy/install-bench-deps.sh"
command -v curl >/dev/null || need curl "bash deploy/install-deps.sh"
command -v perl >/dev/null || need perl "bash deploy/install-deps.sh"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
ENVOY=$(cat "$PEERS_DIR/envoy-path" 2>/dev/null || true)
for target in $TARGETS; do
  case $target in
    proxy) ;;
    envoy) [[ -x $ENVOY ]] || need "Envoy" "bash deploy/install-peers.sh" ;;
    nginx) [[ -x $NGINX ]] || need nginx "bash deploy/install-bench-deps.sh" ;;
    haproxy) [[ -x $HAPROXY ]] || need haproxy "bash deploy/install-bench-deps.sh" ;;
    *)
      echo "run_wrk.sh: unknown target '$target' (proxy envoy nginx haproxy)" >&2
      exit 2
      ;;
  esac
done

LOAD_CPU=()
SERVER_CPU=()
if [[ $PIN == 1 ]] && [[ $(nproc) -ge 2 ]]; then
  LOAD_CPU=(taskset -c 0)
  SERVER_CPU=(taskset -c 1)
fi

echo "==> building (Release) in $BUILD_DIR"
export CCACHE_BASEDIR="$ROOT"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream >/dev/null
PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"

source "$ROOT/test/bench/bench_lib.sh"
bench_init run_wrk.sh

# Total CPU time (user + system, all threads) of a PID, in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

declare -A PORT CPU_PID

# The upstream, shared by every target (and hit directly for the "direct" row).
"${LOAD_CPU[@]}" "$UPSTREAM_BIN" --port 0 --name upstream-1 >"$RUN_DIR/upstream.log" 2>&1 &
UPSTREAM_PID=$!
PIDS+=("$UPSTREAM_PID")
wait_for "$RUN_DIR/upstream.log" "listening on 127\.0\.0\.1:[0-9]+" "$UPSTREAM_PID"
PORT[direct]=$(grep -oE "[0-9]+$" <(grep -m1 "listening on" "$RUN_DIR/upstream.log"))
CPU_PID[direct]=$UPSTREAM_PID

# The demo bootstrap with the upstream's port, the listener and admin on port 0: our proxy and
# Envoy run the same file.
sed -e "s/port_value: 8081 } # demo-upstream-1/port_value: ${PORT[direct]} } # demo-upstream-1/" \
  -e "s/port_value: 8082 } # demo-upstream-2/port_value: ${PORT[direct]} } # demo-upstream-2/" \
  -e "s/port_value: 10000 }/port_value: 0 }/" \
  -e "s/port_value: 9901 }/port_value: 0 }/" \
  deploy/examples/static-demo.yaml >"$RUN_DIR/bootstrap.yaml"

# The listener port of an xDS-configured server (ours or Envoy) from its admin /listeners.
listener_port() {
  local admin=$1
  curl -fsS "http://$admin/listeners?format=json" |
    grep -oE '"port_value": *[0-9]+' | head -n1 | grep -oE '[0-9]+$'
}

start_admin_server() {
  local name=$1
  shift
  "${SERVER_CPU[@]}" "$@" --admin-address-path "$RUN_DIR/$name.admin" >"$RUN_DIR/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for "$RUN_DIR/$name.admin" ":[0-9]+" "$pid"
  local admin
  admin=$(cat "$RUN_DIR/$name.admin")
  for _ in $(seq 1 400); do
    curl -fsS "http://$admin/ready" >/dev/null 2>&1 && break
    sleep 0.05
  done
  PORT[$name]=$(listener_port "$admin")
  CPU_PID[$name]=$pid
}

start_nginx() {
  PORT[nginx]=$(free_port)
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
  upstream demo { server 127.0.0.1:${PORT[direct]}; keepalive 64; }
  server {
    listen 127.0.0.1:${PORT[nginx]};
    location / {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
  "${SERVER_CPU[@]}" "$NGINX" -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf" \
    >"$RUN_DIR/nginx/stdout.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 400); do
    curl -fsS "http://127.0.0.1:${PORT[nginx]}/service/1" >/dev/null 2>&1 && break
    sleep 0.05
  done
  # The one worker does the work; the master only supervises.
  CPU_PID[nginx]=$(pgrep -P "$pid" | head -n1)
}

start_haproxy() {
  PORT[haproxy]=$(free_port)
  cat >"$RUN_DIR/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend ingress
  bind 127.0.0.1:${PORT[haproxy]}
  default_backend demo
backend demo
  server upstream1 127.0.0.1:${PORT[direct]}
CONF
  "${SERVER_CPU[@]}" "$HAPROXY" -db -f "$RUN_DIR/haproxy.cfg" >"$RUN_DIR/haproxy.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 400); do
    curl -fsS "http://127.0.0.1:${PORT[haproxy]}/service/1" >/dev/null 2>&1 && break
    sleep 0.05
  done
  CPU_PID[haproxy]=$pid
}

for target in $TARGETS; do
  case $target in
    proxy) start_admin_server proxy "$PROXY_BIN" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
      --log-level warning ;;
    envoy) start_admin_server envoy "$ENVOY" -c "$RUN_DIR/bootstrap.yaml" --concurrency 1 \
      --log-level warning --disable-hot-restart ;;
    nginx) start_nginx ;;
    haproxy) start_haproxy ;;
  esac
done

ALL="direct $TARGETS"
for target in $ALL; do
  curl -fsS "http://127.0.0.1:${PORT[$target]}/service/1" >/dev/null ||
    { echo "run_wrk.sh: $target (port ${PORT[$target]}) does not answer" >&2; exit 1; }
done

TICKS=$(getconf CLK_TCK)
echo "==> wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $ROUNDS rounds, $(nproc) cores;" \
  "$([[ ${#SERVER_CPU[@]} -gt 0 ]] && echo "wrk and upstream on cpu0, the server on cpu1" || echo "unpinned")"

# One wrk run against a target: appends "rps cpu_seconds p99_ms" to $RUN_DIR/$target.rounds.
run_round() {
  local target=$1
  local before after
  before=$(cpu_ticks "${CPU_PID[$target]}")
  "${LOAD_CPU[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    "http://127.0.0.1:${PORT[$target]}/service/1" >"$RUN_DIR/wrk.out"
  after=$(cpu_ticks "${CPU_PID[$target]}")
  if grep -q "Non-2xx or 3xx responses\|Socket errors" "$RUN_DIR/wrk.out"; then
    echo "run_wrk.sh: $target had errors:" >&2
    grep "Non-2xx\|Socket errors" "$RUN_DIR/wrk.out" >&2
  fi
  awk -v a="$before" -v b="$after" -v t="$TICKS" '
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" {
      v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
      p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v
    }
    END { printf "%s %.2f %.3f\n", rps, (b - a) / t, p99 }' "$RUN_DIR/wrk.out" \
    >>"$RUN_DIR/$target.rounds"
}

for round in $(seq 1 "$ROUNDS"); do
  for target in $ALL; do
    run_round "$target"
  done
  echo "    round $round done"
done

secs=${DURATION%s}
# Medians of each column, then the table.
for target in $ALL; do
  for column in 1 2 3; do
    awk -v c="$column" '{ print $c }' "$RUN_DIR/$target.rounds" | sort -g |
      awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
  done | paste -sd' ' | sed "s/^/$target /"
done >"$RUN_DIR/medians"

awk -v s="$secs" '
  { name[NR] = $1; rps[NR] = $2; cpu[NR] = $3; p99[NR] = $4
    per[NR] = ($3 > 0) ? $2 * s / $3 : 0
    if ($1 == "nginx") nginx = per[NR] }
  END {
    printf "\n%-8s %11s %9s %15s %9s %9s\n", "target", "requests/s", "CPU s", "requests/CPU-s", "x nginx", "p99 ms"
    for (i = 1; i <= NR; i++) {
      ratio = (nginx > 0 && name[i] != "direct") ? sprintf("%.2f", per[i] / nginx) : "-"
      printf "%-8s %11.0f %9.2f %15.0f %9s %9.2f\n", name[i], rps[i], cpu[i], per[i], ratio, p99[i]
    }
  }' "$RUN_DIR/medians"
echo
echo "(medians of $ROUNDS rounds; the direct row's CPU is the upstream's)"
