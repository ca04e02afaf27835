#pragma once

// Outlier detection (passive health checking), the part the request path sees: each host of a
// cluster with outlier_detection has a DetectorHostMonitor, to which the worker that handled a
// request reports how it ended. The monitor counts with atomics; when a consecutive-error
// threshold is crossed it posts to the main thread, where the cluster's detector
// (outlier_detection_impl.h) decides the ejection and publishes a new host-set snapshot.

#include <cstdint>
#include <optional>

#include "proxy/upstream/upstream.h"

namespace Proxy::Upstream::Outlier {

// Envoy's Outlier::Result: how a request went when no HTTP status says it.
enum class Result {
  LocalOriginConnectSuccess,       // the connection was up and the request went out
  LocalOriginConnectSuccessFinal,  // the connection is the whole exchange (TCP proxying)
  LocalOriginConnectFailed,        // connect failure, connect timeout, reset, protocol error
  LocalOriginTimeout,              // the upstream did not answer in time
  ExtOriginRequestFailed,
  ExtOriginRequestSuccess,
};

// One host's monitor. Any thread; never blocks.
class DetectorHostMonitor {
 public:
  virtual ~DetectorHostMonitor() = default;
  // A response with this status came from the host.
  virtual void putHttpResponseCode(uint64_t code) = 0;
  // `code`: the status the proxy answered with because of it (a timeout's 504), which counts
  // instead of the result's own status when local and external errors are not split (Envoy's
  // putResult(result, code)).
  virtual void putResult(Result result, std::optional<uint64_t> code = std::nullopt) = 0;
};

// Report to `host`'s monitor when its cluster has outlier detection (a no-op otherwise).
inline void putHttpResponseCode(const Host& host, uint64_t code) {
  if (DetectorHostMonitor* monitor = host.healthState().outlier_monitor.get()) {
    monitor->putHttpResponseCode(code);
  }
}
inline void putResult(const Host& host, Result result,
                      std::optional<uint64_t> code = std::nullopt) {
  if (DetectorHostMonitor* monitor = host.healthState().outlier_monitor.get()) {
    monitor->putResult(result, code);
  }
}

}  // namespace Proxy::Upstream::Outlier
