// `control-plane-stub`: a reference xDS v3 management server (see README.md).

#include <csignal>
#include <cstdio>
#include <iostream>

#include "control_plane_stub/control_plane.h"
#include "control_plane_stub/options.h"
#include "proxy/event/dispatcher_impl.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  absl::StatusOr<Proxy::ControlPlane::Options> options =
      Proxy::ControlPlane::parseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(options.status().message()).c_str());
    return 1;
  }
  if (options->help) {
    std::cout << Proxy::ControlPlane::usage(argv[0]);
    return 0;
  }
  const spdlog::level::level_enum level = spdlog::level::from_str(options->log_level);
  if (level == spdlog::level::off && options->log_level != "off") {
    std::fprintf(stderr, "error: --log-level: unknown level '%s'\n", options->log_level.c_str());
    return 1;
  }

  // Logs go to stderr, in the proxy's layout: [time][thread id][level] message.
  auto logger = spdlog::stderr_color_mt("control-plane");
  logger->set_pattern("[%Y-%m-%d %T.%e][%t][%l] %v");
  logger->set_level(level);
  // gRPC threads log ACKs and stream events; flush each line so tests reading the log (and
  // users tailing it) see it at once.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  // A client that goes away mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  Proxy::RealTimeSource time_source;
  Proxy::Event::DispatcherImpl dispatcher("main", time_source);
  Proxy::ControlPlane::ControlPlane control_plane(*std::move(options), dispatcher);

  // Signals are handled from before start() (which writes --port-file: a script that waits
  // for it may signal at once), as dispatcher events: the handlers run on the main thread
  // with the loop, never inside the signal handler.
  auto stop = [&dispatcher](const char* name) {
    spdlog::info("{}: shutting down", name);
    dispatcher.exit();
  };
  Proxy::Event::SignalEventPtr sigterm =
      dispatcher.listenForSignal(SIGTERM, [&stop] { stop("SIGTERM"); });
  Proxy::Event::SignalEventPtr sigint =
      dispatcher.listenForSignal(SIGINT, [&stop] { stop("SIGINT"); });
  // SIGHUP, as for most daemons with a configuration file: read the snapshot file now.
  Proxy::Event::SignalEventPtr sighup = dispatcher.listenForSignal(SIGHUP, [&control_plane] {
    if (control_plane.options().snapshot_path.empty()) {
      spdlog::info("caught SIGHUP: no --snapshot file, ignored");
      return;
    }
    spdlog::info("caught SIGHUP: reloading the snapshot file '{}'",
                 control_plane.options().snapshot_path);
    (void)control_plane.reloadSnapshotFile("file (SIGHUP)");
  });
  // Logs go to stderr: there is no log file for SIGUSR1 to reopen (Envoy's meaning).
  Proxy::Event::SignalEventPtr sigusr1 = dispatcher.listenForSignal(SIGUSR1, [] {
    spdlog::info("caught SIGUSR1: ignored (logs go to stderr, there is nothing to reopen)");
  });
  Proxy::Event::SignalEventPtr sigusr2 =
      dispatcher.listenForSignal(SIGUSR2, [] { spdlog::info("caught SIGUSR2: ignored"); });

  const absl::Status status = control_plane.start();
  if (!status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }

  dispatcher.run(Proxy::Event::Dispatcher::RunType::RunUntilExit);

  control_plane.shutdown();
  spdlog::info("control-plane-stub stopped");
  return 0;
}
