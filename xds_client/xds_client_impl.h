#pragma once

// The xDS protocol state machine (main thread): watches and subscriptions per type, the cache,
// applying responses (SotW and Delta) and deciding ACK/NACK, initial fetch timeouts. Each
// stream (ADS or per type: reconnect with backoff, rate limit, request building) is an
// XdsStream (xds_stream.h); the per-type state both share is TypeState (type_state.h). The
// contract is xds_client.h.
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
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/stats/stats.h"
#include "xds_client/config.h"
#include "xds_client/decoder.h"
#include "xds_client/transport.h"
#include "xds_client/type_state.h"
#include "xds_client/xds_client.h"
#include "xds_client/xds_stream.h"

namespace Proxy::Xds {

class XdsClientImpl : public XdsClient, private XdsStream::Callbacks {
 public:
  // Stats: `scope` + "control_plane.connected_state" (gauge: 1 while every open stream is
  // connected), "control_plane.rate_limit_enforced" (counter), and per-type defaults for
  // watches ("lds.update_attempt", ...). Streams open on the first watch.
  XdsClientImpl(Event::Dispatcher& main, XdsClientConfig config,
                XdsTransportFactoryPtr transport_factory, Stats::Scope scope);
  // Cancels every stream (waiting for gRPC to let go of them). Watch handles still alive
  // become inert. Main thread; never from inside a Watcher callback.
  ~XdsClientImpl() override;

  absl::StatusOr<WatchHandle> watch(std::string_view type_url,
                                    const std::vector<std::string>& resource_names,
                                    Watcher& watcher, WatchOptions options) override;
  using XdsClient::watch;

  // The last version_info accepted for a type ("" if none): admin and tests.
  std::string acceptedVersion(std::string_view type_url) const;

 private:
  friend class WatchImpl;

  // Watch bookkeeping, called by WatchImpl.
  void removeWatch(WatchImpl& watch);
  void updateWatchNames(WatchImpl& watch, const std::vector<std::string>& names);
  void onInitFetchTimeout(uint64_t watch_id, TypeState& type);
  // The type's state, creating it and the stream that serves it on first use.
  absl::StatusOr<TypeState*> typeForWatch(std::string_view type_url);
  Stats::Scope& defaultScope(const TypeState& type);

  // Run on the next loop iteration: send what is pending, deliver cached resources to new
  // watches. One timer for everything, so a burst of watch changes is one request.
  void scheduleFlush() override;
  void onFlushTimer();
  // A watch waiting for cached resources: a new watch gets every cached resource it names, a
  // watch that adds names only those (it has the others).
  struct CachedDelivery {
    uint64_t watch_id;
    TypeState* type;
    std::optional<std::vector<std::string>> names;  // sorted; nullopt: every name the watch has
  };
  void deliverCached(const CachedDelivery& delivery);

  // XdsStream::Callbacks
  void onStreamResponse(XdsStream& stream, DecodedResponsePtr response) override;
  void onStreamFailure(XdsStream& stream) override;
  void onStreamStateChanged() override;

  // Responses. processUpdate() reads top-down: what concerns us (TypeState's steps), the
  // cache, dispatch to the watchers, then ACK or NACK.
  // A response that cannot be used at all: NACKed, no watcher hears of it.
  void nackResponse(XdsStream& stream, TypeState& type, const std::string& nonce,
                    std::string error);
  void processUpdate(XdsStream& stream, TypeState& type, DecodedResponse& response);
  // Hands each watch its part; a watcher's rejection joins `errors`. Returns the watches that
  // took the update without a problem (their version_text moves if the response is ACKed).
  std::vector<uint64_t> dispatchToWatchers(TypeState& type, DecodedResponse& response,
                                           const std::vector<std::string>& removed,
                                           UpdateErrors& errors);
  void ackUpdate(XdsStream& stream, TypeState& type, const DecodedResponse& response,
                 const std::vector<std::string>& removed, const std::vector<uint64_t>& accepted,
                 size_t ignored);
  void nackUpdate(XdsStream& stream, TypeState& type, const DecodedResponse& response,
                  const std::vector<std::string>& removed, const std::vector<std::string>& errors);

  TypeState* findType(std::string_view type_url);

  Event::Dispatcher& main_;
  XdsClientConfig config_;
  XdsTransportFactoryPtr transport_factory_;
  Stats::Scope scope_;
  Stats::Gauge& connected_state_;
  Stats::Counter& rate_limit_enforced_;

  std::map<std::string, TypeState, std::less<>> types_;
  std::unique_ptr<XdsStream> ads_stream_;
  std::map<std::string, std::unique_ptr<XdsStream>, std::less<>> type_streams_;  // by type URL
  // Default per-type stats scopes, created on first use.
  std::map<std::string, Stats::Scope, std::less<>> default_scopes_;

  uint64_t next_watch_id_ = 1;
  Event::TimerPtr flush_timer_;
  // Watches waiting for cached resources (see CachedDelivery).
  std::vector<CachedDelivery> cached_deliveries_;
  // Depth of watcher callbacks on the stack: the client must not be destroyed from them.
  int dispatching_ = 0;
};

}  // namespace Proxy::Xds
