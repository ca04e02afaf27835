#include "control_plane_stub/admin_api.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "control_plane_stub/json_writer.h"
#include "spdlog/spdlog.h"

namespace Proxy::ControlPlane {
namespace {

constexpr std::string_view kJson = "application/json";

std::string timeString(SystemTime t) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromChrono(t), absl::UTCTimeZone());
}

std::string_view shortType(std::string_view type_url) {
  std::optional<ResourceKind> kind = kindFromTypeUrl(type_url);
  return kind.has_value() ? shortName(*kind) : type_url;
}

void writeNack(JsonWriter& json, const NackRecord& nack) {
  json.beginObject()
      .field("type", shortType(nack.type_url))
      .field("type_url", std::string_view(nack.type_url))
      .field("version", std::string_view(nack.version))
      .field("nonce", std::string_view(nack.nonce))
      .field("message", std::string_view(nack.message))
      .field("time", std::string_view(timeString(nack.time)))
      .endObject();
}

void writeSnapshotSummary(JsonWriter& json, const Snapshot& snapshot) {
  json.beginObject()
      .field("node", std::string_view(snapshot.node()))
      .field("version", std::string_view(snapshot.version()));
  json.key("type_versions").beginObject();
  for (ResourceKind kind : kAllResourceKinds) {
    json.field(shortName(kind), std::string_view(snapshot.typeVersion(kind)));
  }
  json.endObject();
  json.key("resource_counts").beginObject();
  for (ResourceKind kind : kAllResourceKinds) {
    json.field(shortName(kind), static_cast<uint64_t>(snapshot.resources(kind).size()));
  }
  json.endObject();
  json.endObject();
}

void writeStream(JsonWriter& json, const StreamStatus& stream) {
  json.beginObject()
      .field("id", stream.id)
      .field("method", std::string_view(stream.method).substr(stream.method.rfind('/') + 1))
      .field("peer", std::string_view(stream.peer))
      .field("delta", stream.delta)
      .field("opened", std::string_view(timeString(stream.opened)))
      .field("requests", stream.requests)
      .field("responses", stream.responses);
  json.key("types").beginArray();
  for (const TypeStatus& type : stream.types) {
    json.beginObject()
        .field("type", shortType(type.type_url))
        .field("type_url", std::string_view(type.type_url))
        .field("wildcard", type.wildcard);
    json.key("names").beginArray();
    for (const std::string& name : type.names) {
      json.value(std::string_view(name));
    }
    json.endArray();
    json.field("sent_version", std::string_view(type.sent_version))
        .field("pending_nonce", std::string_view(type.pending_nonce))
        .field("acked_version", std::string_view(type.acked_version));
    if (type.acked_at.has_value()) {
      json.field("acked_at", std::string_view(timeString(*type.acked_at)));
    }
    if (stream.delta) {
      json.field("client_resources", static_cast<uint64_t>(type.client_resources));
    }
    if (type.last_nack.has_value()) {
      json.key("last_nack");
      writeNack(json, *type.last_nack);
    }
    json.endObject();
  }
  json.endArray();
  json.endObject();
}

Admin::Response textError(uint32_t code, absl::string_view message) {
  Admin::Response response;
  response.code = code;
  response.body = absl::StrCat(std::string(message), "\n");
  return response;
}

uint32_t httpCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kNotFound:
      return 404;
    default:
      return 400;
  }
}

class SnapshotHandler {
 public:
  SnapshotHandler(SnapshotCache& cache, ValidationMode validation)
      : cache_(cache), validation_(validation) {}

  void handle(const Admin::Request& request, Admin::Response& response) {
    auto node_param = request.query.find("node");
    const std::optional<std::string> node =
        node_param == request.query.end() ? std::nullopt : std::make_optional(node_param->second);
    if (request.method == "GET") {
      get(node.value_or(std::string(kDefaultNode)), response);
    } else if (request.method == "PUT" || request.method == "POST") {
      auto allow_empty = request.query.find("allow_empty");
      if (allow_empty != request.query.end() && allow_empty->second != "true" &&
          allow_empty->second != "false") {
        response = textError(
            400, absl::StrCat("?allow_empty=", allow_empty->second, ": expected true or false"));
        return;
      }
      put(node, request.body,
          /*allow_empty=*/allow_empty != request.query.end() && allow_empty->second == "true",
          response);
    } else if (request.method == "DELETE") {
      remove(node.value_or(std::string(kDefaultNode)), response);
    } else {
      response = textError(405, "use GET, PUT or DELETE");
    }
  }

 private:
  void get(const std::string& node, Admin::Response& response) {
    SnapshotConstSharedPtr snapshot = cache_.snapshotFor(node);
    if (snapshot == nullptr) {
      response = textError(404, absl::StrCat("no snapshot serves node '", node, "'"));
      return;
    }
    response.content_type = std::string(kJson);
    response.body = snapshotToJson(snapshot->file());
  }

  void put(const std::optional<std::string>& node, std::string_view body, bool allow_empty,
           Admin::Response& response) {
    absl::StatusOr<SnapshotFile> file = parseSnapshot(body, SnapshotFormat::Yaml, validation_);
    if (file.ok() && !allow_empty && hasNoResources(*file)) {
      // An empty body (a script whose input went missing, a truncated file) must not empty
      // every connected client.
      file = absl::InvalidArgumentError(
          "the snapshot has no resources: serving it would remove every listener, route, "
          "cluster and endpoint from the clients it serves (PUT with ?allow_empty=true to do "
          "that on purpose)");
    }
    if (!file.ok()) {
      spdlog::warn("admin: snapshot rejected (400): {}", std::string(file.status().message()));
      response = textError(400, file.status().message());
      return;
    }
    if (node.has_value()) {
      if (!file->node().empty() && file->node() != *node) {
        response = textError(
            400, absl::StrCat("node '", file->node(), "' in the body differs from ?node=", *node));
        return;
      }
      file->set_node(*node);
    }
    absl::StatusOr<SetSnapshotResult> result = cache_.setSnapshot(*std::move(file));
    if (!result.ok()) {
      spdlog::warn("admin: snapshot rejected ({}): {}", httpCode(result.status()),
                   std::string(result.status().message()));
      response = textError(httpCode(result.status()), result.status().message());
      return;
    }
    const Snapshot& snapshot = *result->snapshot;
    spdlog::info(
        "snapshot {}: node='{}' version='{}' (cds={} eds={} lds={} rds={}) from admin API",
        result->changed ? "set" : "unchanged", snapshot.node(), snapshot.version(),
        snapshot.typeVersion(ResourceKind::Cluster), snapshot.typeVersion(ResourceKind::Endpoint),
        snapshot.typeVersion(ResourceKind::Listener), snapshot.typeVersion(ResourceKind::Route));
    JsonWriter json;
    json.beginObject().field("changed", result->changed).key("snapshot");
    writeSnapshotSummary(json, snapshot);
    json.endObject();
    response.content_type = std::string(kJson);
    response.body = json.str();
  }

  void remove(const std::string& node, Admin::Response& response) {
    absl::Status status = cache_.removeSnapshot(node);
    if (!status.ok()) {
      response = textError(httpCode(status), status.message());
      return;
    }
    spdlog::info("snapshot removed: node='{}' (its streams fall back to the default)", node);
    response.body = absl::StrCat("removed the snapshot of node '", node, "'\n");
  }

  SnapshotCache& cache_;
  const ValidationMode validation_;
};

}  // namespace

std::string renderStatus(const SnapshotCache& cache, const Stats::Store& stats) {
  JsonWriter json;
  json.beginObject();

  json.key("snapshots").beginArray();
  for (const SnapshotConstSharedPtr& snapshot : cache.snapshots()) {
    writeSnapshotSummary(json, *snapshot);
  }
  json.endArray();

  // Nodes: those with open streams and those that NACKed (the record outlives the stream).
  std::map<std::string, std::vector<StreamStatus>> streams_by_node;
  std::map<std::string, std::vector<NackRecord>> nacks_by_node;
  for (const auto& stream : cache.streams()) {
    StreamStatus status = stream->status();
    streams_by_node[status.node].push_back(std::move(status));
  }
  for (NackRecord& nack : cache.nacks()) {
    nacks_by_node[nack.node].push_back(std::move(nack));
  }
  std::set<std::string> nodes;
  for (const auto& [node, unused] : streams_by_node)
    nodes.insert(node);
  for (const auto& [node, unused] : nacks_by_node)
    nodes.insert(node);
  json.key("nodes").beginArray();
  for (const std::string& node : nodes) {
    SnapshotConstSharedPtr serving = cache.snapshotFor(node);
    json.beginObject()
        .field("node", std::string_view(node))
        .field("snapshot_node", std::string_view(serving == nullptr ? "" : serving->node()))
        .field("snapshot_version", std::string_view(serving == nullptr ? "" : serving->version()));
    json.key("streams").beginArray();
    for (const StreamStatus& stream : streams_by_node[node]) {
      writeStream(json, stream);
    }
    json.endArray();
    json.key("last_nacks").beginArray();
    for (const NackRecord& nack : nacks_by_node[node]) {
      writeNack(json, nack);
    }
    json.endArray();
    json.endObject();
  }
  json.endArray();

  json.key("stats").beginObject();
  stats.forEachCounter(
      [&json](const Stats::Counter& c) { json.field(std::string_view(c.name()), c.value()); });
  stats.forEachGauge([&json](const Stats::Gauge& g) {
    json.field(std::string_view(g.name()), static_cast<uint64_t>(std::max<int64_t>(0, g.value())));
  });
  json.endObject();

  json.endObject();
  return json.str();
}

void registerAdminApi(Admin::Admin& admin, SnapshotCache& cache, Stats::Store& stats,
                      ValidationMode validation) {
  auto snapshot_handler = std::make_shared<SnapshotHandler>(cache, validation);
  // mutates_state=false: the handler checks methods itself (the admin server's own rule
  // allows only POST for mutating endpoints; this API is PUT).
  admin.addHandler("/v1/snapshot",
                   "GET: the snapshot serving ?node= as JSON; PUT (YAML or JSON body): replace "
                   "it; DELETE ?node=: remove a node's own snapshot",
                   false,
                   [snapshot_handler](const Admin::Request& request, Admin::Response& response) {
                     snapshot_handler->handle(request, response);
                   });
  admin.addHandler("/v1/status",
                   "streams per node: per type acked version, pending nonce, last NACK", false,
                   [&cache, &stats](const Admin::Request& request, Admin::Response& response) {
                     if (request.method != "GET") {
                       response = textError(405, "use GET");
                       return;
                     }
                     response.content_type = std::string(kJson);
                     response.body = renderStatus(cache, stats);
                   });
  admin.addHandler(
      "/healthz", "liveness", false,
      [](const Admin::Request&, Admin::Response& response) { response.body = "ok\n"; });
  admin.addHandler("/stats", "counters and gauges", false,
                   [&stats](const Admin::Request&, Admin::Response& response) {
                     response.body = stats.renderText();
                   });
}

}  // namespace Proxy::ControlPlane
