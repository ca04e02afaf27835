// The `proxy` executable: Envoy's command line, an Envoy bootstrap, one process.

#include <cstdio>
#include <iostream>

#include "proxy/config/bootstrap.h"
#include "proxy/config/options.h"
#include "proxy/server/server.h"
#include "proxy/server/version.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace {

spdlog::level::level_enum toSpdlog(Proxy::Config::LogLevel level) {
  using Proxy::Config::LogLevel;
  switch (level) {
    case LogLevel::Trace:
      return spdlog::level::trace;
    case LogLevel::Debug:
      return spdlog::level::debug;
    case LogLevel::Info:
      return spdlog::level::info;
    case LogLevel::Warn:
      return spdlog::level::warn;
    case LogLevel::Error:
      return spdlog::level::err;
    case LogLevel::Critical:
      return spdlog::level::critical;
    case LogLevel::Off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(PROXY_LLHTTP_SSE42)
  // llhttp is built with SSE4.2 instructions: say so rather than die of SIGILL on a request.
  if (!__builtin_cpu_supports("sse4.2")) {
    std::fprintf(stderr,
                 "error: this proxy build needs a CPU with SSE4.2 (x86-64-v2); rebuild with "
                 "-DPROXY_LLHTTP_SSE42=OFF\n");
    return 1;
  }
#endif
  auto options = Proxy::Config::parseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(options.status().message()).c_str());
    return 1;
  }
  if (options->help) {
    std::cout << Proxy::Config::usage(argv[0]);
    return 0;
  }
  if (options->version) {
    std::cout << Proxy::Server::kVersionString << "\n";
    return 0;
  }

  // Logs go to stderr in Envoy's layout: [time][thread id][level] message.
  auto logger = spdlog::stderr_color_mt("proxy");
  logger->set_pattern("[%Y-%m-%d %T.%e][%t][%l] %v");
  logger->set_level(toSpdlog(options->log_level));
  spdlog::set_default_logger(logger);

  auto bootstrap = Proxy::Config::loadBootstrap(*options);
  if (!bootstrap.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(bootstrap.status().message()).c_str());
    return 1;
  }

  Proxy::Server::Server server(*options, *std::move(bootstrap));
  const absl::Status status = server.initialize();
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  if (options->mode == Proxy::Config::Mode::Validate) {
    std::printf("configuration '%s' OK\n", options->config_path.c_str());
    return 0;
  }
  return server.run();
}
