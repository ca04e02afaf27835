#include "control_plane_stub/admin_api.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "spdlog/spdlog.h"

namespace Proxy::ControlPlane {
namespace {

using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr std::string_view kJson = "application/json";

// google.protobuf.Struct as a JSON builder: protobuf does the escaping.
Value str(std::string_view s) {
  Value v;
  v.set_string_value(std::string(s));
  return v;
}
Value num(double d) {
  Value v;
  v.set_number_value(d);
  return v;
}
Value boolean(bool b) {
  Value v;
  v.set_bool_value(b);
  return v;
}
Value object(Struct s) {
  Value v;
  *v.mutable_struct_value() = std::move(s);
  return v;
}
Value list(std::vector<Value> items) {
  Value v;
  ListValue* l = v.mutable_list_value();
  for (Value& item : items) {
    *l->add_values() = std::move(item);
  }
  return v;
}
std::string timeString(SystemTime t) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromChrono(t), absl::UTCTimeZone());
}
std::string render(const Struct& s) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(s, &json, options);
  return json;
}

std::string_view shortType(std::string_view type_url) {
  std::optional<ResourceKind> kind = kindFromTypeUrl(type_url);
  return kind.has_value() ? shortName(*kind) : type_url;
}

Value nackValue(const NackRecord& nack) {
  Struct s;
  (*s.mutable_fields())["type"] = str(shortType(nack.type_url));
  (*s.mutable_fields())["type_url"] = str(nack.type_url);
  (*s.mutable_fields())["version"] = str(nack.version);
  (*s.mutable_fields())["nonce"] = str(nack.nonce);
  (*s.mutable_fields())["message"] = str(nack.message);
  (*s.mutable_fields())["time"] = str(timeString(nack.time));
  return object(std::move(s));
}

Value snapshotSummary(const Snapshot& snapshot) {
  Struct s;
  (*s.mutable_fields())["node"] = str(snapshot.node());
  (*s.mutable_fields())["version"] = str(snapshot.version());
  Struct versions;
  Struct counts;
  for (ResourceKind kind : kAllResourceKinds) {
    (*versions.mutable_fields())[std::string(shortName(kind))] = str(snapshot.typeVersion(kind));
    (*counts.mutable_fields())[std::string(shortName(kind))] =
        num(static_cast<double>(snapshot.resources(kind).size()));
  }
  (*s.mutable_fields())["type_versions"] = object(std::move(versions));
  (*s.mutable_fields())["resource_counts"] = object(std::move(counts));
  return object(std::move(s));
}

Value streamValue(const StreamStatus& stream) {
  Struct s;
  auto& f = *s.mutable_fields();
  f["id"] = num(static_cast<double>(stream.id));
  f["method"] = str(stream.method.substr(stream.method.rfind('/') + 1));
  f["peer"] = str(stream.peer);
  f["delta"] = boolean(stream.delta);
  f["opened"] = str(timeString(stream.opened));
  f["requests"] = num(static_cast<double>(stream.requests));
  f["responses"] = num(static_cast<double>(stream.responses));
  std::vector<Value> types;
  for (const TypeStatus& type : stream.types) {
    Struct t;
    auto& tf = *t.mutable_fields();
    tf["type"] = str(shortType(type.type_url));
    tf["type_url"] = str(type.type_url);
    tf["wildcard"] = boolean(type.wildcard);
    std::vector<Value> names;
    for (const std::string& name : type.names) {
      names.push_back(str(name));
    }
    tf["names"] = list(std::move(names));
    tf["sent_version"] = str(type.sent_version);
    tf["pending_nonce"] = str(type.pending_nonce);
    tf["acked_version"] = str(type.acked_version);
    if (type.acked_at.has_value()) {
      tf["acked_at"] = str(timeString(*type.acked_at));
    }
    if (type.last_nack.has_value()) {
      tf["last_nack"] = nackValue(*type.last_nack);
    }
    if (stream.delta) {
      tf["client_resources"] = num(static_cast<double>(type.client_resources));
    }
    types.push_back(object(std::move(t)));
  }
  f["types"] = list(std::move(types));
  return object(std::move(s));
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
      put(node, request.body, response);
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

  void put(const std::optional<std::string>& node, std::string_view body,
           Admin::Response& response) {
    absl::StatusOr<SnapshotFile> file = parseSnapshot(body, SnapshotFormat::Yaml, validation_);
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
    Struct s;
    (*s.mutable_fields())["changed"] = boolean(result->changed);
    (*s.mutable_fields())["snapshot"] = snapshotSummary(snapshot);
    response.content_type = std::string(kJson);
    response.body = render(s);
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
  Struct root;
  auto& fields = *root.mutable_fields();

  std::vector<Value> snapshots;
  for (const SnapshotConstSharedPtr& snapshot : cache.snapshots()) {
    snapshots.push_back(snapshotSummary(*snapshot));
  }
  fields["snapshots"] = list(std::move(snapshots));

  // Nodes: those with open streams and those that NACKed (the NACK outlives the stream).
  std::map<std::string, std::vector<Value>> streams_by_node;
  std::map<std::string, std::vector<Value>> nacks_by_node;
  for (const auto& stream : cache.streams()) {
    StreamStatus status = stream->status();
    streams_by_node[status.node].push_back(streamValue(status));
  }
  for (const NackRecord& nack : cache.nacks()) {
    nacks_by_node[nack.node].push_back(nackValue(nack));
  }
  std::map<std::string, bool> nodes;
  for (const auto& [node, unused] : streams_by_node)
    nodes[node] = true;
  for (const auto& [node, unused] : nacks_by_node)
    nodes[node] = true;
  std::vector<Value> node_values;
  for (const auto& [node, unused] : nodes) {
    Struct n;
    auto& nf = *n.mutable_fields();
    nf["node"] = str(node);
    SnapshotConstSharedPtr serving = cache.snapshotFor(node);
    nf["snapshot_version"] = str(serving == nullptr ? "" : serving->version());
    nf["snapshot_node"] = str(serving == nullptr ? "" : serving->node());
    nf["streams"] = list(std::move(streams_by_node[node]));
    nf["last_nacks"] = list(std::move(nacks_by_node[node]));
    node_values.push_back(object(std::move(n)));
  }
  fields["nodes"] = list(std::move(node_values));

  Struct counters;
  stats.forEachCounter([&counters](const Stats::Counter& c) {
    (*counters.mutable_fields())[c.name()] = num(static_cast<double>(c.value()));
  });
  stats.forEachGauge([&counters](const Stats::Gauge& g) {
    (*counters.mutable_fields())[g.name()] = num(static_cast<double>(g.value()));
  });
  fields["stats"] = object(std::move(counters));
  return render(root);
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
