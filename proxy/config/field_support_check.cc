#include "proxy/config/field_support.h"

// The walk behind checkSupportedFields and findUnsupportedFields: a message and everything set
// in it (repeated fields, maps, the messages inside Any), by reflection, against the table of
// implemented fields (field_support.cc).

#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

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

struct Index {
  // The rows of each field of a generated message, by its descriptor.
  absl::flat_hash_map<const FieldDescriptor*, std::vector<const ImplementedField*>> by_field;
  // "<message>.<field>" -> its rows, for messages of another pool.
  absl::flat_hash_map<std::string, std::vector<const ImplementedField*>> by_name;
};

// Built once (thread-safe static initialisation).
const Index& index() {
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

// The row that implements `field` of `message` reached through `via`; null: not implemented.
const ImplementedField* findRow(const Descriptor& message, const FieldDescriptor& field,
                                const FieldDescriptor* via) {
  // By descriptor: no string built per field walked. (The rows name generated messages; a
  // message of another pool falls back to its name.)
  const Index& idx = index();
  const std::vector<const ImplementedField*>* rows = nullptr;
  if (auto it = idx.by_field.find(&field); it != idx.by_field.end()) {
    rows = &it->second;
  } else if (auto named = idx.by_name.find(absl::StrCat(message.full_name(), ".", field.name()));
             named != idx.by_name.end()) {
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

class Walker {
 public:
  Walker(const FieldCheckContext& context, bool stop_at_first)
      : context_(context), stop_at_first_(stop_at_first) {}

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
      const ImplementedField* row = findRow(descriptor, *field, via);
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

  const FieldCheckContext& context_;
  const bool stop_at_first_;
};

// The walk's verdict for a clean message, read from its serialized bytes instead of by
// reflection: true when every field on the wire, recursively and into Any, is one the table
// implements without a condition. Anything else (an unknown or unimplemented field, a row with
// a condition, which needs the message, a proto3 default that a serializer put on the wire,
// which reflection does not list, bytes it cannot read) answers false, and the exact walk
// decides and reports. Reflection (ListFields, HasBit, a field vector per message) cost ~7,700
// instructions per endpoint of a ClusterLoadAssignment: 77M for 10,000 endpoints (issue 14).
class WireChecker {
 public:
  bool clean(std::string_view bytes, const Descriptor& descriptor) {
    switch (heldAs(descriptor)) {
      case Held::Any:
        return walkAny(bytes, /*via=*/nullptr, /*depth=*/0);
      case Held::Leaf:
        return true;
      case Held::Walk:
        break;
    }
    return walk(bytes, plan(descriptor, /*via=*/nullptr), /*depth=*/0);
  }

 private:
  // Deeper than protobuf's own parsing limit: let the walk judge.
  static constexpr int kMaxDepth = 100;
  // Field numbers above it are looked at by the walk (our protos stay far below).
  static constexpr int kMaxPlannedNumber = 4096;

  // What the walk does with a message it reaches (decided once per plan, not per message).
  enum class Held : uint8_t { Walk, Any, Leaf };
  static Held heldAs(const Descriptor& descriptor) {
    if (descriptor.full_name() == "google.protobuf.Any") {
      return Held::Any;
    }
    return isWellKnownLeaf(descriptor) ? Held::Leaf : Held::Walk;
  }

  struct FieldPlan;
  // A message type as reached through `via`: each field number's plan.
  using Plan = std::vector<FieldPlan>;
  struct FieldPlan {
    enum class Kind : uint8_t { Refuse, Scalar, Message, Map };
    Kind kind = Kind::Refuse;
    uint8_t wire_type = 0;   // Scalar: what the field's type puts on the wire
    bool packable = false;   // Scalar: a repeated number, which may also come packed (type 2)
    Held held = Held::Leaf;  // Message, Map: what its message is to the walk
    const FieldDescriptor* field = nullptr;  // the `via` of what it holds
    const Descriptor* message = nullptr;     // Message: its type; Map: the value's, or null
    Plan* plan = nullptr;                    // Held::Walk: the message's plan, once looked up
  };

  struct Reader {
    const uint8_t* p;
    const uint8_t* end;
    bool done() const { return p == end; }
    bool varint(uint64_t& value) {
      // Tags and most lengths and numbers are one byte.
      if (p != end && *p < 0x80) {
        value = *p++;
        return true;
      }
      value = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (p == end) {
          return false;
        }
        const uint8_t byte = *p++;
        value |= static_cast<uint64_t>(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
          return true;
        }
      }
      return false;
    }
    bool lengthDelimited(std::string_view& out) {
      uint64_t length = 0;
      if (!varint(length) || length > static_cast<uint64_t>(end - p)) {
        return false;
      }
      out = std::string_view(reinterpret_cast<const char*>(p), length);
      p += length;
      return true;
    }
    bool skip(int wire_type) {
      uint64_t ignored = 0;
      std::string_view skipped;
      switch (wire_type) {
        case 0:
          return varint(ignored);
        case 1:
          return advance(8);
        case 2:
          return lengthDelimited(skipped);
        case 5:
          return advance(4);
        default:
          return false;  // groups: let the walk judge
      }
    }
    bool advance(size_t n) {
      if (n > static_cast<size_t>(end - p)) {
        return false;
      }
      p += n;
      return true;
    }
  };

  static Reader reader(std::string_view bytes) {
    const auto* begin = reinterpret_cast<const uint8_t*>(bytes.data());
    return Reader{begin, begin + bytes.size()};
  }

  static uint8_t wireTypeOf(const FieldDescriptor& field) {
    switch (field.type()) {
      case FieldDescriptor::TYPE_DOUBLE:
      case FieldDescriptor::TYPE_FIXED64:
      case FieldDescriptor::TYPE_SFIXED64:
        return 1;
      case FieldDescriptor::TYPE_FLOAT:
      case FieldDescriptor::TYPE_FIXED32:
      case FieldDescriptor::TYPE_SFIXED32:
        return 5;
      case FieldDescriptor::TYPE_STRING:
      case FieldDescriptor::TYPE_BYTES:
      case FieldDescriptor::TYPE_MESSAGE:
        return 2;
      case FieldDescriptor::TYPE_GROUP:
        return 3;
      default:
        return 0;  // varints: ints, bool, enum
    }
  }

  // Per thread: checks run on any thread, and a plan is built once per (type, via).
  static Plan& plan(const Descriptor& descriptor, const FieldDescriptor* via) {
    thread_local absl::flat_hash_map<std::pair<const Descriptor*, const FieldDescriptor*>,
                                     std::unique_ptr<Plan>>
        plans;
    std::unique_ptr<Plan>& slot = plans[{&descriptor, via}];
    if (slot != nullptr) {
      return *slot;
    }
    slot = std::make_unique<Plan>();
    // Proto2 keeps an unknown value of a closed enum as an unknown field: only proto3 here.
    if (descriptor.file()->syntax() != google::protobuf::FileDescriptor::SYNTAX_PROTO3) {
      return *slot;
    }
    for (int i = 0; i < descriptor.field_count(); i++) {
      const FieldDescriptor& field = *descriptor.field(i);
      if (field.number() > kMaxPlannedNumber) {
        continue;
      }
      if (static_cast<size_t>(field.number()) >= slot->size()) {
        slot->resize(field.number() + 1);
      }
      FieldPlan& out = (*slot)[field.number()];
      const ImplementedField* row = findRow(descriptor, field, via);
      if (row == nullptr || row->accepts != nullptr ||
          field.type() == FieldDescriptor::TYPE_GROUP) {
        continue;  // Refuse
      }
      out.field = &field;
      if (field.is_map()) {
        const FieldDescriptor* value = field.message_type()->map_value();
        out.kind = FieldPlan::Kind::Map;
        out.message =
            value->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE ? value->message_type() : nullptr;
        out.held = out.message != nullptr ? heldAs(*out.message) : Held::Leaf;
      } else if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        out.kind = FieldPlan::Kind::Message;
        out.message = field.message_type();
        out.held = heldAs(*out.message);
      } else {
        out.kind = FieldPlan::Kind::Scalar;
        out.wire_type = wireTypeOf(field);
        out.packable = field.is_repeated() && out.wire_type != 2;
      }
    }
    return *slot;
  }

  bool walk(std::string_view bytes, Plan& fields, int depth) {
    if (depth > kMaxDepth) {
      return false;
    }
    Reader in = reader(bytes);
    while (!in.done()) {
      uint64_t tag = 0;
      if (!in.varint(tag)) {
        return false;
      }
      const uint64_t number = tag >> 3;
      const int wire_type = static_cast<int>(tag & 7);
      if (number == 0 || number >= fields.size()) {
        return false;
      }
      FieldPlan& field = fields[number];
      std::string_view value;
      switch (field.kind) {
        case FieldPlan::Kind::Refuse:
          return false;
        case FieldPlan::Kind::Scalar:
          if (wire_type != field.wire_type && !(field.packable && wire_type == 2)) {
            return false;
          }
          if (!in.skip(wire_type)) {
            return false;
          }
          break;
        case FieldPlan::Kind::Message:
          if (wire_type != 2 || !in.lengthDelimited(value) || !walkHeld(value, field, depth + 1)) {
            return false;
          }
          break;
        case FieldPlan::Kind::Map:
          if (wire_type != 2 || !in.lengthDelimited(value) ||
              !walkMapEntry(value, field, depth + 1)) {
            return false;
          }
          break;
      }
    }
    return true;
  }

  // As the walk: an Any as the message it holds, a well-known value not at all.
  bool walkHeld(std::string_view bytes, FieldPlan& field, int depth) {
    switch (field.held) {
      case Held::Any:
        return walkAny(bytes, field.field, depth);
      case Held::Leaf:
        return true;
      case Held::Walk:
        break;
    }
    if (field.plan == nullptr) {
      field.plan = &plan(*field.message, field.field);  // plans never move (unique_ptr)
    }
    return walk(bytes, *field.plan, depth);
  }

  // A map entry: its key (1) is a value; its value (2) is walked when it is a message.
  bool walkMapEntry(std::string_view bytes, FieldPlan& map, int depth) {
    Reader in = reader(bytes);
    while (!in.done()) {
      uint64_t tag = 0;
      if (!in.varint(tag)) {
        return false;
      }
      const int wire_type = static_cast<int>(tag & 7);
      if ((tag >> 3) == 2 && map.message != nullptr) {
        std::string_view value;
        if (wire_type != 2 || !in.lengthDelimited(value) || !walkHeld(value, map, depth)) {
          return false;
        }
      } else if ((tag >> 3) != 1 && (tag >> 3) != 2) {
        return false;
      } else if (!in.skip(wire_type)) {
        return false;
      }
    }
    return true;
  }

  // type_url (1) and value (2), the last of each as protobuf keeps it; the held message is
  // walked when it is of our protos (the walk's walkAny()).
  bool walkAny(std::string_view bytes, const FieldDescriptor* via, int depth) {
    std::string_view url;
    std::string_view value;
    Reader in = reader(bytes);
    while (!in.done()) {
      uint64_t tag = 0;
      if (!in.varint(tag) || (tag & 7) != 2) {
        return false;
      }
      std::string_view field;
      if (!in.lengthDelimited(field)) {
        return false;
      }
      if ((tag >> 3) == 1) {
        url = field;
      } else if ((tag >> 3) == 2) {
        value = field;
      } else {
        return false;
      }
    }
    const size_t slash = url.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? url : url.substr(slash + 1);
    const Descriptor* inner =
        google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(
            std::string(name));
    if (inner == nullptr || isWellKnownLeaf(*inner) ||
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(inner) == nullptr) {
      return true;  // the walk leaves it to the semantic checks too
    }
    return walk(value, plan(*inner, via), depth + 1);
  }
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
  // The common case, a clean message, from its bytes; a finding is the walk's to report.
  std::string bytes;
  if (!message.SerializeToString(&bytes)) {
    bytes.clear();  // the walk decides
  }
  return checkSupportedFieldsAsReceived(message, bytes, path, context);
}

absl::Status checkSupportedFieldsAsReceived(const Message& message, std::string_view serialized,
                                            const std::string& path,
                                            const FieldCheckContext& context) {
  // Parsing keeps every field it read, known or not, so what the bytes hold is at least what
  // reflection lists: bytes found clean mean a clean message.
  if (!serialized.empty() && WireChecker().clean(serialized, *message.GetDescriptor())) {
    return absl::OkStatus();
  }
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
