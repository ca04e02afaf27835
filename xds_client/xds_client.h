#pragma once

// The xDS client: subscribes to Envoy v3 resources (Listener, RouteConfiguration, Cluster,
// ClusterLoadAssignment, ...) on a management server over gRPC and hands decoded resources to
// watchers on the owner's dispatcher. It owns streams, versions, nonces, ACK/NACK, backoff and
// rate limiting; it never touches proxy state. Usable without the proxy.
//
// Threading: every method here is main thread only (the dispatcher given to XdsClientImpl),
// and every Watcher callback runs there. The transport decodes responses on its own threads
// and hands them over with Dispatcher::post().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "proxy/common/assert.h"
#include "proxy/stats/stats.h"
#include "xds_client/resource_type.h"

namespace Proxy::Xds {

// The serialized bytes of one resource, as received. The resources of one response share one
// buffer (one allocation per response rather than two per resource: for 20,000 resources,
// 1 MB less heap and 40,000 fewer allocations, issue 14), so whoever holds a resource's bytes
// keeps its response's buffer alive: copy them to keep them long. Reads like the
// shared_ptr<const std::string> it replaced: `bytes != nullptr`, `std::string_view(*bytes)`.
class ResourceBytes {
 public:
  ResourceBytes() = default;
  ResourceBytes(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): as a null pointer
  // Bytes with a buffer of their own.
  ResourceBytes(std::shared_ptr<const std::string> bytes)  // NOLINT(google-explicit-constructor)
      : ResourceBytes(bytes, 0, bytes != nullptr ? bytes->size() : 0) {}
  // `size` bytes at `offset` of `buffer` (at most 4 GiB; a gRPC message is smaller).
  ResourceBytes(std::shared_ptr<const std::string> buffer, size_t offset, size_t size)
      : buffer_(std::move(buffer)),
        offset_(static_cast<uint32_t>(offset)),
        size_(static_cast<uint32_t>(size)) {
    ASSERT(buffer_ == nullptr ? offset == 0 && size == 0
                              : offset <= buffer_->size() && size <= buffer_->size() - offset &&
                                    buffer_->size() <= UINT32_MAX);
  }

  std::string_view view() const {
    return buffer_ == nullptr ? std::string_view()
                              : std::string_view(buffer_->data() + offset_, size_);
  }
  std::string_view operator*() const { return view(); }
  size_t size() const { return size_; }
  size_t offset() const { return offset_; }
  // The buffer the bytes are part of (shared with the other resources of their response).
  const std::shared_ptr<const std::string>& buffer() const { return buffer_; }

  friend bool operator==(const ResourceBytes& bytes, std::nullptr_t) {
    return bytes.buffer_ == nullptr;
  }
  friend bool operator!=(const ResourceBytes& bytes, std::nullptr_t) {
    return bytes.buffer_ != nullptr;
  }

 private:
  std::shared_ptr<const std::string> buffer_;
  uint32_t offset_ = 0;
  uint32_t size_ = 0;
};

// One resource of an update. Decoded on the transport's thread; immutable afterwards, so the
// owner may keep `message` as (part of) its snapshot and share it across threads.
struct DecodedResource {
  std::string name;
  // Delta: the resource's own version. SotW: the response's version_info.
  std::string version;
  // Hash of the serialized resource bytes as received: equal hashes mean an unchanged
  // resource, so the owner can skip it without comparing messages.
  uint64_t hash = 0;
  // Position in the response's resource list, for "resource index N: NAME: reason" messages.
  size_t index = 0;
  // Never null in what watchers receive; always the message type of the watched type URL.
  // shared_ptr rather than unique_ptr: one decode is shared by every watcher of the resource,
  // without copies (the client's cache keeps `bytes`, decoded again for a later watch).
  std::shared_ptr<const google::protobuf::Message> message;
  // The resource's bytes as received (what the client's cache keeps), part of its response's
  // buffer; null when the resource was not decoded from the wire (the cache then serializes
  // `message`).
  ResourceBytes bytes;

  template <class T>
  const T& as() const {
    ASSERT(message != nullptr && message->GetDescriptor() == T::descriptor());
    return static_cast<const T&>(*message);
  }
};

enum class FailureReason {
  // No update arrived within initial_fetch_timeout: the resource is "not yet available";
  // stop waiting for it (startup must not hang). Updates may still arrive later.
  FetchTimedOut,
  // The stream to the management server failed or could not be opened; the client retries
  // with backoff. Reported on every failure; the last good config stays valid.
  ConnectionFailure,
};
std::string_view failureReasonName(FailureReason reason);

// Receives the updates of one watch. Main thread only.
class Watcher {
 public:
  virtual ~Watcher() = default;

  // A response changed resources this watch covers. `added_or_updated` holds the resources
  // that came in the response (for SotW, every resource it carries, unchanged ones included:
  // compare DecodedResource::hash); `removed` the names the server removed. Names in neither
  // list are unchanged. A resource whose body was invalid is in neither list: its last good
  // version stays (the NACK names it).
  //
  // Return OK to accept. A non-OK status rejects the update: the client NACKs the response
  // with the status message (plus any decoding problems it found itself). Report per-resource
  // problems with ResourceErrors so the message has the NACK format
  // ("resource index N: NAME: reason; ..."). A watcher that applies the good resources and
  // rejects the bad ones (as Envoy's listener and cluster managers do) returns the errors of
  // the bad ones only. The watcher may add and drop watches (including this one) from here.
  virtual absl::Status onConfigUpdate(const std::vector<DecodedResource>& added_or_updated,
                                      const std::vector<std::string>& removed,
                                      const std::string& version) = 0;

  // The same update, for a watcher that applies its resources one at a time: the vector is
  // this call's own, and the watcher may reset each resource's `message` once it applied it,
  // so that the decoded resources of a large response are freed as they are applied instead
  // of all after the last one (a 10,000-cluster EDS response is ~35 MB decoded, issue 14).
  // The client calls it for a watch of named resources when no wildcard watch shares the
  // response: then nothing else holds the messages. The default calls onConfigUpdate().
  virtual absl::Status onConfigUpdateReleasing(std::vector<DecodedResource>& added_or_updated,
                                               const std::vector<std::string>& removed,
                                               const std::string& version) {
    return onConfigUpdate(added_or_updated, removed, version);
  }

  virtual void onConfigUpdateFailed(FailureReason reason) = 0;
};

// Collects per-resource rejections in the format a NACK carries, one entry per problem:
// "resource index 2: listener_0: filter_chains[0]: unknown filter 'x'". Entries are joined
// with "; " into one INVALID_ARGUMENT status.
class ResourceErrors {
 public:
  void add(const DecodedResource& resource, std::string_view reason);
  // For a problem that is not about one resource of the response.
  void addGeneral(std::string_view reason);
  bool empty() const { return entries_.empty(); }
  absl::Status toStatus() const;

 private:
  std::vector<std::string> entries_;
};

// A subscription. Destroying the handle unsubscribes (when no other watch wants a name, the
// client tells the server). Main thread only. A handle may outlive its client (it then does
// nothing), but owners normally drop their watches first.
class Watch {
 public:
  virtual ~Watch() = default;
  // Replace the watched names (not for wildcard watches). Names already known are delivered
  // from the cache on a later loop iteration; new names are requested from the server.
  virtual void updateResourceNames(const std::vector<std::string>& resource_names) = 0;
};
using WatchHandle = std::unique_ptr<Watch>;

struct WatchOptions {
  // Default: the type's initial_fetch_timeout from the config (15 s when unset). 0 = none.
  std::optional<std::chrono::milliseconds> initial_fetch_timeout;
  // Where update_attempt, update_success, update_rejected, update_failure,
  // init_fetch_timeout and version_text go (e.g. Scope(store, "listener_manager.lds.")).
  // Default: the client's scope + "<lds|rds|cds|eds>.", shared by watches of one type.
  std::optional<Stats::Scope> stats_scope;
};

class XdsClient {
 public:
  virtual ~XdsClient() = default;

  // Subscribe `watcher` to resources of `type_url`. Empty `resource_names` = every resource
  // of the type (wildcard; for Listener and Cluster). The stream serving the type opens on
  // the first watch; requests are sent on a later loop iteration, so watches added together
  // (e.g. one per cluster from a CDS update) go out as one request. `watcher` must outlive the
  // handle. Fails when the config has no source for `type_url` or the type is unknown.
  virtual absl::StatusOr<WatchHandle> watch(std::string_view type_url,
                                            const std::vector<std::string>& resource_names,
                                            Watcher& watcher, WatchOptions options) = 0;

  absl::StatusOr<WatchHandle> watch(std::string_view type_url,
                                    const std::vector<std::string>& resource_names,
                                    Watcher& watcher) {
    return watch(type_url, resource_names, watcher, WatchOptions{});
  }
};

using XdsClientPtr = std::unique_ptr<XdsClient>;

}  // namespace Proxy::Xds
