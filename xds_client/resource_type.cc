#include "xds_client/resource_type.h"

#include <map>
#include <memory>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "google/protobuf/descriptor.h"
#include "proxy/common/string_view.h"

namespace Proxy::Xds {
namespace {

constexpr absl::string_view kTypeUrlPrefix = "type.googleapis.com/";

std::unique_ptr<ResourceType> builtIn(const google::protobuf::Message& prototype,
                                      absl::string_view name_field, bool all_required,
                                      absl::string_view short_name, absl::string_view service,
                                      absl::string_view sotw_rpc, absl::string_view delta_rpc,
                                      int order) {
  auto type = std::make_unique<ResourceType>();
  const auto* descriptor = prototype.GetDescriptor();
  type->type_url = absl::StrCat(kTypeUrlPrefix, descriptor->full_name());
  type->prototype = &prototype;
  type->name_field = descriptor->FindFieldByName(std::string(name_field));
  type->all_resources_required_in_sotw = all_required;
  type->short_name = std::string(short_name);
  type->sotw_method = absl::StrCat("/", service, "/", sotw_rpc);
  type->delta_method = absl::StrCat("/", service, "/", delta_rpc);
  type->request_order = order;
  return type;
}

// Built on first use; other message types are added as they are first asked for. Guarded by a
// mutex because decoding runs on gRPC's threads; entries are never removed, so the pointers
// handed out stay valid.
class Table {
 public:
  Table() {
    add(builtIn(envoy::config::cluster::v3::Cluster::default_instance(), "name", true, "cds",
                "envoy.service.cluster.v3.ClusterDiscoveryService", "StreamClusters",
                "DeltaClusters", 0));
    add(builtIn(envoy::config::endpoint::v3::ClusterLoadAssignment::default_instance(),
                "cluster_name", false, "eds", "envoy.service.endpoint.v3.EndpointDiscoveryService",
                "StreamEndpoints", "DeltaEndpoints", 1));
    add(builtIn(envoy::config::listener::v3::Listener::default_instance(), "name", true, "lds",
                "envoy.service.listener.v3.ListenerDiscoveryService", "StreamListeners",
                "DeltaListeners", 2));
    add(builtIn(envoy::config::route::v3::RouteConfiguration::default_instance(), "name", false,
                "rds", "envoy.service.route.v3.RouteDiscoveryService", "StreamRoutes",
                "DeltaRoutes", 3));
    add(builtIn(envoy::extensions::transport_sockets::tls::v3::Secret::default_instance(), "name",
                false, "sds", "envoy.service.secret.v3.SecretDiscoveryService", "StreamSecrets",
                "DeltaSecrets", 4));
  }

  const ResourceType* find(absl::string_view type_url) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = types_.find(type_url);
    if (it != types_.end()) {
      return it->second.get();
    }
    if (!absl::StartsWith(type_url, kTypeUrlPrefix)) {
      return nullptr;
    }
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            std::string(type_url.substr(kTypeUrlPrefix.size())));
    if (descriptor == nullptr) {
      return nullptr;
    }
    const auto* name_field = descriptor->FindFieldByName("name");
    if (name_field == nullptr || name_field->is_repeated() ||
        name_field->type() != google::protobuf::FieldDescriptor::TYPE_STRING) {
      return nullptr;
    }
    auto type = std::make_unique<ResourceType>();
    type->type_url = std::string(type_url);
    type->prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
    type->name_field = name_field;
    type->short_name = descriptor->name();
    const ResourceType* result = type.get();
    types_.emplace(type->type_url, std::move(type));
    return result;
  }

 private:
  void add(std::unique_ptr<ResourceType> type) {
    std::string key = type->type_url;
    types_.emplace(std::move(key), std::move(type));
  }

  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<ResourceType>, std::less<>> types_ ABSL_GUARDED_BY(mutex_);
};

Table& table() {
  static auto* table = new Table();  // never destroyed: decoding may run during exit
  return *table;
}

}  // namespace

const ResourceType* findResourceType(std::string_view type_url) {
  return table().find(asAbsl(type_url));
}

std::string shortTypeName(std::string_view type_url) {
  const ResourceType* type = findResourceType(type_url);
  return type != nullptr ? type->short_name : std::string(type_url);
}

}  // namespace Proxy::Xds
