#pragma once

// The xDS protocol state machine (main thread): subscriptions per type, one stream per ADS or
// per type, SotW and Delta bookkeeping (versions, nonces, ACK/NACK), reconnect with backoff,
// request rate limiting and initial fetch timeouts. The contract is xds_client.h.
//
// Semantics worth knowing (see also xds_client.h):
// - A response is applied resource by resource, as gRPC does (gRFC A46): valid resources reach
//   the watchers even when others are invalid; the response is then NACKed with every
//   problem, and a SotW NACK carries the previously accepted version_info.
// - SotW Listener/Cluster responses remove what they no longer carry, except names that were
//   present but invalid, and nothing at all when a resource's name could not be read.
// - On ADS, a response for a type nobody subscribed on that stream is ignored (a NACK for it
//   would read as a wildcard subscription); on a per-type stream it is NACKed.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "envoy/config/core/v3/base.pb.h"
#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"
#include "xds_client/backoff.h"
#include "xds_client/config.h"
#include "xds_client/decoder.h"
#include "xds_client/transport.h"
#include "xds_client/xds_client.h"

namespace Proxy::Xds {

class XdsClientImpl : public XdsClient {
 public:
  // Stats: `scope` + "control_plane.connected_state" (gauge: 1 while every open stream is
  // connected), "control_plane.rate_limit_enforced" (counter), and per-type defaults for
  // watches ("lds.update_attempt", ...). Streams open on the first watch.
  XdsClientImpl(Event::Dispatcher& main, XdsClientConfig config,
                XdsTransportFactoryPtr transport_factory, Stats::Scope scope);
  // Cancels every stream (waiting for gRPC to let go of them). Watch handles still alive
  // become inert. Main thread; never from inside a Watcher callback.
  ~XdsClientImpl() override;

  absl::StatusOr<WatchHandle> watch(absl::string_view type_url,
                                    const std::vector<std::string>& resource_names,
                                    Watcher& watcher, WatchOptions options) override;
  using XdsClient::watch;

  // The last version_info accepted for a type ("" if none): admin and tests.
  std::string acceptedVersion(absl::string_view type_url) const;

 private:
  class WatchImpl;
  class Stream;
  struct TypeState;

  struct CachedResource {
    std::shared_ptr<const google::protobuf::Message> message;
    std::string version;
    uint64_t hash = 0;
  };

  struct WatchStats {
    explicit WatchStats(Stats::Scope& scope);
    Stats::Counter& update_attempt;
    Stats::Counter& update_success;
    Stats::Counter& update_rejected;
    Stats::Counter& update_failure;
    Stats::Counter& init_fetch_timeout;
    Stats::TextReadout& version_text;
  };

  struct TypeState {
    const ResourceType* type = nullptr;
    XdsTypeConfig config;
    Stream* stream = nullptr;

    // Watches by id (creation order, stable across callbacks that add or drop watches).
    std::map<uint64_t, WatchImpl*> watches;
    std::set<uint64_t> wildcard_watches;
    // Name -> the watches that name it; its keys are the subscribed names.
    std::map<std::string, std::set<uint64_t>, std::less<>> name_watches;

    // The resources as last received (valid ones, of subscribed names): removals, watches
    // that arrive later, and Delta's initial_resource_versions.
    // Hashed: resource names often share long prefixes, which makes ordered compares slow.
    absl::flat_hash_map<std::string, CachedResource> cache;
    bool has_response = false;  // the cache reflects at least one response

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

    // What the server was told on this stream (a SotW request restating an unchanged
    // subscription with nothing to ACK is not sent).
    std::set<std::string, std::less<>> sent_names;
    bool sent_wildcard = false;
    // Delta: ACKs/NACKs still to send (each response gets its own) and the per-resource
    // versions of accepted resources.
    std::deque<std::pair<std::string, std::optional<std::string>>> delta_acks;
    std::map<std::string, std::string, std::less<>> delta_versions;

    bool wildcard() const { return !wildcard_watches.empty(); }
    bool subscribed(const std::string& name) const {
      return wildcard() || name_watches.count(name) > 0;
    }
  };

  // Watch bookkeeping, called by WatchImpl.
  void removeWatch(WatchImpl& watch);
  void updateWatchNames(WatchImpl& watch, const std::vector<std::string>& names);
  void addNames(TypeState& type, WatchImpl& watch, const std::set<std::string>& names);
  void removeNames(TypeState& type, WatchImpl& watch, const std::set<std::string>& names);
  void onInitFetchTimeout(uint64_t watch_id, TypeState& type);

  // Run on the next loop iteration: send what is pending, deliver cached resources to new
  // watches. One timer for everything, so a burst of watch changes is one request.
  void scheduleFlush();
  void onFlushTimer();
  void deliverCached(uint64_t watch_id, TypeState& type);

  // Response processing (called by Stream).
  void processResponse(Stream& stream, DecodedResponsePtr response);
  void processUpdate(Stream& stream, TypeState& type, DecodedResponse& response);
  void nack(Stream& stream, TypeState& type, const std::string& nonce, std::string error);
  void onStreamFailure(Stream& stream);
  void updateConnectedState();

  TypeState* findType(absl::string_view type_url);

  Event::Dispatcher& main_;
  XdsClientConfig config_;
  XdsTransportFactoryPtr transport_factory_;
  Stats::Scope scope_;
  Stats::Gauge& connected_state_;
  Stats::Counter& rate_limit_enforced_;

  std::map<std::string, TypeState, std::less<>> types_;
  std::unique_ptr<Stream> ads_stream_;
  std::map<std::string, std::unique_ptr<Stream>, std::less<>> type_streams_;  // by type URL
  // Default per-type stats scopes, created on first use.
  std::map<std::string, Stats::Scope, std::less<>> default_scopes_;

  uint64_t next_watch_id_ = 1;
  Event::TimerPtr flush_timer_;
  // (watch id, type) pairs waiting for cached resources.
  std::vector<std::pair<uint64_t, TypeState*>> cached_deliveries_;
  // Depth of watcher callbacks on the stack: the client must not be destroyed from them.
  int dispatching_ = 0;
};

}  // namespace Proxy::Xds
