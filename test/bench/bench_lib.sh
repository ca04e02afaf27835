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
