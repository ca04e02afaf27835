#include "test/integration/xds/ads_server.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace Proxy::XdsIntegration {

std::string shortType(const std::string& type_url) {
  const size_t dot = type_url.rfind('.');
  return dot == std::string::npos ? type_url : type_url.substr(dot + 1);
}

AdsServer::AdsServer() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  // 10,000 clusters and 100,000 endpoints in one response (the benchmark) exceed gRPC's 4 MiB
  // default on the receiving side; our side only has to allow what the proxy sends (small).
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
}

AdsServer::~AdsServer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& stream : streams_) {
      if (!stream->done) {
        // The context lives while its handler runs, and the handler only returns after
        // marking the stream done under this lock.
        stream->context->TryCancel();
      }
    }
  }
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_->Wait();
}

grpc::Status AdsServer::StreamAggregatedResources(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<DiscoveryResponse, DiscoveryRequest>* rw) {
  auto stream = std::make_shared<Stream>();
  stream->context = context;
  stream->rw = rw;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    streams_.push_back(stream);
  }
  cv_.notify_all();
  DiscoveryRequest request;
  while (rw->Read(&request)) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stream->requests.push_back(request);
      stream->received_at.push_back(std::chrono::steady_clock::now());
    }
    cv_.notify_all();
  }
  {
    // Writers check `done` under write_mutex_ too: no Write() after the handler returned.
    std::lock_guard<std::mutex> write_lock(write_mutex_);
    std::lock_guard<std::mutex> lock(mutex_);
    stream->done = true;
  }
  cv_.notify_all();
  return grpc::Status::OK;
}

testing::AssertionResult AdsServer::waitForStream(size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!cv_.wait_for(lock, timeout, [&] { return streams_.size() >= count; })) {
    return testing::AssertionFailure()
           << "the proxy did not open ADS stream #" << count << " within " << timeout.count()
           << " ms (" << streams_.size() << " so far)";
  }
  return testing::AssertionSuccess();
}

absl::StatusOr<DiscoveryRequest> AdsServer::waitForRequest(
    const std::string& type_url, const std::function<bool(const DiscoveryRequest&)>& match,
    std::chrono::milliseconds timeout, size_t from) {
  std::unique_lock<std::mutex> lock(mutex_);
  const DiscoveryRequest* found = nullptr;
  auto ready = [&] {
    if (streams_.empty()) {
      return false;
    }
    const std::vector<DiscoveryRequest>& requests = streams_.back()->requests;
    for (size_t i = from; i < requests.size(); i++) {
      if (requests[i].type_url() == type_url && match(requests[i])) {
        found = &requests[i];
        return true;
      }
    }
    return false;
  };
  if (!cv_.wait_for(lock, timeout, ready)) {
    std::vector<std::string> seen;
    if (!streams_.empty()) {
      for (const DiscoveryRequest& request : streams_.back()->requests) {
        seen.push_back(absl::StrCat(shortType(request.type_url()), "{version='",
                                    request.version_info(), "' nonce='", request.response_nonce(),
                                    "' names=[", absl::StrJoin(request.resource_names(), ","), "]",
                                    request.has_error_detail() ? " NACK" : "", "}"));
      }
    }
    return absl::DeadlineExceededError(absl::StrCat("no matching ", shortType(type_url),
                                                    " request within ", timeout.count(),
                                                    " ms; received: ", absl::StrJoin(seen, " ")));
  }
  return *found;
}

absl::StatusOr<DiscoveryRequest> AdsServer::waitForSubscription(const std::string& type_url,
                                                                std::vector<std::string> names,
                                                                std::chrono::milliseconds timeout,
                                                                size_t from) {
  std::sort(names.begin(), names.end());
  return waitForRequest(
      type_url,
      [&names](const DiscoveryRequest& request) {
        std::vector<std::string> got(request.resource_names().begin(),
                                     request.resource_names().end());
        std::sort(got.begin(), got.end());
        return got == names;
      },
      timeout, from);
}

std::string AdsServer::send(const std::string& type_url, const std::string& version_info,
                            const std::vector<google::protobuf::Any>& resources) {
  DiscoveryResponse response;
  response.set_type_url(type_url);
  response.set_version_info(version_info);
  for (const google::protobuf::Any& resource : resources) {
    *response.add_resources() = resource;
  }
  std::shared_ptr<Stream> stream;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    response.set_nonce(absl::StrCat(next_nonce_++));
    if (!streams_.empty()) {
      stream = streams_.back();
    }
  }
  if (stream == nullptr) {
    ADD_FAILURE() << "send(" << shortType(type_url) << "): no ADS stream";
    return response.nonce();
  }
  std::lock_guard<std::mutex> write_lock(write_mutex_);
  bool done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done = stream->done;
    last_send_ = std::chrono::steady_clock::now();
  }
  if (done || !stream->rw->Write(response)) {
    ADD_FAILURE() << "send(" << shortType(type_url) << "): the ADS stream is closed";
  }
  return response.nonce();
}

std::chrono::steady_clock::time_point AdsServer::lastSendTime() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_send_;
}

absl::StatusOr<DiscoveryRequest> AdsServer::waitForReplyTo(const std::string& type_url,
                                                           const std::string& nonce,
                                                           std::chrono::milliseconds timeout) {
  return waitForRequest(
      type_url, [&nonce](const DiscoveryRequest& r) { return r.response_nonce() == nonce; },
      timeout);
}

testing::AssertionResult AdsServer::waitForAck(const std::string& type_url,
                                               const std::string& nonce, const std::string& version,
                                               std::chrono::milliseconds timeout) {
  absl::StatusOr<DiscoveryRequest> reply = waitForReplyTo(type_url, nonce, timeout);
  if (!reply.ok()) {
    return testing::AssertionFailure() << "no reply to " << shortType(type_url) << " nonce "
                                       << nonce << ": " << reply.status().message();
  }
  if (reply->has_error_detail()) {
    return testing::AssertionFailure() << shortType(type_url) << " version '" << version
                                       << "' was NACKed: " << reply->error_detail().message();
  }
  if (reply->version_info() != version) {
    return testing::AssertionFailure()
           << shortType(type_url) << " reply to nonce " << nonce << " has version '"
           << reply->version_info() << "', expected '" << version << "'";
  }
  return testing::AssertionSuccess();
}

absl::StatusOr<std::string> AdsServer::waitForNack(const std::string& type_url,
                                                   const std::string& nonce,
                                                   std::chrono::milliseconds timeout) {
  absl::StatusOr<DiscoveryRequest> reply = waitForReplyTo(type_url, nonce, timeout);
  if (!reply.ok()) {
    return reply.status();
  }
  if (!reply->has_error_detail()) {
    return absl::FailedPreconditionError(
        absl::StrCat(shortType(type_url), " nonce ", nonce, " was ACKed (version '",
                     reply->version_info(), "'), expected a NACK"));
  }
  return reply->error_detail().message();
}

absl::StatusOr<std::chrono::steady_clock::time_point> AdsServer::replyTime(
    const std::string& type_url, const std::string& nonce) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!streams_.empty()) {
    const Stream& stream = *streams_.back();
    for (size_t i = 0; i < stream.requests.size(); i++) {
      if (stream.requests[i].type_url() == type_url &&
          stream.requests[i].response_nonce() == nonce) {
        return stream.received_at[i];
      }
    }
  }
  return absl::NotFoundError(absl::StrCat("no reply to ", shortType(type_url), " nonce ", nonce));
}

size_t AdsServer::requestMark() {
  std::lock_guard<std::mutex> lock(mutex_);
  return streams_.empty() ? 0 : streams_.back()->requests.size();
}

std::vector<DiscoveryRequest> AdsServer::requests() {
  std::lock_guard<std::mutex> lock(mutex_);
  return streams_.empty() ? std::vector<DiscoveryRequest>{} : streams_.back()->requests;
}

size_t AdsServer::requestCount(const std::string& type_url) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (streams_.empty()) {
    return 0;
  }
  return std::count_if(streams_.back()->requests.begin(), streams_.back()->requests.end(),
                       [&](const DiscoveryRequest& r) { return r.type_url() == type_url; });
}

}  // namespace Proxy::XdsIntegration
