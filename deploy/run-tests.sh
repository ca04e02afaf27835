#!/usr/bin/env bash
# The whole test suite: first the format check (deploy/check-format.sh: every tracked C++ file
# as clang-format writes it), then four ways:
#   1. build/       the normal build (RelWithDebInfo): every test, ctest -j2, after
#                   deploy/install-peers.sh (Envoy and the go-control-plane example, the real
#                   peers of test/integration/control_plane_e2e/ and test/conformance/).
#   2. build-tsan/  ThreadSanitizer: the thread core's tests (ctest -L threading); only their
#                   targets are built.
#   3. build-asan/  AddressSanitizer + UBSan (Debug, so ASSERTs are on): unit and integration
#                   tests, everything.
#   4. build-fuzz/  clang + libFuzzer + ASan + UBSan: only the harnesses of test/fuzz/, each run
#                   for FUZZ_SECONDS (default 60) from its seed corpus (ctest -L fuzz).
# ccache (default CCACHE_DIR) keeps rebuilds cheap. Every stage runs even when an earlier one
# failed; the exit code is non-zero when any failed.
#
# Environment: BUILD_ROOT (where the three trees go, default: the repository root),
# JOBS (build parallelism, default nproc), SKIP_TSAN=1, SKIP_ASAN=1, SKIP_FUZZ=1, FUZZ_SECONDS,
# TSAN_TARGETS (default: every add_proxy_test() whose LABELS include "threading").
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${JOBS:-$(nproc)}
BUILD_ROOT=${BUILD_ROOT:-$ROOT}
BUILD="$BUILD_ROOT/build"
BUILD_TSAN="$BUILD_ROOT/build-tsan"
BUILD_ASAN="$BUILD_ROOT/build-asan"
BUILD_FUZZ="$BUILD_ROOT/build-fuzz"
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
# The test executables labelled "threading", read from the add_proxy_test() calls (perl is in
# every Debian install; python is not).
threading_targets() {
  find test -name CMakeLists.txt -print0 | xargs -0 cat | perl -0777 -ne '
    while (/add_proxy_test\s*\((.*?)\)/sg) {
      my $args = $1;
      print "$1\n" if $args =~ /LABELS[^)]*\bthreading\b/ && $args =~ /NAME\s+(\S+)/;
    }'
}
TSAN_TARGETS=${TSAN_TARGETS:-$(threading_targets | tr '\n' ' ')}
export CCACHE_BASEDIR="$ROOT"
# A test that hangs is killed by its ctest TIMEOUT; sanitizer reports fail the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

failed=()
summary=()

# Each stage's output also goes to $LOG_DIR/<stage>.log; the tail of a failed stage's log is
# printed again after the summary (CI keeps only the end of the output).
LOG_DIR="$BUILD_ROOT/ci-logs"
mkdir -p "$LOG_DIR"
failed_logs=()

stage() {
  local name=$1
  shift
  local start=$SECONDS
  local log
  log="$LOG_DIR/$(tr -c 'A-Za-z0-9\n' '_' <<<"${name%% *}").log"
  echo
  echo "==================== $name ===================="
  # The stage runs in this shell (not in a pipeline's subshell); its output goes through tee.
  if "$@" > >(tee "$log") 2>&1; then
    summary+=("PASS  $name ($((SECONDS - start))s)")
  else
    summary+=("FAIL  $name ($((SECONDS - start))s)")
    failed+=("$name")
    failed_logs+=("$log")
  fi
  wait # for tee
}

# Says which step of a stage failed, so the summary can name it.
step() {
  echo "--- step: $*"
  "$@" || {
    local rc=$?
    echo "--- step failed (exit $rc): $*"
    return $rc
  }
}

configure() {
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null
}

# The targets of `wanted` that this tree defines (others may not exist yet).
existing_targets() {
  local dir=$1
  shift
  local all
  all=$(cmake --build "$dir" --target help 2>/dev/null | sed -n 's/^\.\.\. \([^ ]*\).*/\1/p')
  for target in "$@"; do
    if grep -qx "$target" <<<"$all"; then
      echo "$target"
    fi
  done
}

normal() {
  # The real peers are installed here, once (they stay in ~/.cache/xds-proxy-peers for the
  # later stages).
  step configure "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
    step cmake --build "$BUILD" -j"$JOBS" &&
    step bash "$ROOT/deploy/install-peers.sh" &&
    (cd "$BUILD" && step ctest -j2 --output-on-failure)
}

tsan() {
  configure "$BUILD_TSAN" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZER=thread || return 1
  # shellcheck disable=SC2086
  local targets
  targets=$(existing_targets "$BUILD_TSAN" $TSAN_TARGETS)
  if [[ -z $targets ]]; then
    echo "no threading test targets ($TSAN_TARGETS) in this tree" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  cmake --build "$BUILD_TSAN" -j"$JOBS" --target $targets || return 1
  # TSan's shadow memory needs a fixed address layout; kernels with large mmap randomisation
  # (vm.mmap_rnd_bits > 28) break it ("unexpected memory mapping"). Run without ASLR when the
  # container allows it.
  local runner=()
  if setarch "$(uname -m)" -R true 2>/dev/null; then
    runner=(setarch "$(uname -m)" -R)
  fi
  (cd "$BUILD_TSAN" && "${runner[@]}" ctest -j2 -L threading --output-on-failure --no-tests=error)
}

asan() {
  configure "$BUILD_ASAN" -DCMAKE_BUILD_TYPE=Debug -DSANITIZER=address &&
    cmake --build "$BUILD_ASAN" -j"$JOBS" &&
    (cd "$BUILD_ASAN" && ctest -j2 --output-on-failure)
}

fuzz() {
  CC=clang CXX=clang++ configure "$BUILD_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSANITIZER=address -DFUZZ=ON -DFUZZ_SECONDS="$FUZZ_SECONDS" || return 1
  # The harnesses are the only executables this tree needs.
  local targets
  targets=$(cd "$BUILD_FUZZ" && ctest -N -L fuzz | sed -n 's/^ *Test *#[0-9]*: fuzz\.//p')
  if [[ -z $targets ]]; then
    echo "no fuzz targets in this tree" >&2
    return 1
  fi
  # shellcheck disable=SC2086
  cmake --build "$BUILD_FUZZ" -j"$JOBS" --target $targets || return 1
  (cd "$BUILD_FUZZ" && ctest -j2 -L fuzz --output-on-failure --no-tests=error)
}

stage "format (clang-format 14, deploy/check-format.sh)" bash "$ROOT/deploy/check-format.sh"
stage "build + all tests (build/)" normal
if [[ ${SKIP_TSAN:-0} != 1 ]]; then
  stage "ThreadSanitizer: threading tests (build-tsan/)" tsan
fi
if [[ ${SKIP_ASAN:-0} != 1 ]]; then
  stage "AddressSanitizer+UBSan: all tests (build-asan/)" asan
fi

if [[ ${SKIP_FUZZ:-0} != 1 ]]; then
  stage "libFuzzer harnesses, ${FUZZ_SECONDS}s each (build-fuzz/)" fuzz
fi

echo
echo "==================== summary ===================="
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -ne 0 ]]; then
  for log in "${failed_logs[@]}"; do
    echo
    echo "==================== failed: $log (steps, failed tests, last 40 lines) ===================="
    grep -E -- '^--- step|\*\*\*Failed|\*\*\*Timeout|\*\*\*Exception|Failed +[0-9.]+ sec|^[[:space:]]*[0-9]+ - |error:|No space left' "$log" | tail -n 40
    echo "...."
    tail -n 40 "$log"
  done
  echo
  df -h "$BUILD_ROOT" | tail -n 1 | awk '{print "disk: " $4 " free of " $2 " where the trees are"}'
  printf '%s\n' "${summary[@]}"
  exit 1
fi
