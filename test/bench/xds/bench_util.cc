#include "test/bench/xds/bench_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace Proxy::XdsBench {

int64_t intFlag(int argc, char** argv, const std::string& name, int64_t fallback) {
  for (int i = 1; i + 1 < argc; i++) {
    int64_t value = 0;
    if (argv[i] == "--" + name && absl::SimpleAtoi(argv[i + 1], &value)) {
      return value;
    }
  }
  return fallback;
}

void check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "benchmark failed: " << what << std::endl;
    std::exit(1);
  }
}

std::unique_ptr<ProxyProcess> startProxy(AdsServer& ads, uint32_t concurrency,
                                         bool client_rate_limit) {
  Integration::ProxyOptions options;
  options.bootstrap_yaml = XdsIntegration::adsBootstrap(static_cast<uint32_t>(ads.port()),
                                                        client_rate_limit ? "{}" : "");
  options.concurrency = concurrency;
  options.log_level = "warning";
  options.wait_for_ready = false;
  auto proxy = std::make_unique<ProxyProcess>(options);
  testing::AssertionResult started = proxy->start();
  check(started, started.message());
  testing::AssertionResult stream = ads.waitForStream();
  check(stream, stream.message());
  return proxy;
}

std::vector<HttpClientPtr> connectionPerWorker(ProxyProcess& proxy, uint32_t port,
                                               uint32_t workers) {
  std::vector<HttpClientPtr> out(workers);
  std::vector<int64_t> seen(workers, 0);
  auto workerTotals = [&] {
    std::vector<int64_t> totals(workers, 0);
    for (uint32_t w = 0; w < workers; w++) {
      absl::StatusOr<int64_t> value = proxy.counter(
          absl::StrCat("listener.127.0.0.1_", port, ".worker_", w, ".downstream_cx_total"));
      totals[w] = value.ok() ? *value : 0;
    }
    return totals;
  };
  seen = workerTotals();
  uint32_t found = 0;
  for (int attempt = 0; attempt < 500 && found < workers; attempt++) {
    absl::StatusOr<HttpClientPtr> client = Integration::HttpClient::connect(port);
    check(client.ok(), absl::StrCat("connect: ", client.status().message()));
    Integration::HttpRequest request;
    request.path = "/probe";
    absl::StatusOr<Integration::HttpResponse> response = (*client)->request(request);
    check(response.ok(), absl::StrCat("probe: ", response.status().message()));
    std::vector<int64_t> now = workerTotals();
    for (uint32_t w = 0; w < workers; w++) {
      if (now[w] > seen[w] && out[w] == nullptr) {
        out[w] = *std::move(client);
        found++;
        break;
      }
    }
    seen = now;
  }
  check(found == workers, "could not get a connection on every worker");
  return out;
}

double cpuMillis(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
  const size_t close = line.rfind(')');
  std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
  const double ticks = static_cast<double>(std::stoll(fields[11]) + std::stoll(fields[12]));
  return ticks * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

uint64_t procStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream rest(line.substr(field.size() + 1));
      uint64_t kb = 0;
      rest >> kb;
      return kb;
    }
  }
  return 0;
}

std::string percentiles(std::vector<double> samples_us) {
  if (samples_us.empty()) {
    return "(no samples)";
  }
  std::sort(samples_us.begin(), samples_us.end());
  auto at = [&](double q) {
    const size_t index = std::min(samples_us.size() - 1,
                                  static_cast<size_t>(q * static_cast<double>(samples_us.size())));
    return samples_us[index] / 1000.0;
  };
  return absl::StrFormat("p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%d)", at(0.5),
                         at(0.9), at(0.99), samples_us.back() / 1000.0, samples_us.size());
}

double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

}  // namespace Proxy::XdsBench
