#include "proxy/admin/json_util.h"

#include <time.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace Proxy::Admin {

namespace {

// Resolves the types of the generated pool; a type URL it does not know becomes a message
// with no fields. A rejected listener's error_state holds exactly such configs (an Any of a
// filter we do not build), and without this the whole failed_configuration printed as {}
// (found by xds_listener_integration_test, BadListenersAreNacked...): now it prints in full,
// with the unknown Any shown as {"@type": url}.
class LenientTypeResolver : public google::protobuf::util::TypeResolver {
 public:
  LenientTypeResolver()
      : inner_(google::protobuf::util::NewTypeResolverForDescriptorPool(
            "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool())) {}
  google::protobuf::util::Status ResolveMessageType(const std::string& type_url,
                                                    google::protobuf::Type* type) override {
    if (!inner_->ResolveMessageType(type_url, type).ok()) {
      type->Clear();
      type->set_name(type_url.substr(type_url.rfind('/') + 1));
    }
    return google::protobuf::util::Status();
  }
  google::protobuf::util::Status ResolveEnumType(const std::string& type_url,
                                                 google::protobuf::Enum* enum_type) override {
    return inner_->ResolveEnumType(type_url, enum_type);
  }

 private:
  const std::unique_ptr<google::protobuf::util::TypeResolver> inner_;
};

}  // namespace

std::string toJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (google::protobuf::util::MessageToJsonString(message, &out, options).ok()) {
    return out;
  }
  static LenientTypeResolver* resolver = new LenientTypeResolver();
  out.clear();
  if (!google::protobuf::util::BinaryToJsonString(
           resolver, "type.googleapis.com/" + message.GetDescriptor()->full_name(),
           message.SerializeAsString(), &out, options)
           .ok()) {
    return "{}";
  }
  return out;
}

std::string timestamp(SystemTime t) {
  const time_t secs = std::chrono::system_clock::to_time_t(t);
  struct tm tm_utc;
  gmtime_r(&secs, &tm_utc);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  return buf;
}

}  // namespace Proxy::Admin
