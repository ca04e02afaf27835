#pragma once

// A management server the test drives step by step: real gRPC (synchronous server API) on
// 127.0.0.1 port 0, serving Envoy's AggregatedDiscoveryService (SotW) from our protos. The
// proxy under test opens one ADS stream; the test thread waits for its requests, sends
// responses and waits for the ACK or NACK of each one (the request that carries the
// response's nonce). Nothing here sleeps: every wait is a condition variable with a deadline.
//
// Thread safety: the gRPC handler thread appends requests; every public method is safe from
// any thread. std::mutex rather than absl::Mutex so that TSAN builds see the ordering (Debian's
// abseil is not TSAN-annotated).

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "google/protobuf/any.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace Proxy::XdsIntegration {

using namespace std::chrono_literals;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

inline constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteType[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kEndpointType[] =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

// The short name of a type URL, for messages ("Listener").
std::string shortType(const std::string& type_url);

class AdsServer : public envoy::service::discovery::v3::AggregatedDiscoveryService::Service {
 public:
  AdsServer();
  ~AdsServer() override;
  AdsServer(const AdsServer&) = delete;
  AdsServer& operator=(const AdsServer&) = delete;

  int port() const { return port_; }

  // Waits until the proxy has opened its ADS stream (the first one, or a newer one than the
  // `count` already seen).
  testing::AssertionResult waitForStream(size_t count = 1, std::chrono::milliseconds timeout = 10s);

  // How many requests the current stream has delivered: a mark for waitForRequest(from=...),
  // to look only at what arrives after some step.
  size_t requestMark();
  // The first request of `type_url` (on the current stream, at index >= `from`) for which
  // `match` holds, waiting up to `timeout` for it. Requests are kept, so a request that
  // arrived before the call is found too.
  absl::StatusOr<DiscoveryRequest> waitForRequest(
      const std::string& type_url, const std::function<bool(const DiscoveryRequest&)>& match,
      std::chrono::milliseconds timeout = 10s, size_t from = 0);
  // The first request of `type_url` (index >= `from`) that subscribes to exactly `names`
  // (sorted comparison; empty = wildcard).
  absl::StatusOr<DiscoveryRequest> waitForSubscription(const std::string& type_url,
                                                       std::vector<std::string> names,
                                                       std::chrono::milliseconds timeout = 10s,
                                                       size_t from = 0);

  // Sends a DiscoveryResponse of `type_url` with `resources` (already packed) and returns its
  // nonce.
  std::string send(const std::string& type_url, const std::string& version_info,
                   const std::vector<google::protobuf::Any>& resources);
  // The same for typed messages.
  template <class M>
  std::string sendResources(const std::string& type_url, const std::string& version_info,
                            const std::vector<M>& resources) {
    std::vector<google::protobuf::Any> packed;
    packed.reserve(resources.size());
    for (const M& resource : resources) {
      packed.emplace_back().PackFrom(resource);
    }
    return send(type_url, version_info, packed);
  }
  // Time the last send() handed its response to gRPC (for latency measurements).
  std::chrono::steady_clock::time_point lastSendTime() const;

  // The request that answers the response with `nonce`.
  absl::StatusOr<DiscoveryRequest> waitForReplyTo(const std::string& type_url,
                                                  const std::string& nonce,
                                                  std::chrono::milliseconds timeout = 10s);
  // Success when the reply to `nonce` is an ACK (version_info = `version`, no error_detail).
  testing::AssertionResult waitForAck(const std::string& type_url, const std::string& nonce,
                                      const std::string& version,
                                      std::chrono::milliseconds timeout = 10s);
  // The error_detail message of the NACK of `nonce`; an error when it was ACKed or never
  // answered.
  absl::StatusOr<std::string> waitForNack(const std::string& type_url, const std::string& nonce,
                                          std::chrono::milliseconds timeout = 10s);

  // When the reply to `nonce` arrived (it must have arrived: call after waitForReplyTo()).
  absl::StatusOr<std::chrono::steady_clock::time_point> replyTime(const std::string& type_url,
                                                                  const std::string& nonce);

  // Every request received so far on the current stream (copies).
  std::vector<DiscoveryRequest> requests();
  // How many requests of `type_url` arrived on the current stream.
  size_t requestCount(const std::string& type_url);

  // gRPC handler thread.
  grpc::Status StreamAggregatedResources(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* stream) override;

 private:
  struct Stream {
    grpc::ServerContext* context;
    grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* rw;
    std::vector<DiscoveryRequest> requests;
    std::vector<std::chrono::steady_clock::time_point> received_at;  // one per request
    bool done = false;
  };

  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  // Every stream ever opened; the last one is current. Shared with its handler thread.
  std::vector<std::shared_ptr<Stream>> streams_;
  uint64_t next_nonce_ = 1;
  std::chrono::steady_clock::time_point last_send_{};
  // Serializes Write() on the current stream (gRPC allows one writer at a time).
  std::mutex write_mutex_;
};

}  // namespace Proxy::XdsIntegration
