#include "proxy/filters/tcp_proxy.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace Proxy::Filters {

using envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;

TcpProxyStats::TcpProxyStats(Stats::Scope s)
    : downstream_cx_total(s.counter("downstream_cx_total")),
      downstream_cx_no_route(s.counter("downstream_cx_no_route")),
      downstream_cx_rx_bytes_total(s.counter("downstream_cx_rx_bytes_total")),
      downstream_cx_tx_bytes_total(s.counter("downstream_cx_tx_bytes_total")),
      idle_timeout(s.counter("idle_timeout")),
      upstream_flush_total(s.counter("upstream_flush_total")) {}

absl::StatusOr<std::shared_ptr<const TcpProxyConfig>> TcpProxyConfig::create(const TcpProxy& proto,
                                                                             Stats::Store& store) {
  if (proto.stat_prefix().empty()) {
    return absl::InvalidArgumentError("stat_prefix: must not be empty");
  }
  auto config = std::make_shared<TcpProxyConfig>();
  if (!proto.cluster().empty()) {
    config->clusters.push_back({proto.cluster(), 1});
  } else if (proto.has_weighted_clusters()) {
    for (int i = 0; i < proto.weighted_clusters().clusters_size(); i++) {
      const auto& c = proto.weighted_clusters().clusters(i);
      if (c.name().empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("weighted_clusters.clusters[", i, "].name: must not be empty"));
      }
      if (c.weight() == 0) {
        continue;
      }
      config->clusters.push_back({c.name(), c.weight()});
    }
  }
  if (config->clusters.empty()) {
    return absl::InvalidArgumentError(
        "cluster_specifier: one of cluster or weighted_clusters is required");
  }
  for (const auto& c : config->clusters) {
    config->total_weight += c.weight;
  }
  if (proto.has_idle_timeout()) {
    config->idle_timeout = std::chrono::milliseconds(proto.idle_timeout().seconds() * 1000 +
                                                     proto.idle_timeout().nanos() / 1000000);
  }
  config->stats = std::make_unique<TcpProxyStats>(
      Stats::Scope(store, absl::StrCat("tcp.", proto.stat_prefix(), ".")));
  return config;
}

const std::string& TcpProxyConfig::clusterName(uint64_t random) const {
  if (clusters.size() == 1) {
    return clusters[0].name;
  }
  uint64_t point = random % total_weight;
  for (const auto& c : clusters) {
    if (point < c.weight) {
      return c.name;
    }
    point -= c.weight;
  }
  return clusters.back().name;
}

namespace {

std::mt19937_64& threadRandom() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

class TcpProxyFilter : public NetworkFilter, public Network::ConnectionCallbacks {
 public:
  TcpProxyFilter(TcpProxyConfigConstSharedPtr config, Upstream::ClusterManager& cm,
                 Network::Connection& downstream)
      : config_(std::move(config)), downstream_(downstream) {
    config_->stats->downstream_cx_total.inc();
    downstream_.enableHalfClose(true);
    downstream_.addConnectionCallbacks(*this);
    Upstream::ThreadLocalCluster* cluster =
        cm.getThreadLocalCluster(config_->clusterName(threadRandom()()));
    Upstream::HostConstSharedPtr host =
        cluster == nullptr ? nullptr : cluster->loadBalancer().chooseHost();
    if (host == nullptr) {
      config_->stats->downstream_cx_no_route.inc();
      if (cluster != nullptr) {
        cluster->info()->stats().upstream_cx_none_healthy().inc();
      }
      // Closing from the constructor: the connection handler checks the state after creating
      // the filter.
      downstream_.close(Network::ConnectionCloseType::NoFlush);
      return;
    }
    cluster_info_ = cluster->info();
    host_ = host;
    upstream_ = cluster->tcpConnection(host);
    upstream_->setBufferLimits(cluster_info_->perConnectionBufferLimitBytes());
    upstream_->enableHalfClose(true);
    upstream_->addConnectionCallbacks(upstream_callbacks_);
    upstream_->setReadFilter(&upstream_reader_);
    cluster_info_->stats().upstream_cx_total().inc();
    cluster_info_->stats().upstream_cx_active().inc();
    host_->stats().cx_total.fetch_add(1, std::memory_order_relaxed);
    host_->stats().cx_active.fetch_add(1, std::memory_order_relaxed);
    // Hold downstream bytes until the upstream is connected.
    downstream_.readDisable(true);
    read_disabled_for_connect_ = true;
    connect_timer_ = downstream_.dispatcher().createTimer([this] { onConnectTimeout(); });
    connect_timer_->enableTimer(cluster_info_->connectTimeout());
    if (config_->idle_timeout.count() > 0) {
      idle_timer_ = downstream_.dispatcher().createTimer([this] { onIdleTimeout(); });
      idle_timer_->enableTimer(config_->idle_timeout);
    }
    upstream_->connect();
  }

  ~TcpProxyFilter() override {
    downstream_.removeConnectionCallbacks(*this);
    closeUpstream(Network::ConnectionCloseType::NoFlush);
  }

  // Downstream bytes → upstream.
  void onData(Buffer::Instance& data, bool end_stream) override {
    config_->stats->downstream_cx_rx_bytes_total.add(data.length());
    touch();
    if (upstream_ != nullptr) {
      upstream_->write(data, end_stream);
    } else {
      data.drain(data.length());
    }
  }

  void startDrain(std::chrono::milliseconds) override {
    // Envoy leaves TCP connections alone during drain; the drain deadline closes them.
  }

  // Downstream events.
  void onEvent(Network::ConnectionEvent event) override {
    if (event == Network::ConnectionEvent::RemoteClose ||
        event == Network::ConnectionEvent::LocalClose) {
      // Flush what the upstream still has to send us? The downstream is gone: nothing to do.
      closeUpstream(event == Network::ConnectionEvent::RemoteClose
                        ? Network::ConnectionCloseType::FlushWrite
                        : Network::ConnectionCloseType::NoFlush);
      disableTimers();
    }
  }
  void onAboveWriteBufferHighWatermark() override {
    if (upstream_ != nullptr) {
      upstream_->readDisable(true);
    }
  }
  void onBelowWriteBufferLowWatermark() override {
    if (upstream_ != nullptr) {
      upstream_->readDisable(false);
    }
  }

 private:
  // Upstream bytes → downstream.
  struct UpstreamReader : public Network::ReadFilter {
    explicit UpstreamReader(TcpProxyFilter& parent) : parent_(parent) {}
    void onData(Buffer::Instance& data, bool end_stream) override {
      parent_.config_->stats->downstream_cx_tx_bytes_total.add(data.length());
      parent_.touch();
      parent_.downstream_.write(data, end_stream);
    }
    TcpProxyFilter& parent_;
  };

  struct UpstreamCallbacks : public Network::ConnectionCallbacks {
    explicit UpstreamCallbacks(TcpProxyFilter& parent) : parent_(parent) {}
    void onEvent(Network::ConnectionEvent event) override { parent_.onUpstreamEvent(event); }
    void onAboveWriteBufferHighWatermark() override { parent_.downstream_.readDisable(true); }
    void onBelowWriteBufferLowWatermark() override { parent_.downstream_.readDisable(false); }
    TcpProxyFilter& parent_;
  };

  void onUpstreamEvent(Network::ConnectionEvent event) {
    if (event == Network::ConnectionEvent::Connected) {
      connect_timer_->disableTimer();
      connected_ = true;
      if (read_disabled_for_connect_) {
        read_disabled_for_connect_ = false;
        downstream_.readDisable(false);
      }
      return;
    }
    // The upstream closed or failed.
    if (!connected_) {
      cluster_info_->stats().upstream_cx_connect_fail().inc();
      host_->stats().cx_connect_fail.fetch_add(1, std::memory_order_relaxed);
    }
    releaseUpstream();
    downstream_.close(connected_ ? Network::ConnectionCloseType::FlushWrite
                                 : Network::ConnectionCloseType::NoFlush);
  }

  void onConnectTimeout() {
    cluster_info_->stats().upstream_cx_connect_timeout().inc();
    cluster_info_->stats().upstream_cx_connect_fail().inc();
    closeUpstream(Network::ConnectionCloseType::NoFlush);
    downstream_.close(Network::ConnectionCloseType::NoFlush);
  }

  void onIdleTimeout() {
    config_->stats->idle_timeout.inc();
    closeUpstream(Network::ConnectionCloseType::NoFlush);
    downstream_.close(Network::ConnectionCloseType::NoFlush);
  }

  void touch() {
    if (idle_timer_ != nullptr) {
      idle_timer_->enableTimer(config_->idle_timeout);
    }
  }

  void disableTimers() {
    if (connect_timer_ != nullptr) {
      connect_timer_->disableTimer();
    }
    if (idle_timer_ != nullptr) {
      idle_timer_->disableTimer();
    }
  }

  void closeUpstream(Network::ConnectionCloseType type) {
    if (upstream_ == nullptr) {
      return;
    }
    upstream_->removeConnectionCallbacks(upstream_callbacks_);
    upstream_->close(type);
    releaseUpstream();
  }

  // The upstream connection object may still be on the stack: delete it deferred.
  void releaseUpstream() {
    if (upstream_ == nullptr) {
      return;
    }
    upstream_->setReadFilter(nullptr);
    cluster_info_->stats().upstream_cx_active().dec();
    cluster_info_->stats().upstream_cx_destroy().inc();
    host_->stats().cx_active.fetch_sub(1, std::memory_order_relaxed);
    Event::Dispatcher& dispatcher = upstream_->dispatcher();
    dispatcher.deferredDelete(std::move(upstream_));
  }

  const TcpProxyConfigConstSharedPtr config_;
  Network::Connection& downstream_;
  Upstream::ClusterInfoConstSharedPtr cluster_info_;
  Upstream::HostConstSharedPtr host_;
  Network::ClientConnectionPtr upstream_;
  UpstreamReader upstream_reader_{*this};
  UpstreamCallbacks upstream_callbacks_{*this};
  Event::TimerPtr connect_timer_;
  Event::TimerPtr idle_timer_;
  bool connected_ = false;
  bool read_disabled_for_connect_ = false;
};

}  // namespace

NetworkFilterPtr createTcpProxy(TcpProxyConfigConstSharedPtr config,
                                Upstream::ClusterManager& cluster_manager,
                                Network::Connection& downstream) {
  return std::make_unique<TcpProxyFilter>(std::move(config), cluster_manager, downstream);
}

}  // namespace Proxy::Filters
