// demo-upstream: a tiny HTTP/1.1 server for the demo (deploy/run-demo.sh) and the benchmark
// (test/bench/run_wrk.sh). It answers every request with "hello from <name>\npath: <path>\n"
// and echoes the request headers back as x-echo-* headers. It is the integration tests'
// FakeUpstream, so it runs on the proxy's own event loop, network and HTTP/1 codec.
//
//   demo-upstream --port 8081 --name upstream-1
//
// --status N answers every request with status N and --delay-ms N answers N ms after the
// request ended (a failing or hanging endpoint, for test/bench/run_failing_endpoint.sh).
// --response-bytes N answers with a body of N bytes instead of the greeting (run_wrk.sh's
// RESPONSE_BYTES).
// --port 0 picks a free port; either way it prints "listening on 127.0.0.1:<port>" once it
// accepts connections. SIGINT/SIGTERM stop it (exit 0).

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "test/integration/fake_upstream.h"

namespace {

void usage(const char* argv0) {
  std::fprintf(
      stderr,
      "usage: %s [--port N] [--name NAME] [--status N] [--delay-ms N] [--response-bytes N]\n",
      argv0);
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t port = 8080;
  std::string name = "upstream";
  uint32_t status = 200;
  uint32_t delay_ms = 0;
  uint64_t response_bytes = 0;  // 0: the greeting
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if ((arg == "--port" || arg == "-p") && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &port) || port > 65535) {
        std::fprintf(stderr, "demo-upstream: --port: not a port number: '%s'\n", argv[i]);
        return 2;
      }
    } else if (arg == "--name" && i + 1 < argc) {
      name = argv[++i];
    } else if (arg == "--status" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &status) || status < 100 || status > 999) {
        std::fprintf(stderr, "demo-upstream: --status: not a status code: '%s'\n", argv[i]);
        return 2;
      }
    } else if (arg == "--delay-ms" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &delay_ms)) {
        std::fprintf(stderr, "demo-upstream: --delay-ms: not a number: '%s'\n", argv[i]);
        return 2;
      }
    } else if (arg == "--response-bytes" && i + 1 < argc) {
      if (!absl::SimpleAtoi(argv[++i], &response_bytes) || response_bytes == 0) {
        std::fprintf(stderr, "demo-upstream: --response-bytes: not a positive number: '%s'\n",
                     argv[i]);
        return 2;
      }
    } else if (arg == "--help" || arg == "-h") {
      usage(argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "demo-upstream: unknown argument '%s'\n", arg.c_str());
      usage(argv[0]);
      return 2;
    }
  }

  // Block the stop signals before the server thread starts (it inherits the mask), then wait
  // for them here: no signal handler runs concurrently with anything.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Proxy::Integration::FakeUpstreamOptions options;
  options.name = name;
  options.status = status;
  options.delay = std::chrono::milliseconds(delay_ms);
  options.response_bytes = response_bytes;
  auto upstream = Proxy::Integration::FakeUpstream::create(options, port);
  if (!upstream.ok()) {
    std::fprintf(stderr, "demo-upstream: %s\n", std::string(upstream.status().message()).c_str());
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", (*upstream)->port());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::printf("%s: stopping (%s), served %llu requests on %llu connections\n", name.c_str(),
              strsignal(signal_number),
              static_cast<unsigned long long>((*upstream)->responsesStarted()),
              static_cast<unsigned long long>((*upstream)->connectionsAccepted()));
  upstream->reset();
  return 0;
}
