#pragma once

// What the client knows about one resource type: who watches it, what was received, and the
// protocol state of the stream serving it (versions, nonces, ACK/NACK still to send, what the
// server was told). Shared by XdsClientImpl, which applies responses and keeps the watches,
// and XdsStream, which turns this state into requests. The steps of applying a response that
// need no watcher are here too, so XdsClientImpl::processUpdate() reads as their sequence.
// Main thread only.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "google/protobuf/message.h"
#include "xds_client/config.h"
#include "xds_client/decoder.h"
#include "xds_client/resource_type.h"

namespace Proxy::Xds {

class WatchImpl;  // xds_client_impl.cc
class XdsStream;

// A resource as the cache keeps it: its serialized bytes, not the decoded message (a decoded
// ClusterLoadAssignment takes ~15x its wire size: ~450 bytes per endpoint against ~25). A watch
// that subscribes later gets it decoded again, and its hash computed again from the bytes.
// A slot is 72 bytes with its name (10,000 resources: 16,383 slots): the version is shared by
// the resources of one response (SotW: all of them) rather than a string per resource, and
// the bytes are a part of their response's buffer (see TypeState::buffer_live_bytes).
struct CachedResource {
  ResourceBytes bytes;
  std::shared_ptr<const std::string> version;
};

// The problems of one response that concern the client (those of subscribed resources).
struct UpdateErrors {
  // The NACK's entries, in order: decoding problems, then (appended by the client) watcher
  // rejections.
  std::vector<std::string> messages;
  // Subscribed names whose resource in this response was invalid.
  std::set<std::string> invalid_names;
  // Some resource's name could not be read: it may be any watch's.
  bool unnamed = false;
};

// What one response holds for one watch of named resources (wildcard watches get all of it).
struct WatchBatch {
  std::vector<DecodedResource> added;
  size_t added_count = 0;  // how many `added` will hold (batchesByWatch() reserves them)
  std::vector<std::string> removed;
  bool invalid = false;  // one of its names was invalid in this response
};

struct TypeState {
  const ResourceType* type = nullptr;
  XdsTypeConfig config;
  XdsStream* stream = nullptr;

  // ----- Watches (XdsClientImpl) -----
  // Watches by id (creation order, stable across callbacks that add or drop watches).
  std::map<uint64_t, WatchImpl*> watches;
  std::set<uint64_t> wildcard_watches;
  // Name -> the watches that name it (ascending ids; nearly always one, kept inline: 48 bytes
  // where a std::set of ids made a 112-byte node plus 40 per id); its keys are the subscribed
  // names. A B-tree: its nodes hold several entries, where a std::map node costs 96 bytes.
  using WatchIds = absl::InlinedVector<uint64_t, 1>;
  absl::btree_map<std::string, WatchIds, std::less<>> name_watches;

  // The resources as last received (valid ones, of subscribed names): removals, watches
  // that arrive later, and Delta's initial_resource_versions.
  // Hashed: resource names often share long prefixes, which makes ordered compares slow.
  // Changed through cachePut()/cacheErase() only, which keep buffer_live_bytes.
  absl::flat_hash_map<std::string, CachedResource> cache;
  // The cached bytes in each buffer shared by several resources (a response's), by buffer.
  // A buffer lives as long as one of its resources is cached: once less than half of it is
  // (the others were updated or removed, or never cached), what is left is copied to a buffer
  // of its own, so superseded bytes never take more than the cached ones. A buffer holding
  // exactly one resource is not tracked: it goes with it.
  absl::flat_hash_map<const std::string*, size_t> buffer_live_bytes;
  // Buffers that may have fallen below half since the last compactBuffers().
  std::vector<const std::string*> sparse_buffers;
  bool has_response = false;  // the cache reflects at least one response
  // The cache took a response while a wildcard watch existed: it may hold resources no name
  // watch subscribes to, which leave it once no wildcard watch is left.
  bool cache_has_unnamed = false;

  // The cache's only writers (they keep buffer_live_bytes). Then compactBuffers() copies out
  // what is left of buffers that became mostly superseded.
  void cachePut(const std::string& name, CachedResource resource);
  void cacheErase(absl::flat_hash_map<std::string, CachedResource>::iterator it);
  void compactBuffers();
  void releaseBytes(const ResourceBytes& bytes);

  // ----- Protocol state (what the next request says) -----
  // SotW: last accepted version_info (kept across streams), latest nonce on this stream,
  // and the NACK message for the next request.
  std::string accepted_version;
  std::string nonce;
  std::optional<std::string> pending_error;
  bool ack_pending = false;  // a response of this stream still needs its ACK/NACK
  // A request for this type is due (subscription change or ACK/NACK).
  bool pending = false;
  // A request for this type went out on the current stream.
  bool sent_on_stream = false;
  // "*" was subscribed explicitly on the current stream (not the legacy empty list).
  bool sent_star = false;

  // The subscription's generation: bumped whenever a name enters or leaves name_watches, so
  // that an ACK of an unchanged subscription (the common case: 10,000 EDS names, one changed
  // assignment) neither compares nor rebuilds the name list (issue 14).
  uint64_t names_generation = 1;
  // What the server was told on this stream: the generation (0: nothing yet) and its names,
  // rebuilt only when the generation changed. A SotW request restating an unchanged
  // subscription with nothing to ACK is not sent; Delta (un)subscribes the difference.
  uint64_t sent_generation = 0;
  // Sorted (name_watches' order); a vector: 32 bytes a name where a std::set node took 80.
  std::vector<std::string> sent_names;
  bool sent_wildcard = false;
  // SotW: name_watches' keys as a serialized DiscoveryRequest.resource_names (field 3), for
  // generation sotw_names_generation; every request of that generation reuses the bytes.
  std::string sotw_names_bytes;
  uint64_t sotw_names_generation = 0;
  // Delta: ACKs/NACKs still to send (each response gets its own) and the per-resource
  // versions of accepted resources.
  std::deque<std::pair<std::string, std::optional<std::string>>> delta_acks;
  // The version strings are the cache's (shared), and the entries sit several to a B-tree node.
  absl::btree_map<std::string, std::shared_ptr<const std::string>, std::less<>> delta_versions;

  bool wildcard() const { return !wildcard_watches.empty(); }
  bool subscribed(const std::string& name) const {
    return wildcard() || name_watches.count(name) > 0;
  }

  // ----- Subscriptions -----
  // `names` sorted, without duplicates (a watch's names).
  void addNames(uint64_t watch_id, const std::vector<std::string>& names);
  // Without a wildcard watch, what is no longer subscribed also leaves the cache (a name
  // subscribed again later is fetched afresh). Costs the names removed, not the cache's size,
  // unless the cache holds resources a wildcard watch received.
  void removeNames(uint64_t watch_id, const std::vector<std::string>& names);
  // Whether name_watches' keys are sent_names (O(names)): a subscription that changed and
  // changed back needs no request.
  bool namesAsSent() const;
  bool sentName(std::string_view name) const;

  // ----- Applying a response, in the order XdsClientImpl::processUpdate() runs them -----
  // 1. The decoding problems of subscribed resources; the others are ignored like the
  //    resources themselves.
  UpdateErrors subscribedErrors(const DecodedResponse& response) const;
  // 2. Drops the resources nobody asked for (unless a watch is wildcard); returns how many.
  size_t dropUnsubscribed(std::vector<DecodedResource>& resources) const;
  // 3. The names the response removes: explicit in Delta; in SotW, cached Listeners/Clusters
  //    the response no longer carries (none when a resource's name could not be read).
  std::vector<std::string> removedNames(const DecodedResponse& response,
                                        const std::string& stream_label) const;
  // 4. The cache takes the response, before any watcher runs.
  void updateCache(const std::vector<DecodedResource>& resources,
                   const std::vector<std::string>& removed);
  // 5. Each named watch's part of the response, by watch id.
  std::map<uint64_t, WatchBatch> batchesByWatch(const std::vector<DecodedResource>& resources,
                                                const std::vector<std::string>& removed,
                                                const std::set<std::string>& invalid_names) const;
  // 6. Accepted: the response's version (and Delta's per-resource versions) become ours.
  void acceptVersions(const DecodedResponse& response, const std::vector<std::string>& removed);

  // The next request for this type ACKs `response_nonce` (the owner flushes).
  void queueAck(bool delta, const std::string& response_nonce);
  // The next request for this type NACKs `response_nonce` with `message`; a SotW NACK carries
  // the accepted version_info, which does not change (the owner flushes).
  void queueNack(bool delta, const std::string& response_nonce, std::string message);

  // ----- Streams -----
  // A new stream knows nothing: every type is requested again, with its accepted version
  // (SotW) or its resource versions (Delta); nonces and unsent ACKs belong to the old one.
  void resetForNewStream();
};

}  // namespace Proxy::Xds
