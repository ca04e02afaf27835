#pragma once

// Shared by the xDS benchmarks: start the real proxy against the in-test ADS server, run
// Envoy's initial handshake, find one keep-alive connection per worker, read /proc, print
// percentiles. Benchmarks are programs, not tests: they print numbers and exit non-zero only
// when something did not work at all.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "test/integration/proxy_process.h"
#include "test/integration/xds/ads_server.h"
#include "test/integration/xds/xds_resources.h"

namespace Proxy::XdsBench {

using Clock = std::chrono::steady_clock;
using Integration::HttpClientPtr;
using Integration::ProxyProcess;
using XdsIntegration::AdsServer;

// `--name value` from argv, or `fallback`.
int64_t intFlag(int argc, char** argv, const std::string& name, int64_t fallback);

// Stops the benchmark with a message when `ok` is false.
void check(bool ok, const std::string& what);

// The proxy, started with the ADS bootstrap (`--concurrency`, log level warning), its ADS
// stream open; /ready is still 503. With `client_rate_limit`, the ADS config source sets
// `rate_limit_settings: {}` (Envoy's token bucket: 100 requests, then 10/s): every ACK after
// the first hundred then waits ~100 ms. Without it, as in Envoy, requests are not limited.
std::unique_ptr<ProxyProcess> startProxy(AdsServer& ads, uint32_t concurrency,
                                         bool client_rate_limit = false);

// Sends `resources` of `type_url` with `version` and waits for the ACK; returns the time from
// the send to the ACK's arrival.
template <class M>
Clock::duration applyAndWait(AdsServer& ads, const std::string& type_url,
                             const std::string& version, const std::vector<M>& resources,
                             std::chrono::milliseconds timeout = std::chrono::minutes(5)) {
  const std::string nonce = ads.sendResources(type_url, version, resources);
  const Clock::time_point sent = ads.lastSendTime();
  testing::AssertionResult acked = ads.waitForAck(type_url, nonce, version, timeout);
  check(acked, acked.message());
  return *ads.replyTime(type_url, nonce) - sent;
}

// One keep-alive connection to 127.0.0.1:`port` on each of the proxy's `workers` workers,
// index = worker. SO_REUSEPORT spreads connections by hash: connect until every worker has
// one, telling them apart by listener.<stat_prefix>.worker_<N>.downstream_cx_total.
std::vector<HttpClientPtr> connectionPerWorker(ProxyProcess& proxy, uint32_t port,
                                               uint32_t workers);

// Process CPU time (user + system, all threads) in milliseconds, from /proc/<pid>/stat.
double cpuMillis(pid_t pid);
// VmHWM / VmRSS from /proc/<pid>/status, KiB.
uint64_t procStatusKb(pid_t pid, const std::string& field);

// "p50 1.23 ms  p90 ...  p99 ...  max ..." of `samples` (microseconds).
std::string percentiles(std::vector<double> samples_us);

double micros(Clock::duration d);

}  // namespace Proxy::XdsBench
