# Shared by the benchmark scripts (sourced, not run): a run directory removed at exit, the PIDs
# the script started (stopped at exit, by PID), and a bounded wait for a process's log line.
#   source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"; bench_init NAME
# NAME prefixes the run directory and error messages.

bench_init() {
  BENCH_NAME=$1
  RUN_DIR=$(mktemp -d "/tmp/$BENCH_NAME.XXXXXX")
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$RUN_DIR"
}

# Wait (bounded: 20 s) for a regex in a file written by a process that must stay alive.
wait_for() {
  local file=$1 pattern=$2 pid=$3
  for _ in $(seq 1 400); do
    grep -qE "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; return 1; }
    sleep 0.05
  done
  echo "$BENCH_NAME: timed out waiting for '$pattern' in $file" >&2
  return 1
}

# A currently free port on 127.0.0.1 (for configs that need a number, or a port nobody serves).
free_port() {
  perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1:0")->sockport'
}

# start_upstream VAR NAME ARGS...: a demo-upstream ($UPSTREAM_BIN) on a port it picks, stored in
# VAR (not printed: a $(...) subshell would lose its PID, and the process would outlive the run).
start_upstream() {
  local var=$1 name=$2
  shift 2
  "$UPSTREAM_BIN" --port 0 --name "$name" "$@" >"$RUN_DIR/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for "$RUN_DIR/$name.log" "listening on 127\.0\.0\.1:[0-9]+" "$pid"
  printf -v "$var" '%s' "$(grep -oE "[0-9]+$" <(grep -m1 "listening on" "$RUN_DIR/$name.log"))"
}

# start_server LOG CMD...: a server that takes --admin-address-path (our proxy, Envoy), its
# listeners on port 0. Returns once /ready answers, with SERVER_PID, SERVER_ADMIN and
# SERVER_PORT (its first listener's port) set.
start_server() {
  local log=$1
  shift
  rm -f "$RUN_DIR/server.admin"
  "$@" --admin-address-path "$RUN_DIR/server.admin" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_for "$RUN_DIR/server.admin" ":[0-9]+" "$SERVER_PID"
  SERVER_ADMIN=$(cat "$RUN_DIR/server.admin")
  for _ in $(seq 1 400); do
    curl -fsS "http://$SERVER_ADMIN/ready" >/dev/null 2>&1 && break
    sleep 0.05
  done
  SERVER_PORT=$(curl -fsS "http://$SERVER_ADMIN/listeners?format=json" |
    grep -oE '"port_value": *[0-9]+' | head -n1 | grep -oE '[0-9]+$')
}

# stop_server: SIGTERM to the last start_server's process, and wait for it.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}
