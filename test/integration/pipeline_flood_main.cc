// pipeline-flood: the hardening issue's memory attack as a measurement (not a test). Opens N
// connections to 127.0.0.1:PORT, pipelines copies of one GET on each for a fixed time without
// reading a byte, and samples the resident set of process PID (the proxy) meanwhile; then,
// with --read, reads every response back; closes the connections and samples again after a
// settle time, to see whether the memory is given back.
//
//   pipeline-flood --port 10000 --pid 1234 --connections 100 --seconds 5 --path /ping --read
//
// test/bench/run_pipeline_flood.sh starts a proxy and an upstream and runs the four cases.

#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "test/integration/pipelined_client.h"

namespace {

using Clock = std::chrono::steady_clock;
using Proxy::Integration::PipelinedClient;

void usage() {
  std::fprintf(stderr,
               "usage: pipeline-flood --port N --pid PID [--connections 1] [--seconds 5]\n"
               "                      [--path /] [--host example.com] [--read]\n"
               "                      [--settle-seconds 3]\n");
}

uint64_t rssKb(int pid) {
  absl::StatusOr<uint64_t> kb = Proxy::Integration::procStatusKb(pid, "VmRSS");
  return kb.ok() ? *kb : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each sample as it is taken, even into a file
  uint32_t port = 0;
  int pid = 0;
  uint32_t connections = 1;
  uint32_t seconds = 5;
  uint32_t settle_seconds = 3;
  std::string path = "/";
  std::string host = "example.com";
  bool read = false;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    bool ok = true;
    if (arg == "--port" && has_value) {
      ok = absl::SimpleAtoi(argv[++i], &port);
    } else if (arg == "--pid" && has_value) {
      ok = absl::SimpleAtoi(argv[++i], &pid);
    } else if (arg == "--connections" && has_value) {
      ok = absl::SimpleAtoi(argv[++i], &connections) && connections > 0;
    } else if (arg == "--seconds" && has_value) {
      ok = absl::SimpleAtoi(argv[++i], &seconds);
    } else if (arg == "--settle-seconds" && has_value) {
      ok = absl::SimpleAtoi(argv[++i], &settle_seconds);
    } else if (arg == "--path" && has_value) {
      path = argv[++i];
    } else if (arg == "--host" && has_value) {
      host = argv[++i];
    } else if (arg == "--read") {
      read = true;
    } else {
      ok = false;
    }
    if (!ok) {
      usage();
      return 2;
    }
  }
  if (port == 0 || pid <= 0) {
    usage();
    return 2;
  }

  const std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nhost: ", host, "\r\n\r\n");
  std::vector<std::unique_ptr<PipelinedClient>> owned;
  std::vector<PipelinedClient*> clients;
  for (uint32_t i = 0; i < connections; i++) {
    absl::StatusOr<std::unique_ptr<PipelinedClient>> client =
        PipelinedClient::connect(port, request);
    if (!client.ok()) {
      std::fprintf(stderr, "pipeline-flood: %s\n", std::string(client.status().message()).c_str());
      return 1;
    }
    clients.push_back(client->get());
    owned.push_back(std::move(*client));
  }

  const uint64_t before_kb = rssKb(pid);
  uint64_t peak_kb = before_kb;
  const Clock::time_point end = Clock::now() + std::chrono::seconds(seconds);
  absl::StatusOr<Proxy::Integration::FloodResult> flood = Proxy::Integration::floodUntilStalled(
      clients, /*stall=*/std::chrono::milliseconds(0), /*max_bytes=*/UINT64_MAX, [&] {
        peak_kb = std::max(peak_kb, rssKb(pid));
        return Clock::now() < end;
      });
  peak_kb = std::max(peak_kb, rssKb(pid));
  uint64_t requests = 0;
  for (PipelinedClient* client : clients) {
    requests += client->requestsSent();
  }
  std::printf("connections: %u, flood: %u s, request: %zu bytes\n", connections, seconds,
              request.size());
  if (!flood.ok()) {
    std::printf("flood ended early: %s\n", std::string(flood.status().message()).c_str());
  }
  std::printf("requests sent: %lu (%.1f MiB)\n", static_cast<unsigned long>(requests),
              static_cast<double>(requests * request.size()) / (1 << 20));
  std::printf("proxy VmRSS: before %.1f MiB, peak during flood %.1f MiB\n", before_kb / 1024.0,
              peak_kb / 1024.0);

  if (read) {
    const absl::Status status =
        Proxy::Integration::readAllResponses(clients, std::chrono::minutes(10));
    uint64_t responses = 0;
    uint64_t non_200 = 0;
    requests = 0;  // now including each connection's last request, completed while reading
    for (PipelinedClient* client : clients) {
      requests += client->requestsSent();
      responses += client->responsesReceived();
      non_200 += client->non200Responses();
    }
    std::printf("responses read: %lu of %lu (non-200: %lu)%s%s\n",
                static_cast<unsigned long>(responses), static_cast<unsigned long>(requests),
                static_cast<unsigned long>(non_200), status.ok() ? "" : ", ",
                status.ok() ? "" : std::string(status.message()).c_str());
    peak_kb = std::max(peak_kb, rssKb(pid));
  }

  owned.clear();  // closes every connection
  const Clock::time_point settle_end = Clock::now() + std::chrono::seconds(settle_seconds);
  uint64_t after_kb = rssKb(pid);
  while (Clock::now() < settle_end) {
    ::poll(nullptr, 0, 100);
    after_kb = rssKb(pid);
  }
  std::printf("proxy VmRSS %u s after the connections closed: %.1f MiB\n", settle_seconds,
              after_kb / 1024.0);
  absl::StatusOr<uint64_t> hwm = Proxy::Integration::procStatusKb(pid, "VmHWM");
  std::printf("proxy VmHWM: %.1f MiB\n", hwm.ok() ? *hwm / 1024.0 : 0.0);
  return 0;
}
