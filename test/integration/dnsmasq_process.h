#pragma once

// A real DNS server for the DNS cluster tests: Debian's dnsmasq, started by the test on
// 127.0.0.1:<free port>, answering only from a hosts file the test writes (no resolv.conf, no
// /etc/hosts, no upstream). Names under `.test` that are not in the file get NXDOMAIN; other
// names get REFUSED. setHosts() rewrites the file and sends SIGHUP to the PID it started, then
// waits for dnsmasq's log to say it read the file again. stop() ends it (SIGTERM, by PID):
// queries are then refused by the kernel (ECONNREFUSED), a resolution failure.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace Proxy::Integration {

class DnsmasqProcess {
 public:
  // (address, name) lines of the hosts file.
  using Hosts = std::vector<std::pair<std::string, std::string>>;

  // `local_ttl`: the TTL of every answer (dnsmasq's --local-ttl; 0 is dnsmasq's default).
  // `port`: 0 picks a free one.
  static absl::StatusOr<std::unique_ptr<DnsmasqProcess>> start(const Hosts& hosts,
                                                               uint32_t local_ttl = 0,
                                                               uint32_t port = 0);
  ~DnsmasqProcess();

  uint32_t port() const { return port_; }
  // New answers from now on.
  absl::Status setHosts(const Hosts& hosts);
  // SIGTERM to the PID started, and wait for it to exit.
  absl::Status stop();

  // The binary; empty when dnsmasq is not installed.
  static std::string binary();

 private:
  DnsmasqProcess() = default;
  absl::Status writeHosts(const Hosts& hosts);
  // Wait until the log says the hosts file was read `count` times in all.
  absl::Status waitForReads(size_t count);

  std::string dir_;
  std::string hosts_path_;
  std::string log_path_;
  uint32_t port_ = 0;
  pid_t pid_ = -1;
  size_t reads_ = 0;
};

}  // namespace Proxy::Integration
