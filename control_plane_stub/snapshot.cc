#include "control_plane_stub/snapshot.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "control_plane_stub/wire.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message.h"

namespace Proxy::ControlPlane {
namespace {

// Deterministic: map fields (e.g. metadata) in key order, so equal messages serialize (and
// hash) equally in every process.
std::string serializeDeterministic(const google::protobuf::Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

// Re-packs every google.protobuf.Any inside `message`, at any depth, with the deterministic
// serialization of its contents. Protobuf's JSON/YAML parser packs an Any's fields in the order
// the file wrote them, with explicit zeros; without this, a snapshot that only reorders keys in
// a typed_config would get new resource versions and make clients apply (and drain) a listener
// that did not change. An Any of a type not linked in is left as it is.
void canonicalizeAnys(google::protobuf::Message& message) {
  if (auto* any = dynamic_cast<google::protobuf::Any*>(&message)) {
    const std::string& url = any->type_url();
    const google::protobuf::Descriptor* type =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            url.substr(url.rfind('/') + 1));
    if (type == nullptr) {
      return;
    }
    std::unique_ptr<google::protobuf::Message> contents(
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(type)->New());
    if (!contents->ParseFromString(any->value())) {
      return;
    }
    canonicalizeAnys(*contents);
    any->set_value(serializeDeterministic(*contents));
    return;
  }
  const google::protobuf::Reflection* reflection = message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      continue;
    }
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); i++) {
        canonicalizeAnys(*reflection->MutableRepeatedMessage(&message, field, i));
      }
    } else {
      canonicalizeAnys(*reflection->MutableMessage(&message, field));
    }
  }
}

}  // namespace

const std::string& resourceName(ResourceKind kind, const google::protobuf::Message& message) {
  switch (kind) {
    case ResourceKind::Cluster:
      return static_cast<const envoy::config::cluster::v3::Cluster&>(message).name();
    case ResourceKind::Endpoint:
      return static_cast<const envoy::config::endpoint::v3::ClusterLoadAssignment&>(message)
          .cluster_name();
    case ResourceKind::Listener:
      return static_cast<const envoy::config::listener::v3::Listener&>(message).name();
    case ResourceKind::Route:
      return static_cast<const envoy::config::route::v3::RouteConfiguration&>(message).name();
    case ResourceKind::Secret:
      return static_cast<const envoy::extensions::transport_sockets::tls::v3::Secret&>(message)
          .name();
  }
  static const std::string kEmpty;
  return kEmpty;
}

std::string edsServiceName(const Resource& cluster) {
  const auto* config = dynamic_cast<const envoy::config::cluster::v3::Cluster*>(cluster.message);
  if (config == nullptr || config->type() != envoy::config::cluster::v3::Cluster::EDS) {
    return "";
  }
  const std::string& service = config->eds_cluster_config().service_name();
  return service.empty() ? config->name() : service;
}

std::vector<const google::protobuf::Message*> resourcesOf(const SnapshotFile& file,
                                                          ResourceKind kind) {
  std::vector<const google::protobuf::Message*> out;
  const auto& r = file.resources();
  switch (kind) {
    case ResourceKind::Cluster:
      for (const auto& m : r.clusters())
        out.push_back(&m);
      break;
    case ResourceKind::Endpoint:
      for (const auto& m : r.endpoints())
        out.push_back(&m);
      break;
    case ResourceKind::Listener:
      for (const auto& m : r.listeners())
        out.push_back(&m);
      break;
    case ResourceKind::Route:
      for (const auto& m : r.routes())
        out.push_back(&m);
      break;
    case ResourceKind::Secret:
      for (const auto& m : r.secrets())
        out.push_back(&m);
      break;
  }
  return out;
}

std::string encodeSotwBody(std::string_view version, ResourceKind kind,
                           const std::vector<const Resource*>& resources) {
  size_t size = Wire::lengthDelimitedSize(Wire::DiscoveryResponse::kVersionInfo, version.size()) +
                Wire::lengthDelimitedSize(Wire::DiscoveryResponse::kTypeUrl, typeUrl(kind).size());
  for (const Resource* resource : resources) {
    size += Wire::lengthDelimitedSize(Wire::DiscoveryResponse::kResources, resource->any.size());
  }
  std::string out;
  out.reserve(size);
  Wire::appendLengthDelimited(out, Wire::DiscoveryResponse::kVersionInfo, version);
  for (const Resource* resource : resources) {
    Wire::appendLengthDelimited(out, Wire::DiscoveryResponse::kResources, resource->any);
  }
  Wire::appendLengthDelimited(out, Wire::DiscoveryResponse::kTypeUrl, typeUrl(kind));
  return out;
}

SnapshotConstSharedPtr Snapshot::create(SnapshotFile file, const Snapshot* previous) {
  std::shared_ptr<Snapshot> snapshot(new Snapshot(std::move(file)));
  canonicalizeAnys(*snapshot->file_.mutable_resources());
  uint64_t contents_hash = Wire::fnv1a64("");
  for (ResourceKind kind : kAllResourceKinds) {
    TypeResources& type = snapshot->types_[index(kind)];
    for (const google::protobuf::Message* message : resourcesOf(snapshot->file_, kind)) {
      Resource resource;
      resource.name = resourceName(kind, *message);
      resource.message = message;
      google::protobuf::Any any;
      any.set_type_url(std::string(typeUrl(kind)));
      any.set_value(serializeDeterministic(*message));
      resource.version = Wire::hex64(Wire::fnv1a64(any.value()));
      resource.any = serializeDeterministic(any);
      type.resources.push_back(std::move(resource));
    }
    std::sort(type.resources.begin(), type.resources.end(),
              [](const Resource& a, const Resource& b) { return a.name < b.name; });
    // The type's hash covers names and content versions, with separators so that ("ab","c")
    // and ("a","bc") differ.
    uint64_t hash = Wire::fnv1a64(typeUrl(kind));
    for (const Resource& resource : type.resources) {
      hash = Wire::fnv1a64(resource.name, hash);
      hash = Wire::fnv1a64(std::string_view("\0", 1), hash);
      hash = Wire::fnv1a64(resource.version, hash);
      hash = Wire::fnv1a64(std::string_view("\n", 1), hash);
    }
    type.hash = hash;
    contents_hash = Wire::fnv1a64(Wire::hex64(hash), contents_hash);
  }

  snapshot->version_ = snapshot->file_.version().empty() ? "auto-" + Wire::hex64(contents_hash)
                                                         : snapshot->file_.version();
  for (ResourceKind kind : kAllResourceKinds) {
    TypeResources& type = snapshot->types_[index(kind)];
    type.version = previous != nullptr && previous->typeHash(kind) == type.hash
                       ? previous->typeVersion(kind)
                       : snapshot->version_;
    std::vector<const Resource*> all;
    all.reserve(type.resources.size());
    for (const Resource& resource : type.resources) {
      all.push_back(&resource);
    }
    type.sotw_body_all =
        std::make_shared<const std::string>(encodeSotwBody(type.version, kind, all));
  }
  return snapshot;
}

const Resource* Snapshot::find(ResourceKind kind, std::string_view name) const {
  const std::vector<Resource>& resources = types_[index(kind)].resources;
  auto it = std::lower_bound(resources.begin(), resources.end(), name,
                             [](const Resource& r, std::string_view n) { return r.name < n; });
  return it != resources.end() && it->name == name ? &*it : nullptr;
}

bool Snapshot::sameContents(const Snapshot& other) const {
  for (ResourceKind kind : kAllResourceKinds) {
    if (typeHash(kind) != other.typeHash(kind)) {
      return false;
    }
  }
  return true;
}

}  // namespace Proxy::ControlPlane
