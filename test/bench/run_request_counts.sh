#!/usr/bin/env bash
# What one proxied keep-alive HTTP/1.1 request costs our proxy, in counts that do not depend on
# the machine's load (a measurement, never a test; issue 14): heap allocations, syscalls and
# user-space instructions per request in steady state, one worker, the demo bootstrap
# (deploy/examples/static-demo.yaml, as run_wrk.sh) in front of one demo-upstream.
#
# The load is test/bench/keepalive_client.py: CONNECTIONS keep-alive connections opened once,
# one request in flight on each, WARMUP rounds first (pools, buffers and free lists filled),
# then ROUNDS rounds counted; connection setup and teardown stay outside the count.
#   allocations:  the proxy runs with test/bench/alloc_counter.c preloaded (built here with
#                 cc); malloc/calloc/realloc/aligned calls of all threads between the two
#                 snapshots, divided by the requests.
#   syscalls:     `strace -c -f -p PID` attached after the warm-up, detached after the rounds;
#                 each syscall's count divided by the requests.
#   instructions: the proxy under `valgrind --tool=callgrind`; `callgrind_control -z` after the
#                 warm-up, `-d` after the rounds; Ir divided by the requests, and the functions
#                 with the most instructions of their own (callgrind_annotate).
#
#   bash test/bench/run_request_counts.sh
#   COUNTS="allocations syscalls" ROUNDS=400 bash test/bench/run_request_counts.sh
#
# Environment: BUILD_DIR (default build), PROXY_BIN (a proxy binary to count instead of
# BUILD_DIR's, e.g. a copy of the one before a change), CALLGRIND_OUT (keep the callgrind dump
# there), COUNTS ("allocations syscalls instructions"),
# CONNECTIONS (50), WARMUP (20 rounds), ROUNDS (200; instructions uses ROUNDS/4), TOP (25).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
COUNTS=${COUNTS:-"allocations syscalls instructions"}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-20}
ROUNDS=${ROUNDS:-200}
TOP=${TOP:-25}
source "$ROOT/test/bench/bench_lib.sh"
bench_init run_request_counts.sh
bench_require python3 "bash deploy/install-deps.sh"
bench_require cc "bash deploy/install-deps.sh"
for count in $COUNTS; do
  case $count in
    allocations) ;;
    syscalls) bench_require strace "apt-get install strace" ;;
    instructions) bench_require valgrind "apt-get install valgrind" ;;
    *)
      echo "run_request_counts.sh: unknown count '$count' (allocations syscalls instructions)" >&2
      exit 2
      ;;
  esac
done

if [[ -z ${PROXY_BIN:-} ]]; then
  cmake --build "$BUILD_DIR" --target proxy demo-upstream >/dev/null
  PROXY_BIN="$BUILD_DIR/proxy/server/proxy"
fi
UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"

start_upstream UPSTREAM_PORT upstream-1
sed -e "s/port_value: 8081 } # demo-upstream-1/port_value: ${UPSTREAM_PORT} } # demo-upstream-1/" \
  -e "s/port_value: 8082 } # demo-upstream-2/port_value: ${UPSTREAM_PORT} } # demo-upstream-2/" \
  -e "s/port_value: 10000 }/port_value: 0 }/" \
  -e "s/port_value: 9901 }/port_value: 0 }/" \
  deploy/examples/static-demo.yaml >"$RUN_DIR/bootstrap.yaml"
PROXY_ARGS=(-c "$RUN_DIR/bootstrap.yaml" --concurrency 1 --log-level warning)

# wait_lines FILE N: until FILE has N lines (bounded: 120 s, valgrind is slow).
wait_lines() {
  for _ in $(seq 1 2400); do
    [[ -f $1 ]] && (($(wc -l <"$1") >= $2)) && return 0
    sleep 0.05
  done
  echo "run_request_counts.sh: timed out waiting for $2 lines in $1" >&2
  return 1
}

# start_proxy PREFIX...: our proxy (behind PREFIX, e.g. valgrind) with SERVER_PID and
# SERVER_PORT set once /ready answers (bounded: 120 s).
start_proxy() {
  rm -f "$RUN_DIR/server.admin"
  "$@" "$PROXY_BIN" "${PROXY_ARGS[@]}" --admin-address-path "$RUN_DIR/server.admin" \
    >"$RUN_DIR/proxy.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 2400); do
    [[ -s $RUN_DIR/server.admin ]] && curl -fsS "http://$(cat "$RUN_DIR/server.admin")/ready" \
      >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN_DIR/proxy.log" >&2; exit 1; }
    sleep 0.05
  done
  SERVER_PORT=$(curl -fsS "http://$(cat "$RUN_DIR/server.admin")/listeners?format=json" |
    grep -oE '"port_value": *[0-9]+' | head -n1 | grep -oE '[0-9]+$')
}

# run_client ROUNDS BETWEEN_CMD AFTER_CMD: the keep-alive load; BETWEEN_CMD runs after the
# warm-up, AFTER_CMD after the counted rounds (connections still open). Sets REQUESTS.
run_client() {
  local rounds=$1 between=$2 after=$3
  coproc CLIENT { python3 "$ROOT/test/bench/keepalive_client.py" "$SERVER_PORT" /service/1 \
    "$CONNECTIONS" "$WARMUP" "$rounds"; }
  local client_pid=$CLIENT_PID line
  read -r line <&"${CLIENT[0]}"
  [[ $line == warm ]] || { echo "run_request_counts.sh: client said '$line'" >&2; exit 1; }
  eval "$between"
  echo go >&"${CLIENT[1]}"
  read -r line <&"${CLIENT[0]}"
  REQUESTS=${line#done }
  eval "$after"
  echo bye >&"${CLIENT[1]}"
  wait "$client_pid"
}

per_request() {
  awk -v n="$1" -v d="$2" 'BEGIN { printf "%.2f", n / d }'
}

count_allocations() {
  cc -O2 -shared -fPIC -o "$RUN_DIR/alloc_counter.so" test/bench/alloc_counter.c -lpthread
  mkfifo "$RUN_DIR/alloc.fifo"
  export ALLOC_COUNTER_FIFO="$RUN_DIR/alloc.fifo" ALLOC_COUNTER_OUT="$RUN_DIR/alloc.out"
  start_proxy env LD_PRELOAD="$RUN_DIR/alloc_counter.so"
  unset ALLOC_COUNTER_FIFO ALLOC_COUNTER_OUT
  run_client "$ROUNDS" 'echo >"$RUN_DIR/alloc.fifo"; wait_lines "$RUN_DIR/alloc.out" 1' \
    'echo >"$RUN_DIR/alloc.fifo"; wait_lines "$RUN_DIR/alloc.out" 2'
  stop_server
  local a0 a1 f0 f1
  read -r a0 f0 < <(sed -n 1p "$RUN_DIR/alloc.out" | tr -c '0-9\n' ' ')
  read -r a1 f1 < <(sed -n 2p "$RUN_DIR/alloc.out" | tr -c '0-9\n' ' ')
  echo "allocations per request: $(per_request $((a1 - a0)) "$REQUESTS")" \
    "(frees $(per_request $((f1 - f0)) "$REQUESTS"); $((a1 - a0)) over $REQUESTS requests)"
}

count_syscalls() {
  start_proxy
  # strace says "Process N attached with M threads" once it follows every thread.
  run_client "$ROUNDS" \
    'strace -c -f -p "$SERVER_PID" -o "$RUN_DIR/strace.out" 2>"$RUN_DIR/strace.err" &
     STRACE_PID=$!; wait_lines "$RUN_DIR/strace.err" 1' \
    'kill -INT "$STRACE_PID"; wait "$STRACE_PID" || true'
  stop_server
  echo "syscalls per request ($REQUESTS requests):"
  awk -v n="$REQUESTS" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
      calls = $4; name = $NF; errors = (NF == 6) ? $5 : 0
      printf "  %-16s %6.2f", name, calls / n
      if (errors > 0) printf "  (%.2f failed)", errors / n
      printf "\n" }' "$RUN_DIR/strace.out"
}

count_instructions() {
  local rounds=$((ROUNDS / 4))
  ((rounds > 0)) || rounds=1
  start_proxy valgrind --tool=callgrind --callgrind-out-file="$RUN_DIR/callgrind.%p"
  run_client "$rounds" 'callgrind_control -z "$SERVER_PID" >/dev/null' \
    'callgrind_control -d "$SERVER_PID" >/dev/null'
  stop_server
  local dump total
  # callgrind_control -d wrote callgrind.PID.1: the counted rounds only.
  dump=$(ls "$RUN_DIR"/callgrind.*.1 | head -n1)
  total=$(grep -m1 -E '^(summary|totals):' "$dump" | awk '{ print $2 }')
  [[ -z ${CALLGRIND_OUT:-} ]] || cp "$dump" "$CALLGRIND_OUT"
  echo "instructions per request: $(per_request "$total" "$REQUESTS") ($total Ir over" \
    "$REQUESTS requests)"
  echo "top $TOP functions by own instructions, per request:"
  # Only the per-function rows (a percentage in brackets), not the totals, and not the frames
  # that were on the worker's stack when the dump was taken (callgrind charges them everything).
  callgrind_annotate --inclusive=no --threshold=100 "$dump" 2>/dev/null |
    awk -v n="$REQUESTS" -v top="$TOP" '/^ *[0-9,]+ +\( *[0-9.]+%\) / && shown < top {
        pct = $0; sub(/^[^(]*\( */, "", pct); sub(/%.*/, "", pct)
        if (pct + 0 >= 90) next
        ir = $1; gsub(",", "", ir); name = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", name)
        printf "  %8.0f  %s\n", ir / n, substr(name, 1, 150); shown++ }'
}

echo "==> $CONNECTIONS keep-alive connections, $WARMUP warm-up rounds, then counted rounds;" \
  "$PROXY_BIN ($BUILD_DIR)"
for count in $COUNTS; do
  "count_$count"
done
