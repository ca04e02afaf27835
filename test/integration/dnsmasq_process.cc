#include "test/integration/dnsmasq_process.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "test/integration/proxy_process.h"

namespace Proxy::Integration {

namespace {

using namespace std::chrono_literals;

// A UDP port nobody uses now (bound to 0, then released for dnsmasq).
absl::StatusOr<uint32_t> freeUdpPort() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("bind: ", std::strerror(errno)));
  }
  // dnsmasq binds TCP on the port too: it must be free for TCP as well (else try another one).
  const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool tcp_free =
      tcp >= 0 && ::bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (tcp >= 0) {
    ::close(tcp);
  }
  ::close(fd);
  if (!tcp_free) {
    return freeUdpPort();
  }
  return ntohs(addr.sin_port);
}

size_t countOccurrences(const std::string& text, const std::string& what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
    count++;
  }
  return count;
}

}  // namespace

std::string DnsmasqProcess::binary() {
  for (const char* path : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"}) {
    if (::access(path, X_OK) == 0) {
      return path;
    }
  }
  return "";
}

absl::StatusOr<std::unique_ptr<DnsmasqProcess>> DnsmasqProcess::start(const Hosts& hosts,
                                                                      uint32_t local_ttl,
                                                                      uint32_t port) {
  if (binary().empty()) {
    return absl::NotFoundError("dnsmasq is not installed (deploy/install-deps.sh installs it)");
  }
  auto server = std::unique_ptr<DnsmasqProcess>(new DnsmasqProcess());
  const char* base = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/dnsmasq_it_XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  server->dir_ = pattern;
  server->hosts_path_ = server->dir_ + "/hosts";
  server->log_path_ = server->dir_ + "/dnsmasq.log";
  if (absl::Status status = server->writeHosts(hosts); !status.ok()) {
    return status;
  }
  if (port == 0) {
    absl::StatusOr<uint32_t> free = freeUdpPort();
    if (!free.ok()) {
      return free.status();
    }
    port = *free;
  }
  server->port_ = port;
  const std::vector<std::string> args = {
      absl::StrCat("--port=", port), "--listen-address=127.0.0.1", "--bind-interfaces",
      "--no-resolv", "--no-hosts", absl::StrCat("--addn-hosts=", server->hosts_path_),
      // .test is ours: names not in the file do not exist (NXDOMAIN), nothing is forwarded.
      "--local=/test/", absl::StrCat("--local-ttl=", local_ttl), "--keep-in-foreground",
      // Stay root (no privilege drop) and write no PID file: the test owns the process.
      "--user=root", "--pid-file=", absl::StrCat("--log-facility=", server->log_path_),
      "--cache-size=0"};
  absl::StatusOr<pid_t> pid =
      spawn(binary(), args, server->dir_ + "/stdout", server->dir_ + "/stderr");
  if (!pid.ok()) {
    return pid.status();
  }
  server->pid_ = *pid;
  // It logs reading the hosts file after binding its socket.
  if (absl::Status status = server->waitForReads(1); !status.ok()) {
    return status;
  }
  return server;
}

DnsmasqProcess::~DnsmasqProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    (void)waitPid(pid_, 5s);
  }
  if (!dir_.empty()) {
    for (const char* file : {"/hosts", "/dnsmasq.log", "/stdout", "/stderr"}) {
      ::unlink((dir_ + file).c_str());
    }
    ::rmdir(dir_.c_str());
  }
}

absl::Status DnsmasqProcess::writeHosts(const Hosts& hosts) {
  // Written aside and renamed: dnsmasq never reads half a file.
  const std::string tmp = hosts_path_ + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [address, name] : hosts) {
      out << address << " " << name << "\n";
    }
    if (!out) {
      return absl::InternalError("cannot write the dnsmasq hosts file");
    }
  }
  if (::rename(tmp.c_str(), hosts_path_.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status DnsmasqProcess::setHosts(const Hosts& hosts) {
  if (pid_ <= 0) {
    return absl::FailedPreconditionError("dnsmasq is not running");
  }
  if (absl::Status status = writeHosts(hosts); !status.ok()) {
    return status;
  }
  const size_t before = reads_;
  if (::kill(pid_, SIGHUP) != 0) {
    return absl::InternalError(absl::StrCat("kill: ", std::strerror(errno)));
  }
  return waitForReads(before + 1);
}

absl::Status DnsmasqProcess::stop() {
  if (pid_ <= 0) {
    return absl::OkStatus();
  }
  ::kill(pid_, SIGTERM);
  absl::StatusOr<int> exit_code = waitPid(pid_, 10s);
  pid_ = -1;
  return exit_code.status();
}

absl::Status DnsmasqProcess::waitForReads(size_t count) {
  const std::string marker = absl::StrCat("read ", hosts_path_, " - ");
  testing::AssertionResult read =
      waitUntil([&] { return countOccurrences(readFile(log_path_), marker) >= count; }, 10s,
                "dnsmasq to read its hosts file");
  if (!read) {
    return absl::DeadlineExceededError(
        absl::StrCat(read.message(), "; log: ", readFile(log_path_), readFile(dir_ + "/stderr")));
  }
  reads_ = count;
  return absl::OkStatus();
}

}  // namespace Proxy::Integration
