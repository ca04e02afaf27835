// grpc-test-server: the gRPC integration tests' upstream (grpc_test_server.h, a real gRPC C++
// server implementing proxy.test.TestService) as a process of its own, for the gRPC unary
// benchmark (test/bench/run_h2load.sh). It listens on 127.0.0.1 on a port it picks and prints
// "listening on 127.0.0.1:<port>" once it accepts calls; SIGINT/SIGTERM stop it (exit 0).
//
//   grpc-test-server

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstring>

#include "test/integration/grpc/grpc_test_server.h"

int main(int argc, char** argv) {
  if (argc > 1) {
    std::fprintf(stderr, "usage: %s (no arguments; it picks a free port and prints it)\n", argv[0]);
    return 2;
  }
  // Block the stop signals before gRPC starts its threads (they inherit the mask), then wait
  // for them here: no signal handler runs concurrently with the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto server = Proxy::Integration::GrpcTestServer::start();
  if (server == nullptr) {
    std::fprintf(stderr, "grpc-test-server: could not listen on 127.0.0.1\n");
    return 1;
  }
  std::printf("listening on 127.0.0.1:%u\n", server->port());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::printf("grpc-test-server: stopping (%s)\n", strsignal(signal_number));
  server.reset();
  return 0;
}
