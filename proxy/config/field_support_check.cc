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

// Where a field is, built into text only for a report: a clean 10,000-endpoint
// ClusterLoadAssignment is walked without building 10,000s of path strings (issue 14).
struct Path {
  enum class Kind { Root, Field, Element, Key };
  Kind kind = Kind::Root;
  const Path* parent = nullptr;
  const std::string* text = nullptr;  // Root: the caller's path; Field: the field name
  int index = 0;                      // Element
  std::string key;                    // Key

  std::string str() const {
    switch (kind) {
      case Kind::Root:
        return *text;
      case Kind::Field: {
        std::string out = parent->str();
        return out.empty() ? *text : absl::StrCat(out, ".", *text);
      }
      case Kind::Element:
        return absl::StrCat(parent->str(), "[", index, "]");
      case Kind::Key:
        return absl::StrCat(parent->str(), "['", key, "']");
    }
    return "";
  }
};

class Walker {
 public:
  Walker(const FieldCheckContext& context, bool stop_at_first)
      : context_(context), stop_at_first_(stop_at_first), index_(index()) {}

  std::vector<UnsupportedField> found;

  void walk(const Message& message, const std::string& path, const FieldDescriptor* via) {
    Path root;
    root.text = &path;
    walk(message, root, via);
  }

 private:
  void walk(const Message& message, const Path& path, const FieldDescriptor* via) {
    const Descriptor& descriptor = *message.GetDescriptor();
    const Reflection& reflection = *message.GetReflection();
    const auto& unknown = reflection.GetUnknownFields(message);
    for (int i = 0; i < unknown.field_count() && !done(); i++) {
      report(path.str(), &descriptor, nullptr,
             absl::StrCat("unknown field ", unknown.field(i).number(), ": not supported"));
    }

    std::vector<const FieldDescriptor*> fields;
    reflection.ListFields(message, &fields);
    for (const FieldDescriptor* field : fields) {
      if (done()) {
        return;
      }
      Path field_path;
      field_path.kind = Path::Kind::Field;
      field_path.parent = &path;
      field_path.text = &field->name();
      const ImplementedField* row = find(descriptor, *field, via);
      if (row == nullptr) {
        report(field_path.str(), &descriptor, field, "not supported");
        continue;
      }
      if (row->accepts != nullptr && !row->accepts(message, *field, context_)) {
        report(field_path.str(), &descriptor, field,
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
          Path entry_path;
          entry_path.kind = Path::Kind::Key;
          entry_path.parent = &field_path;
          entry_path.key = key->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                               ? entry.GetReflection()->GetString(entry, key)
                               : std::to_string(entry.GetReflection()->GetUInt64(entry, key));
          walkValue(entry.GetReflection()->GetMessage(entry, value), entry_path, field);
        }
      } else if (field->is_repeated()) {
        Path element_path;
        element_path.kind = Path::Kind::Element;
        element_path.parent = &field_path;
        for (int i = 0; i < reflection.FieldSize(message, field) && !done(); i++) {
          element_path.index = i;
          walkValue(reflection.GetRepeatedMessage(message, field, i), element_path, field);
        }
      } else {
        walkValue(reflection.GetMessage(message, field), field_path, field);
      }
    }
  }

  bool done() const { return stop_at_first_ && !found.empty(); }

  void report(const std::string& path, const Descriptor* message, const FieldDescriptor* field,
              std::string reason) {
    found.push_back(UnsupportedField{path, message, field, std::move(reason)});
  }

  const ImplementedField* find(const Descriptor& message, const FieldDescriptor& field,
                               const FieldDescriptor* via) const {
    // By descriptor: no string built per field walked. (The rows name generated messages; a
    // message of another pool falls back to its name.)
    const std::vector<const ImplementedField*>* rows = nullptr;
    if (auto it = index_.by_field.find(&field); it != index_.by_field.end()) {
      rows = &it->second;
    } else if (auto named =
                   index_.by_name.find(absl::StrCat(message.full_name(), ".", field.name()));
               named != index_.by_name.end()) {
      rows = &named->second;
    } else {
      return nullptr;
    }
    for (const ImplementedField* row : *rows) {
      if (row->via == nullptr || (via != nullptr && via->full_name() == row->via)) {
        return row;
      }
    }
    return nullptr;
  }

  void walkValue(const Message& value, const Path& path, const FieldDescriptor* via) {
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
  void walkAny(const google::protobuf::Any& any, const Path& path, const FieldDescriptor* via) {
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

  struct Index {
    // The rows of each field of a generated message, by its descriptor.
    absl::flat_hash_map<const FieldDescriptor*, std::vector<const ImplementedField*>> by_field;
    // "<message>.<field>" -> its rows, for messages of another pool.
    absl::flat_hash_map<std::string, std::vector<const ImplementedField*>> by_name;
  };

  // Built once (thread-safe static initialisation).
  static const Index& index() {
    static const Index* const index = [] {
      auto* out = new Index();
      const google::protobuf::DescriptorPool* pool =
          google::protobuf::DescriptorPool::generated_pool();
      for (const ImplementedField& row : implementedFields()) {
        out->by_name[absl::StrCat(row.message, ".", row.field)].push_back(&row);
        const Descriptor* message = pool->FindMessageTypeByName(row.message);
        const FieldDescriptor* field =
            message != nullptr ? message->FindFieldByName(row.field) : nullptr;
        if (field != nullptr) {
          out->by_field[field].push_back(&row);
        }
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
