#pragma once

// A small streaming JSON writer for the admin API: keys in the order they are written (so
// /v1/status reads top-down), two-space indentation, strings escaped per RFC 8259.
//
// Not google.protobuf.Struct: its map field's layout changes under ThreadSanitizer while
// Debian's libprotobuf is built without it, so building a Struct in a TSAN build crashes.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace Proxy::ControlPlane {

class JsonWriter {
 public:
  JsonWriter& beginObject() { return open('{'); }
  JsonWriter& endObject() { return close('}'); }
  JsonWriter& beginArray() { return open('['); }
  JsonWriter& endArray() { return close(']'); }
  // The key of the next value (inside an object).
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(uint64_t n);
  JsonWriter& value(bool b);
  // key + value in one call.
  template <class T>
  JsonWriter& field(std::string_view name, const T& v) {
    return key(name).value(v);
  }

  // The document, with a final newline.
  std::string str() const { return out_ + "\n"; }

 private:
  JsonWriter& open(char c);
  JsonWriter& close(char c);
  // Before a value: the comma and newline for array elements.
  void beforeValue();
  void newline();

  std::string out_;
  // Per open container: whether it has an element yet.
  std::vector<bool> has_element_;
  bool after_key_ = false;
};

}  // namespace Proxy::ControlPlane
