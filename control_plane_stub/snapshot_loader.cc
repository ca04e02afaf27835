#include "control_plane_stub/snapshot_loader.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control_plane_stub/resource_kind.h"
#include "control_plane_stub/snapshot.h"
#include "google/protobuf/util/json_util.h"
#include "proxy/config/field_support.h"
#include "proxy/config/filter_config.h"
#include "proxy/config/message_util.h"
#include "proxy/config/validation.h"
#include "yaml-cpp/yaml.h"

namespace Proxy::ControlPlane {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;

std::string resourcePath(ResourceKind kind, int i) {
  return absl::StrCat("resources.", std::string(snapshotField(kind)), "[", i, "]");
}

std::string_view nameField(ResourceKind kind) {
  return kind == ResourceKind::Endpoint ? "cluster_name" : "name";
}

// Splits "a.b[2].c" into {"a", "b", "[2]", "c"}.
std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  std::string current;
  for (char c : path) {
    if (c == '.') {
      if (!current.empty())
        parts.push_back(std::move(current));
      current.clear();
    } else if (c == '[') {
      if (!current.empty())
        parts.push_back(std::move(current));
      current = "[";
    } else if (c == ']') {
      current.push_back(c);
      parts.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty())
    parts.push_back(std::move(current));
  return parts;
}

// Where `path` (a field path of an error message) is in the YAML text, if it can be found:
// "line 12, column 7". Errors from the loader and the validators name fields by path only;
// a user editing a file also wants the line.
std::optional<std::string> locate(std::string_view text, std::string_view path) {
  try {
    YAML::Node node = YAML::Load(std::string(text));
    for (const std::string& part : splitPath(path)) {
      if (!node.IsDefined() || node.IsNull()) {
        return std::nullopt;
      }
      if (part.front() == '[') {
        size_t i = 0;
        if (!node.IsSequence() ||
            !absl::SimpleAtoi(absl::string_view(part).substr(1, part.size() - 2), &i) ||
            i >= node.size()) {
          return std::nullopt;
        }
        node.reset(node[i]);
      } else {
        if (!node.IsMap()) {
          return std::nullopt;
        }
        YAML::Node child = node[part];
        if (!child.IsDefined()) {
          return std::nullopt;
        }
        node.reset(child);
      }
    }
    if (!node.IsDefined() || node.Mark().is_null()) {
      return std::nullopt;
    }
    return absl::StrCat("line ", node.Mark().line + 1, ", column ", node.Mark().column + 1);
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

// Appends " (line N, column M)" to an error of the form "<path>: <message>" when the path can
// be found in `text`. Errors without a path (YAML syntax errors) already carry their line.
absl::Status withLocation(const absl::Status& status, std::string_view text) {
  const std::string message(status.message());
  const size_t colon = message.find(": ");
  if (colon == std::string::npos || message.rfind("yaml ", 0) == 0 ||
      message.substr(0, colon).find(' ') != std::string::npos) {
    return status;
  }
  std::optional<std::string> where = locate(text, message.substr(0, colon));
  if (!where.has_value()) {
    return status;
  }
  return absl::Status(status.code(), absl::StrCat(message, " (", *where, ")"));
}

absl::Status validateApiListener(const Listener& listener, const std::string& path) {
  const std::string api_path = path + ".api_listener.api_listener";
  Config::HttpConnectionManager hcm;
  const google::protobuf::Any& any = listener.api_listener().api_listener();
  if (any.type_url() != Config::typeUrl<Config::HttpConnectionManager>()) {
    return absl::InvalidArgumentError(absl::StrCat(api_path, ": unsupported API listener type '",
                                                   any.type_url(),
                                                   "' (only HttpConnectionManager is supported)"));
  }
  if (!any.UnpackTo(&hcm)) {
    return absl::InvalidArgumentError(absl::StrCat(api_path, ": cannot decode"));
  }
  // gRPC's clients have no stats, so their API listeners often leave out the stat_prefix that
  // the proxy (like Envoy) requires of a real listener's HCM.
  if (hcm.stat_prefix().empty()) {
    hcm.set_stat_prefix(listener.name());
  }
  return Config::validateHttpConnectionManager(hcm, api_path);
}

absl::Status validateResource(ResourceKind kind, const google::protobuf::Message& message,
                              const std::string& path) {
  switch (kind) {
    case ResourceKind::Listener: {
      const auto& listener = static_cast<const Listener&>(message);
      if (listener.has_api_listener()) {
        return validateApiListener(listener, path);
      }
      return Config::validateListener(listener, path);
    }
    case ResourceKind::Route:
      return Config::validateRouteConfiguration(static_cast<const RouteConfiguration&>(message),
                                                path);
    case ResourceKind::Cluster:
      return Config::validateCluster(static_cast<const Cluster&>(message), path);
    case ResourceKind::Endpoint:
      return Config::validateClusterLoadAssignment(
          static_cast<const ClusterLoadAssignment&>(message), path);
    case ResourceKind::Secret:
      // Only what the proxy implements; the PEMs are the client's to check (a filename is read
      // on the client's machine), and a bad one is the client's to NACK.
      return Config::checkSupportedFields(message, path);
  }
  return absl::OkStatus();
}

absl::Status validate(const SnapshotFile& file, ValidationMode mode) {
  for (ResourceKind kind : kAllResourceKinds) {
    std::map<std::string, int> seen;
    const auto messages = resourcesOf(file, kind);
    for (int i = 0; i < static_cast<int>(messages.size()); i++) {
      const std::string path = resourcePath(kind, i);
      const std::string& name = resourceName(kind, *messages[i]);
      if (name.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".", std::string(nameField(kind)), ": required"));
      }
      auto [it, inserted] = seen.emplace(name, i);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ".", std::string(nameField(kind)), ": duplicate ", std::string(displayName(kind)),
            " name '", name, "' (also ", resourcePath(kind, it->second), ")"));
      }
      if (mode == ValidationMode::Proxy) {
        absl::Status status = validateResource(kind, *messages[i], path);
        if (!status.ok()) {
          return status;
        }
      }
    }
  }
  return absl::OkStatus();
}

// The route_config_names a listener's HTTP connection managers fetch over RDS.
std::vector<std::string> rdsNames(const Listener& listener) {
  std::vector<std::string> names;
  auto add = [&names](const Config::HttpConnectionManager& hcm) {
    if (hcm.has_rds()) {
      names.push_back(hcm.rds().route_config_name());
    }
  };
  auto scan = [&add](const envoy::config::listener::v3::FilterChain& chain) {
    for (const auto& filter : chain.filters()) {
      if (Config::networkFilterType(filter) == Config::NetworkFilterType::HttpConnectionManager) {
        absl::StatusOr<Config::HttpConnectionManager> hcm = Config::unpackHcm(filter);
        if (hcm.ok()) {
          add(*hcm);
        }
      }
    }
  };
  for (const auto& chain : listener.filter_chains()) {
    scan(chain);
  }
  if (listener.has_default_filter_chain()) {
    scan(listener.default_filter_chain());
  }
  if (listener.has_api_listener()) {
    Config::HttpConnectionManager hcm;
    if (listener.api_listener().api_listener().UnpackTo(&hcm)) {
      add(hcm);
    }
  }
  return names;
}

}  // namespace

absl::StatusOr<SnapshotFile> parseSnapshot(std::string_view text, SnapshotFormat format,
                                           ValidationMode mode) {
  // Alias bombs and cycles are refused by the loader before any node is built
  // (proxy/config/yaml_guard.h; JSON goes through yaml-cpp too).
  SnapshotFile file;
  absl::Status status = format == SnapshotFormat::Json ? Config::loadFromJson(text, file)
                                                       : Config::loadFromYaml(text, file);
  if (status.ok()) {
    status = validate(file, mode);
  }
  if (!status.ok()) {
    return withLocation(status, text);
  }
  return file;
}

absl::StatusOr<SnapshotFile> loadSnapshotFile(const std::string& path, ValidationMode mode,
                                              uint64_t max_bytes) {
  std::ifstream in(path, std::ios::in | std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  }
  // Read at most one byte past the limit: a huge (or endless, e.g. /dev/zero) file is refused
  // without holding it.
  std::string contents;
  char chunk[64 * 1024];
  while (in && contents.size() <= max_bytes) {
    in.read(chunk, sizeof(chunk));
    contents.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  }
  if (contents.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("the file is larger than the limit of ",
                                                   max_bytes, " bytes (--max-snapshot-bytes)"));
  }
  return parseSnapshot(
      contents, absl::EndsWith(path, ".json") ? SnapshotFormat::Json : SnapshotFormat::Yaml, mode);
}

bool hasNoResources(const SnapshotFile& file) {
  for (ResourceKind kind : kAllResourceKinds) {
    if (!resourcesOf(file, kind).empty()) {
      return false;
    }
  }
  return true;
}

absl::Status checkConsistency(const SnapshotFile& file) {
  std::set<std::string> routes;
  for (const auto& route : file.resources().routes()) {
    routes.insert(route.name());
  }
  std::set<std::string> assignments;
  for (const auto& cla : file.resources().endpoints()) {
    assignments.insert(cla.cluster_name());
  }

  std::vector<std::string> problems;
  const auto& listeners = file.resources().listeners();
  for (int i = 0; i < listeners.size(); i++) {
    std::set<std::string> reported;
    for (const std::string& name : rdsNames(listeners[i])) {
      if (routes.count(name) == 0 && reported.insert(name).second) {
        problems.push_back(absl::StrCat(
            "listener '", listeners[i].name(), "' (", resourcePath(ResourceKind::Listener, i),
            "): route configuration '", name, "' is not in resources.routes"));
      }
    }
  }
  const auto& clusters = file.resources().clusters();
  for (int i = 0; i < clusters.size(); i++) {
    const Cluster& cluster = clusters[i];
    if (cluster.type() != Cluster::EDS) {
      continue;
    }
    const std::string& service = cluster.eds_cluster_config().service_name().empty()
                                     ? cluster.name()
                                     : cluster.eds_cluster_config().service_name();
    if (assignments.count(service) == 0) {
      problems.push_back(absl::StrCat(
          "cluster '", cluster.name(), "' (", resourcePath(ResourceKind::Cluster, i),
          "): EDS service '", service, "' has no ClusterLoadAssignment in resources.endpoints"));
    }
  }
  if (problems.empty()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrJoin(problems, "; "));
}

std::string snapshotToJson(const SnapshotFile& file) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(file, &json, options).ok()) {
    // Only an Any whose type is not linked in can fail; the loader accepted none of those.
    return "{}\n";
  }
  return json;
}

}  // namespace Proxy::ControlPlane
