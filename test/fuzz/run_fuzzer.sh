#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEED_DIR WORK_DIR SECONDS
# Runs one libFuzzer harness for SECONDS on a scratch corpus (WORK_DIR/corpus, new inputs land
# there, never in the committed seeds), reading the seeds as a second, read-only corpus.
# Exits non-zero on a crash, a leak, a timeout or an RSS over the limit; the reproducer is
# WORK_DIR/crash-* (rerun: FUZZER WORK_DIR/crash-...). The last lines printed are libFuzzer's
# final stats (executions per second).
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus"
cd "$work"
# -timeout: one input taking over 10 s is a hang. -rss_limit_mb: the whole process.
# -max_len: HTTP and YAML inputs of 64 KiB cover header limits and nesting.
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$seeds"
