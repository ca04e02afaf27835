#!/usr/bin/env bash
# The live-configuration benchmarks of issue 4, in a Release build:
#   1. RDS update -> last worker serving it (p50/p99 over 1,000 updates);
#   2. 10,000 clusters with 100,000 endpoints applied in one CDS + one EDS response (time,
#      CPU, VmHWM), then the cost of changing 1 endpoint of a 10,000-endpoint cluster (and, for
#      comparison, of a 9-endpoint one).
# Usage: test/bench/xds/run_xds_bench.sh [build-dir]      (default /tmp/build-xds-bench)
# Environment: JOBS (build parallelism, 2), CONCURRENCY (proxy workers, 2), UPDATES (1000).
# Numbers depend on the machine and on what else runs on it: quote them with `nproc` and
# the load average.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BUILD=${1:-/tmp/build-xds-bench}
CONCURRENCY=${CONCURRENCY:-2}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target proxy xds_rds_latency_bench xds_cluster_scale_bench

echo "== $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/test/bench/xds/xds_rds_latency_bench" --updates "${UPDATES:-1000}" \
  --concurrency "$CONCURRENCY"
"$BUILD/test/bench/xds/xds_cluster_scale_bench" --clusters 10000 --endpoints 100000 \
  --big 10000 --updates 50 --concurrency "$CONCURRENCY"
