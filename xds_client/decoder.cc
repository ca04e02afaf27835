#include "xds_client/decoder.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "proxy/common/assert.h"

namespace Proxy::Xds {
namespace {

using google::protobuf::internal::WireFormatLite;

// The last value of string field `field_number` in serialized bytes, read without parsing the
// message: used when a body does not parse, or to read the type and nonce of a response that
// does not. Stops at the first malformed field.
std::optional<std::string> readStringField(std::string_view bytes, int field_number) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  std::optional<std::string> result;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      return result;
    }
    if (WireFormatLite::GetTagFieldNumber(tag) == field_number &&
        WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
      std::string value;
      if (!WireFormatLite::ReadString(&in, &value)) {
        return result;
      }
      result = std::move(value);
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return result;
    }
  }
}

std::string messageName(const ResourceType& type) {
  return type.prototype->GetDescriptor()->full_name();
}

// Where the decoded resources of one response live. Usually: a resource of kOwnArenaBytes or
// more on an arena of its own, which the message's shared_ptr owns (a 10,000-endpoint
// ClusterLoadAssignment is ~40,000 small messages and strings: allocated and freed one by one
// they cost ~13M instructions to destroy, callgrind); a smaller one on the heap, so that a
// message kept long holds no arena block's slack.
//
// A response of kMappedResponseBytes or kMappedResponseResources or more (10,000 clusters'
// assignments: 2.5 MB, ~35 MB decoded; the 10,000 clusters themselves: 0.2 MB, ~10 MB) is
// decoded on arenas whose blocks come straight from mmap, small consecutive
// resources sharing one until their wire bytes reach kGroupBytes, each arena unmapped with the
// last message on it. Resources applied in order and released as they are
// (Watcher::onConfigUpdateReleasing) then give their memory back to the system group by group;
// from malloc, it would stay resident in the malloc arena of gRPC's thread, which decodes, while
// the main thread builds the hosts in its own (issue 14). Smaller responses (a one-cluster
// update) keep the heap: a mapping per response costs page faults and a munmap each time.
constexpr size_t kOwnArenaBytes = 4096;
constexpr size_t kMappedResponseBytes = 1024 * 1024;
constexpr size_t kMappedResponseResources = 1000;
constexpr size_t kGroupBytes = 4096;

size_t pageRound(size_t size) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (size + page - 1) / page * page;
}

void* mapBlock(size_t size) {
  void* block =
      mmap(nullptr, pageRound(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  RELEASE_ASSERT(block != MAP_FAILED, "xds decoder: out of memory for an arena block");
  return block;
}

void unmapBlock(void* block, size_t size) {
  munmap(block, pageRound(size));
}

std::shared_ptr<google::protobuf::Arena> newArena(size_t start_block_size, size_t max_block_size,
                                                  bool mapped) {
  google::protobuf::ArenaOptions options;
  options.start_block_size = start_block_size;
  options.max_block_size = max_block_size;
  if (mapped) {
    options.block_alloc = &mapBlock;
    options.block_dealloc = &unmapBlock;
  }
  return std::make_shared<google::protobuf::Arena>(options);
}

class ResourceArenas {
 public:
  ResourceArenas(size_t response_bytes, size_t resources)
      : mapped_(response_bytes >= kMappedResponseBytes || resources >= kMappedResponseResources) {}

  std::shared_ptr<google::protobuf::Message> newMessage(const ResourceType& type,
                                                        size_t wire_size) {
    std::shared_ptr<google::protobuf::Arena> arena;
    if (wire_size >= kOwnArenaBytes) {
      arena = newArena(std::min<size_t>(4 * wire_size, 65536), 256 * 1024, mapped_);
    } else if (!mapped_) {
      return std::shared_ptr<google::protobuf::Message>(type.prototype->New());
    } else {
      if (group_ == nullptr || group_bytes_ + wire_size > kGroupBytes) {
        group_ = newArena(65536, 65536, true);
        group_bytes_ = 0;
      }
      group_bytes_ += wire_size;
      arena = group_;
    }
    google::protobuf::Message* message = type.prototype->New(arena.get());
    // Aliasing: the pointer is the message, the ownership (a share of) the arena's.
    return std::shared_ptr<google::protobuf::Message>(std::move(arena), message);
  }

 private:
  const bool mapped_;
  std::shared_ptr<google::protobuf::Arena> group_;
  size_t group_bytes_ = 0;
};

// Shared by both flavours: decodes one resource body. Returns nullptr and fills `reason`
// (and `name` when it can be read from the wire) on failure.
std::shared_ptr<google::protobuf::Message> decodeBody(ResourceArenas& arenas,
                                                      const ResourceType& type,
                                                      const google::protobuf::Any& any,
                                                      std::string& name, std::string& reason) {
  if (any.type_url() != type.type_url) {
    // The body is another type; read its name if we know that type.
    if (name.empty()) {
      if (const ResourceType* actual = findResourceType(any.type_url()); actual != nullptr) {
        name = readStringField(any.value(), actual->name_field->number()).value_or("");
      }
    }
    reason = absl::StrCat("resource type '", any.type_url(), "' does not match the response type '",
                          type.type_url, "'");
    return nullptr;
  }
  std::shared_ptr<google::protobuf::Message> message = arenas.newMessage(type, any.value().size());
  if (!message->ParseFromString(any.value())) {
    if (name.empty()) {
      name = readStringField(any.value(), type.name_field->number()).value_or("");
    }
    reason = absl::StrCat("does not parse as ", messageName(type));
    return nullptr;
  }
  const std::string& body_name = message->GetReflection()->GetString(*message, type.name_field);
  if (name.empty()) {
    name = body_name;
  } else if (!body_name.empty() && body_name != name) {
    reason = absl::StrCat(type.name_field->name(), " '", body_name,
                          "' does not match the resource name");
    return nullptr;
  }
  if (name.empty()) {
    reason = absl::StrCat("resource has no name (", type.name_field->name(), " is empty)");
    return nullptr;
  }
  return message;
}

class Decoder {
 public:
  explicit Decoder(DecodedResponse& out) : out_(out) {}

  void add(size_t index, std::string name, std::string version, std::string_view bytes,
           std::shared_ptr<google::protobuf::Message> message) {
    auto [it, inserted] = first_index_.emplace(name, index);
    if (!inserted) {
      duplicates_.insert(name);
      fail(index, name, absl::StrCat("duplicate resource name (first at index ", it->second, ")"));
      return;
    }
    DecodedResource resource;
    resource.name = std::move(name);
    resource.version = std::move(version);
    resource.hash = hashResourceBytes(bytes);
    resource.index = index;
    resource.message = std::move(message);
    out_.resources.push_back(std::move(resource));
    views_.push_back(bytes);
  }

  void fail(size_t index, const std::string& name, std::string reason) {
    if (name.empty()) {
      out_.all_names_known = false;
    } else {
      out_.kept_names.push_back(name);
      // A name seen first in a broken resource is still taken: a later copy is a duplicate.
      first_index_.emplace(name, index);
    }
    out_.errors.push_back(ResourceError{index, name, std::move(reason)});
  }

  // A duplicated name is ambiguous: no copy is applied, the last good version stays. Then the
  // bytes of the resources kept go into one buffer (the views point into the response being
  // decoded, which must still be alive).
  void finish() {
    if (!duplicates_.empty()) {
      std::vector<DecodedResource> kept;
      std::vector<std::string_view> kept_views;
      kept.reserve(out_.resources.size());
      kept_views.reserve(out_.resources.size());
      for (size_t i = 0; i < out_.resources.size(); ++i) {
        if (duplicates_.count(out_.resources[i].name) > 0) {
          out_.kept_names.push_back(out_.resources[i].name);
        } else {
          kept.push_back(std::move(out_.resources[i]));
          kept_views.push_back(views_[i]);
        }
      }
      out_.resources = std::move(kept);
      views_ = std::move(kept_views);
    }
    if (views_.empty()) {
      return;
    }
    size_t total = 0;
    for (std::string_view view : views_) {
      total += view.size();
    }
    auto buffer = std::make_shared<std::string>();
    buffer->reserve(total);
    for (std::string_view view : views_) {
      buffer->append(view);
    }
    std::shared_ptr<const std::string> shared = std::move(buffer);
    size_t offset = 0;
    for (size_t i = 0; i < out_.resources.size(); ++i) {
      out_.resources[i].bytes = ResourceBytes(shared, offset, views_[i].size());
      offset += views_[i].size();
    }
  }

 private:
  DecodedResponse& out_;
  // Hashed rather than ordered: names of one response often share long prefixes
  // ("outbound|8080||service-1.ns.svc.cluster.local"), which makes ordered compares slow.
  absl::flat_hash_map<std::string, size_t> first_index_;
  absl::flat_hash_set<std::string> duplicates_;
  // The bytes of out_.resources[i], in the response being decoded.
  std::vector<std::string_view> views_;
};

void decodeSotw(std::string_view bytes, DecodedResponse& out) {
  // The response is a temporary: on an arena, its thousands of Any values are freed at once.
  google::protobuf::Arena arena;
  auto& response =
      *google::protobuf::Arena::CreateMessage<envoy::service::discovery::v3::DiscoveryResponse>(
          &arena);
  if (!response.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    out.type_url = readStringField(bytes, 4).value_or("");
    out.nonce = readStringField(bytes, 5).value_or("");
    out.status = absl::InvalidArgumentError(
        absl::StrCat("DiscoveryResponse does not parse (", bytes.size(), " bytes)"));
    return;
  }
  out.type_url = response.type_url();
  out.version = response.version_info();
  out.nonce = response.nonce();
  out.type = findResourceType(out.type_url);
  if (out.type == nullptr) {
    return;
  }
  Decoder decoder(out);
  ResourceArenas arenas(bytes.size(), static_cast<size_t>(response.resources_size()));
  out.resources.reserve(response.resources_size());
  for (int i = 0; i < response.resources_size(); ++i) {
    const google::protobuf::Any* any = &response.resources(i);
    std::string name;
    if (any->type_url() == kResourceWrapperTypeUrl) {
      // A SotW server may wrap a resource to give it a ttl.
      auto& wrapper =
          *google::protobuf::Arena::CreateMessage<envoy::service::discovery::v3::Resource>(&arena);
      if (!wrapper.ParseFromString(any->value())) {
        decoder.fail(i, "", "does not parse as envoy.service.discovery.v3.Resource");
        continue;
      }
      name = wrapper.name();
      if (!wrapper.has_resource()) {
        ++out.heartbeats;  // a TTL refresh: the resource is still there, unchanged
        if (!name.empty()) {
          out.kept_names.push_back(name);
        }
        continue;
      }
      any = &wrapper.resource();
    }
    std::string reason;
    auto message = decodeBody(arenas, *out.type, *any, name, reason);
    if (message == nullptr) {
      decoder.fail(i, name, std::move(reason));
      continue;
    }
    decoder.add(i, std::move(name), out.version, any->value(), std::move(message));
  }
  decoder.finish();
}

void decodeDelta(std::string_view bytes, DecodedResponse& out) {
  google::protobuf::Arena arena;
  auto& response = *google::protobuf::Arena::CreateMessage<
      envoy::service::discovery::v3::DeltaDiscoveryResponse>(&arena);
  if (!response.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    out.type_url = readStringField(bytes, 4).value_or("");
    out.nonce = readStringField(bytes, 5).value_or("");
    out.status = absl::InvalidArgumentError(
        absl::StrCat("DeltaDiscoveryResponse does not parse (", bytes.size(), " bytes)"));
    return;
  }
  out.type_url = response.type_url();
  out.version = response.system_version_info();
  out.nonce = response.nonce();
  out.type = findResourceType(out.type_url);
  if (out.type == nullptr) {
    return;
  }
  Decoder decoder(out);
  ResourceArenas arenas(bytes.size(), static_cast<size_t>(response.resources_size()));
  out.resources.reserve(response.resources_size());
  for (int i = 0; i < response.resources_size(); ++i) {
    const auto& resource = response.resources(i);
    std::string name = resource.name();
    if (!resource.has_resource()) {
      if (resource.has_ttl()) {
        ++out.heartbeats;
      } else if (!name.empty()) {
        // "When a resource subscribed to by a client does not exist, the server will send a
        // Resource whose name field matches ... and whose resource field is unset."
        out.removed.push_back(name);
      }
      continue;
    }
    std::string reason;
    auto message = decodeBody(arenas, *out.type, resource.resource(), name, reason);
    if (message == nullptr) {
      decoder.fail(i, name, std::move(reason));
      continue;
    }
    decoder.add(i, std::move(name), resource.version(), resource.resource().value(),
                std::move(message));
  }
  decoder.finish();
  for (const auto& name : response.removed_resources()) {
    out.removed.push_back(name);
  }
  for (const auto& name : response.removed_resource_names()) {
    out.removed.push_back(name.name());
  }
}

}  // namespace

std::string ResourceError::format() const {
  if (name.empty()) {
    return absl::StrCat("resource index ", index, ": ", reason);
  }
  return absl::StrCat("resource index ", index, ": ", name, ": ", reason);
}

uint64_t hashResourceBytes(std::string_view bytes) {
  return std::hash<std::string_view>()(bytes);
}

DecodedResponsePtr decodeResponse(std::string_view bytes, bool delta) {
  auto out = std::make_unique<DecodedResponse>();
  out->delta = delta;
  out->wire_bytes = bytes.size();
  if (delta) {
    decodeDelta(bytes, *out);
  } else {
    decodeSotw(bytes, *out);
  }
  return out;
}

}  // namespace Proxy::Xds
