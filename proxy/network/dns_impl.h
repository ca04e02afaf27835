#pragma once

// Asynchronous DNS resolution with c-ares, driven by one thread's Dispatcher (Envoy's
// DnsResolverImpl, source/extensions/network/dns_resolver/cares/dns_impl.*): c-ares tells us
// which sockets to watch (sock_state_cb) and we give each one a file event; a timer fires at
// c-ares' next timeout. Nothing blocks the loop: a query is a few datagrams, answered when its
// socket becomes readable. The main thread owns the resolvers of the DNS clusters.
//
// Envoy's semantics kept here: the lookup families (AUTO asks AAAA then A when there is no
// AAAA, V4_PREFERRED the reverse, ALL both at once), a name that exists without records or does
// not exist at all (ENODATA, ENOTFOUND) completes with no addresses instead of failing, a
// refused connection to the name server marks the channel dirty so the next query opens a new
// one, and the dns.cares.* stats.

#include <ares.h>

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "proxy/event/dispatcher.h"
#include "proxy/network/address.h"
#include "proxy/stats/stats.h"

namespace Proxy::Network {

// Cluster.dns_lookup_family.
enum class DnsLookupFamily { V4Only, V6Only, Auto, V4Preferred, All };

// One answer: the address (port 0) and its TTL.
struct DnsResponse {
  Address address;
  std::chrono::seconds ttl;
};

enum class DnsResolutionStatus { Completed, Failure };

// A query in flight. cancel() guarantees the callback will not run; the object is the
// resolver's (do not delete it).
class ActiveDnsQuery {
 public:
  virtual ~ActiveDnsQuery() = default;
  virtual void cancel() = 0;
};

class DnsResolver {
 public:
  using ResolveCb =
      std::function<void(DnsResolutionStatus status, std::list<DnsResponse>&& response)>;
  virtual ~DnsResolver() = default;
  // Resolve `name`. Returns null when the callback already ran (an IP literal, /etc/hosts);
  // otherwise the handle of the pending query. Dispatcher thread only.
  virtual ActiveDnsQuery* resolve(const std::string& name, DnsLookupFamily family,
                                  ResolveCb callback) = 0;
};

// CaresDnsResolverConfig as the proxy implements it.
struct DnsResolverOptions {
  // The name servers to ask (IP and port); empty: /etc/resolv.conf's.
  std::vector<Address> resolvers;
  bool use_tcp_for_dns_lookups = false;
  bool no_default_search_domain = false;
};

// Envoy's dns.cares.* stats, shared by every resolver of the process (as Envoy's root scope).
struct CaresDnsResolverStats {
  explicit CaresDnsResolverStats(Stats::Store& store);
  Stats::Counter& resolve_total;
  Stats::Gauge& pending_resolutions;
  Stats::Counter& not_found;
  Stats::Counter& get_addr_failure;
  Stats::Counter& timeouts;
  Stats::Counter& reinits;  // the channel was rebuilt (after ECONNREFUSED)
};

class DnsResolverImpl : public DnsResolver {
 public:
  DnsResolverImpl(Event::Dispatcher& dispatcher, DnsResolverOptions options, Stats::Store& store);
  // Pending queries are dropped without calling back.
  ~DnsResolverImpl() override;

  ActiveDnsQuery* resolve(const std::string& name, DnsLookupFamily family,
                          ResolveCb callback) override;

 private:
  class PendingResolution;

  void initializeChannel();
  void destroyChannel();
  void onSocketStateChange(int fd, int read, int write);
  void onEvent(int fd, uint32_t events);
  void updateTimer();
  void chargeErrorStats(int status, int timeouts);

  Event::Dispatcher& dispatcher_;
  const DnsResolverOptions options_;
  CaresDnsResolverStats stats_;
  Event::TimerPtr timer_;
  ares_channel channel_ = nullptr;
  // Set when a query saw ECONNREFUSED: the channel is rebuilt before the next query (it cannot
  // be destroyed from inside its own callback).
  bool dirty_channel_ = false;
  // The channel is being destroyed: c-ares' calls back must not touch it.
  bool closing_channel_ = false;
  // The resolver is being destroyed: queries end without calling back.
  bool destroying_ = false;
  absl::flat_hash_map<int, Event::FileEventPtr> events_;
};

// The cluster's DnsLookupFamily from its proto enum value (AUTO=0 ... ALL=4).
DnsLookupFamily dnsLookupFamilyFromProto(int value);

}  // namespace Proxy::Network
