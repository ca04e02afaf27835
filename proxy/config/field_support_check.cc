#include "proxy/config/field_support.h"

// The walk behind checkSupportedFields and findUnsupportedFields: a message and everything set
// in it (repeated fields, maps, the messages inside Any), by reflection, against the table of
// implemented fields (field_support.cc).

#include <memory>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/unknown_field_set.h>

namespace Proxy::Config {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

bool isWellKnownLeaf(const Descriptor& d) {
  // Values, not structure: nothing inside them is a config field of ours.
  return d.file()->package() == "google.protobuf" && d.full_name() != "google.protobuf.Any";
}

class Walker {
 public:
  Walker(const FieldCheckContext& context, bool stop_at_first)
      : context_(context), stop_at_first_(stop_at_first), index_(index()) {}

  std::vector<UnsupportedField> found;

  void walk(const Message& message, const std::string& path, const FieldDescriptor* via) {
    const Descriptor& descriptor = *message.GetDescriptor();
    const Reflection& reflection = *message.GetReflection();
    const auto& unknown = reflection.GetUnknownFields(message);
    for (int i = 0; i < unknown.field_count() && !done(); i++) {
      report(path, &descriptor, nullptr,
             absl::StrCat("unknown field ", unknown.field(i).number(), ": not supported"));
    }
    std::vector<const FieldDescriptor*> fields;
    reflection.ListFields(message, &fields);
    for (const FieldDescriptor* field : fields) {
      if (done()) {
        return;
      }
      const std::string field_path =
          path.empty() ? field->name() : absl::StrCat(path, ".", field->name());
      const ImplementedField* row = find(descriptor, *field, via);
      if (row == nullptr) {
        report(field_path, &descriptor, field, "not supported");
        continue;
      }
      if (row->accepts != nullptr && !row->accepts(message, *field, context_)) {
        report(field_path, &descriptor, field,
               absl::StrCat("not supported (only for ", row->condition, ")"));
        continue;
      }
      if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        continue;
      }
      if (field->is_map()) {
        const FieldDescriptor* key = field->message_type()->map_key();
        const FieldDescriptor* value = field->message_type()->map_value();
        for (int i = 0; i < reflection.FieldSize(message, field) && !done(); i++) {
          const Message& entry = reflection.GetRepeatedMessage(message, field, i);
          if (value->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
            continue;
          }
          const std::string key_text =
              key->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                  ? entry.GetReflection()->GetString(entry, key)
                  : std::to_string(entry.GetReflection()->GetUInt64(entry, key));
          walkValue(entry.GetReflection()->GetMessage(entry, value),
                    absl::StrCat(field_path, "['", key_text, "']"), field);
        }
      } else if (field->is_repeated()) {
        for (int i = 0; i < reflection.FieldSize(message, field) && !done(); i++) {
          walkValue(reflection.GetRepeatedMessage(message, field, i),
                    absl::StrCat(field_path, "[", i, "]"), field);
        }
      } else {
        walkValue(reflection.GetMessage(message, field), field_path, field);
      }
    }
  }

 private:
  bool done() const { return stop_at_first_ && !found.empty(); }

  void report(const std::string& path, const Descriptor* message, const FieldDescriptor* field,
              std::string reason) {
    found.push_back(UnsupportedField{path, message, field, std::move(reason)});
  }

  const ImplementedField* find(const Descriptor& message, const FieldDescriptor& field,
                               const FieldDescriptor* via) const {
    auto it = index_.find(absl::StrCat(message.full_name(), ".", field.name()));
    if (it == index_.end()) {
      return nullptr;
    }
    for (const ImplementedField* row : it->second) {
      if (row->via == nullptr || (via != nullptr && via->full_name() == row->via)) {
        return row;
      }
    }
    return nullptr;
  }

  void walkValue(const Message& value, const std::string& path, const FieldDescriptor* via) {
    const Descriptor& descriptor = *value.GetDescriptor();
    if (descriptor.full_name() == "google.protobuf.Any") {
      walkAny(static_cast<const google::protobuf::Any&>(value), path, via);
      return;
    }
    if (isWellKnownLeaf(descriptor)) {
      return;
    }
    walk(value, path, via);
  }

  // The message inside, when it is one of ours; the path goes on without ".value", as the
  // YAML reads. A type we do not have (raw_buffer, an unknown filter) is for the semantic
  // checks to accept or refuse.
  void walkAny(const google::protobuf::Any& any, const std::string& path,
               const FieldDescriptor* via) {
    const std::string& url = any.type_url();
    const size_t slash = url.rfind('/');
    const Descriptor* inner =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            slash == std::string::npos ? url : url.substr(slash + 1));
    if (inner == nullptr || isWellKnownLeaf(*inner)) {
      return;
    }
    const Message* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(inner);
    if (prototype == nullptr) {
      return;
    }
    std::unique_ptr<Message> message(prototype->New());
    if (!message->ParseFromString(any.value())) {
      return;  // the semantic checks report "unable to parse"
    }
    walk(*message, path, via);
  }

  using Index = absl::flat_hash_map<std::string, std::vector<const ImplementedField*>>;

  // "<message>.<field>" -> its rows; built once (thread-safe static initialisation).
  static const Index& index() {
    static const Index* const index = [] {
      auto* out = new Index();
      for (const ImplementedField& row : implementedFields()) {
        (*out)[absl::StrCat(row.message, ".", row.field)].push_back(&row);
      }
      return out;
    }();
    return *index;
  }

  const FieldCheckContext& context_;
  const bool stop_at_first_;
  const Index& index_;
};

}  // namespace

std::vector<UnsupportedField> findUnsupportedFields(const Message& message, const std::string& path,
                                                    const FieldCheckContext& context) {
  Walker walker(context, /*stop_at_first=*/false);
  walker.walk(message, path, nullptr);
  return std::move(walker.found);
}

absl::Status checkSupportedFields(const Message& message, const std::string& path,
                                  const FieldCheckContext& context) {
  Walker walker(context, /*stop_at_first=*/true);
  walker.walk(message, path, nullptr);
  if (walker.found.empty()) {
    return absl::OkStatus();
  }
  const UnsupportedField& first = walker.found.front();
  return absl::InvalidArgumentError(
      first.path.empty() ? first.reason : absl::StrCat(first.path, ": ", first.reason));
}

}  // namespace Proxy::Config
