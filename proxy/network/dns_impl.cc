#include "proxy/network/dns_impl.h"

#include <arpa/inet.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proxy/common/assert.h"

namespace Proxy::Network {

CaresDnsResolverStats::CaresDnsResolverStats(Stats::Store& store)
    : resolve_total(store.counter("dns.cares.resolve_total")),
      pending_resolutions(store.gauge("dns.cares.pending_resolutions")),
      not_found(store.counter("dns.cares.not_found")),
      get_addr_failure(store.counter("dns.cares.get_addr_failure")),
      timeouts(store.counter("dns.cares.timeouts")),
      reinits(store.counter("dns.cares.reinits")) {}

DnsLookupFamily dnsLookupFamilyFromProto(int value) {
  switch (value) {
    case 1:
      return DnsLookupFamily::V4Only;
    case 2:
      return DnsLookupFamily::V6Only;
    case 3:
      return DnsLookupFamily::V4Preferred;
    case 4:
      return DnsLookupFamily::All;
    default:
      return DnsLookupFamily::Auto;
  }
}

// One resolve() call: one getaddrinfo, or two in sequence for AUTO and V4_PREFERRED when the
// first family has no addresses. Deletes itself when done once it was handed out (owned_).
class DnsResolverImpl::PendingResolution : public ActiveDnsQuery {
 public:
  PendingResolution(DnsResolverImpl& parent, std::string name, DnsLookupFamily family,
                    ResolveCb callback)
      : parent_(parent), name_(std::move(name)), family_(family), callback_(std::move(callback)) {
    dual_resolution_ = family == DnsLookupFamily::Auto || family == DnsLookupFamily::V4Preferred;
  }

  void cancel() override { cancelled_ = true; }

  void start() {
    switch (family_) {
      case DnsLookupFamily::V4Only:
      case DnsLookupFamily::V4Preferred:
        startFamily(AF_INET);
        break;
      case DnsLookupFamily::V6Only:
      case DnsLookupFamily::Auto:
        startFamily(AF_INET6);
        break;
      case DnsLookupFamily::All:
        startFamily(AF_UNSPEC);
        break;
    }
  }

  // The callback ran (or will never run) and nothing is left in c-ares.
  bool completed_ = false;
  // Handed out by resolve(): delete this when done.
  bool owned_ = false;

 private:
  void startFamily(int family) {
    pending_++;
    parent_.stats_.pending_resolutions.inc();
    ares_addrinfo_hints hints{};
    hints.ai_family = family;
    hints.ai_flags = ARES_AI_NOSORT;  // the server's order; c-ares connects to nothing
    // May call back inline (an IP literal, /etc/hosts): nothing may follow this call.
    ares_getaddrinfo(parent_.channel_, name_.c_str(), /*service=*/nullptr, &hints,
                     &PendingResolution::onAddrInfo, this);
  }

  static void onAddrInfo(void* arg, int status, int timeouts, ares_addrinfo* info) {
    static_cast<PendingResolution*>(arg)->onResult(status, timeouts, info);
  }

  static bool noRecords(int status) { return status == ARES_ENODATA || status == ARES_ENOTFOUND; }

  void onResult(int status, int timeouts, ares_addrinfo* info) {
    ASSERT(pending_ > 0);
    pending_--;
    parent_.stats_.resolve_total.inc();
    parent_.stats_.pending_resolutions.dec();
    if (status != ARES_SUCCESS) {
      parent_.chargeErrorStats(status, timeouts);
    }
    if (status == ARES_EDESTRUCTION) {
      // The channel is going away (the resolver, or a dirty channel rebuilt): report a failure
      // unless cancelled; the owner tries again later.
      finish();
      return;
    }
    if (!dual_resolution_) {
      completed_ = true;
      // Envoy's rule: ECONNREFUSED means a broken channel; rebuild it before the next query.
      if (status == ARES_ECONNREFUSED) {
        parent_.dirty_channel_ = true;
      }
    }
    if (status == ARES_SUCCESS) {
      status_ = DnsResolutionStatus::Completed;
      if (info != nullptr) {
        int min_ttl = INT_MAX;
        for (const ares_addrinfo_cname* cname = info->cnames; cname != nullptr;
             cname = cname->next) {
          min_ttl = std::min(min_ttl, cname->ttl);
        }
        for (const ares_addrinfo_node* node = info->nodes; node != nullptr; node = node->ai_next) {
          if (node->ai_family != AF_INET && node->ai_family != AF_INET6) {
            continue;
          }
          Address address = Address::fromSockaddr(node->ai_addr, node->ai_addrlen);
          addresses_.push_back(
              DnsResponse{*Address::fromIpPort(address.ip(), 0),
                          std::chrono::seconds(std::min(min_ttl, std::max(node->ai_ttl, 0)))});
        }
        ares_freeaddrinfo(info);
      }
      if (!addresses_.empty() && family_ != DnsLookupFamily::All) {
        completed_ = true;
      }
    } else if (noRecords(status)) {
      // A name without addresses of this family, or no such name: an answer with no records.
      status_ = DnsResolutionStatus::Completed;
    }
    if (completed_) {
      finish();
      return;
    }
    if (dual_resolution_) {
      dual_resolution_ = false;
      // The first family had nothing: ask for the other one.
      startFamily(family_ == DnsLookupFamily::Auto ? AF_INET : AF_INET6);
    }
  }

  void finish() {
    completed_ = true;
    if (!cancelled_ && !parent_.destroying_) {
      callback_(status_, std::move(addresses_));
    }
    if (owned_) {
      delete this;
    }
  }

  DnsResolverImpl& parent_;
  const std::string name_;
  const DnsLookupFamily family_;
  ResolveCb callback_;
  bool dual_resolution_ = false;
  bool cancelled_ = false;
  int pending_ = 0;
  DnsResolutionStatus status_ = DnsResolutionStatus::Failure;
  std::list<DnsResponse> addresses_;
};

DnsResolverImpl::DnsResolverImpl(Event::Dispatcher& dispatcher, DnsResolverOptions options,
                                 Stats::Store& store)
    : dispatcher_(dispatcher),
      options_(std::move(options)),
      stats_(store),
      timer_(dispatcher.createTimer([this] { onEvent(ARES_SOCKET_BAD, 0); })) {
  initializeChannel();
}

DnsResolverImpl::~DnsResolverImpl() {
  destroying_ = true;
  timer_->disableTimer();
  // Pending queries are called back with ARES_EDESTRUCTION and delete themselves quietly.
  destroyChannel();
}

void DnsResolverImpl::destroyChannel() {
  closing_channel_ = true;
  ares_destroy(channel_);
  channel_ = nullptr;
  closing_channel_ = false;
  // Its sockets are closed: none of their watchers may outlive them.
  events_.clear();
}

void DnsResolverImpl::initializeChannel() {
  dirty_channel_ = false;
  ares_options ares{};
  int optmask = ARES_OPT_SOCK_STATE_CB;
  ares.sock_state_cb = [](void* data, ares_socket_t fd, int read, int write) {
    static_cast<DnsResolverImpl*>(data)->onSocketStateChange(fd, read, write);
  };
  ares.sock_state_cb_data = this;
  if (options_.use_tcp_for_dns_lookups) {
    optmask |= ARES_OPT_FLAGS;
    ares.flags |= ARES_FLAG_USEVC;
  }
  if (options_.no_default_search_domain) {
    optmask |= ARES_OPT_FLAGS;
    ares.flags |= ARES_FLAG_NOSEARCH;
  }
  const int result = ares_init_options(&channel_, &ares, optmask);
  RELEASE_ASSERT(result == ARES_SUCCESS, "ares_init_options failed");
  if (!options_.resolvers.empty()) {
    std::vector<std::string> servers;
    for (const Address& server : options_.resolvers) {
      servers.push_back(server.family() == AF_INET6
                            ? absl::StrCat("[", server.ip(), "]:", server.port())
                            : absl::StrCat(server.ip(), ":", server.port()));
    }
    const std::string csv = absl::StrJoin(servers, ",");
    RELEASE_ASSERT(ares_set_servers_ports_csv(channel_, csv.c_str()) == ARES_SUCCESS,
                   "ares_set_servers_ports_csv failed");
  }
}

ActiveDnsQuery* DnsResolverImpl::resolve(const std::string& name, DnsLookupFamily family,
                                         ResolveCb callback) {
  ASSERT(dispatcher_.isThreadSafe());
  // An IP literal of a family the lookup accepts is its own answer. (c-ares 1.18 would first
  // ask the server for the AAAA records of "127.0.0.1" under AUTO.)
  in6_addr buf;
  const bool v4 = inet_pton(AF_INET, name.c_str(), &buf) == 1;
  const bool v6 = !v4 && inet_pton(AF_INET6, name.c_str(), &buf) == 1;
  if ((v4 && family != DnsLookupFamily::V6Only) || (v6 && family != DnsLookupFamily::V4Only)) {
    std::list<DnsResponse> response;
    response.push_back(DnsResponse{*Address::fromIpPort(name, 0), std::chrono::seconds(0)});
    callback(DnsResolutionStatus::Completed, std::move(response));
    return nullptr;
  }
  if (dirty_channel_) {
    // Pending queries of the old channel fail (EDESTRUCTION); their owners retry.
    destroyChannel();
    initializeChannel();
    stats_.reinits.inc();
  }
  auto pending = std::make_unique<PendingResolution>(*this, name, family, std::move(callback));
  pending->start();
  if (pending->completed_) {
    return nullptr;  // answered inline; `pending` is deleted here
  }
  updateTimer();
  pending->owned_ = true;
  return pending.release();
}

void DnsResolverImpl::onSocketStateChange(int fd, int read, int write) {
  if (closing_channel_) {
    return;  // destroyChannel() drops every watcher
  }
  updateTimer();
  auto it = events_.find(fd);
  const uint32_t events =
      (read != 0 ? Event::FileReadyType::Read : 0) | (write != 0 ? Event::FileReadyType::Write : 0);
  if (events == 0) {
    // c-ares is about to close the socket. Only disable the watcher: this may run inside its
    // own callback, and a later socket with the same number re-enables it.
    if (it != events_.end()) {
      it->second->setEnabled(0);
    }
    return;
  }
  if (it == events_.end()) {
    events_[fd] = dispatcher_.createFileEvent(
        fd, [this, fd](uint32_t ready) { onEvent(fd, ready); }, Event::FileTriggerType::Level,
        events);
    return;
  }
  it->second->setEnabled(events);
}

void DnsResolverImpl::onEvent(int fd, uint32_t events) {
  const ares_socket_t read_fd = (events & Event::FileReadyType::Read) != 0 ? fd : ARES_SOCKET_BAD;
  const ares_socket_t write_fd = (events & Event::FileReadyType::Write) != 0 ? fd : ARES_SOCKET_BAD;
  ares_process_fd(channel_, read_fd, write_fd);
  updateTimer();
}

void DnsResolverImpl::updateTimer() {
  timeval timeout{};
  if (ares_timeout(channel_, nullptr, &timeout) != nullptr) {
    timer_->enableTimer(std::chrono::milliseconds(timeout.tv_sec * 1000 + timeout.tv_usec / 1000));
  } else {
    timer_->disableTimer();
  }
}

void DnsResolverImpl::chargeErrorStats(int status, int timeouts) {
  switch (status) {
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
      stats_.not_found.inc();
      break;
    case ARES_ETIMEOUT:
      stats_.timeouts.add(static_cast<uint64_t>(timeouts));
      break;
    default:
      stats_.get_addr_failure.inc();
      break;
  }
}

}  // namespace Proxy::Network
