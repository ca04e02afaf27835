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

# ---- Side-by-side runs (run_wrk.sh, run_tls.sh, run_h2load.sh) ----------------------------------
# One load generator against each server in turn, ROUNDS times; per round the server's CPU
# seconds from /proc; medians in a table of rate, CPU, rate per CPU-second, × nginx and p99.
# The scripts set ROOT, BUILD_DIR, ROUNDS, DURATION (e.g. 5s), PIN and TARGETS first.

# bench_need WHAT HOW: one line saying what is missing and how to install it, then exit 1.
bench_need() {
  echo "$BENCH_NAME: $1 is missing; run: $2" >&2
  exit 1
}

# bench_require CMD HOW: bench_need unless CMD is on PATH.
bench_require() {
  command -v "$1" >/dev/null 2>&1 || bench_need "$1" "$2"
}

# bench_find_servers: ENVOY, NGINX, HAPROXY set, and each one in $TARGETS present.
bench_find_servers() {
  local peers_dir=${PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/xds-proxy-peers}
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
  ENVOY=$(cat "$peers_dir/envoy-path" 2>/dev/null || true)
  local target
  for target in $TARGETS; do
    case $target in
      proxy) ;;
      envoy) [[ -x $ENVOY ]] || bench_need "Envoy" "bash deploy/install-peers.sh" ;;
      nginx) [[ -x $NGINX ]] || bench_need nginx "bash deploy/install-bench-deps.sh" ;;
      haproxy) [[ -x $HAPROXY ]] || bench_need haproxy "bash deploy/install-bench-deps.sh" ;;
      *)
        echo "$BENCH_NAME: unknown target '$target' (proxy envoy nginx haproxy)" >&2
        exit 2
        ;;
    esac
  done
}

# bench_pin: with PIN=1 on 2+ cores, LOAD_CPU (the load generator and the upstreams) is cpu0
# and SERVER_CPU (the server under test, alone) cpu1; otherwise both empty (unpinned).
bench_pin() {
  LOAD_CPU=()
  SERVER_CPU=()
  PIN_NOTE="unpinned"
  if [[ ${PIN:-1} == 1 ]] && [[ $(nproc) -ge 2 ]]; then
    LOAD_CPU=(taskset -c 0)
    SERVER_CPU=(taskset -c 1)
    PIN_NOTE="load generator and upstreams on cpu0, the server on cpu1"
  fi
}

# bench_build_release [TARGET...]: a Release build of proxy, demo-upstream and TARGETs in
# $BUILD_DIR; sets PROXY_BIN and UPSTREAM_BIN.
bench_build_release() {
  echo "==> building (Release) in $BUILD_DIR"
  export CCACHE_BASEDIR="$ROOT"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target proxy demo-upstream "$@" >/dev/null
  PROXY_BIN=$(find "$BUILD_DIR/proxy" -maxdepth 3 -type f -name proxy -perm -u+x | head -n1)
  UPSTREAM_BIN="$BUILD_DIR/test/integration/demo-upstream"
}

# Total CPU time (user + system, all threads) of a PID, in clock ticks.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# The same, user and system apart: "USER SYSTEM".
cpu_ticks_split() {
  awk '{ print $14, $15 }' "/proc/$1/stat"
}

# wait_until CMD...: CMD succeeds within 20 s, or the run stops with CMD in the message.
wait_until() {
  for _ in $(seq 1 400); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$BENCH_NAME: timed out waiting for: $*" >&2
  exit 1
}

# PORT[name]: where a target listens; CPU_PID[name]: the process whose CPU time is its cost.
declare -gA PORT CPU_PID

# start_load_process VAR NAME CMD...: a helper process on the load CPU (an upstream) that prints
# "listening on 127.0.0.1:<port>"; the port goes to VAR, the PID to CPU_PID[NAME].
start_load_process() {
  local var=$1 name=$2
  shift 2
  "${LOAD_CPU[@]}" "$@" >"$RUN_DIR/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for "$RUN_DIR/$name.log" "listening on 127\.0\.0\.1:[0-9]+" "$pid"
  printf -v "$var" '%s' "$(grep -m1 "listening on" "$RUN_DIR/$name.log" | grep -oE "[0-9]+$")"
  CPU_PID[$name]=$pid
}

# start_admin_server NAME CMD...: our proxy or Envoy (--admin-address-path, listeners on port
# 0) on the server CPU; returns once /ready answers, PORT[NAME] its first listener's port.
start_admin_server() {
  local name=$1
  shift
  "${SERVER_CPU[@]}" "$@" --admin-address-path "$RUN_DIR/$name.admin" >"$RUN_DIR/$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_for "$RUN_DIR/$name.admin" ":[0-9]+" "$pid"
  local admin
  admin=$(cat "$RUN_DIR/$name.admin")
  wait_until curl -fsS "http://$admin/ready"
  PORT[$name]=$(curl -fsS "http://$admin/listeners?format=json" |
    grep -oE '"port_value": *[0-9]+' | head -n1 | grep -oE '[0-9]+$')
  CPU_PID[$name]=$pid
}

# start_nginx BLOCK_FN READY_FN: nginx, one worker on the server CPU, on PORT[nginx] (a free
# port chosen here); BLOCK_FN, a function, prints what goes inside http { } after the common
# part (upstreams and the server listening on ${PORT[nginx]}). Returns once `READY_FN PORT`
# succeeds. Its CPU is the worker's.
start_nginx() {
  local block_fn=$1 ready_fn=$2
  PORT[nginx]=$(free_port)
  mkdir -p "$RUN_DIR/nginx"
  {
    cat <<CONF
worker_processes 1;
daemon off;
pid $RUN_DIR/nginx/nginx.pid;
error_log $RUN_DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $RUN_DIR/nginx/body;
  proxy_temp_path $RUN_DIR/nginx/proxy;
CONF
    "$block_fn"
    echo "}"
  } >"$RUN_DIR/nginx/nginx.conf"
  "${SERVER_CPU[@]}" "$NGINX" -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf" \
    >"$RUN_DIR/nginx/stdout.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_until "$ready_fn" "${PORT[nginx]}"
  # The one worker does the work; the master only supervises.
  CPU_PID[nginx]=$(pgrep -P "$pid" | head -n1)
}

# start_haproxy SECTIONS_FN READY_FN: haproxy (nbthread 1, http-reuse always) on the server CPU,
# on PORT[haproxy] (a free port); SECTIONS_FN prints the frontend and backends that follow the
# common global and defaults sections. Returns once `READY_FN PORT` succeeds.
start_haproxy() {
  local sections_fn=$1 ready_fn=$2
  PORT[haproxy]=$(free_port)
  {
    cat <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
CONF
    "$sections_fn"
  } >"$RUN_DIR/haproxy.cfg"
  "${SERVER_CPU[@]}" "$HAPROXY" -db -f "$RUN_DIR/haproxy.cfg" >"$RUN_DIR/haproxy.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  wait_until "$ready_fn" "${PORT[haproxy]}"
  CPU_PID[haproxy]=$pid
}

# bench_round SCENARIO TARGET PARSER CMD...: one round. CMD (the load generator, run on the load
# CPU; a shell function pins its own processes) writes to $RUN_DIR/load.out; PARSER (a function)
# reads that and prints "rate p99_ms" (p99 -1: not measured). Appends "rate cpu_seconds p99" to
# $RUN_DIR/SCENARIO.TARGET.rounds, then the user and system parts of cpu_seconds.
bench_round() {
  local scenario=$1 target=$2 parser=$3
  shift 3
  local before after result cpu split_before split_after
  before=$(cpu_ticks "${CPU_PID[$target]}")
  split_before=$(cpu_ticks_split "${CPU_PID[$target]}")
  local pin=("${LOAD_CPU[@]}")
  declare -F "$1" >/dev/null && pin=()
  "${pin[@]}" "$@" >"$RUN_DIR/load.out" 2>&1 ||
    { echo "$BENCH_NAME: $target: $1 failed:" >&2; tail -n5 "$RUN_DIR/load.out" >&2; exit 1; }
  after=$(cpu_ticks "${CPU_PID[$target]}")
  split_after=$(cpu_ticks_split "${CPU_PID[$target]}")
  result=$("$parser" "$target")
  cpu=$(awk -v a="$before" -v b="$after" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / t }')
  # rate, CPU s, p99, then user and system CPU s
  echo "${result%% *} $cpu ${result##* } $(echo "$split_before $split_after" |
    awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f %.2f", ($3 - $1) / t, ($4 - $2) / t }')" \
    >>"$RUN_DIR/$scenario.$target.rounds"
}

# parse_wrk TARGET: wrk --latency's requests/s and p99 (ms); complains about errors.
parse_wrk() {
  if grep -q "Non-2xx or 3xx responses\|Socket errors" "$RUN_DIR/load.out"; then
    echo "$BENCH_NAME: $1 had errors:" >&2
    grep "Non-2xx\|Socket errors" "$RUN_DIR/load.out" >&2
  fi
  awk '
    /^Requests\/sec:/ { rps = $2 }
    $1 == "99%" {
      v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
      p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v
    }
    END { printf "%s %.3f\n", rps, p99 }' "$RUN_DIR/load.out"
}

# bench_report SCENARIO UNIT TARGET...: the medians of SCENARIO's rounds as a table; UNIT names
# what the rate counts (requests, handshakes). Rate per CPU-second: rate × DURATION / CPU s;
# "user us" and "sys us": the server's user-space and kernel CPU time per unit, in microseconds
# (where the difference between servers is: the kernel's share is mostly the same sockets'
# work for all of them).
bench_report() {
  local scenario=$1 unit=$2 target column
  shift 2
  for target in "$@"; do
    for column in 1 2 3 4 5; do
      awk -v c="$column" '{ print $c }' "$RUN_DIR/$scenario.$target.rounds" | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    done | paste -sd' ' | sed "s/^/$target /"
  done >"$RUN_DIR/$scenario.medians"
  awk -v s="${DURATION%s}" -v unit="$unit" '
    { name[NR] = $1; rate[NR] = $2; cpu[NR] = $3; p99[NR] = $4
      per[NR] = ($3 > 0) ? $2 * s / $3 : 0
      done_units = $2 * s
      user[NR] = (done_units > 0) ? $5 / done_units * 1e6 : 0
      sys[NR] = (done_units > 0) ? $6 / done_units * 1e6 : 0
      if ($1 == "nginx") nginx = per[NR] }
    END {
      printf "%-8s %13s %9s %17s %9s %9s %8s %8s\n", "target", unit "/s", "CPU s", unit "/CPU-s", "x nginx", "p99 ms", "user us", "sys us"
      for (i = 1; i <= NR; i++) {
        ratio = (nginx > 0 && name[i] != "direct") ? sprintf("%.2f", per[i] / nginx) : "-"
        p = (p99[i] < 0) ? "-" : sprintf("%.2f", p99[i])
        printf "%-8s %13.0f %9.2f %17.0f %9s %9s %8.2f %8.2f\n", name[i], rate[i], cpu[i], per[i], ratio, p, user[i], sys[i]
      }
    }' "$RUN_DIR/$scenario.medians"
}
