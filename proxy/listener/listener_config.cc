#include "proxy/listener/listener_config.h"

#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "proxy/config/filter_config.h"
#include "proxy/config/validation.h"

namespace Proxy::Listener {

using envoy::config::listener::v3::Listener;

uint64_t messageHash(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&out);
  }
  return std::hash<std::string>{}(bytes);
}

ListenerStats::ListenerStats(Stats::Scope s, uint32_t workers)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_active(s.gauge("downstream_cx_active")),
      downstream_cx_destroy(s.counter("downstream_cx_destroy")),
      no_filter_chain_match(s.counter("no_filter_chain_match")),
      downstream_cx_transport_socket_connect_timeout(
          s.counter("downstream_cx_transport_socket_connect_timeout")),
      downstream_pre_cx_timeout(s.counter("downstream_pre_cx_timeout")),
      downstream_pre_cx_active(s.gauge("downstream_pre_cx_active")),
      downstream_global_cx_overflow(s.counter("downstream_global_cx_overflow")) {
  for (uint32_t i = 0; i < workers; i++) {
    Stats::Scope worker = s.child(absl::StrCat("worker_", i));
    per_worker.push_back(
        {&worker.counter("downstream_cx_total"), &worker.gauge("downstream_cx_active")});
  }
}

namespace {

absl::StatusOr<FilterChain> buildFilterChain(const envoy::config::listener::v3::FilterChain& proto,
                                             const ListenerBuildContext& context) {
  FilterChain chain;
  chain.name = proto.name();
  chain.hash = messageHash(proto);
  if (proto.has_filter_chain_match()) {
    const auto& match = proto.filter_chain_match();
    if (match.application_protocols_size() > 0) {
      return absl::InvalidArgumentError("filter_chain_match.application_protocols: not supported");
    }
    for (int i = 0; i < match.server_names_size(); i++) {
      const std::string& name = match.server_names(i);
      const size_t star = name.find('*');
      if (name.empty() ||
          (star != std::string::npos && (star != 0 || name.size() < 3 || name[1] != '.'))) {
        return absl::InvalidArgumentError(
            absl::StrCat("filter_chain_match.server_names[", i, "]: '", name,
                         "' is neither a host name nor a wildcard of the form *.example.com"));
      }
      chain.server_names.push_back(absl::AsciiStrToLower(name));
    }
    chain.transport_protocol = match.transport_protocol();
    if (match.has_destination_port()) {
      chain.destination_port = match.destination_port().value();
    }
  }
  if (proto.has_transport_socket() && Config::typeName(proto.transport_socket().typed_config()) ==
                                          Config::kDownstreamTlsContextTypeName) {
    envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext tls;
    if (!proto.transport_socket().typed_config().UnpackTo(&tls)) {
      return absl::InvalidArgumentError(
          "transport_socket.typed_config: cannot decode DownstreamTlsContext");
    }
    auto tls_context = Tls::ContextProvider::createServer(tls, context.secrets);
    if (!tls_context.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("transport_socket.typed_config.", tls_context.status().message()));
    }
    chain.tls = *std::move(tls_context);
  }
  if (proto.has_transport_socket_connect_timeout()) {
    const auto& d = proto.transport_socket_connect_timeout();
    chain.transport_socket_connect_timeout =
        std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
  }
  if (proto.filters_size() == 0) {
    return absl::InvalidArgumentError("filters: must contain a terminal network filter");
  }
  for (int i = 0; i < proto.filters_size(); i++) {
    const auto& filter = proto.filters(i);
    const std::string where = absl::StrCat("filters[", i, "]");
    if (i != proto.filters_size() - 1) {
      // Both filters we have are terminal: anything before the last one is unsupported.
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unsupported network filter '", filter.name(),
                       "' (only a terminal http_connection_manager or tcp_proxy is supported)"));
    }
    const google::protobuf::Any& any = filter.typed_config();
    envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager hcm;
    envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy tcp;
    if (any.Is<decltype(hcm)>()) {
      if (!any.UnpackTo(&hcm)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".typed_config: cannot decode HttpConnectionManager"));
      }
      auto config = Filters::HcmConfig::create(hcm, *context.store, context.rds);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".typed_config.", config.status().message()));
      }
      chain.hcm = *std::move(config);
    } else if (any.Is<decltype(tcp)>()) {
      if (!any.UnpackTo(&tcp)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".typed_config: cannot decode TcpProxy"));
      }
      auto config = Filters::TcpProxyConfig::create(tcp, *context.store);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".typed_config.", config.status().message()));
      }
      chain.tcp_proxy = *std::move(config);
    } else if (!filter.has_typed_config()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".typed_config: is required"));
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".typed_config: unsupported network filter type '", any.type_url(), "'"));
    }
  }
  return chain;
}

// An unchanged chain of the previous version is shared rather than rebuilt.
absl::StatusOr<FilterChainConstSharedPtr> buildOrReuse(
    const envoy::config::listener::v3::FilterChain& proto, const ListenerBuildContext& context,
    const std::vector<FilterChainConstSharedPtr>& previous) {
  const uint64_t hash = messageHash(proto);
  for (const FilterChainConstSharedPtr& chain : previous) {
    if (chain != nullptr && chain->hash == hash) {
      return chain;
    }
  }
  auto chain = buildFilterChain(proto, context);
  if (!chain.ok()) {
    return chain.status();
  }
  return std::make_shared<const FilterChain>(*std::move(chain));
}

std::atomic<uint64_t> next_tag{1};

// Envoy's validate_clusters, true by default for a route configuration inline in a listener:
// a route to a cluster that does not exist rejects the listener.
absl::Status validateInlineRouteClusters(const Listener& proto,
                                         const ListenerBuildContext& context) {
  if (!context.cluster_exists) {
    return absl::OkStatus();
  }
  auto check = [&context](const envoy::config::listener::v3::FilterChain& chain,
                          const std::string& chain_path) -> absl::Status {
    for (int i = 0; i < chain.filters_size(); i++) {
      if (Config::networkFilterType(chain.filters(i)) !=
          Config::NetworkFilterType::HttpConnectionManager) {
        continue;
      }
      auto hcm = Config::unpackHcm(chain.filters(i));
      if (!hcm.ok() || !hcm->has_route_config() ||
          !Config::validatesClusters(hcm->route_config(), /*inline_default=*/true)) {
        continue;
      }
      absl::Status status = Config::validateRouteClusters(
          hcm->route_config(), context.cluster_exists,
          absl::StrCat(chain_path, ".filters[", i, "].typed_config.route_config"));
      if (!status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  };
  for (int i = 0; i < proto.filter_chains_size(); i++) {
    absl::Status status = check(proto.filter_chains(i), absl::StrCat("filter_chains[", i, "]"));
    if (!status.ok()) {
      return status;
    }
  }
  return proto.has_default_filter_chain()
             ? check(proto.default_filter_chain(), "default_filter_chain")
             : absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<ListenerConfig>> ListenerConfig::create(
    const Listener& proto, const ListenerBuildContext& context) {
  if (absl::Status status = Config::validateListener(proto); !status.ok()) {
    return status;
  }
  if (absl::Status status = validateInlineRouteClusters(proto, context); !status.ok()) {
    return status;
  }
  std::shared_ptr<ListenerConfig> config(new ListenerConfig());
  config->tag_ = next_tag.fetch_add(1);
  config->proto_ = proto;
  config->hash_ = messageHash(proto);
  config->name_ = proto.name();
  if (config->name_.empty()) {
    return absl::InvalidArgumentError("name: must not be empty");
  }
  if (!proto.has_address() || !proto.address().has_socket_address()) {
    return absl::InvalidArgumentError("address.socket_address: is required");
  }
  const auto& sa = proto.address().socket_address();
  if (sa.protocol() != envoy::config::core::v3::SocketAddress::TCP) {
    return absl::InvalidArgumentError("address.socket_address.protocol: only TCP is supported");
  }
  if (sa.port_specifier_case() == envoy::config::core::v3::SocketAddress::kNamedPort) {
    return absl::InvalidArgumentError("address.socket_address.named_port: is not supported");
  }
  auto address = Network::Address::fromIpPort(sa.address(), sa.port_value());
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("address.socket_address: ", address.status().message()));
  }
  for (int i = 0; i < proto.listener_filters_size(); i++) {
    const auto& filter = proto.listener_filters(i);
    const bool typed_inspector =
        filter.has_typed_config() &&
        Config::typeName(filter.typed_config()) ==
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
    if (!typed_inspector &&
        !(filter.config_type_case() ==
              envoy::config::listener::v3::ListenerFilter::CONFIG_TYPE_NOT_SET &&
          filter.name() == "envoy.filters.listener.tls_inspector")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listener_filters[", i, "]: unsupported listener filter '", filter.name(), "'"));
    }
    config->tls_inspector_ = true;
  }
  if (proto.has_listener_filters_timeout()) {
    const auto& d = proto.listener_filters_timeout();
    config->listener_filters_timeout_ =
        std::chrono::milliseconds(d.seconds() * 1000 + d.nanos() / 1000000);
  }
  config->continue_on_listener_filters_timeout_ = proto.continue_on_listener_filters_timeout();
  config->global_limit_ =
      proto.ignore_global_conn_limit() ? nullptr : context.global_connection_limit;
  if (proto.filter_chains_size() == 0 && !proto.has_default_filter_chain()) {
    return absl::InvalidArgumentError("filter_chains: at least one filter chain is required");
  }
  static const std::vector<FilterChainConstSharedPtr> kNone;
  const std::vector<FilterChainConstSharedPtr>& previous_chains =
      context.previous != nullptr ? context.previous->filter_chains_ : kNone;
  for (int i = 0; i < proto.filter_chains_size(); i++) {
    auto chain = buildOrReuse(proto.filter_chains(i), context, previous_chains);
    if (!chain.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("filter_chains[", i, "].", chain.status().message()));
    }
    config->filter_chains_.push_back(*std::move(chain));
  }
  if (proto.has_default_filter_chain()) {
    std::vector<FilterChainConstSharedPtr> previous_default;
    if (context.previous != nullptr) {
      previous_default.push_back(context.previous->default_filter_chain_);
    }
    auto chain = buildOrReuse(proto.default_filter_chain(), context, previous_default);
    if (!chain.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("default_filter_chain.", chain.status().message()));
    }
    config->default_filter_chain_ = *std::move(chain);
  }
  if (proto.has_per_connection_buffer_limit_bytes()) {
    config->buffer_limit_ = proto.per_connection_buffer_limit_bytes().value();
  }
  config->drain_on_shutdown_ = proto.drain_type() != Listener::MODIFY_ONLY;

  if (!context.bind_sockets) {
    config->address_ = *address;
    Stats::Scope scope(*context.store, absl::StrCat("listener.", config->name_, "."));
    config->stats_ = std::make_unique<ListenerStats>(scope, context.workers);
    config->bindTlsStats(scope);
    return config;
  }
  // The same address as the version this one replaces: take over its sockets, so the kernel's
  // accept queues (and the connections waiting in them) carry over.
  const ListenerConfig* previous = context.previous;
  if (previous != nullptr && previous->sockets_ != nullptr &&
      previous->proto_.address().SerializeAsString() == proto.address().SerializeAsString() &&
      previous->sockets_->size() == context.workers) {
    config->sockets_ = previous->sockets_;
  } else {
    // Bind last: everything else is validated, so a failure here is about the address only.
    const bool reuse_port = !proto.has_enable_reuse_port() || proto.enable_reuse_port().value();
    const int backlog =
        proto.has_tcp_backlog_size() ? static_cast<int>(proto.tcp_backlog_size().value()) : 1024;
    auto sockets = Network::createListenSockets(*address, reuse_port, context.workers, backlog);
    if (!sockets.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("address: ", sockets.status().message()));
    }
    config->sockets_ = std::make_shared<ListenSocketSet>(std::move(*sockets));
  }
  config->address_ = (*config->sockets_)[0]->localAddress();

  // Envoy names listener stats after the bound address ("listener.127.0.0.1_10000.") unless
  // stat_prefix is set.
  std::string prefix = proto.stat_prefix();
  if (prefix.empty()) {
    prefix = absl::StrCat(config->address_.family() == AF_INET6
                              ? absl::StrCat("[", config->address_.ip(), "]")
                              : config->address_.ip(),
                          "_", config->address_.port());
    prefix = absl::StrReplaceAll(prefix, {{":", "_"}});
  }
  Stats::Scope scope(*context.store, absl::StrCat("listener.", prefix, "."));
  config->stats_ = std::make_unique<ListenerStats>(scope, context.workers);
  config->bindTlsStats(scope);
  return config;
}

namespace {

// Keep the candidates `keep` accepts, if any does; report whether any did.
template <class Pred>
bool narrow(std::vector<const FilterChainConstSharedPtr*>& candidates, Pred keep) {
  std::vector<const FilterChainConstSharedPtr*> kept;
  for (const FilterChainConstSharedPtr* c : candidates) {
    if (keep(**c)) {
      kept.push_back(c);
    }
  }
  if (kept.empty()) {
    return false;
  }
  candidates.swap(kept);
  return true;
}

bool hasServerName(const FilterChain& chain, std::string_view name) {
  for (const std::string& n : chain.server_names) {
    if (n == name) {
      return true;
    }
  }
  return false;
}

}  // namespace

const FilterChainConstSharedPtr* ListenerConfig::findFilterChain(
    const Network::Address& local, std::string_view server_name,
    std::string_view transport_protocol) const {
  std::vector<const FilterChainConstSharedPtr*> candidates;
  candidates.reserve(filter_chains_.size());
  for (const FilterChainConstSharedPtr& chain : filter_chains_) {
    candidates.push_back(&chain);
  }
  const FilterChainConstSharedPtr* fallback =
      default_filter_chain_ != nullptr ? &default_filter_chain_ : nullptr;
  // Each criterion in Envoy's order: the most specific value that some chain names wins, then
  // chains that leave the criterion unset; none of either: no match (the default chain).
  const uint32_t port = local.port();
  if (!narrow(candidates, [port](const FilterChain& c) { return c.destination_port == port; }) &&
      !narrow(candidates, [](const FilterChain& c) { return c.destination_port == 0; })) {
    return fallback;
  }
  const std::string sni = absl::AsciiStrToLower(std::string(server_name));
  bool sni_matched = false;
  if (!sni.empty()) {
    sni_matched =
        narrow(candidates, [&sni](const FilterChain& c) { return hasServerName(c, sni); });
    // "*.b.example.com", then "*.example.com", then "*.com".
    for (size_t dot = sni.find('.'); !sni_matched && dot != std::string::npos;
         dot = sni.find('.', dot + 1)) {
      const std::string wildcard = absl::StrCat("*", sni.substr(dot));
      sni_matched = narrow(
          candidates, [&wildcard](const FilterChain& c) { return hasServerName(c, wildcard); });
    }
  }
  if (!sni_matched &&
      !narrow(candidates, [](const FilterChain& c) { return c.server_names.empty(); })) {
    return fallback;
  }
  if (!narrow(candidates,
              [transport_protocol](const FilterChain& c) {
                return c.transport_protocol == transport_protocol;
              }) &&
      !narrow(candidates, [](const FilterChain& c) { return c.transport_protocol.empty(); })) {
    return fallback;
  }
  return candidates.front();
}

void ListenerConfig::bindTlsStats(const Stats::Scope& scope) {
  // Before the config is shared with any worker; a chain reused from the previous version
  // keeps the stats it was bound to.
  auto bind = [&scope](const FilterChainConstSharedPtr& chain) {
    if (chain != nullptr && chain->tls != nullptr && !chain->tls->hasStats()) {
      chain->tls->initStats(scope);
    }
  };
  for (const FilterChainConstSharedPtr& chain : filter_chains_) {
    bind(chain);
  }
  bind(default_filter_chain_);
}

bool ListenerConfig::hasFilterChain(const FilterChain* chain) const {
  for (const FilterChainConstSharedPtr& c : filter_chains_) {
    if (c.get() == chain) {
      return true;
    }
  }
  return default_filter_chain_.get() == chain;
}

std::vector<std::shared_ptr<Router::RdsRouteConfigProvider>> ListenerConfig::rdsProviders() const {
  std::vector<std::shared_ptr<Router::RdsRouteConfigProvider>> out;
  auto add = [&out](const FilterChainConstSharedPtr& chain) {
    if (chain != nullptr && chain->hcm != nullptr && chain->hcm->rds_provider != nullptr) {
      out.push_back(chain->hcm->rds_provider);
    }
  };
  for (const FilterChainConstSharedPtr& chain : filter_chains_) {
    add(chain);
  }
  add(default_filter_chain_);
  return out;
}

std::vector<std::shared_ptr<Tls::ContextProvider>> ListenerConfig::pendingTlsProviders() const {
  std::vector<std::shared_ptr<Tls::ContextProvider>> out;
  auto add = [&out](const FilterChainConstSharedPtr& chain) {
    if (chain != nullptr && chain->tls != nullptr && !chain->tls->ready()) {
      out.push_back(chain->tls);
    }
  };
  for (const FilterChainConstSharedPtr& chain : filter_chains_) {
    add(chain);
  }
  add(default_filter_chain_);
  return out;
}

bool ListenerConfig::onlyFilterChainsDiffer(const ListenerConfig& other) const {
  Listener a = proto_;
  Listener b = other.proto_;
  a.clear_filter_chains();
  a.clear_default_filter_chain();
  b.clear_filter_chains();
  b.clear_default_filter_chain();
  return messageHash(a) == messageHash(b);
}

}  // namespace Proxy::Listener
