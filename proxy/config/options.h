#pragma once

// The proxy's command line, spelled like Envoy's so that scripts and container specs written for
// Envoy work unchanged (`-c envoy.yaml --concurrency 2 -l debug --service-node n1`). Flags that
// only make sense for Envoy's hot restart are accepted and ignored.

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace Proxy::Config {

enum class Mode {
  Serve,     // load the config and run
  Validate,  // load and validate the config, then exit (0 when valid)
};

enum class LogLevel { Trace, Debug, Info, Warn, Error, Critical, Off };

struct Options {
  std::string config_path;               // -c / --config-path
  std::string config_yaml;               // --config-yaml, merged over the file's contents
  Mode mode = Mode::Serve;               // --mode serve|validate
  uint32_t concurrency = 1;              // --concurrency; defaults to the hardware threads
  std::chrono::seconds drain_time{600};  // --drain-time-s (Envoy's default)
  std::chrono::seconds parent_shutdown_time{900};  // --parent-shutdown-time-s (ignored)
  LogLevel log_level = LogLevel::Info;             // -l / --log-level
  std::string service_node;                        // --service-node -> node.id
  std::string service_cluster;                     // --service-cluster -> node.cluster
  std::string service_zone;                        // --service-zone -> node.locality.zone
  std::string admin_address_path;                  // --admin-address-path: write "ip:port" there
  uint32_t base_id = 0;                            // --base-id (ignored: no hot restart)
  bool disable_hot_restart = false;                // --disable-hot-restart (ignored)
  bool help = false;                               // --help: print usage() and exit 0
  bool version = false;                            // --version: print the version and exit 0
};

// Parses argv (argv[0] is the program name). Errors are one line naming the flag:
//   unknown option '--foo'
//   --concurrency: expected a positive integer, got 'x'
// Not thread-safe (getopt_long keeps global state); call it from main().
absl::StatusOr<Options> parseOptions(int argc, const char* const* argv);

// The --help text.
std::string usage(std::string_view program);

// "trace", "debug", ... as Envoy spells them.
std::string_view logLevelName(LogLevel level);

}  // namespace Proxy::Config
