#include "proxy/config/options.h"

#include <getopt.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace Proxy::Config {
namespace {

// getopt_long's return values for long-only options.
enum LongOnly : int {
  kConfigYaml = 256,
  kMode,
  kConcurrency,
  kDrainTime,
  kParentShutdownTime,
  kServiceNode,
  kServiceCluster,
  kServiceZone,
  kAdminAddressPath,
  kBaseId,
  kDisableHotRestart,
  kHelp,
  kVersion,
};

const struct option kLongOptions[] = {
    {"config-path", required_argument, nullptr, 'c'},
    {"config-yaml", required_argument, nullptr, kConfigYaml},
    {"mode", required_argument, nullptr, kMode},
    {"concurrency", required_argument, nullptr, kConcurrency},
    {"drain-time-s", required_argument, nullptr, kDrainTime},
    {"parent-shutdown-time-s", required_argument, nullptr, kParentShutdownTime},
    {"log-level", required_argument, nullptr, 'l'},
    {"service-node", required_argument, nullptr, kServiceNode},
    {"service-cluster", required_argument, nullptr, kServiceCluster},
    {"service-zone", required_argument, nullptr, kServiceZone},
    {"admin-address-path", required_argument, nullptr, kAdminAddressPath},
    {"base-id", required_argument, nullptr, kBaseId},
    {"disable-hot-restart", no_argument, nullptr, kDisableHotRestart},
    {"help", no_argument, nullptr, kHelp},
    {"version", no_argument, nullptr, kVersion},
    {nullptr, 0, nullptr, 0},
};

// "+": stop at the first non-option instead of permuting argv (so argv is never modified).
// ":": report a missing argument as ':' rather than '?', and print nothing.
constexpr char kShortOptions[] = "+:c:l:h";

std::string flagName(int val) {
  for (const struct option* o = kLongOptions; o->name != nullptr; o++) {
    if (o->val == val) {
      return absl::StrCat("--", o->name);
    }
  }
  return absl::StrCat("-", std::string(1, static_cast<char>(val)));
}

absl::StatusOr<uint32_t> parseUint(int val, const char* text, bool positive) {
  uint32_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || (positive && value == 0) || text[0] == '-' ||
      text[0] == '+') {
    return absl::InvalidArgumentError(absl::StrCat(flagName(val), ": expected a ",
                                                   positive ? "positive" : "non-negative",
                                                   " integer, got '", text, "'"));
  }
  return value;
}

absl::StatusOr<LogLevel> parseLogLevel(absl::string_view text) {
  if (text == "trace") {
    return LogLevel::Trace;
  }
  if (text == "debug") {
    return LogLevel::Debug;
  }
  if (text == "info") {
    return LogLevel::Info;
  }
  if (text == "warning" || text == "warn") {
    return LogLevel::Warn;
  }
  if (text == "error") {
    return LogLevel::Error;
  }
  if (text == "critical") {
    return LogLevel::Critical;
  }
  if (text == "off") {
    return LogLevel::Off;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--log-level: invalid log level '", text,
                   "' (expected trace, debug, info, warning, error, critical or off)"));
}

}  // namespace

std::string_view logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::Trace:
      return "trace";
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warning";
    case LogLevel::Error:
      return "error";
    case LogLevel::Critical:
      return "critical";
    case LogLevel::Off:
      return "off";
  }
  return "info";
}

absl::StatusOr<Options> parseOptions(int argc, const char* const* argv) {
  Options options;
  const unsigned hardware = std::thread::hardware_concurrency();
  options.concurrency = hardware == 0 ? 1 : hardware;

  // getopt_long's state is global: optind = 0 makes glibc start over (tests parse many times).
  optind = 0;
  opterr = 0;
  // getopt_long takes `char* const*` for historical reasons; with "+" it never writes to argv.
  char* const* args = const_cast<char* const*>(argv);
  while (true) {
    const int c = getopt_long(argc, args, kShortOptions, kLongOptions, nullptr);
    if (c == -1) {
      break;
    }
    switch (c) {
      case 'c':
        options.config_path = optarg;
        break;
      case kConfigYaml:
        options.config_yaml = optarg;
        break;
      case kMode:
        if (absl::string_view(optarg) == "serve") {
          options.mode = Mode::Serve;
        } else if (absl::string_view(optarg) == "validate") {
          options.mode = Mode::Validate;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("--mode: expected 'serve' or 'validate', got '", optarg, "'"));
        }
        break;
      case kConcurrency: {
        absl::StatusOr<uint32_t> v = parseUint(c, optarg, /*positive=*/true);
        if (!v.ok()) {
          return v.status();
        }
        options.concurrency = *v;
        break;
      }
      case kDrainTime: {
        absl::StatusOr<uint32_t> v = parseUint(c, optarg, /*positive=*/false);
        if (!v.ok()) {
          return v.status();
        }
        options.drain_time = std::chrono::seconds(*v);
        break;
      }
      case kParentShutdownTime: {
        absl::StatusOr<uint32_t> v = parseUint(c, optarg, /*positive=*/false);
        if (!v.ok()) {
          return v.status();
        }
        options.parent_shutdown_time = std::chrono::seconds(*v);
        break;
      }
      case 'l': {
        absl::StatusOr<LogLevel> level = parseLogLevel(optarg);
        if (!level.ok()) {
          return level.status();
        }
        options.log_level = *level;
        break;
      }
      case kServiceNode:
        options.service_node = optarg;
        break;
      case kServiceCluster:
        options.service_cluster = optarg;
        break;
      case kServiceZone:
        options.service_zone = optarg;
        break;
      case kAdminAddressPath:
        options.admin_address_path = optarg;
        break;
      case kBaseId: {
        absl::StatusOr<uint32_t> v = parseUint(c, optarg, /*positive=*/false);
        if (!v.ok()) {
          return v.status();
        }
        options.base_id = *v;
        break;
      }
      case kDisableHotRestart:
        options.disable_hot_restart = true;
        break;
      case 'h':
      case kHelp:
        options.help = true;
        break;
      case kVersion:
        options.version = true;
        break;
      case ':':
        return absl::InvalidArgumentError(
            absl::StrCat("option '", flagName(optopt), "' requires a value"));
      default: {
        // '?': an unknown option. For a long one optopt is 0 and the word is argv[optind - 1].
        if (optopt != 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("unknown option '-", std::string(1, static_cast<char>(optopt)), "'"));
        }
        absl::string_view word = argv[optind - 1];
        word = word.substr(0, word.find('='));
        return absl::InvalidArgumentError(absl::StrCat("unknown option '", word, "'"));
      }
    }
  }
  if (optind < argc) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", argv[optind], "'"));
  }
  return options;
}

std::string usage(std::string_view program) {
  return absl::StrCat(
      "Usage: ", std::string(program), " [options]\n",
      "  -c, --config-path PATH        bootstrap config file (.yaml, .yml or .json)\n"
      "      --config-yaml YAML        bootstrap YAML, merged over the file's contents\n"
      "      --mode serve|validate     run (default), or only validate the config\n"
      "      --concurrency N           worker threads (default: hardware threads)\n"
      "      --drain-time-s N          listener drain time in seconds (default 600)\n"
      "      --parent-shutdown-time-s N  accepted for Envoy compatibility; ignored\n"
      "  -l, --log-level LEVEL         trace|debug|info|warning|error|critical|off\n"
      "      --service-node NAME       sets node.id\n"
      "      --service-cluster NAME    sets node.cluster\n"
      "      --service-zone NAME       sets node.locality.zone\n"
      "      --admin-address-path PATH write the admin listener's address to PATH\n"
      "      --base-id N               accepted for Envoy compatibility; ignored\n"
      "      --disable-hot-restart     accepted for Envoy compatibility; ignored\n"
      "  -h, --help                    show this text\n"
      "      --version                 show the version\n");
}

}  // namespace Proxy::Config
