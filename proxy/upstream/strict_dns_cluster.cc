#include "proxy/upstream/strict_dns_cluster.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.pb.h"
#include "proxy/common/assert.h"
#include "proxy/common/status.h"
#include "proxy/upstream/host_impl.h"
#include "proxy/upstream/logical_dns_cluster.h"

namespace Proxy::Upstream {

namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig;

constexpr char kCaresName[] = "envoy.network.dns_resolver.cares";

absl::Status fieldError(const std::string& field, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

int64_t toMs(const google::protobuf::Duration& d) {
  return d.seconds() * 1000 + d.nanos() / 1000000;
}

bool atLeastOneMs(const google::protobuf::Duration& d) {
  return d.seconds() > 0 || (d.seconds() == 0 && d.nanos() >= 1000000);
}

}  // namespace

absl::StatusOr<DnsClusterConfig> DnsClusterConfig::create(const Cluster& config) {
  DnsClusterConfig out;
  out.logical = config.type() == Cluster::LOGICAL_DNS;
  if (out.logical) {
    RETURN_IF_ERROR(validateLogicalDnsLoadAssignment(config));
  }
  if (config.has_dns_refresh_rate()) {
    if (!atLeastOneMs(config.dns_refresh_rate())) {
      return fieldError("dns_refresh_rate", "must be at least 1ms");
    }
    out.refresh_rate = std::chrono::milliseconds(toMs(config.dns_refresh_rate()));
  }
  if (config.has_dns_failure_refresh_rate()) {
    const auto& rate = config.dns_failure_refresh_rate();
    if (!rate.has_base_interval() || !atLeastOneMs(rate.base_interval())) {
      return fieldError("dns_failure_refresh_rate.base_interval", "must be at least 1ms");
    }
    const int64_t base = toMs(rate.base_interval());
    int64_t max = base * 10;  // Envoy's default
    if (rate.has_max_interval()) {
      if (!atLeastOneMs(rate.max_interval())) {
        return fieldError("dns_failure_refresh_rate.max_interval", "must be at least 1ms");
      }
      max = toMs(rate.max_interval());
    }
    if (max < base) {
      return fieldError("dns_failure_refresh_rate",
                        "dns_failure_refresh_rate must have max_interval greater than or equal to "
                        "the base_interval");
    }
    out.failure_base_interval = std::chrono::milliseconds(base);
    out.failure_max_interval = std::chrono::milliseconds(max);
  }
  out.respect_dns_ttl = config.respect_dns_ttl();
  out.lookup_family = Network::dnsLookupFamilyFromProto(config.dns_lookup_family());

  if (config.has_typed_dns_resolver_config()) {
    const auto& typed = config.typed_dns_resolver_config();
    CaresDnsResolverConfig cares;
    if (!typed.has_typed_config() || !typed.typed_config().Is<CaresDnsResolverConfig>() ||
        !typed.typed_config().UnpackTo(&cares)) {
      return fieldError(
          "typed_dns_resolver_config",
          absl::StrCat("unsupported DNS resolver '",
                       typed.has_typed_config() ? typed.typed_config().type_url() : typed.name(),
                       "' (only ", kCaresName, " is supported)"));
    }
    if (cares.resolvers().empty()) {
      return fieldError("typed_dns_resolver_config.typed_config.resolvers",
                        "at least one resolver is required");
    }
    for (int i = 0; i < cares.resolvers_size(); i++) {
      const std::string field =
          absl::StrCat("typed_dns_resolver_config.typed_config.resolvers[", i, "]");
      const auto& resolver = cares.resolvers(i);
      if (!resolver.has_socket_address()) {
        return fieldError(field, "a resolver must be a socket_address");
      }
      const auto& sa = resolver.socket_address();
      if (sa.port_specifier_case() == envoy::config::core::v3::SocketAddress::kNamedPort ||
          sa.port_value() > 65535) {
        return fieldError(absl::StrCat(field, ".socket_address.port_value"),
                          "a port between 0 and 65535 is required");
      }
      absl::StatusOr<Network::Address> address =
          Network::Address::fromIpPort(sa.address(), sa.port_value() == 0 ? 53 : sa.port_value());
      if (!address.ok()) {
        return fieldError(absl::StrCat(field, ".socket_address.address"),
                          absl::StrCat("'", sa.address(), "' is not an IP address"));
      }
      out.resolver.resolvers.push_back(*address);
    }
    out.resolver.use_tcp_for_dns_lookups = cares.dns_resolver_options().use_tcp_for_dns_lookups();
    out.resolver.no_default_search_domain = cares.dns_resolver_options().no_default_search_domain();
  }
  return out;
}

DnsClusterStats::DnsClusterStats(Stats::Scope scope)
    : update_attempt(scope.counter("update_attempt")),
      update_success(scope.counter("update_success")),
      update_failure(scope.counter("update_failure")),
      update_no_rebuild(scope.counter("update_no_rebuild")) {}

// One lb_endpoint: its name, re-resolved on its own timer.
class DnsClusterImpl::ResolveTarget {
 public:
  ResolveTarget(DnsClusterImpl& parent, std::string dns_address, uint32_t port,
                std::string hostname, uint32_t weight, uint32_t priority, HealthStatus health,
                HostLocality locality)
      : parent_(parent),
        dns_address_(std::move(dns_address)),
        port_(port),
        hostname_(std::move(hostname)),
        weight_(weight),
        priority_(priority),
        health_(health),
        locality_(std::move(locality)),
        timer_(parent.dispatcher_.createTimer([this] { startResolve(); })) {}

  ~ResolveTarget() {
    if (query_ != nullptr) {
      query_->cancel();
    }
  }

  void startResolve() {
    parent_.stats_.update_attempt.inc();
    // The callback may run inside resolve() (an IP literal): query_ is null then.
    query_ = parent_.resolver_->resolve(
        dns_address_, parent_.config_.lookup_family,
        [this](Network::DnsResolutionStatus status, std::list<Network::DnsResponse>&& response) {
          query_ = nullptr;
          onResolved(status, std::move(response));
        });
  }

  const HostVector& hosts() const { return hosts_; }

 private:
  void onResolved(Network::DnsResolutionStatus status, std::list<Network::DnsResponse>&& response) {
    std::chrono::milliseconds refresh = parent_.config_.refresh_rate;
    const bool success = status == Network::DnsResolutionStatus::Completed &&
                         (!parent_.config_.logical || !response.empty());
    if (success) {
      parent_.stats_.update_success.inc();
      std::chrono::seconds ttl = std::chrono::seconds::max();
      bool changed;
      if (parent_.config_.logical) {
        changed = updateLogicalDnsHost(response, port_, hostname_, parent_.info_->name(), weight_,
                                       health_, logical_);
        ttl = response.front().ttl;
        if (changed) {
          hosts_ = {logical_.host};
        }
      } else {
        changed = updateStrictDnsHosts(response, ttl);
      }
      if (changed) {
        parent_.onTargetHostsChanged();
      } else {
        parent_.stats_.update_no_rebuild.inc();
      }
      parent_.resetFailureBackOff();
      if (parent_.config_.respect_dns_ttl && !response.empty() && ttl.count() != 0) {
        refresh = std::chrono::duration_cast<std::chrono::milliseconds>(ttl);
      }
    } else {
      // A failure keeps the hosts this target has.
      parent_.stats_.update_failure.inc();
      refresh = parent_.nextFailureBackOff();
    }
    timer_->enableTimer(refresh);
    parent_.onTargetResolved();  // last: may activate the cluster
  }

  // Every address of the answer with this target's port, each once; existing hosts kept.
  bool updateStrictDnsHosts(const std::list<Network::DnsResponse>& response,
                            std::chrono::seconds& ttl) {
    absl::flat_hash_map<std::string, HostConstSharedPtr> existing;
    for (const HostConstSharedPtr& host : hosts_) {
      existing.emplace(host->address().asString(), host);
    }
    HostVector next;
    absl::flat_hash_set<std::string> seen;
    bool changed = false;
    for (const Network::DnsResponse& answer : response) {
      absl::StatusOr<Network::Address> address =
          Network::Address::fromIpPort(answer.address.ip(), port_);
      ASSERT(address.ok());
      const std::string key = address->asString();
      if (!seen.insert(key).second) {
        continue;
      }
      ttl = std::min(ttl, answer.ttl);
      auto it = existing.find(key);
      if (it != existing.end()) {
        next.push_back(it->second);
      } else {
        next.push_back(std::make_shared<HostImpl>(*address, hostname_, parent_.info_->name(),
                                                  weight_, priority_, health_, /*stats=*/nullptr,
                                                  /*health_state=*/nullptr, locality_));
        changed = true;
      }
    }
    changed = changed || next.size() != hosts_.size();
    hosts_ = std::move(next);
    return changed;
  }

  DnsClusterImpl& parent_;
  const std::string dns_address_;
  const uint32_t port_;
  const std::string hostname_;
  const uint32_t weight_;
  const uint32_t priority_;
  const HealthStatus health_;
  const HostLocality locality_;
  Event::TimerPtr timer_;
  Network::ActiveDnsQuery* query_ = nullptr;
  HostVector hosts_;
  LogicalDnsHostState logical_;
};

DnsClusterImpl::DnsClusterImpl(Event::Dispatcher& dispatcher, Stats::Store& store,
                               const Cluster& config, DnsClusterConfig dns_config,
                               ClusterInfoImplConstSharedPtr info,
                               std::function<void(HostVector)> on_hosts,
                               std::function<void()> on_initialized)
    : dispatcher_(dispatcher),
      config_(std::move(dns_config)),
      info_(std::move(info)),
      stats_(info_->statsScope()),
      on_hosts_(std::move(on_hosts)),
      on_initialized_(std::move(on_initialized)),
      random_(std::random_device()()),
      resolver_(std::make_unique<Network::DnsResolverImpl>(dispatcher, config_.resolver, store)) {
  resetFailureBackOff();
  for (const auto& locality : config.load_assignment().endpoints()) {
    for (const auto& lb_endpoint : locality.lb_endpoints()) {
      const auto& endpoint = lb_endpoint.endpoint();
      const auto& sa = endpoint.address().socket_address();
      const uint32_t weight =
          lb_endpoint.has_load_balancing_weight() ? lb_endpoint.load_balancing_weight().value() : 1;
      targets_.push_back(std::make_unique<ResolveTarget>(
          *this, sa.address(), sa.port_value(),
          endpoint.hostname().empty() ? sa.address() : endpoint.hostname(), weight,
          config_.logical ? 0 : locality.priority(),
          healthStatusFromProto(lb_endpoint.health_status()),
          HostLocality{localityKey(locality.locality()),
                       locality.has_load_balancing_weight()
                           ? locality.load_balancing_weight().value()
                           : 0}));
    }
  }
}

DnsClusterImpl::~DnsClusterImpl() {
  // Targets cancel their queries, then the resolver goes.
  targets_.clear();
  resolver_.reset();
}

void DnsClusterImpl::start() {
  if (targets_.empty()) {
    onTargetResolved();  // nothing to resolve: initialized with no hosts
    return;
  }
  for (auto& target : targets_) {
    target->startResolve();
  }
}

HostVector DnsClusterImpl::allHosts() const {
  HostVector hosts;
  for (const auto& target : targets_) {
    hosts.insert(hosts.end(), target->hosts().begin(), target->hosts().end());
  }
  return hosts;
}

void DnsClusterImpl::onTargetHostsChanged() {
  on_hosts_(allHosts());
}

void DnsClusterImpl::onTargetResolved() {
  if (!initialized_) {
    initialized_ = true;
    on_initialized_();
  }
}

std::chrono::milliseconds DnsClusterImpl::nextFailureBackOff() {
  if (!config_.failure_base_interval.has_value()) {
    return config_.refresh_rate;  // Envoy's FixedBackOffStrategy
  }
  // Envoy's JitteredExponentialBackOffStrategy: uniform in [0, min(base * 2^n, max)).
  const uint64_t max = static_cast<uint64_t>(config_.failure_max_interval.count());
  const uint64_t backoff = next_failure_ms_;
  next_failure_ms_ = next_failure_ms_ > max / 2 ? max : next_failure_ms_ * 2;
  return std::chrono::milliseconds(std::min(random_() % backoff, max));
}

void DnsClusterImpl::resetFailureBackOff() {
  if (config_.failure_base_interval.has_value()) {
    next_failure_ms_ = static_cast<uint64_t>(config_.failure_base_interval->count());
  }
}

}  // namespace Proxy::Upstream
