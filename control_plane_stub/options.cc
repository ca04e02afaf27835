#include "control_plane_stub/options.h"

#include <getopt.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace Proxy::ControlPlane {
namespace {

enum Flag {
  kXdsAddress = 256,
  kAdminAddress,
  kSnapshot,
  kNodeId,
  kPortFile,
  kValidation,
  kWatchInterval,
  kLogLevel,
  kMaxSnapshotBytes,
  kTlsCert,
  kTlsKey,
  kTlsClientCa,
  kHelp,
};

const option kLongOptions[] = {
    {"xds-address", required_argument, nullptr, kXdsAddress},
    {"admin-address", required_argument, nullptr, kAdminAddress},
    {"snapshot", required_argument, nullptr, kSnapshot},
    {"node-id", required_argument, nullptr, kNodeId},
    {"port-file", required_argument, nullptr, kPortFile},
    {"validation", required_argument, nullptr, kValidation},
    {"watch-interval-ms", required_argument, nullptr, kWatchInterval},
    {"log-level", required_argument, nullptr, kLogLevel},
    {"max-snapshot-bytes", required_argument, nullptr, kMaxSnapshotBytes},
    {"tls-cert", required_argument, nullptr, kTlsCert},
    {"tls-key", required_argument, nullptr, kTlsKey},
    {"tls-client-ca", required_argument, nullptr, kTlsClientCa},
    {"help", no_argument, nullptr, kHelp},
    {nullptr, 0, nullptr, 0},
};

}  // namespace

absl::StatusOr<std::pair<std::string, uint32_t>> splitHostPort(const std::string& address) {
  std::string host;
  std::string port_text;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid address '", address, "' (expected [IPv6]:PORT)"));
    }
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid address '", address, "' (expected HOST:PORT)"));
    }
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("invalid port in address '", address, "'"));
  }
  return std::make_pair(host, port);
}

absl::StatusOr<Options> parseOptions(int argc, char** argv) {
  Options options;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", kLongOptions, nullptr)) != -1) {
    switch (c) {
      case kXdsAddress:
        options.xds_address = optarg;
        break;
      case kAdminAddress:
        options.admin_address = optarg;
        break;
      case kSnapshot:
        options.snapshot_path = optarg;
        break;
      case kNodeId:
        options.node_id = optarg;
        break;
      case kPortFile:
        options.port_file = optarg;
        break;
      case kValidation:
        if (std::string(optarg) == "proxy") {
          options.validation = ValidationMode::Proxy;
        } else if (std::string(optarg) == "basic") {
          options.validation = ValidationMode::Basic;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("--validation: expected 'proxy' or 'basic', got '", optarg, "'"));
        }
        break;
      case kWatchInterval: {
        int64_t ms = 0;
        if (!absl::SimpleAtoi(optarg, &ms) || ms < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("--watch-interval-ms: invalid value '", optarg, "'"));
        }
        options.watch_interval = std::chrono::milliseconds(ms);
        break;
      }
      case kLogLevel:
        options.log_level = optarg;
        break;
      case kMaxSnapshotBytes:
        if (!absl::SimpleAtoi(optarg, &options.max_snapshot_bytes) ||
            options.max_snapshot_bytes == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("--max-snapshot-bytes: invalid value '", optarg, "'"));
        }
        break;
      case kTlsCert:
        options.tls_cert_path = optarg;
        break;
      case kTlsKey:
        options.tls_key_path = optarg;
        break;
      case kTlsClientCa:
        options.tls_client_ca_path = optarg;
        break;
      case 'h':
      case kHelp:
        options.help = true;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown or incomplete option '", argv[optind - 1], "' (see --help)"));
    }
  }
  if (optind < argc) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", argv[optind], "' (see --help)"));
  }
  if (options.tls_cert_path.empty() != options.tls_key_path.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!options.tls_client_ca_path.empty() && options.tls_cert_path.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  for (const std::string* address : {&options.xds_address, &options.admin_address}) {
    absl::StatusOr<std::pair<std::string, uint32_t>> split = splitHostPort(*address);
    if (!split.ok()) {
      return split.status();
    }
  }
  return options;
}

std::string usage(const char* argv0) {
  return absl::StrCat(
      "usage: ", argv0, " [options]\n",
      "A reference xDS v3 management server: serves snapshots (Listener, RouteConfiguration,\n"
      "Cluster, ClusterLoadAssignment) over ADS and the per-type services, SotW and Delta.\n\n"
      "  --xds-address HOST:PORT     gRPC xDS address (default 127.0.0.1:18000; port 0 picks)\n"
      "  --admin-address HOST:PORT   admin HTTP API (default 127.0.0.1:18001; port 0 picks)\n"
      "  --snapshot FILE             snapshot YAML/JSON served at start; reloaded when it changes\n"
      "  --node-id ID                node the --snapshot file is for when it names none\n"
      "                              (default: the default snapshot, for every node)\n"
      "  --port-file FILE            once serving, write \"xds=HOST:PORT admin=HOST:PORT\"\n"
      "  --validation proxy|basic    proxy (default): refuse resources this proxy would reject;\n"
      "                              basic: parse, names and references only\n"
      "  --watch-interval-ms N       how often to check --snapshot for changes (default 1000;\n"
      "                              0: never reload)\n"
      "  --log-level LEVEL           trace|debug|info|warn|error|off (default info)\n"
      "  --max-snapshot-bytes N      largest snapshot accepted, as a PUT body (413 beyond) or\n"
      "                              as the --snapshot file (default 67108864, 64 MiB)\n"
      "  --tls-cert FILE --tls-key FILE\n"
      "                              serve xDS over TLS with this PEM certificate chain and key\n"
      "  --tls-client-ca FILE        and require client certificates signed by this PEM CA\n"
      "                              (mTLS); the admin API stays plaintext on its own port\n"
      "  --help                      this text\n\n"
      "Admin API: PUT|GET /v1/snapshot[?node=ID], DELETE /v1/snapshot?node=ID, GET /v1/status,\n"
      "GET /healthz, GET /stats. See control_plane_stub/README.md.\n\n"
      "Signals: SIGTERM/SIGINT stop; SIGHUP reloads the --snapshot file now; SIGUSR1 and\n"
      "SIGUSR2 are ignored.\n");
}

}  // namespace Proxy::ControlPlane
